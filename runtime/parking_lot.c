/* The parking lot behind frt_mutex (parking_lot.h). A bucket's lock is held
 * only to queue or dequeue, never across a sleep, so a plain pthread mutex
 * does: it is short, and sanitizers see it. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "fork.h"
#include "futex.h"
#include "parking_lot.h"

#define NBUCKETS 256
#define LONG_WAIT_NS 1000000 /* then the waiter gets the lock handed to it (fairness) */

typedef struct waiter {
    struct waiter *next;
    void *addr;
    uint64_t since_ns;
    _Atomic uint32_t wake; /* 0 while asleep; 1 + FRT_PARK_* once woken */
} waiter;

typedef struct bucket {
    pthread_mutex_t lock;
    waiter *head, *tail;
} __attribute__((aligned(64))) bucket;

static bucket buckets[NBUCKETS] = {[0 ... NBUCKETS - 1] = {PTHREAD_MUTEX_INITIALIZER, NULL, NULL}};

static bucket *bucket_of(const void *addr)
{
    uint64_t h = (uint64_t)(uintptr_t)addr * 0x9e3779b97f4a7c15ull;
    return &buckets[h >> (64 - 8)];
}

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

int frt__park(void *addr, int (*validate)(void *addr))
{
    bucket *b = bucket_of(addr);
    waiter me = {.next = NULL, .addr = addr};
    pthread_mutex_lock(&b->lock);
    if (!validate(addr)) {
        pthread_mutex_unlock(&b->lock);
        return FRT_PARK_SKIPPED;
    }
    me.since_ns = now_ns();
    atomic_init(&me.wake, 0);
    if (b->tail)
        b->tail->next = &me;
    else
        b->head = &me;
    b->tail = &me;
    pthread_mutex_unlock(&b->lock);

    uint32_t w;
    while ((w = atomic_load_explicit(&me.wake, memory_order_acquire)) == 0)
        frt_futex_wait(&me.wake, 0);
    /* The waker still holds the bucket lock while it wakes us: wait for it
     * to let go before our record (on this stack) goes. */
    pthread_mutex_lock(&b->lock);
    pthread_mutex_unlock(&b->lock);
    return (int)w - 1;
}

void frt__unpark_one(void *addr, int (*unparked)(void *addr, int found, int more, int waited_long))
{
    bucket *b = bucket_of(addr);
    pthread_mutex_lock(&b->lock);
    waiter *w = NULL, *prev = NULL;
    for (waiter *it = b->head; it; prev = it, it = it->next) {
        if (it->addr == addr) {
            w = it;
            break;
        }
    }
    int more = 0;
    if (w) {
        if (prev)
            prev->next = w->next;
        else
            b->head = w->next;
        if (b->tail == w)
            b->tail = prev;
        for (waiter *it = w->next; it && !more; it = it->next)
            more = it->addr == addr;
    }
    int handoff = unparked(addr, w != NULL, more, w && now_ns() - w->since_ns > LONG_WAIT_NS);
    if (w) {
        /* Under the bucket lock, which the woken waiter takes before its
         * record goes (frt__park). */
        atomic_store_explicit(&w->wake, 1u + (handoff ? FRT_PARK_HANDOFF : FRT_PARK_WOKEN),
                              memory_order_release);
        frt_futex_wake_all(&w->wake);
    }
    pthread_mutex_unlock(&b->lock);
}

void frt__parking_lot_fork(int phase)
{
    /* Not taken before fork: unattached and blocked threads (whom the stop
     * does not hold) use buckets too, and 256 locks held at once is more
     * than TSan can track. In the child only this thread is left: every
     * waiter vanished with its thread, and a bucket lock may have vanished
     * held, so each bucket starts over empty (a mutex left PARKED then
     * finds no waiter at its unlock and just unlocks). */
    if (phase != FRT_FORK_CHILD)
        return;
    for (unsigned i = 0; i < NBUCKETS; i++) {
        frt__fork_mutex(&buckets[i].lock, phase);
        buckets[i].head = buckets[i].tail = NULL;
    }
}
