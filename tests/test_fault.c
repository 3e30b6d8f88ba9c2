/* Fault injection: the k-th arena (or large object) mapping fails, for every
 * k a workload reaches, once or from then on; the k-th allocation of the
 * runtime's own structures fails while a thread attaches; a queue node for
 * biased counting cannot be had. Each time: NULL with ENOMEM (or
 * FRT_ENOMEM), nothing corrupted, the next try works, and shutdown finds
 * nothing alive and gives every mapping back (ASan's leak check sees the
 * rest). */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include <frt/frt.h>

#include "check.h"
#include "runtime/arena.h"
#include "runtime/os.h"

typedef struct rec {
    frt_object ob;
    uint32_t index, size;
    /* size - sizeof(rec) bytes of tail: (index * 7 + i) & 0xff */
} rec;

static long destroyed;

static void rec_destroy(frt_object *self)
{
    (void)self;
    destroyed++;
}

static const frt_type rec_type = {"rec", sizeof(rec), NULL, NULL, NULL, rec_destroy};

static frt_heap_stats stats(void)
{
    frt_heap_stats st;
    frt_heap_get_stats(&st);
    return st;
}

/* The workload: mostly blocks of the biggest classes (4 a page, so arenas
 * fill fast), some small ones, and every 25th a large object with its own
 * mapping. About 6 arenas and 16 large mappings. */
enum { N = 400 };

static size_t size_of(uint32_t i)
{
    if (i % 25 == 24)
        return FRT_SMALL_MAX + 1 + (size_t)i * 100;
    if (i % 3 == 0)
        return sizeof(rec) + 1 + i % 200;
    return 12000 + (size_t)(i * 131) % (FRT_SMALL_MAX - 12000 + 1);
}

static rec *make(uint32_t i)
{
    size_t size = size_of(i);
    rec *r = (rec *)frt_new_var(&rec_type, size - sizeof(rec));
    if (!r)
        return NULL;
    r->index = i;
    r->size = (uint32_t)size;
    unsigned char *tail = (unsigned char *)(r + 1);
    for (size_t k = 0; k < size - sizeof(rec); k++)
        tail[k] = (unsigned char)(i * 7 + k);
    return r;
}

static int intact(const rec *r, uint32_t i)
{
    if (r->index != i || r->size != size_of(i) || frt_typeof(&r->ob) != &rec_type ||
        frt_refcount(&r->ob) != 1)
        return 0;
    const unsigned char *tail = (const unsigned char *)(r + 1);
    for (size_t k = 0; k < r->size - sizeof(rec); k++)
        if (tail[k] != (unsigned char)(i * 7 + k))
            return 0;
    return 1;
}

static void check_all(rec **objs, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (objs[i])
            CHECK(intact(objs[i], i));
}

static size_t count_large(rec **objs, uint32_t n)
{
    size_t k = 0;
    for (uint32_t i = 0; i < n; i++)
        if (objs[i] && objs[i]->size > FRT_SMALL_MAX)
            k++;
    return k;
}

/* Free what the workload holds; the heap is then empty and a trim leaves
 * nothing mapped; shutdown finds nothing alive. */
static void finish(rec **objs, uint32_t n, long live)
{
    destroyed = 0;
    for (uint32_t i = 0; i < n; i++)
        if (objs[i])
            frt_decref(&objs[i]->ob);
    CHECK_EQ(destroyed, live);
    frt_heap_stats st = stats();
    CHECK_EQ(st.blocks_in_use, 0);
    CHECK_EQ(st.large_objects, 0);
    frt_heap_trim();
    st = stats();
    CHECK_EQ(st.arenas, 0);
    CHECK_EQ(st.bytes_mapped, 0);
    CHECK_EQ(frt_shutdown(), 0);
    st = stats();
    CHECK_EQ(st.arenas, 0);
    CHECK_EQ(st.bytes_mapped, 0);
}

/* The clean run: how many mappings the workload makes, and after which
 * allocation each one happened. */
static long maps_after[N];
static long total_maps;

