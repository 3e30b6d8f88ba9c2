/* What the collector tests (test_gc_*.c) share: a container type whose
 * objects carry an id, with destroy and finalize counts per id, so "freed
 * exactly once" is checked object by object; rings of them; and the
 * callbacks that observe collections. Header-only, like test_util.h: each
 * test is one program.
 *
 * A test may define before including it:
 *   GC_NODES_NREF  reference slots of a node from make() (default 2) */
#ifndef FRT_TESTS_GC_NODES_H
#define FRT_TESTS_GC_NODES_H

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include <frt/frt.h>

#include "check.h"
#include "test_util.h"

#ifndef GC_NODES_NREF
#define GC_NODES_NREF 2
#endif

#define NODE_MAGIC 0x6c0ffee
/* Enough for the largest test (test_gc_threads); reset_counts clears only
 * the ids handed out, so a test that makes few pays little for it. */
#define MAX_IDS (1L << 21)

typedef struct node {
    frt_object ob;
    long id;
    int magic;       /* NODE_MAGIC while alive: a destroy of anything else shows */
    int mode, depth; /* free for a test: what its finalizer does */
    int nref;
    frt_object *ref[]; /* nref slots, sized per object (test_gc_faults needs thousands) */
} node;

static _Atomic int destroy_by_id[MAX_IDS], finalize_by_id[MAX_IDS];
static _Atomic long destroyed, finalized, next_id;
static _Atomic long bad_destroys; /* twice, not a live node, or count not zero */

/* Every destroy goes through here; finalizers call record_finalize. Both
 * are counted, never asserted, as they may run on any thread and inside
 * the collector: the test checks bad_destroys afterwards. */
static inline void record_destroy(frt_object *self)
{
    node *n = (node *)self;
    if (n->magic != NODE_MAGIC || frt_refcount(self) != 0 || n->id < 0 || n->id >= MAX_IDS)
        atomic_fetch_add(&bad_destroys, 1);
    else if (atomic_fetch_add(&destroy_by_id[n->id], 1) != 0)
        atomic_fetch_add(&bad_destroys, 1);
    n->magic = 0;
    atomic_fetch_add(&destroyed, 1);
}

static inline void record_finalize(frt_object *self)
{
    node *n = (node *)self;
    if (n->magic != NODE_MAGIC || n->id < 0 || n->id >= MAX_IDS)
        atomic_fetch_add(&bad_destroys, 1);
    else
        atomic_fetch_add(&finalize_by_id[n->id], 1);
    atomic_fetch_add(&finalized, 1);
}

static int node_traverse(frt_object *self, frt_visit_fn visit, void *arg)
{
    node *n = (node *)self;
    for (int i = 0; i < n->nref; i++) {
        if (n->ref[i]) {
            int r = visit(n->ref[i], arg);
            if (r)
                return r;
        }
    }
    return 0;
}

static void node_clear(frt_object *self)
{
    node *n = (node *)self;
    for (int i = 0; i < n->nref; i++) {
        frt_object *r = n->ref[i];
        if (r) {
            n->ref[i] = NULL;
            frt_decref(r);
        }
    }
}

static void node_destroy(frt_object *self)
{
    record_destroy(self);
    node_clear(self);
}

/* A container. */
static const frt_type node_type = {"node", sizeof(node), node_traverse, node_clear, NULL,
                                   node_destroy};
/* Holds references but has no traverse: never tracked, so what it holds
 * counts as referenced from outside. (Not every test has boxes.) */
__attribute__((unused)) static const frt_type box_type = {"box", sizeof(node), NULL, NULL, NULL,
                                                          node_destroy};

/* Only ids handed out since the last reset can have counts. */
static inline void reset_counts(void)
{
    long n = atomic_load(&next_id);
    for (long i = 0; i < n && i < MAX_IDS; i++) {
        atomic_store_explicit(&destroy_by_id[i], 0, memory_order_relaxed);
        atomic_store_explicit(&finalize_by_id[i], 0, memory_order_relaxed);
    }
    atomic_store(&destroyed, 0);
    atomic_store(&finalized, 0);
    atomic_store(&bad_destroys, 0);
    atomic_store(&next_id, 0);
}

/* A node of type t with nref slots and extra bytes after them (a large
 * object when extra is past the largest size class). */
static inline node *make_sized(const frt_type *t, int nref, size_t extra)
{
    node *n = (node *)frt_new_var(t, (size_t)nref * sizeof(frt_object *) + extra);
    CHECK(n != NULL);
    n->id = atomic_fetch_add(&next_id, 1);
    CHECK(n->id < MAX_IDS);
    n->magic = NODE_MAGIC;
    n->nref = nref;
    return n;
}

