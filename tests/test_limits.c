/* Limits: what happens at the edges of the counts, with many objects, with
 * deep structures and with many threads.
 *
 *   - Local count overflow: an owner count that reaches 2^31 (FRT_REF_HOT:
 *     the values above mark hot and immortal objects) makes the object
 *     immortal (CPython's free-threaded build does the same at 2^32 - 1): it is
 *     never freed, and frt_shutdown does not count it (though what it holds
 *     stays alive, and is counted). The last 2^20 increments are real; the
 *     rest is set in the header (FRT_LIMITS_FULL_OVERFLOW=1: all 2^31,
 *     a few seconds in release).
 *   - Shared count: 62 bits of count, up to 2^61 - 1; a count that large
 *     is exact for frt_refcount and the collector (which keeps it aside
 *     from its packed trial counts). Beyond it the count wraps (2^61
 *     references: not checked, see docs/api.md "Limits").
 *   - Many objects: 10^7 small objects alive at once (and 10^6 containers
 *     beside them, with the collector on), exact destroy counts, a full
 *     collection over all of it, then heap statistics back to 0 and
 *     nothing mapped after a trim. Scaled down under sanitizers;
 *     FRT_LIMITS_OBJECTS=100000000 (or `test_limits 100000000`) for 10^8
 *     (about 5 GB).
 *   - Deep chains: a linked list of 10^7 containers, marked by a full
 *     collection and then freed by one decref, and a 10^6-node cycle freed
 *     by frt_gc_collect, on a thread with a small stack: neither destroy,
 *     clear nor the collector may recurse per node.
 *     FRT_LIMITS_CHAIN / FRT_LIMITS_CYCLE change the lengths.
 *   - 1000 short-lived threads, 64 at a time: each attaches, allocates,
 *     hands objects to the others through a mailbox, takes some of theirs,
 *     makes a cycle and a finalizer, and detaches (every 8th exits
 *     attached); exact counts at the end, thread states and heaps pooled,
 *     thread ids never reused. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <frt/frt.h>

#include "check.h"
#include "runtime/os.h"
#include "runtime/pool.h"
#include "runtime/runtime.h"
#include "test_util.h"

#if defined(FRT_TEST_TSAN) || defined(FRT_TEST_ASAN)
#define SMALL_STACK (1u << 20)
#else
#define SMALL_STACK (256u << 10)
#endif

static _Atomic long destroyed, finalized;

typedef struct node {
    frt_object ob;
    frt_object *next;
    long breaker; /* clear() drops next only on this node */
} node;

static int node_traverse(frt_object *self, frt_visit_fn visit, void *arg)
{
    node *n = (node *)self;
    return n->next ? visit(n->next, arg) : 0;
}

static void node_clear(frt_object *self)
{
    node *n = (node *)self;
    if (!n->breaker)
        return;
    frt_object *next = n->next;
    n->next = NULL;
    frt_xdecref(next);
}

static void node_destroy(frt_object *self)
{
    node *n = (node *)self;
    atomic_fetch_add_explicit(&destroyed, 1, memory_order_relaxed);
    frt_object *next = n->next;
    n->next = NULL;
    frt_xdecref(next);
}

static void count_destroy(frt_object *self)
{
    (void)self;
    atomic_fetch_add_explicit(&destroyed, 1, memory_order_relaxed);
}

static const frt_type node_type = {"node", sizeof(node), node_traverse, node_clear, NULL,
                                   node_destroy};
static const frt_type leaf_type = {"leaf", sizeof(frt_object), NULL, NULL, NULL, count_destroy};

static long env_long(const char *name, long dflt)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return dflt;
    char *end;
    long n = strtol(v, &end, 10);
    CHECK(*end == 0 && n > 0);
    return n;
}

static double secs(uint64_t t0)
{
    return (double)(test_now_ns() - t0) / 1e9;
}

static long peak_rss_mb(void)
{
    struct rusage ru;
    CHECK_EQ(getrusage(RUSAGE_SELF, &ru), 0);
    return ru.ru_maxrss / 1024;
}

static frt_heap_stats stats(void)
{
    frt_heap_stats st;
    frt_heap_get_stats(&st);
    return st;
}

