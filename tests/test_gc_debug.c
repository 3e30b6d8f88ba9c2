/* The collector's debug flags and the garbage list: DEBUG_STATS prints one
 * line per collection on stderr, DEBUG_COLLECTABLE one per unreachable
 * object, DEBUG_UNCOLLECTABLE one per object kept by DEBUG_SAVEALL; SAVEALL
 * keeps unreachable objects in the garbage list (count, get with a new
 * reference, NULL past the end, clear), from which they are collected once
 * the list lets go. The tests capture stderr in a temporary file. */
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

/* ctx of the recorder, which logs it with each event. */
static int tag_a = 1;

static void setup(int enabled)
{
    gc_setup(enabled);
    nevents = 0;
}

/* ------------------------------------------------------------------ */
/* 1. Debug flags: STATS, COLLECTABLE and UNCOLLECTABLE lines.        */

static FILE *capture_begin(int *saved)
{
    fflush(stderr);
    FILE *f = tmpfile();
    CHECK(f != NULL);
    *saved = dup(2);
    CHECK(*saved >= 0);
    CHECK(dup2(fileno(f), 2) == 2);
    return f;
}

static void capture_end(FILE *f, int saved, int want_gen[], int *nstats, int *ncollectable)
{
    fflush(stderr);
    CHECK(dup2(saved, 2) == 2);
    close(saved);
    rewind(f);
    char line[1024];
    *nstats = *ncollectable = 0;
    while (fgets(line, sizeof line, f)) {
        int g;
        if (sscanf(line, "gc: generation %d:", &g) == 1) {
            CHECK(*nstats < 8);
            want_gen[*nstats] = g;
            ++*nstats;
        } else if (strncmp(line, "gc: collectable <node ", 22) == 0) {
            ++*ncollectable;
        } else if (strncmp(line, "gc: uncollectable <node ", 24) == 0) {
            ++*ncollectable;
        } else {
            fprintf(stderr, "test_gc_control: unexpected line on stderr: %s", line);
            exit(1);
        }
    }
    fclose(f);
}

static void test_debug_output(void)
{
    setup(0);
    int saved, gens[8], nstats, ncoll;

    frt_gc_set_debug(FRT_GC_DEBUG_STATS);
    CHECK_EQ(frt_gc_get_debug(), FRT_GC_DEBUG_STATS);
    FILE *f = capture_begin(&saved);
    garbage_ring(3);
    long r0 = frt_gc_collect(0);
    long r1 = frt_gc_collect(1);
    long r2 = frt_gc_collect(2);
    capture_end(f, saved, gens, &nstats, &ncoll);
    CHECK_EQ(r0, 3);
    CHECK_EQ(r1, 0);
    CHECK_EQ(r2, 0);
    CHECK_EQ(nstats, 3);
    CHECK_EQ(ncoll, 0);
    CHECK_EQ(gens[0], 0);
    CHECK_EQ(gens[1], 1);
    CHECK_EQ(gens[2], 2);

    frt_gc_set_debug(FRT_GC_DEBUG_COLLECTABLE);
    f = capture_begin(&saved);
    garbage_ring(4);
    r0 = frt_gc_collect(2);
    capture_end(f, saved, gens, &nstats, &ncoll);
    CHECK_EQ(r0, 4);
    CHECK_EQ(nstats, 0);
    CHECK_EQ(ncoll, 4);

    /* With SAVEALL the objects kept are listed as uncollectable. */
    frt_gc_set_debug(FRT_GC_DEBUG_SAVEALL | FRT_GC_DEBUG_UNCOLLECTABLE);
    f = capture_begin(&saved);
    garbage_ring(5);
    r0 = frt_gc_collect(2);
    capture_end(f, saved, gens, &nstats, &ncoll);
    CHECK_EQ(r0, 5);
    CHECK_EQ(nstats, 0);
    CHECK_EQ(ncoll, 5);
    CHECK_EQ(frt_gc_garbage_count(), 5);
    frt_gc_garbage_clear();

    frt_gc_set_debug(0);
    f = capture_begin(&saved);
    garbage_ring(2);
    r0 = frt_gc_collect(2);
    capture_end(f, saved, gens, &nstats, &ncoll);
    CHECK_EQ(r0, 7);
    CHECK_EQ(nstats + ncoll, 0);
    CHECK_EQ(atomic_load(&destroyed), 14);
    gc_teardown();
}

/* ------------------------------------------------------------------ */
/* 2. DEBUG_SAVEALL and the garbage list.                             */

static void test_saveall(void)
{
    setup(0);
    CHECK_EQ(frt_gc_callback_add(recorder, &tag_a), 0);
    frt_gc_set_debug(FRT_GC_DEBUG_SAVEALL);
    CHECK_EQ(frt_gc_garbage_count(), 0);
    CHECK(frt_gc_garbage_get(0) == NULL);
    frt_gc_stats s0[3], s1[3];
    frt_gc_get_stats(s0);
    garbage_ring(5); /* ids 0..4 */
    CHECK_EQ(frt_gc_collect(2), 5);
    CHECK_EQ(atomic_load(&destroyed), 0);
    CHECK_EQ(frt_gc_garbage_count(), 5);
    CHECK_EQ(last_stop()->collected, 0);
    CHECK_EQ(last_stop()->uncollectable, 5);
    frt_gc_get_stats(s1);
    CHECK_EQ(s1[2].collected - s0[2].collected, 0);
    CHECK_EQ(s1[2].uncollectable - s0[2].uncollectable, 5);

    /* Each member once; garbage_get hands out a new reference. */
    int seen[5] = {0};
    for (size_t i = 0; i < 5; i++) {
        frt_object *o = frt_gc_garbage_get(i);
        CHECK(o != NULL);
        node *n = (node *)o;
        CHECK(n->id >= 0 && n->id < 5);
        seen[n->id]++;
        CHECK_EQ(frt_refcount(o), 3); /* ring, list, ours */
        CHECK(n->ref[0] != NULL);     /* not cleared */
        frt_decref(o);
        CHECK_EQ(frt_refcount(o), 2);
    }
    for (int i = 0; i < 5; i++)
        CHECK_EQ(seen[i], 1);
    CHECK(frt_gc_garbage_get(5) == NULL);
    CHECK(frt_gc_garbage_get((size_t)-1) == NULL);

    /* Still referenced by the list: the next run does not find them. */
    CHECK_EQ(frt_gc_collect(2), 0);
    CHECK_EQ(frt_gc_garbage_count(), 5);
    /* More garbage is appended. */
    garbage_ring(3); /* ids 5..7 */
    CHECK_EQ(frt_gc_collect(0), 3);
    CHECK_EQ(frt_gc_garbage_count(), 8);

    /* Cleared, the list lets go; the cycles are collected as usual. */
    frt_gc_set_debug(0);
    frt_gc_garbage_clear();
    CHECK_EQ(frt_gc_garbage_count(), 0);
    CHECK(frt_gc_garbage_get(0) == NULL);
    CHECK_EQ(atomic_load(&destroyed), 0);
    CHECK_EQ(frt_gc_collect(2), 8);
    check_destroyed(0, 8, 8);
    CHECK_EQ(last_stop()->collected, 8);
    CHECK_EQ(last_stop()->uncollectable, 0);
    gc_teardown();
}

int main(void)
{
    test_watchdog("test_gc_debug", 240);
    uint64_t t0 = test_now_ns();
    test_debug_output();
    test_saveall();
    fprintf(stderr, "test_gc_debug: %.2f s\n", (double)(test_now_ns() - t0) / 1e9);
    TEST_PASS("test_gc_debug");
    return 0;
}
