/* Collections racing with other threads' work.
 *
 * 1. Several threads build and drop cycles and call frt_gc_collect at the
 *    same time (automatic runs off): a call made while another collection
 *    runs returns 0, so the returns add up to exactly what was dropped;
 *    meanwhile get_objects hands out only live objects.
 * 2. Finalizing cycles on several threads with automatic runs on; some
 *    finalizers resurrect their object into a list that the main thread
 *    drains: every object is finalized exactly once and destroyed exactly
 *    once, whichever thread collects.
 * 3. Threads come and go (attach, build, hand over, detach) while the main
 *    thread collects: heaps are orphaned and adopted with young objects in
 *    them, and each collection returns exactly the garbage made since the
 *    last one.
 * 4. A destroy that allocates past the threshold: the automatic run it
 *    starts inside the dealloc loop frees exactly what it should.
 * 5. freeze/unfreeze while other threads allocate, free, untrack and
 *    track: the freeze count comes back to exactly 0. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <frt/frt.h>

#include "check.h"
#include "test_util.h"
#include "gc_nodes.h"

/* ------------------------------------------------------------------ */
/* Scaffolding                                                        */

/* What a finalizer does (node.mode). */
enum { M_PLAIN, M_RESURRECT, M_RESURRECT_BREAK };

static unsigned char fin_kind[MAX_IDS]; /* 0 no finalizer, 1 plain, 2 resurrects */

static void resurrect_push(frt_object *o);
static void destroy_allocates(void);

static void node_finalize(frt_object *self)
{
    node *n = (node *)self;
    record_finalize(self);
    if (n->mode == M_RESURRECT) {
        resurrect_push(self);
    } else if (n->mode == M_RESURRECT_BREAK) {
        resurrect_push(self);
        node_clear(self);
    }
}

static void allocating_destroy(frt_object *self)
{
    node_destroy(self);
    destroy_allocates();
}

static const frt_type fin_type = {"fin", sizeof(node), node_traverse, node_clear, node_finalize,
                                  node_destroy};
/* A node whose destroy allocates past the threshold (test 4). */
static const frt_type allocating_type = {"allocating", sizeof(node), node_traverse, node_clear,
                                         NULL, allocating_destroy};

static void set_mode(node *n, int mode)
{
    const frt_type *t = frt_typeof(&n->ob);
    n->mode = mode;
    fin_kind[n->id] = t->finalize == NULL ? 0 : mode == M_RESURRECT || mode == M_RESURRECT_BREAK ? 2 : 1;
}

static node *make_mode(const frt_type *t, int mode)
{
    node *n = make_of(t);
    set_mode(n, mode);
    return n;
}

/* ring_of, member i's mode mode_of(i) (M_PLAIN without); set before the
 * caller lets the ring go, so before any finalizer can run. */
static node *ring_modes(const frt_type *t, long n, int (*mode_of)(long i))
{
    node *first = ring_of(t, n), *x = first;
    for (long i = 0; i < n; i++, x = (node *)x->ref[0])
        set_mode(x, mode_of ? mode_of(i) : M_PLAIN);
    return first;
}

static void check_all_destroyed_once(void)
{
    long n = atomic_load(&next_id);
    check_destroyed(0, n, n);
}

/* The list finalizers resurrect into (a mutex: nobody parks holding it). */
static pthread_mutex_t res_lock = PTHREAD_MUTEX_INITIALIZER;
static frt_object **res_list;
static size_t res_n, res_cap;
static _Atomic long res_total;

static void resurrect_push(frt_object *o)
{
    frt_incref(o);
    pthread_mutex_lock(&res_lock);
    if (res_n == res_cap) {
        res_cap = res_cap ? 2 * res_cap : 1024;
        res_list = realloc(res_list, res_cap * sizeof *res_list);
        CHECK(res_list != NULL);
    }
    res_list[res_n++] = o;
    pthread_mutex_unlock(&res_lock);
    atomic_fetch_add(&res_total, 1);
}

/* Drop what finalizers resurrected; returns how many. */
static size_t resurrect_drain(void)
{
    pthread_mutex_lock(&res_lock);
    frt_object **v = res_list;
    size_t n = res_n;
    res_list = NULL;
    res_n = res_cap = 0;
    pthread_mutex_unlock(&res_lock);
    for (size_t i = 0; i < n; i++)
        frt_decref(v[i]);
    free(v);
    return n;
}

/* ------------------------------------------------------------------ */
/* 1. Concurrent explicit collections.                                */

#define C_THREADS 4
#define C_ITERS SCALED(20000)
static _Atomic long c_returned, c_dropped, c_lookups;