static inline node *make_of(const frt_type *t)
{
    return make_sized(t, GC_NODES_NREF, 0);
}

static inline node *make(void)
{
    return make_of(&node_type);
}

/* A filled slot would leak its reference and break the test's counts. */
static inline void link_to(node *from, int slot, node *to)
{
    CHECK(slot >= 0 && slot < from->nref);
    CHECK(from->ref[slot] == NULL);
    from->ref[slot] = frt_newref(&to->ob);
}

/* n fresh nodes, node i -> node i+1 (slot 0), the last -> the first. The
 * caller keeps one reference to each (drop_all). */
static inline node **ring(long n)
{
    node **v = malloc((size_t)n * sizeof *v);
    CHECK(v != NULL);
    for (long i = 0; i < n; i++)
        v[i] = make();
    for (long i = 0; i < n; i++)
        link_to(v[i], 0, v[(i + 1) % n]);
    return v;
}

static inline void drop_all(node **v, long n)
{
    for (long i = 0; i < n; i++)
        frt_decref(&v[i]->ob);
    free(v);
}

/* The same shape of type t, built link by link: the caller keeps one
 * reference, to the first (the lowest id; slot 0 leads on in id order). */
static inline node *ring_of(const frt_type *t, long n)
{
    node *first = make_of(t), *prev = first;
    for (long i = 1; i < n; i++) {
        node *x = make_of(t);
        link_to(prev, 0, x);
        frt_decref(&x->ob);
        prev = x;
    }
    link_to(prev, 0, first);
    return first;
}

/* A ring of n nodes nobody else references. */
static inline void garbage_ring(long n)
{
    frt_decref(&ring_of(&node_type, n)->ob);
}

static inline int was_destroyed(long id)
{
    return atomic_load(&destroy_by_id[id]);
}

/* Ids first..first+n-1 destroyed exactly once and no bad destroy; a
 * failure names the object. */
static inline void check_destroyed_once(long first, long n)
{
    CHECK_EQ(atomic_load(&bad_destroys), 0);
    for (long i = first; i < first + n; i++) {
        if (was_destroyed(i) != 1) {
            fprintf(stderr, "%s: object %ld destroyed %d times\n", test_util_name, i,
                    was_destroyed(i));
            exit(1);
        }
    }
}

/* The same, and exactly total objects destroyed so far. */
static inline void check_destroyed(long first, long n, long total)
{
    check_destroyed_once(first, n);
    CHECK_EQ(atomic_load(&destroyed), total);
}

/* A fresh runtime. Automatic collections off (enabled 0) where every count
 * must be exact: checked, since a default left on would only show as a
 * flaky count. */
static inline void gc_setup(int enabled)
{
    frt_config cfg;
    frt_config_default(&cfg);
    cfg.gc_enabled = enabled;
    CHECK_EQ(frt_init(&cfg), 0);
    CHECK_EQ(frt_gc_isenabled(), enabled);
    reset_counts();
}

static inline void gc_teardown(void)
{
    CHECK_EQ(frt_shutdown(), 0);
    CHECK_EQ(atomic_load(&bad_destroys), 0);
}

/* ------------------------------------------------------------------ */
/* Observing collections.                                             */

/* Totals over STOP callbacks, atomic: they run on whichever thread
 * collects. The test zeroes them. */
static _Atomic long cb_runs, cb_collected, cb_uncollectable;

static inline void count_runs(int phase, const frt_gc_info *info, void *ctx)
{
    (void)ctx;
    if (phase != FRT_GC_STOP)
        return;
    atomic_fetch_add(&cb_runs, 1);
    atomic_fetch_add(&cb_collected, (long)info->collected);
    atomic_fetch_add(&cb_uncollectable, (long)info->uncollectable);
}

/* The callback log of a one-thread test: every phase in order, tagged
 * with the int ctx points to, so the order of several callbacks shows. */
typedef struct event {
    int phase, gen, tag;
    size_t collected, uncollectable;
    uint64_t pause_ns;
} event;
#define MAX_EVENTS 1024
static event events[MAX_EVENTS];
static int nevents;
static int collect_in_callback; /* the recorder calls frt_gc_collect too */
static long recursive_collects, recursive_nonzero;

static inline void recorder(int phase, const frt_gc_info *info, void *ctx)
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

static inline const event *last_stop(void)
{
    for (int i = nevents - 1; i >= 0; i--)
        if (events[i].phase == FRT_GC_STOP)
            return &events[i];
    CHECK(0);
    return NULL;
}

#endif