/* Everything freed: no block in use, and nothing mapped once trimmed. */
static void check_empty_heap(void)
{
    frt_heap_trim();
    frt_heap_stats st = stats();
    CHECK_EQ(st.blocks_in_use, 0);
    CHECK_EQ(st.bytes_in_use, 0);
    CHECK_EQ(st.large_objects, 0);
    CHECK_EQ(st.arenas, 0);
    CHECK_EQ(st.bytes_mapped, 0);
}

static void set_local(frt_object *o, uint32_t v)
{
    atomic_store_explicit(&o->ob_ref_local, v, memory_order_relaxed);
}

static void set_shared_count(frt_object *o, intptr_t count)
{
    intptr_t w = atomic_load_explicit(&o->ob_ref_shared, memory_order_relaxed);
    atomic_store_explicit(&o->ob_ref_shared, count * FRT_REF_SHARED_ONE | FRT_REF_STATE(w),
                          memory_order_relaxed);
}

/* ---------------------------------------------------------------------- */
/* Count overflow                                                         */

static void test_local_overflow(void)
{
    uint64_t t0 = test_now_ns();
    CHECK_EQ(frt_init(NULL), 0);
    atomic_store(&destroyed, 0);

    /* Just below the limit the count is an ordinary count: 2^31 - 1 is the
     * most references an owner's count can hold. */
    frt_object *o = frt_new(&leaf_type);
    CHECK(o);
    set_local(o, FRT_REF_HOT - 2);
    CHECK_EQ(frt_refcount(o), (size_t)FRT_REF_HOT - 2);
    frt_incref(o);
    CHECK_EQ(frt_refcount(o), (size_t)FRT_REF_HOT - 1);
    CHECK(!frt_is_immortal(o));
    frt_decref(o);
    frt_decref(o);
    CHECK_EQ(frt_refcount(o), (size_t)FRT_REF_HOT - 3);
    set_local(o, 1); /* back to the one reference we hold */
    frt_decref(o);
    CHECK_EQ(atomic_load(&destroyed), 1);

    /* The increment that reaches 2^31 makes it immortal. */
    int full = env_long("FRT_LIMITS_FULL_OVERFLOW", 0) != 0;
    o = frt_new(&leaf_type);
    CHECK(o);
    uint32_t start = full ? 1u : FRT_REF_HOT - (1u << 20);
    set_local(o, start);
    for (uint32_t c = start; c < FRT_REF_HOT - 1; c++)
        frt_incref(o);
    CHECK(!frt_is_immortal(o));
    CHECK_EQ(frt_refcount(o), (size_t)FRT_REF_HOT - 1);
    frt_incref(o);
    CHECK(frt_is_immortal(o));
    CHECK_EQ(frt_refcount(o), (size_t)FRT_REF_IMMORTAL);
    for (int i = 0; i < 1000; i++)
        frt_decref(o); /* no-ops now, on every path */
    CHECK(frt_is_immortal(o));
    CHECK_EQ(atomic_load(&destroyed), 1);

    /* An immortal container keeps what it references alive for good: the
     * collector counts it as held from outside. */
    node *holder = (node *)frt_new(&node_type), *kept = (node *)frt_new(&node_type);
    CHECK(holder && kept);
    holder->next = &kept->ob;          /* holder <-> kept: a cycle */
    kept->next = frt_newref(&holder->ob);
    set_local(&holder->ob, FRT_REF_HOT - 1);
    frt_incref(&holder->ob); /* overflows: immortal */
    CHECK(frt_is_immortal(&holder->ob));
    CHECK_EQ(frt_gc_collect(2), 0);
    CHECK_EQ(atomic_load(&destroyed), 1);
    /* At shutdown the immortals are not counted; `kept` is. Neither is
     * destroyed: their memory goes with the arenas. */
    CHECK_EQ(frt_shutdown(), 1);
    CHECK_EQ(atomic_load(&destroyed), 1);
    CHECK_EQ(frt_test_sys_live(), 0);
    fprintf(stderr, "local count: 2^31 - 1 references at most, 2^31 is immortal (%s, %.2f s)\n",
            full ? "all increments real" : "last 2^20 increments real", secs(t0));
}

typedef struct shared_arg {
    frt_object *o;
    int ops;
} shared_arg;

