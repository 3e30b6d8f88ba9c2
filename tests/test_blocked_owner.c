/* gh-157838: objects queued to an owner that sits in a blocking section
 * must not wait for it to come back. The thread that queues an object to a
 * BLOCKED owner merges the owner's queue for it, so the last drop by a
 * non-owner frees the object while the owner is still blocked; the owner's
 * blocking_end then waits for such helpers, and its counts stay exact.
 *
 * The owner checks "freed while blocked" itself, from inside its blocking
 * section, by reading the destroy counter (no frt call in there). */
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
#define TOBJ_MAX_IDS (1L << 20)
#include "tobj.h"

/* ------------------------------------------------------------------ */
/* 1. One long blocking section (a condition variable wait), many drops. */

#define B_DROPPERS 3
static long b_n;
static tobj **b_objs;             /* 2 * b_n: the first half handed over whole */
static _Atomic long b_blocked, b_dropped, b_released;
static pthread_mutex_t b_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t b_cv = PTHREAD_COND_INITIALIZER;

static void *long_blocked_owner(void *arg)
{
    (void)arg;
    CHECK_EQ(frt_thread_attach(), 0);
    for (long i = 0; i < 2 * b_n; i++) {
        b_objs[i] = make();
        if (i >= b_n)
            frt_incref(&b_objs[i]->ob); /* one for us, one for the droppers */
    }
    frt_blocking_begin();
    pthread_mutex_lock(&b_mu);
    atomic_store(&b_blocked, 1);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 60;
    while (!atomic_load(&b_released))
        CHECK(pthread_cond_timedwait(&b_cv, &b_mu, &until) == 0);
    pthread_mutex_unlock(&b_mu);
    /* Still blocked: what the droppers dropped is gone already. */
    CHECK_EQ(atomic_load(&destroyed), b_n);
    frt_blocking_end();

    /* Ours: merged for us while we slept, one reference left each. */
    for (long i = b_n; i < 2 * b_n; i++) {
        tobj *o = b_objs[i];
        CHECK_EQ(o->magic, TOBJ_MAGIC);
        CHECK_EQ(frt_refcount(&o->ob), 1);
        frt_incref(&o->ob);
        CHECK_EQ(frt_refcount(&o->ob), 2);
        frt_decref(&o->ob);
    }
    frt_safepoint();
    CHECK_EQ(atomic_load(&destroyed), b_n);
    for (long i = b_n; i < 2 * b_n; i++)
        frt_decref(&b_objs[i]->ob);
    CHECK_EQ(atomic_load(&destroyed), 2 * b_n);
    /* The thread works as before: a new object of its own, counted locally. */
    tobj *fresh = make();
    CHECK(frt_is_owned(&fresh->ob));
    frt_incref(&fresh->ob);
    frt_decref(&fresh->ob);
    frt_decref(&fresh->ob);
    CHECK_EQ(atomic_load(&destroyed), 2 * b_n + 1);
    frt_thread_detach();
    return NULL;
}

static void *long_dropper(void *arg)
{
    int d = (int)(intptr_t)arg;
    CHECK_EQ(frt_thread_attach(), 0);
    test_wait_at_least(&b_blocked, 1, 1, "owner blocked");
    for (long i = d; i < 2 * b_n; i += B_DROPPERS) {
        frt_incref(&b_objs[i]->ob);
        frt_decref(&b_objs[i]->ob);
        frt_decref(&b_objs[i]->ob);
    }
    atomic_fetch_add(&b_dropped, 1);
    frt_thread_detach();
    return NULL;
}

