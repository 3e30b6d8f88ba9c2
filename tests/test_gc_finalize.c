/* PEP 442 finalizers under the cycle collector.
 *
 * A ring's members are all finalized exactly once, before any of them is
 * cleared or destroyed; a finalizer that resurrects its object (or another
 * one) keeps it and everything it reaches alive, finalized and never
 * finalized again, to be freed later by a plain decref or by the next
 * collection; finalizers that allocate and build new cycles (found by the
 * next run), that allocate past the threshold (no nested automatic run),
 * or that call frt_gc_collect (0: no recursion); finalizers with
 * DEBUG_SAVEALL; and what frt_shutdown does with them.
 *
 * What collect returns, the stats and info.collected leave out what a
 * finalizer resurrected, as CPython does (test_gc's
 * test_resurrection_does_not_block_cleanup_of_other_objects). */
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

enum fin_mode {
    FIN_PLAIN,           /* count the call */
    FIN_RESURRECT_SELF,  /* store self in saved[] */
    FIN_RESURRECT_BREAK, /* store self in saved[] and drop its own references */
    FIN_RESURRECT_REF0,  /* store what ref[0] points to in saved[] */
    FIN_SPAWN,           /* build a new ring of 2 (finalizing, depth - 1) if depth > 0 */
    FIN_SPAWN_PLAIN,     /* build a new ring of 3 plain nodes */
    FIN_COLLECT,         /* call frt_gc_collect(2) */
    FIN_ALLOC,           /* allocate (and keep) ALLOC_N tracked objects */
    FIN_PUBLISH,         /* hand self to another thread (published) */
    FIN_RESURRECT_SPAWN  /* store self in saved[] and build a ring of 3 plain nodes */
};

static long destroyed_seen_by_finalizers; /* max of destroyed - base at a finalize */
static long finalize_base;

#define MAX_SAVED 64
static frt_object *saved[MAX_SAVED];
static int nsaved;

static long collect_calls, collect_nonzero;
#define ALLOC_N 300
static frt_object *allocated[4 * ALLOC_N];
static int nallocated;
static int runs_seen; /* STOP callbacks */
static int runs_during_finalizer;

static void node_finalize(frt_object *self);
static frt_object *_Atomic published;

static const frt_type fin_type = {"fin", sizeof(node), node_traverse, node_clear, node_finalize,
                                  node_destroy};

static node *make_mode(const frt_type *t, int mode)
{
    node *n = make_of(t);
    n->mode = mode;
    return n;
}

/* A ring of n objects of type t and mode, garbage at once (ring_of, the
 * caller's reference dropped). */
static void ring_mode(const frt_type *t, int mode, int depth, long n)
{
    node *first = ring_of(t, n), *x = first;
    for (long i = 0; i < n; i++, x = (node *)x->ref[0]) {
        x->mode = mode;
        x->depth = depth;
    }
    frt_decref(&first->ob);
}

static void save(frt_object *o)
{
    CHECK(nsaved < MAX_SAVED);
    saved[nsaved++] = frt_newref(o);
}

