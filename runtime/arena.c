/* Arena supply: a cache of empty arenas in front of the OS, so a heap that
 * empties and refills arenas does not pay for mmap and page faults each
 * time, and frt_heap_trim can hand every cached arena back at once.
 *
 * Delayed purge (as mimalloc's purge_delay): an arena that empties goes to
 * the cache whatever its length, stamped with the time. The newest
 * `arena_cache` arenas are kept for good; older ones are unmapped once
 * they have been empty for FRT_ARENA_PURGE_NS, by the next purge check
 * (frt__arena_purge_poll: every arena acquire and release, the pools' slow
 * paths, frt_safepoint). So a pattern that frees a burst of arenas and
 * allocates them again within the delay maps nothing, and the cache never
 * holds more than the most arenas emptied within one delay: the recent
 * high-water mark. arena_cache == 0 unmaps at once, as before. */
#include <pthread.h>
#include <string.h>

#include "arena.h"
#include "fork.h"
#include "os.h"
#include "runtime.h"

frt_arena_counters frt__arena_counters;

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static frt_arena *cache, *cache_oldest; /* newest first, linked by next/prev */
static size_t cache_len;
static _Atomic uint64_t purge_due;     /* when the oldest cached arena expires; 0: none */
static uint64_t purge_ns = FRT_ARENA_PURGE_NS; /* under cache_lock */

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

/* Under cache_lock: due only while the cache holds more than it keeps. */
static void update_due(void)
{
    uint64_t due = 0;
    if (cache_len > frt__rt.config.arena_cache)
        due = cache_oldest->released_ns + purge_ns;
    atomic_store_explicit(&purge_due, due, memory_order_relaxed);
}

/* Under cache_lock. */
static void cache_unlink(frt_arena *a)
{
    if (a->prev)
        a->prev->next = a->next;
    else
        cache = a->next;
    if (a->next)
        a->next->prev = a->prev;
    else
        cache_oldest = a->prev;
    cache_len--;
    update_due();
}

frt_arena *frt__arena_acquire(struct frt_heap *owner)
{
    pthread_mutex_lock(&cache_lock);
    frt_arena *a = cache; /* the newest: the likeliest still in the TLB and the caches */
    if (a)
        cache_unlink(a);
    pthread_mutex_unlock(&cache_lock);
    if (!a) {
        a = frt__os_map(FRT_ARENA_SIZE, FRT_ARENA_SIZE);
        if (!a)
            return NULL;
        counters_mapped(1);
    }
    arena_format(a, owner);
    frt__arena_purge_poll();
    return a;
}

static void arena_unmap(frt_arena *a)
{
    frt__os_unmap(a, FRT_ARENA_SIZE);
    counters_mapped(-1);
    atomic_fetch_add(&frt__arena_counters.returned, 1);
}

/* The one place an empty arena leaves its heap. */
void frt__arena_release(frt_arena *a)
{
    a->heap = NULL;
    if (frt__rt.config.arena_cache == 0) {
        arena_unmap(a);
        return;
    }
    a->released_ns = frt__now_ns();
    pthread_mutex_lock(&cache_lock);
    a->prev = NULL;
    a->next = cache;
    if (cache)
        cache->prev = a;
    else
        cache_oldest = a;
    cache = a;
    cache_len++;
    update_due();
    pthread_mutex_unlock(&cache_lock);
    frt__arena_purge_poll();
}

/* Unmap cached arenas beyond `keep`, oldest first: all of them when
 * expired_only is 0, else those empty for longer than the delay. */
static size_t cache_purge(size_t keep, int expired_only)
{
    size_t bytes = 0;
    uint64_t now = expired_only ? frt__now_ns() : 0;
    for (;;) {
        pthread_mutex_lock(&cache_lock);
        frt_arena *a = cache_oldest;
        if (cache_len <= keep || (expired_only && now - a->released_ns < purge_ns))
            a = NULL;
        if (a)
            cache_unlink(a);
        pthread_mutex_unlock(&cache_lock);
        if (!a)
            return bytes;
        arena_unmap(a);
        bytes += FRT_ARENA_SIZE;
    }
}

void frt__arena_purge_poll(void)
{
    uint64_t due = atomic_load_explicit(&purge_due, memory_order_relaxed);
    if (due && frt__now_ns() >= due)
        cache_purge(frt__rt.config.arena_cache, 1);
}

void frt__arena_set_purge_delay(uint64_t ns)
{
    pthread_mutex_lock(&cache_lock);
    purge_ns = ns;
    update_due();
    pthread_mutex_unlock(&cache_lock);
}

size_t frt__arena_cache_trim(size_t keep)
{
    return cache_purge(keep, 0);
}

void frt__arena_unmap_all_cached(void)
{
    frt__arena_cache_trim(0);
}

void frt__arena_destroy(frt_arena *a)
{
    arena_unmap(a);
}
