/* The knobs of the gc module: thresholds and automatic runs (observed
 * through callbacks), enable/disable, callbacks and their removal, stats,
 * get_count, and a run that is pending when a blocking section begins.
 * Debug flags and the garbage list: test_gc_debug.c.
 *
 * Automatic runs are counted exactly: a run starts at the first safepoint
 * after the tracked-allocation count passes t0 (frt_new polls before it
 * allocates), so each phase below allocates one object at a time and checks
 * the callback log after each. */
#define _GNU_SOURCE
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

/* Objects kept alive to drive the allocation count. */
#define MAX_KEEP 20000
static node *keep[MAX_KEEP];
static long nkeep;

static void keep_one(void)
{
    CHECK(nkeep < MAX_KEEP);
    keep[nkeep++] = make();
}

static void drop_kept(void)
{
    for (long i = 0; i < nkeep; i++)
        frt_decref(&keep[i]->ob);
    nkeep = 0;
}

/* ctx of the recorder, which logs it with each event. */
static int tag_a = 1, tag_b = 2;

/* Called at START; removes itself. */
static int self_removed;
static void self_remover(int phase, const frt_gc_info *info, void *ctx)
{
    (void)info;
    if (phase == FRT_GC_START) {
        self_removed++;
        CHECK_EQ(frt_gc_callback_remove(self_remover, ctx), 0);
    }
}

/* Collections recorded (STOP events of the recorder with tag_a). */
static int runs(void)
{
    int n = 0;
    for (int i = 0; i < nevents; i++)
        n += events[i].phase == FRT_GC_STOP && events[i].tag == tag_a;
    return n;
}

static void setup(int enabled)
{
    gc_setup(enabled);
    nevents = 0;
    nkeep = 0;
}

static void teardown(void)
{
    drop_kept();
    gc_teardown();
}

/* Allocate (and keep) until one more automatic run happened; returns the
 * number of allocations it took. Fails if it takes more than limit. */
static long alloc_until_run(long limit)
{
    int before = runs();
    for (long i = 1; i <= limit; i++) {
        keep_one();
        if (runs() != before) {
            CHECK_EQ(runs(), before + 1);
            return i;
        }
    }
    fprintf(stderr, "test_gc_control: no automatic run in %ld allocations\n", limit);
    exit(1);
}

/* ------------------------------------------------------------------ */
/* 1. Thresholds and the generation schedule of automatic runs.       */

