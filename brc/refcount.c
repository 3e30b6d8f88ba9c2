/* The slow paths of biased reference counting.
 *
 * ob_ref_shared holds (count << 2) | state. The states, as in CPython's
 * free-threaded build (Objects/object.c), with the invariant that makes
 * each transition safe:
 *   owned     tid = owner, state 0 or MAYBE_WEAKREF: the owner counts on
 *             ob_ref_local alone; others add to the shared count, which may
 *             go negative. MAYBE_WEAKREF (set when a weakref is made) only
 *             forces the owner's last decref through a CAS, so that a
 *             concurrent try-incref (runtime/try_incref.h) is never lost.
 *   queued    tid = owner, QUEUED: a non-owner found the shared count at 0
 *             and, instead of making it -1, handed its reference to the
 *             owner's merge queue. Only the CAS that sets QUEUED queues, so
 *             an object is on at most one queue once.
 *   merged    tid = 0, MERGED: no owner; the shared count is the count and
 *             the decref that brings it to 0 frees the object.
 * owned -> merged happens when the owner's local count reaches 0 while the
 * shared count is not 0 (merge_zero_local), when the owner merges its queue,
 * when the owner gives its bias up (frt_make_shared), or when someone merges
 * for an owner that has gone or is blocked and helped (merge_queue.c). */
#include "brc.h"
#include "../runtime/debug.h"
#include "../runtime/object_internal.h"

intptr_t frt__brc_merge(frt_object *o, intptr_t extra)
{
    uint32_t local = atomic_load_explicit(&o->ob_ref_local, memory_order_relaxed);
    if (local == FRT_REF_IMMORTAL)
        return 1;
    if (local >= FRT_REF_HOT) {
        /* Made hot while queued: the shared count is part of its sum, and
         * only the collector frees a hot object. */
        atomic_fetch_add_explicit(&o->ob_ref_shared, extra * FRT_REF_SHARED_ONE, memory_order_relaxed);
        return 1;
    }
    /* Give the owner up before the CAS publishes the merged count, never
     * after: from that CAS on, another thread's decref may take the count
     * to zero and free the block, and a later store would land in freed
     * (or reused) memory. In between, a queuer that sees tid 0 decrefs the
     * shared count itself, which the CAS below then includes. */
    atomic_store_explicit(&o->ob_tid, 0, memory_order_relaxed);
    atomic_store_explicit(&o->ob_ref_local, 0, memory_order_relaxed);
    intptr_t shared = atomic_load_explicit(&o->ob_ref_shared, memory_order_relaxed);
    intptr_t count;
    do {
        count = (shared >> FRT_REF_SHARED_SHIFT) + (intptr_t)local + extra;
    } while (!atomic_compare_exchange_weak_explicit(&o->ob_ref_shared, &shared,
                                                    count * FRT_REF_SHARED_ONE | FRT_REF_MERGED,
                                                    memory_order_acq_rel, memory_order_relaxed));
    if (count < 0)
        frt__misuse(o, "decref below zero (found when merging counts)");
    return count;
}

/* A queue entry whose object the owner alone still counts, by the one
 * reference that the entry takes away (local 1, shared count 0, QUEUED):
 * the total is zero and nobody else holds a reference. Nobody can take
 * one either, unless something that hands references out without holding
 * one knows the object: a weak reference, a slot or a map (try_incref.h).
 * Those mark the object before it can be handed on: its shared word was
 * MAYBE_WEAKREF when it was queued (the entry says so, maybe_weak), or
 * its flags say so (set before the reference that made them was given
 * back, which the acquire load below pairs with). Otherwise it is dead
 * without a CAS; local 0 makes it read as dead (count 0) while it waits
 * to be freed, as a merged one would. Everything else merges. */
intptr_t frt__brc_merge_queued(frt_object *o, int maybe_weak)
{
    if (!maybe_weak && atomic_load_explicit(&o->ob_ref_local, memory_order_relaxed) == 1 &&
        atomic_load_explicit(&o->ob_ref_shared, memory_order_acquire) == FRT_REF_QUEUED &&
        !(atomic_load_explicit(&o->ob_flags, memory_order_relaxed) &
          (FRT_OF_MAYBE_WEAKREF | FRT_OF_DEFER_FREE))) {
        atomic_store_explicit(&o->ob_ref_local, 0, memory_order_relaxed);
        return 0;
    }
    return frt__brc_merge(o, -1);
}

