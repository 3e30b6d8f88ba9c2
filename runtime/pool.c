/* Per-thread pools: the slow paths behind frt__heap_alloc / frt__block_free.
 * See pool.h for the scheme; every function here runs on the heap's owner
 * (or, for orphans, under heaps_lock), so none of the page lists need locks. */
#include <pthread.h>
#include <string.h>

#include "genmap.h"
#include "fork.h"
#include "os.h"
#include "pool.h"

/* A page with nothing free: the current page of every class of a new heap,
 * so the fast path needs no NULL test. */
frt_page frt__empty_page = {.cls = FRT_CLASS_NONE};

static pthread_mutex_t heaps_lock = PTHREAD_MUTEX_INITIALIZER;
static frt_heap *heaps_all;
static frt_heap *orphans;

void frt__heaps_fork(int phase)
{
    frt__fork_mutex(&heaps_lock, phase);
}

/* Page queues (pool.h): in a class queue a new page goes in front (it
 * becomes the current page), a page that was full at the back; the
 * free-page queue is used from the front. */
static void queue_push_front(frt_page_queue *q, frt_page *p)
{
    p->prev = NULL;
    p->next = q->first;
    if (q->first)
        q->first->prev = p;
    else
        q->last = p;
    q->first = p;
}

static void queue_push_back(frt_page_queue *q, frt_page *p)
{
    p->next = NULL;
    p->prev = q->last;
    if (q->last)
        q->last->next = p;
    else
        q->first = p;
    q->last = p;
}

static void queue_remove(frt_page_queue *q, frt_page *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        q->first = p->next;
    if (p->next)
        p->next->prev = p->prev;
    else
        q->last = p->prev;
    p->next = p->prev = NULL;
}

/* Carve the next stretch of never-used blocks into page->free. Carving a
 * few KiB at a time keeps a fresh page from touching (and so committing)
 * memory it may never use. Free blocks of object classes carry
 * ob_type == NULL: that is how a heap walk tells them from live objects. */
#define CARVE_BYTES 8192

/* A stretch is memory nobody touched for a while (a fresh mapping, or an
 * arena recycled after a bulk free), so the caches do not hold it, and
 * every store to it waits for its line to be read from memory: carving
 * and frt_new's zeroing of a 256-byte block are 18 stores into 4 missing
 * lines, which fill the store buffer long before the lines arrive, where
 * mi_malloc + memset makes 4 (64-byte stores). So the carve asks for the
 * next stretch's lines for writing now: one prefetch per line, which the
 * stores never wait on, about 32 allocations ahead of their use at 256
 * bytes. Prefetching never faults, so the lines may be past what the page
 * has committed. */
static void prefetch_next_stretch(const frt_page *p, const uint8_t *next)
{
#if defined(__GNUC__)
    const uint8_t *end = p->start + (size_t)p->capacity * p->block_size;
    if (end > next + CARVE_BYTES)
        end = next + CARVE_BYTES;
    for (; next < end; next += 64)
        __builtin_prefetch(next, 1);
#else
    (void)p;
    (void)next;
#endif
}

static void page_extend(frt_page *p)
{
    size_t bs = p->block_size;
    uint32_t n = (uint32_t)(CARVE_BYTES / bs);
    if (n == 0)
        n = 1;
    if (n > p->capacity - p->reserved)
        n = p->capacity - p->reserved;
    uint8_t *base = p->start + (size_t)p->reserved * bs;
    for (uint32_t i = 0; i < n; i++) {
        frt_block *b = (frt_block *)(base + i * bs);
        b->next = i + 1 < n ? (frt_block *)(base + (i + 1) * bs) : NULL;
        if (p->cls != FRT_CLASS_RAW)
            ((frt_object *)b)->ob_type = NULL;
    }
    p->free = (frt_block *)base;
    p->reserved += n;
    prefetch_next_stretch(p, base + (size_t)n * bs);
}

static void page_format(frt_page *p, unsigned cls)
{
    frt_arena *a = frt_arena_of(p);
    uint8_t *end = (uint8_t *)a + (p->index + 1) * FRT_PAGE_SIZE;
    p->cls = (uint8_t)cls;
    p->block_size = frt__class_size[cls];
    p->capacity = (uint32_t)((size_t)(end - p->start) / p->block_size);
    p->reserved = 0;
    atomic_store_explicit(&p->used, 0, memory_order_relaxed);
    p->free = p->local_free = NULL;
    p->in_full = 0;
}

