/* OS memory and clocks. Everything the runtime maps or allocates for itself
 * goes through here, which is what lets a test fail the k-th request. */
#define _GNU_SOURCE
#include "os.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

static struct {
    _Atomic long countdown; /* fail when it reaches 0 after a decrement; 0 = off */
    _Atomic int sticky;
    _Atomic long seen;
} faults[FRT_FAULT_KINDS];

void frt_test_fault_set(int kind, long n, int sticky)
{
    if (kind < 0 || kind >= FRT_FAULT_KINDS)
        return;
    atomic_store(&faults[kind].sticky, sticky);
    atomic_store(&faults[kind].countdown, n);
}

long frt_test_fault_count(int kind)
{
    if (kind < 0 || kind >= FRT_FAULT_KINDS)
        return -1;
    return atomic_load(&faults[kind].seen);
}

void frt__fault_reset(void)
{
    for (int k = 0; k < FRT_FAULT_KINDS; k++) {
        atomic_store(&faults[k].countdown, 0);
        atomic_store(&faults[k].sticky, 0);
        atomic_store(&faults[k].seen, 0);
    }
}

/* 1 when this request must fail. */
static int fault_hit(int kind)
{
    atomic_fetch_add_explicit(&faults[kind].seen, 1, memory_order_relaxed);
    long c = atomic_load_explicit(&faults[kind].countdown, memory_order_relaxed);
    if (c <= 0)
        return 0;
    if (atomic_fetch_sub(&faults[kind].countdown, 1) != 1)
        return 0;
    if (atomic_load(&faults[kind].sticky))
        atomic_store(&faults[kind].countdown, 1); /* and the next, and the next */
    return 1;
}

void *frt__os_map(size_t size, size_t align)
{
    if (fault_hit(FRT_FAULT_MAP)) {
        errno = ENOMEM;
        return NULL;
    }
    /* Over-map and trim so the result is aligned: arenas are found from any
     * interior pointer by masking. */
    size_t span = size + align;
    char *p = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    uintptr_t start = ((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1);
    size_t head = start - (uintptr_t)p;
    size_t tail = span - head - size;
    if (head)
        munmap(p, head);
    if (tail)
        munmap((char *)start + size, tail);
    return (void *)start;
}

void frt__os_unmap(void *p, size_t size)
{
    if (p)
        munmap(p, size);
}

void frt__os_discard(void *p, size_t size)
{
    madvise(p, size, MADV_DONTNEED);
}

void *frt__sys_calloc(size_t n, size_t size)
{
    if (fault_hit(FRT_FAULT_ALLOC)) {
        errno = ENOMEM;
        return NULL;
    }
    return calloc(n, size);
}

void *frt__sys_realloc(void *p, size_t size)
{
    if (fault_hit(FRT_FAULT_ALLOC)) {
        errno = ENOMEM;
        return NULL;
    }
    return realloc(p, size);
}

void frt__sys_free(void *p)
{
    free(p);
}

uint64_t frt__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