static void test_long_block(void)
{
    CHECK_EQ(frt_init(NULL), 0);
    reset_counts();
    atomic_store(&b_blocked, 0);
    atomic_store(&b_dropped, 0);
    atomic_store(&b_released, 0);
    b_n = SCALED(100000L);
    b_objs = calloc((size_t)(2 * b_n), sizeof *b_objs);
    CHECK(b_objs);

    pthread_t owner = test_spawn(long_blocked_owner, NULL);
    pthread_t d[B_DROPPERS];
    for (int i = 0; i < B_DROPPERS; i++)
        d[i] = test_spawn(long_dropper, (void *)(intptr_t)i);
    for (int i = 0; i < B_DROPPERS; i++)
        CHECK_EQ(pthread_join(d[i], NULL), 0);
    /* The owner has not moved: every object only the droppers held is freed. */
    CHECK_EQ(atomic_load(&destroyed), b_n);
    CHECK_EQ(atomic_load(&bad_destroys), 0);
    pthread_mutex_lock(&b_mu);
    atomic_store(&b_released, 1);
    pthread_cond_signal(&b_cv);
    pthread_mutex_unlock(&b_mu);
    CHECK_EQ(pthread_join(owner, NULL), 0);
    CHECK_EQ(atomic_load(&destroyed), 2 * b_n + 1);
    CHECK_EQ(atomic_load(&bad_destroys), 0);
    free(b_objs);
    CHECK_EQ(frt_shutdown(), 0);
}

/* ------------------------------------------------------------------ */
/* 2. Rounds: the owner hands a batch over and enters a blocking section
 *    while the drops are already under way (they race its way into the
 *    BLOCKED state), or toggles blocking_begin/end as fast as it can while
 *    they run. With stopper set, another thread stops and restarts the
 *    world all the while, so the owner is also suspended mid-round.     */

#define R_BATCH 64
#define R_DROPPERS 2
static tobj *r_objs[R_BATCH];
static _Atomic long r_round, r_done, r_finish, r_stops;
static _Atomic long r_expected; /* destroys the owner expects by the end of a round */
static int r_stopper_on;

static void *round_owner(void *arg)
{
    long rounds = (long)(intptr_t)arg;
    CHECK_EQ(frt_thread_attach(), 0);
    long expect = 0;
    for (long r = 1; r <= rounds; r++) {
        for (int i = 0; i < R_BATCH; i++) {
            r_objs[i] = make();
            if (i & 1)
                frt_incref(&r_objs[i]->ob); /* keep one: merged for us, still ours to drop */
        }
        atomic_store(&r_round, r);
        long handed_only = R_BATCH / 2;
        if (r & 1) {
            frt_blocking_begin();
            /* Wait inside the section: no frt call, just the counter. */
            for (unsigned i = 0; atomic_load(&r_done) < r * R_DROPPERS; i++)
                test_pause(i);
        } else {
            for (unsigned i = 0; atomic_load(&r_done) < r * R_DROPPERS; i++) {
                frt_blocking_begin();
                if (i & 1)
                    sched_yield();
                frt_blocking_end();
                tobj *o = r_objs[1 + 2 * (i % (R_BATCH / 2))];
                frt_incref(&o->ob);
                frt_decref(&o->ob);
                if (i & 2)
                    frt_safepoint();
            }
            frt_blocking_begin();
        }
        /* Blocked, and every drop of this round is done: nothing of the
         * round that only the droppers held may still be waiting for us.
         * Give a helper that is still merging a moment, never our return. */
        expect += handed_only;
        uint64_t deadline = test_now_ns() + 5ull * 1000000000u;
        while (atomic_load(&destroyed) < expect && test_now_ns() < deadline)
            usleep(100);
        if (atomic_load(&destroyed) != expect) {
            fprintf(stderr,
                    "test_blocked_owner: round %ld (%s%s): %ld of %ld dropped objects freed while "
                    "the owner stays blocked\n",
                    r, (r & 1) ? "blocked" : "toggling", r_stopper_on ? ", with stops" : "",
                    atomic_load(&destroyed), expect);
            exit(1);
        }
        frt_blocking_end();
        for (int i = 1; i < R_BATCH; i += 2) {
            tobj *o = r_objs[i];
            if (frt_refcount(&o->ob) != 1 || o->magic != TOBJ_MAGIC) {
                fprintf(stderr, "test_blocked_owner: round %ld: object %d count %zu\n", r, i,
                        frt_refcount(&o->ob));
                exit(1);
            }
            frt_decref(&o->ob);
        }
        expect += R_BATCH / 2;
        CHECK_EQ(atomic_load(&destroyed), expect);
    }
    atomic_store(&r_expected, expect);
    frt_thread_detach();
    return NULL;
}

