/* The cycle collector with several threads.
 *
 * 1. A ring whose every link crosses threads, linked by the owners
 *    themselves; then some owners detach, one exits without detaching, one
 *    keeps polling, one sits in a blocking section; one full collection
 *    finds the whole ring, and every member is destroyed exactly once
 *    before it returns (the collector frees what it found itself, never
 *    through the owners' merge queues).
 * 2. Garbage whose last references were queued to an owner that has not
 *    merged them yet when the collection stops the world.
 * 3. Cycles built and dropped by threads that keep allocating, with
 *    automatic collections on (and blocking sections in between): in the
 *    end every object was collected exactly once, the collections' info
 *    adds up to everything, kept rings were never touched, and every
 *    collection stopped the world.
 * 4. 64 attached threads (oversubscribed: this machine has 2 CPUs) in
 *    frt_safepoint loops while the main thread collects exact amounts.
 * 5. frt_gc_track of an object in another thread's heap puts it in the
 *    oldest generation.
 * 6. frt_gc_collect refused: unattached, in a blocking section, holding a
 *    stop.
 * 7. Garbage owned by a thread that is attached but reaches no safepoint
 *    while the collection clears it (it left a blocking section after the
 *    stop): destroyed before frt_gc_collect returns, not left queued to
 *    that owner (the stress harness's mixed workload saw up to 1,778 such
 *    requests alive after a full collection).
 * 8. Objects whose last references wait in their owner's queue (a short
 *    queue waits for a batch, and a stop parks the owner before it merges)
 *    are dead: frt_gc_get_objects and frt_gc_get_referrers do not hand
 *    them out (which would bring them back), frt_gc_freeze does not count
 *    them; each merges the queues in its stop and frees them. */
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
/* 1. A ring across threads; owners gone, polling or blocked.         */

enum { ROLE_DETACH, ROLE_EXIT_ATTACHED, ROLE_POLL, ROLE_BLOCKED, NROLES };
#define R_THREADS 6
#define R_PER SCALED(20000)

static node *r_nodes[R_THREADS][20000];
static _Atomic long r_made, r_linked, r_dropped, r_stop;

static void *ring_worker(void *arg)
{
    long t = (long)(intptr_t)arg;
    int role = (int)(t % NROLES);
    CHECK_EQ(frt_thread_attach(), 0);
    for (long i = 0; i < R_PER; i++)
        r_nodes[t][i] = make();
    atomic_fetch_add(&r_made, 1);
    test_wait_at_least(&r_made, R_THREADS, 1, "ring nodes made");
    /* Our node i -> the next thread's node i; the last thread's node i ->
     * the first thread's node i+1: one ring through every thread, every
     * link from one owner to another. */
    long next = (t + 1) % R_THREADS;
    for (long i = 0; i < R_PER; i++) {
        long j = t == R_THREADS - 1 ? (i + 1) % R_PER : i;
        link_to(r_nodes[t][i], 0, r_nodes[next][j]);
    }
    atomic_fetch_add(&r_linked, 1);
    test_wait_at_least(&r_linked, R_THREADS, 1, "ring linked");
    for (long i = 0; i < R_PER; i++)
        frt_decref(&r_nodes[t][i]->ob);
    atomic_fetch_add(&r_dropped, 1);
    switch (role) {
    case ROLE_DETACH:
        frt_thread_detach();
        break;
    case ROLE_EXIT_ATTACHED:
        break; /* the exit hook detaches us */
    case ROLE_POLL:
        while (!atomic_load(&r_stop)) {
            frt_safepoint();
            sched_yield();
        }
        frt_thread_detach();
        break;
    case ROLE_BLOCKED:
        frt_blocking_begin();
        while (!atomic_load(&r_stop))
            usleep(200);
        frt_blocking_end();
        frt_thread_detach();
        break;
    }
    return NULL;
}

