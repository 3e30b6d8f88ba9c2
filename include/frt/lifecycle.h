/* Runtime lifecycle, threads, safepoints and stop-the-world. */
#ifndef FRT_LIFECYCLE_H
#define FRT_LIFECYCLE_H

#include <frt/config.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Start from frt_config_default, then change fields: frt_init refuses
 * (FRT_EINVAL) a config whose `version` that function did not set, such
 * as one zeroed by hand, where 0 would silently mean "collector off, no
 * thresholds, no arena cache". */
#define FRT_CONFIG_VERSION 0x46525401u /* "FRT" 1 */

typedef struct frt_config {
    size_t gc_threshold[3]; /* default {700, 10, 10} */
    int gc_enabled;         /* default 1 */
    unsigned gc_debug;      /* FRT_GC_DEBUG_* flags, default 0 */
    /* Empty arenas kept mapped for reuse before they go back to the OS
     * (frt_heap_trim returns them at once). Default 4. */
    size_t arena_cache;
    unsigned version;       /* FRT_CONFIG_VERSION, set by frt_config_default */
    /* Bytes of freed objects that may wait for a grace period (deferred
     * reclamation, docs/design.md) before frt_safepoint waits for one in a
     * blocking section. Default 8 MiB. */
    size_t reclaim_limit;
    /* Adaptive hot objects: the runtime counts an object per thread when
     * it sees two threads contend on its shared count, and goes back when
     * they stop (docs/tuning.md). 0 (default) or FRT_HOT_ADAPTIVE_ON: on;
     * FRT_HOT_ADAPTIVE_OFF: only frt_make_hot makes objects hot. */
    int hot_adaptive;
} frt_config;
enum { FRT_HOT_ADAPTIVE_ON = 1, FRT_HOT_ADAPTIVE_OFF = -1 };

FRT_API void frt_config_default(frt_config *cfg);
/* NULL = defaults; attaches the calling thread. FRT_EINVAL for a config
 * that frt_config_default did not fill. */
FRT_API int frt_init(const frt_config *cfg);
FRT_API int frt_shutdown(void);              /* objects still alive (>= 0) or an FRT_E* code */
FRT_API int frt_is_initialized(void);

FRT_API int frt_thread_attach(void);
FRT_API void frt_thread_detach(void);
FRT_API int frt_thread_is_attached(void);

/* Poll: merge this thread's BRC queue, park if a stop-the-world is pending.
 * frt_new polls too, merging the queue only once a batch (62) waits. */
FRT_API void frt_safepoint(void);

/* Around a stretch that touches no frt object (a lock wait, I/O, sleep):
 * a stop-the-world does not wait for the thread, and other threads merge
 * its queued objects on its behalf. Nests. */
FRT_API void frt_blocking_begin(void);
FRT_API void frt_blocking_end(void);

/* Stop every other attached thread at a safepoint, and restart them. The
 * collector and the stress harness use this one mechanism; a program may
 * too (for a consistent snapshot). Requests are serialised; the caller must
 * be attached and must not touch objects another thread may be changing
 * outside of what the stop guarantees. Returns 0 or FRT_ESTATE. */
FRT_API int frt_stop_the_world(void);
FRT_API void frt_start_the_world(void);

/* Stop-the-world timings since frt_init, in nanoseconds. */
typedef struct frt_stw_stats {
    uint64_t stops;               /* completed stops */
    uint64_t pause_ns_total;      /* request to restart, summed */
    uint64_t pause_ns_max;
    uint64_t last_pause_ns;       /* request to restart, last stop */
    uint64_t last_time_to_stop_ns;/* request to every thread parked, last stop */
} frt_stw_stats;
FRT_API void frt_stw_get_stats(frt_stw_stats *out);

#ifdef __cplusplus
}
#endif
#endif
