/* Generations of the cycle collector.
 *
 * New tracked objects are in generation 0; survivors move to 1, then 2; a
 * young run examines only the young generations (an older garbage cycle
 * survives collect(0) and collect(1) and dies at collect(2)); references
 * from older generations count as from outside; -1 is a full run; large
 * objects (mapped one by one, outside the arena pages) go through the same
 * generations. Automatic collections are off so every count is exact. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <frt/frt.h>

#include "check.h"
#include "test_util.h"
#define GC_NODES_NREF 4
#include "gc_nodes.h"

#define LARGE_EXTRA (64 * 1024) /* well above the largest size class */

static node *make_large(void)
{
    return make_sized(&node_type, GC_NODES_NREF, LARGE_EXTRA);
}

/* How many of the given objects frt_gc_get_objects(gen) reports. */
static long count_in_gen(int gen, node **v, long n)
{
    size_t cap = (size_t)n + 64;
    frt_object **out = malloc(cap * sizeof *out);
    CHECK(out != NULL);
    size_t total = frt_gc_get_objects(gen, out, cap);
    CHECK(total <= cap);
    long found = 0;
    for (size_t i = 0; i < total; i++) {
        int mine = 0;
        for (long k = 0; k < n; k++)
            if (out[i] == &v[k]->ob)
                mine = 1;
        found += mine;
        frt_decref(out[i]);
    }
    free(out);
    return found;
}

/* Everything frt_gc_get_objects(gen) reports (each test's heap holds only
 * its own objects). */
static long gen_total(int gen)
{
    return (long)frt_gc_get_objects(gen, NULL, 0);
}

/* ------------------------------------------------------------------ */
/* 1. Generations.                                                    */

static void test_generations(void)
{
    gc_setup(0);
    enum { N = 20, M = 5 };
    node *v[N + M];
    for (int i = 0; i < N; i++)
        v[i] = make();
    node *box = make_of(&box_type); /* never listed */

    /* New tracked objects are in generation 0. */
    CHECK_EQ(count_in_gen(0, v, N), N);
    CHECK_EQ(gen_total(0), N);
    CHECK_EQ(gen_total(1), 0);
    CHECK_EQ(gen_total(2), 0);
    CHECK_EQ(count_in_gen(-1, v, N), N);
    CHECK_EQ(gen_total(-1), N);

    /* Survivors move up one generation per run of theirs. */
    CHECK_EQ(frt_gc_collect(0), 0);
    CHECK_EQ(gen_total(0), 0);
    CHECK_EQ(count_in_gen(1, v, N), N);
    CHECK_EQ(gen_total(1), N);
    for (int i = N; i < N + M; i++)
        v[i] = make();
    CHECK_EQ(count_in_gen(0, v + N, M), M);
    CHECK_EQ(gen_total(0), M);
    CHECK_EQ(frt_gc_collect(1), 0); /* 0 and 1 go to 2 */
    CHECK_EQ(gen_total(0), 0);
    CHECK_EQ(gen_total(1), 0);
    CHECK_EQ(count_in_gen(2, v, N + M), N + M);
    CHECK_EQ(gen_total(2), N + M);
    CHECK_EQ(frt_gc_collect(2), 0);
    CHECK_EQ(count_in_gen(2, v, N + M), N + M);
    CHECK_EQ(gen_total(2), N + M);
    CHECK_EQ(count_in_gen(-1, v, N + M), N + M);
    CHECK_EQ(gen_total(-1), N + M);

    /* get_objects stores at most cap references but counts them all. */
    frt_object *few[3];
    CHECK_EQ(frt_gc_get_objects(-1, few, 3), N + M);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(frt_refcount(few[i]), 2);
        frt_decref(few[i]);
    }
    CHECK_EQ(frt_gc_get_objects(2, NULL, 0), N + M);
    CHECK_EQ(frt_gc_get_objects(3, NULL, 0), 0);
    for (int i = 0; i < N + M; i++)
        CHECK_EQ(frt_refcount(&v[i]->ob), 1);

    /* A generation-2 ring is not examined by young runs. */
    long first = atomic_load(&next_id);
    node **r = ring(8);
    CHECK_EQ(frt_gc_collect(1), 0); /* straight to 2 */
    CHECK_EQ(count_in_gen(2, r, 8), 8);
    CHECK_EQ(gen_total(0) + gen_total(1), 0);
    drop_all(r, 8);
    frt_gc_stats st0[3], st1[3];
    frt_gc_get_stats(st0);
    CHECK_EQ(frt_gc_collect(0), 0);
    CHECK_EQ(frt_gc_collect(1), 0);
    CHECK_EQ(atomic_load(&destroyed), 0);
    CHECK_EQ(frt_gc_collect(-1), 8); /* -1 is a full run */
    check_destroyed(first, 8, 8);
    frt_gc_get_stats(st1);
    CHECK_EQ(st1[0].collections - st0[0].collections, 1);
    CHECK_EQ(st1[1].collections - st0[1].collections, 1);
    CHECK_EQ(st1[2].collections - st0[2].collections, 1);
    CHECK_EQ(st1[0].collected - st0[0].collected, 0);
    CHECK_EQ(st1[1].collected - st0[1].collected, 0);
    CHECK_EQ(st1[2].collected - st0[2].collected, 8);

    /* A generation-1 ring: a gen-0 run leaves it, a gen-1 run takes it. */
    first = atomic_load(&next_id);
    r = ring(4);
    CHECK_EQ(frt_gc_collect(0), 0);
    CHECK_EQ(count_in_gen(1, r, 4), 4);
    CHECK_EQ(gen_total(1), 4);
    drop_all(r, 4);
    CHECK_EQ(frt_gc_collect(0), 0);
    CHECK_EQ(frt_gc_collect(1), 4);
    check_destroyed(first, 4, 12);

    /* Bad generations. */
    CHECK_EQ(frt_gc_collect(3), FRT_EINVAL);
    CHECK_EQ(frt_gc_collect(-2), FRT_EINVAL);

    for (int i = 0; i < N + M; i++)
        frt_decref(&v[i]->ob);
    frt_decref(&box->ob);
    CHECK_EQ(atomic_load(&destroyed), 12 + N + M + 1);
    CHECK_EQ(frt_gc_get_objects(-1, NULL, 0), 0);
    gc_teardown();
}

