/* Try-incref: take a new strong reference to an object that the caller
 * can see but does not hold a reference to (a weakref's target, a weakref
 * being cleared), and fail once the object's count has reached zero, so a
 * dying object is never handed out. CPython's _Py_TryIncref.
 *
 * Why each case is safe (docs/design.md, "Weak references", has the whole
 * argument):
 *   - the owner: it alone writes ob_ref_local and it alone decides that an
 *     owned object is dead (its own last decref, or its merge of a queue
 *     node), so while tid == ours and local > 0 the object cannot die under
 *     us;
 *   - everyone else: the count can only reach zero through a CAS on
 *     ob_ref_shared (a merged object's last decref; the owner's last decref
 *     of an object in state MAYBE_WEAKREF, QUEUED or with a non-zero shared
 *     count; a merge), so a CAS that increments a word that is not "zero and
 *     final" either lands before that CAS (which then counts us) or fails.
 *     The two words that may mean "dead" are MERGED with count 0 (dead for
 *     good) and exactly 0 (owned and never shared: the owner's last decref
 *     frees it without a CAS, so we must not touch it). A weakref's target
 *     never has the second form: frt_weakref_new sets MAYBE_WEAKREF, and no
 *     transition brings an owned object's word back to exactly 0.
 * The caller keeps the object's memory valid meanwhile (the weakref lock:
 * clearing happens under it, before the block is freed). */
#ifndef FRT_RUNTIME_TRY_INCREF_H
#define FRT_RUNTIME_TRY_INCREF_H

#include <frt/object.h>

/* The part of a try-incref that calls nothing, for callers that keep
 * their fast path a leaf (no register saved): 1 took a reference, 0
 * refused (the object is dying), -1 not decided here (a hot or immortal
 * object, an owner's count about to overflow): call frt__try_incref. */
static inline int frt__try_incref_leaf(frt_object *o)
{
    uint32_t local = atomic_load_explicit(&o->ob_ref_local, memory_order_relaxed);
    if (local >= FRT_REF_HOT)
        return -1;
    if (atomic_load_explicit(&o->ob_tid, memory_order_relaxed) == frt__thread_id()) {
        if (local == 0)
            return 0; /* our own last decref is freeing it right now */
        if (local + 1 == FRT_REF_HOT)
            return -1;
        atomic_store_explicit(&o->ob_ref_local, local + 1, memory_order_relaxed);
        return 1;
    }
    intptr_t shared = atomic_load_explicit(&o->ob_ref_shared, memory_order_relaxed);
    for (;;) {
        if (shared == 0 || shared == FRT_REF_MERGED)
            return 0;
        if (atomic_compare_exchange_weak_explicit(&o->ob_ref_shared, &shared,
                                                  shared + FRT_REF_SHARED_ONE,
                                                  memory_order_acquire, memory_order_relaxed))
            return 1;
    }
}

static inline int frt__try_incref(frt_object *o)
{
    int took = frt__try_incref_leaf(o);
    if (FRT_LIKELY(took >= 0))
        return took;
    uint32_t local = atomic_load_explicit(&o->ob_ref_local, memory_order_relaxed);
    if (local >= FRT_REF_HOT) {
        /* Immortal, or hot: a hot object is freed only after a stop found
         * its counts summing to zero and made it ordinary (count 0, merged):
         * while it still reads hot it is alive, and no stop can come
         * between this load and the increment. */
        if (local != FRT_REF_IMMORTAL)
            frt__incref_hot(o, local);
        return 1;
    }
    /* Ours, one short of FRT_REF_HOT: only we change an owned count. */
    frt__incref_overflow(o);
    return 1;
}

/* Mark o as a possible weakref target: from now on its shared word is never
 * exactly 0, so non-owners may try-incref it (see above). */
static inline void frt__set_maybe_weakref(frt_object *o)
{
    intptr_t shared = atomic_load_explicit(&o->ob_ref_shared, memory_order_relaxed);
    while (FRT_REF_STATE(shared) == 0) {
        if (atomic_compare_exchange_weak_explicit(&o->ob_ref_shared, &shared,
                                                  shared | FRT_REF_MAYBE_WEAKREF,
                                                  memory_order_relaxed, memory_order_relaxed))
            return;
    }
}

#endif