static void heap_arena_release(frt_heap *h, frt_arena *a)
{
    for (unsigned i = 0; i < FRT_PAGES_PER_ARENA; i++)
        queue_remove(&h->free_pages, &a->pages[i]);
    pthread_mutex_lock(&h->layout_lock);
    if (a->prev)
        a->prev->next = a->next;
    else
        h->arenas = a->next;
    if (a->next)
        a->next->prev = a->prev;
    pthread_mutex_unlock(&h->layout_lock);
    frt__arena_release(a);
}

/* A page with no block in use goes back to its arena's free pages; an arena
 * with no page in use goes back to the cache (and so, maybe, the OS). */
static void page_retire(frt_heap *h, frt_page *p)
{
    frt_arena *a = frt_arena_of(p);
    if (!p->in_full)
        queue_remove(&h->avail[p->cls], p);
    if (h->current[p->cls] == p)
        h->current[p->cls] = &frt__empty_page;
    if (p->in_young)
        frt__genmap_page_forget(h, p); /* the next class cuts the page differently */
    pthread_mutex_lock(&h->layout_lock);
    p->cls = FRT_CLASS_NONE;
    pthread_mutex_unlock(&h->layout_lock);
    p->free = p->local_free = NULL;
    queue_push_front(&h->free_pages, p);
    if (--a->pages_used == 0)
        heap_arena_release(h, a);
}

void frt__page_unfull(frt_heap *h, frt_page *p)
{
    p->in_full = 0;
    queue_push_back(&h->avail[p->cls], p);
}

void frt__page_empty(frt_heap *h, frt_page *p)
{
    /* Keep the current page: a thread that allocates and frees one object
     * in a loop must not map and unmap a page each time. */
    if (h->current[p->cls] != p)
        page_retire(h, p);
}

void frt__page_freed_slow(frt_heap *h, frt_page *p)
{
    if (p->in_full)
        frt__page_unfull(h, p);
    if (atomic_load_explicit(&p->used, memory_order_relaxed) == 0)
        frt__page_empty(h, p);
}

static frt_page *heap_new_page(frt_heap *h, unsigned cls)
{
    frt_page *p = h->free_pages.first;
    if (!p) {
        frt_arena *a = frt__arena_acquire(h);
        if (!a)
            return NULL;
        a->prev = NULL;
        pthread_mutex_lock(&h->layout_lock);
        a->next = h->arenas;
        if (h->arenas)
            h->arenas->prev = a;
        h->arenas = a;
        pthread_mutex_unlock(&h->layout_lock);
        for (unsigned i = FRT_PAGES_PER_ARENA; i-- > 0;)
            queue_push_front(&h->free_pages, &a->pages[i]);
        p = h->free_pages.first;
    }
    queue_remove(&h->free_pages, p);
    frt_arena_of(p)->pages_used++;
    pthread_mutex_lock(&h->layout_lock);
    page_format(p, cls);
    pthread_mutex_unlock(&h->layout_lock);
    queue_push_front(&h->avail[cls], p);
    return p;
}

/* A refill takes a page's local_free only when it holds at least
 * REFILL_MIN blocks (at most 1/32 of the page), and looks at up to
 * REFILL_VISITS pages for one before it formats a new page. A working set
 * freed at random leaves every page a few blocks: refilling from those gave
 * one or two blocks per refill (a slow-path call per allocation with
 * 256-byte objects); passed over, they gather a batch. The pages passed
 * over are at least 31/32 in use, so this keeps at most 1/32 of a class's
 * pages unused, plus the page being carved; a class with fewer pages than
 * REFILL_VISITS never grows for it (the fullest batch is taken), so a
 * freed block comes back before new memory does in a small heap. */
#define REFILL_MIN 8
#define REFILL_MIN_SHIFT 5
#define REFILL_VISITS 4

static uint32_t page_freed(const frt_page *p)
{
    return p->reserved - atomic_load_explicit(&p->used, memory_order_relaxed);
}

/* Make p->free non-empty: its local_free if that holds at least min
 * blocks, else fresh blocks carved from it. 0 if neither. */
static int page_refill(frt_page *p, uint32_t min)
{
    if (p->free)
        return 1;
    if (p->local_free && page_freed(p) >= min) {
        p->free = p->local_free;
        p->local_free = NULL;
        return 1;
    }
    if (p->reserved < p->capacity) {
        page_extend(p);
        return 1;
    }
    return 0;
}

