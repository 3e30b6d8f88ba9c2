/* The runtime's only contact with the OS for memory and time, and the
 * fault-injection hook that tests use to make the k-th request fail. */
#ifndef FRT_RUNTIME_OS_H
#define FRT_RUNTIME_OS_H

#include <stddef.h>
#include <stdint.h>
#include <frt/config.h>

/* Map size bytes aligned to align (a power of two >= the OS page). NULL on
 * failure. Counted by the FRT_FAULT_MAP hook. */
void *frt__os_map(size_t size, size_t align);
void frt__os_unmap(void *p, size_t size);
/* Tell the OS the range is unused (contents may be lost). */
void frt__os_discard(void *p, size_t size);

/* Zeroed memory for the runtime's own structures (thread states, heaps,
 * collector buffers). Counted by the FRT_FAULT_ALLOC hook. */
void *frt__sys_calloc(size_t n, size_t size);
void *frt__sys_realloc(void *p, size_t size);
void frt__sys_free(void *p);

uint64_t frt__now_ns(void);

/* Fault injection (tests only). kind: which requests to count. The n-th
 * request from now (1 = the next one) fails, and so does every later one
 * when sticky is set. n = 0 disarms. */
enum { FRT_FAULT_MAP = 0, FRT_FAULT_ALLOC = 1, FRT_FAULT_KINDS = 2 };
FRT_API void frt_test_fault_set(int kind, long n, int sticky);
/* Requests of that kind seen since frt_init (successful or not). */
FRT_API long frt_test_fault_count(int kind);
void frt__fault_reset(void);

#endif
