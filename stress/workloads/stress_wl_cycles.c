/* cycles: threads building and dropping cyclic graphs while collections run.
 *
 * Each operation builds a graph of 2..12 container nodes: a ring, random
 * chords and self-loops, links to the thread's permanent anchor node, and
 * now and then a cross-thread edge to a node another thread published in
 * a shared exchange (so cycles span owners). Half the graphs are kept as
 * one of 16 roots (replacing, and so dropping, an older one), the rest are
 * dropped at once: cyclic garbage that only the collector can free. The
 * anchor points into recent graphs, the thread re-links nodes of graphs it
 * keeps, and every 256 operations it asks for a collection (generation 0,
 * 1 or 2) on top of the automatic ones. Only a node's creator writes its
 * fields; walks stop at other threads' nodes.
 *
 * Invariants: no node reachable from a root is ever freed (walks check the
 * tags); when quiescent, after one full collection a second finds nothing,
 * the nodes still alive are exactly those reachable from the anchors, the
 * roots and the exchange, and each one's refcount equals its in-edges from
 * live nodes plus the roots that hold it. */
#include "stress.h"

#include <stdlib.h>
#include <string.h>

enum { K_NODE };
#define ROOTS 16
#define XSLOTS 64
#define MAXG 12
#define ANCHOR_SLOTS 4
#define WALK 32

typedef struct cycles_shared {
    _Atomic(frt_object *) x[XSLOTS];
} cycles_shared;

typedef struct cycles_thread {
    stress_obj *anchor;
    stress_obj *root[ROOTS]; /* one reference each */
    uint64_t next_id;
} cycles_thread;

static const frt_type node_type = {"stress.cycles.node", sizeof(stress_obj), stress_obj_traverse,
                                   stress_obj_clear, NULL, stress_obj_destroy};

static stress_obj *new_node(stress_case *c, stress_worker *w, cycles_thread *me, unsigned nref)
{
    return stress_obj_new(c, &node_type, K_NODE, nref, 0, w->index,
                          (uint64_t)w->index << 40 | me->next_id++);
}

static int setup(stress_case *c)
{
    c->shared = calloc(1, sizeof(cycles_shared));
    return c->shared ? 0 : -1;
}

static void thread_init(stress_case *c, stress_worker *w)
{
    cycles_thread *me = w->state;
    me->anchor = new_node(c, w, me, ANCHOR_SLOTS);
}

static void set_ref(stress_obj *n, unsigned slot, frt_object *target_owned)
{
    frt_object *old = n->ref[slot];
    n->ref[slot] = target_owned;
    frt_xdecref(old);
}

/* Follow ref[0] from o through this thread's own nodes, checking them. */
static stress_obj *walk(stress_case *c, stress_worker *w, stress_obj *o, unsigned steps)
{
    for (unsigned i = 0; i < steps; i++) {
        if (!stress_obj_ok(o, K_NODE)) {
            stress_corrupt(c, "cycles/reachable", o, K_NODE);
            return NULL;
        }
        stress_obj *next = (stress_obj *)o->ref[0];
        if (!next || next->creator != w->index)
            return o;
        o = next;
    }
    return o;
}