static uint32_t refill_min(const frt_page *p)
{
    uint32_t min = p->capacity >> REFILL_MIN_SHIFT;
    return min == 0 ? 1 : min > REFILL_MIN ? REFILL_MIN : min;
}

void *frt__heap_alloc_slow(frt_heap *h, unsigned cls)
{
    frt__heap_collect_remote(h);
    frt__arena_purge_poll(); /* one relaxed load unless a purge is due */
    frt_page_queue *q = &h->avail[cls];
    frt_page *p = q->first, *best = NULL, *first_passed = NULL;
    int small_heap = 0;
    for (unsigned visits = 0; p && visits < REFILL_VISITS; visits++) {
        /* The page that just ran out: what was freed into it since its
         * last refill is the most recently freed memory, likely still in
         * the cache; any of it will do. */
        if (page_refill(p, p == h->current[cls] ? 1 : refill_min(p)))
            goto found;
        queue_remove(q, p);
        if (!p->local_free) {
            p->in_full = 1; /* every block is out: queued again when one comes back */
        } else {
            queue_push_back(q, p); /* a few blocks: let it gather more */
            if ((small_heap = p == first_passed))
                break; /* round the whole queue: too few pages to grow for */
            if (!first_passed)
                first_passed = p;
            if (!best || page_freed(p) > page_freed(best))
                best = p;
        }
        p = q->first;
    }
    if (!small_heap && (p = heap_new_page(h, cls)) != NULL) {
        page_extend(p);
    } else if (best) { /* a small heap, or no memory for a new page */
        p = best;
        queue_remove(q, p);
        queue_push_front(q, p);
        page_refill(p, 1);
    } else {
        h->current[cls] = &frt__empty_page;
        return NULL;
    }
found:
    h->current[cls] = p;
    frt_block *b = p->free;
    p->free = b->next;
    frt_page_used_add(p, 1);
    return b;
}

void frt__block_free_remote(frt_arena *a, frt_page *p, frt_block *b)
{
    /* Read the owner before the push: once the block is on the list the
     * owner may take it, empty the page and recycle the arena. It cannot
     * before the page itself is pushed below, because the owner only takes
     * xthread_free from pages it found on remote_pages. */
    frt_heap *owner = a->heap;
    if (frt_mpsc_push_first(&p->xthread_free, (frt_mpsc_node *)b))
        frt_mpsc_push_first(&owner->remote_pages, &p->remote_link);
}

void frt__heap_collect_remote(frt_heap *h)
{
    frt_mpsc_node *n = frt_mpsc_take(&h->remote_pages);
    while (n) {
        frt_page *p = (frt_page *)((char *)n - offsetof(frt_page, remote_link));
        n = n->next; /* before the page can be pushed again */
        frt_block *first = (frt_block *)frt_mpsc_take(&p->xthread_free);
        if (!first)
            continue;
        frt_block *last = first;
        uint32_t k = 1;
        while (last->next) {
            last = last->next;
            k++;
        }
        last->next = p->local_free;
        p->local_free = first;
        if (p->in_full)
            frt__page_unfull(h, p);
        if (frt_page_used_add(p, -k) == 0)
            frt__page_empty(h, p);
    }
}

size_t frt__heap_trim(frt_heap *h)
{
    size_t before = atomic_load(&frt__arena_counters.returned);
    frt__heap_collect_remote(h);
    for (unsigned c = 0; c < FRT_NCLASSES; c++) {
        frt_page *p = h->current[c];
        if (p != &frt__empty_page && atomic_load_explicit(&p->used, memory_order_relaxed) == 0)
            page_retire(h, p);
    }
    return (size_t)(atomic_load(&frt__arena_counters.returned) - before) * FRT_ARENA_SIZE;
}

static frt_heap *heap_new(void)
{
    frt_heap *h = frt__sys_calloc(1, sizeof *h);
    if (!h)
        return NULL;
    for (unsigned c = 0; c < FRT_NCLASSES; c++)
        h->current[c] = &frt__empty_page;
    frt_mpsc_init(&h->remote_pages);
    pthread_mutex_init(&h->layout_lock, NULL);
    h->numa_node = UINT32_MAX;
    h->next_all = heaps_all;
    heaps_all = h;
    return h;
}

