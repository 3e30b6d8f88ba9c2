/* Arenas, pages and size classes: the layout of object memory.
 *
 * An arena is 1 MiB mapped from the OS, aligned to its size, owned by one
 * heap. It is cut into 16 pages of 64 KiB; a page holds blocks of one size
 * class. The arena header (with the 16 page descriptors) sits at the start
 * of page 0, so any block finds its page with a mask and a shift, and the
 * collector can walk every block of a page: block i starts at
 * start + i * block_size, and a free block has ob_type == NULL. */
#ifndef FRT_RUNTIME_ARENA_H
#define FRT_RUNTIME_ARENA_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <frt/heap.h>

#include "mpsc.h"

#define FRT_ARENA_SHIFT 20
#define FRT_ARENA_SIZE ((size_t)1 << FRT_ARENA_SHIFT)
#define FRT_PAGE_SHIFT 16
#define FRT_PAGE_SIZE ((size_t)1 << FRT_PAGE_SHIFT)
#define FRT_PAGES_PER_ARENA (FRT_ARENA_SIZE / FRT_PAGE_SIZE)

/* Class 0 (16 bytes) is for the runtime's own small records (none today:
 * it is never walked as objects); objects are at least 32 bytes and use
 * classes 1 and up. */
#define FRT_NCLASSES 36
#define FRT_CLASS_RAW 0
#define FRT_CLASS_NONE 0xff

extern const uint32_t frt__class_size[FRT_NCLASSES];
extern const uint8_t frt__class_of16[FRT_SMALL_MAX / 16 + 1];

static inline unsigned frt_size_class(size_t size)
{
    return frt__class_of16[(size + 15) >> 4];
}

struct frt_heap;
struct frt_arena;

typedef struct frt_block {
    struct frt_block *next;
} frt_block;

/* 128 bytes, 128-aligned: a block finds its descriptor with a shift and a
 * mask (frt_page_of), and the fields other threads write sit on a cache
 * line of their own, away from the owner's fast-path fields. */
typedef struct frt_page {
    /* Touched by the owning heap only (the first cache line). */
    _Alignas(128) frt_block *free; /* blocks ready to hand out */
    frt_block *local_free; /* blocks the owner freed since the last refill */
    _Atomic uint32_t used; /* blocks handed out and not yet seen freed; written by
                            * the owner only, read by frt_heap_get_stats */
    uint32_t reserved;     /* blocks carved from the page so far */
    uint32_t capacity;     /* blocks that fit */
    uint32_t block_size;   /* block_size and cls change under the heap's layout_lock */
    uint8_t cls;           /* FRT_CLASS_NONE while the page is unused */
    uint8_t in_full;       /* out of its class list: nothing free */
    uint8_t index;         /* in its arena */
    uint8_t in_young;      /* on its heap's young_pages list */
    uint8_t *start;        /* first block */
    struct frt_page *next, *prev; /* class list, or the heap's free-page list */
    /* Written by other threads. */
    _Alignas(64) frt_mpsc xthread_free; /* blocks freed by other threads */
    frt_mpsc_node remote_link; /* on the heap's remote_pages while xthread_free is non-empty */
    struct frt_page *ynext, *yprev; /* heap's young_pages: pages with genmap bits */
} frt_page;
_Static_assert(sizeof(frt_page) == 128, "a page descriptor is 128 bytes");

/* Generation maps: one bit per 16-byte granule of the arena, per young
 * generation (0 and 1). A set bit says "a tracked object of that generation
 * may start here"; the collector checks the object itself, so stale bits
 * (freed or untracked objects) are harmless and get cleared as found. */
#define FRT_GRANULE_SHIFT 4
#define FRT_GENMAP_WORDS ((FRT_ARENA_SIZE >> FRT_GRANULE_SHIFT) / 64)

typedef struct frt_arena {
    struct frt_heap *heap; /* owner; changes only while the arena is empty */
    struct frt_arena *next, *prev;
    uint32_t pages_used;
    uint32_t numa_node;    /* where it was bound, or UINT32_MAX */
    uint64_t released_ns;  /* in the arena cache: when it emptied */
    frt_page pages[FRT_PAGES_PER_ARENA];
    uint64_t genmap[2][FRT_GENMAP_WORDS];
} frt_arena;

/* used += delta, by the owner (a plain load and store: no other writer). */
static inline uint32_t frt_page_used_add(frt_page *p, uint32_t delta)
{
    uint32_t u = atomic_load_explicit(&p->used, memory_order_relaxed) + delta;
    atomic_store_explicit(&p->used, u, memory_order_relaxed);
    return u;
}

static inline frt_arena *frt_arena_of(const void *p)
{
    return (frt_arena *)((uintptr_t)p & ~(uintptr_t)(FRT_ARENA_SIZE - 1));
}

/* &arena->pages[index], with the index shifted straight into a byte
 * offset (descriptors are 128 bytes): a shift, a mask and an add. */
static inline frt_page *frt_page_of(const void *p)
{
    uintptr_t u = (uintptr_t)p;
    uintptr_t off = (u >> (FRT_PAGE_SHIFT - 7)) & ((FRT_PAGES_PER_ARENA - 1) << 7);
    return (frt_page *)((u & ~(uintptr_t)(FRT_ARENA_SIZE - 1)) + offsetof(frt_arena, pages) + off);
}

/* Arena supply: the global cache of empty arenas, then the OS. An arena
 * the cache holds beyond frt_config.arena_cache is unmapped once it has
 * been empty this long (arena.c: the delayed purge). One second, not
 * 100 ms: a program whose allocation cycle outlasts the delay pays a page
 * fault per 4 KiB on every cycle (docs/design.md, "Returning memory"). */
#define FRT_ARENA_PURGE_NS ((uint64_t)1000 * 1000 * 1000)
/* Tests: another delay from now on (the default is FRT_ARENA_PURGE_NS). */
void frt__arena_set_purge_delay(uint64_t ns);
frt_arena *frt__arena_acquire(struct frt_heap *owner);
/* The one place an arena that has emptied leaves its heap: cached, then
 * unmapped by a later purge. */
void frt__arena_release(frt_arena *a);
/* Unmap what has been cached past the delay; cheap when nothing is due. */
void frt__arena_purge_poll(void);
size_t frt__arena_cache_trim(size_t keep); /* bytes returned to the OS */
void frt__arena_unmap_all_cached(void);
void frt__arena_destroy(frt_arena *a);     /* shutdown: straight back to the OS */

/* Process-wide arena counters (frt_heap_get_stats). */
typedef struct frt_arena_counters {
    _Atomic size_t mapped, peak;
    _Atomic uint64_t returned;
    /* Bytes mapped for objects, arenas and large objects together, and the
     * most ever: one counter, so the peak is a peak of the sum. */
    _Atomic size_t bytes, bytes_peak;
} frt_arena_counters;
extern frt_arena_counters frt__arena_counters;
void frt__mapped_bytes_add(size_t bytes, int sign);

#endif
