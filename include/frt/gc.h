/* The cycle collector: Python's gc module for frt objects.
 *
 * Generational (0, 1, 2, plus the permanent generation of frt_gc_freeze),
 * stop-the-world, trial deletion as in CPython; finalizers (PEP 442) run
 * with the world running and may resurrect. docs/api.md has the details and
 * docs/tuning.md maps Python gc habits to frt. */
#ifndef FRT_GC_H
#define FRT_GC_H

#include <frt/config.h>
#include <frt/object.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct frt_gc_info {
    int generation;         /* 0, 1, 2 */
    size_t collected;       /* unreachable objects freed (STOP only) */
    size_t uncollectable;   /* unreachable objects kept: DEBUG_SAVEALL (STOP only) */
    uint64_t pause_ns;      /* world stopped, this collection (STOP only) */
} frt_gc_info;
enum { FRT_GC_START = 0, FRT_GC_STOP = 1 };
typedef void (*frt_gc_callback)(int phase, const frt_gc_info *info, void *ctx);

typedef struct frt_gc_stats {
    uint64_t collections, collected, uncollectable;
    uint64_t pause_ns_total, pause_ns_max;
    uint64_t postponed;     /* addition: runs skipped for lack of work memory */
} frt_gc_stats;

enum {
    FRT_GC_DEBUG_STATS = 1,
    FRT_GC_DEBUG_COLLECTABLE = 2,
    FRT_GC_DEBUG_UNCOLLECTABLE = 4,
    FRT_GC_DEBUG_SAVEALL = 32
};

FRT_API long frt_gc_collect(int generation); /* -1 or 2: full; unreachable objects found */
FRT_API void frt_gc_enable(void);
FRT_API void frt_gc_disable(void);
FRT_API int frt_gc_isenabled(void);
FRT_API int frt_gc_set_threshold(size_t t0, size_t t1, size_t t2); /* t0 == 0: no automatic runs */
FRT_API void frt_gc_get_threshold(size_t out[3]);
FRT_API void frt_gc_get_count(size_t out[3]);
FRT_API void frt_gc_freeze(void);
FRT_API void frt_gc_unfreeze(void);
FRT_API size_t frt_gc_get_freeze_count(void);
FRT_API int frt_gc_callback_add(frt_gc_callback cb, void *ctx);
FRT_API int frt_gc_callback_remove(frt_gc_callback cb, void *ctx);
FRT_API void frt_gc_get_stats(frt_gc_stats out[3]);
FRT_API void frt_gc_set_debug(unsigned flags);
FRT_API unsigned frt_gc_get_debug(void);

FRT_API size_t frt_gc_garbage_count(void);
FRT_API frt_object *frt_gc_garbage_get(size_t i); /* new reference, NULL past the end */
FRT_API void frt_gc_garbage_clear(void);

/* These three return the total found and store up to cap new references. */
FRT_API size_t frt_gc_get_referrers(frt_object *target, frt_object **out, size_t cap);
FRT_API size_t frt_gc_get_referents(frt_object *o, frt_object **out, size_t cap);
FRT_API size_t frt_gc_get_objects(int generation, frt_object **out, size_t cap); /* -1: all */
FRT_API int frt_gc_is_tracked(const frt_object *o);
FRT_API int frt_gc_is_finalized(const frt_object *o);
FRT_API void frt_gc_track(frt_object *o);
FRT_API void frt_gc_untrack(frt_object *o);

#ifdef __cplusplus
}
#endif
#endif
