/* Adaptive hot objects (brc/hot_adaptive.c): promotion without a call when
 * two threads count on one object's shared count (a merged object sampled
 * every 256th decref; an owned one whose CAS they lose), demotion once it has gone
 * cold, the config knob that turns it off, and both racing stops of the
 * world, collections and frees of objects that wait for promotion. Counts
 * are exact throughout (no reference is held for a nomination) and every
 * object is destroyed exactly once. */
#define _GNU_SOURCE
#include <sched.h>
#include <stdatomic.h>

#include <frt/frt.h>

#include "runtime/os.h"
#include "test_util.h"
#include "tobj.h"

/* An object no thread owns (merged): each hammering thread samples it
 * every 256th decref, so it is promoted on any machine. An owned one is
 * sampled when a CAS on it is lost, which takes threads that truly run side
 * by side (test_promote_owned). */
static frt_object *make_merged(void)
{
    tobj *t = make();
    frt_make_shared(&t->ob);
    return &t->ob;
}

static frt_heap_stats stats(void)
{
    frt_heap_stats s;
    frt_heap_get_stats(&s);
    return s;
}

/* Two threads count on one object that neither owns, until it is hot (or
 * a bound of pairs: the heuristic promotes it after about 2 x 256 x 16).
 * The bound holds for both threads together: a thread that reached it
 * goes on until the other one has too, so that the two always count side
 * by side for a while, however late the machine starts the second one
 * (one thread alone is not contention, and is never promoted). */
static frt_object *target;
static _Atomic int hot_seen, hammers_done;
static long max_pairs = 2000000;

static void *hammer(void *arg)
{
    (void)arg;
    CHECK_EQ(frt_thread_attach(), 0);
    for (long i = 0; !atomic_load(&hot_seen); i++) {
        if (i == max_pairs)
            atomic_fetch_add(&hammers_done, 1);
        if (i >= max_pairs && atomic_load(&hammers_done) >= 2)
            break;
        frt_incref(target);
        frt_decref(target);
        if (i % 256 == 0) {
            frt_safepoint();
            if (frt_is_hot(target))
                atomic_store(&hot_seen, 1);
        }
    }
    frt_thread_detach();
    return NULL;
}

static void hammer_twice(void)
{
    atomic_store(&hot_seen, 0);
    atomic_store(&hammers_done, 0);
    pthread_t a = test_spawn(hammer, NULL), b = test_spawn(hammer, NULL);
    test_join(a);
    test_join(b);
}

static void test_promote_demote(void)
{
    CHECK_EQ(frt_init(NULL), 0);
    reset_counts();
    target = make_merged();
    hammer_twice();
    CHECK(frt_is_hot(target));
    CHECK_EQ(frt_refcount(target), 1); /* exact: nothing held for the promotion */
    frt_heap_stats s = stats();
    CHECK_EQ(s.hot_promoted, 1);
    CHECK_EQ(s.hot_objects, 1);
    /* Nobody counts on it any more: a few collections demote it. */
    for (int i = 0; i < 6; i++)
        frt_gc_collect(0);
    CHECK(!frt_is_hot(target));
    s = stats();
    CHECK_EQ(s.hot_demoted, 1);
    CHECK_EQ(s.hot_objects, 0);
    CHECK_EQ(frt_refcount(target), 1);
    frt_decref(target); /* ordinary again: the decref frees it */
    CHECK_EQ(atomic_load(&destroyed), 1);
    CHECK_EQ(frt_shutdown(), 0);
    CHECK_EQ(atomic_load(&bad_destroys), 0);
    CHECK_EQ(frt_test_sys_live(), 0);
    TEST_PASS("promote_demote");
}

/* An object main owns: the hammering threads' decrefs CAS its shared count
 * and are not sampled by the countdown, so only the CASes they lose to each
 * other promote it. On one CPU nothing contends and it stays ordinary, as
 * it should; the bound on pairs is generous, for a loaded machine on which
 * the two threads run side by side only now and then. */
static void test_promote_owned(void)
{
    CHECK_EQ(frt_init(NULL), 0);
    reset_counts();
    target = &make()->ob;
    cpu_set_t cpus;
    CHECK_EQ(sched_getaffinity(0, sizeof cpus, &cpus), 0);
    if (CPU_COUNT(&cpus) < 2) {
        fprintf(stderr, "promote_owned: one CPU, no contention to find\n");
    } else {
        long saved = max_pairs;
        max_pairs = 25 * saved;
        hammer_twice();
        max_pairs = saved;
        CHECK(frt_is_hot(target));
        CHECK_EQ(stats().hot_promoted, 1);
    }
    CHECK_EQ(frt_refcount(target), 1);
    frt_decref(target);
    CHECK(frt_gc_collect(0) >= 0);
    CHECK_EQ(atomic_load(&destroyed), 1);
    CHECK_EQ(frt_shutdown(), 0);
    CHECK_EQ(atomic_load(&bad_destroys), 0);
    TEST_PASS("promote_owned");
}

