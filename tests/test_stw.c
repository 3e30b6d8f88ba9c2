/* Stop-the-world: while the world is stopped, nothing that runs attached
 * moves. Workers bump a private counter between safepoints (and allocate
 * and drop objects, some of them other threads'); the stopper samples every
 * counter, sleeps, and samples again: equal, or a thread ran through a
 * stop. It also reads the thread registry (internal header) to see every
 * other thread parked. Then: blocking sections (not waited for, and
 * blocking_end waits for the restart), attach/detach during stops,
 * simultaneous stop requests, nested stops, the statistics, and fairness to
 * a thread going in and out of blocking sections under back-to-back stops
 * (gh-151518). */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <frt/frt.h>

#include "test_util.h"
#include "runtime/tstate.h"

static const char *phase = "start";

static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "test_stw: watchdog expired: deadlock or starvation in phase: ";
    ssize_t r = write(2, msg, sizeof msg - 1);
    r = write(2, phase, strlen(phase));
    r = write(2, "\n", 1);
    (void)r;
    _exit(3);
}




static _Atomic long created, destroyed;

static void obj_destroy(frt_object *self)
{
    (void)self;
    atomic_fetch_add_explicit(&destroyed, 1, memory_order_relaxed);
}

static const frt_type obj_type = {"stw_obj", sizeof(frt_object) + 16, NULL, NULL, NULL, obj_destroy};

static frt_object *new_obj(void)
{
    frt_object *o = frt_new(&obj_type);
    CHECK(o != NULL);
    atomic_fetch_add_explicit(&created, 1, memory_order_relaxed);
    return o;
}

/* With the world stopped (we hold the registry): every other registered
 * thread is parked, suspended in a blocking section, or on its way out. */
static void check_all_parked(const char *where)
{
    frt_tstate *me = frt__tstate();
    CHECK(me != NULL);
    CHECK(me->stw_depth > 0);
    for (frt_tstate *ts = frt__tstate_first(); ts; ts = ts->next) {
        if (ts == me)
            continue;
        uint32_t st = frt_ts_state(atomic_load(&ts->word));
        if (st != FRT_TS_SUSPENDED && st != FRT_TS_DETACHED) {
            fprintf(stderr, "test_stw: %s: thread %#lx in state %u while the world is stopped\n",
                    where, (unsigned long)atomic_load(&ts->tid), st);
            exit(1);
        }
    }
}

/* ------------------------------------------------------------------ */
/* Workers                                                             */

enum { BUSY, BLOCKER, ATTACHER };

typedef struct worker {
    pthread_t th;
    int kind;
    _Atomic long iters;         /* advanced only while attached and running */
    _Atomic long blocked_iters; /* advanced inside blocking sections */
} worker;

static _Atomic int quit;
static _Atomic(frt_object *) xslot; /* objects change hands (and owners) here */

static void exchange(frt_object *o)
{
    frt_object *old = atomic_exchange(&xslot, o);
    if (old)
        frt_decref(old); /* usually someone else's: queued to its owner */
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    if (w->kind != ATTACHER)
        CHECK_EQ(frt_thread_attach(), 0);
    for (long i = 0; !atomic_load_explicit(&quit, memory_order_relaxed); i++) {
        switch (w->kind) {
        case BUSY:
            atomic_fetch_add_explicit(&w->iters, 1, memory_order_relaxed);
            if ((i & 31) == 0) {
                frt_object *o = new_obj(); /* frt_new is a safepoint too */
                if ((i & 127) == 0)
                    exchange(o);
                else
                    frt_decref(o);
            }
            frt_safepoint();
            break;
        case BLOCKER:
            frt_blocking_begin();
            atomic_fetch_add_explicit(&w->blocked_iters, 1, memory_order_relaxed);
            if (i & 1)
                sched_yield(); /* stands for a system call */
            frt_blocking_end();
            atomic_fetch_add_explicit(&w->iters, 1, memory_order_relaxed);
            if ((i & 15) == 0)
                exchange(new_obj());
            if (i & 2)
                frt_safepoint();
            break;
        case ATTACHER:
            CHECK_EQ(frt_thread_attach(), 0);
            atomic_fetch_add_explicit(&w->iters, 1, memory_order_relaxed);
            if (i & 1)
                exchange(new_obj());
            else
                frt_decref(new_obj());
            frt_safepoint();
            frt_thread_detach();
            break;
        }
    }
    if (w->kind != ATTACHER)
        frt_thread_detach();
    return NULL;
}