static void *shared_counter(void *p)
{
    shared_arg *a = p;
    CHECK_EQ(frt_thread_attach(), 0);
    for (int i = 0; i < a->ops; i++)
        frt_incref(a->o);
    for (int i = 0; i < a->ops; i++)
        frt_decref(a->o);
    frt_thread_detach();
    return NULL;
}

static void test_shared_limit(void)
{
    CHECK_EQ(frt_init(NULL), 0);
    atomic_store(&destroyed, 0);
    const intptr_t max = INTPTR_MAX >> FRT_REF_SHARED_SHIFT; /* 2^61 - 1 */

    /* A merged object with a count near the top: exact, and counting on
     * from another thread up to the top and back stays exact. */
    frt_object *o = frt_new(&leaf_type);
    CHECK(o);
    CHECK_EQ(frt_make_shared(o), 0);
    set_shared_count(o, max - 1000);
    CHECK_EQ(frt_refcount(o), (size_t)(max - 1000));
    shared_arg a = {o, 1000};
    pthread_t t = test_spawn(shared_counter, &a);
    test_join(t);
    CHECK_EQ(frt_refcount(o), (size_t)(max - 1000));
    for (int i = 0; i < 1000; i++)
        frt_incref(o);
    CHECK_EQ(frt_refcount(o), (size_t)max);
    CHECK(!frt_is_immortal(o));
    for (int i = 0; i < 1000; i++)
        frt_decref(o);
    set_shared_count(o, 1);
    frt_decref(o);
    CHECK_EQ(atomic_load(&destroyed), 1);

    /* An owned object whose shared count went far negative (others dropped
     * references the owner handed them): the sum is still exact. */
    o = frt_new(&leaf_type);
    CHECK(o);
    set_local(o, FRT_REF_HOT - 1);
    set_shared_count(o, -(intptr_t)(FRT_REF_HOT - 2)); /* total 1 */
    CHECK_EQ(frt_refcount(o), 1);
    set_shared_count(o, 0);
    set_local(o, 1);
    frt_decref(o);
    CHECK_EQ(atomic_load(&destroyed), 2);

    /* The collector with counts beyond its packed field (2^29): a cycle
     * whose one member is referenced 2^61 - 2 times from outside is kept;
     * with the count back, it is garbage. */
    node *x = (node *)frt_new(&node_type), *y = (node *)frt_new(&node_type);
    CHECK(x && y);
    x->next = &y->ob;
    y->next = frt_newref(&x->ob);
    x->breaker = 1;
    CHECK_EQ(frt_make_shared(&x->ob), 0);
    set_shared_count(&x->ob, max - 1); /* y's reference and max - 2 others */
    CHECK_EQ(frt_gc_collect(2), 0);
    CHECK_EQ(frt_refcount(&x->ob), (size_t)(max - 1));
    set_shared_count(&x->ob, 2);
    frt_decref(&x->ob); /* ours: only y's is left */
    CHECK_EQ(frt_gc_collect(2), 2);
    CHECK_EQ(atomic_load(&destroyed), 4);
    CHECK_EQ(frt_shutdown(), 0);
    fprintf(stderr, "shared count: 2^61 - 1 at most, exact up to it\n");
}

/* ---------------------------------------------------------------------- */
/* Many objects                                                           */

