/* Introspection and tracking: get_referents, get_referrers and get_objects
 * (identities, the total found, at most cap new references stored, which
 * the caller drops), is_tracked / track / untrack (types without traverse
 * are never tracked), and freeze / unfreeze / get_freeze_count (frozen
 * cycles are not collected, even by a full run, until unfrozen). */
#define _GNU_SOURCE
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <frt/frt.h>

#include "check.h"
#include "test_util.h"
#define GC_NODES_NREF 3
#include "gc_nodes.h"

/* out[0..n) holds exactly the objects of want[0..n), in any order; drops
 * the references. */
static void check_same_set(frt_object **out, size_t n, node **want, size_t nwant)
{
    CHECK_EQ(n, nwant);
    for (size_t k = 0; k < nwant; k++) {
        int hits = 0;
        for (size_t i = 0; i < n; i++)
            hits += out[i] == &want[k]->ob;
        CHECK_EQ(hits, 1);
    }
    for (size_t i = 0; i < n; i++)
        frt_decref(out[i]);
}

/* ------------------------------------------------------------------ */
/* 1. get_referents                                                   */

static void test_referents(void)
{
    gc_setup(0);
    node *a = make(), *b = make(), *x = make();
    node *box = make_of(&box_type);
    link_to(x, 0, a);
    link_to(x, 2, b);
    frt_object *out[8];
    CHECK_EQ(frt_gc_get_referents(&x->ob, out, 8), 2);
    CHECK_EQ(frt_refcount(&a->ob), 3); /* ours, x's, out's */
    node *want[2] = {a, b};
    check_same_set(out, 2, want, 2);
    CHECK_EQ(frt_refcount(&a->ob), 2);

    /* cap: the total, and only cap references. */
    CHECK_EQ(frt_gc_get_referents(&x->ob, out, 1), 2);
    CHECK(out[0] == &a->ob || out[0] == &b->ob);
    frt_decref(out[0]);
    CHECK_EQ(frt_gc_get_referents(&x->ob, NULL, 0), 2);
    CHECK_EQ(frt_refcount(&a->ob), 2);
    CHECK_EQ(frt_refcount(&b->ob), 2);

    /* Untracked referents are reported; untracked holders report nothing. */
    link_to(x, 1, box);
    link_to(box, 0, a);
    CHECK_EQ(frt_gc_get_referents(&x->ob, out, 8), 3);
    node *want3[3] = {a, b, box};
    check_same_set(out, 3, want3, 3);
    CHECK_EQ(frt_gc_get_referents(&box->ob, out, 8), 0);
    CHECK_EQ(frt_gc_get_referents(&a->ob, out, 8), 0);
    CHECK_EQ(frt_gc_get_referents(NULL, out, 8), 0);

    /* A self-reference is its own referent, once per reference. */
    link_to(a, 0, a);
    link_to(a, 1, a);
    CHECK_EQ(frt_gc_get_referents(&a->ob, out, 8), 2);
    CHECK(out[0] == &a->ob && out[1] == &a->ob);
    frt_decref(out[0]);
    frt_decref(out[1]);
    node_clear(&a->ob);

    frt_decref(&x->ob);
    frt_decref(&box->ob);
    frt_decref(&a->ob);
    frt_decref(&b->ob);
    CHECK_EQ(atomic_load(&destroyed), 4);
    gc_teardown();
}

/* ------------------------------------------------------------------ */
/* 2. get_referrers                                                   */