static void test_thresholds(void)
{
    setup(1);
    size_t t[3], c[3];
    frt_gc_get_threshold(t);
    CHECK_EQ(t[0], 700);
    CHECK_EQ(t[1], 10);
    CHECK_EQ(t[2], 10);
    CHECK_EQ(frt_gc_set_threshold(100, 2, 1), 0);
    frt_gc_get_threshold(t);
    CHECK_EQ(t[0], 100);
    CHECK_EQ(t[1], 2);
    CHECK_EQ(t[2], 1);
    CHECK_EQ(frt_gc_callback_add(recorder, &tag_a), 0);

    /* t0 allocations do not exceed t0. */
    for (int i = 0; i < 100; i++)
        keep_one();
    frt_gc_get_count(c);
    CHECK_EQ(c[0], 100);
    CHECK_EQ(c[1], 0);
    CHECK_EQ(c[2], 0);
    CHECK_EQ(nevents, 0);

    /* Some garbage for the first run to find. */
    long first = atomic_load(&next_id);
    garbage_ring(10);
    garbage_ring(5);
    alloc_until_run(100);
    CHECK_EQ(nevents, 2);
    CHECK_EQ(events[0].phase, FRT_GC_START);
    CHECK_EQ(events[0].gen, 0);
    CHECK_EQ(events[1].phase, FRT_GC_STOP);
    CHECK_EQ(events[1].gen, 0);
    CHECK_EQ(events[1].collected, 15);
    CHECK_EQ(events[1].uncollectable, 0);
    check_destroyed(first, 15, 15);
    /* The run happened at the poll of frt_new, before its allocation. */
    frt_gc_get_count(c);
    CHECK_EQ(c[0], 1);
    CHECK_EQ(c[1], 1);
    CHECK_EQ(c[2], 0);

    /* CPython's schedule: generation 1 after more than t1 runs of 0,
     * generation 2 after more than t2 runs of 1 (the long-lived guard is
     * met: nothing was long-lived before the first full run, and each
     * later full run sees more than a quarter of new survivors). */
    static const int want[] = {0, 0, 1, 0, 0, 0, 1, 2, 0, 0, 0, 1, 0, 0, 0, 1, 2};
    for (unsigned k = 0; k < sizeof want / sizeof want[0]; k++) {
        alloc_until_run(200);
        const event *e = last_stop();
        if (e->gen != want[k]) {
            fprintf(stderr, "test_gc_control: automatic run %u was generation %d, want %d\n", k + 2,
                    e->gen, want[k]);
            exit(1);
        }
        CHECK_EQ(e->collected, 0);
        CHECK_EQ(events[nevents - 2].phase, FRT_GC_START);
        CHECK_EQ(events[nevents - 2].gen, want[k]);
    }
    frt_gc_get_count(c);
    CHECK_EQ(c[1], 0);
    CHECK_EQ(c[2], 0);

    /* Frees lower the count; it never goes below zero. */
    CHECK_EQ(frt_gc_set_threshold(0, 2, 1), 0);
    CHECK_EQ(frt_gc_collect(0), 0);
    frt_gc_get_count(c);
    CHECK_EQ(c[0], 0);
    node *tmp[10];
    for (int i = 0; i < 10; i++)
        tmp[i] = make();
    for (int i = 0; i < 4; i++)
        frt_decref(&tmp[i]->ob);
    frt_gc_get_count(c);
    CHECK_EQ(c[0], 6);
    for (int i = 4; i < 10; i++)
        frt_decref(&tmp[i]->ob);
    frt_gc_get_count(c);
    CHECK_EQ(c[0], 0);
    for (int i = 0; i < 100; i++) /* old objects die: still 0 */
        frt_decref(&keep[--nkeep]->ob);
    frt_gc_get_count(c);
    CHECK_EQ(c[0], 0);

    /* t0 == 0: no automatic runs, however much is allocated; the count
     * goes on. */
    int before = nevents;
    for (int i = 0; i < 1000; i++)
        keep_one();
    CHECK_EQ(nevents, before);
    frt_gc_get_count(c);
    CHECK_EQ(c[0], 1000);
    /* Back on: the count is far over, so one run comes soon, and then the
     * next needs t0 more. */
    CHECK_EQ(frt_gc_set_threshold(100, 1000, 1000), 0);
    for (int i = 0; i < 100; i++)
        keep_one();
    CHECK_EQ(runs() - before / 2, 1);
    CHECK_EQ(last_stop()->gen, 0);
    teardown();
}

/* The long-lived guard: a full run waits until the survivors of
 * generation-1 runs since the last full run exceed a quarter of what that
 * full run kept. Explicit runs move the same counters. */
static void test_long_lived_guard(void)
{
    setup(1);
    CHECK_EQ(frt_gc_set_threshold(0, 1000, 0), 0);
    CHECK_EQ(frt_gc_callback_add(recorder, &tag_a), 0);
    for (int i = 0; i < 4000; i++)
        keep_one();
    CHECK_EQ(frt_gc_collect(2), 0); /* 4000 long-lived */
    for (int i = 0; i < 500; i++)
        keep_one();
    CHECK_EQ(frt_gc_collect(1), 0); /* 500 pending, one gen-1 run */
    size_t c[3];
    frt_gc_get_count(c);
    CHECK_EQ(c[1], 0);
    CHECK_EQ(c[2], 1);
    /* count[2] > t2, but 500 < 4000 / 4: the automatic run is young. */
    CHECK_EQ(frt_gc_set_threshold(100, 1000, 0), 0);
    alloc_until_run(200);
    CHECK_EQ(last_stop()->gen, 0);
    /* 600 more survivors of a gen-1 run: 1100 pending, over the quarter. */
    CHECK_EQ(frt_gc_set_threshold(0, 1000, 0), 0);
    for (int i = 0; i < 600; i++)
        keep_one();
    CHECK_EQ(frt_gc_collect(1), 0);
    CHECK_EQ(frt_gc_set_threshold(100, 1000, 0), 0);
    alloc_until_run(200);
    CHECK_EQ(last_stop()->gen, 2);
    teardown();
}

/* ------------------------------------------------------------------ */
/* 2. enable/disable, callbacks, stats.                               */