static void node_finalize(frt_object *self)
{
    node *n = (node *)self;
    CHECK_EQ(n->magic, NODE_MAGIC);
    CHECK(frt_gc_is_finalized(self)); /* marked before the call */
    record_finalize(self);
    long seen = atomic_load(&destroyed) - finalize_base;
    if (seen > destroyed_seen_by_finalizers)
        destroyed_seen_by_finalizers = seen;
    int runs_before = runs_seen;
    switch (n->mode) {
    case FIN_PLAIN:
        break;
    case FIN_RESURRECT_SELF:
        save(self);
        break;
    case FIN_RESURRECT_BREAK:
        save(self);
        node_clear(self);
        break;
    case FIN_RESURRECT_REF0:
        save(n->ref[0]);
        break;
    case FIN_SPAWN:
        if (n->depth > 0)
            ring_mode(&fin_type, FIN_SPAWN, n->depth - 1, 2);
        break;
    case FIN_SPAWN_PLAIN:
        ring_mode(&node_type, FIN_PLAIN, 0, 3);
        break;
    case FIN_RESURRECT_SPAWN:
        save(self);
        ring_mode(&node_type, FIN_PLAIN, 0, 3);
        break;
    case FIN_COLLECT:
        collect_calls++;
        if (frt_gc_collect(2) != 0)
            collect_nonzero++;
        break;
    case FIN_PUBLISH:
        atomic_store(&published, frt_newref(self));
        break;
    case FIN_ALLOC:
        for (int i = 0; i < ALLOC_N; i++) {
            CHECK(nallocated < 4 * ALLOC_N);
            allocated[nallocated++] = &make_mode(&node_type, FIN_PLAIN)->ob;
        }
        break;
    }
    runs_during_finalizer += runs_seen - runs_before;
}

static void count_stops(int phase, const frt_gc_info *info, void *ctx)
{
    (void)info;
    (void)ctx;
    if (phase == FRT_GC_STOP)
        runs_seen++;
}

static void setup(int enabled)
{
    gc_setup(enabled);
    destroyed_seen_by_finalizers = 0;
    finalize_base = 0;
    nsaved = 0;
    collect_calls = collect_nonzero = 0;
    nallocated = 0;
    runs_seen = runs_during_finalizer = 0;
}

static void drop_saved(void)
{
    while (nsaved)
        frt_decref(saved[--nsaved]);
}

static void teardown(void)
{
    drop_saved();
    while (nallocated)
        frt_decref(allocated[--nallocated]);
    CHECK_EQ(frt_shutdown(), 0);
    CHECK_EQ(atomic_load(&bad_destroys), 0);
}

static void check_counts(long first, long n, int fin_each, int destroy_each)
{
    CHECK_EQ(atomic_load(&bad_destroys), 0);
    for (long i = first; i < first + n; i++) {
        if (atomic_load(&finalize_by_id[i]) != fin_each ||
            atomic_load(&destroy_by_id[i]) != destroy_each) {
            fprintf(stderr, "test_gc_finalize: object %ld finalized %d, destroyed %d times (want %d, %d)\n",
                    i, atomic_load(&finalize_by_id[i]), atomic_load(&destroy_by_id[i]), fin_each,
                    destroy_each);
            exit(1);
        }
    }
}

/* ------------------------------------------------------------------ */
/* 1. Rings die: every member finalized once, all before any destroy.  */

static void test_ring_finalized_once(void)
{
    setup(0);
    /* Outside any cycle: the plain decref path. */
    node *a = make_mode(&fin_type, FIN_PLAIN);
    CHECK(!frt_gc_is_finalized(&a->ob));
    frt_decref(&a->ob);
    check_counts(0, 1, 1, 1);

    finalize_base = atomic_load(&destroyed);
    ring_mode(&fin_type, FIN_PLAIN, 0, 10); /* ids 1..10 */
    CHECK_EQ(atomic_load(&finalized), 1);
    CHECK_EQ(frt_gc_collect(2), 10);
    check_counts(1, 10, 1, 1);
    CHECK_EQ(atomic_load(&finalized), 11);
    CHECK_EQ(atomic_load(&destroyed), 11);
    CHECK_EQ(destroyed_seen_by_finalizers, 0);

    /* A ring of 100 alternating finalizing and plain members. */
    node *tmp[100];
    for (int i = 0; i < 100; i++)
        tmp[i] = make_mode(i % 2 ? &node_type : &fin_type, FIN_PLAIN); /* ids 11..110 */
    for (int i = 0; i < 100; i++)
        link_to(tmp[i], 0, tmp[(i + 1) % 100]);
    for (int i = 0; i < 100; i++)
        frt_decref(&tmp[i]->ob);
    finalize_base = atomic_load(&destroyed);
    CHECK_EQ(frt_gc_collect(0), 100);
    for (int i = 0; i < 100; i++)
        check_counts(11 + i, 1, i % 2 ? 0 : 1, 1);
    CHECK_EQ(atomic_load(&finalized), 61);
    CHECK_EQ(atomic_load(&destroyed), 111);
    CHECK_EQ(destroyed_seen_by_finalizers, 0);
    CHECK_EQ(frt_gc_collect(2), 0);
    teardown();
}