static worker *start_workers(int n, const int *kinds, int nkinds)
{
    worker *ws = calloc((size_t)n, sizeof *ws);
    CHECK(ws);
    atomic_store(&quit, 0);
    for (int i = 0; i < n; i++) {
        ws[i].kind = kinds[i % nkinds];
        CHECK_EQ(pthread_create(&ws[i].th, NULL, worker_main, &ws[i]), 0);
    }
    return ws;
}

static void stop_workers(worker *ws, int n)
{
    atomic_store(&quit, 1);
    /* We are attached; nobody else stops the world here, but stay polite. */
    frt_blocking_begin();
    for (int i = 0; i < n; i++)
        CHECK_EQ(pthread_join(ws[i].th, NULL), 0);
    frt_blocking_end();
    frt_object *last = atomic_exchange(&xslot, NULL);
    if (last)
        frt_decref(last);
    frt_safepoint();
    free(ws);
}

/* Until every busy worker has moved past seen[i], at most 60 s. */
static void wait_all_moved(worker *ws, int n, const long *seen)
{
    uint64_t deadline = test_now_ns() + 60ull * 1000000000u;
    for (;;) {
        int left = 0;
        for (int i = 0; i < n; i++)
            left += ws[i].kind == BUSY && atomic_load(&ws[i].iters) <= seen[i];
        if (!left)
            return;
        if (test_now_ns() > deadline) {
            fprintf(stderr, "test_stw: timed out waiting for %d busy workers after restart\n", left);
            exit(1);
        }
        frt_safepoint();
        test_sleep_us(200);
    }
}

/* Sample, wait, sample: nothing attached may have moved. */
static void check_frozen(worker *ws, int n, long sleep, const char *where)
{
    long a[64];
    CHECK(n <= 64);
    for (int i = 0; i < n; i++)
        a[i] = atomic_load(&ws[i].iters);
    test_sleep_us(sleep);
    for (int i = 0; i < n; i++) {
        long b = atomic_load(&ws[i].iters);
        if (a[i] != b) {
            fprintf(stderr, "test_stw: %s: worker %d (kind %d) ran while the world was stopped: %ld -> %ld\n",
                    where, i, ws[i].kind, a[i], b);
            exit(1);
        }
    }
}

/* ------------------------------------------------------------------ */
/* 1. N workers (busy, blocking, attaching/detaching), repeated stops.  */