static void test_many(long n)
{
    uint64_t t0 = test_now_ns();
    CHECK_EQ(frt_init(NULL), 0);
    atomic_store(&destroyed, 0);
    long nc = n / 10; /* containers beside them: the collector runs as it would */
    frt_object **leaves = malloc((size_t)n * sizeof *leaves);
    node **cells = malloc((size_t)nc * sizeof *cells);
    CHECK(leaves && cells);
    for (long i = 0; i < n; i++) {
        leaves[i] = frt_new(&leaf_type);
        CHECK(leaves[i]);
    }
    for (long i = 0; i < nc; i++) {
        cells[i] = (node *)frt_new(&node_type);
        CHECK(cells[i]);
        cells[i]->next = frt_newref(leaves[i * 10]);
    }
    double t_alloc = secs(t0);
    frt_gc_stats gs[3]; /* the automatic runs while it grew */
    frt_gc_get_stats(gs);
    frt_heap_stats st = stats();
    CHECK_EQ(st.blocks_in_use, (size_t)(n + nc));
    CHECK_EQ(st.bytes_in_use, (size_t)n * sizeof(frt_object) + (size_t)nc * sizeof(node));
    CHECK_EQ(atomic_load(&destroyed), 0);
    size_t arenas = st.arenas;

    /* A full collection over all of it: the containers are live, plus a
     * ring of garbage. */
    node *first = (node *)frt_new(&node_type), *prev = first;
    CHECK(first);
    for (int i = 1; i < 1000; i++) {
        node *x = (node *)frt_new(&node_type);
        CHECK(x);
        prev->next = &x->ob;
        prev = x;
    }
    prev->next = &first->ob; /* takes ours */
    first->breaker = 1;
    uint64_t t1 = test_now_ns();
    CHECK_EQ(frt_gc_collect(2), 1000);
    double t_gc = secs(t1);
    CHECK_EQ(atomic_load(&destroyed), 1000);

    t1 = test_now_ns();
    for (long i = 0; i < nc; i++)
        frt_decref(&cells[i]->ob);
    for (long i = 0; i < n; i++)
        frt_decref(leaves[i]);
    double t_free = secs(t1);
    CHECK_EQ(atomic_load(&destroyed), 1000 + n + nc);
    st = stats();
    CHECK_EQ(st.blocks_in_use, 0);
    CHECK_EQ(st.bytes_in_use, 0);
    check_empty_heap();
    free(leaves);
    free(cells);
    CHECK_EQ(frt_shutdown(), 0);
    fprintf(stderr,
            "many objects: %ld + %ld containers alive at once in %zu arenas (alloc %.2f s, of "
            "which %.2f s in %llu/%llu/%llu automatic runs of gen 0/1/2; full collection %.2f s; "
            "free %.2f s); peak RSS %ld MiB\n",
            n, nc, arenas, t_alloc,
            (double)(gs[0].pause_ns_total + gs[1].pause_ns_total + gs[2].pause_ns_total) / 1e9,
            (unsigned long long)gs[0].collections, (unsigned long long)gs[1].collections,
            (unsigned long long)gs[2].collections, t_gc, t_free, peak_rss_mb());
}

/* ---------------------------------------------------------------------- */
/* Deep chains, on a small stack                                          */

typedef struct chain_arg {
    long n;
    int cyclic;
    double t_build, t_gc, t_free;
} chain_arg;

static void *chain_thread(void *p)
{
    chain_arg *a = p;
    CHECK_EQ(frt_thread_attach(), 0);
    uint64_t t0 = test_now_ns();
    /* Containers, built from the tail so that the head holds the only
     * reference to the rest. No automatic runs while it grows: the one
     * collection below is the point. */
    frt_gc_disable();
    node *tail = (node *)frt_new(&node_type), *head = tail;
    CHECK(tail);
    for (long i = 1; i < a->n; i++) {
        node *x = (node *)frt_new(&node_type);
        CHECK(x);
        x->next = &head->ob;
        head = x;
        if (i == a->n / 2)
            x->breaker = 1; /* the collector's clear() cuts a ring here */
    }
    frt_gc_enable();
    a->t_build = secs(t0);
    long before = atomic_load(&destroyed);
    uint64_t t1 = test_now_ns();
    if (a->cyclic) {
        /* Our reference closes the ring: garbage. clear() cuts it once;
         * the collector's own references then free half of it one by one
         * and the other half as one chain of destroys. */
        tail->next = &head->ob;
        CHECK_EQ(frt_gc_collect(2), a->n);
        a->t_gc = secs(t1);
    } else {
        /* Live: marking goes n deep from the head; then one decref frees
         * it all, each destroy releasing the next. */
        CHECK_EQ(frt_gc_collect(2), 0);
        a->t_gc = secs(t1);
        CHECK_EQ(atomic_load(&destroyed), before);
        t1 = test_now_ns();
        frt_decref(&head->ob);
        a->t_free = secs(t1);
    }
    CHECK_EQ(atomic_load(&destroyed) - before, a->n);
    frt_thread_detach();
    return NULL;
}

