/* Hot objects (frt_make_hot): per-thread counts, freed by the collector.
 *
 *   - the API: results, frt_is_hot, exact frt_refcount, stats, immortal and
 *     make_shared on a hot object, an owned object made hot while one of
 *     its decrefs waits in the owner's queue;
 *   - freeing: never by a decref, at the next collection of any generation
 *     (a gen-0 run frees an old hot object), in cycles, with a weakref (get
 *     works while it lives, fails once it is freed; the callback and the
 *     finalizers run once), frt_gc_get_referrers;
 *   - threads: random mixes of hot and ordinary counting on shared objects
 *     by threads that attach, detach, re-attach and exit holding references
 *     (their counts fold into the objects), while another thread makes
 *     objects hot and collects: every count exact at the end, every object
 *     destroyed exactly once, with a count of 0. */
#include <stdatomic.h>
#include <string.h>

#include <frt/frt.h>

#include "runtime/os.h"
#include "test_util.h"

typedef struct hobj {
    frt_object ob;
    frt_object *next; /* a container: traverse reports it */
    long id;
} hobj;

#define MAX_IDS 4096
static _Atomic int destroy_by_id[MAX_IDS];
static _Atomic long destroyed, bad_destroys, finalized;

static void hobj_destroy(frt_object *self)
{
    hobj *h = (hobj *)self;
    if (h->id < 0 || h->id >= MAX_IDS || atomic_fetch_add(&destroy_by_id[h->id], 1) != 0)
        atomic_fetch_add(&bad_destroys, 1);
    frt_xdecref(h->next);
    atomic_fetch_add(&destroyed, 1);
}

static int hobj_traverse(frt_object *self, frt_visit_fn visit, void *arg)
{
    hobj *h = (hobj *)self;
    return h->next ? visit(h->next, arg) : 0;
}

static void hobj_clear(frt_object *self)
{
    hobj *h = (hobj *)self;
    frt_object *n = h->next;
    h->next = NULL;
    frt_xdecref(n);
}

static void hobj_finalize(frt_object *self)
{
    (void)self;
    atomic_fetch_add(&finalized, 1);
}

static const frt_type leaf_type = {"hot.leaf", sizeof(hobj), NULL, NULL, NULL, hobj_destroy};
static const frt_type node_type = {"hot.node", sizeof(hobj), hobj_traverse, hobj_clear,
                                   hobj_finalize, hobj_destroy};
static _Atomic long next_id;

static void reset(void)
{
    for (long i = 0; i < MAX_IDS; i++)
        atomic_store(&destroy_by_id[i], 0);
    atomic_store(&destroyed, 0);
    atomic_store(&bad_destroys, 0);
    atomic_store(&finalized, 0);
    atomic_store(&next_id, 0);
}

static hobj *make(const frt_type *t)
{
    hobj *h = (hobj *)frt_new(t);
    CHECK(h);
    h->id = atomic_fetch_add(&next_id, 1);
    CHECK(h->id < MAX_IDS);
    return h;
}

static size_t hot_now(void)
{
    frt_heap_stats s;
    frt_heap_get_stats(&s);
    return s.hot_objects;
}

static void test_api(void)
{
    CHECK_EQ(frt_init(NULL), 0);
    reset();
    CHECK_EQ(frt_make_hot(NULL), FRT_EINVAL);
    CHECK(!frt_is_hot(NULL));
    hobj *h = make(&leaf_type);
    CHECK(!frt_is_hot(&h->ob));
    frt_incref(&h->ob);
    CHECK_EQ(frt_make_hot(&h->ob), 0);
    CHECK(frt_is_hot(&h->ob));
    CHECK(!frt_is_owned(&h->ob));
    CHECK_EQ(frt_make_hot(&h->ob), FRT_EALREADY);
    CHECK_EQ(frt_make_shared(&h->ob), FRT_EALREADY);
    CHECK_EQ(frt_refcount(&h->ob), 2);
    CHECK_EQ(hot_now(), 1);
    frt_heap_stats st;
    frt_heap_get_stats(&st);
    CHECK_EQ(st.hot_promoted, 1);
    for (int i = 0; i < 1000; i++)
        frt_incref(&h->ob);
    CHECK_EQ(frt_refcount(&h->ob), 1002);
    for (int i = 0; i < 1002; i++)
        frt_decref(&h->ob);
    /* The last reference is gone, but only a collection frees it. */
    CHECK_EQ(frt_refcount(&h->ob), 0);
    CHECK_EQ(atomic_load(&destroyed), 0);
    CHECK_EQ(frt_gc_collect(0), 0);
    CHECK_EQ(atomic_load(&destroyed), 1);
    CHECK_EQ(hot_now(), 0);

    /* The index comes back and starts from zero for the next object. */
    hobj *a = make(&leaf_type), *b = make(&leaf_type);
    CHECK_EQ(frt_make_hot(&a->ob), 0);
    CHECK_EQ(frt_make_hot(&b->ob), 0);
    CHECK_EQ(frt_refcount(&a->ob), 1);
    CHECK_EQ(frt_refcount(&b->ob), 1);

    /* Immortal: the object leaves hot counting and gives its index back. */
    frt_set_immortal(&a->ob);
    CHECK(frt_is_immortal(&a->ob));
    CHECK(!frt_is_hot(&a->ob));
    CHECK_EQ(hot_now(), 1);
    CHECK_EQ(frt_make_hot(&a->ob), FRT_EALREADY);
    frt_decref(&b->ob);
    CHECK_EQ(frt_gc_collect(2), 0);
    CHECK_EQ(atomic_load(&destroyed), 2);
    CHECK_EQ(hot_now(), 0);
    CHECK_EQ(frt_shutdown(), 0); /* the immortal is not counted */
    CHECK_EQ(atomic_load(&bad_destroys), 0);
    CHECK_EQ(frt_test_sys_live(), 0);
    TEST_PASS("api");
}

