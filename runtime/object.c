/* Creating objects and freeing them when their last reference goes. */
#include <errno.h>
#include <string.h>

#include "debug.h"
#include "object_internal.h"
#include "qsbr.h"
#include "runtime.h"
#include "try_incref.h"
#include "weakref.h"

_Static_assert(sizeof(frt_object) == 32, "the header is 32 bytes (docs/design.md)");

/* shared: made shared from birth (frt_new_shared), owned by nobody. */
static frt_object *new_object(const frt_type *type, size_t extra, int shared)
{
    frt_tstate *ts = frt__tstate();
    if (FRT_UNLIKELY(!ts)) {
        FRT_MISUSE(NULL, "frt_new from a thread that is not attached");
        errno = EPERM;
        return NULL;
    }
    size_t size = type ? type->size + extra : 0;
    if (FRT_UNLIKELY(!type || type->size < sizeof(frt_object) || size < type->size)) {
        FRT_MISUSE(NULL, "frt_new with a NULL type, a size below the header, or a size that overflows");
        errno = EINVAL;
        return NULL;
    }
    frt__safepoint_poll(ts);

    frt_object *o;
    uint8_t flags = 0;
    if (FRT_LIKELY(size <= FRT_SMALL_MAX)) {
        o = frt__heap_alloc(ts->heap, frt_size_class(size));
        if (FRT_LIKELY(o) && size > sizeof(frt_object)) /* no call for a header-only object */
            memset((char *)o + sizeof(frt_object), 0, size - sizeof(frt_object));
    } else {
        /* A mapping of its own, fresh from the OS and so already zero:
         * writing zeros would commit every page of it. */
        o = frt__large_alloc(size);
        flags = FRT_OF_LARGE;
    }
    if (FRT_UNLIKELY(!o)) {
        errno = ENOMEM;
        return NULL;
    }
    /* The baseline build (FRT_RC_ATOMIC_ONLY) makes every object shared,
     * like Arc; a detaching thread (owner_id 0) may own nothing. */
    uintptr_t owner = FRT_RC_ATOMIC_ONLY || shared ? 0 : ts->owner_id;
    atomic_store_explicit(&o->ob_tid, owner, memory_order_relaxed);
    atomic_store_explicit(&o->ob_ref_local, owner ? 1 : 0, memory_order_relaxed);
    atomic_store_explicit(&o->ob_ref_shared, owner ? 0 : FRT_REF_SHARED_ONE | FRT_REF_MERGED,
                          memory_order_relaxed);
    atomic_store_explicit(&o->ob_flags, flags, memory_order_relaxed);
    atomic_store_explicit(&o->ob_mutex.v, 0, memory_order_relaxed);
    o->ob_gc_bits = 0;
    o->ob_gen = 0;
    o->ob_type = type;
    if (type->traverse && frt__rt.hooks.object_new)
        frt__rt.hooks.object_new(o);
    return o;
}

frt_object *frt_new_var(const frt_type *type, size_t extra)
{
    return new_object(type, extra, 0);
}

frt_object *frt_new(const frt_type *type)
{
    return new_object(type, 0, 0);
}

frt_object *frt_new_shared_var(const frt_type *type, size_t extra)
{
    return new_object(type, extra, 1);
}

frt_object *frt_new_shared(const frt_type *type)
{
    return new_object(type, 0, 1);
}

const frt_type *frt_typeof(const frt_object *o)
{
    if (!o)
        return NULL;
#if FRT_DEBUG
    if (!o->ob_type)
        frt__misuse(o, "frt_typeof of a freed object");
#endif
    return o->ob_type;
}

static void release_block(frt_tstate *ts, frt_object *o)
{
    uint8_t flags = atomic_load_explicit(&o->ob_flags, memory_order_relaxed);
    size_t size = o->ob_type->size;
    o->ob_type = NULL; /* marks the block free for heap walks and misuse checks */
#if FRT_DEBUG
    /* Poison the body so a use after free reads garbage that stands out. */
    if (!(flags & FRT_OF_LARGE) && size > sizeof(frt_object))
        memset((char *)o + sizeof(frt_object), 0xdd,
               frt_page_of(o)->block_size - sizeof(frt_object));
#else
    (void)size;
#endif
    /* Published in a slot: a reader may still be about to try-incref it. */
    if (FRT_UNLIKELY(flags & FRT_OF_DEFER_FREE))
        frt__qsbr_defer_free(o, flags & FRT_OF_LARGE ? size : frt_page_of(o)->block_size,
                             (flags & FRT_OF_LARGE) != 0);
    else if (flags & FRT_OF_LARGE)
        frt__large_free(o);
    else
        frt__block_free(ts ? ts->heap : NULL, o);
}