static void test_off(void)
{
    frt_config cfg;
    frt_config_default(&cfg);
    cfg.hot_adaptive = FRT_HOT_ADAPTIVE_OFF;
    CHECK_EQ(frt_init(&cfg), 0);
    reset_counts();
    target = make_merged();
    hammer_twice();
    CHECK(!frt_is_hot(target));
    CHECK_EQ(stats().hot_promoted, 0);
    CHECK_EQ(frt_refcount(target), 1);
    frt_decref(target);
    CHECK_EQ(atomic_load(&destroyed), 1);
    CHECK_EQ(frt_shutdown(), 0);
    TEST_PASS("off");
}

/* The bound on freeing latency: an object the runtime made hot, whose last
 * reference goes while it is hot, dies at the next collection of any
 * generation, the automatic ones included. */
static int tracked_traverse(frt_object *self, frt_visit_fn visit, void *arg)
{
    (void)self, (void)visit, (void)arg;
    return 0;
}
static const frt_type tracked_type = {"hot.adaptive.tracked", sizeof(frt_object), tracked_traverse,
                                      NULL, NULL, NULL};

static void test_freed_by_next_collection(void)
{
    CHECK_EQ(frt_init(NULL), 0);
    reset_counts();
    CHECK_EQ(frt_gc_set_threshold(50, 10, 10), 0);
    /* Dropped, then an explicit collection of the youngest generation. */
    target = make_merged();
    hammer_twice();
    CHECK(frt_is_hot(target));
    frt_decref(target);
    CHECK_EQ(atomic_load(&destroyed), 0); /* only a collection sums the counts */
    CHECK(frt_gc_collect(0) >= 0);
    CHECK_EQ(atomic_load(&destroyed), 1);
    /* Dropped, then only allocations: the automatic collection they
     * trigger (threshold 50) frees it. */
    target = make_merged();
    hammer_twice();
    CHECK(frt_is_hot(target));
    frt_decref(target);
    frt_object *keep[200];
    for (int i = 0; i < 200; i++)
        CHECK((keep[i] = frt_new(&tracked_type)) != NULL);
    CHECK_EQ(atomic_load(&destroyed), 2);
    for (int i = 0; i < 200; i++)
        frt_decref(keep[i]);
    CHECK_EQ(stats().hot_objects, 0);
    CHECK_EQ(frt_shutdown(), 0);
    CHECK_EQ(atomic_load(&bad_destroys), 0);
    TEST_PASS("freed_by_next_collection");
}

/* With the collector disabled no collection comes to free a hot object:
 * disabling demotes what the runtime promoted, nothing is promoted while
 * it stays off, and objects die at their last decref again. */
static void test_gc_disabled(void)
{
    CHECK_EQ(frt_init(NULL), 0);
    reset_counts();
    target = make_merged();
    hammer_twice();
    CHECK(frt_is_hot(target));
    frt_gc_disable();
    CHECK(!frt_is_hot(target));
    CHECK_EQ(stats().hot_demoted, 1);
    CHECK_EQ(frt_refcount(target), 1);
    hammer_twice();
    CHECK(!frt_is_hot(target));
    CHECK_EQ(stats().hot_promoted, 1);
    frt_decref(target); /* ordinary: the last decref frees it */
    CHECK_EQ(atomic_load(&destroyed), 1);
    frt_gc_enable();
    target = make_merged();
    hammer_twice();
    CHECK(frt_is_hot(target));
    frt_decref(target);
    CHECK(frt_gc_collect(0) >= 0);
    CHECK_EQ(atomic_load(&destroyed), 2);
    CHECK_EQ(frt_shutdown(), 0);
    CHECK_EQ(atomic_load(&bad_destroys), 0);
    TEST_PASS("gc_disabled");
}

/* One thread streaks over many objects in turn, each of which it alone
 * counts on (nominated, never seconded), and no collection comes to expire
 * those nominations: a later object that two threads contend on must
 * still be promoted. The table of nominations is small, so stale ones
 * must make room for new ones (they once filled it for good, and
 * frt-bench-brc's adaptive row was never promoted). */
#define STREAK_OBJECTS 24
static frt_object *streak_objs[STREAK_OBJECTS];

static void *streaker(void *arg)
{
    (void)arg;
    CHECK_EQ(frt_thread_attach(), 0);
    for (int k = 0; k < STREAK_OBJECTS; k++)
        for (int i = 0; i < 6000; i++) {
            frt_incref(streak_objs[k]);
            frt_decref(streak_objs[k]);
        }
    frt_thread_detach();
    return NULL;
}

