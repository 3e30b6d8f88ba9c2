/* Shared reference slots: a field that several threads read and replace
 * without a lock (CPython's _Py_XGetRef / _Py_TryIncrefCompare, as C API).
 *
 * frt_ref_load returns a new strong reference (or NULL) even while another
 * thread stores into the slot and drops the last reference to the object
 * that was there: the reader reads the pointer, try-increfs the object and
 * checks that the slot still holds it (else it drops what it took and
 * reads again). The object's memory cannot be reused meanwhile because an
 * object ever stored in a slot is freed only after every attached thread
 * has passed a quiescent state (a safepoint or a blocking section): deferred
 * reclamation, docs/design.md. Every slot operation needs an attached
 * thread outside a blocking section.
 *
 * Stores copy: the slot takes its own reference to the object passed in,
 * and the caller keeps its reference. A slot inside an object is one of the
 * object's references: its traverse reports it with frt_ref_visit, its
 * clear drops it with frt_ref_clear. */
#ifndef FRT_REF_H
#define FRT_REF_H

#include <frt/config.h>
#include <frt/object.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct frt_ref {
    _Atomic(frt_object *) ptr; /* read it only through the functions below */
} frt_ref;

/* A slot holding NULL, for static or zeroed storage. */
#define FRT_REF_INIT {NULL}

/* Set up r (before any other thread can see it) holding o (NULL allowed);
 * the slot takes its own reference. FRT_EINVAL for a NULL r. */
FRT_API int frt_ref_init(frt_ref *r, frt_object *o);

/* A new strong reference to the object in r, or NULL if r is empty (or
 * NULL, or the thread is not attached). Lock-free. */
FRT_API frt_object *frt_ref_load(frt_ref *r);

/* Put o (NULL allowed) in r, taking a reference to it, and drop the
 * reference r held before. 0 or FRT_EINVAL / FRT_ESTATE. */
FRT_API int frt_ref_store(frt_ref *r, frt_object *o);

/* Put o in r (taking a reference) and return what r held: the caller now
 * owns that reference (NULL if r was empty). */
FRT_API frt_object *frt_ref_exchange(frt_ref *r, frt_object *o);

/* If r holds expected (compared by address; NULL allowed), put desired in
 * (taking a reference) and drop r's reference to expected: returns 1.
 * Otherwise returns 0 and changes nothing. FRT_EINVAL / FRT_ESTATE. */
FRT_API int frt_ref_compare_exchange(frt_ref *r, frt_object *expected, frt_object *desired);

/* Empty r, dropping its reference. */
FRT_API void frt_ref_clear(frt_ref *r);

/* A new strong reference to o, or 0 when o's count has reached zero (it
 * is dying on another thread): 1 on success. o's memory must stay valid
 * during the call: the caller read o from an frt_ref or a map (deferred
 * reclamation keeps it), or holds it alive otherwise. A live object owned
 * by another thread that was never stored in a slot, a map or a weak
 * reference may be refused (0): its owner frees it without telling anyone. */
FRT_API int frt_try_incref(frt_object *o);

/* For a container's traverse: report the object in r (if any) to visit.
 * The collector calls traverse with the world stopped, so the slot cannot
 * change under it. */
static inline int frt_ref_visit(frt_ref *r, frt_visit_fn visit, void *arg)
{
    frt_object *o = atomic_load_explicit(&r->ptr, memory_order_relaxed);
    return o ? visit(o, arg) : 0;
}

/* The object in r without a new reference: only where r cannot change
 * (the world is stopped, or every writer of r is the caller). */
static inline frt_object *frt_ref_peek(const frt_ref *r)
{
    return atomic_load_explicit(&((frt_ref *)r)->ptr, memory_order_acquire);
}

#ifdef __cplusplus
}
#endif
#endif
