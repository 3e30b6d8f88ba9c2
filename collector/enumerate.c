/* Finding the objects a run examines, world stopped.
 *
 * A young run (generation 0 or 1) visits only the pages on each heap's
 * young list and, in them, only granules whose generation-map bit is set:
 * its cost follows the young objects, not the heap. A full run walks every
 * page of every heap. Large objects are few and sit on one list: every run
 * checks them.
 *
 * The work set is grown once per page, by the page's count of blocks in
 * use (a bound on its members), so adding a member is a few stores; the
 * full walk runs over the pages here rather than through the heap's
 * per-block callback, which cost a call per block. */
#include "gc_internal.h"
#include "../runtime/genmap.h"
#include "../runtime/pool.h"

typedef struct {
    gc_work *w;
    int gen;        /* examine generations 0..gen */
    int map_gen;    /* which generation map is being scanned */
} gather_ctx;

static inline int candidate(frt_object *o, int max_gen)
{
    return o->ob_type && (o->ob_gc_bits & FRT_GC_TRACKED) && o->ob_gen <= max_gen &&
           !(o->ob_gc_bits & FRT_GC_COLLECTING) && frt__gc_refcount(o) > 0;
}

/* candidate() already read the count; the reserved add reads it again from
 * the same line. */
static inline void add(gc_work *w, frt_object *o)
{
    frt__gc_work_add_reserved(w, o, frt__gc_refcount(o));
}

/* Keep the bit if the object is still a tracked member of that generation
 * (including one dying right now, count 0, whose bit its free will leave
 * stale anyway). */
static int scan_one(void *obj, void *arg)
{
    gather_ctx *c = arg;
    frt_object *o = obj;
    if (!o->ob_type || !(o->ob_gc_bits & FRT_GC_TRACKED) || o->ob_gen != c->map_gen)
        return 0;
    if (candidate(o, c->gen))
        add(c->w, o);
    return 1;
}

static void gather_young_heap(frt_heap *h, void *arg)
{
    gather_ctx *c = arg;
    frt_page *p = h->young_pages;
    while (p) {
        frt_page *next = p->ynext;
        int left = 0;
        if (frt__gc_work_reserve(c->w, p->used))
            return;
        for (int g = 0; g <= c->gen && g < 2; g++) {
            c->map_gen = g;
            left = frt__genmap_scan(p, g, scan_one, c);
        }
        if (!left)
            frt__genmap_page_forget(h, p);
        p = next;
    }
}

static void gather_any(void *block, size_t size, void *arg)
{
    (void)size;
    gather_ctx *c = arg;
    if (candidate(block, c->gen))
        frt__gc_work_add(c->w, block);
}

static void count_used(frt_heap *h, void *arg)
{
    size_t *total = arg;
    for (frt_arena *a = h->arenas; a; a = a->next)
        for (unsigned i = 0; i < FRT_PAGES_PER_ARENA; i++)
            if (a->pages[i].cls != FRT_CLASS_NONE && a->pages[i].cls != FRT_CLASS_RAW)
                *total += a->pages[i].used;
}

static void gather_full_heap(frt_heap *h, void *arg)
{
    gather_ctx *c = arg;
    gc_work *w = c->w;
    for (frt_arena *a = h->arenas; a; a = a->next) {
        for (unsigned i = 0; i < FRT_PAGES_PER_ARENA; i++) {
            frt_page *p = &a->pages[i];
            if (p->cls == FRT_CLASS_NONE || p->cls == FRT_CLASS_RAW || p->used == 0)
                continue;
            if (frt__gc_work_reserve(w, p->used))
                return;
            size_t bs = p->block_size;
            uint8_t *b = p->start, *end = b + (size_t)p->reserved * bs;
            for (; b < end; b += bs) {
                frt_object *o = (frt_object *)b;
                if (candidate(o, 2))
                    add(w, o);
                else if (o->ob_type && (o->ob_gc_bits & FRT_GC_TRACKED) && o->ob_gen < 2)
                    /* Dying now (count 0, e.g. on the merge's dead list):
                     * this run forgets every young bit, so should its
                     * finalizer resurrect it, it must live on where a full
                     * run leaves everything, or no young run would ever
                     * see it again. */
                    o->ob_gen = 2;
            }
        }
    }
}

void frt__gc_gather(gc_work *w, int gen)
{
    gather_ctx c = {w, gen, 0};
    if (gen >= 2) {
        /* Size the set once, from the last runs' survivors plus what was
         * allocated since, capped by the blocks in use (which also counts
         * objects that are no containers): growing by doubling would copy
         * the arrays log n times. The lock is never held at a safepoint,
         * so no parked thread holds it now. */
        size_t total = 0, expect;
        frt__heaps_foreach(count_used, &total);
        pthread_mutex_lock(&frt__gc.lock);
        long young = atomic_load_explicit(&frt__gc.young_count, memory_order_relaxed);
        expect = frt__gc.long_lived_total + frt__gc.long_lived_pending + frt__gc.gen_size[1] +
                 (young > 0 ? (size_t)young : 0);
        pthread_mutex_unlock(&frt__gc.lock);
        expect += expect / 8 + 1024;
        /* Only a hint: without the memory, the walk grows the set as it goes. */
        if (frt__gc_work_reserve(w, expect < total ? expect : total))
            w->failed = 0;
    }
    frt__heaps_foreach(gen >= 2 ? gather_full_heap : gather_young_heap, &c);
    frt__large_walk(gather_any, &c);
}

void frt__gc_promote(frt_object *o, int gen)
{
    int old = o->ob_gen;
    int next = gen < 2 ? gen + 1 : 2;
    if (old == FRT_GEN_PERMANENT || old == next)
        return;
    o->ob_gen = (uint8_t)next;
    if (atomic_load_explicit(&o->ob_flags, memory_order_relaxed) & FRT_OF_LARGE)
        return;
    /* Young objects' pages are on their heap's young list already (their
     * gen-0 bit put them there), so moving bits needs no list change. */
    if (old < 2)
        frt__genmap_clear(o, old);
    if (next < 2)
        frt__genmap_set(o, next);
}

static void forget_heap(frt_heap *h, void *arg)
{
    (void)arg;
    while (h->young_pages)
        frt__genmap_page_forget(h, h->young_pages);
}

void frt__gc_forget_young(void)
{
    frt__heaps_foreach(forget_heap, NULL);
}

void frt__gc_merge_all_queues(frt_object **dead)
{
    for (frt_tstate *ts = frt__tstate_first(); ts; ts = ts->next)
        frt__brc_take_queue(ts, dead);
}