static void *round_dropper(void *arg)
{
    int d = (int)(intptr_t)arg;
    long rounds = SCALED(10000L);
    CHECK_EQ(frt_thread_attach(), 0);
    for (long r = 1; r <= rounds; r++) {
        test_wait_at_least(&r_round, r, 1, "round");
        for (int i = d; i < R_BATCH; i += R_DROPPERS) {
            frt_object *o = &r_objs[i]->ob;
            frt_incref(o);
            frt_decref(o);
            frt_decref(o);
        }
        /* A drop made while the owner was still attached waits in our
         * batch until our next safepoint (docs/api.md): send it, which
         * merges it for the owner if it is blocked by now. */
        frt_safepoint();
        atomic_fetch_add(&r_done, 1);
    }
    frt_thread_detach();
    return NULL;
}

static void *round_stopper(void *arg)
{
    (void)arg;
    CHECK_EQ(frt_thread_attach(), 0);
    while (!atomic_load(&r_finish)) {
        CHECK_EQ(frt_stop_the_world(), 0);
        frt_start_the_world();
        atomic_fetch_add(&r_stops, 1);
        if (atomic_load(&r_stops) & 1)
            sched_yield();
    }
    frt_thread_detach();
    return NULL;
}

static void run_rounds(int with_stopper)
{
    CHECK_EQ(frt_init(NULL), 0);
    reset_counts();
    atomic_store(&r_round, 0);
    atomic_store(&r_done, 0);
    atomic_store(&r_finish, 0);
    atomic_store(&r_stops, 0);
    r_stopper_on = with_stopper;
    long rounds = SCALED(10000L);
    uint64_t t0 = test_now_ns();
    pthread_t stopper = 0;
    if (with_stopper)
        stopper = test_spawn(round_stopper, NULL);
    pthread_t d[R_DROPPERS];
    for (int i = 0; i < R_DROPPERS; i++)
        d[i] = test_spawn(round_dropper, (void *)(intptr_t)i);
    pthread_t owner = test_spawn(round_owner, (void *)(intptr_t)rounds);
    /* We stay attached while we join: a stop must not wait for us. */
    frt_blocking_begin();
    CHECK_EQ(pthread_join(owner, NULL), 0);
    for (int i = 0; i < R_DROPPERS; i++)
        CHECK_EQ(pthread_join(d[i], NULL), 0);
    atomic_store(&r_finish, 1);
    if (with_stopper)
        CHECK_EQ(pthread_join(stopper, NULL), 0);
    frt_blocking_end();
    if (with_stopper)
        CHECK(atomic_load(&r_stops) > 0);
    CHECK_EQ(atomic_load(&r_expected), rounds * R_BATCH);
    CHECK_EQ(atomic_load(&destroyed), rounds * R_BATCH);
    CHECK_EQ(atomic_load(&bad_destroys), 0);
    CHECK_EQ(frt_shutdown(), 0);
    fprintf(stderr, "test_blocked_owner: %ld rounds%s: %.2f s\n", rounds,
            with_stopper ? " with stops" : "", (double)(test_now_ns() - t0) / 1e9);
}

int main(void)
{
    test_watchdog("test_blocked_owner", 240);
    test_long_block();
    run_rounds(0);
    run_rounds(1);
    TEST_PASS("test_blocked_owner");
    return 0;
}