static void run_chain(long n, int cyclic)
{
    CHECK_EQ(frt_init(NULL), 0);
    atomic_store(&destroyed, 0);
    chain_arg a = {n, cyclic, 0, 0, 0};
    pthread_attr_t attr;
    CHECK_EQ(pthread_attr_init(&attr), 0);
    CHECK_EQ(pthread_attr_setstacksize(&attr, SMALL_STACK), 0);
    pthread_t t;
    frt_blocking_begin();
    CHECK_EQ(pthread_create(&t, &attr, chain_thread, &a), 0);
    CHECK_EQ(pthread_join(t, NULL), 0);
    frt_blocking_end();
    pthread_attr_destroy(&attr);
    CHECK_EQ(atomic_load(&destroyed), n);
    check_empty_heap();
    CHECK_EQ(frt_shutdown(), 0);
    if (cyclic)
        fprintf(stderr, "cyclic chain: %ld nodes found and freed by frt_gc_collect on a %u KiB "
                        "stack (build %.2f s, collection %.2f s)\n",
                n, SMALL_STACK >> 10, a.t_build, a.t_gc);
    else
        fprintf(stderr, "chain: %ld nodes marked by a full collection and freed by one decref on a "
                        "%u KiB stack (build %.2f s, collection %.2f s, free %.2f s)\n",
                n, SMALL_STACK >> 10, a.t_build, a.t_gc, a.t_free);
}

/* ---------------------------------------------------------------------- */
/* 1000 threads                                                           */

#define NTHREADS 1000
#define WINDOW 64
#define PER_THREAD 16 /* objects each thread makes for the mailbox */
#define TAKE 12       /* objects each takes out of it */

static pthread_mutex_t mail_lock = PTHREAD_MUTEX_INITIALIZER;
static frt_object *mail[NTHREADS * PER_THREAD];
static long mail_n, mail_head; /* a FIFO: what others left first */
static _Atomic long made, fin_made, taken_foreign, attaches;
static uintptr_t tid_of[NTHREADS];

static void fin_count(void *ctx)
{
    (void)ctx;
    atomic_fetch_add(&finalized, 1);
}

static void mail_lock_acquire(void)
{
    frt_blocking_begin(); /* a wait: a stop must not wait for us */
    pthread_mutex_lock(&mail_lock);
    frt_blocking_end();
}

static void *short_lived(void *p)
{
    long me = (long)(intptr_t)p;
    CHECK_EQ(frt_thread_attach(), 0);
    atomic_fetch_add(&attaches, 1);
    frt_object *mine[PER_THREAD];
    for (int i = 0; i < PER_THREAD; i++) {
        if (i % 4 == 3) {
            node *c = (node *)frt_new(&node_type); /* a container holding a leaf */
            CHECK(c);
            c->next = frt_new(&leaf_type);
            CHECK(c->next);
            atomic_fetch_add(&made, 2);
            mine[i] = &c->ob;
        } else {
            mine[i] = frt_new(&leaf_type);
            CHECK(mine[i]);
            atomic_fetch_add(&made, 1);
        }
    }
    tid_of[me] = atomic_load_explicit(&mine[0]->ob_tid, memory_order_relaxed);
    frt_finalizer *f = frt_finalizer_new(mine[0], fin_count, NULL);
    CHECK(f);
    atomic_fetch_add(&fin_made, 1);
    frt_finalizer_free(f);
    /* A cycle left to the collector. */
    node *x = (node *)frt_new(&node_type), *y = (node *)frt_new(&node_type);
    CHECK(x && y);
    x->next = &y->ob;
    y->next = &x->ob;
    x->breaker = 1;
    atomic_fetch_add(&made, 2);

    mail_lock_acquire();
    for (int i = 0; i < PER_THREAD; i++)
        mail[mail_n++] = mine[i];
    frt_object *got[TAKE];
    int ngot = 0;
    while (ngot < TAKE && mail_head < mail_n)
        got[ngot++] = mail[mail_head++];
    pthread_mutex_unlock(&mail_lock);
    /* Stay until the thread 32 places on has attached, so that dozens are
     * attached at once (the main thread starts thread i + 64 only once
     * thread i has ended). */
    long want = me + WINDOW / 2 + 1 < NTHREADS ? me + WINDOW / 2 + 1 : NTHREADS;
    frt_blocking_begin();
    for (unsigned i = 0; atomic_load(&attaches) < want; i++)
        test_pause(i);
    frt_blocking_end();
    for (int i = 0; i < ngot; i++) {
        if (atomic_load_explicit(&got[i]->ob_tid, memory_order_relaxed) != tid_of[me])
            atomic_fetch_add(&taken_foreign, 1);
        frt_decref(got[i]); /* queued to a live owner, merged here for a gone one */
    }
    frt_safepoint();
    if (me % 8 != 7)
        frt_thread_detach(); /* the others exit attached: the exit hook detaches */
    return NULL;
}