static void build(stress_case *c, stress_worker *w, cycles_thread *me, cycles_shared *sh)
{
    stress_obj *n[MAXG];
    unsigned k = 2 + stress_below(&w->rng, MAXG - 1);
    for (unsigned i = 0; i < k; i++) {
        n[i] = new_node(c, w, me, 2 + stress_below(&w->rng, 3));
        if (!n[i]) {
            while (i--)
                frt_decref(&n[i]->ob);
            return;
        }
    }
    for (unsigned i = 0; i < k; i++) {
        set_ref(n[i], 0, frt_newref(&n[(i + 1) % k]->ob)); /* the ring */
        uint32_t r = stress_below(&w->rng, 8);
        if (r < 4) /* a chord, or a self-loop */
            set_ref(n[i], 1, frt_newref(&n[stress_below(&w->rng, k)]->ob));
        if (n[i]->nref > 2 && r == 7)
            set_ref(n[i], 2, frt_newref(&me->anchor->ob));
    }
    uint32_t r = stress_below(&w->rng, 64);
    if (r < 8) { /* take a node someone published: a cross-thread edge */
        frt_object *x = atomic_exchange(&sh->x[stress_below(&w->rng, XSLOTS)], NULL);
        if (x) {
            stress_obj *last = n[k - 1];
            if (!last->ref[last->nref - 1])
                last->ref[last->nref - 1] = x; /* the exchange's reference moves here */
            else
                frt_decref(x);
        }
    } else if (r < 16) { /* publish one of ours */
        frt_object *old = atomic_exchange(&sh->x[stress_below(&w->rng, XSLOTS)],
                                          frt_newref(&n[stress_below(&w->rng, k)]->ob));
        frt_xdecref(old);
    }
    r = stress_below(&w->rng, 16);
    if (r < 8) { /* keep it, dropping an older graph */
        unsigned slot = stress_below(&w->rng, ROOTS);
        stress_obj *old = me->root[slot];
        me->root[slot] = (stress_obj *)frt_newref(&n[0]->ob);
        if (old)
            frt_decref(&old->ob);
    }
    if (r == 8 || r == 9) /* the anchor points into it: anchor -> graph -> anchor cycles */
        set_ref(me->anchor, stress_below(&w->rng, ANCHOR_SLOTS),
                frt_newref(&n[stress_below(&w->rng, k)]->ob));
    if (r >= 12) { /* re-link a node of a graph we keep */
        stress_obj *root = me->root[stress_below(&w->rng, ROOTS)];
        if (root) {
            stress_obj *m = walk(c, w, root, stress_below(&w->rng, 8));
            if (m && m->creator == w->index) {
                unsigned slot = 1 + stress_below(&w->rng, m->nref - 1u);
                uint32_t t = stress_below(&w->rng, 4);
                set_ref(m, slot, t == 0 ? NULL : frt_newref(&(t == 1 ? m : n[0])->ob));
            }
        }
    }
    for (unsigned i = 0; i < k; i++)
        frt_decref(&n[i]->ob); /* what is not kept is garbage now */
}

static void run(stress_case *c, stress_worker *w)
{
    cycles_thread *me = w->state;
    cycles_shared *sh = c->shared;
    if (!me->anchor)
        return;
    while (stress_continue(c, w)) {
        for (int b = 0; b < 8; b++)
            build(c, w, me, sh);
        stress_ops_add(w, 8);
        uint64_t ops = atomic_load_explicit(&w->ops, memory_order_relaxed);
        stress_obj *root = me->root[stress_below(&w->rng, ROOTS)];
        if (root)
            walk(c, w, root, WALK);
        walk(c, w, me->anchor, 1);
        if (ops % 256 == 0) {
            uint32_t r = stress_below(&w->rng, 10);
            long found = frt_gc_collect(r < 7 ? 0 : r < 9 ? 1 : 2);
            STRESS_CHECK(c, found >= 0, "gc", "frt_gc_collect returned %ld", found);
        }
        stress_fault_point(c, w, &me->anchor->ob);
        frt_safepoint();
    }
}

/* --- the quiescent check: the live set and its exact counts ---------- */

typedef struct live_set {
    frt_object **key;
    uint32_t *expect;
    size_t cap, n;
    frt_object **stack;
    size_t sp;
    int overflow;
} live_set;

static size_t slot_of(live_set *s, frt_object *o)
{
    size_t h = ((uintptr_t)o >> 4) * 0x9e3779b97f4a7c15ull;
    size_t i = h & (s->cap - 1);
    while (s->key[i] && s->key[i] != o)
        i = (i + 1) & (s->cap - 1);
    return i;
}

/* One more reference to o from a live node or a root. */
static void add_ref(live_set *s, frt_object *o)
{
    size_t i = slot_of(s, o);
    if (!s->key[i]) {
        if (s->n + 1 > s->cap / 2) {
            s->overflow = 1;
            return;
        }
        s->key[i] = o;
        s->n++;
        s->stack[s->sp++] = o;
    }
    s->expect[i]++;
}

