/* The collector's part of weak references, in CPython's order (main branch,
 * gh-136189). With the world stopped, once the unreachable set is known:
 *   1. every weakref that is itself garbage is cleared: its callback must
 *      never run, since it could see objects already cleared;
 *   2. weakrefs WITH a callback to garbage are cleared, and those that are
 *      not garbage themselves are kept (with a reference) to be called once
 *      the world runs again, before any finalizer.
 * Weakrefs without a callback stay valid through the finalizers, so one to
 * an object that a finalizer resurrects still works. After the
 * resurrection check, with the world stopped again:
 *   3. every weakref to what is still garbage is cleared without callback,
 *      including those finalizers or callbacks created meanwhile.
 * Unreachable objects carry FRT_GC_UNREACHABLE from before step 1 to the
 * end of the collection, which is how step 2 tells garbage weakrefs. */
#include "gc_internal.h"
#include "../runtime/weakref.h"

static int not_garbage(frt_weakref *wr, void *arg)
{
    (void)arg;
    return !(frt_weakref_object(wr)->ob_gc_bits & FRT_GC_UNREACHABLE);
}

int frt__gc_weakrefs_take_callbacks(frt_object **u, size_t n, frt_weakref **calls)
{
    int weakly_referenced = 0;
    for (size_t i = 0; i < n; i++)
        if (frt__is_weakref(u[i]))
            frt__weakref_unregister(frt_weakref_from_object(u[i]));
    for (size_t i = 0; i < n; i++) {
        if (!(atomic_load_explicit(&u[i]->ob_flags, memory_order_relaxed) & FRT_OF_MAYBE_WEAKREF))
            continue;
        weakly_referenced = 1;
        frt__weakrefs_take_callbacks(u[i], not_garbage, NULL, calls);
    }
    return weakly_referenced;
}

void frt__gc_weakrefs_clear_rest(frt_object **u, size_t n, const uint8_t *resurrected)
{
    for (size_t i = 0; i < n; i++)
        if (!resurrected[i] &&
            (atomic_load_explicit(&u[i]->ob_flags, memory_order_relaxed) & FRT_OF_MAYBE_WEAKREF))
            frt__weakrefs_clear_silently(u[i]);
}
