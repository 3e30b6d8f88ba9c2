/* The cycle collector on one thread: what is garbage and what is not.
 *
 * Self-cycles and rings of many sizes (collect returns exactly the ring
 * size, every member destroyed exactly once); cycles kept alive from
 * outside (by a pointer, by an untracked object, by an untracked container
 * in the cycle); objects hanging off garbage; cycles that clear cannot
 * break; long chains hanging off garbage; and frt_shutdown, which collects
 * what was left behind. Generations: test_gc_generations.c.
 *
 * Every object carries an id and destroy counts per id, so "freed exactly
 * once" is checked object by object. Automatic collections are off
 * (gc_enabled = 0) so every count is exact. */
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

/* A container without clear: the collector cannot break a cycle of these. */
static const frt_type noclear_type = {"noclear", sizeof(node), node_traverse, NULL, NULL,
                                      node_destroy};

/* ------------------------------------------------------------------ */
/* 1. Self-cycles.                                                    */

static void test_self_cycles(void)
{
    gc_setup(0);
    CHECK_EQ(frt_gc_collect(2), 0); /* empty heap */

    node *a = make();
    link_to(a, 0, a);
    CHECK_EQ(frt_refcount(&a->ob), 2);
    CHECK(frt_gc_is_tracked(&a->ob));
    frt_decref(&a->ob);
    CHECK_EQ(frt_gc_collect(2), 1);
    check_destroyed(0, 1, 1);

    /* Two references to itself. */
    node *b = make();
    link_to(b, 0, b);
    link_to(b, 1, b);
    frt_decref(&b->ob);
    CHECK_EQ(frt_gc_collect(0), 1);
    check_destroyed(1, 1, 2);

    /* Fifty separate self-cycles in one run. */
    for (int i = 0; i < 50; i++) {
        node *c = make();
        link_to(c, 0, c);
        frt_decref(&c->ob);
    }
    CHECK_EQ(atomic_load(&destroyed), 2);
    CHECK_EQ(frt_gc_collect(-1), 50);
    check_destroyed(2, 50, 52);
    CHECK_EQ(frt_gc_collect(2), 0); /* nothing left to find */
    gc_teardown();
}

/* ------------------------------------------------------------------ */
/* 2. Rings of 2 .. 10000, collected by young and full runs.          */

static void test_rings(void)
{
    gc_setup(0);
    const long sizes[] = {2, 3, 10, 100, 10000};
    long total = 0;
    for (int k = 0; k < 5; k++) {
        long n = sizes[k];
        long first = atomic_load(&next_id);
        node **v = ring(n);
        drop_all(v, n);
        CHECK_EQ(atomic_load(&destroyed), total);
        int gen = k % 2 ? 0 : 2;
        CHECK_EQ(frt_gc_collect(gen), n);
        total += n;
        check_destroyed(first, n, total);
        CHECK_EQ(frt_gc_collect(2), 0);
    }

    /* Two rings and a self-cycle found by one run. */
    long first = atomic_load(&next_id);
    node **v = ring(7), **w = ring(13);
    drop_all(v, 7);
    drop_all(w, 13);
    node *s = make();
    link_to(s, 0, s);
    frt_decref(&s->ob);
    CHECK_EQ(frt_gc_collect(0), 21);
    total += 21;
    check_destroyed(first, 21, total);

    /* A ring with chords (every node also points two ahead). */
    first = atomic_load(&next_id);
    v = ring(30);
    for (long i = 0; i < 30; i++)
        link_to(v[i], 1, v[(i + 2) % 30]);
    drop_all(v, 30);
    CHECK_EQ(frt_gc_collect(2), 30);
    total += 30;
    check_destroyed(first, 30, total);
    gc_teardown();
}

/* ------------------------------------------------------------------ */
/* 3. Cycles held alive from outside survive; then they go.           */

