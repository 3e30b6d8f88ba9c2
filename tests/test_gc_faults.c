/* The collector out of memory (the runtime's fault injection makes the k-th
 * allocation of the runtime's own memory fail).
 *
 * For every allocation a collection makes, one run where exactly that one
 * fails: the collection is postponed (returns 0, stats count it, nothing is
 * touched), or it keeps everything when the resurrection check cannot get
 * memory (nothing freed, finalizers ran once), or it succeeds. In no case
 * is a live object cleared or freed, and the next collection (with memory)
 * frees exactly the garbage, each finalizer having run exactly once.
 *
 * The live structure has a node with thousands of referents, so marking
 * needs a large mark stack; the garbage is big enough that the work set
 * grows several times; with a finalizing ring in the garbage and without
 * (then no resurrection check runs that could hide a wrong mark). */
#define _GNU_SOURCE
#include <stdatomic.h>
#include <string.h>

#include <frt/frt.h>

#include "check.h"
#include "runtime/os.h"
#include "test_util.h"
#include "gc_nodes.h"

static void node_finalize(frt_object *self)
{
    record_finalize(self);
}

static const frt_type fin_type = {"fin", sizeof(node), node_traverse, node_clear, node_finalize,
                                  node_destroy};

/* The live structure: fan -> FAN children, child i -> grandchild i. */
#define FAN 3000
#define FIN_RING 5
#define PLAIN_RING 1500
#define GARBAGE garbage()

static node *fan;
static long fan_first, fan_last; /* ids of the live objects */
static int with_fin;            /* the finalizing ring: a resurrection check runs */

static long garbage(void)
{
    return (with_fin ? FIN_RING : 0) + PLAIN_RING;
}

static long fin_ring(void)
{
    return with_fin ? FIN_RING : 0;
}

static void build(void)
{
    fan_first = atomic_load(&next_id);
    fan = make_sized(&node_type, FAN, 0);
    for (long i = 0; i < FAN; i++) {
        node *c = make_sized(&node_type, 1, 0), *g = make_sized(&node_type, 0, 0);
        c->ref[0] = &g->ob; /* takes our reference */
        fan->ref[i] = &c->ob;
    }
    fan_last = atomic_load(&next_id);
    const frt_type *types[2] = {&fin_type, &node_type};
    const long sizes[2] = {FIN_RING, PLAIN_RING};
    for (int r = with_fin ? 0 : 1; r < 2; r++) {
        node *first = make_sized(types[r], 1, 0), *prev = first;
        for (long i = 1; i < sizes[r]; i++) {
            node *x = make_sized(types[r], 1, 0);
            prev->ref[0] = &x->ob;
            prev = x;
        }
        prev->ref[0] = frt_newref(&first->ob);
        frt_decref(&first->ob);
    }
}

/* Nothing live was cleared or freed. */
static void check_live(void)
{
    CHECK_EQ(atomic_load(&bad_destroys), 0);
    for (long id = fan_first; id < fan_last; id++)
        CHECK_EQ(atomic_load(&destroy_by_id[id]), 0);
    for (long i = 0; i < FAN; i++) {
        node *c = (node *)fan->ref[i];
        CHECK(c != NULL);
        CHECK_EQ(c->magic, NODE_MAGIC);
        CHECK(c->ref[0] != NULL);
        CHECK_EQ(((node *)c->ref[0])->magic, NODE_MAGIC);
    }
}

static void finish(void)
{
    frt_decref(&fan->ob); /* the live structure goes by its counts */
    CHECK_EQ(atomic_load(&destroyed), GARBAGE + 1 + 2 * FAN);
    CHECK_EQ(atomic_load(&bad_destroys), 0);
    CHECK_EQ(frt_shutdown(), 0);
}

/* How many runtime allocations one collection of gen makes here. */
static long probe(int gen)
{
    gc_setup(0);
    build();
    long a0 = frt_test_fault_count(FRT_FAULT_ALLOC);
    CHECK_EQ(frt_gc_collect(gen), GARBAGE);
    long n = frt_test_fault_count(FRT_FAULT_ALLOC) - a0;
    CHECK_EQ(atomic_load(&destroyed), GARBAGE);
    check_live();
    finish();
    return n;
}

static void run_with_fault(int gen, long k, long *postponed, long *kept)
{
    gc_setup(0);
    build();
    frt_gc_stats s0[3], s1[3];
    frt_gc_get_stats(s0);
    frt_test_fault_set(FRT_FAULT_ALLOC, k, 0);
    long r = frt_gc_collect(gen);
    frt_test_fault_set(FRT_FAULT_ALLOC, 0, 0);
    frt_gc_get_stats(s1);
    check_live();
    long d = atomic_load(&destroyed), f = atomic_load(&finalized);
    long p = (long)(s1[gen].postponed - s0[gen].postponed);
    if (p == 1) {
        /* Postponed: nothing happened. */
        CHECK_EQ(r, 0);
        CHECK_EQ(d, 0);
        CHECK_EQ(f, 0);
        CHECK_EQ(s1[gen].collections - s0[gen].collections, 0);
        ++*postponed;
    } else {
        CHECK_EQ(p, 0);
        CHECK_EQ(f, fin_ring());
        if (d == 0) {
            CHECK_EQ(r, 0); /* no memory for the resurrection check: all kept, none collected */
            ++*kept;
        } else {
            CHECK_EQ(r, GARBAGE);
            CHECK_EQ(d, GARBAGE);
        }
    }
    /* With memory again, exactly the garbage goes, finalized once (a full
     * run: what was kept has been promoted). */
    long r2 = frt_gc_collect(2);
    CHECK_EQ(r2, d == GARBAGE ? 0 : GARBAGE);
    CHECK_EQ(atomic_load(&destroyed), GARBAGE);
    CHECK_EQ(atomic_load(&finalized), fin_ring());
    check_live();
    CHECK_EQ(frt_gc_collect(2), 0);
    finish();
}

int main(void)
{
    test_watchdog("test_gc_faults", 240);
    uint64_t t0 = test_now_ns();
    for (int v = 0; v < 4; v++) {
        int gen = v % 2 ? 2 : 0;
        with_fin = v < 2;
        long n = probe(gen);
        long postponed = 0, kept = 0;
        for (long k = 1; k <= n; k++)
            run_with_fault(gen, k, &postponed, &kept);
        fprintf(stderr,
                "test_gc_faults: generation %d%s: %ld allocations, %ld postponed, %ld kept all\n",
                gen, with_fin ? " with finalizers" : "", n, postponed, kept);
    }
    fprintf(stderr, "test_gc_faults: %.2f s\n", (double)(test_now_ns() - t0) / 1e9);
    TEST_PASS("test_gc_faults");
    return 0;
}
