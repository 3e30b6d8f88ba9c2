/* frt_mutex slow paths (the fast paths are inline in <frt/lock.h>), and the
 * debug build's record of which mutexes each thread holds. */
#include <stdio.h>

#include "debug.h"
#include "futex.h"
#include "parking_lot.h"
#include "runtime.h"

#define SPIN 100 /* a critical section is short: worth a few tries before parking */

/* Under the bucket lock: park only on a mutex that is locked, and say so
 * in the mutex, so its unlock takes the slow path and wakes us. */
static int validate(void *addr)
{
    frt_mutex *m = addr;
    uint8_t v = atomic_load_explicit(&m->v, memory_order_relaxed);
    for (;;) {
        if (!(v & FRT_MUTEX_LOCKED))
            return 0;
        if (v & FRT_MUTEX_PARKED)
            return 1;
        if (atomic_compare_exchange_weak_explicit(&m->v, &v, v | FRT_MUTEX_PARKED,
                                                  memory_order_relaxed, memory_order_relaxed))
            return 1;
    }
}

static int try_acquire(frt_mutex *m)
{
    uint8_t v = atomic_load_explicit(&m->v, memory_order_relaxed);
    while (!(v & FRT_MUTEX_LOCKED)) {
        if (atomic_compare_exchange_weak_explicit(&m->v, &v, v | FRT_MUTEX_LOCKED,
                                                  memory_order_acquire, memory_order_relaxed))
            return 1;
    }
    return 0;
}

void frt__mutex_lock_slow(frt_mutex *m)
{
    for (;;) {
        for (unsigned spin = 0; spin < SPIN; spin++) {
            if (try_acquire(m))
                return;
            frt_cpu_relax();
        }
        /* Waiting: blocked for stop-the-world, critical sections suspended
         * (which may release m itself, if one of ours holds it). */
        frt_tstate *ts = frt__tstate();
        int token = frt__wait_begin(ts);
        int r = try_acquire(m) ? FRT_PARK_HANDOFF : frt__park(m, validate);
        frt__wait_end(ts, token);
        if (r == FRT_PARK_HANDOFF)
            return;
    }
}

/* Under the bucket lock. A waiter that has waited long gets the mutex
 * handed over (it stays locked), so a stream of fast lockers cannot starve
 * it; otherwise unlock and let the woken waiter compete. */
static int unparked(void *addr, int found, int more, int waited_long)
{
    frt_mutex *m = addr;
    uint8_t parked = more ? FRT_MUTEX_PARKED : 0;
    int handoff = found && waited_long;
    atomic_store_explicit(&m->v, (uint8_t)(parked | (handoff ? FRT_MUTEX_LOCKED : 0)),
                          memory_order_release);
    return handoff;
}

int frt__mutex_unlock_slow(frt_mutex *m)
{
    uint8_t v = atomic_load_explicit(&m->v, memory_order_relaxed);
    for (;;) {
        if (!(v & FRT_MUTEX_LOCKED))
            return FRT_ESTATE;
        if (v & FRT_MUTEX_PARKED) {
            frt__unpark_one(m, unparked);
            return 0;
        }
        if (atomic_compare_exchange_weak_explicit(&m->v, &v, 0, memory_order_release,
                                                  memory_order_relaxed))
            return 0;
    }
}

/* ------------------------------------------------------------------ */
/* Debug build: the mutexes this thread locked through the public API. */

#if FRT_DEBUG
#define HELD_MAX 64
static __thread frt_mutex *held[HELD_MAX];
static __thread unsigned nheld; /* may exceed HELD_MAX: the excess is not checked */

static void held_push(frt_mutex *m)
{
    if (nheld < HELD_MAX)
        held[nheld] = m;
    nheld++;
}

/* 1 if this thread holds m (or may: its record overflowed). */
static int held_pop(frt_mutex *m)
{
    unsigned n = nheld < HELD_MAX ? nheld : HELD_MAX;
    for (unsigned i = n; i-- > 0;) {
        if (held[i] == m) {
            held[i] = held[n - 1];
            nheld--;
            return 1;
        }
    }
    if (nheld > HELD_MAX) {
        nheld--;
        return 1;
    }
    return 0;
}
#else /* a release build calls these only from code built against a debug header */
static void held_push(frt_mutex *m)
{
    (void)m;
}

static int held_pop(frt_mutex *m)
{
    return frt_mutex_is_locked(m);
}
#endif

static void mutex_misuse(frt_mutex *m, const char *what)
{
    char line[160];
    snprintf(line, sizeof line, "%s of frt_mutex %p", what, (void *)m);
    frt__misuse(NULL, line);
}

int frt__mutex_lock_checked(frt_mutex *m)
{
    if (!m) {
        FRT_MISUSE(NULL, "frt_mutex_lock of NULL");
        return FRT_EINVAL;
    }
    frt__mutex_lock_fast(m);
    held_push(m);
    return 0;
}

int frt__mutex_trylock_checked(frt_mutex *m)
{
    if (!m) {
        FRT_MISUSE(NULL, "frt_mutex_trylock of NULL");
        return FRT_EINVAL;
    }
    if (!frt__mutex_trylock_fast(m))
        return 0;
    held_push(m);
    return 1;
}

int frt__mutex_unlock_checked(frt_mutex *m)
{
    if (!m) {
        FRT_MISUSE(NULL, "frt_mutex_unlock of NULL");
        return FRT_EINVAL;
    }
    if (!held_pop(m)) {
        mutex_misuse(m, frt_mutex_is_locked(m) ? "frt_mutex_unlock by a thread that does not hold it"
                                               : "frt_mutex_unlock of an unlocked mutex");
        return FRT_ESTATE;
    }
    return frt__mutex_unlock_fast(m);
}