static void test_ring_across_threads(void)
{
    gc_setup(0);
    atomic_store(&r_made, 0);
    atomic_store(&r_linked, 0);
    atomic_store(&r_dropped, 0);
    atomic_store(&r_stop, 0);
    pthread_t th[R_THREADS];
    for (long t = 0; t < R_THREADS; t++)
        th[t] = test_spawn(ring_worker, (void *)(intptr_t)t);
    test_wait_at_least(&r_dropped, R_THREADS, 1, "ring references dropped");
    /* The detaching ones are gone before the collection. */
    for (long t = 0; t < R_THREADS; t++)
        if (t % NROLES == ROLE_DETACH || t % NROLES == ROLE_EXIT_ATTACHED)
            test_join(th[t]);
    CHECK_EQ(atomic_load(&destroyed), 0);
    long total = (long)R_THREADS * R_PER;
    CHECK_EQ(frt_gc_collect(2), total);
    CHECK_EQ(atomic_load(&destroyed), total);
    check_destroyed_once(0, total);
    CHECK_EQ(frt_gc_collect(2), 0);
    atomic_store(&r_stop, 1);
    for (long t = 0; t < R_THREADS; t++)
        if (t % NROLES == ROLE_POLL || t % NROLES == ROLE_BLOCKED)
            test_join(th[t]);
    CHECK_EQ(atomic_load(&destroyed), total);
    CHECK_EQ(frt_shutdown(), 0);
    CHECK_EQ(atomic_load(&bad_destroys), 0);
}

/* ------------------------------------------------------------------ */
/* 2. References queued to a busy owner when the collection starts.    */

#define Q_PAIRS SCALED(20000)
static node *q_w[20000], *q_m[20000];
static _Atomic long q_phase;

static void *queue_owner(void *arg)
{
    (void)arg;
    CHECK_EQ(frt_thread_attach(), 0);
    for (long i = 0; i < Q_PAIRS; i++) {
        q_w[i] = make();
        frt_incref(&q_w[i]->ob); /* two references for the main thread */
        frt_incref(&q_w[i]->ob);
    }
    atomic_store(&q_phase, 1);
    test_wait_at_least(&q_phase, 2, 1, "main's nodes");
    for (long i = 0; i < Q_PAIRS; i++) {
        link_to(q_w[i], 0, q_m[i]);  /* a count on main's object */
        frt_decref(&q_w[i]->ob);      /* ours */
    }
    atomic_store(&q_phase, 3);
    /* Busy: a poll now and then, so a merge request waits a while. */
    while (atomic_load(&q_phase) < 4) {
        usleep(500);
        frt_safepoint();
    }
    frt_thread_detach();
    return NULL;
}

static void test_queued_at_collection(void)
{
    gc_setup(0);
    atomic_store(&q_phase, 0);
    pthread_t t = test_spawn(queue_owner, NULL);
    test_wait_at_least(&q_phase, 1, 1, "owner's nodes");
    for (long i = 0; i < Q_PAIRS; i++) {
        q_m[i] = make();
        q_m[i]->ref[0] = &q_w[i]->ob; /* takes over one of the references */
    }
    atomic_store(&q_phase, 2);
    test_wait_at_least(&q_phase, 3, 1, "owner's links");
    long total = 2 * Q_PAIRS;
    /* Each pair w <-> m is garbage once these go: our m (owned, local),
     * and our second reference to w, which a non-owner with the shared
     * count at 0 hands to w's owner's queue. The collection must count
     * what is queued. */
    for (long i = 0; i < Q_PAIRS; i++) {
        frt_decref(&q_m[i]->ob);
        frt_decref(&q_w[i]->ob);
    }
    CHECK_EQ(frt_gc_collect(2), total);
    test_wait_at_least(&destroyed, total, 1, "pairs destroyed");
    check_destroyed_once(0, total);
    atomic_store(&q_phase, 4);
    test_join(t);
    CHECK_EQ(atomic_load(&destroyed), total);
    CHECK_EQ(frt_shutdown(), 0);
    CHECK_EQ(atomic_load(&bad_destroys), 0);
}

/* ------------------------------------------------------------------ */
/* 3. Threads that keep allocating cycles, automatic collections.      */

#define A_WORKERS 3
#define A_ITERS SCALED(60000)
#define A_KEEP 8
static _Atomic long a_made; /* objects made by the workers */

