/* Generation maps: how a young collection finds young objects without
 * walking the heap.
 *
 * Each arena has one bit per 16-byte granule for generation 0 and one for
 * generation 1 (16 KiB per 1 MiB arena). The owner sets the gen-0 bit when
 * it allocates a tracked object and puts the page on its heap's young_pages
 * list; the collector, with the world stopped, scans only the listed pages'
 * bits, moves bits as objects are promoted, and drops pages whose bits are
 * all clear. Objects are checked when visited (tracked? that generation?),
 * so a bit left behind by a freed or untracked object costs a check, never
 * a wrong answer. A page that is retired clears its bits first, since the
 * next size class cuts it at other offsets. */
#ifndef FRT_RUNTIME_GENMAP_H
#define FRT_RUNTIME_GENMAP_H

#include "pool.h"

static inline void frt_genmap_pos(const void *p, frt_arena **a, size_t *word, uint64_t *mask)
{
    *a = frt_arena_of(p);
    size_t g = ((uintptr_t)p - (uintptr_t)*a) >> FRT_GRANULE_SHIFT;
    *word = g >> 6;
    *mask = (uint64_t)1 << (g & 63);
}

static inline void frt__genmap_set(const void *p, int gen)
{
    frt_arena *a;
    size_t w;
    uint64_t m;
    frt_genmap_pos(p, &a, &w, &m);
    a->genmap[gen][w] |= m;
}

static inline void frt__genmap_clear(const void *p, int gen)
{
    frt_arena *a;
    size_t w;
    uint64_t m;
    frt_genmap_pos(p, &a, &w, &m);
    a->genmap[gen][w] &= ~m;
}

/* The owner marks a new tracked object of its own heap as generation 0. */
static inline void frt__genmap_mark_new(frt_heap *h, const void *p)
{
    frt__genmap_set(p, 0);
    frt_page *pg = frt_page_of(p);
    if (FRT_UNLIKELY(!pg->in_young)) {
        pg->in_young = 1;
        pg->yprev = NULL;
        pg->ynext = h->young_pages;
        if (h->young_pages)
            h->young_pages->yprev = pg;
        h->young_pages = pg;
    }
}

/* Clear a page's bits and take it off the young list. */
void frt__genmap_page_forget(frt_heap *h, frt_page *p);

/* Call fn for each granule of page p whose gen bit is set, clearing bits
 * for which fn returns 0. Returns 1 if any bit of either generation is
 * still set in the page afterwards. */
typedef int (*frt_genmap_visit)(void *obj, void *arg);
int frt__genmap_scan(frt_page *p, int gen, frt_genmap_visit fn, void *arg);

#endif