static void test_enable_callbacks_stats(void)
{
    setup(1);
    CHECK_EQ(frt_gc_isenabled(), 1);
    CHECK_EQ(frt_gc_set_threshold(100, 1000, 1000), 0);
    CHECK_EQ(frt_gc_callback_add(recorder, &tag_a), 0);
    frt_gc_disable();
    CHECK_EQ(frt_gc_isenabled(), 0);
    for (int i = 0; i < 1000; i++)
        keep_one();
    CHECK_EQ(nevents, 0);
    /* Explicit collections still run while disabled. */
    garbage_ring(3);
    CHECK_EQ(frt_gc_collect(0), 3);
    CHECK_EQ(nevents, 2);
    CHECK_EQ(last_stop()->gen, 0);
    CHECK_EQ(last_stop()->collected, 3);
    frt_gc_enable();
    CHECK_EQ(frt_gc_isenabled(), 1);
    for (int i = 0; i < 150; i++)
        keep_one();
    CHECK_EQ(runs(), 2);

    /* Two callbacks: each phase calls them in the order they were added. */
    CHECK_EQ(frt_gc_set_threshold(0, 1000, 1000), 0);
    CHECK_EQ(frt_gc_callback_add(recorder, &tag_b), 0);
    nevents = 0;
    garbage_ring(4);
    CHECK_EQ(frt_gc_collect(1), 4);
    CHECK_EQ(nevents, 4);
    CHECK_EQ(events[0].phase, FRT_GC_START);
    CHECK_EQ(events[0].tag, tag_a);
    CHECK_EQ(events[1].phase, FRT_GC_START);
    CHECK_EQ(events[1].tag, tag_b);
    CHECK_EQ(events[2].phase, FRT_GC_STOP);
    CHECK_EQ(events[2].tag, tag_a);
    CHECK_EQ(events[3].phase, FRT_GC_STOP);
    CHECK_EQ(events[3].tag, tag_b);
    for (int i = 0; i < 4; i++)
        CHECK_EQ(events[i].gen, 1);
    CHECK_EQ(events[2].collected, 4);
    CHECK_EQ(events[3].collected, 4);

    /* Removed callbacks are not called again; removing twice fails. */
    CHECK_EQ(frt_gc_callback_remove(recorder, &tag_b), 0);
    CHECK_EQ(frt_gc_callback_remove(recorder, &tag_b), FRT_EINVAL);
    CHECK_EQ(frt_gc_callback_add(NULL, &tag_b), FRT_EINVAL);
    nevents = 0;
    CHECK_EQ(frt_gc_collect(2), 0);
    CHECK_EQ(nevents, 2);
    CHECK_EQ(events[0].tag, tag_a);
    CHECK_EQ(events[1].tag, tag_a);

    /* The same callback twice is called twice; one remove takes one. A
     * callback that removes itself is not called again. */
    CHECK_EQ(frt_gc_callback_add(recorder, &tag_b), 0);
    CHECK_EQ(frt_gc_callback_add(recorder, &tag_b), 0);
    nevents = 0;
    CHECK_EQ(frt_gc_collect(0), 0);
    CHECK_EQ(nevents, 6);
    CHECK_EQ(frt_gc_callback_remove(recorder, &tag_b), 0);
    nevents = 0;
    CHECK_EQ(frt_gc_collect(0), 0);
    CHECK_EQ(nevents, 4);
    CHECK_EQ(frt_gc_callback_remove(recorder, &tag_b), 0);
    CHECK_EQ(frt_gc_callback_add(self_remover, &tag_b), 0);
    self_removed = 0;
    nevents = 0;
    CHECK_EQ(frt_gc_collect(0), 0);
    CHECK_EQ(self_removed, 1);
    CHECK_EQ(frt_gc_collect(0), 0);
    CHECK_EQ(self_removed, 1);
    CHECK_EQ(nevents, 4);
    CHECK_EQ(frt_gc_callback_remove(self_remover, &tag_b), FRT_EINVAL);

    /* More callbacks than fit the collector's local copy. */
    static int tags[20];
    for (int i = 0; i < 20; i++) {
        tags[i] = 100 + i;
        CHECK_EQ(frt_gc_callback_add(recorder, &tags[i]), 0);
    }
    nevents = 0;
    CHECK_EQ(frt_gc_collect(0), 0);
    CHECK_EQ(nevents, 42);
    for (int i = 0; i < 20; i++) {
        CHECK_EQ(events[1 + i].tag, 100 + i); /* in order, after tag_a */
        CHECK_EQ(events[1 + i].phase, FRT_GC_START);
        CHECK_EQ(events[22 + i].tag, 100 + i);
        CHECK_EQ(events[22 + i].phase, FRT_GC_STOP);
    }
    for (int i = 0; i < 20; i++)
        CHECK_EQ(frt_gc_callback_remove(recorder, &tags[i]), 0);

    /* A callback's collect is refused (returns 0, no recursion). */
    collect_in_callback = 1;
    nevents = 0;
    garbage_ring(2);
    CHECK_EQ(frt_gc_collect(2), 2);
    collect_in_callback = 0;
    CHECK_EQ(nevents, 2);
    CHECK_EQ(recursive_collects, 2);
    CHECK_EQ(recursive_nonzero, 0);

    /* Stats per generation: exact deltas, and the pause each STOP reports
     * is what the stats add up. */
    frt_gc_stats s0[3], s1[3];
    frt_gc_get_stats(s0);
    nevents = 0;
    garbage_ring(5);
    CHECK_EQ(frt_gc_collect(0), 5);
    CHECK_EQ(frt_gc_collect(0), 0);
    garbage_ring(7);
    garbage_ring(1);
    CHECK_EQ(frt_gc_collect(1), 8);
    garbage_ring(11);
    CHECK_EQ(frt_gc_collect(2), 11);
    frt_gc_get_stats(s1);
    CHECK_EQ(s1[0].collections - s0[0].collections, 2);
    CHECK_EQ(s1[1].collections - s0[1].collections, 1);
    CHECK_EQ(s1[2].collections - s0[2].collections, 1);
    CHECK_EQ(s1[0].collected - s0[0].collected, 5);
    CHECK_EQ(s1[1].collected - s0[1].collected, 8);
    CHECK_EQ(s1[2].collected - s0[2].collected, 11);
    for (int g = 0; g < 3; g++)
        CHECK_EQ(s1[g].uncollectable - s0[g].uncollectable, 0);
    CHECK_EQ(nevents, 8);
    uint64_t pause[3] = {0, 0, 0};
    for (int i = 0; i < nevents; i++)
        if (events[i].phase == FRT_GC_STOP)
            pause[events[i].gen] += events[i].pause_ns;
    for (int g = 0; g < 3; g++) {
        CHECK_EQ(s1[g].pause_ns_total - s0[g].pause_ns_total, pause[g]);
        CHECK(s1[g].pause_ns_max >= s0[g].pause_ns_max);
        CHECK(s1[g].pause_ns_max <= s1[g].pause_ns_total);
    }
    CHECK_EQ(frt_gc_callback_remove(recorder, &tag_a), 0);
    teardown();
}

