/* Which objects the collector examines, and when it runs.
 *
 * A type with traverse is a container: its objects are tracked from
 * creation, in generation 0, with their generation-map bit set in the
 * owner's arena. Allocation counting is per thread and added to the shared
 * count in batches, so the fast path pays no atomic; a batch that takes the
 * count over threshold 0 asks this thread for a collection at its next
 * safepoint (which frt_new itself polls). */
#include "gc_internal.h"
#include "../runtime/genmap.h"
#include "../runtime/os.h"

#include <string.h>

#define COUNT_BATCH 32

static void count_flush(frt_tstate *ts)
{
    long c = atomic_fetch_add_explicit(&frt__gc.young_count, ts->gc_delta, memory_order_relaxed) +
             ts->gc_delta;
    ts->gc_delta = 0;
    while (c < 0 && !atomic_compare_exchange_weak(&frt__gc.young_count, &c, 0)) {
    }
    size_t t0 = atomic_load_explicit(&frt__gc.threshold[0], memory_order_relaxed);
    if (!t0 || c <= (long)t0 || !atomic_load_explicit(&frt__gc.enabled, memory_order_relaxed))
        return;
    /* While a collection runs, only a backlog asks: to assist it (sweep.c). */
    if (!atomic_load_explicit(&frt__gc.collecting, memory_order_relaxed) ||
        c > (long)(FRT_GC_BACKLOG * t0))
        frt__tstate_request(ts, FRT_TS_GC);
}

static void track_new(frt_tstate *ts, frt_object *o)
{
    o->ob_gc_bits = FRT_GC_TRACKED;
    o->ob_gen = 0;
    if (!(atomic_load_explicit(&o->ob_flags, memory_order_relaxed) & FRT_OF_LARGE))
        frt__genmap_mark_new(ts->heap, o);
}

static void object_new(frt_object *o)
{
    if (!o->ob_type->traverse)
        return;
    frt_tstate *ts = frt__tstate();
    track_new(ts, o);
    if (++ts->gc_delta >= COUNT_BATCH)
        count_flush(ts);
}

static void object_free(frt_object *o)
{
    if (!(o->ob_gc_bits & FRT_GC_TRACKED))
        return;
    o->ob_gc_bits = 0; /* the map bit may stay: a walk checks the object */
    if (o->ob_gen == FRT_GEN_PERMANENT)
        atomic_fetch_sub_explicit(&frt__gc.freeze_count, 1, memory_order_relaxed);
    /* As CPython, a free only lowers a count that is above zero: frees of
     * objects older than the last run must not postpone the next one. And
     * the collector's own frees (its garbage, freed with the world running)
     * do not count at all: the count restarted from 0 when that garbage was
     * found, and while the collector frees it other threads allocate; if
     * its frees cancelled their allocations the next run would start only
     * once the heap had grown by a whole collection's worth (CPython has no
     * such overlap: its collection holds the GIL). */
    frt_tstate *ts = frt__tstate();
    if (!ts || ts->in_gc_callback ||
        ts->gc_delta + atomic_load_explicit(&frt__gc.young_count, memory_order_relaxed) <= 0)
        return;
    if (--ts->gc_delta <= -COUNT_BATCH)
        count_flush(ts);
}

static void collect_pending(frt_tstate *ts)
{
    /* Only where this thread may stop the world: frt_blocking_begin polls
     * with its depth already raised, and a thread holding a stop must not
     * have objects freed under it. frt_stop_the_world would refuse, and the
     * run would go on with the world running. The request comes back with
     * this thread's next count flush. */
    if (ts->blocking_depth || ts->stw_depth)
        return;
    if (ts->gc_delta)
        count_flush(ts);
    if (ts->in_gc_callback || !atomic_load(&frt__gc.enabled))
        return;
    size_t t[3];
    frt_gc_get_threshold(t);
    if (t[0] == 0)
        return;
    if (atomic_load(&frt__gc.collecting)) {
        if (atomic_load(&frt__gc.young_count) > (long)(FRT_GC_BACKLOG * t[0]))
            frt__gc_sweep_assist(ts);
        return;
    }
    int gen = -1;
    pthread_mutex_lock(&frt__gc.lock);
    size_t counts[3] = {(size_t)(atomic_load(&frt__gc.young_count) > 0 ? atomic_load(&frt__gc.young_count) : 0),
                        frt__gc.gen_count[1], frt__gc.gen_count[2]};
    for (int i = 2; i >= 0; i--) {
        if (counts[i] <= t[i])
            continue;
        /* CPython's guard: a full run waits until the survivors pending
         * exceed a quarter of the long-lived objects, or a heap that grows
         * for a long time pays a quadratic total (gh-114746). */
        if (i == 2 && frt__gc.long_lived_pending < frt__gc.long_lived_total / 4)
            continue;
        gen = i;
        break;
    }
    pthread_mutex_unlock(&frt__gc.lock);
    if (gen >= 0)
        frt__gc_collect_gen(ts, gen, 1, NULL);
}