static void clean_run(void)
{
    static rec *objs[N];
    CHECK_EQ(frt_init(NULL), 0);
    CHECK_EQ(frt_test_fault_count(FRT_FAULT_MAP), 0);
    for (uint32_t i = 0; i < N; i++) {
        objs[i] = make(i);
        CHECK(objs[i]);
        maps_after[i] = frt_test_fault_count(FRT_FAULT_MAP);
    }
    total_maps = maps_after[N - 1];
    frt_heap_stats st = stats();
    CHECK_EQ(st.blocks_in_use, N);
    CHECK_EQ(st.large_objects, count_large(objs, N));
    /* Each large object is one mapping, each arena another. */
    CHECK_EQ(total_maps, (long)(st.arenas + st.large_objects));
    CHECK(st.arenas >= 4);
    check_all(objs, N);
    finish(objs, N, N);
    fprintf(stderr, "clean run: %ld mappings (%zu large)\n", total_maps, (size_t)(N / 25));
}

/* The k-th mapping fails once: exactly the allocation that made the k-th
 * mapping in the clean run returns NULL; everything else is as before. */
static void sweep_once(long k)
{
    static rec *objs[N];
    memset(objs, 0, sizeof objs);
    CHECK_EQ(frt_init(NULL), 0);
    frt_test_fault_set(FRT_FAULT_MAP, k, 0);
    int failures = 0;
    for (uint32_t i = 0; i < N; i++) {
        errno = 0;
        objs[i] = make(i);
        if (!objs[i]) {
            failures++;
            CHECK_EQ(errno, ENOMEM);
            /* The one that needed the k-th mapping. */
            CHECK(maps_after[i] >= k);
            CHECK(i == 0 || maps_after[i - 1] < k);
            frt_heap_stats st = stats();
            CHECK_EQ(st.blocks_in_use, i);
            CHECK_EQ(st.large_objects, count_large(objs, i));
            check_all(objs, i);
            /* The fault was one-shot: the same request now works. */
            objs[i] = make(i);
            CHECK(objs[i]);
        }
    }
    CHECK_EQ(failures, k <= total_maps ? 1 : 0);
    CHECK_EQ(frt_test_fault_count(FRT_FAULT_MAP), total_maps + failures);
    frt_heap_stats st = stats();
    CHECK_EQ(st.blocks_in_use, N);
    CHECK_EQ(st.arenas + st.large_objects, (size_t)total_maps);
    check_all(objs, N);
    finish(objs, N, N);
}

/* From the k-th mapping on, every mapping fails, for a while: requests
 * that need no new mapping keep working, those that do fail with ENOMEM
 * and map nothing; once the fault is lifted the rest of the workload
 * runs. */
static void sweep_sticky(long k)
{
    static rec *objs[N];
    memset(objs, 0, sizeof objs);
    CHECK_EQ(frt_init(NULL), 0);
    frt_test_fault_set(FRT_FAULT_MAP, k, 1);
    uint32_t lift = N;
    long live = 0, failures = 0;
    size_t arenas_at_fault = 0;
    for (uint32_t i = 0; i < N; i++) {
        if (i == lift)
            frt_test_fault_set(FRT_FAULT_MAP, 0, 0);
        long seen = frt_test_fault_count(FRT_FAULT_MAP);
        errno = 0;
        objs[i] = make(i);
        long asked = frt_test_fault_count(FRT_FAULT_MAP) - seen;
        if (objs[i]) {
            live++;
            /* While the fault holds, success means no mapping was asked for. */
            if (failures && i < lift) {
                CHECK_EQ(asked, 0);
                CHECK_EQ(stats().arenas, arenas_at_fault);
            }
        } else {
            CHECK(i < lift);
            CHECK_EQ(errno, ENOMEM);
            CHECK_EQ(asked, 1);
            if (failures++ == 0) {
                CHECK(maps_after[i] >= k && (i == 0 || maps_after[i - 1] < k));
                arenas_at_fault = stats().arenas;
                lift = i + 60 < N ? i + 60 : N; /* hold the fault for 60 more */
            }
        }
        frt_heap_stats st = stats();
        CHECK_EQ(st.blocks_in_use, (size_t)live);
        CHECK_EQ(st.large_objects, count_large(objs, i + 1));
    }
    CHECK_EQ(failures > 0, k <= total_maps);
    check_all(objs, N);
    finish(objs, N, live);
}

