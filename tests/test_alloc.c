/* The allocator on one thread: the size-class table, every class and some
 * large sizes through frt_new_var, frt_new's fast path at every size it
 * takes, zeroing and alignment, reuse of freed
 * blocks, exact heap statistics along a scripted sequence, and trimming
 * back to the OS after a 64 MiB peak. */
#include <stdint.h>
#include <string.h>

#include <frt/frt.h>

#include "check.h"
#include "runtime/arena.h"
#include "runtime/os.h"
#include "runtime/pool.h"

/* The bare header: frt_new_var(&blob_type, extra) asks for exactly
 * sizeof(frt_object) + extra bytes, so a test can aim at any total size. */
typedef struct blob {
    frt_object ob;
} blob;

static long destroyed;

static void blob_destroy(frt_object *self)
{
    (void)self;
    destroyed++;
}

static const frt_type blob_type = {"blob", sizeof(blob), NULL, NULL, NULL, blob_destroy};

#define HDR sizeof(frt_object)
#define LARGE_HDR 64 /* large.c keeps each large object behind a 64-byte header */

static unsigned char *body(frt_object *o)
{
    return (unsigned char *)o + HDR;
}

/* A total size of `size` bytes (header included). */
static frt_object *new_total(size_t size)
{
    CHECK(size >= HDR);
    return frt_new_var(&blob_type, size - HDR);
}

static size_t page_round(size_t n)
{
    return (n + 4095) & ~(size_t)4095;
}

static frt_heap_stats stats(void)
{
    frt_heap_stats st;
    memset(&st, 0xa5, sizeof st); /* so a field the library forgets to fill shows up */
    frt_heap_get_stats(&st);
    return st;
}

/* The expected heap, kept by the test as it allocates and frees. */
typedef struct model {
    size_t blocks, bytes;      /* small blocks: count and class bytes */
    size_t large, large_bytes; /* large objects: count and requested bytes */
    size_t large_map;          /* large objects: what the OS mapped for them */
} model;

static void model_add(model *m, size_t size, int sign)
{
    if (size <= FRT_SMALL_MAX) {
        m->blocks += (size_t)sign;
        m->bytes += (size_t)sign * frt__class_size[frt_size_class(size)];
    } else {
        m->large += (size_t)sign;
        m->large_bytes += (size_t)sign * size;
        m->large_map += (size_t)sign * page_round(size + LARGE_HDR);
    }
}

/* The stats of the previous check_model, since this runtime started. */
static frt_heap_stats last;

/* frt_init: the peaks and the returned count start again from here. */
static void start(void)
{
    CHECK_EQ(frt_init(NULL), 0);
    memset(&last, 0, sizeof last);
    frt_heap_stats st = stats();
    CHECK_EQ(st.arenas_peak, st.arenas);
    CHECK_EQ(st.bytes_mapped_peak, st.bytes_mapped);
    CHECK_EQ(st.arenas_returned, 0);
}

/* Every field the model predicts, exactly, and the invariants between
 * the fields. */
static void check_model(const model *m, int line)
{
    frt_heap_stats st = stats();
    size_t arena_bytes = st.arenas * FRT_ARENA_SIZE;
    if (st.blocks_in_use != m->blocks + m->large || st.bytes_in_use != m->bytes + m->large_bytes ||
        st.large_objects != m->large || st.bytes_mapped != arena_bytes + m->large_map ||
        st.bytes_mapped_peak < st.bytes_mapped) {
        fprintf(stderr,
                "line %d: blocks %zu (want %zu), bytes %zu (want %zu), large %zu (want %zu), "
                "arenas %zu (peak %zu), mapped %zu (peak %zu), large objects map %zu\n",
                line, st.blocks_in_use, m->blocks + m->large, st.bytes_in_use,
                m->bytes + m->large_bytes, st.large_objects, m->large, st.arenas, st.arenas_peak,
                st.bytes_mapped, st.bytes_mapped_peak, m->large_map);
    }
    CHECK_EQ(st.blocks_in_use, m->blocks + m->large);
    CHECK_EQ(st.bytes_in_use, m->bytes + m->large_bytes);
    CHECK_EQ(st.large_objects, m->large);
    /* Mapped means what the OS gave: whole arenas, and for a large object
     * its header and the rounding to pages as well. */
    CHECK_EQ(st.bytes_mapped, arena_bytes + m->large_map);
    CHECK(st.arenas <= st.arenas_peak);
    /* A peak is never below the present, and never comes down; nor does a
     * count of things returned. */
    CHECK(st.bytes_mapped_peak >= st.bytes_mapped);
    CHECK(st.bytes_mapped_peak >= st.arenas_peak * FRT_ARENA_SIZE);
    CHECK(st.arenas_peak >= last.arenas_peak);
    CHECK(st.bytes_mapped_peak >= last.bytes_mapped_peak);
    CHECK(st.arenas_returned >= last.arenas_returned);
    last = st;
    /* Live blocks fit in what is mapped. */
    CHECK(st.bytes_in_use <= st.bytes_mapped);
}