static void test_held_from_outside(void)
{
    gc_setup(0);
    long total = 0;

    /* A direct reference to one member. */
    node **v = ring(10);
    node *keep = v[3];
    frt_incref(&keep->ob);
    drop_all(v, 10);
    for (int gen = 0; gen <= 2; gen++)
        CHECK_EQ(frt_gc_collect(gen), 0);
    CHECK_EQ(atomic_load(&destroyed), 0);
    CHECK_EQ(frt_refcount(&keep->ob), 2); /* ours and its predecessor's */
    frt_decref(&keep->ob);
    CHECK_EQ(frt_gc_collect(2), 10);
    total += 10;
    check_destroyed(0, 10, total);

    /* Held through a tracked object that is not in the cycle. */
    long first = atomic_load(&next_id);
    v = ring(5);
    node *holder = make();
    link_to(holder, 0, v[2]);
    drop_all(v, 5);
    CHECK_EQ(frt_gc_collect(0), 0);
    CHECK_EQ(frt_gc_collect(2), 0);
    CHECK_EQ(atomic_load(&destroyed), total);
    long holder_id = holder->id;
    frt_decref(&holder->ob); /* freed by its count; the ring is garbage now */
    total += 1;
    CHECK_EQ(was_destroyed(holder_id), 1);
    CHECK_EQ(atomic_load(&destroyed), total);
    CHECK_EQ(frt_gc_collect(2), 5);
    total += 5;
    check_destroyed(first, 6, total);

    /* Held by a box: a type without traverse is never tracked, so its
     * references count as from outside. */
    first = atomic_load(&next_id);
    v = ring(4);
    node *box = make_of(&box_type);
    CHECK(!frt_gc_is_tracked(&box->ob));
    link_to(box, 0, v[1]);
    drop_all(v, 4);
    CHECK_EQ(frt_gc_collect(2), 0);
    CHECK_EQ(atomic_load(&destroyed), total);
    frt_decref(&box->ob);
    total += 1;
    CHECK_EQ(frt_gc_collect(2), 4);
    total += 4;
    check_destroyed(first, 5, total);

    /* A cycle one of whose members is untracked: the collector never looks
     * at that member, so its reference keeps the rest alive. Tracked again,
     * the pair is garbage. */
    first = atomic_load(&next_id);
    node *a = make(), *b = make();
    link_to(a, 0, b);
    link_to(b, 0, a);
    frt_gc_untrack(&b->ob);
    CHECK(!frt_gc_is_tracked(&b->ob));
    frt_decref(&a->ob);
    frt_decref(&b->ob);
    CHECK_EQ(frt_gc_collect(2), 0);
    CHECK_EQ(atomic_load(&destroyed), total);
    frt_gc_track(&b->ob);
    CHECK(frt_gc_is_tracked(&b->ob));
    CHECK_EQ(frt_gc_collect(2), 2);
    total += 2;
    check_destroyed(first, 2, total);

    /* Garbage that points into a live ring: only the garbage goes, and the
     * live ring loses exactly the garbage's reference. */
    first = atomic_load(&next_id);
    v = ring(6);
    node *g1 = make(), *g2 = make();
    link_to(g1, 0, g2);
    link_to(g2, 0, g1);
    link_to(g1, 1, v[0]);
    frt_decref(&g1->ob);
    frt_decref(&g2->ob);
    CHECK_EQ(frt_refcount(&v[0]->ob), 3);
    long g1_id = g1->id, g2_id = g2->id;
    CHECK_EQ(frt_gc_collect(2), 2);
    total += 2;
    CHECK_EQ(was_destroyed(g1_id), 1);
    CHECK_EQ(was_destroyed(g2_id), 1);
    CHECK_EQ(atomic_load(&destroyed), total);
    CHECK_EQ(frt_refcount(&v[0]->ob), 2);
    for (long i = 0; i < 6; i++)
        CHECK_EQ(was_destroyed(v[i]->id), 0);
    drop_all(v, 6);
    CHECK_EQ(frt_gc_collect(2), 6);
    total += 6;
    check_destroyed(first, 8, total);

    /* What hangs off garbage is unreachable too: a tracked leaf counts in
     * what collect returns, an untracked one is freed by its count. */
    first = atomic_load(&next_id);
    node *c1 = make(), *c2 = make(), *leaf = make(), *lbox = make_of(&box_type);
    link_to(c1, 0, c2);
    link_to(c2, 0, c1);
    link_to(c2, 1, leaf);
    link_to(c1, 1, lbox);
    frt_decref(&c1->ob);
    frt_decref(&c2->ob);
    frt_decref(&leaf->ob);
    frt_decref(&lbox->ob);
    CHECK_EQ(atomic_load(&destroyed), total);
    CHECK_EQ(frt_gc_collect(2), 3);
    total += 4;
    check_destroyed(first, 4, total);
    gc_teardown();
}

/* ------------------------------------------------------------------ */
/* 4. What clear cannot break, and long chains off garbage.           */