static void verify_held(stress_case *c)
{
    cycles_shared *sh = c->shared;
    long found = frt_gc_collect(2);
    long again = frt_gc_collect(2);
    STRESS_CHECK(c, found >= 0 && again == 0, "gc",
                 "with every worker quiescent a full collection found %ld, and a second one %ld "
                 "(expected 0)", found, again);
    uint64_t made = stress_sum_created(c, K_NODE), gone = stress_sum_destroyed(c, K_NODE);
    if (gone > made) {
        stress_fail(c, "destroyed", "%llu nodes destroyed but only %llu made",
                    (unsigned long long)gone, (unsigned long long)made);
        return;
    }
    uint64_t alive = made - gone;
    live_set s = {0};
    s.cap = 64;
    while (s.cap < 2 * (alive + (uint64_t)c->nthreads * (ROOTS + 1) + XSLOTS) + 64)
        s.cap *= 2;
    s.key = calloc(s.cap, sizeof *s.key);
    s.expect = calloc(s.cap, sizeof *s.expect);
    s.stack = calloc(s.cap, sizeof *s.stack);
    if (!s.key || !s.expect || !s.stack) {
        stress_fail(c, "alloc", "no memory for the live-set check");
        goto out;
    }
    for (unsigned i = 0; i < c->nthreads; i++) {
        cycles_thread *t = c->w[i].state;
        if (!t)
            continue;
        if (t->anchor)
            add_ref(&s, &t->anchor->ob);
        for (unsigned r = 0; r < ROOTS; r++)
            if (t->root[r])
                add_ref(&s, &t->root[r]->ob);
        for (unsigned h = 0; h < atomic_load(&c->w[i].nholds); h++)
            for (unsigned k = 0; k < atomic_load(&c->w[i].holds[h].n); k++)
                add_ref(&s, atomic_load(&c->w[i].holds[h].o));
    }
    for (unsigned i = 0; i < XSLOTS; i++) {
        frt_object *x = atomic_load(&sh->x[i]);
        if (x)
            add_ref(&s, x);
    }
    while (s.sp && !s.overflow) {
        stress_obj *o = (stress_obj *)s.stack[--s.sp];
        if (!stress_obj_ok(o, K_NODE)) {
            stress_corrupt(c, "cycles/live", o, K_NODE);
            goto out;
        }
        for (unsigned k = 0; k < o->nref; k++)
            if (o->ref[k])
                add_ref(&s, o->ref[k]);
    }
    if (s.overflow) {
        stress_fail(c, "live", "more nodes are reachable than the %llu alive (made - destroyed)",
                    (unsigned long long)alive);
        goto out;
    }
    unsigned reported = 0;
    for (size_t i = 0; i < s.cap; i++) {
        if (!s.key[i])
            continue;
        size_t rc = frt_refcount(s.key[i]);
        if (rc != s.expect[i] && reported++ < 5)
            stress_fail(c, "refcount",
                        "live node id %llu (thread %u) has refcount %zu; live nodes and roots hold "
                        "%u references to it",
                        (unsigned long long)((stress_obj *)s.key[i])->id,
                        ((stress_obj *)s.key[i])->creator, rc, s.expect[i]);
    }
    STRESS_CHECK(c, s.n == alive, "live",
                 "%llu nodes are alive (made - destroyed) after a full collection, but %zu are "
                 "reachable from the anchors, roots and exchange",
                 (unsigned long long)alive, s.n);
out:
    free(s.key);
    free(s.expect);
    free(s.stack);
}

static void thread_finish(stress_case *c, stress_worker *w)
{
    cycles_thread *me = w->state;
    for (unsigned r = 0; r < ROOTS; r++)
        if (me->root[r]) {
            frt_decref(&me->root[r]->ob);
            me->root[r] = NULL;
        }
    if (me->anchor)
        frt_decref(&me->anchor->ob); /* its cycles are left to the collector */
    me->anchor = NULL;
}

static void teardown(stress_case *c)
{
    cycles_shared *sh = c->shared;
    if (!sh)
        return;
    for (unsigned i = 0; i < XSLOTS; i++) {
        frt_object *x = atomic_exchange(&sh->x[i], NULL);
        frt_xdecref(x);
    }
    free(sh);
    c->shared = NULL;
}

static frt_object *fault_target(stress_case *c, stress_worker *w)
{
    cycles_thread *me = w->state;
    return me->anchor ? &me->anchor->ob : NULL;
}

const stress_workload stress_wl_cycles = {
    .name = "cycles",
    .what = "threads build cyclic graphs (rings, chords, cross-thread edges), keep some and drop "
            "the rest while automatic and explicit collections run",
    .op = "one graph of 2-12 nodes built, linked, kept or dropped",
    .brc_note = "graphs take edges to other threads' nodes, so dropping a graph (or the collector"
                " clearing one) hands those nodes' references back to their owners through the"
                " merge queue (a 2-thread profile: 6% in the queue push, 3% in merges; callgrind"
                " at 2 threads: 7970 instructions per op against 7229, the queue path about 500"
                " of them, a third of its pushes finding the owner blocked and merging for it), which the atomic build does not have",
    .kinds = {"node", NULL},
    .thread_state = sizeof(cycles_thread),
    .setup = setup,
    .thread_init = thread_init,
    .run = run,
    .verify_held = verify_held,
    .thread_finish = thread_finish,
    .teardown = teardown,
    .fault_target = fault_target,
};