/* --- the table --------------------------------------------------------- */

static void test_size_classes(void)
{
    /* 16-byte steps up to 128 ... */
    for (unsigned c = 0; c < 8; c++)
        CHECK_EQ(frt__class_size[c], 16 * (c + 1));
    CHECK_EQ(frt__class_size[FRT_NCLASSES - 1], FRT_SMALL_MAX);
    for (unsigned c = 1; c < FRT_NCLASSES; c++) {
        CHECK(frt__class_size[c] > frt__class_size[c - 1]);
        CHECK_EQ(frt__class_size[c] % 16, 0);
        /* ... then four classes per doubling: at most 25% waste for any
         * size that lands in the class. */
        if (frt__class_size[c - 1] >= 128)
            CHECK(4 * (uint64_t)frt__class_size[c] <= 5 * (uint64_t)(frt__class_size[c - 1] + 1));
    }
    /* The class object sizes start at: the header alone is class 1. */
    CHECK_EQ(frt_size_class(HDR), 1);
    CHECK_EQ(FRT_CLASS_RAW, 0);
    for (size_t s = 1; s <= FRT_SMALL_MAX; s++) {
        unsigned c = frt_size_class(s);
        CHECK(c < FRT_NCLASSES);
        if (frt__class_size[c] < s || (c > 0 && frt__class_size[c - 1] >= s)) {
            fprintf(stderr, "size %zu -> class %u (%u bytes)\n", s, c, frt__class_size[c]);
            CHECK(0);
        }
        if (s > 128)
            CHECK(4 * (uint64_t)frt__class_size[c] <= 5 * (uint64_t)s);
    }
    /* Every class is reachable. */
    for (unsigned c = 0; c < FRT_NCLASSES; c++)
        CHECK_EQ(frt_size_class(frt__class_size[c]), c);
}

/* --- every class, and large sizes ----------------------------------------- */

/* Allocate total size `size`: zeroed past the header, aligned, in the block
 * class the table promises, writable to its last byte. */
static frt_object *check_fresh(size_t size)
{
    frt_object *o = new_total(size);
    CHECK(o != NULL);
    CHECK(frt_typeof(o) == &blob_type);
    CHECK_EQ(frt_refcount(o), 1);
    CHECK_EQ((uintptr_t)o % 16, 0);
    if (size > FRT_SMALL_MAX) {
        CHECK_EQ((uintptr_t)o % 64, 0);
    } else {
        frt_page *p = frt_page_of(o);
        CHECK_EQ(p->cls, frt_size_class(size));
        CHECK_EQ(p->block_size, frt__class_size[frt_size_class(size)]);
        CHECK((unsigned char *)o >= p->start);
        CHECK((size_t)((unsigned char *)o - p->start) % p->block_size == 0);
        /* The whole block lies in its page. */
        CHECK(frt_page_of((unsigned char *)o + p->block_size - 1) == p);
    }
    unsigned char *b = body(o);
    for (size_t i = 0; i < size - HDR; i++) {
        if (b[i] != 0) {
            fprintf(stderr, "size %zu: byte %zu of the body is %#x\n", size, i, b[i]);
            CHECK(0);
        }
    }
    return o;
}

