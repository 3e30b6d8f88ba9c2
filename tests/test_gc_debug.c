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

/* ------------------------------------------------------------------ */
/* Scaffolding                                                        */

#define MAGIC 0x6c0ffee
#define NREF 2

typedef struct node {
    frt_object ob;
    long id;
    int magic;
    frt_object *ref[NREF];
} node;

#define MAX_IDS (1L << 16)
static _Atomic int destroy_by_id[MAX_IDS];
static _Atomic long destroyed;
static _Atomic long bad_destroys;
static _Atomic long next_id;

static int node_traverse(frt_object *self, frt_visit_fn visit, void *arg)
{
    node *n = (node *)self;
    for (int i = 0; i < NREF; i++)
        if (n->ref[i] && visit(n->ref[i], arg))
            return 1;
    return 0;
}

static void node_clear(frt_object *self)
{
    node *n = (node *)self;
    for (int i = 0; i < NREF; i++) {
        frt_object *r = n->ref[i];
        if (r) {
            n->ref[i] = NULL;
            frt_decref(r);
        }
    }
}

static void node_destroy(frt_object *self)
{
    node *n = (node *)self;
    if (n->magic != MAGIC || frt_refcount(self) != 0 || n->id < 0 || n->id >= MAX_IDS)
        atomic_fetch_add(&bad_destroys, 1);
    else if (atomic_fetch_add(&destroy_by_id[n->id], 1) != 0)
        atomic_fetch_add(&bad_destroys, 1);
    n->magic = 0;
    atomic_fetch_add(&destroyed, 1);
    node_clear(self);
}

static const frt_type node_type = {"node", sizeof(node), node_traverse, node_clear, NULL,
                                   node_destroy};

static void reset_counts(void)
{
    for (long i = 0; i < MAX_IDS; i++)
        atomic_store_explicit(&destroy_by_id[i], 0, memory_order_relaxed);
    atomic_store(&destroyed, 0);
    atomic_store(&bad_destroys, 0);
    atomic_store(&next_id, 0);
}

static node *make(void)
{
    node *n = (node *)frt_new(&node_type);
    CHECK(n != NULL);
    n->id = atomic_fetch_add(&next_id, 1);
    CHECK(n->id < MAX_IDS);
    n->magic = MAGIC;
    return n;
}

static void link_to(node *from, int slot, node *to)
{
    from->ref[slot] = frt_newref(&to->ob);
}

/* A ring of n nodes nobody else references. */
static void garbage_ring(long n)
{
    node *first = make(), *prev = first;
    for (long i = 1; i < n; i++) {
        node *x = make();
        link_to(prev, 0, x);
        frt_decref(&x->ob);
        prev = x;
    }
    link_to(prev, 0, first);
    frt_decref(&first->ob);
}

static void check_destroyed(long first, long n, long total)
{
    CHECK_EQ(atomic_load(&bad_destroys), 0);
    CHECK_EQ(atomic_load(&destroyed), total);
    for (long i = first; i < first + n; i++)
        CHECK_EQ(atomic_load(&destroy_by_id[i]), 1);
}

/* The callback log. */
typedef struct event {
    int phase, gen, tag;
    size_t collected, uncollectable;
    uint64_t pause_ns;
} event;
#define MAX_EVENTS 1024
static event events[MAX_EVENTS];
static int nevents;
static int tag_a = 1;
static long recursive_collects = 0, recursive_nonzero = 0;
static int collect_in_callback;

static void recorder(int phase, const frt_gc_info *info, void *ctx)
{
    CHECK(nevents < MAX_EVENTS);
    event *e = &events[nevents++];
    e->phase = phase;
    e->gen = info->generation;
    e->tag = *(int *)ctx;
    e->collected = phase == FRT_GC_STOP ? info->collected : 0;
    e->uncollectable = phase == FRT_GC_STOP ? info->uncollectable : 0;
    e->pause_ns = phase == FRT_GC_STOP ? info->pause_ns : 0;
    if (collect_in_callback) {
        recursive_collects++;
        if (frt_gc_collect(2) != 0) /* refused: no recursion */
            recursive_nonzero++;
    }
}

static const event *last_stop(void)
{
    for (int i = nevents - 1; i >= 0; i--)
        if (events[i].phase == FRT_GC_STOP)
            return &events[i];
    CHECK(0);
    return NULL;
}

static void setup(int enabled)
{
    frt_config cfg;
    frt_config_default(&cfg);
    cfg.gc_enabled = enabled;
    CHECK_EQ(frt_init(&cfg), 0);
    reset_counts();
    nevents = 0;
}

static void teardown(void)
{
    CHECK_EQ(frt_shutdown(), 0);
    CHECK_EQ(atomic_load(&bad_destroys), 0);
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
    teardown();
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
    teardown();
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