static void *alloc_worker(void *arg)
{
    long seed = (long)(intptr_t)arg;
    CHECK_EQ(frt_thread_attach(), 0);
    node *kept[A_KEEP] = {0};
    long made = 0;
    for (long i = 0; i < A_ITERS; i++) {
        long n = 1 + (i * 7 + seed) % 9;
        node *r = ring_of(&node_type, n);
        made += n;
        long k = (i + seed) % A_KEEP;
        if (i % 3 == 0) { /* keep this one for a while */
            if (kept[k])
                frt_decref(&kept[k]->ob);
            kept[k] = r;
        } else {
            frt_decref(&r->ob);
        }
        if (i % 50 == 0) {
            frt_blocking_begin();
            frt_blocking_end();
        }
        if (i % 17 == 0)
            frt_safepoint();
    }
    for (int k = 0; k < A_KEEP; k++)
        if (kept[k])
            frt_decref(&kept[k]->ob);
    atomic_fetch_add(&a_made, made);
    frt_thread_detach();
    return NULL;
}

static void test_allocating_threads(void)
{
    gc_setup(1);
    CHECK_EQ(frt_gc_set_threshold(300, 5, 5), 0);
    atomic_store(&cb_runs, 0);
    atomic_store(&cb_collected, 0);
    atomic_store(&cb_uncollectable, 0);
    atomic_store(&a_made, 0);
    CHECK_EQ(frt_gc_callback_add(count_runs, NULL), 0);
    frt_stw_stats w0, w1;
    frt_stw_get_stats(&w0);

    /* A ring the main thread keeps through everything. */
    long kept_first = atomic_load(&next_id);
    node *kept = ring_of(&node_type, 50);
    pthread_t th[A_WORKERS];
    for (long t = 0; t < A_WORKERS; t++)
        th[t] = test_spawn(alloc_worker, (void *)(intptr_t)(t * 3 + 1));
    long main_made = 0;
    for (int i = 0; i < SCALED(30000); i++) {
        node *r = ring_of(&node_type, 5);
        frt_decref(&r->ob);
        main_made += 5;
        if (i % 600 == 0) /* 0 while another thread's run is under way */
            CHECK(frt_gc_collect(i % 1200 == 0 ? 0 : 2) >= 0);
    }
    for (long t = 0; t < A_WORKERS; t++)
        test_join(th[t]);
    for (long i = kept_first; i < kept_first + 50; i++)
        CHECK_EQ(atomic_load(&destroy_by_id[i]), 0);
    frt_decref(&kept->ob);
    main_made += 50;
    /* Every thread but this one has gone: one full run finds the rest. */
    long before_last = atomic_load(&cb_collected);
    long got = frt_gc_collect(2);
    CHECK_EQ(atomic_load(&cb_collected) - before_last, got);
    CHECK_EQ(frt_gc_collect(2), 0);
    long total = atomic_load(&a_made) + main_made;
    CHECK_EQ(atomic_load(&next_id), total);
    CHECK_EQ(atomic_load(&destroyed), total);
    check_destroyed_once(0, total);
    /* Every object was a cycle member: the collections found all of them,
     * each once. */
    CHECK_EQ(atomic_load(&cb_collected), total);
    CHECK_EQ(atomic_load(&cb_uncollectable), 0);
    frt_gc_stats st[3];
    frt_gc_get_stats(st);
    CHECK_EQ((long)(st[0].collected + st[1].collected + st[2].collected), total);
    CHECK_EQ((long)(st[0].collections + st[1].collections + st[2].collections),
             atomic_load(&cb_runs));
    /* Without finalizers each collection stops the world exactly once, and
     * nothing else in this test stops it. */
    frt_stw_get_stats(&w1);
    CHECK_EQ((long)(w1.stops - w0.stops), atomic_load(&cb_runs));
    CHECK_EQ(frt_shutdown(), 0);
    CHECK_EQ(atomic_load(&bad_destroys), 0);
}

/* ------------------------------------------------------------------ */
/* 4. 64 oversubscribed threads polling while the main thread collects. */

#define O_THREADS 64
static _Atomic long o_started, o_stop;
static long o_mine[O_THREADS]; /* ids of the pollers' long-lived objects */

static void *poller(void *arg)
{
    long t = (long)(intptr_t)arg;
    CHECK_EQ(frt_thread_attach(), 0);
    node *mine = make(); /* alive throughout */
    o_mine[t] = mine->id;
    atomic_fetch_add(&o_started, 1);
    for (long i = 0; !atomic_load(&o_stop); i++) {
        frt_safepoint();
        if ((i + t) % 64 == 0) {
            node *x = make(); /* freed by its count: not garbage */
            frt_decref(&x->ob);
        }
        if ((i + t) % 256 == 0) {
            frt_blocking_begin();
            frt_blocking_end();
        }
        sched_yield();
    }
    frt_decref(&mine->ob);
    frt_thread_detach();
    return NULL;
}

