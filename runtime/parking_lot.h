/* A parking lot: threads wait on an address, not on a word of their own, so
 * a one-byte frt_mutex needs no futex word. Waiters queue in FIFO order in
 * one of a fixed set of buckets chosen by hashing the address; each sleeps
 * on the futex word inside its own waiter record (WebKit's and CPython's
 * parking lots work the same way). */
#ifndef FRT_RUNTIME_PARKING_LOT_H
#define FRT_RUNTIME_PARKING_LOT_H

enum { FRT_PARK_SKIPPED = -1, FRT_PARK_WOKEN = 0, FRT_PARK_HANDOFF = 1 };

/* Queue the caller on addr and sleep until woken, unless validate(addr),
 * called under the bucket lock, returns 0 (FRT_PARK_SKIPPED). Returns what
 * the waker decided: FRT_PARK_HANDOFF or FRT_PARK_WOKEN. Only sleeps: the
 * caller makes the thread count as blocked around it (frt__wait_begin). */
int frt__park(void *addr, int (*validate)(void *addr));

/* Dequeue the first waiter on addr and wake it. unparked(addr, found,
 * more, waited_long) runs under the bucket lock, before the wake: found is
 * whether a waiter was dequeued, more whether others still wait on addr,
 * waited_long whether it has waited for over a millisecond; it returns 1
 * to hand whatever addr guards to that waiter. */
void frt__unpark_one(void *addr, int (*unparked)(void *addr, int found, int more, int waited_long));

#endif