static void test_frozen(int n, long stops)
{
    CHECK_EQ(frt_init(NULL), 0);
    atomic_store(&created, 0);
    atomic_store(&destroyed, 0);
    static const int mix2[] = {BUSY, BLOCKER};
    static const int mixn[] = {BUSY, BLOCKER, BUSY, ATTACHER};
    worker *ws = n == 2 ? start_workers(n, mix2, 2) : start_workers(n, mixn, 4);
    frt_stw_stats st0, st1;
    frt_stw_get_stats(&st0);
    uint64_t t0 = test_now_ns();
    long blocked_moved = 0;
    for (long s = 0; s < stops; s++) {
        long bl[64];
        for (int i = 0; i < n; i++)
            bl[i] = atomic_load(&ws[i].blocked_iters);
        CHECK_EQ(frt_stop_the_world(), 0);
        check_all_parked("frozen");
        check_frozen(ws, n, (s & 7) == 0 ? 2000 : 200, "frozen");
        for (int i = 0; i < n; i++)
            if (ws[i].kind == BLOCKER && atomic_load(&ws[i].blocked_iters) != bl[i])
                blocked_moved++;
        frt_start_the_world();
        /* The restart really restarted them: each busy worker moves again
         * before the next stop. One pass over all of them at a time: with 64
         * threads on 2 CPUs each needs a scheduler slice, and waiting for
         * them one by one would cost a slice per worker. */
        long seen[64];
        for (int i = 0; i < n; i++)
            seen[i] = atomic_load(&ws[i].iters);
        wait_all_moved(ws, n, seen);
    }
    frt_stw_get_stats(&st1);
    CHECK_EQ(st1.stops - st0.stops, stops);
    stop_workers(ws, n);
    CHECK_EQ(atomic_load(&destroyed), atomic_load(&created));
    fprintf(stderr, "test_stw: %d threads, %ld stops: %.2f s (pause max %.1f us; a blocked thread "
                    "moved during %ld stop(s))\n",
            n, stops, (double)(test_now_ns() - t0) / 1e9, (double)st1.pause_ns_max / 1e3, blocked_moved);
    CHECK_EQ(frt_shutdown(), 0);
}

/* ------------------------------------------------------------------ */
/* 2. A thread in a long blocking section is not waited for; when it
 *    leaves the section during the stop, blocking_end waits for restart. */

static _Atomic long b_in, b_go, b_woke, b_back, b_depth2;
static pthread_mutex_t b_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t b_cv = PTHREAD_COND_INITIALIZER;

static void *long_blocker(void *arg)
{
    int nested = (int)(intptr_t)arg;
    CHECK_EQ(frt_thread_attach(), 0);
    frt_blocking_begin();
    if (nested)
        frt_blocking_begin();
    pthread_mutex_lock(&b_mu);
    atomic_store(&b_in, 1);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 60;
    while (!atomic_load(&b_go))
        CHECK(pthread_cond_timedwait(&b_cv, &b_mu, &until) == 0);
    pthread_mutex_unlock(&b_mu);
    atomic_store(&b_woke, 1);
    if (nested) {
        frt_blocking_end(); /* inner: still blocked, returns at once */
        atomic_store(&b_depth2, 1);
    }
    frt_blocking_end();
    atomic_store(&b_back, 1);
    frt_decref(new_obj());
    frt_thread_detach();
    return NULL;
}

static void *attach_once(void *arg)
{
    (void)arg;
    CHECK_EQ(frt_thread_attach(), 0);
    atomic_store(&b_back, 1);
    frt_thread_detach();
    return NULL;
}

static void test_blocking_during_stop(void)
{
    CHECK_EQ(frt_init(NULL), 0);
    for (int nested = 0; nested < 2; nested++) {
        atomic_store(&b_in, 0);
        atomic_store(&b_go, 0);
        atomic_store(&b_woke, 0);
        atomic_store(&b_back, 0);
        atomic_store(&b_depth2, 0);
        pthread_t t;
        CHECK_EQ(pthread_create(&t, NULL, long_blocker, (void *)(intptr_t)nested), 0);
        test_wait_at_least(&b_in, 1, 1, "blocker in its section");
        phase = "a stop waited for a thread in a blocking section";
        CHECK_EQ(frt_stop_the_world(), 0);
        phase = "blocking";
        check_all_parked("blocking");
        pthread_mutex_lock(&b_mu);
        atomic_store(&b_go, 1);
        pthread_cond_signal(&b_cv);
        pthread_mutex_unlock(&b_mu);
        test_wait_at_least(&b_woke, 1, 0, "blocker woken");
        if (nested)
            test_wait_at_least(&b_depth2, 1, 0, "inner blocking_end");
        test_sleep_us(20000);
        CHECK_EQ(atomic_load(&b_back), 0); /* blocking_end waits for the restart */
        check_all_parked("blocking_end waiting");
        frt_start_the_world();
        test_wait_at_least(&b_back, 1, 1, "blocking_end after restart");
        frt_blocking_begin();
        CHECK_EQ(pthread_join(t, NULL), 0);
        frt_blocking_end();
    }

    /* A thread that attaches during a stop waits for the restart. */
    atomic_store(&b_back, 0);
    CHECK_EQ(frt_stop_the_world(), 0);
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, attach_once, NULL), 0);
    test_sleep_us(20000);
    CHECK_EQ(atomic_load(&b_back), 0);
    frt_start_the_world();
    test_wait_at_least(&b_back, 1, 1, "attach after restart");
    CHECK_EQ(pthread_join(t, NULL), 0);
    frt_safepoint();
    CHECK_EQ(atomic_load(&destroyed), atomic_load(&created));
    CHECK_EQ(frt_shutdown(), 0);
}