/* ------------------------------------------------------------------ */
/* 2. Resurrection.                                                   */

static void test_resurrect_self(void)
{
    setup(0);
    frt_gc_stats s0[3], s1[3];
    frt_gc_get_stats(s0);
    node *a = make_mode(&fin_type, FIN_RESURRECT_SELF); /* id 0 */
    link_to(a, 0, a);
    frt_decref(&a->ob);
    CHECK_EQ(frt_gc_collect(0), 0); /* found unreachable, then resurrected: not collected */
    CHECK_EQ(nsaved, 1);
    CHECK(saved[0] == &a->ob);
    check_counts(0, 1, 1, 0);
    CHECK(frt_gc_is_finalized(&a->ob));
    CHECK(frt_gc_is_tracked(&a->ob));
    CHECK_EQ(frt_refcount(&a->ob), 2); /* itself and saved[] */
    CHECK_EQ(a->ref[0], &a->ob);       /* not cleared */
    frt_gc_get_stats(s1);
    CHECK_EQ(s1[0].collected - s0[0].collected, 0);
    CHECK_EQ(s1[0].collections - s0[0].collections, 1);
    /* It survived a gen-0 run: it is in generation 1 now. */
    frt_object *out[4];
    CHECK_EQ(frt_gc_get_objects(1, out, 4), 1);
    CHECK(out[0] == &a->ob);
    frt_decref(out[0]);

    /* Still reachable from saved[]: nothing happens, not finalized again. */
    CHECK_EQ(frt_gc_collect(2), 0);
    check_counts(0, 1, 1, 0);

    /* Garbage again: collected without a second finalize. */
    drop_saved();
    CHECK_EQ(atomic_load(&destroyed), 0);
    CHECK_EQ(frt_gc_collect(2), 1);
    check_counts(0, 1, 1, 1);
    CHECK_EQ(atomic_load(&finalized), 1);
    teardown();
}

static void test_resurrect_then_decref(void)
{
    setup(0);
    /* a <-> b; a's finalizer saves a and drops a -> b. b is not reachable
     * from a any more: it is collected, a lives on. */
    node *a = make_mode(&fin_type, FIN_RESURRECT_BREAK); /* id 0 */
    node *b = make_mode(&fin_type, FIN_PLAIN);           /* id 1 */
    link_to(a, 0, b);
    link_to(b, 0, a);
    frt_decref(&a->ob);
    frt_decref(&b->ob);
    CHECK_EQ(frt_gc_collect(2), 1); /* b; a was resurrected */
    check_counts(0, 1, 1, 0);
    check_counts(1, 1, 1, 1);
    CHECK_EQ(frt_refcount(&a->ob), 1); /* only saved[]: b's reference went with b */
    CHECK(frt_gc_is_finalized(&a->ob));
    /* A plain decref frees it now: destroy runs, finalize does not. */
    drop_saved();
    check_counts(0, 1, 1, 1);
    CHECK_EQ(atomic_load(&finalized), 2);
    CHECK_EQ(atomic_load(&destroyed), 2);

    /* A resurrected object that is not in a cycle any more is freed by its
     * count, also when it is the only member. */
    node *c = make_mode(&fin_type, FIN_RESURRECT_BREAK); /* id 2 */
    link_to(c, 0, c);
    frt_decref(&c->ob);
    CHECK_EQ(frt_gc_collect(2), 0);
    check_counts(2, 1, 1, 0);
    CHECK_EQ(frt_refcount(&c->ob), 1);
    drop_saved();
    check_counts(2, 1, 1, 1);
    teardown();
}