static void test_oversubscribed(void)
{
    gc_setup(0); /* only our collections: exact counts */
    atomic_store(&o_started, 0);
    atomic_store(&o_stop, 0);
    pthread_t th[O_THREADS];
    for (long t = 0; t < O_THREADS; t++)
        th[t] = test_spawn(poller, (void *)(intptr_t)t);
    test_wait_at_least(&o_started, O_THREADS, 1, "pollers attached");
    frt_stw_stats w0, w1;
    frt_stw_get_stats(&w0);
    enum { RING = 100, ROUNDS = 4 };
    for (int round = 0; round < ROUNDS; round++) {
        /* A ring and a self-cycle; their ids (interleaved with the
         * pollers' ids) are kept to check them one by one. */
        long ids[RING + 1];
        node *v[RING];
        for (int i = 0; i < RING; i++) {
            v[i] = make();
            ids[i] = v[i]->id;
        }
        for (int i = 0; i < RING; i++)
            link_to(v[i], 0, v[(i + 1) % RING]);
        for (int i = 0; i < RING; i++)
            frt_decref(&v[i]->ob);
        node *s = make();
        ids[RING] = s->id;
        link_to(s, 0, s);
        frt_decref(&s->ob);
        for (int i = 0; i <= RING; i++)
            CHECK_EQ(atomic_load(&destroy_by_id[ids[i]]), 0);
        CHECK_EQ(frt_gc_collect(round % 2 ? 0 : 2), RING + 1);
        /* Ours are freed by the collecting thread, which owns them. */
        for (int i = 0; i <= RING; i++)
            CHECK_EQ(atomic_load(&destroy_by_id[ids[i]]), 1);
        for (int t = 0; t < O_THREADS; t++)
            CHECK_EQ(atomic_load(&destroy_by_id[o_mine[t]]), 0);
    }
    frt_stw_get_stats(&w1);
    CHECK_EQ(w1.stops - w0.stops, ROUNDS);
    atomic_store(&o_stop, 1);
    for (long t = 0; t < O_THREADS; t++)
        test_join(th[t]);
    CHECK_EQ(frt_gc_collect(2), 0);
    CHECK_EQ(atomic_load(&destroyed), atomic_load(&next_id));
    check_destroyed_once(0, atomic_load(&next_id));
    CHECK_EQ(frt_shutdown(), 0);
    CHECK_EQ(atomic_load(&bad_destroys), 0);
}

/* ------------------------------------------------------------------ */
/* 5. frt_gc_track of another heap's object: generation 2.            */

static node *k_ring[3];
static _Atomic long k_phase;

static void *track_owner(void *arg)
{
    (void)arg;
    CHECK_EQ(frt_thread_attach(), 0);
    for (int i = 0; i < 3; i++)
        k_ring[i] = make();
    for (int i = 0; i < 3; i++)
        link_to(k_ring[i], 0, k_ring[(i + 1) % 3]);
    frt_gc_untrack(&k_ring[1]->ob);
    for (int i = 0; i < 3; i++)
        frt_decref(&k_ring[i]->ob); /* garbage, kept by the untracked member */
    atomic_store(&k_phase, 1);
    while (atomic_load(&k_phase) < 2) {
        frt_safepoint();
        sched_yield();
    }
    frt_thread_detach();
    return NULL;
}

static long count_listed(int gen, frt_object *o)
{
    frt_object *out[16];
    size_t n = frt_gc_get_objects(gen, out, 16);
    CHECK(n <= 16);
    long hits = 0;
    for (size_t i = 0; i < n; i++) {
        hits += out[i] == o;
        frt_decref(out[i]);
    }
    return hits;
}