static void test_clear_and_chains(void)
{
    gc_setup(0);
    /* One member with clear is enough to break a ring. */
    node *a = make_of(&noclear_type), *b = make(), *c = make_of(&noclear_type);
    link_to(a, 0, b);
    link_to(b, 0, c);
    link_to(c, 0, a);
    frt_decref(&a->ob);
    frt_decref(&b->ob);
    frt_decref(&c->ob);
    CHECK_EQ(frt_gc_collect(2), 3);
    check_destroyed(0, 3, 3);

    /* Without clear anywhere (as CPython without tp_clear) the pair stays,
     * and every full run finds it again. */
    node *p = make_of(&noclear_type), *q = make_of(&noclear_type); /* ids 3, 4 */
    link_to(p, 0, q);
    link_to(q, 0, p);
    frt_decref(&p->ob);
    frt_decref(&q->ob);
    frt_gc_stats s0[3], s1[3];
    frt_gc_get_stats(s0);
    CHECK_EQ(frt_gc_collect(2), 2);
    CHECK_EQ(frt_gc_collect(2), 2);
    frt_gc_get_stats(s1);
    CHECK_EQ(s1[2].collections - s0[2].collections, 2);
    CHECK_EQ(atomic_load(&destroyed), 3);
    CHECK_EQ(frt_refcount(&p->ob), 1);
    /* Broken by hand, it goes by its counts. */
    frt_incref(&p->ob);
    node_clear(&p->ob); /* q goes, and with it q's reference to p */
    CHECK_EQ(atomic_load(&destroyed), 4);
    frt_decref(&p->ob);
    CHECK_EQ(atomic_load(&destroyed), 5);
    CHECK_EQ(frt_gc_collect(2), 0);

    /* A long chain hanging off a ring: found and freed without recursion,
     * by a young and by a full run. */
    const long len = SCALED(200000);
    for (int gen = 0; gen <= 2; gen += 2) {
        long first = atomic_load(&next_id), before = atomic_load(&destroyed);
        node **r = ring(3);
        node *prev = r[1];
        frt_incref(&prev->ob);
        for (long i = 0; i < len; i++) {
            node *x = make();
            link_to(prev, 1, x);
            frt_decref(&prev->ob);
            prev = x;
        }
        frt_decref(&prev->ob);
        drop_all(r, 3);
        CHECK_EQ(atomic_load(&destroyed), before);
        CHECK_EQ(frt_gc_collect(gen), len + 3);
        check_destroyed(first, len + 3, before + len + 3);
    }

    /* A long chain leading into a ring keeps the ring alive while we hold
     * its head (the mark phase walks it without recursion), then it all
     * goes by its counts except the ring. */
    long first = atomic_load(&next_id), before = atomic_load(&destroyed);
    node **r = ring(4);
    node *head = make(), *cur = head;
    frt_incref(&cur->ob);
    for (long i = 0; i < len; i++) {
        node *x = make();
        link_to(cur, 0, x);
        frt_decref(&cur->ob);
        cur = x;
    }
    link_to(cur, 0, r[2]);
    frt_decref(&cur->ob);
    drop_all(r, 4);
    CHECK_EQ(frt_gc_collect(0), 0);
    CHECK_EQ(frt_gc_collect(2), 0);
    CHECK_EQ(atomic_load(&destroyed), before);
    frt_decref(&head->ob); /* the chain goes now */
    CHECK_EQ(atomic_load(&destroyed), before + len + 1);
    CHECK_EQ(frt_gc_collect(2), 4);
    check_destroyed(first, len + 5, before + len + 5);
    gc_teardown();
}

/* ------------------------------------------------------------------ */
/* 5. Shutdown collects what was left behind.                         */

static void test_shutdown(void)
{
    /* Rings and a self-cycle left behind: frt_shutdown runs a final full
     * collection and reports nothing alive. */
    gc_setup(0);
    node **r = ring(3);
    drop_all(r, 3);
    r = ring(7);
    drop_all(r, 7);
    node *s = make();
    link_to(s, 0, s);
    frt_decref(&s->ob);
    node *keep = make(); /* freed by its count later */
    r = ring(100);
    drop_all(r, 100);
    frt_decref(&keep->ob);
    CHECK_EQ(atomic_load(&destroyed), 1);
    CHECK_EQ(frt_shutdown(), 0);
    check_destroyed(0, 112, 112);

    /* The same with automatic collection on and garbage kept by SAVEALL:
     * shutdown drops the garbage list and collects it. */
    frt_config cfg;
    frt_config_default(&cfg);
    CHECK_EQ(frt_init(&cfg), 0);
    CHECK_EQ(frt_gc_isenabled(), 1);
    reset_counts();
    frt_gc_set_debug(FRT_GC_DEBUG_SAVEALL);
    r = ring(9);
    drop_all(r, 9);
    CHECK_EQ(frt_gc_collect(2), 9);
    CHECK_EQ(frt_gc_garbage_count(), 9);
    r = ring(4);
    drop_all(r, 4);
    CHECK_EQ(atomic_load(&destroyed), 0);
    CHECK_EQ(frt_shutdown(), 0);
    check_destroyed(0, 13, 13);

    /* A new runtime starts with fresh collector state. */
    gc_setup(0);
    frt_gc_stats st[3];
    frt_gc_get_stats(st);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(st[i].collections, 0);
        CHECK_EQ(st[i].collected, 0);
    }
    CHECK_EQ(frt_gc_garbage_count(), 0);
    CHECK_EQ(frt_gc_get_debug(), 0);
    gc_teardown();
}

int main(void)
{
    test_watchdog("test_gc_basic", 240);
    uint64_t t0 = test_now_ns();
    test_self_cycles();
    test_rings();
    test_held_from_outside();
    test_clear_and_chains();
    test_shutdown();
    fprintf(stderr, "test_gc_basic: %.2f s\n", (double)(test_now_ns() - t0) / 1e9);
    TEST_PASS("test_gc_basic");
    return 0;
}