static void fill(frt_object *o, size_t size, unsigned char v)
{
    memset(body(o), v, size - HDR);
}

static int intact(frt_object *o, size_t size, unsigned char v)
{
    const unsigned char *b = body(o);
    for (size_t i = 0; i < size - HDR; i++)
        if (b[i] != v)
            return 0;
    return frt_typeof(o) == &blob_type;
}

static void test_every_class(void)
{
    start();
    model m = {0};
    check_model(&m, __LINE__);
    destroyed = 0;
    long expect_destroyed = 0;

    /* Per class: its largest and its smallest size, three objects each,
     * filled with distinct bytes so an overrun into a neighbour shows. */
    enum { PER = 3 };
    for (unsigned c = 1; c < FRT_NCLASSES; c++) {
        size_t sizes[2] = {frt__class_size[c], frt__class_size[c - 1] + 1};
        if (sizes[1] < HDR)
            sizes[1] = HDR;
        for (int k = 0; k < 2; k++) {
            size_t size = sizes[k];
            frt_object *objs[PER];
            for (int i = 0; i < PER; i++) {
                objs[i] = check_fresh(size);
                model_add(&m, size, 1);
                fill(objs[i], size, (unsigned char)(0x11 * (i + 1)));
            }
            check_model(&m, __LINE__);
            for (int i = 0; i < PER; i++)
                CHECK(intact(objs[i], size, (unsigned char)(0x11 * (i + 1))));
            for (int i = 0; i < PER; i++) {
                frt_decref(objs[i]);
                model_add(&m, size, -1);
                expect_destroyed++;
            }
            CHECK_EQ(destroyed, expect_destroyed);
            check_model(&m, __LINE__);
        }
    }

    /* Large: just past the small limit, odd sizes, several MiB. */
    const size_t large[] = {FRT_SMALL_MAX + 1, FRT_SMALL_MAX + 16, 20000, 65536 - LARGE_HDR,
                            65536, (1u << 20) + 3, (3u << 20) + 5};
    enum { NL = sizeof large / sizeof large[0] };
    frt_object *lo[NL];
    for (int i = 0; i < NL; i++) {
        lo[i] = check_fresh(large[i]);
        model_add(&m, large[i], 1);
        fill(lo[i], large[i], (unsigned char)(0x30 + i));
        check_model(&m, __LINE__);
    }
    for (int i = 0; i < NL; i++)
        CHECK(intact(lo[i], large[i], (unsigned char)(0x30 + i)));
    /* Free out of order: the list of large objects stays consistent. */
    for (int i = 1; i < NL; i += 2) {
        frt_decref(lo[i]);
        model_add(&m, large[i], -1);
        check_model(&m, __LINE__);
    }
    for (int i = 0; i < NL; i += 2) {
        CHECK(intact(lo[i], large[i], (unsigned char)(0x30 + i)));
        frt_decref(lo[i]);
        model_add(&m, large[i], -1);
        check_model(&m, __LINE__);
    }
    CHECK_EQ(destroyed, expect_destroyed + NL);
    CHECK_EQ(frt_shutdown(), 0);
}

/* --- reuse ---------------------------------------------------------------- */

/* Free a dirty block, then allocate from its class until it comes back: it
 * must, within one page's worth of blocks, and come back zeroed. */
static void test_recycle_zeroed(void)
{
    start();
    for (unsigned c = 1; c < FRT_NCLASSES; c++) {
        size_t size = frt__class_size[c];
        frt_object *victim = new_total(size);
        CHECK(victim);
        fill(victim, size, 0xee);
        frt_page *page = frt_page_of(victim);
        size_t cap = page->capacity;
        frt_heap_stats before = stats();
        long maps = frt_test_fault_count(FRT_FAULT_MAP);
        frt_decref(victim);

        frt_object **held = malloc((cap + 1) * sizeof *held);
        CHECK(held);
        size_t n = 0;
        int found = 0;
        while (!found && n <= cap) {
            frt_object *o = check_fresh(size); /* checks the zeroing */
            held[n++] = o;
            found = o == victim;
        }
        if (!found)
            fprintf(stderr, "class %u: freed block not reused in %zu allocations\n", c, n);
        CHECK(found);
        /* Reuse came from the page we had, not from the OS. */
        CHECK_EQ(frt_test_fault_count(FRT_FAULT_MAP), maps);
        CHECK_EQ(stats().arenas, before.arenas);
        for (size_t i = 0; i < n; i++)
            frt_decref(held[i]);
        free(held);
    }
    CHECK_EQ(stats().blocks_in_use, 0);
    CHECK_EQ(frt_shutdown(), 0);
}