static void *collector_thread(void *arg)
{
    long t = (long)(intptr_t)arg;
    CHECK_EQ(frt_thread_attach(), 0);
    frt_object *buf[256];
    for (long i = 0; i < C_ITERS; i++) {
        long n = 1 + (i + t) % 6;
        node *r = ring_modes(&node_type, n, NULL);
        frt_decref(&r->ob);
        atomic_fetch_add(&c_dropped, n);
        if (i % 40 == (t * 10) % 40) {
            long got = frt_gc_collect((int)((i / 40 + t) % 3));
            CHECK(got >= 0);
            atomic_fetch_add(&c_returned, got);
        }
        if (t == 0 && i % 500 == 0) {
            /* Every object handed out is alive while we hold it. */
            size_t total = frt_gc_get_objects(-1, buf, 256);
            size_t k = total < 256 ? total : 256;
            for (size_t j = 0; j < k; j++) {
                CHECK_EQ(((node *)buf[j])->magic, NODE_MAGIC);
                frt_decref(buf[j]);
            }
            atomic_fetch_add(&c_lookups, 1);
        }
    }
    frt_thread_detach();
    return NULL;
}

static void test_concurrent_collects(void)
{
    gc_setup(0);
    atomic_store(&c_returned, 0);
    atomic_store(&c_dropped, 0);
    atomic_store(&c_lookups, 0);
    pthread_t th[C_THREADS];
    for (long t = 0; t < C_THREADS; t++)
        th[t] = test_spawn(collector_thread, (void *)(intptr_t)t);
    for (long t = 0; t < C_THREADS; t++)
        test_join(th[t]);
    long last = frt_gc_collect(2);
    CHECK_EQ(frt_gc_collect(2), 0);
    CHECK_EQ(atomic_load(&c_returned) + last, atomic_load(&c_dropped));
    CHECK_EQ(atomic_load(&c_dropped), atomic_load(&next_id));
    CHECK_EQ(atomic_load(&c_lookups), (C_ITERS + 499) / 500);
    check_all_destroyed_once();
    CHECK_EQ(frt_shutdown(), 0);
}

/* ------------------------------------------------------------------ */
/* 2. Finalizers and resurrection on several threads.                 */

#define F_THREADS 3
#define F_ITERS SCALED(8000)
static _Atomic long f_done;

static int mode_pattern(long i)
{
    return i % 5 == 1 ? M_RESURRECT : i % 7 == 3 ? M_RESURRECT_BREAK : M_PLAIN;
}

static void *finalizing_thread(void *arg)
{
    long t = (long)(intptr_t)arg;
    CHECK_EQ(frt_thread_attach(), 0);
    for (long i = 0; i < F_ITERS; i++) {
        long n = 1 + (i * 3 + t) % 8;
        /* Mixed rings: finalizing members, some resurrecting, and plain
         * members between them. */
        node *r = ring_modes(i % 4 == 0 ? &node_type : &fin_type, n, i % 2 ? mode_pattern : NULL);
        frt_decref(&r->ob);
        if (i % 64 == 0)
            frt_safepoint();
    }
    atomic_fetch_add(&f_done, 1);
    frt_thread_detach();
    return NULL;
}

static void test_concurrent_finalizers(void)
{
    gc_setup(1);
    CHECK_EQ(frt_gc_set_threshold(150, 5, 5), 0);
    atomic_store(&f_done, 0);
    atomic_store(&res_total, 0);
    pthread_t th[F_THREADS];
    for (long t = 0; t < F_THREADS; t++)
        th[t] = test_spawn(finalizing_thread, (void *)(intptr_t)t);
    /* Drain resurrected objects while the others work. */
    while (atomic_load(&f_done) < F_THREADS) {
        resurrect_drain();
        frt_blocking_begin();
        usleep(200);
        frt_blocking_end();
    }
    for (long t = 0; t < F_THREADS; t++)
        test_join(th[t]);
    /* Resurrected objects come back as garbage (or are freed by their count
     * when their finalizer broke the cycle): repeat until none is left. */
    for (int round = 0;; round++) {
        CHECK(round < 100);
        resurrect_drain();
        long got = frt_gc_collect(2);
        CHECK(got >= 0);
        size_t left;
        pthread_mutex_lock(&res_lock);
        left = res_n;
        pthread_mutex_unlock(&res_lock);
        if (got == 0 && left == 0)
            break;
    }
    check_all_destroyed_once();
    /* Every object with a finalizer was finalized exactly once, however it
     * died, and each resurrecting one resurrected once. */
    long n = atomic_load(&next_id), fin = 0, res = 0;
    for (long i = 0; i < n; i++) {
        if (atomic_load(&finalize_by_id[i]) != (fin_kind[i] != 0)) {
            fprintf(stderr, "test_gc_concurrent: object %ld (kind %d) finalized %d times\n", i,
                    fin_kind[i], atomic_load(&finalize_by_id[i]));
            exit(1);
        }
        fin += fin_kind[i] != 0;
        res += fin_kind[i] == 2;
    }
    CHECK_EQ(atomic_load(&finalized), fin);
    CHECK_EQ(atomic_load(&res_total), res);
    CHECK_EQ(frt_shutdown(), 0);
    free(res_list);
    res_list = NULL;
    res_n = res_cap = 0;
}

