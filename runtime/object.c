/* Creating objects and freeing them when their last reference goes. */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "debug.h"
#include "object_internal.h"
#include "qsbr.h"
#include "runtime.h"
#include "try_incref.h"
#include "weakref.h"

_Static_assert(sizeof(frt_object) == 32, "the header is 32 bytes (docs/design.md)");

/* The bytes 8-15 of the header (ob_ref_local, ob_flags, ob_mutex,
 * ob_gc_bits, ob_gen) as one word, so that frt_new writes the header with
 * four word stores where field by field it takes eight. A block popped
 * from our heap is ours alone until frt_new returns it, except for
 * ob_tid: a detaching thread reads every large object's (brc/
 * merge_queue.c), so that one is stored atomically; the rest plainly. */
typedef struct header_mid {
    uint32_t ref_local;
    uint8_t flags, mutex, gc_bits, gen;
} header_mid;
_Static_assert(sizeof(header_mid) == 8 && offsetof(frt_object, ob_ref_local) == 8 &&
                   offsetof(frt_object, ob_flags) == 12 && offsetof(frt_object, ob_mutex) == 13 &&
                   offsetof(frt_object, ob_gc_bits) == 14 && offsetof(frt_object, ob_gen) == 15 &&
                   offsetof(frt_object, ob_ref_shared) == 16 && offsetof(frt_object, ob_type) == 24,
               "header_mid matches frt_object");

/* Bodies up to this many bytes are zeroed inline (frt_new's fast path). */
#define INLINE_ZERO_MAX 256

/* A small object's body, zeroed. Every class size is a multiple of 16, so
 * zeroing up to the size rounded up to 16 stays inside the block; up to
 * INLINE_ZERO_MAX bytes overlapping fixed-size stores do it (memset's own
 * trick) with no call and no loop. */
static inline void zero_body(frt_object *o, size_t size)
{
    char *b = (char *)o + sizeof(frt_object);
    size_t n = ((size + 15) & ~(size_t)15) - sizeof(frt_object);
    if (n == 0)
        return;
    if (n <= 32) {
        memset(b, 0, 16);
        memset(b + n - 16, 0, 16);
    } else if (n <= 64) {
        memset(b, 0, 32);
        memset(b + n - 32, 0, 32);
    } else if (n <= 128) {
        memset(b, 0, 64);
        memset(b + n - 64, 0, 64);
    } else if (n <= INLINE_ZERO_MAX) {
        memset(b, 0, 64);
        memset(b + 64, 0, 64);
        memset(b + n - 128, 0, 64);
        memset(b + n - 64, 0, 64);
    } else {
        memset(b, 0, n);
    }
}

/* Out of line and returning o, so that frt_new's fast path reaches it by
 * a jump and saves no registers for it. */
__attribute__((noinline)) static frt_object *track_new(frt_object *o)
{
    if (frt__rt.hooks.object_new)
        frt__rt.hooks.object_new(o);
    return o;
}

/* Owner 0: shared from birth (frt_new_shared, the atomic-only build, a
 * detaching thread), owned by nobody. */
static inline frt_object *object_init(frt_object *o, const frt_type *type, uintptr_t owner,
                                      uint8_t flags)
{
    header_mid mid = {owner ? 1 : 0, flags, 0, 0, 0};
    intptr_t shared = owner ? 0 : FRT_REF_SHARED_ONE | FRT_REF_MERGED;
    uint64_t w;
    memcpy(&w, &mid, sizeof w);
    atomic_store_explicit(&o->ob_tid, owner, memory_order_relaxed);
    memcpy((char *)o + 8, &w, sizeof w);
    memcpy((char *)o + 16, &shared, sizeof shared);
    memcpy((char *)o + 24, &type, sizeof type);
    if (type->traverse)
        return track_new(o);
    return o;
}

/* shared: made shared from birth (frt_new_shared), owned by nobody. */
__attribute__((noinline)) static frt_object *new_object(const frt_type *type, size_t extra, int shared)
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
        if (FRT_LIKELY(o))
            zero_body(o, size);
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
    return object_init(o, type, owner, flags);
}

frt_object *frt_new_var(const frt_type *type, size_t extra)
{
    return new_object(type, extra, 0);
}

/* frt_new's fast path found the current page empty: refill it and finish
 * here, with everything new_object would check again already checked.
 * Out of line, so that the fast path stays free of register saves. */
__attribute__((noinline)) static frt_object *new_refill(frt_tstate *ts, const frt_type *type,
                                                        uintptr_t owner)
{
    size_t size = type->size;
    frt_object *o = frt__heap_alloc_slow(ts->heap, frt_size_class(size));
    if (FRT_UNLIKELY(!o))
        return new_object(type, 0, 0); /* sets errno */
    zero_body(o, size);
    return object_init(o, type, owner, 0);
}