/* ------------------------------------------------------------------ */
/* 3. Several threads ask for a stop at the same moment, again and again:
 *    the stops are serialised, nobody deadlocks, and each stopper sees
 *    every other thread (the other stoppers included) parked.           */

#define C_STOPPERS 3
#define C_WORKERS 2
static _Atomic int in_stop;
static _Atomic long c_iters[C_STOPPERS];
static _Atomic long c_ready;
static worker *c_ws;

static void *stopper(void *arg)
{
    int me = (int)(intptr_t)arg;
    long rounds = SCALED(3000L);
    CHECK_EQ(frt_thread_attach(), 0);
    atomic_fetch_add(&c_ready, 1);
    test_wait_at_least(&c_ready, C_STOPPERS, 1, "stoppers ready");
    for (long r = 0; r < rounds; r++) {
        CHECK_EQ(frt_stop_the_world(), 0);
        CHECK_EQ(atomic_exchange(&in_stop, me + 1), 0); /* serialised */
        check_all_parked("concurrent stops");
        long a[C_STOPPERS];
        for (int i = 0; i < C_STOPPERS; i++)
            a[i] = atomic_load(&c_iters[i]);
        int nested = (r & 7) == 0;
        if (nested) {
            CHECK_EQ(frt_stop_the_world(), 0);
            frt_start_the_world(); /* the inner one: still stopped */
        }
        check_frozen(c_ws, C_WORKERS, (r & 63) == 0 ? 1000 : 20, "concurrent stops");
        for (int i = 0; i < C_STOPPERS; i++)
            if (i != me && atomic_load(&c_iters[i]) != a[i]) {
                fprintf(stderr, "test_stw: stopper %d ran during stopper %d's stop\n", i, me);
                exit(1);
            }
        CHECK_EQ(atomic_exchange(&in_stop, 0), me + 1);
        frt_start_the_world();
        atomic_fetch_add(&c_iters[me], 1);
        if (r & 1)
            frt_safepoint();
        if ((r & 15) == 0)
            frt_decref(new_obj());
    }
    frt_thread_detach();
    return NULL;
}

static void test_concurrent_stoppers(void)
{
    CHECK_EQ(frt_init(NULL), 0);
    atomic_store(&created, 0);
    atomic_store(&destroyed, 0);
    atomic_store(&c_ready, 0);
    atomic_store(&in_stop, 0);
    for (int i = 0; i < C_STOPPERS; i++)
        atomic_store(&c_iters[i], 0);
    static const int kinds[] = {BUSY, BLOCKER};
    c_ws = start_workers(C_WORKERS, kinds, 2);
    frt_stw_stats st0, st1;
    frt_stw_get_stats(&st0);
    uint64_t t0 = test_now_ns();
    pthread_t t[C_STOPPERS];
    for (int i = 0; i < C_STOPPERS; i++)
        CHECK_EQ(pthread_create(&t[i], NULL, stopper, (void *)(intptr_t)i), 0);
    phase = "concurrent stoppers";
    frt_blocking_begin(); /* the stoppers must not wait for us */
    for (int i = 0; i < C_STOPPERS; i++)
        CHECK_EQ(pthread_join(t[i], NULL), 0);
    frt_blocking_end();
    phase = "concurrent stoppers done";
    frt_stw_get_stats(&st1);
    CHECK_EQ(st1.stops - st0.stops, C_STOPPERS * SCALED(3000L)); /* nested ones not counted */
    for (int i = 0; i < C_WORKERS; i++)
        CHECK(atomic_load(&c_ws[i].iters) > 0);
    stop_workers(c_ws, C_WORKERS);
    CHECK_EQ(atomic_load(&destroyed), atomic_load(&created));
    fprintf(stderr, "test_stw: %d concurrent stoppers, %ld stops: %.2f s\n", C_STOPPERS,
            (long)(st1.stops - st0.stops), (double)(test_now_ns() - t0) / 1e9);
    CHECK_EQ(frt_shutdown(), 0);
}