static void count_block(void *block, size_t size, void *arg)
{
    (void)block;
    (void)size;
    ++*(size_t *)arg;
}

/* A page carved over memory that held other objects (a page emptied and
 * formatted again for another class): the blocks carved but not handed
 * out yet must read as free to a heap walk (ob_type NULL), whatever bytes
 * the old objects left where the new headers fall; the collector walks
 * heaps this way. */
static void test_carve_over_dirty(void)
{
    start();
    /* Fill one page of 256-byte objects with dirty bodies, and step onto
     * the next, so that the first is no longer current. */
    frt_object **v = malloc(4096 * sizeof *v);
    CHECK(v);
    size_t n = 0;
    frt_page *dirty = NULL;
    do {
        CHECK(n < 4096);
        v[n] = new_total(256);
        CHECK(v[n]);
        fill(v[n], 256, 0xee);
        if (!dirty)
            dirty = frt_page_of(v[n]);
    } while (frt_page_of(v[n++]) == dirty);
    uint8_t *dirty_start = dirty->start;
    /* Empty it: it goes back to the heap's free pages, first in line. */
    for (size_t i = 0; i + 1 < n; i++)
        frt_decref(v[i]);
    v[0] = v[n - 1];
    /* 48-byte blocks: their headers fall inside the old bodies, and seven
     * of them leave most of the first carved stretch unused. */
    for (size_t i = 1; i < 8; i++)
        v[i] = check_fresh(48);
    CHECK(frt_page_of(v[1]) == dirty && dirty->start == dirty_start);
    CHECK(dirty->reserved > 7);
    size_t seen = 0;
    frt__heaps_walk_objects(count_block, &seen);
    CHECK_EQ(seen, 8);
    for (size_t i = 0; i < 8; i++)
        frt_decref(v[i]);
    free(v);
    CHECK_EQ(stats().blocks_in_use, 0);
    CHECK_EQ(frt_shutdown(), 0);
}

/* frt_new's fast path (a type of exactly the size, nothing to destroy)
 * at every size it takes, and just past it: blocks freed dirty come back
 * zeroed up to the size and with a whole header, and zeroing them touches
 * no byte of the blocks beside them. Three are freed, so that after the
 * slow path's refill hands out the first, the fast path hands out the
 * others. */
static void test_new_every_size(void)
{
    start();
    enum { NB = 6 };
    for (size_t size = HDR; size <= HDR + 256 + 48; size++) {
        frt_type t = {"sized", size, NULL, NULL, NULL, NULL};
        frt_object *o[NB];
        for (int i = 0; i < NB; i++)
            CHECK((o[i] = frt_new(&t)) != NULL);
        size_t bs = frt_page_of(o[0])->block_size;
        for (int i = 0; i < NB; i++)
            memset(body(o[i]), 0xee, bs - HDR);
        for (int i = 1; i < NB; i += 2)
            frt_decref(o[i]);
        size_t cap = frt_page_of(o[0])->capacity, n = 0;
        frt_object **held = malloc((cap + 1) * sizeof *held);
        CHECK(held);
        int found = 0;
        while (found < NB / 2 && n <= cap) {
            frt_object *x = frt_new(&t);
            CHECK(x != NULL);
            CHECK(frt_typeof(x) == &t);
            CHECK_EQ(frt_refcount(x), 1);
            CHECK(frt_is_owned(x));
            const unsigned char *b = body(x);
            for (size_t k = 0; k < size - HDR; k++) {
                if (b[k] != 0)
                    fprintf(stderr, "size %zu: byte %zu of the body is %#x\n", size, k, b[k]);
                CHECK_EQ(b[k], 0);
            }
            held[n++] = x;
            for (int i = 1; i < NB; i += 2)
                found += x == o[i];
        }
        CHECK_EQ(found, NB / 2);
        for (int i = 0; i < NB; i += 2) {
            const unsigned char *b = body(o[i]);
            for (size_t k = 0; k < bs - HDR; k++)
                CHECK_EQ(b[k], 0xee);
            frt_decref(o[i]);
        }
        for (size_t i = 0; i < n; i++)
            frt_decref(held[i]);
        free(held);
        CHECK_EQ(stats().blocks_in_use, 0);
    }
    CHECK_EQ(frt_shutdown(), 0);
}