/* The common case with nothing to check twice: an attached owner with no
 * pending safepoint work, a small size, a block ready on the current page.
 * Anything else (misuse included) takes new_object's general path. */
frt_object *frt_new(const frt_type *type)
{
    frt_tstate *ts = frt__tstate();
    if (FRT_LIKELY(ts != NULL && type != NULL)) {
        size_t size = type->size;
        uintptr_t owner = FRT_RC_ATOMIC_ONLY ? 0 : ts->owner_id;
        /* Unsigned: one compare refuses sizes below the header too. */
        if (FRT_LIKELY(size - sizeof(frt_object) <= INLINE_ZERO_MAX) &&
            FRT_LIKELY(owner != 0 || FRT_RC_ATOMIC_ONLY) &&
            FRT_LIKELY(!(atomic_load_explicit(&ts->word, memory_order_relaxed) & FRT_TS_PENDING))) {
            frt_object *o = frt__heap_pop(ts->heap, frt_size_class(size));
            if (FRT_UNLIKELY(o == NULL))
                return new_refill(ts, type, owner);
            zero_body(o, size);
            return object_init(o, type, owner, 0);
        }
    }
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

#if !FRT_DEBUG
/* No flags, untracked, not immortal. ob_flags and ob_gc_bits are tested in
 * one load of the header's bytes 12-15 (atomic, as ob_flags is); not one
 * of bytes 8-15: the decref that got here has just stored ob_ref_local,
 * and a load wider than that store waits for it to reach the cache (no
 * store forwarding: bulk frees of 32-byte objects took 7 ns, not 5). */
static inline int header_trivial(const frt_object *o)
{
    typedef uint32_t __attribute__((may_alias)) word;
    header_mid m = {0, UINT8_MAX, 0, UINT8_MAX, 0};
    uint64_t mask;
    memcpy(&mask, &m, sizeof mask);
    uint32_t w = __atomic_load_n((const word *)((const char *)o + offsetof(frt_object, ob_flags)),
                                 __ATOMIC_RELAXED);
    return (w & (uint32_t)(mask >> 32)) == 0 &&
           atomic_load_explicit(&o->ob_ref_local, memory_order_relaxed) != FRT_REF_IMMORTAL;
}
#endif

__attribute__((noinline)) static void dealloc_checked(frt_tstate *ts, frt_object *o)
{
    if (FRT_UNLIKELY(atomic_load_explicit(&o->ob_ref_local, memory_order_relaxed) == FRT_REF_IMMORTAL))
        return; /* made immortal while a decref was in flight */
    if (FRT_UNLIKELY(!o->ob_type)) {
        frt__misuse(o, "last reference dropped on a freed object");
        return;
    }
#if FRT_DEBUG
    if (frt_mutex_is_locked(&o->ob_mutex))
        frt__misuse(o, "object freed while its mutex is locked (a critical section without a reference?)");
#endif
    dealloc_general(ts, o);
}

/* A trivial object (no finalize, no destroy, no flags: not large, no
 * weakref, no finalizer; untracked; not immortal) runs no code when freed:
 * free its block here, without the loop. Debug builds poison it there.
 * Every test of dealloc_checked is here too, in one chain, and adaptive
 * promotions that wait must hear of every free (dealloc_one). */
static inline int free_trivial(frt_tstate *ts, frt_object *o)
{
#if !FRT_DEBUG
    const frt_type *t = o->ob_type;
    if (FRT_LIKELY(ts != NULL && t != NULL) && !((uintptr_t)t->finalize | (uintptr_t)t->destroy) &&
        header_trivial(o) && !atomic_load_explicit(&frt__hot_waiting, memory_order_acquire)) {
        o->ob_type = NULL;
        frt__block_free(ts->heap, o);
        return 1;
    }
#else
    (void)ts;
    (void)o;
#endif
    return 0;
}

int frt__dealloc_trivial(frt_object *o)
{
    return free_trivial(frt__tstate(), o);
}

void frt__dealloc(frt_object *o)
{
    frt_tstate *ts = frt__tstate();
    if (!free_trivial(ts, o))
        dealloc_checked(ts, o);
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
    if (chain && !ts->dealloc_pending) {
        /* The usual case (no dealloc loop running): the chain becomes the
         * pending list as it is. Walking it to its tail first was a chase
         * through cold objects that cost 5% of a 2-thread `cycles` run. */
        ts->dealloc_pending = chain;
    } else if (chain) {
        frt_object *last = chain;
        for (frt_object *n; (n = (frt_object *)atomic_load_explicit(&last->ob_tid, memory_order_relaxed));)
            last = n;
        atomic_store_explicit(&last->ob_tid, (uintptr_t)ts->dealloc_pending, memory_order_relaxed);
        ts->dealloc_pending = chain;
    }
    dealloc_general(ts, first); /* never the trivial path: the loop must drain the chain */
}