static void gc_shutdown(void)
{
    frt_tstate *ts = frt__tstate();
    /* The garbage list is the program's, but at shutdown it only keeps
     * cycles alive: drop it, then collect until nothing more is found. */
    atomic_fetch_and(&frt__gc.debug, ~(unsigned)FRT_GC_DEBUG_SAVEALL);
    frt_gc_garbage_clear();
    /* Again while a run finds anything, resurrected objects included: a
     * finalizer that resurrects its object may also have made garbage. */
    for (int i = 0; i < 8; i++) {
        size_t found;
        frt__gc_collect_gen(ts, 2, 0, &found);
        if (!found)
            break;
    }
    /* The callbacks belong to this run (frt_init starts with none): give
     * their array back, or it outlives frt_shutdown. */
    pthread_mutex_lock(&frt__gc.lock);
    gc_callback *cbs = frt__gc.callbacks;
    frt__gc.callbacks = NULL;
    frt__gc.ncallbacks = frt__gc.callbacks_cap = 0;
    pthread_mutex_unlock(&frt__gc.lock);
    frt__sys_free(cbs);
}

int frt_gc_is_tracked(const frt_object *o)
{
    return o && (o->ob_gc_bits & FRT_GC_TRACKED) != 0;
}

int frt_gc_is_finalized(const frt_object *o)
{
    return o && (atomic_load_explicit(&((frt_object *)o)->ob_flags, memory_order_relaxed) &
                 FRT_OF_FINALIZED) != 0;
}

void frt_gc_track(frt_object *o)
{
    if (!o || !o->ob_type || !o->ob_type->traverse || (o->ob_gc_bits & FRT_GC_TRACKED))
        return;
    frt_tstate *ts = frt__tstate();
    if (!ts)
        return;
    frt_arena *a = frt_arena_of(o);
    int large = atomic_load_explicit(&o->ob_flags, memory_order_relaxed) & FRT_OF_LARGE;
    if (large || a->heap == ts->heap) {
        track_new(ts, o);
    } else {
        /* Another thread's arena: only its owner may touch its young
         * lists, so the object goes straight to the oldest generation,
         * which every full collection walks. */
        o->ob_gc_bits = FRT_GC_TRACKED;
        o->ob_gen = 2;
    }
}

void frt_gc_untrack(frt_object *o)
{
    if (!o || !(o->ob_gc_bits & FRT_GC_TRACKED))
        return;
    if (o->ob_gen == FRT_GEN_PERMANENT)
        atomic_fetch_sub_explicit(&frt__gc.freeze_count, 1, memory_order_relaxed);
    o->ob_gc_bits = 0;
}

void frt__gc_install(frt_hooks *hooks, const frt_config *cfg)
{
    pthread_mutex_lock(&frt__gc.lock);
    atomic_store(&frt__gc.enabled, cfg->gc_enabled != 0);
    for (int i = 0; i < 3; i++)
        atomic_store(&frt__gc.threshold[i], cfg->gc_threshold[i]);
    atomic_store(&frt__gc.debug, cfg->gc_debug);
    atomic_store(&frt__gc.young_count, 0);
    atomic_store(&frt__gc.freeze_count, 0);
    atomic_store(&frt__gc.collecting, 0);
    for (int i = 0; i < 3; i++) {
        frt__gc.gen_count[i] = frt__gc.gen_size[i] = 0;
        memset(&frt__gc.stats[i], 0, sizeof frt__gc.stats[i]);
    }
    frt__gc.long_lived_total = frt__gc.long_lived_pending = 0;
    frt__gc.ncallbacks = 0;
    pthread_mutex_unlock(&frt__gc.lock);
    hooks->object_new = object_new;
    hooks->object_free = object_free;
    hooks->collect_pending = collect_pending;
    hooks->shutdown = gc_shutdown;
    hooks->fork = frt__gc_fork;
    frt__gc_hot_follow(NULL);
}