static void test_track_other_heap(void)
{
    gc_setup(0);
    atomic_store(&k_phase, 0);
    pthread_t t = test_spawn(track_owner, NULL);
    test_wait_at_least(&k_phase, 1, 1, "the owner's ring");
    CHECK_EQ(frt_gc_collect(2), 0);
    /* Tracked by a thread that does not own its heap: the oldest
     * generation, which only full runs examine. */
    CHECK(!frt_gc_is_tracked(&k_ring[1]->ob));
    frt_gc_track(&k_ring[1]->ob);
    CHECK(frt_gc_is_tracked(&k_ring[1]->ob));
    CHECK_EQ(count_listed(2, &k_ring[1]->ob), 1);
    CHECK_EQ(frt_gc_get_objects(2, NULL, 0), 3); /* the full run promoted the others */
    CHECK_EQ(frt_gc_collect(0), 0);
    CHECK_EQ(frt_gc_collect(1), 0);
    CHECK_EQ(atomic_load(&destroyed), 0);
    CHECK_EQ(frt_gc_collect(2), 3);
    test_wait_at_least(&destroyed, 3, 1, "the ring destroyed");
    check_destroyed_once(0, 3);
    atomic_store(&k_phase, 2);
    test_join(t);
    CHECK_EQ(atomic_load(&destroyed), 3);

    /* The same from a fresh ring, untracked while young: back in young
     * runs only when the owner tracks it. */
    node *a = make(), *b = make();
    link_to(a, 0, b);
    link_to(b, 0, a);
    frt_gc_untrack(&b->ob);
    frt_gc_track(&b->ob); /* our own heap: generation 0 */
    CHECK_EQ(count_listed(0, &b->ob), 1);
    frt_decref(&a->ob);
    frt_decref(&b->ob);
    CHECK_EQ(frt_gc_collect(0), 2);
    CHECK_EQ(atomic_load(&destroyed), 5);
    CHECK_EQ(frt_shutdown(), 0);
    CHECK_EQ(atomic_load(&bad_destroys), 0);
}

/* ------------------------------------------------------------------ */
/* 6. Where a collection is refused.                                  */

static node *s_obj;
static _Atomic long s_done;

static void *unattached(void *arg)
{
    (void)arg;
    CHECK_EQ(frt_gc_collect(2), FRT_ESTATE);
    CHECK_EQ(frt_gc_collect(0), FRT_ESTATE);
    CHECK_EQ(frt_gc_get_objects(-1, NULL, 0), 0);
    CHECK_EQ(frt_gc_get_referrers(&s_obj->ob, NULL, 0), 0);
    atomic_store(&s_done, 1);
    return NULL;
}

static void test_refused(void)
{
    gc_setup(0);
    s_obj = make();
    link_to(s_obj, 0, s_obj);
    atomic_store(&s_done, 0);
    pthread_t t = test_spawn(unattached, NULL);
    test_join(t);
    CHECK_EQ(atomic_load(&s_done), 1);
    frt_decref(&s_obj->ob);
    frt_blocking_begin();
    long r = frt_gc_collect(2);
    frt_blocking_end();
    CHECK_EQ(r, FRT_ESTATE);
    CHECK_EQ(frt_stop_the_world(), 0);
    r = frt_gc_collect(2);
    frt_start_the_world();
    CHECK_EQ(r, FRT_ESTATE);
    CHECK_EQ(atomic_load(&destroyed), 0);
    CHECK_EQ(frt_gc_collect(2), 1);
    CHECK_EQ(atomic_load(&destroyed), 1);
    CHECK_EQ(frt_shutdown(), 0);
}

/* ------------------------------------------------------------------ */
/* 7. An owner that wakes up after the stop and reaches no safepoint.  */

#define B_NODES 1000
static _Atomic long b_phase; /* 1 garbage made; 2 leave the section; 3 left; 4 done */

static void busy_clear(frt_object *self)
{
    /* The first clear runs with the world running, after the
     * collection's last stop: wake the owner and wait until it is
     * attached again and busy. */
    if (atomic_load(&b_phase) == 1) {
        atomic_store(&b_phase, 2);
        test_wait_at_least(&b_phase, 3, 0, "the owner to leave its blocking section");
    }
    node_clear(self);
}

static const frt_type busy_node_type = {"busy_node", sizeof(node), node_traverse, busy_clear, NULL,
                                        node_destroy};

static void *busy_owner(void *arg)
{
    (void)arg;
    CHECK_EQ(frt_thread_attach(), 0);
    for (int i = 0; i < B_NODES; i++) {
        node *n = make_of(&busy_node_type);
        link_to(n, 0, n);
        frt_decref(&n->ob);
    }
    frt_blocking_begin();
    atomic_store(&b_phase, 1);
    while (atomic_load(&b_phase) < 2)
        usleep(100);
    frt_blocking_end();
    atomic_store(&b_phase, 3);
    while (atomic_load(&b_phase) < 4) /* attached, no safepoint */
        sched_yield();
    frt_thread_detach();
    return NULL;
}

