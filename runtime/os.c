/* OS memory and clocks. Everything the runtime maps or allocates for itself
 * goes through here, which is what lets a test fail the k-th request. */
#define _GNU_SOURCE
#include "os.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

/* One cache line per kind: FRT_FAULT_NODE's flag is read on every queued
 * decref and must not share a line with the other kinds' counters. */
typedef struct fault_kind {
    _Atomic long countdown; /* requests left before the one that fails */
    _Atomic int mode;       /* 0 disarmed, 1 the countdown's request fails, 2 and all later */
    _Atomic long seen;
    _Atomic int counting;   /* requests are counted (always for MAP and ALLOC) */
} __attribute__((aligned(64))) fault_kind;

static fault_kind faults[FRT_FAULT_KINDS] = {[FRT_FAULT_MAP].counting = 1,
                                             [FRT_FAULT_ALLOC].counting = 1};

void frt_test_fault_set(int kind, long n, int sticky)
{
    if (kind < 0 || kind >= FRT_FAULT_KINDS)
        return;
    atomic_store(&faults[kind].mode, 0);
    atomic_store(&faults[kind].countdown, n);
    atomic_store(&faults[kind].counting, 1);
    atomic_store(&faults[kind].mode, n > 0 ? (sticky ? 2 : 1) : 0);
}

long frt_test_fault_count(int kind)
{
    if (kind < 0 || kind >= FRT_FAULT_KINDS)
        return -1;
    return atomic_load(&faults[kind].seen);
}

void frt__fault_new_run(void)
{
    for (int k = 0; k < FRT_FAULT_KINDS; k++)
        atomic_store(&faults[k].seen, 0);
}

void frt__fault_reset(void)
{
    for (int k = 0; k < FRT_FAULT_KINDS; k++) {
        atomic_store(&faults[k].mode, 0);
        atomic_store(&faults[k].countdown, 0);
        atomic_store(&faults[k].counting, k != FRT_FAULT_NODE);
    }
}

int frt__fault_hit(int kind)
{
    if (!atomic_load_explicit(&faults[kind].counting, memory_order_relaxed))
        return 0;
    atomic_fetch_add_explicit(&faults[kind].seen, 1, memory_order_relaxed);
    int mode = atomic_load_explicit(&faults[kind].mode, memory_order_relaxed);
    if (!mode)
        return 0;
    /* One decrement per request orders concurrent requests: exactly the
     * n-th fails, and with sticky every one after it (the count only goes
     * down; re-arming it after a hit would let a concurrent request
     * through). */
    long before = atomic_fetch_sub_explicit(&faults[kind].countdown, 1, memory_order_relaxed);
    return mode == 2 ? before <= 1 : before == 1;
}

void *frt__os_map(size_t size, size_t align)
{
    if (frt__fault_hit(FRT_FAULT_MAP)) {
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

void frt__os_prefer_huge(void *p, size_t size)
{
#ifdef MADV_HUGEPAGE
    madvise(p, size, MADV_HUGEPAGE);
#else
    (void)p;
    (void)size;
#endif
}

void frt__os_discard(void *p, size_t size)
{
    madvise(p, size, MADV_DONTNEED);
}

/* Blocks from frt__sys_calloc/realloc not freed yet: after frt_shutdown
 * the runtime must hold none (frt_test_sys_live). Rare paths only. */
static _Atomic long sys_live;

long frt_test_sys_live(void)
{
    return atomic_load(&sys_live);
}

void *frt__sys_calloc_as(int kind, size_t n, size_t size)
{
    if (frt__fault_hit(kind)) {
        errno = ENOMEM;
        return NULL;
    }
    void *q = calloc(n, size);
    if (q)
        atomic_fetch_add_explicit(&sys_live, 1, memory_order_relaxed);
    return q;
}

void *frt__sys_calloc(size_t n, size_t size)
{
    return frt__sys_calloc_as(FRT_FAULT_ALLOC, n, size);
}

void *frt__sys_realloc(void *p, size_t size)
{
    if (frt__fault_hit(FRT_FAULT_ALLOC)) {
        errno = ENOMEM;
        return NULL;
    }
    void *q = realloc(p, size);
    if (q && !p)
        atomic_fetch_add_explicit(&sys_live, 1, memory_order_relaxed);
    return q;
}

void frt__sys_free(void *p)
{
    if (p)
        atomic_fetch_sub_explicit(&sys_live, 1, memory_order_relaxed);
    free(p);
}

int frt__sys_key_create(pthread_key_t *key, void (*destructor)(void *))
{
    if (frt__fault_hit(FRT_FAULT_ALLOC))
        return EAGAIN;
    return pthread_key_create(key, destructor);
}

uint64_t frt__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