static void test_resurrect_ring(void)
{
    setup(0);
    /* One member of a ring saves itself: all it reaches, the whole ring,
     * comes back; every member was finalized (all finalizers run before
     * the resurrection check), none is cleared. */
    node *v[5];
    node *tmp[5];
    for (int i = 0; i < 5; i++)
        tmp[i] = make_mode(&fin_type, i == 2 ? FIN_RESURRECT_SELF : FIN_PLAIN); /* ids 0..4 */
    for (int i = 0; i < 5; i++)
        link_to(tmp[i], 0, tmp[(i + 1) % 5]);
    memcpy(v, tmp, sizeof v);
    for (int i = 0; i < 5; i++)
        frt_decref(&tmp[i]->ob);
    frt_gc_stats s0[3], s1[3];
    frt_gc_get_stats(s0);
    CHECK_EQ(frt_gc_collect(2), 0);
    frt_gc_get_stats(s1);
    CHECK_EQ(s1[2].collected - s0[2].collected, 0); /* nothing freed */
    check_counts(0, 5, 1, 0);
    for (int i = 0; i < 5; i++) {
        CHECK(v[i]->ref[0] == &v[(i + 1) % 5]->ob);
        CHECK(frt_gc_is_finalized(&v[i]->ob));
    }
    CHECK_EQ(frt_gc_collect(2), 0);
    check_counts(0, 5, 1, 0);
    drop_saved();
    CHECK_EQ(frt_gc_collect(2), 5);
    check_counts(0, 5, 1, 1);

    /* A finalizer that saves another object: that object and what it
     * reaches survive, the rest is collected. a <-> b, a -> c, c -> c; a
     * saves c (its ref[0]). */
    node *a = make_mode(&fin_type, FIN_RESURRECT_REF0); /* id 5 */
    node *b = make_mode(&fin_type, FIN_PLAIN);          /* id 6 */
    node *c = make_mode(&fin_type, FIN_PLAIN);          /* id 7 */
    link_to(a, 0, c);
    link_to(a, 1, b);
    link_to(b, 0, a);
    link_to(c, 0, c);
    frt_decref(&a->ob);
    frt_decref(&b->ob);
    frt_decref(&c->ob);
    frt_gc_get_stats(s0);
    CHECK_EQ(frt_gc_collect(2), 2); /* a and b freed, c resurrected */
    frt_gc_get_stats(s1);
    CHECK_EQ(s1[2].collected - s0[2].collected, 2);
    check_counts(5, 2, 1, 1);
    check_counts(7, 1, 1, 0);
    CHECK_EQ(frt_refcount(&c->ob), 2); /* itself and saved[]; a's went with a */
    drop_saved();
    CHECK_EQ(frt_gc_collect(2), 1);
    check_counts(7, 1, 1, 1);
    CHECK_EQ(atomic_load(&destroyed), 8);
    teardown();
}

/* CPython's test_resurrection_does_not_block_cleanup_of_other_objects:
 * a resurrected object is not counted as collected, in what collect
 * returns nor in the stats, and does not keep other garbage from being
 * collected. */