static void test_stale_nominations(void)
{
    CHECK_EQ(frt_init(NULL), 0);
    reset_counts();
    for (int k = 0; k < STREAK_OBJECTS; k++) /* alive together: distinct addresses */
        streak_objs[k] = make_merged();
    test_join(test_spawn(streaker, NULL));
    for (int k = 0; k < STREAK_OBJECTS; k++) {
        CHECK(!frt_is_hot(streak_objs[k])); /* one thread each: never promoted */
        frt_decref(streak_objs[k]);
    }
    CHECK_EQ(atomic_load(&destroyed), STREAK_OBJECTS);
    frt_gc_stats gs[3];
    frt_gc_get_stats(gs);
    CHECK_EQ(gs[0].collections + gs[1].collections + gs[2].collections, 0); /* nothing expired them */
    target = make_merged();
    hammer_twice();
    CHECK(frt_is_hot(target));
    CHECK_EQ(stats().hot_promoted, 1);
    frt_decref(target);
    CHECK(frt_gc_collect(0) >= 0);
    CHECK_EQ(atomic_load(&destroyed), STREAK_OBJECTS + 1);
    CHECK_EQ(frt_shutdown(), 0);
    CHECK_EQ(atomic_load(&bad_destroys), 0);
    TEST_PASS("stale_nominations");
}

/* Short-lived shared objects counted by two threads, dropped while their
 * promotion may wait, with collections and stops of the world racing: the
 * frees forget waiting promotions, and every object dies exactly once. */
#define ROUNDS SCALED(400)
/* Enough for 16 samples in a row of one object on each thread (a sample
 * every 256 non-owner decrefs, refcount.c), so that rounds get promoted. */
#define PAIRS 6000
static _Atomic(frt_object *) round_obj;
static _Atomic int stop_flag;

typedef struct racer {
    int idx;
    pthread_barrier_t *bar;
} racer;

static void wait_bar(pthread_barrier_t *bar)
{
    frt_blocking_begin();
    pthread_barrier_wait(bar);
    frt_blocking_end();
}

static void *racer_main(void *p)
{
    racer *r = p;
    CHECK_EQ(frt_thread_attach(), 0);
    for (int round = 0; round < ROUNDS; round++) {
        if (r->idx == 0) {
            tobj *t = make();
            frt_make_shared(&t->ob);
            frt_incref(&t->ob); /* one reference each */
            atomic_store(&round_obj, &t->ob);
        }
        wait_bar(r->bar);
        frt_object *o = atomic_load(&round_obj);
        for (int i = 0; i < PAIRS; i++) {
            frt_incref(o);
            frt_decref(o);
            if (i % 128 == 0 && round % 2 == 0)
                frt_safepoint(); /* odd rounds: promotions wait, and may meet the free */
        }
        wait_bar(r->bar);
        frt_decref(o); /* the last one frees it, or the next sweep if it went hot */
    }
    frt_thread_detach();
    return NULL;
}

static void *racer_stopper(void *p)
{
    (void)p;
    CHECK_EQ(frt_thread_attach(), 0);
    for (int i = 0; !atomic_load(&stop_flag); i++) {
        if (i % 2 == 0)
            frt_gc_collect(i % 3);
        else if (frt_stop_the_world() == 0)
            frt_start_the_world();
        test_sleep_us(100);
    }
    frt_thread_detach();
    return NULL;
}

static void test_racing(void)
{
    CHECK_EQ(frt_init(NULL), 0);
    reset_counts();
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, 2);
    atomic_store(&stop_flag, 0);
    pthread_t stopper = test_spawn(racer_stopper, NULL);
    racer r[2] = {{0, &bar}, {1, &bar}};
    pthread_t a = test_spawn(racer_main, &r[0]), b = test_spawn(racer_main, &r[1]);
    test_join(a);
    test_join(b);
    atomic_store(&stop_flag, 1);
    test_join(stopper);
    frt_gc_collect(2); /* the sweep frees the hot ones */
    CHECK_EQ(atomic_load(&destroyed), ROUNDS);
    CHECK_EQ(atomic_load(&bad_destroys), 0);
    CHECK_EQ(stats().hot_objects, 0);
    CHECK(stats().hot_promoted > 0); /* the races above did happen */
    fprintf(stderr, "racing: %d objects, %llu promoted, %llu demoted\n", ROUNDS,
            (unsigned long long)stats().hot_promoted, (unsigned long long)stats().hot_demoted);
    pthread_barrier_destroy(&bar);
    CHECK_EQ(frt_shutdown(), 0);
    TEST_PASS("racing");
}

int main(void)
{
    test_watchdog("test_hot_adaptive", 240);
    test_promote_demote();
    test_promote_owned();
    test_off();
    test_freed_by_next_collection();
    test_gc_disabled();
    test_stale_nominations();
    test_racing();
    return 0;
}