/* An owned object that another thread decref'd to a queued state, then
 * made hot before the owner merged: the queued reference lands in the
 * hot object's count, which stays exact. */
static frt_object *queued_target;

static void *drop_one(void *arg)
{
    (void)arg;
    CHECK_EQ(frt_thread_attach(), 0);
    frt_decref(queued_target); /* shared count 0: queued to the owner */
    frt_thread_detach();
    return NULL;
}

static void test_queued_then_hot(void)
{
    CHECK_EQ(frt_init(NULL), 0);
    reset();
    hobj *h = make(&leaf_type);
    queued_target = &h->ob;
    frt_incref(&h->ob); /* one for the other thread to drop */
    test_join(test_spawn(drop_one, NULL));
    CHECK_EQ(frt_make_hot(&h->ob), 0);
    frt_safepoint(); /* merges the queue into the hot object */
    CHECK_EQ(frt_refcount(&h->ob), 1);
    frt_decref(&h->ob);
    CHECK_EQ(frt_gc_collect(0), 0);
    CHECK_EQ(atomic_load(&destroyed), 1);
    CHECK_EQ(frt_shutdown(), 0);
    TEST_PASS("queued_then_hot");
}

/* Each collection folds every thread's counts into the object and zeroes
 * them; a thread's inline path reaches its array through a thread-local
 * copy that attach, growth and detach keep right. Counts stay exact
 * through all of it, whichever thread took a reference and whichever
 * dropped it. */
static frt_object *fold_target;

static void *attach_count_detach(void *arg)
{
    long n = (long)(intptr_t)arg;
    for (int round = 0; round < 2; round++) { /* detach frees the array; attach starts anew */
        CHECK_EQ(frt_thread_attach(), 0);
        for (long i = 0; i < (n > 0 ? n : -n); i++) {
            if (n > 0)
                frt_incref(fold_target);
            else
                frt_decref(fold_target);
        }
        CHECK(frt_gc_collect(0) >= 0);
        frt_thread_detach();
    }
    return NULL;
}

static void test_counts_across_collections(void)
{
    CHECK_EQ(frt_init(NULL), 0);
    reset();
    hobj *h = make(&leaf_type);
    fold_target = &h->ob;
    CHECK_EQ(frt_make_hot(fold_target), 0);
    for (int i = 0; i < 5; i++)
        frt_incref(fold_target);
    CHECK_EQ(frt_gc_collect(0), 0);
    CHECK_EQ(frt_refcount(fold_target), 6);
    for (int i = 0; i < 5; i++) /* this thread's slot: 5 decrefs, no increfs since */
        frt_decref(fold_target);
    CHECK_EQ(frt_refcount(fold_target), 1);
    CHECK_EQ(frt_gc_collect(0), 0);
    CHECK_EQ(atomic_load(&destroyed), 0);
    CHECK(frt_is_hot(fold_target)); /* made hot by the program: stays hot */
    test_join(test_spawn(attach_count_detach, (void *)(intptr_t)7)); /* +14 */
    CHECK_EQ(frt_refcount(fold_target), 15);
    test_join(test_spawn(attach_count_detach, (void *)(intptr_t)-6)); /* -12 */
    CHECK_EQ(frt_refcount(fold_target), 3);
    for (int i = 0; i < 2; i++)
        frt_decref(fold_target);
    CHECK_EQ(frt_gc_collect(0), 0);
    CHECK_EQ(frt_refcount(fold_target), 1);
    frt_decref(fold_target);
    CHECK_EQ(atomic_load(&destroyed), 0);
    CHECK(frt_gc_collect(0) >= 0);
    CHECK_EQ(atomic_load(&destroyed), 1);
    CHECK_EQ(frt_shutdown(), 0);
    CHECK_EQ(atomic_load(&bad_destroys), 0);
    TEST_PASS("counts_across_collections");
}

