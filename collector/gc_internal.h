/* The collector's state and the pieces its files share. */
#ifndef FRT_COLLECTOR_GC_INTERNAL_H
#define FRT_COLLECTOR_GC_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include <frt/frt.h>

#include "../brc/brc.h"
#include "../runtime/runtime.h"

/* ob_gc_bits */
enum {
    FRT_GC_TRACKED = 1,    /* a container the collector examines */
    FRT_GC_COLLECTING = 2, /* in the current work set: ob_tid holds its index */
    FRT_GC_UNREACHABLE = 4, /* found garbage by the collection under way */
};
#define FRT_GEN_PERMANENT 3 /* frt_gc_freeze */

typedef struct gc_callback {
    frt_gc_callback cb;
    void *ctx;
} gc_callback;

typedef struct frt_gc_state {
    pthread_mutex_t lock; /* everything below that is not atomic */
    _Atomic int enabled;
    _Atomic size_t threshold[3];
    _Atomic unsigned debug;
    _Atomic long young_count;   /* tracked allocations minus frees since the last run */
    size_t gen_count[3];        /* [1], [2]: runs of the younger generation since this one's */
    size_t gen_size[3];         /* survivors promoted into 1 and 2 (approximate) */
    size_t long_lived_total;    /* survivors of the last full run */
    size_t long_lived_pending;  /* promoted into generation 2 since */
    _Atomic long freeze_count;
    _Atomic int collecting;
    frt_gc_stats stats[3];
    gc_callback *callbacks;
    size_t ncallbacks, callbacks_cap;
    frt_object **garbage;
    size_t ngarbage, garbage_cap;
} frt_gc_state;

extern frt_gc_state frt__gc;

/* The set a run examines. Members carry FRT_GC_COLLECTING and their index
 * in ob_tid (the world is stopped, nobody counts on them); the owner id is
 * kept in tid[] and put back before the world restarts. */
typedef struct gc_work {
    frt_object **obj;
    intptr_t *refs;   /* count minus references from inside the set */
    uintptr_t *tid;
    uint8_t *state;   /* 0 unreachable so far, 1 reachable */
    size_t n, cap;
    size_t *stack;
    size_t sp, stack_cap;
    int failed;       /* out of work memory: the run is postponed */
    intptr_t extra;   /* added to each count (-1: the collector's own hold) */
} gc_work;

int frt__gc_work_add(gc_work *w, frt_object *o);
void frt__gc_work_restore(gc_work *w); /* ob_tid back, COLLECTING off */
void frt__gc_work_free(gc_work *w);

/* Trial deletion over the work set: state[i] = 1 for what is reachable
 * from outside it. Returns -1 if the mark stack could not grow. */
int frt__gc_find_reachable(gc_work *w);

/* Candidates of generations 0..gen (2: all tracked, frozen excepted). */
void frt__gc_gather(gc_work *w, int gen);
/* After a run of gen: move survivors' generation and map bits. */
void frt__gc_promote(frt_object *o, int gen);
/* After a full run or freeze: no page needs its young bits any more. */
void frt__gc_forget_young(void);

/* World stopped: merge every thread's queued counts; objects that reached
 * zero are chained onto *dead, to be freed once the world runs. */
void frt__gc_merge_all_queues(frt_object **dead);

static inline int frt__gc_is_container(const frt_object *o)
{
    return (o->ob_gc_bits & FRT_GC_TRACKED) != 0;
}

/* Exact total count, world stopped and queues merged. */
static inline intptr_t frt__gc_refcount(frt_object *o)
{
    uint32_t local = atomic_load_explicit(&o->ob_ref_local, memory_order_relaxed);
    if (local == FRT_REF_IMMORTAL)
        return INTPTR_MAX / 2;
    return (intptr_t)local + (atomic_load_explicit(&o->ob_ref_shared, memory_order_relaxed) >>
                              FRT_REF_SHARED_SHIFT);
}

/* Weak references (collector/weakrefs.c), world stopped. The first clears
 * garbage weakrefs and the callback weakrefs to garbage, chaining those to
 * call on *calls; it returns 1 if any garbage object may still have
 * weakrefs (without callbacks). The second clears those that are left, on
 * every object that was not resurrected. */
int frt__gc_weakrefs_take_callbacks(frt_object **u, size_t n, frt_weakref **calls);
void frt__gc_weakrefs_clear_rest(frt_object **u, size_t n, const uint8_t *resurrected);

long frt__gc_collect_gen(frt_tstate *me, int gen, int automatic);
void frt__gc_run_callbacks(int phase, const frt_gc_info *info);
int frt__gc_garbage_append(frt_object *o); /* steals the reference */
void frt__gc_install(frt_hooks *hooks, const frt_config *cfg);

#endif
