/* Weak references and finalizers (Python's weakref.ref and weakref.finalize).
 *
 * A weak reference is an frt object of its own (refcounted, tracked by the
 * collector) that names a target without keeping it alive. When the target
 * dies, on any thread, by a last decref or in a cyclic collection, every
 * weak reference to it is cleared and then each callback runs once. A
 * finalizer runs a function exactly once: when its target dies, when it is
 * called, or at frt_shutdown. docs/api.md has the rules and the order inside
 * a collection. */
#ifndef FRT_WEAKREF_H
#define FRT_WEAKREF_H

#include <frt/config.h>
#include <frt/object.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct frt_weakref frt_weakref;
typedef void (*frt_weakref_cb)(frt_weakref *wr, void *ctx);

/* A new reference to a new weak reference to target (held by the caller),
 * or NULL (bad argument, unattached thread, out of memory). cb may be NULL;
 * it runs after target is cleared, unless wr itself died first or is part
 * of the same cyclic garbage. */
FRT_API frt_weakref *frt_weakref_new(frt_object *target, frt_weakref_cb cb, void *ctx);
/* A new strong reference to the target, or NULL once it is dead (or dying
 * on another thread right now). */
FRT_API frt_object *frt_weakref_get(frt_weakref *wr);
FRT_API int frt_weakref_alive(frt_weakref *wr);
FRT_API size_t frt_weakref_count(const frt_object *target);
/* The weakref as an object, and back (NULL if o is not a weakref). */
FRT_API frt_object *frt_weakref_object(frt_weakref *wr);
FRT_API frt_weakref *frt_weakref_from_object(frt_object *o);

typedef struct frt_finalizer frt_finalizer;
/* Call fn(ctx) once when target dies; the finalizer holds no reference to
 * target. NULL on failure. The handle is the caller's until
 * frt_finalizer_free; the registration lives on without it. */
FRT_API frt_finalizer *frt_finalizer_new(frt_object *target, void (*fn)(void *ctx), void *ctx);
FRT_API int frt_finalizer_call(frt_finalizer *f);   /* run now if alive: 1, else 0 */
FRT_API int frt_finalizer_detach(frt_finalizer *f); /* cancel: 1 if it was alive */
FRT_API int frt_finalizer_alive(const frt_finalizer *f);
FRT_API void frt_finalizer_free(frt_finalizer *f);

#ifdef __cplusplus
}
#endif
#endif