/* Large objects on their own: a failed mapping changes no statistic. */
static void test_large(void)
{
    CHECK_EQ(frt_init(NULL), 0);
    rec *small = make(0);
    rec *big = make(24); /* a large size */
    CHECK(small && big);
    CHECK(big->size > FRT_SMALL_MAX);
    frt_heap_stats before = stats();
    for (int sticky = 0; sticky <= 1; sticky++) {
        frt_test_fault_set(FRT_FAULT_MAP, 1, sticky);
        for (int t = 0; t < (sticky ? 5 : 1); t++) {
            errno = 0;
            CHECK(frt_new_var(&rec_type, (size_t)1 << 20) == NULL);
            CHECK_EQ(errno, ENOMEM);
            /* Small blocks from a page the heap already has still work. */
            rec *s = make(3);
            CHECK(s);
            frt_decref(&s->ob);
        }
        frt_heap_stats st = stats();
        CHECK_EQ(st.large_objects, before.large_objects);
        CHECK_EQ(st.blocks_in_use, before.blocks_in_use);
        CHECK_EQ(st.bytes_in_use, before.bytes_in_use);
        CHECK_EQ(st.bytes_mapped, before.bytes_mapped);
        CHECK_EQ(st.arenas, before.arenas);
        frt_test_fault_set(FRT_FAULT_MAP, 0, 0);
    }
    CHECK(intact(small, 0) && intact(big, 24));
    rec *big2 = (rec *)frt_new_var(&rec_type, (size_t)1 << 20);
    CHECK(big2);
    CHECK_EQ(stats().large_objects, before.large_objects + 1);
    frt_decref(&big2->ob);
    frt_decref(&big->ob);
    frt_decref(&small->ob);
    frt_heap_trim();
    frt_heap_stats st = stats();
    CHECK_EQ(st.blocks_in_use, 0);
    CHECK_EQ(st.bytes_mapped, 0);
    CHECK_EQ(frt_shutdown(), 0);
}

/* --- the runtime's own allocations: a thread attaching ------------------- */

typedef struct attach_arg {
    int tries;        /* attach attempts that must fail with FRT_ENOMEM */
    int lift;         /* then lift a sticky fault */
    int failed;       /* attempts that did fail so */
    int unexpected;   /* what an attempt returned instead, if anything */
    int attached_after_failure;
    int final_rc;
    int alloc_ok;
} attach_arg;

static void *attacher(void *p)
{
    attach_arg *a = p;
    for (int t = 0; t < a->tries; t++) {
        int rc = frt_thread_attach();
        if (rc == FRT_ENOMEM)
            a->failed++;
        else
            a->unexpected = rc ? rc : 1;
        if (rc == 0)
            return NULL; /* no point going on: reported above */
        if (frt_thread_is_attached())
            a->attached_after_failure = 1;
#if !FRT_DEBUG
        /* Still not attached: refused, not a crash. */
        if (frt_new(&rec_type) != NULL)
            a->attached_after_failure = 1;
#endif
    }
    if (a->lift)
        frt_test_fault_set(FRT_FAULT_ALLOC, 0, 0);
    a->final_rc = frt_thread_attach();
    if (a->final_rc != 0)
        return NULL;
    rec *r = make(5);
    a->alloc_ok = r != NULL && intact(r, 5);
    if (r)
        frt_decref(&r->ob);
    frt_thread_detach();
    return NULL;
}

static void run_attacher(attach_arg *a)
{
    pthread_t t;
    frt_blocking_begin();
    CHECK_EQ(pthread_create(&t, NULL, attacher, a), 0);
    pthread_join(t, NULL);
    frt_blocking_end();
}

/* How many runtime allocations a thread's first attach makes. */
static long attach_allocs(void)
{
    CHECK_EQ(frt_init(NULL), 0);
    long before = frt_test_fault_count(FRT_FAULT_ALLOC);
    attach_arg a = {0};
    run_attacher(&a);
    CHECK_EQ(a.final_rc, 0);
    CHECK(a.alloc_ok);
    long n = frt_test_fault_count(FRT_FAULT_ALLOC) - before;
    CHECK_EQ(frt_shutdown(), 0);
    CHECK(n >= 1);
    return n;
}