/* Alloc/free cycles never grow the heap: one object at a time in every
 * class, then batches of mixed classes that span several pages. */
static void test_no_growth(void)
{
    start();
    enum { CYCLES = 100000 };
    for (unsigned c = 1; c < FRT_NCLASSES; c += 5) {
        frt_object *o = new_total(frt__class_size[c]);
        frt_decref(o);
        frt_heap_stats st0 = stats();
        long maps = frt_test_fault_count(FRT_FAULT_MAP);
        for (int i = 0; i < CYCLES; i++) {
            frt_object *x = new_total(frt__class_size[c]);
            CHECK(x);
            frt_decref(x);
        }
        frt_heap_stats st1 = stats();
        CHECK_EQ(frt_test_fault_count(FRT_FAULT_MAP), maps);
        CHECK_EQ(st1.arenas, st0.arenas);
        CHECK_EQ(st1.arenas_peak, st0.arenas_peak);
        CHECK_EQ(st1.arenas_returned, st0.arenas_returned);
        CHECK_EQ(st1.blocks_in_use, 0);
    }

    /* 64 objects of classes that need extra pages (16 KiB blocks: 4 a
     * page): after the first round every page and arena is recycled. */
    enum { BATCH = 64 };
    frt_object *objs[BATCH];
    long maps = 0;
    frt_heap_stats st0 = {0};
    unsigned rng = 1;
    for (int round = 0; round < CYCLES / BATCH; round++) {
        if (round == 1) {
            maps = frt_test_fault_count(FRT_FAULT_MAP);
            st0 = stats();
        }
        for (int i = 0; i < BATCH; i++) {
            rng = rng * 1103515245u + 12345u;
            size_t size = (i % 4 == 0) ? FRT_SMALL_MAX : HDR + (rng >> 8) % 4000;
            objs[i] = new_total(size);
            CHECK(objs[i]);
        }
        CHECK_EQ(stats().blocks_in_use, BATCH);
        for (int i = 0; i < BATCH; i++)
            frt_decref(objs[(i * 7) % BATCH]); /* 7 is prime to 64: each once */
    }
    frt_heap_stats st1 = stats();
    CHECK_EQ(frt_test_fault_count(FRT_FAULT_MAP), maps);
    CHECK_EQ(st1.arenas_peak, st0.arenas_peak);
    CHECK(st1.arenas <= st0.arenas_peak);
    CHECK_EQ(st1.blocks_in_use, 0);
    CHECK_EQ(frt_shutdown(), 0);
}

/* A live set freed at random, one object replaced per step (frt-bench-
 * alloc's ws10k): when a class's current page runs out, the next one must
 * come with a batch of blocks, not the one or two freed into it since it
 * was last used (each refill is a slow-path call: that was one per
 * allocation or two with 256-byte objects). Counted as the allocations
 * per change of page; and the batching may keep at most 1/32 of the
 * class's pages unused, plus the one being carved (arenas at the end). */
