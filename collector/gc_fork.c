/* The collector's part of fork() (runtime/fork.c drives the phases).
 *
 * A collection spans several stops with the world running in between
 * (finalizers, callbacks, clearing): the objects it holds carry its marks
 * and references until it ends. A fork between two of its stops would give
 * the child a collection that no thread will ever finish. So the forking
 * thread first waits for one in progress to end and claims the collector
 * for the fork; no collection starts while it holds the claim. */
#include <sched.h>

#include "gc_internal.h"
#include "../runtime/fork.h"

static __thread int claimed;

static void claim(void)
{
    frt_tstate *me = frt__tstate();
    claimed = 0;
    /* The collection is this thread's own (a finalizer forks), or this
     * thread holds a stop the collection needs: it cannot end first. */
    if (!me || me->in_gc_callback || me->stw_depth)
        return;
    int expected = 0;
    while (!atomic_compare_exchange_weak(&frt__gc.collecting, &expected, 1)) {
        expected = 0;
        /* The collection may need to stop us to finish. */
        frt_safepoint();
        sched_yield();
    }
    claimed = 1;
}

void frt__gc_fork(int phase)
{
    switch (phase) {
    case FRT_FORK_QUIESCE:
        claim();
        return;
    case FRT_FORK_LOCK:
    case FRT_FORK_PARENT:
    case FRT_FORK_CHILD:
        frt__fork_mutex(&frt__gc.lock, phase);
        if (phase != FRT_FORK_LOCK && claimed)
            atomic_store(&frt__gc.collecting, 0);
        return;
    }
}