/* ------------------------------------------------------------------ */
/* 3. Threads that come and go.                                       */

#define G_ROUNDS SCALED(400)
#define G_HANDED 64
static node *g_handed[2][G_HANDED]; /* rings handed to the main thread */
static _Atomic long g_garbage[2];   /* garbage made by the visiting thread */

static void *visitor(void *arg)
{
    long slot = (long)(intptr_t)arg;
    CHECK_EQ(frt_thread_attach(), 0);
    long made = 0;
    for (int i = 0; i < G_HANDED; i++)
        g_handed[slot][i] = ring_modes(&node_type, 1 + i % 5, NULL);
    for (int i = 0; i < 20; i++) {
        long n = 2 + i % 4;
        node *r = ring_modes(&node_type, n, NULL);
        frt_decref(&r->ob);
        made += n;
    }
    atomic_store(&g_garbage[slot], made);
    if (slot == 0)
        frt_thread_detach();
    /* slot 1 exits attached: the exit hook detaches it */
    return NULL;
}

static void test_threads_come_and_go(void)
{
    gc_setup(0);
    /* Garbage not collected yet, by the generation it is in. */
    long g[3] = {0, 0, 0};
    for (int round = 0; round < G_ROUNDS; round++) {
        pthread_t a = test_spawn(visitor, (void *)(intptr_t)0), b = test_spawn(visitor, (void *)(intptr_t)1);
        test_join(a);
        test_join(b);
        g[0] += atomic_load(&g_garbage[0]) + atomic_load(&g_garbage[1]);
        /* Drop half of what was handed over now, the rest after the
         * collection (by then it is in an older generation). */
        for (int s = 0; s < 2; s++) {
            for (int i = 0; i < G_HANDED; i++) {
                if ((i + round) % 2 == 0) {
                    g[0] += 1 + i % 5;
                    frt_decref(&g_handed[s][i]->ob);
                    g_handed[s][i] = NULL;
                }
            }
        }
        int gen = round % 3;
        long want = 0;
        for (int k = 0; k <= gen; k++) {
            want += g[k];
            g[k] = 0;
        }
        CHECK_EQ(frt_gc_collect(gen), want);
        for (int s = 0; s < 2; s++) {
            for (int i = 0; i < G_HANDED; i++) {
                if (g_handed[s][i]) {
                    g[gen == 0 ? 1 : 2] += 1 + i % 5;
                    frt_decref(&g_handed[s][i]->ob);
                    g_handed[s][i] = NULL;
                }
            }
        }
    }
    CHECK_EQ(frt_gc_collect(2), g[0] + g[1] + g[2]);
    check_all_destroyed_once();
    CHECK_EQ(frt_shutdown(), 0);
}

/* ------------------------------------------------------------------ */
/* 4. An automatic run inside the dealloc loop.                        */

#define D_ALLOC 40
static frt_object *d_kept[1024];
static int d_nkept;
static _Atomic long d_runs_in_destroy;

static void destroy_allocates(void)
{
    /* Past t0 (10): a run starts at one of these allocations' polls, while
     * this thread is still freeing. */
    long before = atomic_load(&cb_runs);
    for (int i = 0; i < D_ALLOC; i++) {
        CHECK(d_nkept < 1024);
        d_kept[d_nkept++] = &make_mode(&node_type, M_PLAIN)->ob;
    }
    atomic_fetch_add(&d_runs_in_destroy, atomic_load(&cb_runs) - before);
}