/* PEP 442 on a plain last decref: finalize runs once, with the object
 * alive again (one reference, ours); if the finalizer stored a reference
 * somewhere the object lives on, else the decref below brings it back
 * here, marked finalized, to be destroyed. */
static int finalize_once(frt_tstate *ts, frt_object *o)
{
    const frt_type *t = o->ob_type;
    if (!t->finalize || (atomic_load_explicit(&o->ob_flags, memory_order_relaxed) & FRT_OF_FINALIZED))
        return 0;
    atomic_fetch_or_explicit(&o->ob_flags, FRT_OF_FINALIZED, memory_order_relaxed);
    uintptr_t owner = ts ? ts->owner_id : 0;
    if (owner) {
        /* Owned by us with a shared word of exactly 0: another thread's
         * weakref_get refuses it (try_incref.h), so no other thread ever
         * sees an object in the middle of its finalizer (as CPython's
         * _PyObject_ResurrectStart). */
        atomic_store_explicit(&o->ob_tid, owner, memory_order_relaxed);
        atomic_store_explicit(&o->ob_ref_local, 1, memory_order_relaxed);
        atomic_store_explicit(&o->ob_ref_shared, 0, memory_order_relaxed);
    } else {
        /* Only a thread that is not attached gets here, by a misuse the
         * debug build reports (frt__dealloc): with no id to own the object
         * by, it comes back merged, with no owner. An attached thread owns
         * by its id until its detach has closed its queue (tstate.c). */
        atomic_store_explicit(&o->ob_tid, 0, memory_order_relaxed);
        atomic_store_explicit(&o->ob_ref_local, 0, memory_order_relaxed);
        atomic_store_explicit(&o->ob_ref_shared, FRT_REF_SHARED_ONE | FRT_REF_MERGED,
                              memory_order_relaxed);
    }
    t->finalize(o);
    /* Resurrected and weakly referenced: let other threads' gets in again. */
    if (atomic_load_explicit(&o->ob_flags, memory_order_relaxed) & FRT_OF_MAYBE_WEAKREF)
        frt__set_maybe_weakref(o);
    if (owner && atomic_load_explicit(&o->ob_tid, memory_order_relaxed) == owner &&
        !(atomic_load_explicit(&o->ob_flags, memory_order_relaxed) & FRT_OF_LARGE) &&
        frt_arena_of(o)->heap != ts->heap) {
        /* Owned objects must live in our heap (or the large list), where
         * detach finds them to give them up: give this one up now. */
        if (frt__rt.hooks.merge(o, -1) == 0)
            frt__dealloc(o);
        return 1;
    }
    frt_decref(o);
    return 1;
}

_Alignas(64) _Atomic unsigned frt__hot_waiting;

static void dealloc_one(frt_tstate *ts, frt_object *o)
{
    if (finalize_once(ts, o))
        return;
    /* Weakrefs are cleared (and their callbacks run) before destroy, while
     * the object is still whole. */
    /* Acquire: pairs with the release of a last weakref leaving the table
     * (weakref.c), so what it did to o happens before o is freed here. */
    if (FRT_UNLIKELY(atomic_load_explicit(&o->ob_flags, memory_order_acquire) & FRT_OF_MAYBE_WEAKREF))
        frt__weakrefs_on_dealloc(o);
    if (o->ob_gc_bits && frt__rt.hooks.object_free)
        frt__rt.hooks.object_free(o);
    if (FRT_UNLIKELY(atomic_load_explicit(&frt__hot_waiting, memory_order_acquire)))
        frt__rt.hooks.hot_forget(o);
    if (o->ob_type->destroy)
        o->ob_type->destroy(o);
    release_block(ts, o);
}

