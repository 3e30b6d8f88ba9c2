/* Shared reference slots (include/frt/ref.h) and the public try-incref.
 *
 * A stored object is "published": its block goes through deferred
 * reclamation when it dies (FRT_OF_DEFER_FREE, runtime/qsbr.c), and its
 * shared word is never exactly 0 again (try_incref.h), so a reader on any
 * thread may try-incref it. Both happen before the object is in the slot. */
#include <frt/errors.h>
#include <frt/ref.h>

#include "debug.h"
#include "object_internal.h"
#include "try_incref.h"
#include "tstate.h"

void frt__ref_publish(frt_object *o)
{
    frt_incref(o);
    if (atomic_load_explicit(&o->ob_ref_local, memory_order_relaxed) == FRT_REF_IMMORTAL)
        return; /* never freed */
    if (!(atomic_load_explicit(&o->ob_flags, memory_order_relaxed) & FRT_OF_DEFER_FREE))
        atomic_fetch_or_explicit(&o->ob_flags, FRT_OF_DEFER_FREE, memory_order_seq_cst);
    frt__set_maybe_weakref(o);
}

/* Slot operations need an attached thread: its quiescent states are what
 * keep a loaded pointer's memory valid. */
static int usable(const frt_ref *r, const char *fn)
{
    if (FRT_UNLIKELY(!r))
        return FRT_EINVAL;
    if (FRT_UNLIKELY(!frt__tstate())) {
        FRT_MISUSE(NULL, fn);
        return FRT_ESTATE;
    }
    return 0;
}

int frt_ref_init(frt_ref *r, frt_object *o)
{
    if (!r)
        return FRT_EINVAL;
    FRT_CHECK_LIVE(o, "frt_ref_init");
    if (o)
        frt__ref_publish(o);
    atomic_init(&r->ptr, o);
    return 0;
}

int frt_try_incref(frt_object *o)
{
    return o ? frt__try_incref(o) : 0;
}

frt_object *frt_ref_load(frt_ref *r)
{
    if (usable(r, "frt_ref_load from a thread that is not attached"))
        return NULL;
    for (;;) {
        frt_object *o = atomic_load_explicit(&r->ptr, memory_order_acquire);
        if (!o)
            return NULL;
        if (frt__try_incref(o)) {
            if (FRT_LIKELY(atomic_load_explicit(&r->ptr, memory_order_acquire) == o))
                return o;
            frt_decref(o); /* replaced meanwhile: what we took may be another object */
        }
        /* Refused: o is dying, so the slot no longer holds it; read again. */
    }
}

frt_object *frt_ref_exchange(frt_ref *r, frt_object *o)
{
    if (usable(r, "frt_ref_exchange from a thread that is not attached"))
        return NULL;
    FRT_CHECK_LIVE(o, "frt_ref_exchange");
    if (o)
        frt__ref_publish(o);
    return atomic_exchange_explicit(&r->ptr, o, memory_order_acq_rel);
}

int frt_ref_store(frt_ref *r, frt_object *o)
{
    int rc = usable(r, "frt_ref_store from a thread that is not attached");
    if (rc)
        return rc;
    frt_xdecref(frt_ref_exchange(r, o));
    return 0;
}

void frt_ref_clear(frt_ref *r)
{
    frt_ref_store(r, NULL);
}

int frt_ref_compare_exchange(frt_ref *r, frt_object *expected, frt_object *desired)
{
    int rc = usable(r, "frt_ref_compare_exchange from a thread that is not attached");
    if (rc)
        return rc;
    FRT_CHECK_LIVE(desired, "frt_ref_compare_exchange");
    if (desired)
        frt__ref_publish(desired);
    frt_object *seen = expected;
    if (atomic_compare_exchange_strong_explicit(&r->ptr, &seen, desired, memory_order_acq_rel,
                                                memory_order_acquire)) {
        frt_xdecref(expected);
        return 1;
    }
    frt_xdecref(desired); /* the reference publish took; the caller still holds one */
    return 0;
}
