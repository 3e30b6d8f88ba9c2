/* The switches and counters of the gc module. */
#include "gc_internal.h"
#include "../runtime/os.h"

#include <string.h>

/* Adaptive hot objects die only at collections: they pause whenever no
 * automatic collection will come (brc/hot_adaptive.c). */
void frt__gc_hot_follow(frt_tstate *ts)
{
    frt__hot_adaptive_pause(ts, !atomic_load(&frt__gc.enabled) || !atomic_load(&frt__gc.threshold[0]));
}

void frt_gc_enable(void)
{
    atomic_store(&frt__gc.enabled, 1);
    frt__gc_hot_follow(NULL);
}

void frt_gc_disable(void)
{
    atomic_store(&frt__gc.enabled, 0);
    frt__gc_hot_follow(frt__tstate());
}

int frt_gc_isenabled(void)
{
    return atomic_load(&frt__gc.enabled);
}

int frt_gc_set_threshold(size_t t0, size_t t1, size_t t2)
{
    atomic_store(&frt__gc.threshold[0], t0);
    atomic_store(&frt__gc.threshold[1], t1);
    atomic_store(&frt__gc.threshold[2], t2);
    frt__gc_hot_follow(frt__tstate());
    return 0;
}

void frt_gc_get_threshold(size_t out[3])
{
    if (!out)
        return;
    for (int i = 0; i < 3; i++)
        out[i] = atomic_load(&frt__gc.threshold[i]);
}

void frt_gc_get_count(size_t out[3])
{
    if (!out)
        return;
    frt_tstate *ts = frt__tstate();
    long young = atomic_load(&frt__gc.young_count) + (ts ? ts->gc_delta : 0);
    pthread_mutex_lock(&frt__gc.lock);
    out[0] = young > 0 ? (size_t)young : 0;
    out[1] = frt__gc.gen_count[1];
    out[2] = frt__gc.gen_count[2];
    pthread_mutex_unlock(&frt__gc.lock);
}

void frt_gc_set_debug(unsigned flags)
{
    atomic_store(&frt__gc.debug, flags);
}

unsigned frt_gc_get_debug(void)
{
    return atomic_load(&frt__gc.debug);
}

void frt_gc_get_stats(frt_gc_stats out[3])
{
    if (!out)
        return;
    pthread_mutex_lock(&frt__gc.lock);
    for (int i = 0; i < 3; i++)
        out[i] = frt__gc.stats[i];
    pthread_mutex_unlock(&frt__gc.lock);
}

int frt_gc_callback_add(frt_gc_callback cb, void *ctx)
{
    if (!cb)
        return FRT_EINVAL;
    pthread_mutex_lock(&frt__gc.lock);
    if (frt__gc.ncallbacks == frt__gc.callbacks_cap) {
        size_t cap = frt__gc.callbacks_cap ? frt__gc.callbacks_cap * 2 : 8;
        gc_callback *c = frt__sys_realloc(frt__gc.callbacks, cap * sizeof *c);
        if (!c) {
            pthread_mutex_unlock(&frt__gc.lock);
            return FRT_ENOMEM;
        }
        frt__gc.callbacks = c;
        frt__gc.callbacks_cap = cap;
    }
    frt__gc.callbacks[frt__gc.ncallbacks++] = (gc_callback){cb, ctx};
    pthread_mutex_unlock(&frt__gc.lock);
    return 0;
}

int frt_gc_callback_remove(frt_gc_callback cb, void *ctx)
{
    int rc = FRT_EINVAL;
    pthread_mutex_lock(&frt__gc.lock);
    for (size_t i = 0; i < frt__gc.ncallbacks; i++) {
        if (frt__gc.callbacks[i].cb == cb && frt__gc.callbacks[i].ctx == ctx) {
            memmove(&frt__gc.callbacks[i], &frt__gc.callbacks[i + 1],
                    (frt__gc.ncallbacks - i - 1) * sizeof *frt__gc.callbacks);
            frt__gc.ncallbacks--;
            rc = 0;
            break;
        }
    }
    pthread_mutex_unlock(&frt__gc.lock);
    return rc;
}