static void test_working_set_batches(void)
{
    start();
    enum { LIVE = 10000, STEPS = 200000 };
    static const size_t sizes[] = {32, 256};
    frt_object **v = malloc(LIVE * sizeof *v);
    CHECK(v);
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        for (int i = 0; i < LIVE; i++)
            CHECK((v[i] = new_total(sizes[s])));
        uint64_t rng = 0x9e3779b97f4a7c15ull;
        frt_page *prev_page = NULL;
        long changes = 0;
        for (int i = 0; i < STEPS; i++) {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            uint32_t k = (uint32_t)(((rng >> 32) * (uint64_t)LIVE) >> 32);
            frt_decref(v[k]);
            CHECK((v[k] = new_total(sizes[s])));
            changes += frt_page_of(v[k]) != prev_page;
            prev_page = frt_page_of(v[k]);
        }
        frt_page *p = frt_page_of(v[0]);
        size_t pages = (LIVE + p->capacity - 1) / p->capacity;
        size_t arenas = (pages + pages / 32 + 1 + FRT_PAGES_PER_ARENA - 2) / (FRT_PAGES_PER_ARENA - 1);
        fprintf(stderr, "working set of %d x %zu B: %.1f allocations per page change, %zu arenas\n",
                LIVE, sizes[s], (double)STEPS / (double)changes, stats().arenas);
        CHECK(changes * 4 <= STEPS);
        CHECK(stats().arenas <= arenas);
        for (int i = 0; i < LIVE; i++)
            frt_decref(v[i]);
    }
    free(v);
    CHECK_EQ(stats().blocks_in_use, 0);
    CHECK_EQ(frt_shutdown(), 0);
}

/* --- stats along a script ------------------------------------------------- */

static void test_stats_script(void)
{
    start();
    destroyed = 0;
    model m = {0};
    frt_heap_stats st = stats();
    /* A fresh runtime holds nothing. */
    CHECK_EQ(st.arenas, 0);
    CHECK_EQ(st.bytes_mapped, 0);
    CHECK_EQ(st.arenas_peak, 0);
    CHECK_EQ(st.bytes_mapped_peak, 0);
    check_model(&m, __LINE__);

    /* The first object maps the first arena. */
    frt_object *a = new_total(HDR);
    model_add(&m, HDR, 1);
    check_model(&m, __LINE__);
    st = stats();
    CHECK_EQ(st.arenas, 1);
    CHECK_EQ(st.bytes_mapped, FRT_ARENA_SIZE);
    CHECK_EQ(st.arenas_peak, 1);
    CHECK_EQ(st.bytes_mapped_peak, FRT_ARENA_SIZE);

    /* One page per class: classes 1..16 take the arena's 16 pages, the
     * 17th class needs a second arena. */
    frt_object *per_class[FRT_NCLASSES] = {0};
    per_class[1] = a;
    for (unsigned c = 2; c <= FRT_PAGES_PER_ARENA; c++) {
        per_class[c] = new_total(frt__class_size[c]);
        model_add(&m, frt__class_size[c], 1);
        check_model(&m, __LINE__);
        CHECK_EQ(stats().arenas, 1);
    }
    per_class[17] = new_total(frt__class_size[17]);
    model_add(&m, frt__class_size[17], 1);
    check_model(&m, __LINE__);
    st = stats();
    CHECK_EQ(st.arenas, 2);
    CHECK_EQ(st.bytes_mapped, 2 * FRT_ARENA_SIZE);
    CHECK(frt_arena_of(per_class[17]) != frt_arena_of(per_class[1]));

    /* A second object of a class shares the page; refcounts do not move
     * the stats; only the last decref frees. */
    frt_object *a2 = new_total(HDR);
    model_add(&m, HDR, 1);
    check_model(&m, __LINE__);
    CHECK(frt_page_of(a2) == frt_page_of(a));
    frt_incref(a2);
    frt_decref(a2);
    check_model(&m, __LINE__);
    CHECK_EQ(destroyed, 0);

    /* A large object counts as one block and its own mapping. */
    frt_object *big = new_total(100000);
    model_add(&m, 100000, 1);
    check_model(&m, __LINE__);
    CHECK_EQ(stats().arenas, 2);

    frt_decref(a);
    model_add(&m, HDR, -1);
    check_model(&m, __LINE__);
    frt_decref(big);
    model_add(&m, 100000, -1);
    check_model(&m, __LINE__);
    CHECK_EQ(stats().bytes_mapped, 2 * FRT_ARENA_SIZE);
    CHECK_EQ(destroyed, 2);

    /* Free every per-class object: pages that are their class's current
     * page stay with the heap until a trim, so no arena goes yet. */
    for (unsigned c = 2; c <= 17; c++) {
        frt_decref(per_class[c]);
        model_add(&m, frt__class_size[c], -1);
        check_model(&m, __LINE__);
    }
    frt_decref(a2);
    model_add(&m, HDR, -1);
    check_model(&m, __LINE__);
    CHECK_EQ(destroyed, 2 + 16 + 1);
    st = stats();
    CHECK_EQ(st.blocks_in_use, 0);
    CHECK_EQ(st.bytes_in_use, 0);

    /* Trim: both arenas back to the OS, and the call says so. */
    size_t trimmed = frt_heap_trim();
    st = stats();
    CHECK_EQ(st.arenas, 0);
    CHECK_EQ(st.bytes_mapped, 0);
    CHECK_EQ(st.arenas_returned, 2);
    CHECK_EQ(trimmed, 2 * FRT_ARENA_SIZE);
    CHECK_EQ(st.arenas_peak, 2);
    /* The most ever mapped: both arenas and the large object at once. */
    CHECK_EQ(st.bytes_mapped_peak, 2 * FRT_ARENA_SIZE + page_round(100000 + LARGE_HDR));
    CHECK_EQ(frt_heap_trim(), 0); /* nothing left to give */
    check_model(&m, __LINE__);

    /* The heap works after a trim, from a fresh arena. */
    frt_object *again = check_fresh(200);
    model_add(&m, 200, 1);
    check_model(&m, __LINE__);
    CHECK_EQ(stats().arenas, 1);
    frt_decref(again);
    model_add(&m, 200, -1);
    check_model(&m, __LINE__);
    CHECK_EQ(frt_shutdown(), 0);
    /* Shutdown gave everything back. */
    st = stats();
    CHECK_EQ(st.arenas, 0);
    CHECK_EQ(st.bytes_mapped, 0);
}