/* ------------------------------------------------------------------ */
/* 2. References from older generations count as from outside.        */

static void test_older_generation_refs(void)
{
    gc_setup(0);
    /* An old pair, promoted to generation 2. */
    node *o1 = make(), *o2 = make();
    link_to(o1, 0, o2);
    link_to(o2, 0, o1);
    CHECK_EQ(frt_gc_collect(2), 0);
    node *old[2] = {o1, o2};
    CHECK_EQ(count_in_gen(2, old, 2), 2);
    CHECK_EQ(gen_total(-1), 2);

    /* A young ring referenced only from the old pair. */
    long first = atomic_load(&next_id);
    node **r = ring(5);
    link_to(o1, 1, r[0]);
    node *rv[5];
    memcpy(rv, r, sizeof rv);
    drop_all(r, 5);
    CHECK_EQ(frt_gc_collect(0), 0); /* survives: the old reference is outside */
    CHECK_EQ(count_in_gen(1, rv, 5), 5);
    CHECK_EQ(gen_total(1), 5);

    /* Now the old pair is garbage too, but young runs do not look at it,
     * so its reference still keeps the ring alive. */
    frt_decref(&o1->ob);
    frt_decref(&o2->ob);
    CHECK_EQ(frt_gc_collect(0), 0);
    CHECK_EQ(frt_gc_collect(1), 0);
    CHECK_EQ(atomic_load(&destroyed), 0);
    CHECK_EQ(count_in_gen(2, rv, 5), 5);
    CHECK_EQ(frt_gc_collect(2), 7);
    check_destroyed(0, 2, 7);
    check_destroyed(first, 5, 7);

    /* Young garbage that points at old live objects: the old keep their
     * generation and lose exactly that reference. */
    node *live = make();
    CHECK_EQ(frt_gc_collect(1), 0);
    CHECK_EQ(count_in_gen(2, &live, 1), 1);
    first = atomic_load(&next_id);
    node *y = make();
    link_to(y, 0, y);
    link_to(y, 1, live);
    frt_decref(&y->ob);
    CHECK_EQ(frt_refcount(&live->ob), 2);
    CHECK_EQ(frt_gc_collect(0), 1);
    check_destroyed(first, 1, 8);
    CHECK_EQ(frt_refcount(&live->ob), 1);
    CHECK_EQ(count_in_gen(2, &live, 1), 1);
    frt_decref(&live->ob);
    CHECK_EQ(atomic_load(&destroyed), 9);
    gc_teardown();
}

/* ------------------------------------------------------------------ */
/* 3. Large objects: tracked, generations, collected.                 */

static void test_large_objects(void)
{
    gc_setup(0);
    node *l1 = make_large(), *l2 = make_large();
    node *s = make();
    CHECK(frt_gc_is_tracked(&l1->ob));
    CHECK_EQ(frt_gc_get_objects(0, NULL, 0), 3);
    /* A ring of two large objects and a small one: a young run takes it. */
    link_to(l1, 0, l2);
    link_to(l2, 0, s);
    link_to(s, 0, l1);
    frt_decref(&l1->ob);
    frt_decref(&l2->ob);
    frt_decref(&s->ob);
    CHECK_EQ(frt_gc_collect(0), 3);
    CHECK_EQ(atomic_load(&destroyed), 3);

    /* A large survivor moves up like any other, and as a gen-2 cycle it is
     * left alone by young runs. */
    node *l3 = make_large(); /* id 3 */
    link_to(l3, 0, l3);
    CHECK_EQ(frt_gc_collect(0), 0);
    frt_object *out[4];
    CHECK_EQ(frt_gc_get_objects(1, out, 4), 1);
    CHECK(out[0] == &l3->ob);
    frt_decref(out[0]);
    CHECK_EQ(frt_gc_collect(1), 0);
    CHECK_EQ(frt_gc_get_objects(2, out, 4), 1);
    CHECK(out[0] == &l3->ob);
    frt_decref(out[0]);
    frt_decref(&l3->ob);
    CHECK_EQ(frt_gc_collect(0), 0);
    CHECK_EQ(frt_gc_collect(1), 0);
    CHECK_EQ(atomic_load(&destroyed), 3);
    CHECK_EQ(frt_gc_collect(2), 1);
    CHECK_EQ(atomic_load(&destroy_by_id[3]), 1);

    /* Referrers among large objects. */
    node *t = make(), *l4 = make_large();
    link_to(l4, 1, t);
    CHECK_EQ(frt_gc_get_referrers(&t->ob, out, 4), 1);
    CHECK(out[0] == &l4->ob);
    frt_decref(out[0]);
    frt_decref(&l4->ob);
    frt_decref(&t->ob);
    CHECK_EQ(atomic_load(&destroyed), 6);
    gc_teardown();
}

int main(void)
{
    test_watchdog("test_gc_generations", 240);
    uint64_t t0 = test_now_ns();
    test_generations();
    test_older_generation_refs();
    test_large_objects();
    fprintf(stderr, "test_gc_generations: %.2f s\n", (double)(test_now_ns() - t0) / 1e9);
    TEST_PASS("test_gc_generations");
    return 0;
}