/* ------------------------------------------------------------------ */
/* 4. Nested stops by one thread, and the statistics.                   */

static void test_nested_and_stats(void)
{
    CHECK_EQ(frt_init(NULL), 0);
    frt_stw_stats st;
    frt_stw_get_stats(&st);
    CHECK_EQ(st.stops, 0);
    CHECK_EQ(st.pause_ns_total, 0);
    CHECK_EQ(st.pause_ns_max, 0);

    /* Alone: a stop still counts and is timed. */
    CHECK_EQ(frt_stop_the_world(), 0);
    frt_start_the_world();
    frt_stw_get_stats(&st);
    CHECK_EQ(st.stops, 1);
    CHECK(st.pause_ns_total > 0);

    static const int kinds[] = {BUSY, BLOCKER};
    worker *ws = start_workers(2, kinds, 2);
    test_wait_at_least(&ws[0].iters, 100, 1, "busy worker");
    CHECK_EQ(frt_stop_the_world(), 0);
    CHECK_EQ(frt_stop_the_world(), 0);
    CHECK_EQ(frt_stop_the_world(), 0);
    check_frozen(ws, 2, 1000, "depth 3");
    frt_start_the_world();
    frt_start_the_world();
    check_all_parked("depth 1");
    check_frozen(ws, 2, 3000, "depth 1 after two restarts");
    frt_start_the_world();
    long seen = atomic_load(&ws[0].iters);
    test_wait_at_least(&ws[0].iters, seen + 100, 1, "busy worker after the outer restart");

    frt_stw_get_stats(&st);
    CHECK_EQ(st.stops, 2); /* the nested requests are one stop */
    /* That stop lasted at least the 4 ms we slept in it. */
    CHECK(st.last_pause_ns >= 4000000u);
    CHECK(st.pause_ns_max >= st.last_pause_ns);
    CHECK(st.pause_ns_total >= st.pause_ns_max);
    CHECK(st.pause_ns_total > st.last_pause_ns); /* the first stop counted too */
    CHECK(st.last_time_to_stop_ns <= st.last_pause_ns);

    /* A run of short stops: counted one by one, each timed. */
    for (int i = 0; i < 100; i++) {
        CHECK_EQ(frt_stop_the_world(), 0);
        frt_start_the_world();
    }
    frt_stw_stats st2;
    frt_stw_get_stats(&st2);
    CHECK_EQ(st2.stops, 102);
    CHECK(st2.pause_ns_total > st.pause_ns_total);
    CHECK(st2.pause_ns_max >= st.pause_ns_max);
    CHECK(st2.last_pause_ns > 0);
    stop_workers(ws, 2);

#if !FRT_DEBUG
    /* Misuse a release build reports with a code (a debug build aborts). */
    frt_blocking_begin();
    CHECK_EQ(frt_stop_the_world(), FRT_ESTATE);
    frt_blocking_end();
    frt_start_the_world(); /* without a stop: ignored */
    frt_stw_get_stats(&st);
    CHECK_EQ(st.stops, 102);
#endif
    CHECK_EQ(frt_shutdown(), 0);
}