/* ------------------------------------------------------------------ */
/* 3. A run pending when the thread enters a blocking section: the     */
/*    poll in frt_blocking_begin must not collect without a stop.      */

static void test_pending_run_and_blocking(void)
{
    setup(1);
    CHECK_EQ(frt_gc_set_threshold(100, 1000, 1000), 0);
    CHECK_EQ(frt_gc_callback_add(recorder, &tag_a), 0);
    frt_stw_stats w0, w1;
    frt_stw_get_stats(&w0);
    /* Every allocation is followed by a blocking section, so a request
     * raised by an allocation meets frt_blocking_begin's poll first. */
    for (int i = 0; i < 500; i++) {
        keep_one();
        frt_blocking_begin();
        frt_blocking_end();
    }
    frt_stw_get_stats(&w1);
    /* Each run of a heap without finalizers stops the world exactly once. */
    CHECK_EQ(w1.stops - w0.stops, (uint64_t)runs());
    /* Plain allocation picks a postponed request up at once. */
    int before = runs();
    size_t c[3];
    frt_gc_get_count(c);
    if (c[0] > 100) {
        for (int i = 0; i < 99; i++)
            keep_one();
        CHECK_EQ(runs(), before + 1);
    }
    frt_stw_get_stats(&w1);
    CHECK_EQ(w1.stops - w0.stops, (uint64_t)runs());
    CHECK_EQ(atomic_load(&bad_destroys), 0);
    teardown();
}

int main(void)
{
    test_watchdog("test_gc_control", 240);
    uint64_t t0 = test_now_ns();
    test_thresholds();
    test_long_lived_guard();
    test_enable_callbacks_stats();
    test_pending_run_and_blocking();
    fprintf(stderr, "test_gc_control: %.2f s\n", (double)(test_now_ns() - t0) / 1e9);
    TEST_PASS("test_gc_control");
    return 0;
}