/* A hot object that is old (survived full collections) is freed by the
 * next generation-0 collection after its last reference goes. */
static void test_latency(void)
{
    CHECK_EQ(frt_init(NULL), 0);
    reset();
    hobj *h = make(&node_type);
    CHECK_EQ(frt_make_hot(&h->ob), 0);
    CHECK_EQ(frt_gc_collect(2), 0);
    CHECK_EQ(frt_gc_collect(2), 0);
    frt_decref(&h->ob);
    CHECK_EQ(atomic_load(&destroyed), 0);
    frt_gc_collect(0);
    CHECK_EQ(atomic_load(&destroyed), 1);
    CHECK_EQ(atomic_load(&finalized), 1);
    CHECK_EQ(frt_shutdown(), 0);
    TEST_PASS("latency");
}

static void test_cycle(void)
{
    CHECK_EQ(frt_init(NULL), 0);
    reset();
    hobj *a = make(&node_type), *b = make(&node_type), *c = make(&node_type);
    a->next = frt_newref(&b->ob);
    b->next = frt_newref(&c->ob);
    c->next = frt_newref(&a->ob);
    CHECK_EQ(frt_make_hot(&a->ob), 0);
    CHECK_EQ(frt_make_hot(&b->ob), 0);
    frt_object *refs[4];
    CHECK_EQ(frt_gc_get_referrers(&b->ob, refs, 4), 1);
    CHECK(refs[0] == &a->ob);
    frt_decref(refs[0]);
    CHECK_EQ(frt_gc_collect(2), 0); /* still held from outside */
    CHECK_EQ(frt_refcount(&a->ob), 2);
    frt_decref(&a->ob);
    frt_decref(&b->ob);
    frt_decref(&c->ob);
    CHECK_EQ(frt_gc_collect(2), 3);
    CHECK_EQ(atomic_load(&destroyed), 3);
    CHECK_EQ(atomic_load(&finalized), 3);
    CHECK_EQ(hot_now(), 0);
    CHECK_EQ(frt_shutdown(), 0);
    CHECK_EQ(atomic_load(&bad_destroys), 0);
    TEST_PASS("cycle");
}

static _Atomic int callbacks, finalizer_runs;
static frt_weakref *shared_wr;

static void on_clear(frt_weakref *wr, void *ctx)
{
    (void)wr;
    (void)ctx;
    atomic_fetch_add(&callbacks, 1);
}

static void on_finalize(void *ctx)
{
    (void)ctx;
    atomic_fetch_add(&finalizer_runs, 1);
}

static void *get_through_weakref(void *arg)
{
    (void)arg;
    CHECK_EQ(frt_thread_attach(), 0);
    for (int i = 0; i < 1000; i++) {
        frt_object *o = frt_weakref_get(shared_wr);
        CHECK(o);
        frt_decref(o);
    }
    frt_object *kept = frt_weakref_get(shared_wr);
    CHECK(kept);
    frt_thread_detach(); /* keeps the reference: it folds into the object */
    return kept;
}

static void test_weakref_finalizer(void)
{
    CHECK_EQ(frt_init(NULL), 0);
    reset();
    atomic_store(&callbacks, 0);
    atomic_store(&finalizer_runs, 0);
    hobj *h = make(&node_type);
    shared_wr = frt_weakref_new(&h->ob, on_clear, NULL);
    CHECK(shared_wr);
    frt_finalizer *f = frt_finalizer_new(&h->ob, on_finalize, NULL);
    CHECK(f);
    CHECK_EQ(frt_make_hot(&h->ob), 0);
    pthread_t t = test_spawn(get_through_weakref, NULL);
    void *kept;
    frt_blocking_begin();
    CHECK_EQ(pthread_join(t, &kept), 0);
    frt_blocking_end();
    CHECK(kept == &h->ob);
    CHECK_EQ(frt_refcount(&h->ob), 2);
    frt_decref(&h->ob);
    frt_decref(&h->ob);
    /* No reference left, not freed yet: a weakref_get still finds it (as
     * it would any object not yet freed) and holds it alive again. */
    frt_object *again = frt_weakref_get(shared_wr);
    CHECK(again == &h->ob);
    frt_gc_collect(0);
    CHECK_EQ(atomic_load(&destroyed), 0);
    CHECK(frt_weakref_alive(shared_wr));
    frt_decref(again);
    frt_gc_collect(0);
    CHECK_EQ(atomic_load(&destroyed), 1);
    CHECK_EQ(atomic_load(&finalized), 1);
    CHECK_EQ(atomic_load(&callbacks), 1);
    CHECK_EQ(atomic_load(&finalizer_runs), 1);
    CHECK(!frt_weakref_alive(shared_wr));
    CHECK(frt_weakref_get(shared_wr) == NULL);
    frt_finalizer_free(f);
    frt_decref((frt_object *)shared_wr);
    CHECK_EQ(frt_shutdown(), 0);
    TEST_PASS("weakref_finalizer");
}

