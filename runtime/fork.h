/* fork() with threads attached: the phases runtime/fork.c walks through,
 * and the hook each file that owns a lock provides for them. */
#ifndef FRT_RUNTIME_FORK_H
#define FRT_RUNTIME_FORK_H

#include <pthread.h>

#include "tstate.h"

enum {
    FRT_FORK_QUIESCE, /* before the stop: let work that spans stops finish (a collection) */
    FRT_FORK_LOCK,    /* world stopped: take the lock, so no thread holds it mid-operation */
    FRT_FORK_PARENT,  /* after fork, in the parent: release it */
    FRT_FORK_CHILD    /* after fork, in the child: a fresh, unlocked one */
};

/* The one way every file treats its mutex. A lock taken after the stop is
 * never one a parked thread holds (no safepoint is reached with one held),
 * so only threads that are not attached can make us wait for it. */
static inline void frt__fork_mutex(pthread_mutex_t *m, int phase)
{
    if (phase == FRT_FORK_LOCK)
        pthread_mutex_lock(m);
    else if (phase == FRT_FORK_PARENT)
        pthread_mutex_unlock(m);
    else if (phase == FRT_FORK_CHILD)
        pthread_mutex_init(m, NULL);
}

void frt__fork_register(void);      /* frt_init: pthread_atfork, once per process */

void frt__qsbr_fork(int phase);       /* runtime/qsbr.c: the child waits for no grace period */
void frt__finalizers_fork(int phase); /* runtime/finalizer.c */
void frt__weakrefs_fork(int phase);   /* runtime/weakref.c */
void frt__heaps_fork(int phase);      /* runtime/pool.c */
void frt__arenas_fork(int phase);     /* runtime/arena.c */
void frt__large_fork(int phase);      /* runtime/large.c */
void frt__stw_fork(int phase);        /* runtime/stw.c: the stats lock */
void frt__parking_lot_fork(int phase); /* runtime/parking_lot.c: frt_mutex waiters (child only) */

/* runtime/tstate.c, in the child with the world still stopped: take every
 * other thread's state out of the registry (their ids match nothing from
 * now on) and return them, chained through next_free. */
frt_tstate *frt__tstate_fork_child(frt_tstate *me);
/* World running: what a vanished thread owned becomes the caller's to
 * finish (its queue merged, its heap an orphan, its pending frees done);
 * its state goes back to the pool. */
void frt__tstate_take_over(frt_tstate *gone);

#endif