/* Adaptive promotion (hot_adaptive.c) samples a non-owner decref of an
 * owned object when its CAS is lost, which is contention itself and costs
 * nothing until it happens (a countdown there measured 3% of a non-owner
 * pair: the decrement's store has to drain before the CAS may run). A
 * merged object's fetch_sub cannot lose, so every FRT_HOT_SAMPLE-th
 * non-owner decref of a merged object is sampled, with a countdown of the
 * thread's own which the inline decref (frt__decref_nonowner in
 * <frt/object.h>) decrements: one %fs-relative operand with initial-exec
 * TLS. Either sample is taken before the decref, while our reference
 * keeps the object alive; the sampling call does the decref itself. */
#define FRT_HOT_SAMPLE 256
#if defined(__GNUC__)
__thread int frt__hot_countdown __attribute__((tls_model("initial-exec")));
#else
_Thread_local int frt__hot_countdown;
#endif

/* A decref took a merged count from prev: free at zero, misuse below. */
void frt__decref_merged_last(frt_object *o, intptr_t prev)
{
    if (prev == (FRT_REF_SHARED_ONE | FRT_REF_MERGED))
        frt__dealloc(o);
    else if (prev < (FRT_REF_SHARED_ONE | FRT_REF_MERGED))
        frt__misuse(o, "decref below zero");
}

/* What the inline non-owner decref leaves: a CAS loop that queues the
 * object to its owner or decrements (any state, merged included). */
void frt__decref_shared(frt_object *o)
{
    intptr_t shared = atomic_load_explicit(&o->ob_ref_shared, memory_order_relaxed);
    intptr_t next;
    int queue;
    do {
        /* A shared count of 0 in an owned state means every reference is
         * counted on the owner's side: ours goes to the owner's queue rather
         * than making the count negative. Only the owner (or someone acting
         * for it) may decide that the total is zero, because only it sees
         * the local count without a race: a non-owner that read local == 1
         * and freed would race the owner's plain stores. */
        queue = shared == 0 || shared == FRT_REF_MAYBE_WEAKREF;
        next = queue ? FRT_REF_QUEUED : shared - FRT_REF_SHARED_ONE;
    } while (!atomic_compare_exchange_weak_explicit(&o->ob_ref_shared, &shared, next,
                                                    memory_order_acq_rel, memory_order_relaxed));
    if (queue)
        frt__brc_queue(o, shared == FRT_REF_MAYBE_WEAKREF);
    else if (FRT_UNLIKELY(FRT_REF_STATE(next) == FRT_REF_MERGED)) /* merged while we looped */
        frt__decref_merged_last(o, next + FRT_REF_SHARED_ONE);
}

static void sample(frt_object *o)
{
    frt_tstate *ts = frt__tstate();
    if (ts)
        frt__hot_sample(ts, o);
}

void frt__decref_sampled(frt_object *o)
{
    frt__hot_countdown = FRT_HOT_SAMPLE; /* the decref below takes it to FRT_HOT_SAMPLE - 1 */
    sample(o);
    frt__decref_nonowner(o); /* the countdown just restarted: not sampled again */
}

void frt__decref_contended(frt_object *o)
{
    sample(o);
    frt__decref_shared(o);
}

void frt__merge_zero_local(frt_object *o)
{
    intptr_t shared = atomic_load_explicit(&o->ob_ref_shared, memory_order_acquire);
    if (shared == 0) {
        /* Nobody else ever counted it, and no weakref exists that could be
         * trying to (that would have set MAYBE_WEAKREF): no CAS needed. */
        frt__dealloc(o);
        return;
    }
    /* tid first: a thread that queues the object and then finds tid == 0
     * knows the counts are merged and decrefs instead (gh-119999). */
    atomic_store_explicit(&o->ob_tid, 0, memory_order_relaxed);
    intptr_t next;
    do {
        next = (shared & ~FRT_REF_FLAG_MASK) | FRT_REF_MERGED;
    } while (!atomic_compare_exchange_weak_explicit(&o->ob_ref_shared, &shared, next,
                                                    memory_order_acq_rel, memory_order_acquire));
    if (next == FRT_REF_MERGED)
        frt__dealloc(o);
}

size_t frt_refcount(const frt_object *o)
{
    if (!o)
        return 0;
    FRT_CHECK_LIVE(o, "frt_refcount");
    frt_object *m = (frt_object *)o;
    uint32_t local = atomic_load_explicit(&m->ob_ref_local, memory_order_relaxed);
    if (local == FRT_REF_IMMORTAL)
        return FRT_REF_IMMORTAL;
    intptr_t count;
    if (local >= FRT_REF_HOT)
        count = frt__hot_count(m);
    else
        count = (intptr_t)local + (atomic_load_explicit(&m->ob_ref_shared, memory_order_relaxed) >>
                                   FRT_REF_SHARED_SHIFT);
    return count < 0 ? 0 : (size_t)count;
}

