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
    struct gc_sweep *_Atomic sweep; /* the sweep helpers may join (sweep.c) */
    _Atomic int sweep_helpers;
    frt_gc_stats stats[3];
    gc_callback *callbacks;
    size_t ncallbacks, callbacks_cap;
    frt_object **garbage;
    size_t ngarbage, garbage_cap;
} frt_gc_state;

extern frt_gc_state frt__gc;

/* The set a run examines. Members carry FRT_GC_COLLECTING and, in ob_tid,
 * their index in the set plus the trial-deletion state (the world is
 * stopped, nobody counts on them); the owner id is kept in tid[] and put
 * back before the world restarts.
 *
 * Keeping the trial count and the reachable flag in the member's own ob_tid
 * (next to ob_gc_bits, which every visit reads anyway) means a visit touches
 * one cache line, the referent's header, instead of that line plus a slot
 * of a side array at a random index: on a heap larger than the caches each
 * of those is a miss, and they were most of a full collection's time.
 *
 *   bits  0..31  index in the set (so at most 2^32 - 1 members)
 *   bit   32     reachable (found from outside the set)
 *   bit   33     pinned: the count does not fit below; it lives in big[index]
 *   bits 34..63  references from outside the set so far (signed) */
#define FRT_GCW_INDEX_MASK ((uintptr_t)0xffffffffu)
#define FRT_GCW_REACHABLE ((uintptr_t)1 << 32)
#define FRT_GCW_PINNED ((uintptr_t)1 << 33)
#define FRT_GCW_REFS_SHIFT 34
#define FRT_GCW_REF_ONE ((uintptr_t)1 << FRT_GCW_REFS_SHIFT)
#define FRT_GCW_REFS_MAX (((intptr_t)1 << (63 - FRT_GCW_REFS_SHIFT)) - 1)
#define FRT_GCW_MAX_MEMBERS ((size_t)FRT_GCW_INDEX_MASK)

typedef struct gc_work {
    frt_object **obj;
    uintptr_t *tid;
    uint8_t *state;   /* 0 unreachable, 1 reachable: filled by frt__gc_find_reachable */
    intptr_t *big;    /* counts of pinned members (huge or immortal), by index; NULL if none */
    size_t n, cap;
    frt_object **stack;
    size_t sp, stack_cap;
    int failed;       /* out of work memory: the run is postponed */
    int restored;     /* ob_tid and the flag already put back */
    intptr_t extra;   /* added to each count (-1: the collector's own hold) */
} gc_work;

/* Room for k more members without growing; -1 (and failed) if none. */
int frt__gc_work_reserve(gc_work *w, size_t k);
void frt__gc_work_add_pinned(gc_work *w, frt_object *o, intptr_t refs);

/* Add o after frt__gc_work_reserve made room. */
static inline void frt__gc_work_add_reserved(gc_work *w, frt_object *o, intptr_t count)
{
    size_t i = w->n;
    intptr_t refs = count + w->extra;
    if (FRT_UNLIKELY(refs > FRT_GCW_REFS_MAX || refs < 0)) {
        frt__gc_work_add_pinned(w, o, refs);
        return;
    }
    w->n = i + 1;
    w->obj[i] = o;
    w->tid[i] = atomic_load_explicit(&o->ob_tid, memory_order_relaxed);
    atomic_store_explicit(&o->ob_tid, ((uintptr_t)refs << FRT_GCW_REFS_SHIFT) | (uintptr_t)i,
                          memory_order_relaxed);
    o->ob_gc_bits |= FRT_GC_COLLECTING;
}

int frt__gc_work_add(gc_work *w, frt_object *o);
void frt__gc_work_restore(gc_work *w); /* ob_tid back, COLLECTING off */
void frt__gc_work_free(gc_work *w);

/* Trial deletion over the work set: state[i] = 1 for what is reachable
 * from outside it. On success the members are restored already (as by
 * frt__gc_work_restore). Returns -1 if the mark stack could not grow. */
int frt__gc_find_reachable(gc_work *w);

/* Candidates of generations 0..gen (2: all tracked, frozen excepted). */
void frt__gc_gather(gc_work *w, int gen);
/* After a run of gen: move survivors' generation and map bits. */
void frt__gc_promote(frt_object *o, int gen);
/* After a full run or freeze: no page needs its young bits any more. */
void frt__gc_forget_young(void);
/* Pause adaptive hot objects while no automatic collection will come. */
void frt__gc_hot_follow(frt_tstate *ts);

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
    if (local >= FRT_REF_HOT)
        return local == FRT_REF_IMMORTAL ? INTPTR_MAX / 2 : frt__hot_count(o);
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

/* Returns what frt_gc_collect does (collected + uncollectable); *found,
 * if not NULL, gets every unreachable object found, resurrected included. */
long frt__gc_collect_gen(frt_tstate *me, int gen, int automatic, size_t *found);

/* The sweep (sweep.c): clear() and drop u[0..n) but the resurrected, on
 * this thread and on those that assist; returns once every object's hold
 * is dropped and what that freed is destroyed. */
typedef struct gc_sweep gc_sweep;
void frt__gc_sweep(frt_tstate *me, frt_object **u, const uint8_t *resurrected, size_t n);
/* A thread whose allocations outrun a collection joins its sweep, if one
 * is under way; at its safepoint, where it may run destructors. */
void frt__gc_sweep_assist(frt_tstate *ts);
/* Allocations past this many thresholds while a collection runs make the
 * allocating thread assist it (tracking.c, sweep.c). */
#define FRT_GC_BACKLOG 4
void frt__gc_run_callbacks(int phase, const frt_gc_info *info);
int frt__gc_garbage_append(frt_object *o); /* steals the reference */
void frt__gc_install(frt_hooks *hooks, const frt_config *cfg);
void frt__gc_fork(int phase); /* runtime/fork.h's phases */

#endif
