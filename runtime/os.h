/* The runtime's only contact with the OS for memory and time, and the
 * fault-injection hook that tests use to make the k-th request fail. */
#ifndef FRT_RUNTIME_OS_H
#define FRT_RUNTIME_OS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <frt/config.h>

/* Map size bytes aligned to align (a power of two >= the OS page). NULL on
 * failure. Counted by the FRT_FAULT_MAP hook. */
void *frt__os_map(size_t size, size_t align);
void frt__os_unmap(void *p, size_t size);
/* Tell the OS the range is unused (contents may be lost). */
void frt__os_discard(void *p, size_t size);
/* Ask for huge pages behind a mapping read at random (fewer TLB misses);
 * the OS may decline. */
void frt__os_prefer_huge(void *p, size_t size);

/* Zeroed memory for the runtime's own structures (thread states, heaps,
 * collector buffers). Counted by the FRT_FAULT_ALLOC hook. */
void *frt__sys_calloc(size_t n, size_t size);
/* The same, counted as a request of another FRT_FAULT_* kind. */
void *frt__sys_calloc_as(int kind, size_t n, size_t size);
void *frt__sys_realloc(void *p, size_t size);
void frt__sys_free(void *p);
/* The thread-exit key (frt_init). Counted by the FRT_FAULT_ALLOC hook:
 * libc may refuse one (EAGAIN) as it may refuse memory. 0 or an errno. */
int frt__sys_key_create(pthread_key_t *key, void (*destructor)(void *));

uint64_t frt__now_ns(void);

/* Fault injection (tests only). kind: which requests to count:
 *   FRT_FAULT_MAP    OS mappings (arenas, large objects): frt__os_map
 *   FRT_FAULT_ALLOC  the runtime's own calloc/realloc (thread states, heaps,
 *                    weakref buckets, the garbage list, gc callbacks, the
 *                    collector's work set and mark stack) and the exit key
 *   FRT_FAULT_NODE   BRC queue memory: one request per queued object and
 *                    one per batch chunk allocated (brc/drop_batch.c); a
 *                    refused one makes the dropper stop the world and merge
 * The n-th request from now (1 = the next one) fails, and so does every
 * later one when sticky is set. n = 0 disarms. A fault may be armed before
 * frt_init (its own requests count); a successful frt_shutdown disarms
 * every kind. */
enum { FRT_FAULT_MAP = 0, FRT_FAULT_ALLOC = 1, FRT_FAULT_NODE = 2, FRT_FAULT_KINDS = 3 };
FRT_API void frt_test_fault_set(int kind, long n, int sticky);
/* Requests of that kind seen since frt_init (successful or not), those of
 * the last frt_shutdown included until the next frt_init. Node requests,
 * which every queued decref makes, are counted only once
 * frt_test_fault_set has named FRT_FAULT_NODE (n = 0 included), until the
 * next frt_shutdown: a global counter on that path would cost every
 * handoff workload a contended atomic. */
FRT_API long frt_test_fault_count(int kind);
/* Blocks the runtime allocated for itself (frt__sys_calloc/realloc) and has
 * not freed: 0 after frt_shutdown, or the runtime keeps memory past it. */
FRT_API long frt_test_sys_live(void);
/* 1 when this request must fail; counts it. */
int frt__fault_hit(int kind);
void frt__fault_new_run(void); /* frt_init: counts restart, armed faults stay */
void frt__fault_reset(void);   /* frt_shutdown: every fault disarmed, counts kept */

#endif