static void test_resurrection_not_counted(void)
{
    enum { N = 100 };
    setup(0);
    frt_gc_stats s0[3], s1[3];
    frt_gc_get_stats(s0);
    for (int i = 0; i < N; i++)
        ring_mode(&node_type, FIN_PLAIN, 0, 1); /* self-loops */
    CHECK_EQ(frt_gc_collect(2), N);
    frt_gc_get_stats(s1);
    CHECK_EQ(s1[2].collected - s0[2].collected, N);
    CHECK_EQ(s1[2].uncollectable - s0[2].uncollectable, 0);

    /* One that resurrects itself: nothing collected. */
    frt_gc_get_stats(s0);
    ring_mode(&fin_type, FIN_RESURRECT_SELF, 0, 1);
    CHECK_EQ(frt_gc_collect(2), 0);
    frt_gc_get_stats(s1);
    CHECK_EQ(s1[2].collected - s0[2].collected, 0);
    CHECK_EQ(s1[2].uncollectable - s0[2].uncollectable, 0);

    /* It does not keep the others from being collected. */
    frt_gc_get_stats(s0);
    for (int i = 0; i < N; i++)
        ring_mode(&node_type, FIN_PLAIN, 0, 1);
    ring_mode(&fin_type, FIN_RESURRECT_SELF, 0, 1);
    CHECK_EQ(frt_gc_collect(2), N);
    frt_gc_get_stats(s1);
    CHECK_EQ(s1[2].collected - s0[2].collected, N);
    CHECK_EQ(s1[2].uncollectable - s0[2].uncollectable, 0);
    CHECK_EQ(nsaved, 2);

    /* Dropped, the two resurrected ones are collected (not finalized again). */
    frt_gc_get_stats(s0);
    drop_saved();
    CHECK_EQ(frt_gc_collect(2), 2);
    frt_gc_get_stats(s1);
    CHECK_EQ(s1[2].collected - s0[2].collected, 2);
    CHECK_EQ(atomic_load(&finalized), 2);
    CHECK_EQ(atomic_load(&destroyed), 2 * N + 2);
    teardown();
}

/* A finalizer hands its object to another thread, which untracks it while
 * the collection that resurrected it goes on (issue 14, item 3). The
 * collector must have written the object's bits while the world was
 * stopped: a write after the restart races the untrack (TSan reports it)
 * and could set the tracked bit again. The untrack happens while another
 * garbage object's clear() runs, after the resurrection check; the clear
 * learns it is done through a relaxed load on purpose, so the test itself
 * orders nothing between the untrack and the collector's later work. */
static _Atomic int untrack_go, untrack_done, untrack_finish;
static _Atomic int untrack_stuck = -1;

static void signal_clear(frt_object *self)
{
    atomic_store_explicit(&untrack_go, 1, memory_order_release);
    for (unsigned i = 0; !atomic_load_explicit(&untrack_done, memory_order_relaxed); i++)
        test_pause(i);
    node_clear(self);
}

static const frt_type signal_type = {"fin.signal", sizeof(node), node_traverse, signal_clear, NULL,
                                     node_destroy};

static void *untracker(void *arg)
{
    (void)arg;
    CHECK_EQ(frt_thread_attach(), 0);
    frt_object *x;
    for (unsigned i = 0; !(x = atomic_load(&published)); i++) {
        frt_safepoint(); /* the collector stops the world twice meanwhile */
        test_pause(i);
    }
    for (unsigned i = 0; !atomic_load_explicit(&untrack_go, memory_order_acquire); i++) {
        frt_safepoint();
        test_pause(i);
    }
    frt_gc_untrack(x);
    atomic_store_explicit(&untrack_done, 1, memory_order_relaxed);
    for (unsigned i = 0; !atomic_load(&untrack_finish); i++) {
        frt_safepoint();
        test_pause(i);
    }
    atomic_store(&untrack_stuck, !frt_gc_is_tracked(x));
    node_clear(x); /* untracked: only its count can free it */
    frt_decref(x);
    frt_thread_detach();
    return NULL;
}

static void test_resurrect_untrack_elsewhere(void)
{
    setup(0);
    pthread_t t = test_spawn(untracker, NULL);
    ring_mode(&fin_type, FIN_PUBLISH, 0, 1);
    ring_mode(&signal_type, FIN_PLAIN, 0, 1);
    CHECK_EQ(frt_gc_collect(2), 1); /* the signal node; the other was resurrected */
    atomic_store(&untrack_finish, 1);
    test_join(t);
    CHECK_EQ(atomic_load(&untrack_stuck), 1);
    CHECK_EQ(atomic_load(&destroyed), 2);
    teardown();
}

