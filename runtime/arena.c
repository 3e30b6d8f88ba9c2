/* Arena supply: a small cache of empty arenas in front of the OS, so a heap
 * that empties and refills an arena does not pay for mmap each time, and
 * frt_heap_trim can hand every cached arena back at once. */
#include <pthread.h>
#include <string.h>

#include "arena.h"
#include "fork.h"
#include "os.h"
#include "runtime.h"

frt_arena_counters frt__arena_counters;

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static frt_arena *cache;
static size_t cache_len;

void frt__arenas_fork(int phase)
{
    frt__fork_mutex(&cache_lock, phase);
}

/* Bytes at the start of page 0 taken by the arena header. */
#define ARENA_HEADER ((sizeof(frt_arena) + 127) & ~(size_t)127)

static void arena_format(frt_arena *a, struct frt_heap *owner)
{
    memset(a, 0, sizeof *a);
    a->heap = owner;
    a->numa_node = UINT32_MAX;
    for (unsigned i = 0; i < FRT_PAGES_PER_ARENA; i++) {
        frt_page *p = &a->pages[i];
        p->cls = FRT_CLASS_NONE;
        p->index = (uint8_t)i;
        p->start = (uint8_t *)a + (i == 0 ? ARENA_HEADER : i * FRT_PAGE_SIZE);
        frt_mpsc_init(&p->xthread_free);
    }
}

static void raise_peak(_Atomic size_t *peak_at, size_t now)
{
    size_t peak = atomic_load(peak_at);
    while (now > peak && !atomic_compare_exchange_weak(peak_at, &peak, now)) {
    }
}

void frt__mapped_bytes_add(size_t bytes, int sign)
{
    if (sign > 0)
        raise_peak(&frt__arena_counters.bytes_peak,
                   atomic_fetch_add(&frt__arena_counters.bytes, bytes) + bytes);
    else
        atomic_fetch_sub(&frt__arena_counters.bytes, bytes);
}

static void counters_mapped(long delta)
{
    size_t now = atomic_fetch_add(&frt__arena_counters.mapped, (size_t)delta) + (size_t)delta;
    raise_peak(&frt__arena_counters.peak, now);
    frt__mapped_bytes_add(FRT_ARENA_SIZE, delta > 0 ? 1 : -1);
}

frt_arena *frt__arena_acquire(struct frt_heap *owner)
{
    pthread_mutex_lock(&cache_lock);
    frt_arena *a = cache;
    if (a) {
        cache = a->next;
        cache_len--;
    }
    pthread_mutex_unlock(&cache_lock);
    if (!a) {
        a = frt__os_map(FRT_ARENA_SIZE, FRT_ARENA_SIZE);
        if (!a)
            return NULL;
        counters_mapped(1);
    }
    arena_format(a, owner);
    return a;
}

static void arena_unmap(frt_arena *a)
{
    frt__os_unmap(a, FRT_ARENA_SIZE);
    counters_mapped(-1);
    atomic_fetch_add(&frt__arena_counters.returned, 1);
}

void frt__arena_release(frt_arena *a)
{
    a->heap = NULL;
    pthread_mutex_lock(&cache_lock);
    if (cache_len < frt__rt.config.arena_cache) {
        a->next = cache;
        cache = a;
        cache_len++;
        a = NULL;
    }
    pthread_mutex_unlock(&cache_lock);
    if (a)
        arena_unmap(a);
}

size_t frt__arena_cache_trim(size_t keep)
{
    size_t bytes = 0;
    for (;;) {
        pthread_mutex_lock(&cache_lock);
        frt_arena *a = NULL;
        if (cache_len > keep) {
            a = cache;
            cache = a->next;
            cache_len--;
        }
        pthread_mutex_unlock(&cache_lock);
        if (!a)
            return bytes;
        arena_unmap(a);
        bytes += FRT_ARENA_SIZE;
    }
}

void frt__arena_unmap_all_cached(void)
{
    frt__arena_cache_trim(0);
}

void frt__arena_destroy(frt_arena *a)
{
    arena_unmap(a);
}