/* --- trim after a peak ---------------------------------------------------- */

static void test_trim_peak(void)
{
    start();
    frt_heap_trim();
    frt_heap_stats base = stats();
    destroyed = 0;

    /* Mixed classes, weighted to small sizes, up to 64 MiB in live blocks. */
    const size_t target = (size_t)64 << 20;
    size_t cap = 1 << 20, n = 0, bytes = 0;
    frt_object **objs = malloc(cap * sizeof *objs);
    CHECK(objs);
    unsigned rng = 7;
    while (bytes < target) {
        rng = rng * 1103515245u + 12345u;
        unsigned r = rng >> 8;
        size_t size;
        switch (r % 8) {
        case 0: case 1: case 2: size = HDR + 1 + r % 96; break;
        case 3: case 4: size = HDR + 1 + r % 1000; break;
        case 5: size = HDR + 1 + r % 4000; break;
        case 6: size = 2048 + r % 8000; break;
        default: size = 8192 + r % (FRT_SMALL_MAX - 8192 + 1); break;
        }
        CHECK(n < cap);
        frt_object *o = new_total(size);
        CHECK(o);
        body(o)[0] = (unsigned char)n;
        objs[n++] = o;
        bytes += frt__class_size[frt_size_class(size)];
    }
    frt_heap_stats peak = stats();
    CHECK_EQ(peak.blocks_in_use, base.blocks_in_use + n);
    CHECK_EQ(peak.bytes_in_use, base.bytes_in_use + bytes);
    CHECK(peak.arenas >= 64);
    CHECK(peak.arenas_peak >= peak.arenas);

    /* Free in a scattered order, so pages empty in no particular order. */
    size_t stride = 7919; /* prime, and n is not a multiple of it */
    CHECK(n % stride != 0);
    for (size_t i = 0, j = 0; i < n; i++, j = (j + stride) % n) {
        CHECK_EQ(body(objs[j])[0], (unsigned char)j);
        frt_decref(objs[j]);
    }
    CHECK_EQ(destroyed, (long)n);
    free(objs);
    frt_heap_stats freed = stats();
    CHECK_EQ(freed.blocks_in_use, base.blocks_in_use);
    CHECK_EQ(freed.bytes_in_use, base.bytes_in_use);

    size_t trimmed = frt_heap_trim();
    frt_heap_stats after = stats();
    CHECK_EQ(trimmed, (after.arenas_returned - freed.arenas_returned) * FRT_ARENA_SIZE);
    CHECK(after.arenas_returned > base.arenas_returned);
    size_t peak_bytes = after.arenas_peak * FRT_ARENA_SIZE;
    CHECK(after.bytes_mapped_peak >= peak_bytes);
    fprintf(stderr, "trim: peak %zu MiB mapped (%zu MiB in use), after trim %zu KiB (%.2f%%)\n",
            peak_bytes >> 20, peak.bytes_in_use >> 20, after.bytes_mapped >> 10,
            100.0 * (double)after.bytes_mapped / (double)peak_bytes);
    /* At least 90% of the peak back to the OS ... */
    CHECK(after.bytes_mapped * 10 <= peak_bytes);
    /* ... in fact every arena the workload added: each one is empty. */
    CHECK(after.arenas <= base.arenas);
    CHECK_EQ(frt_shutdown(), 0);
}