static void count_heap(frt_heap *h, void *arg)
{
    (void)h;
    ++*(long *)arg;
}

static void test_threads(void)
{
    uint64_t t0 = test_now_ns();
    CHECK_EQ(frt_init(NULL), 0);
    atomic_store(&destroyed, 0);
    atomic_store(&finalized, 0);
    CHECK(WINDOW / 2 + 1 < WINDOW); /* thread i waits for i + 33, started after i - 31 ended */
    pthread_t win[WINDOW];
    for (long i = 0; i < NTHREADS; i++) {
        if (i >= WINDOW)
            test_join(win[i % WINDOW]);
        win[i % WINDOW] = test_spawn(short_lived, (void *)(intptr_t)i);
    }
    for (long i = NTHREADS - WINDOW; i < NTHREADS; i++)
        test_join(win[i % WINDOW]);
    /* Thread states and heaps are pooled: never more than were attached at
     * once (the window and us). */
    unsigned states = frt__rt.nstates;
    CHECK(states <= WINDOW + 1);
    long heaps = 0;
    frt__heaps_foreach(count_heap, &heaps);
    CHECK(heaps <= WINDOW + 1);
    /* Ids are thread pointers, which the OS reuses: every creator has gone,
     * and its detach gave its objects up, so none still names an owner
     * (the next thread given that pointer would count on it as its own). */
    for (long i = mail_head; i < mail_n; i++)
        CHECK_EQ(atomic_load_explicit(&mail[i]->ob_tid, memory_order_relaxed), (uintptr_t)0);
    CHECK_EQ(frt_thread_is_attached(), 1);
    /* Drain the mailbox, then the cycles. */
    for (long i = mail_head; i < mail_n; i++)
        frt_decref(mail[i]);
    frt_gc_collect(2);
    CHECK_EQ(atomic_load(&made), (long)NTHREADS * (PER_THREAD + PER_THREAD / 4 + 2));
    CHECK_EQ(atomic_load(&destroyed), atomic_load(&made));
    CHECK_EQ(atomic_load(&finalized), NTHREADS);
    CHECK_EQ(atomic_load(&fin_made), NTHREADS);
    CHECK(atomic_load(&taken_foreign) > NTHREADS);
    check_empty_heap();
    CHECK_EQ(frt_shutdown(), 0);
    CHECK_EQ(frt_test_sys_live(), 0);
    fprintf(stderr,
            "threads: %d short-lived, %d at a time, %ld objects (%ld taken from another thread), "
            "%u thread states and %ld heaps (%.2f s)\n",
            NTHREADS, WINDOW, atomic_load(&made), atomic_load(&taken_foreign), states, heaps,
            secs(t0));
}

int main(int argc, char **argv)
{
    test_watchdog("test_limits", 280);
    uint64_t t0 = test_now_ns();
    long objects = env_long("FRT_LIMITS_OBJECTS", SCALED(10000000L));
    if (argc > 1) {
        objects = strtol(argv[1], NULL, 10);
        CHECK(objects > 0);
    }
    long chain_n = env_long("FRT_LIMITS_CHAIN", SCALED(10000000L));
    long cycle_n = env_long("FRT_LIMITS_CYCLE", SCALED(1000000L));

    test_local_overflow();
    test_shared_limit();
    test_many(objects);
    run_chain(chain_n, 0);
    run_chain(cycle_n, 1);
    test_threads();
    fprintf(stderr, "test_limits: %.2f s\n", secs(t0));
    TEST_PASS("test_limits");
    return 0;
}