static void test_referrers(void)
{
    gc_setup(0);
    node *t = make(), *other = make();
    node *x = make(), *y = make(), *z = make(), *u = make(), *box = make_of(&box_type);
    link_to(x, 0, t);
    link_to(y, 0, t);
    link_to(y, 1, t); /* twice: reported once */
    link_to(z, 0, other);
    link_to(u, 0, t);
    frt_gc_untrack(&u->ob); /* untracked containers are not searched */
    link_to(box, 0, t);     /* nor are types without traverse */
    CHECK_EQ(frt_gc_collect(2), 0); /* x, y, z, ... now in generation 2 */
    node *w = make();               /* and a young referrer */
    link_to(w, 2, t);

    frt_object *out[8];
    CHECK_EQ(frt_gc_get_referrers(&t->ob, out, 8), 3);
    node *want[3] = {x, y, w};
    check_same_set(out, 3, want, 3);
    CHECK_EQ(frt_gc_get_referrers(&t->ob, out, 2), 3);
    frt_decref(out[0]);
    frt_decref(out[1]);
    CHECK_EQ(frt_gc_get_referrers(&t->ob, NULL, 0), 3);
    CHECK_EQ(frt_gc_get_referrers(&x->ob, out, 8), 0);
    CHECK_EQ(frt_gc_get_referrers(NULL, out, 8), 0);
    CHECK_EQ(frt_refcount(&x->ob), 1);
    CHECK_EQ(frt_refcount(&y->ob), 1);

    /* Frozen objects are not searched (as CPython's permanent generation). */
    frt_gc_freeze();
    CHECK_EQ(frt_gc_get_referrers(&t->ob, out, 8), 0);
    frt_gc_unfreeze();
    CHECK_EQ(frt_gc_get_referrers(&t->ob, out, 8), 3);
    check_same_set(out, 3, want, 3);

    /* A self-referencing object is among its referrers. */
    link_to(z, 1, z);
    CHECK_EQ(frt_gc_get_referrers(&z->ob, out, 8), 1);
    CHECK(out[0] == &z->ob);
    frt_decref(out[0]);
    CHECK_EQ(frt_gc_get_referrers(&other->ob, out, 8), 1);
    CHECK(out[0] == &z->ob);
    frt_decref(out[0]);

    frt_decref(&x->ob);
    frt_decref(&y->ob);
    frt_decref(&w->ob);
    frt_decref(&u->ob);
    frt_decref(&box->ob);
    frt_decref(&z->ob); /* a self-cycle now */
    CHECK_EQ(atomic_load(&destroyed), 5);
    CHECK_EQ(frt_refcount(&t->ob), 1);
    CHECK_EQ(frt_gc_collect(2), 1);
    frt_decref(&t->ob);
    frt_decref(&other->ob);
    CHECK_EQ(atomic_load(&destroyed), 8);
    gc_teardown();
}

/* ------------------------------------------------------------------ */
/* 3. get_objects, tracking.                                          */

static void test_tracking(void)
{
    gc_setup(0);
    node *a = make(), *b = make(), *box = make_of(&box_type);
    CHECK(frt_gc_is_tracked(&a->ob));
    CHECK(!frt_gc_is_tracked(&box->ob));
    CHECK(!frt_gc_is_tracked(NULL));
    CHECK(!frt_gc_is_finalized(NULL));
    CHECK(!frt_gc_is_finalized(&a->ob));
    frt_gc_track(&box->ob); /* no traverse: never tracked */
    CHECK(!frt_gc_is_tracked(&box->ob));
    frt_gc_track(NULL);
    frt_gc_untrack(NULL);
    frt_gc_untrack(&box->ob);

    frt_object *out[8];
    CHECK_EQ(frt_gc_get_objects(-1, NULL, 5), 0); /* cap without a buffer: refused */
    CHECK_EQ(frt_gc_get_objects(-2, out, 8), 0);
    CHECK_EQ(frt_gc_get_objects(-1, out, 8), 2);
    node *want[2] = {a, b};
    check_same_set(out, 2, want, 2);

    /* Untracked: not listed, not examined. Tracked again: young. */
    frt_gc_untrack(&a->ob);
    CHECK(!frt_gc_is_tracked(&a->ob));
    frt_gc_untrack(&a->ob); /* twice is harmless */
    CHECK_EQ(frt_gc_get_objects(-1, out, 8), 1);
    CHECK(out[0] == &b->ob);
    frt_decref(out[0]);
    CHECK_EQ(frt_gc_collect(1), 0); /* b to generation 2 */
    frt_gc_track(&a->ob);
    CHECK(frt_gc_is_tracked(&a->ob));
    frt_gc_track(&a->ob); /* twice is harmless */
    CHECK_EQ(frt_gc_get_objects(0, out, 8), 1);
    CHECK(out[0] == &a->ob);
    frt_decref(out[0]);
    CHECK_EQ(frt_gc_get_objects(2, out, 8), 1);
    CHECK(out[0] == &b->ob);
    frt_decref(out[0]);

    /* An old object untracked and tracked again is young again: a young
     * run collects it once it is garbage. */
    frt_gc_untrack(&b->ob);
    frt_gc_track(&b->ob);
    CHECK_EQ(frt_gc_get_objects(0, NULL, 0), 2);
    CHECK_EQ(frt_gc_get_objects(2, NULL, 0), 0);
    link_to(b, 0, b);
    long b_id = b->id;
    frt_decref(&b->ob);
    CHECK_EQ(frt_gc_collect(0), 1);
    CHECK_EQ(atomic_load(&destroy_by_id[b_id]), 1);

    /* Untracked objects die normally. */
    frt_gc_untrack(&a->ob);
    frt_decref(&a->ob);
    frt_decref(&box->ob);
    CHECK_EQ(atomic_load(&destroyed), 3);
    CHECK_EQ(frt_gc_get_objects(-1, NULL, 0), 0);
    gc_teardown();
}