int frt_is_immortal(const frt_object *o)
{
    return o && atomic_load_explicit(&((frt_object *)o)->ob_ref_local, memory_order_relaxed) ==
                    FRT_REF_IMMORTAL;
}

static void make_immortal(frt_object *o)
{
    atomic_store_explicit(&o->ob_ref_local, FRT_REF_IMMORTAL, memory_order_relaxed);
    atomic_store_explicit(&o->ob_tid, 0, memory_order_relaxed);
}

void frt__incref_overflow(frt_object *o)
{
    make_immortal(o); /* the owner's count reached FRT_REF_HOT: never freed from now on */
}

void frt_set_immortal(frt_object *o)
{
    if (!o || frt_is_immortal(o))
        return;
    FRT_CHECK_LIVE(o, "frt_set_immortal");
    uintptr_t tid = atomic_load_explicit(&o->ob_tid, memory_order_relaxed);
    if (tid == frt__thread_id() || tid == 0) {
        /* Nobody else writes the local count of an object we own or that
         * has no owner; in-flight shared decrefs check immortality before
         * they can free it (frt__dealloc, frt__brc_merge). */
        make_immortal(o);
        return;
    }
    /* Another thread owns it and writes its local count without atomics:
     * change it only while that thread is stopped. Rare by design. */
    if (frt_stop_the_world() != 0)
        return;
    frt__hot_demote_stopped(o); /* a hot object gives its index back */
    make_immortal(o);
    frt_start_the_world();
}

/* World stopped: o's owner, if it has one, gives it up, as in
 * frt_make_shared. The collector does this to the garbage it is about to
 * hold and clear: its decrefs then free each object on the spot, where
 * they would otherwise queue it to an owner that may reach no safepoint
 * for a long while (CPython's collector merges unreachable objects' counts
 * for the same reason). Safe with the world stopped: no owner is half-way
 * through a plain store to its local count. With keep_own, the collecting
 * thread keeps its own objects: its decrefs free them on the owner's path,
 * without the merge and the atomics that merged counting would cost (the
 * stop merged every queue, so none of them is waiting on one). The
 * collector asks for that only where no other thread is running to help
 * with its sweep: a helper's drop of an object we own comes back to us
 * through our queue (still freed before the collection returns, but the
 * help is lost). */
void frt__brc_disown_stopped(frt_object *o, int keep_own)
{
    uintptr_t tid = atomic_load_explicit(&o->ob_tid, memory_order_relaxed);
    if (tid != 0 && tid != FRT_TID_HOT && !(keep_own && tid == frt__thread_id()))
        frt__brc_merge(o, 0);
}

int frt_make_shared(frt_object *o)
{
    if (!o)
        return FRT_EINVAL;
    FRT_CHECK_LIVE(o, "frt_make_shared");
    uintptr_t tid = atomic_load_explicit(&o->ob_tid, memory_order_relaxed);
    if (frt_is_immortal(o) || tid == 0 || tid == FRT_TID_HOT)
        return FRT_EALREADY;
    if (tid != frt__thread_id())
        return FRT_ESTATE;
    frt__brc_merge(o, 0);
    return 0;
}

/* Debug builds: the checks in front of every inc/decref. */
static void check(frt_object *o, const char *op)
{
    if (!o)
        frt__fatal(NULL, op);
    if (!frt__tstate())
        frt__misuse(o, "reference counted from a thread that is not attached");
    if (!o->ob_type)
        frt__misuse(o, "use of a freed object");
}

void frt__incref_checked(frt_object *o)
{
    check(o, "frt_incref(NULL)");
    frt__incref_fast(o);
}

void frt__decref_checked(frt_object *o)
{
    check(o, "frt_decref(NULL)");
    uint32_t local = atomic_load_explicit(&o->ob_ref_local, memory_order_relaxed);
    uintptr_t tid = atomic_load_explicit(&o->ob_tid, memory_order_relaxed);
    intptr_t shared = atomic_load_explicit(&o->ob_ref_shared, memory_order_relaxed);
    if (local != FRT_REF_IMMORTAL) {
        if (tid == frt__thread_id() && local == 0)
            frt__misuse(o, "decref below zero");
        if (tid == 0 && FRT_REF_STATE(shared) == FRT_REF_MERGED && (shared >> FRT_REF_SHARED_SHIFT) <= 0)
            frt__misuse(o, "decref below zero");
    }
    frt__decref_fast(o);
}
