/* The per-thread arena pools that hold every object. */
#ifndef FRT_HEAP_H
#define FRT_HEAP_H

#include <frt/config.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Objects up to this size (header included) come from size-class pages;
 * larger ones are mapped from the OS one by one. */
#define FRT_SMALL_MAX 16384

typedef struct frt_heap_stats {
    size_t arenas, arenas_peak;        /* arenas mapped now, and at most */
    size_t bytes_mapped, bytes_in_use; /* from the OS, and in live blocks */
    size_t blocks_in_use;
    uint64_t arenas_returned;          /* arenas given back to the OS so far */
    /* additions */
    size_t bytes_mapped_peak;
    size_t large_objects;              /* objects above FRT_SMALL_MAX, mapped alone */
    size_t hot_objects;                /* counted per thread now (frt_make_hot, adaptive) */
    uint64_t hot_promoted;             /* made hot since frt_init, by either */
    uint64_t hot_demoted;              /* adaptive ones given back, gone cold */
    /* Deferred reclamation: blocks of objects that were stored in an
     * frt_ref (or a map), freed and waiting for every attached thread to
     * pass a quiescent state before their memory is reused. Counted in
     * bytes_in_use and blocks_in_use meanwhile. Bounded: frt_safepoint
     * waits for a grace period once the bytes pass frt_config.reclaim_limit
     * (docs/design.md, "Deferred reclamation"). */
    size_t reclaim_waiting_bytes, reclaim_waiting_blocks;
    size_t reclaim_waiting_peak;       /* most bytes ever waiting at once */
} frt_heap_stats;

/* Exact for blocks freed by their owner or collected from remote frees;
 * blocks freed by another thread count as in use until their owner next
 * reaches an allocation slow path, a safepoint or frt_heap_trim. */
FRT_API void frt_heap_get_stats(frt_heap_stats *out);

/* Collect the caller's remote frees, return empty arenas to the OS. */
FRT_API size_t frt_heap_trim(void);

#ifdef __cplusplus
}
#endif
#endif