/* ------------------------------------------------------------------ */
/* Threads: random mixes, attach/detach/exit, promotion racing stops.  */

#define NOBJ 8
#define NTHREADS 4
static hobj *objs[NOBJ];
/* References each thread leaves behind when it ends, for main to drop. */
static _Atomic long left_behind[NTHREADS][NOBJ];
static _Atomic int stop_flag;

typedef struct worker_arg {
    int index;
    uint64_t seed;
} worker_arg;

static uint32_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return (uint32_t)(*s >> 11);
}

/* One attached stretch: random increfs and decrefs (never below what this
 * thread took), a safepoint now and then; returns holding `held`. */
static void stretch(worker_arg *a, long held[NOBJ], int ops)
{
    for (int k = 0; k < ops; k++) {
        uint32_t r = rnd(&a->seed);
        int i = (int)(r % NOBJ);
        if ((r >> 8) % 2 == 0 || held[i] == 0) {
            frt_incref(&objs[i]->ob);
            held[i]++;
        } else {
            frt_decref(&objs[i]->ob);
            held[i]--;
        }
        if (k % 64 == 0)
            frt_safepoint();
    }
}

static void *worker(void *p)
{
    worker_arg *a = p;
    long held[NOBJ] = {0};
    int ops = SCALED(20000);
    for (int round = 0; round < 6; round++) {
        CHECK_EQ(frt_thread_attach(), 0);
        stretch(a, held, ops);
        if (round == 5 && a->index % 2 == 0)
            break; /* exits attached: the exit hook detaches for us */
        frt_thread_detach(); /* still holding: the counts fold */
    }
    for (int i = 0; i < NOBJ; i++)
        atomic_store(&left_behind[a->index][i], held[i]);
    return NULL;
}

static void *heater(void *p)
{
    (void)p;
    CHECK_EQ(frt_thread_attach(), 0);
    int i = 0;
    while (!atomic_load(&stop_flag) || i < NOBJ) { /* every object at least once */
        int rc = frt_make_hot(&objs[i % NOBJ]->ob);
        CHECK(rc == 0 || rc == FRT_EALREADY);
        frt_gc_collect(i % 3);
        i++;
        if (i % 8 == 0)
            test_sleep_us(200);
    }
    frt_thread_detach();
    return NULL;
}

static void test_threads(void)
{
    CHECK_EQ(frt_init(NULL), 0);
    reset();
    for (int i = 0; i < NOBJ; i++) {
        objs[i] = make(i % 2 ? &node_type : &leaf_type);
        if (i % 4 == 0)
            CHECK_EQ(frt_make_hot(&objs[i]->ob), 0);
        else if (i % 4 == 1)
            CHECK_EQ(frt_make_shared(&objs[i]->ob), 0);
    }
    atomic_store(&stop_flag, 0);
    pthread_t heat = test_spawn(heater, NULL);
    pthread_t t[NTHREADS];
    worker_arg args[NTHREADS];
    for (int w = 0; w < NTHREADS; w++) {
        args[w] = (worker_arg){w, 0x9e3779b97f4a7c15ull * (uint64_t)(w + 1)};
        t[w] = test_spawn(worker, &args[w]);
    }
    for (int w = 0; w < NTHREADS; w++)
        test_join(t[w]);
    atomic_store(&stop_flag, 1);
    test_join(heat);
    for (int i = 0; i < NOBJ; i++) {
        long expect = 1;
        for (int w = 0; w < NTHREADS; w++)
            expect += atomic_load(&left_behind[w][i]);
        CHECK_EQ(frt_refcount(&objs[i]->ob), expect);
        CHECK(frt_is_hot(&objs[i]->ob)); /* the heater made every one hot */
        for (long k = 0; k < expect; k++)
            frt_decref(&objs[i]->ob);
    }
    CHECK_EQ(atomic_load(&destroyed), 0);
    frt_gc_collect(0);
    CHECK_EQ(atomic_load(&destroyed), NOBJ);
    CHECK_EQ(atomic_load(&bad_destroys), 0);
    CHECK_EQ(hot_now(), 0);
    CHECK_EQ(frt_shutdown(), 0);
    CHECK_EQ(frt_test_sys_live(), 0);
    TEST_PASS("threads");
}

int main(void)
{
    test_watchdog("test_hot", 240);
    test_api();
    test_queued_then_hot();
    test_counts_across_collections();
    test_latency();
    test_cycle();
    test_weakref_finalizer();
    test_threads();
    return 0;
}