/* ------------------------------------------------------------------ */
/* 4. freeze / unfreeze / get_freeze_count.                           */

static void test_freeze(void)
{
    gc_setup(0);
    node *live[3];
    for (int i = 0; i < 3; i++)
        live[i] = make(); /* ids 0..2 */
    node *r[7];           /* ids 3..9, a ring we hold */
    for (int i = 0; i < 7; i++)
        r[i] = make();
    for (int i = 0; i < 7; i++)
        link_to(r[i], 0, r[(i + 1) % 7]);
    CHECK_EQ(frt_gc_get_freeze_count(), 0);
    frt_gc_freeze();
    CHECK_EQ(frt_gc_get_freeze_count(), 10);
    CHECK_EQ(frt_gc_get_objects(-1, NULL, 0), 0); /* the permanent generation is not listed */
    CHECK(frt_gc_is_tracked(&r[0]->ob));

    /* Frozen garbage is not collected, not even by a full run. */
    for (int i = 0; i < 7; i++)
        frt_decref(&r[i]->ob);
    CHECK_EQ(frt_gc_collect(2), 0);
    CHECK_EQ(frt_gc_collect(0), 0);
    CHECK_EQ(atomic_load(&destroyed), 0);

    /* New objects are not frozen; a frozen object that dies leaves the
     * count, and so does one that is untracked. */
    node *young = make(); /* id 10 */
    CHECK_EQ(frt_gc_get_objects(0, NULL, 0), 1);
    CHECK_EQ(frt_gc_get_freeze_count(), 10);
    frt_decref(&live[0]->ob);
    CHECK_EQ(atomic_load(&destroyed), 1);
    CHECK_EQ(frt_gc_get_freeze_count(), 9);
    frt_gc_untrack(&live[1]->ob);
    CHECK_EQ(frt_gc_get_freeze_count(), 8);

    /* Freezing again adds what is tracked now. */
    frt_gc_freeze();
    CHECK_EQ(frt_gc_get_freeze_count(), 9);
    CHECK_EQ(frt_gc_get_objects(-1, NULL, 0), 0);

    /* Unfrozen, everything is in the oldest generation: a young run leaves
     * the ring, a full run takes it. */
    frt_gc_unfreeze();
    CHECK_EQ(frt_gc_get_freeze_count(), 0);
    CHECK_EQ(frt_gc_get_objects(2, NULL, 0), 9);
    CHECK_EQ(frt_gc_get_objects(0, NULL, 0), 0);
    CHECK_EQ(frt_gc_collect(0), 0);
    CHECK_EQ(frt_gc_collect(1), 0);
    CHECK_EQ(frt_gc_collect(2), 7);
    check_destroyed(3, 7, 8);
    frt_decref(&live[1]->ob);
    frt_decref(&live[2]->ob);
    frt_decref(&young->ob);
    CHECK_EQ(atomic_load(&destroyed), 11);
    gc_teardown();
}

int main(void)
{
    test_watchdog("test_gc_introspect", 240);
    uint64_t t0 = test_now_ns();
    test_referents();
    test_referrers();
    test_tracking();
    test_freeze();
    fprintf(stderr, "test_gc_introspect: %.2f s\n", (double)(test_now_ns() - t0) / 1e9);
    TEST_PASS("test_gc_introspect");
    return 0;
}
