/* The last phase of a collection: clear() what stays garbage and drop the
 * collector's holds, which frees it. It runs with the world running and is
 * shared with the threads that allocate meanwhile: they assist, as in Go's
 * collector.
 *
 * Why share it: while one collection frees its garbage no other may start,
 * and the other threads' allocations pile up for the next one. A large set
 * costs more per object (it no longer fits the caches), so the next run,
 * grown by what was allocated meanwhile, takes as long again, and so on:
 * two threads allocating cycles (frt-bench-gc, section 3) fell into
 * generation-0 runs of 200,000 to 1,500,000 objects every few hundred ms,
 * with pauses up to 470 ms, where a run of 700 was due, and stayed there
 * (docs/benchmarks.md). A thread whose allocations take the count past
 * FRT_GC_BACKLOG thresholds while a sweep is under way helps with it
 * instead (tracking.c): it allocates again only once the sweep has no work
 * left, so the next run stays small, and the sweep ends sooner.
 *
 * Each object is cleared and dropped by one thread, a chunk of objects at
 * a time: its clear(), then the drop of its hold (as CPython's
 * delete_garbage), and the hold keeps it alive until then, whoever clears
 * the objects that refer to it. So clear() of two garbage objects may run
 * on two threads at once (docs/api.md). Helpers count their frees as the
 * collector's (in_gc_callback), and hand over their drop batches before
 * they leave: the collector waits for them, then merges its own queue, so
 * an explicit frt_gc_collect still returns with its garbage destroyed. */
#include "gc_internal.h"
#include "../runtime/futex.h"

#define SWEEP_CHUNK 64

struct gc_sweep {
    frt_object **u;
    const uint8_t *resurrected;
    size_t n;
    _Atomic size_t next;
};

static void sweep_chunks(gc_sweep *s)
{
    for (;;) {
        size_t i = atomic_fetch_add_explicit(&s->next, SWEEP_CHUNK, memory_order_relaxed);
        if (i >= s->n)
            return;
        size_t end = s->n - i > SWEEP_CHUNK ? i + SWEEP_CHUNK : s->n;
        for (; i < end; i++) {
            frt_object *o = s->u[i];
            if (!s->resurrected[i]) {
                if (o->ob_type->clear)
                    o->ob_type->clear(o);
                /* Reachable from no other thread (no weakref, not
                 * resurrected, not in the list): its bits are ours until
                 * the hold goes. */
                o->ob_gc_bits &= (uint8_t)~FRT_GC_UNREACHABLE;
            }
            frt_decref(o);
        }
    }
}

void frt__gc_sweep(frt_tstate *me, frt_object **u, const uint8_t *resurrected, size_t n)
{
    gc_sweep s = {u, resurrected, n, 0};
    atomic_store(&frt__gc.sweep, &s);
    sweep_chunks(&s);
    /* Unpublished before the helpers are counted (both sequentially
     * consistent, as in frt__gc_sweep_assist): a helper that still found
     * the sweep is counted, one that comes later finds none. */
    atomic_store(&frt__gc.sweep, NULL);
    while (atomic_load(&frt__gc.sweep_helpers)) {
        /* A helper may be parked for another thread's stop. */
        frt__safepoint_park_poll(me);
        frt_cpu_relax();
    }
    frt__brc_merge_queue(me); /* what the helpers' drops queued to us */
}

void frt__gc_sweep_assist(frt_tstate *ts)
{
    /* Inside a destructor, our frees would wait in the dealloc loop, past
     * the sweep's end. */
    if (ts->in_dealloc)
        return;
    atomic_fetch_add(&frt__gc.sweep_helpers, 1);
    gc_sweep *s = atomic_load(&frt__gc.sweep);
    if (s) {
        ts->in_gc_callback++;
        sweep_chunks(s);
        ts->in_gc_callback--;
        frt__brc_flush_drops(ts, 1);
    }
    atomic_fetch_sub(&frt__gc.sweep_helpers, 1);
}