static void test_attach_faults(void)
{
    long n = attach_allocs();
    fprintf(stderr, "a first attach makes %ld runtime allocations\n", n);
    for (long k = 1; k <= n + 1; k++) {
        CHECK_EQ(frt_init(NULL), 0);
        frt_test_fault_set(FRT_FAULT_ALLOC, k, 0);
        attach_arg a = {0};
        a.tries = k <= n ? 1 : 0;
        run_attacher(&a);
        CHECK_EQ(a.unexpected, 0);
        CHECK_EQ(a.failed, a.tries);
        CHECK(!a.attached_after_failure);
        CHECK_EQ(a.final_rc, 0);
        CHECK(a.alloc_ok);
        /* The runtime is whole: this thread still allocates. */
        rec *r = make(7);
        CHECK(r && intact(r, 7));
        frt_decref(&r->ob);
        CHECK_EQ(stats().blocks_in_use, 0);
        CHECK_EQ(frt_shutdown(), 0);
    }
    /* Sticky: every attempt fails until the fault is lifted. */
    CHECK_EQ(frt_init(NULL), 0);
    frt_test_fault_set(FRT_FAULT_ALLOC, 1, 1);
    attach_arg a = {0};
    a.tries = 5;
    a.lift = 1;
    run_attacher(&a);
    CHECK_EQ(a.unexpected, 0);
    CHECK_EQ(a.failed, 5);
    CHECK(!a.attached_after_failure);
    CHECK_EQ(a.final_rc, 0);
    CHECK(a.alloc_ok);
    CHECK_EQ(frt_shutdown(), 0);
}

/* --- a queue chunk that cannot be had ------------------------------------ */

/* A non-owner's decref that must queue the object to its owner needs room
 * in the owner's queue; a fresh queue has no chunk yet, and allocating one
 * fails: the thread merges with the world stopped instead. The queue
 * counts two FRT_FAULT_NODE requests here: the entry, then the chunk. */
static long nodes_seen;

static void *dropper(void *p)
{
    rec *r = p;
    CHECK_EQ(frt_thread_attach(), 0);
    frt_test_fault_set(FRT_FAULT_NODE, 2, 1);
    frt_decref(&r->ob);
    nodes_seen = frt_test_fault_count(FRT_FAULT_NODE);
    frt_test_fault_set(FRT_FAULT_NODE, 0, 0);
    frt_thread_detach();
    return NULL;
}

static void test_brc_node_fault(void)
{
    CHECK_EQ(frt_init(NULL), 0);
    destroyed = 0;
    rec *r = make(11);
    CHECK(r);
    frt_incref(&r->ob); /* one for the other thread to drop */
    CHECK_EQ(frt_refcount(&r->ob), 2);
    pthread_t t;
    frt_blocking_begin(); /* so the stop does not wait for us */
    CHECK_EQ(pthread_create(&t, NULL, dropper, r), 0);
    pthread_join(t, NULL);
    frt_blocking_end();
    CHECK_EQ(nodes_seen, 2); /* the entry, then the chunk, which was refused */
    frt_stw_stats sw;
    frt_stw_get_stats(&sw);
    CHECK(sw.stops >= 1);
    CHECK_EQ(destroyed, 0);
    CHECK_EQ(frt_refcount(&r->ob), 1);
    CHECK(intact(r, 11));
    frt_decref(&r->ob);
    CHECK_EQ(destroyed, 1);
    frt_heap_trim();
    CHECK_EQ(stats().blocks_in_use, 0);
    CHECK_EQ(frt_shutdown(), 0);
}

int main(void)
{
    clean_run();
    CHECK(total_maps >= 10);
    for (long k = 1; k <= total_maps + 1; k++)
        sweep_once(k);
    for (long k = 1; k <= total_maps + 1; k++)
        sweep_sticky(k);
    test_large();
    test_attach_faults();
    test_brc_node_fault();
    frt_heap_stats st = stats();
    CHECK_EQ(st.arenas, 0);
    CHECK_EQ(st.bytes_mapped, 0);
    TEST_PASS("test_fault");
    return 0;
}
