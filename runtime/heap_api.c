/* frt_heap_get_stats and frt_heap_trim. */
#include "qsbr.h"
#include "runtime.h"

void frt_heap_get_stats(frt_heap_stats *out)
{
    if (!out)
        return;
    size_t blocks, bytes, large, large_bytes;
    frt__heaps_stats(&blocks, &bytes);
    frt__large_stats(&large, &large_bytes);
    size_t arenas = atomic_load(&frt__arena_counters.mapped);
    size_t peak = atomic_load(&frt__arena_counters.peak);
    out->arenas = arenas;
    out->arenas_peak = peak;
    /* What the OS mapped (a large object's header and page rounding
     * included), not what was asked for. */
    out->bytes_mapped = atomic_load(&frt__arena_counters.bytes);
    out->bytes_mapped_peak = atomic_load(&frt__arena_counters.bytes_peak);
    out->bytes_in_use = bytes + large_bytes;
    out->blocks_in_use = blocks + large;
    out->arenas_returned = atomic_load(&frt__arena_counters.returned);
    out->large_objects = large;
    out->hot_objects = atomic_load(&frt__rt.hot_now);
    out->hot_promoted = atomic_load(&frt__rt.hot_promoted);
    out->hot_demoted = atomic_load(&frt__rt.hot_demoted);
    frt__qsbr_stats(&out->reclaim_waiting_bytes, &out->reclaim_waiting_blocks,
                    &out->reclaim_waiting_peak);
}

size_t frt_heap_trim(void)
{
    size_t bytes = 0;
    frt_tstate *ts = frt__tstate();
    frt__qsbr_drain(); /* blocks waiting for a grace period come back first */
    if (ts)
        bytes += frt__heap_trim(ts->heap);
    bytes += frt__heap_trim_orphans();
    bytes += frt__arena_cache_trim(0);
    return bytes;
}
