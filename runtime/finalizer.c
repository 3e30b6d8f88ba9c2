/* frt_finalizer: Python's weakref.finalize.
 *
 * A finalizer is a weak reference (a type built on frt_weakref) whose
 * callback runs the user's function. Two references keep it: the user's
 * handle (dropped by frt_finalizer_free) and the registry's, held while it
 * is alive so that it outlives a dropped handle and can be found at
 * frt_shutdown. Whoever flips `alive` from 1 to 0 (the target's death, a
 * call, a detach, shutdown) is the only one to act, so the function runs at
 * most once; it then leaves the registry and drops the registry's
 * reference. The weakref clearing machinery holds its own reference while
 * the callback runs, so the finalizer's memory outlives every path. */
#include <pthread.h>

#include "debug.h"
#include "fork.h"
#include "runtime.h"
#include "weakref.h"

struct frt_finalizer {
    frt_weakref wr; /* first: a finalizer is a weakref to its target */
    void (*fn)(void *ctx);
    void *fn_ctx;
    _Atomic int alive;
    struct frt_finalizer *next, *prev; /* the registry, while alive */
    int registered;                    /* on the registry list (under its lock) */
};

static const frt_type finalizer_type = {"frt.finalizer", sizeof(struct frt_finalizer),
                                        frt__weakref_traverse, NULL, NULL, frt__weakref_destroy};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static frt_finalizer *registry; /* newest first */

void frt__finalizers_fork(int phase)
{
    frt__fork_mutex(&registry_lock, phase);
}

static void registry_push(frt_finalizer *f)
{
    pthread_mutex_lock(&registry_lock);
    f->prev = NULL;
    f->next = registry;
    if (registry)
        registry->prev = f;
    registry = f;
    f->registered = 1;
    pthread_mutex_unlock(&registry_lock);
}

static void registry_remove(frt_finalizer *f)
{
    pthread_mutex_lock(&registry_lock);
    if (f->registered) {
        if (f->prev)
            f->prev->next = f->next;
        else
            registry = f->next;
        if (f->next)
            f->next->prev = f->prev;
        f->next = f->prev = NULL;
        f->registered = 0;
    }
    pthread_mutex_unlock(&registry_lock);
}

/* The one transition out of alive. run: call the function first. */
static int finish(frt_finalizer *f, int run)
{
    int expected = 1;
    if (!atomic_compare_exchange_strong(&f->alive, &expected, 0))
        return 0;
    if (run)
        f->fn(f->fn_ctx);
    registry_remove(f);
    frt__weakref_unregister(&f->wr); /* a call or detach: the target lives on */
    frt_decref(&f->wr.ob);           /* the registry's reference */
    return 1;
}

static void target_died(frt_weakref *wr, void *ctx)
{
    (void)ctx;
    finish((frt_finalizer *)wr, 1);
}

frt_finalizer *frt_finalizer_new(frt_object *target, void (*fn)(void *ctx), void *ctx)
{
    if (!target || !fn || !frt__tstate()) {
        FRT_MISUSE(target, "frt_finalizer_new with a NULL target or function, or from a thread that is not attached");
        return NULL;
    }
    if (!target->ob_type) {
        frt__misuse(target, "frt_finalizer_new of a freed object");
        return NULL;
    }
    frt_finalizer *f = (frt_finalizer *)frt_new(&finalizer_type);
    if (!f)
        return NULL;
    f->fn = fn;
    f->fn_ctx = ctx;
    atomic_store(&f->alive, 1);
    frt_incref(&f->wr.ob); /* the registry's */
    registry_push(f);
    if (frt__weakref_register(&f->wr, target, target_died, NULL) != 0) {
        atomic_store(&f->alive, 0);
        registry_remove(f);
        frt_decref(&f->wr.ob);
        frt_decref(&f->wr.ob);
        return NULL;
    }
    return f;
}

int frt_finalizer_call(frt_finalizer *f)
{
    return f ? finish(f, 1) : 0;
}

int frt_finalizer_detach(frt_finalizer *f)
{
    return f ? finish(f, 0) : 0;
}

int frt_finalizer_alive(const frt_finalizer *f)
{
    return f ? atomic_load(&((frt_finalizer *)f)->alive) : 0;
}

void frt_finalizer_free(frt_finalizer *f)
{
    if (f)
        frt_decref(&f->wr.ob);
}

void frt__finalizers_run_all(void)
{
    /* Newest first, as Python runs weakref.finalize's atexit callbacks.
     * Each run may register or finish others: take one at a time. */
    for (;;) {
        pthread_mutex_lock(&registry_lock);
        frt_finalizer *f = registry;
        if (f)
            frt_incref(&f->wr.ob);
        pthread_mutex_unlock(&registry_lock);
        if (!f)
            return;
        if (!finish(f, 1))
            registry_remove(f); /* finishing elsewhere: do not spin on it */
        frt_decref(&f->wr.ob);
    }
}
