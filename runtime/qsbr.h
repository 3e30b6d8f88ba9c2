/* Deferred reclamation (QSBR) for blocks that lock-free readers may still
 * be looking at: the memory of an object that was ever stored in an frt_ref
 * slot (or a map) stays header-shaped, not reused and not unmapped, until
 * every attached thread has passed a quiescent state.
 *
 * This file and qsbr.c are the only place that talks to liburcu (its QSBR
 * flavour): the quiescent states are frt's safepoints, the offline periods
 * are blocking sections and parking for a stop-the-world, and a detached
 * thread is unregistered (in a forked child: none of that, see qsbr.c's
 * fork section). Freed blocks wait in a per-thread batch that goes
 * to call_rcu when full (or when the thread blocks or detaches); liburcu's
 * call_rcu thread frees them after a grace period. docs/design.md,
 * "Deferred reclamation", has the argument and the bound. */
#ifndef FRT_RUNTIME_QSBR_H
#define FRT_RUNTIME_QSBR_H

#include <stddef.h>

/* Thread registration: at attach and at detach (flushes the thread's batch). */
void frt__qsbr_register(void);
void frt__qsbr_unregister(void);

/* A quiescent state: the thread holds no pointer it read from a slot. */
void frt__qsbr_quiescent(void);

/* Around a blocking section or a park: the thread reads no slot meanwhile,
 * so grace periods do not wait for it. Offline flushes the batch. */
void frt__qsbr_offline(void);
void frt__qsbr_online(void);
/* Hand this thread's batch over, before the thread lets a stop proceed
 * without it (parked or blocked): what the stopper does with the world
 * stopped, a fork included, must be able to reach every batch. */
void frt__qsbr_flush(void);

/* Free an object's block (large: mapped alone) after a grace period. */
void frt__qsbr_defer_free(void *block, size_t bytes, int large);

/* Work that must wait for a grace period and then run on an attached
 * thread (it drops references): fn(w) runs at some attached thread's
 * frt_safepoint (or frt_heap_trim) after every thread that was online when
 * it was deferred has passed a quiescent state. */
typedef struct frt_qsbr_later {
    struct frt_qsbr_later *next;
    void (*fn)(struct frt_qsbr_later *w);
} frt_qsbr_later;
void frt__qsbr_defer_call(frt_qsbr_later *w, void (*fn)(frt_qsbr_later *w));
void frt__qsbr_run_ready(void);

/* ThreadSanitizer cannot see liburcu's synchronisation: qsbr.c states the
 * happens-before a grace period gives (see there). */
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define FRT_QSBR_TSAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define FRT_QSBR_TSAN 1
#endif
#if FRT_QSBR_TSAN
#include <sanitizer/tsan_interface.h>
#endif

/* More waiting than frt_config.reclaim_limit allows. */
int frt__qsbr_over_limit(void);

/* Wait until everything deferred so far is freed. The caller must be
 * offline (in a blocking section) or unregistered; in a forked child, the
 * last thread, detached (frt_shutdown). */
void frt__qsbr_barrier(void);

/* From a clean point of an attached thread (not blocking, not in a stop,
 * a dealloc loop or a collector callback; else nothing): wait in a
 * blocking section until everything deferred so far is freed, then run the
 * deferred calls that are ready. */
void frt__qsbr_drain(void);

/* Forked child only (runtime/fork.c): liburcu is not called there, and a
 * stop-the-world is the grace period. The stopper calls world_stopped once
 * every other thread is stopped and world_started after restarting them
 * (the outermost stop only); elsewhere they do nothing. */
void frt__qsbr_world_stopped(void);
void frt__qsbr_world_started(void);

/* Waiting for a grace period now: bytes, blocks, and the most bytes ever. */
void frt__qsbr_stats(size_t *bytes, size_t *blocks, size_t *peak);

#endif