/* Called when the count reaches zero. destroy() drops references, which can
 * bring more counts to zero: those wait on a per-thread list and the
 * outermost call frees them in a loop, so freeing a chain of 10^7 objects
 * needs no stack (CPython needs its trashcan for the same thing). A dead
 * object's ob_tid is free to serve as the list link. Out of line, so that
 * the trivial path in frt__dealloc saves no registers for it. */
__attribute__((noinline)) static void dealloc_general(frt_tstate *ts, frt_object *o)
{
    if (!ts) {
        FRT_MISUSE(o, "last reference dropped by a thread that is not attached");
        dealloc_one(NULL, o);
        return;
    }
    if (ts->in_dealloc) {
        atomic_store_explicit(&o->ob_tid, (uintptr_t)ts->dealloc_pending, memory_order_relaxed);
        ts->dealloc_pending = o;
        return;
    }
    ts->in_dealloc = 1;
    for (;;) {
        dealloc_one(ts, o);
        /* A chain of a million frees (or a collector freeing its garbage)
         * must not hold a stop of the world up until it ends. Between two
         * objects nothing is half done: the pending ones have count 0,
         * which the collector skips. */
        if ((++ts->freed & 63) == 0)
            frt__safepoint_park_poll(ts);
        o = ts->dealloc_pending;
        if (!o)
            break;
        ts->dealloc_pending = (frt_object *)atomic_load_explicit(&o->ob_tid, memory_order_relaxed);
    }
    ts->in_dealloc = 0;
}

void frt__dealloc(frt_object *o)
{
    if (FRT_UNLIKELY(atomic_load_explicit(&o->ob_ref_local, memory_order_relaxed) == FRT_REF_IMMORTAL))
        return; /* made immortal while a decref was in flight */
    const frt_type *t = o->ob_type;
    if (FRT_UNLIKELY(!t)) {
        frt__misuse(o, "last reference dropped on a freed object");
        return;
    }
#if FRT_DEBUG
    if (frt_mutex_is_locked(&o->ob_mutex))
        frt__misuse(o, "object freed while its mutex is locked (a critical section without a reference?)");
#endif
    frt_tstate *ts = frt__tstate();
#if !FRT_DEBUG
    /* A trivial object (no finalize, no destroy, no flags: not large, no
     * weakref, no finalizer; untracked) runs no code when freed: free its
     * block here, without the loop. Debug builds poison it there. */
    if (FRT_LIKELY(ts != NULL) && !t->finalize && !t->destroy && !o->ob_gc_bits &&
        !atomic_load_explicit(&o->ob_flags, memory_order_relaxed) &&
        /* adaptive promotions that wait must hear of it (dealloc_one) */
        !atomic_load_explicit(&frt__hot_waiting, memory_order_acquire)) {
        o->ob_type = NULL;
        frt__block_free(ts->heap, o);
        return;
    }
#endif
    dealloc_general(ts, o);
}

/* A chain of dead objects linked through ob_tid (a merge's or a vanished
 * thread's): they join this thread's pending list, so that wherever the
 * loop parks, every one of them is reachable from a thread state and a
 * fork at that moment loses none (runtime/fork.c takes the list over). */
void frt__dealloc_chain(frt_object *chain)
{
    if (!chain)
        return;
    frt_tstate *ts = frt__tstate();
    if (!ts) {
        while (chain) {
            frt_object *next = (frt_object *)atomic_load_explicit(&chain->ob_tid, memory_order_relaxed);
            frt__dealloc(chain);
            chain = next;
        }
        return;
    }
    frt_object *first = chain;
    chain = (frt_object *)atomic_load_explicit(&first->ob_tid, memory_order_relaxed);
    if (chain) {
        frt_object *last = chain;
        for (frt_object *n; (n = (frt_object *)atomic_load_explicit(&last->ob_tid, memory_order_relaxed));)
            last = n;
        atomic_store_explicit(&last->ob_tid, (uintptr_t)ts->dealloc_pending, memory_order_relaxed);
        ts->dealloc_pending = chain;
    }
    dealloc_general(ts, first); /* never the trivial path: the loop must drain the chain */
}
