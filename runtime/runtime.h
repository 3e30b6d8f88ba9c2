/* Process-wide runtime state, and the hooks through which the layers above
 * (brc/, collector/) plug into the runtime's events without the runtime
 * depending on them: runtime/init.c is the one place that wires them. */
#ifndef FRT_RUNTIME_RUNTIME_H
#define FRT_RUNTIME_RUNTIME_H

#include <pthread.h>
#include <stdatomic.h>

#include <frt/frt.h>

#include "ticket_lock.h"
#include "tstate.h"

typedef struct frt_hooks {
    /* brc: merge ts's queued objects (ts is the caller, or BLOCKED and
     * helped); close it for good at detach. */
    void (*merge_queue)(frt_tstate *ts);
    void (*close_queue)(frt_tstate *ts);
    /* brc: push ts's batch of drops (the caller's) to the owners' queues;
     * may_run_code 0 where no destructor may run and no stop be taken
     * (parking, going blocked): then nothing is merged or freed here. */
    void (*flush_drops)(frt_tstate *ts, int may_run_code);
    /* brc: give up the caller's ownership of o, adding extra to its count;
     * returns the count (frt__brc_merge). */
    intptr_t (*merge)(frt_object *o, intptr_t extra);
    /* collector: a pending automatic collection; tracked-object accounting;
     * runtime shutdown (finalizers, last collection). NULL until it lands. */
    void (*collect_pending)(frt_tstate *ts);
    void (*object_new)(frt_object *o);
    void (*object_free)(frt_object *o);
    void (*shutdown)(void);
    /* collector: its part of fork(), one FRT_FORK_* phase at a time
     * (runtime/fork.h). */
    void (*fork)(int phase);
    /* brc: adaptive promotions that ts's safepoint owes; o is being freed
     * while promotions wait (frt__hot_waiting), forget it. */
    void (*hot_pending)(frt_tstate *ts);
    void (*hot_forget)(frt_object *o);
} frt_hooks;

typedef struct frt_runtime {
    _Atomic int initialized;
    _Atomic int shutting_down;
    frt_config config;
    pthread_t init_thread;
    frt_hooks hooks;

    frt_ticket_lock threads_lock; /* registry list, attach/detach, stops */
    pthread_mutex_t stw_mutex;    /* serialises stop requests */
    frt_tstate *threads;          /* attached or blocked threads */
    size_t nthreads;
    _Atomic size_t nthreads_hint; /* nthreads, for readers without the lock */
    frt_tstate *free_states;      /* pool: states are never freed before shutdown */
    uint32_t nstates;             /* thread states ever made (at most FRT_MAX_THREADS) */
    _Atomic(frt_tstate *) by_tid[FRT_TID_TABLE_SIZE]; /* see tstate.c */

    _Atomic int stw_active;
    frt_tstate *stw_owner;
    uint64_t stw_t0;
    frt_stw_stats stw;            /* written by the stopper under stw_mutex */
    pthread_mutex_t stw_stats_lock;
    pthread_key_t exit_key;
    /* Hot objects (brc/hot.c), for frt_heap_get_stats. */
    _Atomic size_t hot_now;
    _Atomic uint64_t hot_promoted, hot_demoted;
} frt_runtime;

extern frt_runtime frt__rt;

/* Adaptive promotions waiting for a stop (brc/hot_adaptive.c): while it
 * is not 0, every object freed is checked against them. Read on every
 * free: on a line of its own. */
extern _Atomic unsigned frt__hot_waiting;

#endif