/* ------------------------------------------------------------------ */
/* 3. Finalizers that build new cycles: the next run finds them.       */

static void test_finalizers_spawn(void)
{
    setup(0);
    ring_mode(&fin_type, FIN_SPAWN_PLAIN, 0, 4);
    CHECK_EQ(frt_gc_collect(2), 4);
    CHECK_EQ(atomic_load(&destroyed), 4);
    CHECK_EQ(atomic_load(&next_id), 16);
    CHECK_EQ(frt_gc_get_objects(0, NULL, 0), 12); /* new objects are young */
    CHECK_EQ(frt_gc_collect(0), 12);
    CHECK_EQ(atomic_load(&destroyed), 16);
    CHECK_EQ(atomic_load(&finalized), 4);

    /* Rings whose finalizers build rings like themselves, two levels deep. */
    long first = atomic_load(&next_id);
    ring_mode(&fin_type, FIN_SPAWN, 2, 2);
    CHECK_EQ(frt_gc_collect(2), 2);
    CHECK_EQ(frt_gc_collect(2), 4);
    CHECK_EQ(frt_gc_collect(2), 8);
    CHECK_EQ(frt_gc_collect(2), 0);
    CHECK_EQ(atomic_load(&next_id) - first, 14);
    check_counts(first, 14, 1, 1);
    CHECK_EQ(atomic_load(&destroyed), 30);
    teardown();
}

/* ------------------------------------------------------------------ */
/* 4. Finalizers that collect, or allocate past the threshold.         */

static void test_finalizer_collects(void)
{
    setup(0);
    CHECK_EQ(frt_gc_callback_add(count_stops, NULL), 0);
    ring_mode(&fin_type, FIN_COLLECT, 0, 3); /* ids 0..2 */
    CHECK_EQ(frt_gc_collect(2), 3);
    CHECK_EQ(collect_calls, 3);
    CHECK_EQ(collect_nonzero, 0);
    CHECK_EQ(runs_seen, 1);
    check_counts(0, 3, 1, 1);

    /* Finalized by a plain decref, with garbage around: no collection
     * runs from inside the finalizer either. */
    ring_mode(&node_type, FIN_PLAIN, 0, 6);    /* ids 3..8 */
    node *x = make_mode(&fin_type, FIN_COLLECT); /* id 9 */
    frt_decref(&x->ob);
    CHECK_EQ(collect_calls, 4);
    CHECK_EQ(collect_nonzero, 0);
    CHECK_EQ(runs_seen, 1);
    check_counts(9, 1, 1, 1);
    CHECK_EQ(atomic_load(&destroyed), 4);
    CHECK_EQ(frt_gc_collect(2), 6);
    CHECK_EQ(atomic_load(&destroyed), 10);
    teardown();
}

static void test_finalizer_allocates(void)
{
    setup(1);
    CHECK_EQ(frt_gc_set_threshold(10, 1000, 1000), 0);
    CHECK_EQ(frt_gc_callback_add(count_stops, NULL), 0);
    frt_gc_disable();
    ring_mode(&fin_type, FIN_ALLOC, 0, 2); /* ids 0, 1 */
    frt_gc_enable();
    /* 600 tracked allocations inside the finalizers, t0 = 10: no nested
     * automatic run. */
    CHECK_EQ(frt_gc_collect(2), 2);
    CHECK_EQ(nallocated, 2 * ALLOC_N);
    CHECK_EQ(runs_during_finalizer, 0);
    CHECK_EQ(runs_seen, 1);
    check_counts(0, 2, 1, 1);
    /* Counted all the same: 600 allocations. The ring's 2 frees are the
     * collector's own, which do not lower the count (tracking.c). */
    size_t c[3];
    frt_gc_get_count(c);
    CHECK_EQ(c[0], 2 * ALLOC_N);
    /* Outside, the next count flush starts a run at once. */
    frt_object *more[64];
    int n = 0;
    while (runs_seen == 1) {
        CHECK(n < 64);
        more[n++] = &make_mode(&node_type, FIN_PLAIN)->ob;
    }
    CHECK_EQ(runs_seen, 2);
    while (n)
        frt_decref(more[--n]);
    CHECK_EQ(atomic_load(&bad_destroys), 0);
    teardown();
}

