/* Generation maps: scanning and forgetting pages (genmap.h). */
#include "genmap.h"

static void page_word_range(const frt_page *p, size_t *w0, size_t *w1)
{
    frt_arena *a = frt_arena_of(p);
    uintptr_t base = (uintptr_t)a;
    uintptr_t lo = (uintptr_t)p->start - base;
    uintptr_t hi = (uintptr_t)a + (size_t)(p->index + 1) * FRT_PAGE_SIZE - base;
    *w0 = (lo >> FRT_GRANULE_SHIFT) >> 6;
    *w1 = ((hi >> FRT_GRANULE_SHIFT) + 63) >> 6;
}

void frt__genmap_page_forget(frt_heap *h, frt_page *p)
{
    frt_arena *a = frt_arena_of(p);
    size_t w0, w1;
    page_word_range(p, &w0, &w1);
    for (size_t w = w0; w < w1; w++)
        a->genmap[0][w] = a->genmap[1][w] = 0;
    if (p->yprev)
        p->yprev->ynext = p->ynext;
    else
        h->young_pages = p->ynext;
    if (p->ynext)
        p->ynext->yprev = p->yprev;
    p->ynext = p->yprev = NULL;
    p->in_young = 0;
}

int frt__genmap_scan(frt_page *p, int gen, frt_genmap_visit fn, void *arg)
{
    frt_arena *a = frt_arena_of(p);
    size_t w0, w1;
    uint64_t any = 0;
    page_word_range(p, &w0, &w1);
    for (size_t w = w0; w < w1; w++) {
        uint64_t bits = a->genmap[gen][w];
        while (bits) {
            unsigned b = (unsigned)__builtin_ctzll(bits);
            bits &= bits - 1;
            void *obj = (char *)a + (((w << 6) + b) << FRT_GRANULE_SHIFT);
            if (!fn(obj, arg))
                a->genmap[gen][w] &= ~((uint64_t)1 << b);
        }
        any |= a->genmap[0][w] | a->genmap[1][w];
    }
    return any != 0;
}
