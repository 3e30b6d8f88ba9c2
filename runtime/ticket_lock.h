/* A FIFO lock: attaching threads and stop-the-world requests queue in
 * arrival order, so a thread trying to attach is never starved by a stream
 * of back-to-back stops (python/cpython gh-151518). Waiters spin briefly,
 * then sleep on the futex. */
#ifndef FRT_RUNTIME_TICKET_LOCK_H
#define FRT_RUNTIME_TICKET_LOCK_H

#include <sched.h>

#include "futex.h"

typedef struct frt_ticket_lock {
    _Atomic uint32_t next;
    _Atomic uint32_t serving;
} frt_ticket_lock;

static inline void frt_ticket_lock_acquire(frt_ticket_lock *l)
{
    uint32_t t = atomic_fetch_add_explicit(&l->next, 1, memory_order_relaxed);
    for (unsigned spin = 0;; spin++) {
        uint32_t s = atomic_load_explicit(&l->serving, memory_order_acquire);
        if (s == t)
            return;
        if (spin < 200)
            frt_cpu_relax();
        else
            frt_futex_wait(&l->serving, s);
    }
}

static inline void frt_ticket_lock_release(frt_ticket_lock *l)
{
    uint32_t s = atomic_fetch_add_explicit(&l->serving, 1, memory_order_release) + 1;
    if (atomic_load_explicit(&l->next, memory_order_relaxed) != s)
        frt_futex_wake_all(&l->serving);
}

#endif