/* ------------------------------------------------------------------ */
/* 5. SAVEALL keeps finalized garbage; freed later without a second    */
/*    finalize.                                                        */

static void test_saveall_finalized(void)
{
    setup(0);
    frt_gc_set_debug(FRT_GC_DEBUG_SAVEALL);
    ring_mode(&fin_type, FIN_PLAIN, 0, 3);
    CHECK_EQ(frt_gc_collect(2), 3);
    check_counts(0, 3, 1, 0);
    CHECK_EQ(frt_gc_garbage_count(), 3);
    frt_object *g = frt_gc_garbage_get(1);
    CHECK(g != NULL);
    CHECK(frt_gc_is_finalized(g));
    frt_decref(g);
    frt_gc_set_debug(0);
    frt_gc_garbage_clear();
    CHECK_EQ(atomic_load(&destroyed), 0);
    CHECK_EQ(frt_gc_collect(2), 3);
    check_counts(0, 3, 1, 1);
    teardown();
}

/* ------------------------------------------------------------------ */
/* 6. Shutdown: finalizers of leftover cycles run once; what a         */
/*    finalizer resurrects for good is reported alive.                 */

static void test_shutdown(void)
{
    setup(1);
    ring_mode(&fin_type, FIN_PLAIN, 0, 7); /* ids 0..6 */
    ring_mode(&node_type, FIN_PLAIN, 0, 2); /* ids 7, 8 */
    CHECK_EQ(frt_shutdown(), 0);
    check_counts(0, 7, 1, 1);
    check_counts(7, 2, 0, 1);
    CHECK_EQ(atomic_load(&destroyed), 9);

    setup(0);
    node *a = make_mode(&fin_type, FIN_RESURRECT_SELF); /* id 0 */
    link_to(a, 0, a);
    frt_decref(&a->ob);
    ring_mode(&fin_type, FIN_PLAIN, 0, 3); /* ids 1..3 */
    CHECK_EQ(frt_shutdown(), 1);               /* a, kept by saved[] */
    check_counts(0, 1, 1, 0);
    check_counts(1, 3, 1, 1);
    nsaved = 0; /* its memory went with the runtime */
    CHECK_EQ(atomic_load(&bad_destroys), 0);

    /* A run that only resurrects collects nothing, but its finalizer made
     * garbage: shutdown collects again. */
    setup(0);
    node *b = make_mode(&fin_type, FIN_RESURRECT_SPAWN); /* id 0 */
    link_to(b, 0, b);
    frt_decref(&b->ob);
    CHECK_EQ(frt_shutdown(), 1); /* b; its ring (ids 1..3) is collected */
    check_counts(0, 1, 1, 0);
    check_counts(1, 3, 0, 1);
    nsaved = 0;
    CHECK_EQ(atomic_load(&bad_destroys), 0);
}

int main(void)
{
    test_watchdog("test_gc_finalize", 240);
    uint64_t t0 = test_now_ns();
    test_ring_finalized_once();
    test_resurrect_self();
    test_resurrect_then_decref();
    test_resurrect_ring();
    test_resurrection_not_counted();
    test_resurrect_untrack_elsewhere();
    test_finalizers_spawn();
    test_finalizer_collects();
    test_finalizer_allocates();
    test_saveall_finalized();
    test_shutdown();
    fprintf(stderr, "test_gc_finalize: %.2f s\n", (double)(test_now_ns() - t0) / 1e9);
    TEST_PASS("test_gc_finalize");
    return 0;
}