static void test_owner_busy_after_stop(void)
{
    gc_setup(0);
    atomic_store(&b_phase, 0);
    pthread_t t = test_spawn(busy_owner, NULL);
    test_wait_at_least(&b_phase, 1, 1, "garbage made");
    CHECK_EQ(frt_gc_collect(2), B_NODES);
    long freed = atomic_load(&destroyed);
    atomic_store(&b_phase, 4);
    test_join(t);
    CHECK_EQ(freed, B_NODES);
    check_destroyed_once(0, B_NODES);
    CHECK_EQ(frt_shutdown(), 0);
}

/* ------------------------------------------------------------------ */
/* 8. Dead objects in an attached owner's queue during a stop.        */

#define D_NODES 10 /* fewer than a batch: the owner leaves them queued */
static node *d_nodes[D_NODES], *d_target;
static _Atomic long d_phase; /* 1 made; 2 done */

static void *queue_keeper(void *arg)
{
    (void)arg;
    CHECK_EQ(frt_thread_attach(), 0);
    for (int i = 0; i < D_NODES; i++) {
        d_nodes[i] = make();
        link_to(d_nodes[i], 0, d_target);
    }
    atomic_store(&d_phase, 1); /* main takes our references over */
    while (atomic_load(&d_phase) < 2) {
        frt_safepoint();
        sched_yield();
    }
    frt_thread_detach();
    return NULL;
}

/* Drops the keeper's nodes (main's batch goes to the keeper's queue at
 * main's next stop), then calls what is tested; every node must be
 * destroyed once that returns. */
static void drop_then(int what)
{
    long before = atomic_load(&destroyed);
    atomic_store(&d_phase, 0);
    pthread_t t = test_spawn(queue_keeper, NULL);
    test_wait_at_least(&d_phase, 1, 1, "the keeper's nodes");
    for (int i = 0; i < D_NODES; i++)
        frt_decref(&d_nodes[i]->ob);
    frt_object *out[D_NODES + 2];
    if (what == 0) {
        size_t n = frt_gc_get_objects(-1, out, D_NODES + 2);
        CHECK_EQ(n, 1); /* d_target */
        CHECK(out[0] == &d_target->ob);
        frt_decref(out[0]);
    } else if (what == 1) {
        CHECK_EQ(frt_gc_get_referrers(&d_target->ob, out, D_NODES + 2), 0);
    } else {
        frt_gc_freeze();
        CHECK_EQ(frt_gc_get_freeze_count(), 1); /* d_target */
        frt_gc_unfreeze();
    }
    CHECK_EQ(atomic_load(&destroyed), before + D_NODES);
    CHECK_EQ(frt_refcount(&d_target->ob), 1);
    atomic_store(&d_phase, 2);
    test_join(t);
}

static void test_queued_dead_not_listed(void)
{
    gc_setup(0);
    d_target = make();
    for (int what = 0; what < 3; what++)
        drop_then(what);
    frt_decref(&d_target->ob);
    CHECK_EQ(atomic_load(&destroyed), 3 * D_NODES + 1);
    check_destroyed_once(0, 3 * D_NODES + 1);
    gc_teardown();
}

int main(void)
{
    test_watchdog("test_gc_threads", 280);
    uint64_t t0 = test_now_ns();
    test_ring_across_threads();
    uint64_t t1 = test_now_ns();
    test_queued_at_collection();
    uint64_t t2 = test_now_ns();
    test_allocating_threads();
    uint64_t t3 = test_now_ns();
    test_oversubscribed();
    uint64_t t4 = test_now_ns();
    test_track_other_heap();
    test_refused();
    test_owner_busy_after_stop();
    test_queued_dead_not_listed();
    fprintf(stderr, "test_gc_threads: ring %.2f s, queued %.2f s, allocating %.2f s, 64 threads %.2f s\n",
            (t1 - t0) / 1e9, (t2 - t1) / 1e9, (t3 - t2) / 1e9, (t4 - t3) / 1e9);
    TEST_PASS("test_gc_threads");
    return 0;
}