/* ------------------------------------------------------------------ */
/* 5. Fairness (gh-151518): back-to-back stops must not starve a thread
 *    that keeps leaving and entering blocking sections, nor one that keeps
 *    attaching and detaching.                                           */

static _Atomic long f_block_iters, f_attach_iters, f_quit;

static void *fair_blocker(void *arg)
{
    (void)arg;
    CHECK_EQ(frt_thread_attach(), 0);
    while (!atomic_load(&f_quit)) {
        frt_blocking_begin();
        frt_blocking_end();
        atomic_fetch_add(&f_block_iters, 1);
    }
    frt_thread_detach();
    return NULL;
}

static void *fair_attacher(void *arg)
{
    (void)arg;
    while (!atomic_load(&f_quit)) {
        CHECK_EQ(frt_thread_attach(), 0);
        atomic_fetch_add(&f_attach_iters, 1);
        frt_thread_detach();
    }
    return NULL;
}

static void test_fairness(void)
{
    CHECK_EQ(frt_init(NULL), 0);
    atomic_store(&f_block_iters, 0);
    atomic_store(&f_attach_iters, 0);
    atomic_store(&f_quit, 0);
    pthread_t b, a;
    CHECK_EQ(pthread_create(&b, NULL, fair_blocker, NULL), 0);
    CHECK_EQ(pthread_create(&a, NULL, fair_attacher, NULL), 0);
    test_wait_at_least(&f_block_iters, 1, 1, "blocker started");
    test_wait_at_least(&f_attach_iters, 1, 1, "attacher started");

    /* Back to back: no pause between a restart and the next request. */
    const long want = 200;
    const uint64_t window = 5ull * 1000000000u;
    long b0 = atomic_load(&f_block_iters), a0 = atomic_load(&f_attach_iters);
    long stops = 0;
    uint64_t t0 = test_now_ns();
    phase = "fairness";
    while (test_now_ns() - t0 < window) {
        CHECK_EQ(frt_stop_the_world(), 0);
        frt_start_the_world();
        stops++;
        if (atomic_load(&f_block_iters) - b0 >= want && atomic_load(&f_attach_iters) - a0 >= want &&
            stops >= 4 * want)
            break;
    }
    double secs = (double)(test_now_ns() - t0) / 1e9;
    long db = atomic_load(&f_block_iters) - b0, da = atomic_load(&f_attach_iters) - a0;
    fprintf(stderr, "test_stw: fairness: %ld back-to-back stops in %.2f s; blocking_begin/end "
                    "loop %ld iterations, attach/detach loop %ld\n",
            stops, secs, db, da);
    atomic_store(&f_quit, 1);
    frt_blocking_begin();
    CHECK_EQ(pthread_join(b, NULL), 0);
    CHECK_EQ(pthread_join(a, NULL), 0);
    frt_blocking_end();
    if (db < want || da < want) {
        fprintf(stderr, "test_stw: fairness: starved under back-to-back stops (wanted %ld each "
                        "within %.0f s)\n",
                want, (double)window / 1e9);
        exit(1);
    }
    CHECK_EQ(frt_shutdown(), 0);
}

int main(void)
{
    signal(SIGALRM, on_alarm);
    alarm(240);
    uint64_t t0 = test_now_ns();
    phase = "nested and stats";
    test_nested_and_stats();
    phase = "2 threads";
    test_frozen(2, SCALED(400L));
    phase = "8 threads";
    test_frozen(8, SCALED(200L));
    phase = "64 threads";
    test_frozen(64, SCALED(20L) < 4 ? 4 : SCALED(20L));
    phase = "blocking during a stop";
    test_blocking_during_stop();
    test_concurrent_stoppers();
    test_fairness();
    fprintf(stderr, "test_stw: %.2f s\n", (double)(test_now_ns() - t0) / 1e9);
    TEST_PASS("test_stw");
    return 0;
}