frt_heap *frt__heap_adopt(void)
{
    pthread_mutex_lock(&heaps_lock);
    frt_heap *h = orphans;
    if (h) {
        orphans = h->next_orphan;
        h->orphan = 0;
    } else {
        h = heap_new();
    }
    pthread_mutex_unlock(&heaps_lock);
    if (h)
        frt__heap_collect_remote(h);
    return h;
}

void frt__heap_abandon(frt_heap *h)
{
    frt__heap_collect_remote(h);
    pthread_mutex_lock(&heaps_lock);
    h->orphan = 1;
    h->next_orphan = orphans;
    orphans = h;
    pthread_mutex_unlock(&heaps_lock);
}

size_t frt__heap_trim_orphans(void)
{
    size_t bytes = 0;
    pthread_mutex_lock(&heaps_lock);
    for (frt_heap *h = orphans; h; h = h->next_orphan)
        bytes += frt__heap_trim(h);
    pthread_mutex_unlock(&heaps_lock);
    return bytes;
}

static void heap_walk(frt_heap *h, int live_only, frt_block_visit fn, void *arg)
{
    for (frt_arena *a = h->arenas; a; a = a->next) {
        for (unsigned i = 0; i < FRT_PAGES_PER_ARENA; i++) {
            frt_page *p = &a->pages[i];
            if (p->cls == FRT_CLASS_NONE || p->cls == FRT_CLASS_RAW ||
                atomic_load_explicit(&p->used, memory_order_relaxed) == 0)
                continue;
            for (uint32_t k = 0; k < p->reserved; k++) {
                frt_object *o = (frt_object *)(p->start + (size_t)k * p->block_size);
                if (!live_only || o->ob_type)
                    fn(o, p->block_size, arg);
            }
        }
    }
}

void frt__heap_walk_objects(frt_heap *h, frt_block_visit fn, void *arg)
{
    heap_walk(h, 1, fn, arg);
}

void frt__heap_walk_blocks(frt_heap *h, frt_block_visit fn, void *arg)
{
    heap_walk(h, 0, fn, arg);
}

void frt__heaps_walk_objects(frt_block_visit fn, void *arg)
{
    pthread_mutex_lock(&heaps_lock);
    for (frt_heap *h = heaps_all; h; h = h->next_all)
        frt__heap_walk_objects(h, fn, arg);
    pthread_mutex_unlock(&heaps_lock);
    frt__large_walk(fn, arg);
}

/* Counted from the pages on demand, so that the fast paths keep no
 * counters of their own. Holding heaps_lock first is also what keeps a
 * fork from finding a layout_lock held (no owner reaches a stop with it). */
void frt__heaps_stats(size_t *blocks, size_t *bytes)
{
    size_t nb = 0, nbytes = 0;
    pthread_mutex_lock(&heaps_lock);
    for (frt_heap *h = heaps_all; h; h = h->next_all) {
        pthread_mutex_lock(&h->layout_lock);
        for (frt_arena *a = h->arenas; a; a = a->next) {
            for (unsigned i = 0; i < FRT_PAGES_PER_ARENA; i++) {
                frt_page *p = &a->pages[i];
                if (p->cls == FRT_CLASS_NONE || p->cls == FRT_CLASS_RAW)
                    continue;
                size_t k = atomic_load_explicit(&p->used, memory_order_relaxed);
                nb += k;
                nbytes += k * p->block_size;
            }
        }
        pthread_mutex_unlock(&h->layout_lock);
    }
    pthread_mutex_unlock(&heaps_lock);
    *blocks = nb;
    *bytes = nbytes;
}

void frt__heaps_foreach(void (*fn)(frt_heap *h, void *arg), void *arg)
{
    pthread_mutex_lock(&heaps_lock);
    for (frt_heap *h = heaps_all; h; h = h->next_all)
        fn(h, arg);
    pthread_mutex_unlock(&heaps_lock);
}

void frt__heaps_release_all(void)
{
    pthread_mutex_lock(&heaps_lock);
    frt_heap *h = heaps_all;
    heaps_all = orphans = NULL;
    pthread_mutex_unlock(&heaps_lock);
    while (h) {
        frt_heap *next = h->next_all;
        frt_arena *a = h->arenas;
        while (a) {
            frt_arena *an = a->next;
            frt__arena_destroy(a);
            a = an;
        }
        pthread_mutex_destroy(&h->layout_lock);
        frt__sys_free(h);
        h = next;
    }
    frt__arena_unmap_all_cached();
    frt__large_release_all();
}