static void test_run_inside_dealloc(void)
{
    gc_setup(1);
    CHECK_EQ(frt_gc_set_threshold(10, 1000, 1000), 0);
    atomic_store(&cb_runs, 0);
    atomic_store(&cb_collected, 0);
    atomic_store(&d_runs_in_destroy, 0);
    d_nkept = 0;
    CHECK_EQ(frt_gc_callback_add(count_runs, NULL), 0);
    frt_gc_disable();
    /* Garbage for the inner runs to find, and a chain of objects whose
     * destroy allocates. */
    long garbage = 0;
    for (int i = 0; i < 20; i++) {
        node *r = ring_modes(&fin_type, 3, NULL);
        frt_decref(&r->ob);
        garbage += 3;
    }
    node *head = make_mode(&allocating_type, M_PLAIN), *cur = head;
    for (int i = 0; i < 9; i++) {
        node *x = make_mode(&allocating_type, M_PLAIN);
        link_to(cur, 0, x);
        frt_decref(&x->ob);
        cur = x;
    }
    frt_gc_enable();
    frt_decref(&head->ob); /* ten destroys, 400 allocations, automatic runs */
    /* All runs happened inside destroys, and they found the rings (each
     * member finalized once, destroyed once). */
    CHECK_EQ(atomic_load(&d_runs_in_destroy), atomic_load(&cb_runs));
    CHECK_EQ(atomic_load(&cb_collected), garbage);
    CHECK_EQ(atomic_load(&finalized), garbage);
    CHECK_EQ(atomic_load(&destroyed), garbage + 10);
    frt_gc_disable();
    while (d_nkept)
        frt_decref(d_kept[--d_nkept]);
    CHECK_EQ(frt_gc_collect(2), 0);
    check_all_destroyed_once();
    CHECK_EQ(frt_shutdown(), 0);
}

/* ------------------------------------------------------------------ */
/* 5. freeze / unfreeze while other threads allocate and free.         */

#define Z_THREADS 3
static _Atomic long z_stop, z_started;

static void *churner(void *arg)
{
    long t = (long)(intptr_t)arg;
    CHECK_EQ(frt_thread_attach(), 0);
    atomic_fetch_add(&z_started, 1);
    node *mine[32] = {0};
    for (long i = 0; !atomic_load(&z_stop); i++) {
        int k = (int)(i % 32);
        if (mine[k])
            frt_decref(&mine[k]->ob); /* frozen or not, it leaves the count */
        mine[k] = make_mode(&node_type, M_PLAIN);
        if ((i + t) % 7 == 0) {
            frt_gc_untrack(&mine[k]->ob);
            if ((i + t) % 14 == 0)
                frt_gc_track(&mine[k]->ob);
        }
        if (i % 100 == 0)
            sched_yield();
    }
    for (int k = 0; k < 32; k++)
        if (mine[k])
            frt_decref(&mine[k]->ob);
    frt_thread_detach();
    return NULL;
}

static void test_freeze_concurrent(void)
{
    gc_setup(0);
    atomic_store(&z_stop, 0);
    atomic_store(&z_started, 0);
    pthread_t th[Z_THREADS];
    for (long t = 0; t < Z_THREADS; t++)
        th[t] = test_spawn(churner, (void *)(intptr_t)t);
    test_wait_at_least(&z_started, Z_THREADS, 1, "churners");
    for (int round = 0; round < SCALED(200); round++) {
        frt_gc_freeze();
        if (round % 5 == 4)
            frt_gc_unfreeze();
        if (round % 10 == 9)
            CHECK_EQ(frt_gc_collect(2), 0);
        sched_yield();
    }
    atomic_store(&z_stop, 1);
    for (long t = 0; t < Z_THREADS; t++)
        test_join(th[t]);
    /* Everything frozen has died or was untracked: the count is back to 0. */
    CHECK_EQ(frt_gc_get_freeze_count(), 0);
    CHECK_EQ(frt_gc_get_objects(-1, NULL, 0), 0);
    node *live[10];
    for (int i = 0; i < 10; i++)
        live[i] = make_mode(&node_type, M_PLAIN);
    frt_gc_freeze();
    CHECK_EQ(frt_gc_get_freeze_count(), 10);
    for (int i = 0; i < 10; i++)
        frt_decref(&live[i]->ob);
    CHECK_EQ(frt_gc_get_freeze_count(), 0);
    check_all_destroyed_once();
    CHECK_EQ(frt_shutdown(), 0);
}

int main(void)
{
    test_watchdog("test_gc_concurrent", 280);
    uint64_t t0 = test_now_ns();
    test_concurrent_collects();
    uint64_t t1 = test_now_ns();
    test_concurrent_finalizers();
    uint64_t t2 = test_now_ns();
    test_threads_come_and_go();
    uint64_t t3 = test_now_ns();
    test_run_inside_dealloc();
    uint64_t t4 = test_now_ns();
    test_freeze_concurrent();
    uint64_t t5 = test_now_ns();
    fprintf(stderr,
            "test_gc_concurrent: collects %.2f s, finalizers %.2f s, come-and-go %.2f s, dealloc %.2f s, "
            "freeze %.2f s\n",
            (t1 - t0) / 1e9, (t2 - t1) / 1e9, (t3 - t2) / 1e9, (t4 - t3) / 1e9, (t5 - t4) / 1e9);
    TEST_PASS("test_gc_concurrent");
    return 0;
}