/* Delayed purge: arenas that empty beyond arena_cache stay mapped for the
 * purge delay, so allocating them again maps nothing; past the delay the
 * next purge check (here frt_safepoint) unmaps them without a trim; and a
 * trim unmaps them at once. The delay is set by the test (an hour, then
 * none), so no step depends on how fast this machine runs. */
static void fill_256(frt_object **objs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        objs[i] = new_total(256);
        CHECK(objs[i]);
    }
}

static void drop(frt_object **objs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        frt_decref(objs[i]);
}

static void test_delayed_purge(void)
{
    start();
    frt_heap_trim();
    frt_test_fault_set(FRT_FAULT_MAP, 0, 0);
    frt__arena_set_purge_delay((uint64_t)3600 * 1000000000u);
    const size_t n = 16 * FRT_ARENA_SIZE / 256; /* about 16 arenas, beyond arena_cache (4) */
    frt_object **objs = malloc(n * sizeof *objs);
    CHECK(objs);
    fill_256(objs, n);
    frt_heap_stats full = stats();
    CHECK(full.arenas >= 12);
    drop(objs, n);
    frt_heap_stats emptied = stats();
    CHECK_EQ(emptied.arenas, full.arenas); /* all kept: the delay has not passed */
    long maps = frt_test_fault_count(FRT_FAULT_MAP);
    fill_256(objs, n);
    CHECK_EQ(frt_test_fault_count(FRT_FAULT_MAP), maps); /* reused, not mapped again */
    drop(objs, n);

    /* Past the delay, the purge gives back all but arena_cache arenas. */
    frt_safepoint();
    CHECK_EQ(stats().arenas, emptied.arenas); /* an hour has not passed */
    frt__arena_set_purge_delay(0);
    frt_safepoint();
    frt_heap_stats purged = stats();
    fprintf(stderr, "delayed purge: %zu arenas at the peak, %zu kept after freeing, %zu after the "
                    "delay\n", full.arenas, emptied.arenas, purged.arenas);
    CHECK(purged.arenas < emptied.arenas);
    CHECK(purged.arenas_returned > emptied.arenas_returned);

    /* A trim hands back everything at once, delay or not. */
    frt__arena_set_purge_delay((uint64_t)3600 * 1000000000u);
    fill_256(objs, n);
    drop(objs, n);
    CHECK(stats().arenas > purged.arenas);
    frt_heap_trim();
    CHECK(stats().arenas <= 1); /* at most the pages a trim keeps current */
    frt__arena_set_purge_delay(FRT_ARENA_PURGE_NS);
    free(objs);
    CHECK_EQ(frt_shutdown(), 0);
}

int main(void)
{
    test_delayed_purge();
    test_size_classes();
    test_every_class();
    test_recycle_zeroed();
    test_carve_over_dirty();
    test_new_every_size();
    test_no_growth();
    test_working_set_batches();
    test_stats_script();
    test_trim_peak();
    TEST_PASS("test_alloc");
    return 0;
}
