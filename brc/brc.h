/* Biased reference counting: the slow paths behind the inline fast paths in
 * <frt/object.h>, the merge queues, and the hooks the runtime calls at
 * safepoints and detach. docs/design.md has every state transition. */
#ifndef FRT_BRC_BRC_H
#define FRT_BRC_BRC_H

#include <frt/object.h>

#include "../runtime/runtime.h"

void frt__brc_install(frt_hooks *hooks);

/* Fold the local count into the shared one and give up the owner: returns
 * the total count after adding extra. The caller must be the owner, or the
 * owner must be unable to touch the local count (gone, blocked and helped,
 * suspended). */
intptr_t frt__brc_merge(frt_object *o, intptr_t extra);
/* World stopped: no owner any more (counts merged), unless hot or immortal,
 * or (keep_own) owned by the calling thread. */
void frt__brc_disown_stopped(frt_object *o, int keep_own);

/* The caller's decref was not applied to the shared count: the caller's
 * batch, then the owner's queue, holds that reference until the owner (or
 * someone acting for it) merges (drop_batch.c). maybe_weak: the shared
 * word was MAYBE_WEAKREF (someone may try-incref o), not 0. */
void frt__brc_queue(frt_object *o, int maybe_weak);
/* A queue entry is the object's address, its low bit set for maybe_weak
 * (objects are 16-byte aligned). */
static inline frt_object *frt__brc_entry(frt_object *o, int maybe_weak)
{
    return (frt_object *)((uintptr_t)o | (uintptr_t)(maybe_weak != 0));
}
static inline frt_object *frt__brc_entry_object(frt_object *e)
{
    return (frt_object *)((uintptr_t)e & ~(uintptr_t)1);
}
static inline int frt__brc_entry_maybe_weak(frt_object *e)
{
    return (int)((uintptr_t)e & 1);
}
/* ts's batch to its owner's queue; may_run_code: see frt_hooks. */
void frt__brc_flush_drops(frt_tstate *ts, int may_run_code);
/* Merge owner's queue for it while it is BLOCKED (or refuse). */
void frt__brc_help(frt_tstate *owner);
/* The owner's (or its stand-in's) merge of one queue entry: the count
 * after the queue's reference is taken off (frt__brc_merge(o, -1)).
 * Called with the entry's maybe_weak. */
intptr_t frt__brc_merge_queued(frt_object *o, int maybe_weak);

void frt__brc_merge_queue(frt_tstate *ts);
/* For the collector, world stopped: merge ts's queue but do not free; the
 * objects whose count reached zero are chained onto *dead (through their
 * ob_tid) for frt__brc_free_dead once the world runs again. */
void frt__brc_take_queue(frt_tstate *ts, frt_object **dead);
void frt__brc_free_dead(frt_object *dead);
void frt__brc_close_queue(frt_tstate *ts);

/* Hot objects (hot.c). */
static inline int frt__is_hot(const frt_object *o)
{
    uint32_t local = atomic_load_explicit(&((frt_object *)o)->ob_ref_local, memory_order_relaxed);
    return local >= FRT_REF_HOT && local != FRT_REF_IMMORTAL;
}
/* The sum of o's counts: a snapshot, exact with the
 * world stopped or when no other thread counts on o. */
intptr_t frt__hot_count(frt_object *o);
/* World stopped: start counting o per thread (FRT_EALREADY, FRT_ENOMEM);
 * go back to ordinary counting, returning the count (-1: o was not hot). */
int frt__hot_promote_stopped(frt_object *o, int automatic);
intptr_t frt__hot_demote_stopped(frt_object *o);
/* World stopped, at each collection: hot objects whose counts sum to zero
 * are chained onto *dead (as frt__brc_take_queue does); adaptive
 * promotions waiting are made, and adaptive hot objects gone cold are
 * demoted. auto_only: only the objects the runtime made hot. */
void frt__hot_sweep(frt_object **dead, int auto_only);
/* Detach: fold ts's counts into the objects; ts counts on their shared
 * counts from then on. */
void frt__hot_thread_fold(frt_tstate *ts);
/* Adaptive promotion (hot_adaptive.c): a sampled non-owner decref of o
 * (the caller holds a reference); the promotions that ts's safepoint owes
 * (FRT_TS_HOT); o is being freed; with the world stopped at a
 * collection, make the promotions that wait. */
void frt__hot_sample(frt_tstate *ts, frt_object *o);
void frt__hot_promote_pending(frt_tstate *ts);
void frt__hot_forget(frt_object *o);
void frt__hot_sweep_candidates(void);
/* Only collections free hot objects, so while the collector is disabled
 * (frt_gc_disable, frt_config.gc_enabled 0) adaptive promotion pauses:
 * nothing is promoted, and every sweep demotes what the runtime promoted.
 * Pausing sweeps at once where ts can stop the world (ts may be NULL). */
void frt__hot_adaptive_pause(frt_tstate *ts, int paused);
int frt__hot_adaptive_paused(void);
size_t frt__hot_auto_count(void); /* hot now, made so by the runtime */
/* frt_init and frt_shutdown: forget every index and array. */
void frt__hot_reset(void);

#endif
