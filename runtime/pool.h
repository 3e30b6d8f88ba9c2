/* Per-thread pools: the heap a thread allocates from without locks.
 *
 * A heap owns arenas; each size class has a current page and a list of pages
 * with free blocks. The owner allocates from page->free and frees to
 * page->local_free with plain stores; another thread frees by pushing the
 * block on page->xthread_free (lock-free), and the first such push onto an
 * empty list also pushes the page on heap->remote_pages so the owner finds
 * it without scanning. Heaps are pooled, never freed before shutdown: a
 * thread that detaches leaves its heap as an orphan that the next attaching
 * thread (or frt_heap_trim) adopts whole, so a block's heap never changes
 * while the block is live.
 *
 * Blocks in use are counted by the pages themselves (page->used, which the
 * fast paths keep anyway to find empty pages): frt_heap_get_stats adds
 * them up on demand, under each heap's layout_lock, which the owner takes
 * only to add or remove an arena and to format or retire a page. */
#ifndef FRT_RUNTIME_POOL_H
#define FRT_RUNTIME_POOL_H

#include <pthread.h>

#include <frt/object.h>

#include "arena.h"

/* A size class's pages that may have a free block: a queue, so that a page
 * that was full and got a block back waits at the back while blocks freed
 * into it pile up on its local_free, and is used again when it has a batch
 * to give (as mimalloc's page queues). Taking it back at once, from the
 * front, gave one block per refill in a working set freed at random. */
typedef struct frt_page_queue {
    frt_page *first, *last;
} frt_page_queue;

typedef struct frt_heap {
    frt_page *current[FRT_NCLASSES]; /* never NULL: &frt__empty_page when none */
    frt_page_queue avail[FRT_NCLASSES]; /* pages with a free block, current first */
    frt_page_queue free_pages;       /* unused pages of our arenas */
    frt_arena *arenas;
    frt_mpsc remote_pages;           /* pages whose xthread_free became non-empty */
    frt_page *young_pages;           /* pages with generation-map bits set */
    /* Taken by the owner around changes to the arena list and to pages'
     * cls and block_size; by stats readers (under heaps_lock) to count. */
    pthread_mutex_t layout_lock;
    struct frt_heap *next_all;       /* every heap, for stats and shutdown */
    struct frt_heap *next_orphan;
    int orphan;
    unsigned numa_node;              /* preferred node for new arenas */
} frt_heap;

extern frt_page frt__empty_page;

void *frt__heap_alloc_slow(frt_heap *h, unsigned cls);
void frt__page_unfull(frt_heap *h, frt_page *p);
void frt__page_empty(frt_heap *h, frt_page *p);
/* A block was freed into p, which was full or is now empty. */
void frt__page_freed_slow(frt_heap *h, frt_page *p);

/* A block from the current page of the class, or NULL when that page has
 * none ready (then frt__heap_alloc_slow). */
static inline void *frt__heap_pop(frt_heap *h, unsigned cls)
{
    frt_page *p = h->current[cls];
    frt_block *b = p->free;
    if (FRT_LIKELY(b != NULL)) {
        p->free = b->next;
        frt_page_used_add(p, 1);
    }
    return b;
}

static inline void *frt__heap_alloc(frt_heap *h, unsigned cls)
{
    void *b = frt__heap_pop(h, cls);
    return FRT_LIKELY(b != NULL) ? b : frt__heap_alloc_slow(h, cls);
}

/* How far ahead of a block being freed its neighbour's header is asked
 * for. A decref must load the header (owner, count) before it can free,
 * where free() only stores a link: freeing objects in the order they were
 * allocated (a list or an array torn down, the collector's garbage, which
 * it finds in address order) is a stream of load misses that the hardware
 * prefetchers lose at every 4 KiB page. One prefetch per free, a page
 * ahead (about 16 frees of 256-byte objects: a memory latency), keeps the
 * stream in the cache and warms the TLB for the next page; a free in any
 * other order pays one instruction for it. */
#define FRT_FREE_PREFETCH 4096

/* Free a small block; h is the calling thread's heap (NULL if none). */
void frt__block_free_remote(frt_arena *a, frt_page *p, frt_block *b);
static inline void frt__block_free(frt_heap *h, void *ptr)
{
    frt_arena *a = frt_arena_of(ptr);
    frt_page *p = frt_page_of(ptr);
    frt_block *b = (frt_block *)ptr;
    if (FRT_LIKELY(a->heap == h)) {
#if defined(__GNUC__)
        __builtin_prefetch((const char *)ptr + FRT_FREE_PREFETCH);
#endif
        b->next = p->local_free;
        p->local_free = b;
        /* Tail calls for the rare cases: the common path keeps nothing
         * live across a call, so it saves no registers. */
        if (FRT_UNLIKELY(frt_page_used_add(p, (uint32_t)-1) == 0) || FRT_UNLIKELY(p->in_full))
            frt__page_freed_slow(h, p);
    } else {
        frt__block_free_remote(a, p, b);
    }
}

/* Take back blocks other threads freed into h's pages. */
void frt__heap_collect_remote(frt_heap *h);
/* Collect, then give empty pages and arenas back; bytes unmapped. */
size_t frt__heap_trim(frt_heap *h);

/* A heap for an attaching thread: an orphan if there is one, else new. */
frt_heap *frt__heap_adopt(void);
void frt__heap_abandon(frt_heap *h);
size_t frt__heap_trim_orphans(void);

/* Every live block of every heap (shutdown, stats, the collector's walks).
 * Only with the world stopped or a single thread left. */
typedef void (*frt_block_visit)(void *block, size_t block_size, void *arg);
void frt__heap_walk_objects(frt_heap *h, frt_block_visit fn, void *arg);
void frt__heaps_walk_objects(frt_block_visit fn, void *arg);
/* Every block carved from h's object pages, live or free, unread: for the
 * owner of h while other threads run (brc/merge_queue.c at detach). */
void frt__heap_walk_blocks(frt_heap *h, frt_block_visit fn, void *arg);

/* Large objects, mapped one by one. A new one is all zero bytes (a fresh
 * mapping, never reused), and stays uncommitted until written. */
void *frt__large_alloc(size_t size);
void frt__large_free(void *obj);
void frt__large_walk(frt_block_visit fn, void *arg);
void frt__large_stats(size_t *count, size_t *bytes);
void frt__large_release_all(void);

void frt__heaps_stats(size_t *blocks, size_t *bytes);
/* Every heap, orphans included (world stopped, or single-threaded). */
void frt__heaps_foreach(void (*fn)(frt_heap *h, void *arg), void *arg);
void frt__heaps_release_all(void);

#endif
