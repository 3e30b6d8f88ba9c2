/* Weak references: the rules of docs/api.md with exact counts, on one thread and
 * across threads, and the order inside a collection (CPython gh-136189):
 * callbacks of weakrefs to garbage run before finalizers, weakrefs without
 * callbacks survive until the resurrection check, garbage weakrefs never
 * call back, weakrefs created by finalizers to garbage are cleared too.
 * Weakrefs to frozen, immortal and queued objects. The get-vs-last-decref
 * race has its own program (test_weakref_race.c). */
#include <frt/frt.h>

#include "test_util.h"

#define MAGIC 0x5eafu

/* A container with up to two strong references, optional finalizer. */
typedef struct node {
    frt_object ob;
    unsigned magic;
    int id;
    frt_object *ref[2];
} node;

#define MAX_NODES 64
static int destroyed[MAX_NODES], finalized[MAX_NODES];
static int order[16], norder; /* what ran, in order: 100 + id for finalizers, id for callbacks */
static int next_id;

static void note(int what)
{
    CHECK(norder < 16);
    order[norder++] = what;
}

static int node_traverse(frt_object *self, frt_visit_fn visit, void *arg)
{
    node *n = (node *)self;
    for (int i = 0; i < 2; i++)
        if (n->ref[i] && visit(n->ref[i], arg))
            return 1;
    return 0;
}

static void node_clear(frt_object *self)
{
    node *n = (node *)self;
    for (int i = 0; i < 2; i++) {
        frt_object *r = n->ref[i];
        n->ref[i] = NULL;
        frt_xdecref(r);
    }
}

static void node_destroy(frt_object *self)
{
    node *n = (node *)self;
    CHECK_EQ(n->magic, MAGIC);
    destroyed[n->id]++;
    node_clear(self);
    n->magic = 0;
}

/* Finalizer behaviour, chosen per test. */
static frt_object *resurrect_slot;          /* finalizer of node `resurrect_id` stores itself */
static int resurrect_id = -1;
static frt_weakref *probe_wr;               /* a finalizer checks what get(probe_wr) says */
static int probe_result = -1;
static frt_object *make_wr_target;          /* a finalizer makes a weakref to this */
static frt_weakref *made_wr;

static void wr_count_cb(frt_weakref *wr, void *ctx);

static void node_finalize(frt_object *self)
{
    node *n = (node *)self;
    finalized[n->id]++;
    note(100 + n->id);
    if (probe_wr && probe_result < 0) {
        frt_object *t = frt_weakref_get(probe_wr);
        probe_result = t != NULL;
        frt_xdecref(t);
    }
    if (n->id == resurrect_id)
        resurrect_slot = frt_newref(self);
    if (make_wr_target && !made_wr)
        made_wr = frt_weakref_new(make_wr_target, wr_count_cb, (void *)(intptr_t)50);
}

static const frt_type node_type = {"node", sizeof(node), node_traverse, node_clear, NULL, node_destroy};
static const frt_type fnode_type = {"fnode", sizeof(node), node_traverse, node_clear, node_finalize,
                                    node_destroy};

static node *mk(const frt_type *t)
{
    node *n = (node *)frt_new(t);
    CHECK(n != NULL);
    CHECK(next_id < MAX_NODES);
    n->id = next_id++;
    n->magic = MAGIC;
    return n;
}

static void link2(node *a, node *b) /* a <-> b */
{
    a->ref[0] = frt_newref(&b->ob);
    b->ref[0] = frt_newref(&a->ob);
}

static int cb_calls[64];
static int cb_saw_target; /* a callback found its weakref still pointing somewhere */

static void wr_count_cb(frt_weakref *wr, void *ctx)
{
    int slot = (int)(intptr_t)ctx;
    cb_calls[slot]++;
    note(slot);
    frt_object *t = frt_weakref_get(wr);
    if (t) {
        cb_saw_target = 1;
        frt_decref(t);
    }
}

static void reset(void)
{
    memset(destroyed, 0, sizeof destroyed);
    memset(finalized, 0, sizeof finalized);
    memset(cb_calls, 0, sizeof cb_calls);
    norder = 0;
    next_id = 0;
    cb_saw_target = 0;
    resurrect_slot = NULL;
    resurrect_id = -1;
    probe_wr = NULL;
    probe_result = -1;
    make_wr_target = NULL;
    made_wr = NULL;
    frt_gc_disable();
}

static void start(void)
{
    CHECK_EQ(frt_init(NULL), 0);
    reset();
}

static void finish(void)
{
    CHECK_EQ(frt_shutdown(), 0);
}

/* ------------------------------------------------------------------ */
/* The basics on one thread.                                          */

static void test_basics(void)
{
    start();
    node *t = mk(&node_type);
    CHECK_EQ(frt_weakref_count(&t->ob), 0);
    frt_weakref *w1 = frt_weakref_new(&t->ob, wr_count_cb, (void *)1);
    frt_weakref *w2 = frt_weakref_new(&t->ob, NULL, NULL);
    frt_weakref *w3 = frt_weakref_new(&t->ob, wr_count_cb, (void *)3);
    CHECK(w1 && w2 && w3);
    CHECK_EQ(frt_weakref_count(&t->ob), 3);
    CHECK_EQ(frt_refcount(&t->ob), 1);          /* weakrefs hold no reference */
    CHECK(frt_gc_is_tracked(frt_weakref_object(w1))); /* a weakref is a collectable object */
    CHECK(frt_weakref_from_object(frt_weakref_object(w2)) == w2);
    CHECK(frt_weakref_from_object(&t->ob) == NULL);

    frt_object *g = frt_weakref_get(w2);
    CHECK(g == &t->ob);
    CHECK_EQ(frt_refcount(&t->ob), 2);          /* a new strong reference */
    frt_decref(g);
    CHECK(frt_weakref_alive(w1));
    CHECK_EQ(frt_refcount(&t->ob), 1);

    /* A weakref that dies before its target never calls back. */
    frt_decref(frt_weakref_object(w3));
    CHECK_EQ(frt_weakref_count(&t->ob), 2);

    frt_decref(&t->ob);                          /* the last reference */
    CHECK_EQ(destroyed[0], 1);
    CHECK_EQ(cb_calls[1], 1);
    CHECK_EQ(cb_calls[3], 0);
    CHECK(!cb_saw_target);                       /* cleared before the callback ran */
    CHECK(frt_weakref_get(w1) == NULL);
    CHECK(frt_weakref_get(w2) == NULL);
    CHECK(!frt_weakref_alive(w2));
    frt_decref(frt_weakref_object(w1));
    frt_decref(frt_weakref_object(w2));

    /* Callbacks run newest first, each once; a weakref to a weakref works. */
    reset();
    t = mk(&node_type);
    frt_weakref *a = frt_weakref_new(&t->ob, wr_count_cb, (void *)5);
    frt_weakref *b = frt_weakref_new(&t->ob, wr_count_cb, (void *)6);
    frt_weakref *ww = frt_weakref_new(frt_weakref_object(a), wr_count_cb, (void *)7);
    frt_decref(&t->ob);
    CHECK_EQ(norder, 2);
    CHECK_EQ(order[0], 6);
    CHECK_EQ(order[1], 5);
    frt_decref(frt_weakref_object(a));           /* the weakref dies: its own weakref calls back */
    CHECK_EQ(cb_calls[7], 1);
    frt_decref(frt_weakref_object(b));
    frt_decref(frt_weakref_object(ww));

    /* Bad input. */
    CHECK(frt_weakref_get(NULL) == NULL);
    CHECK_EQ(frt_weakref_alive(NULL), 0);
    CHECK_EQ(frt_weakref_count(NULL), 0);
#if !FRT_DEBUG
    CHECK(frt_weakref_new(NULL, NULL, NULL) == NULL);
#endif
    finish();
}

/* ------------------------------------------------------------------ */
/* Across threads: the target dies on another thread, the callback runs  */
/* there; a weakref made on one thread and read on another.             */

static frt_weakref *x_wr;
static frt_object *x_target;
static _Atomic long x_cb_thread_ok;
static pthread_t x_dropper;

static void x_cb(frt_weakref *wr, void *ctx)
{
    (void)wr;
    (void)ctx;
    if (pthread_equal(pthread_self(), x_dropper))
        atomic_fetch_add(&x_cb_thread_ok, 1);
}

static void *x_drop(void *arg)
{
    (void)arg;
    x_dropper = pthread_self();
    CHECK_EQ(frt_thread_attach(), 0);
    frt_object *t = frt_weakref_get(x_wr);   /* a non-owner's get */
    CHECK(t == x_target);
    frt_decref(t);
    frt_make_shared(x_target);               /* not ours: FRT_ESTATE, harmless */
    frt_decref(x_target);                    /* the last reference, from a non-owner */
    frt_thread_detach();
    return NULL;
}

static void test_threads(void)
{
    start();
    node *t = mk(&node_type);
    CHECK_EQ(frt_make_shared(&t->ob), 0);    /* merged: the non-owner's decref frees it */
    x_target = &t->ob;
    x_wr = frt_weakref_new(x_target, x_cb, NULL);
    atomic_store(&x_cb_thread_ok, 0);
    test_join(test_spawn(x_drop, NULL));
    CHECK_EQ(destroyed[0], 1);
    CHECK_EQ(atomic_load(&x_cb_thread_ok), 1);
    CHECK(frt_weakref_get(x_wr) == NULL);
    frt_decref(frt_weakref_object(x_wr));
    finish();
}

/* ------------------------------------------------------------------ */
/* The collector's order.                                              */

static void test_gc_order(void)
{
    start();
    /* a <-> b garbage; wcb -> a with a callback, wplain -> a without. a's
     * finalizer probes wplain: still valid then (cleared only after the
     * resurrection check). The callback runs before the finalizers. */
    node *a = mk(&fnode_type), *b = mk(&fnode_type);
    link2(a, b);
    frt_weakref *wcb = frt_weakref_new(&a->ob, wr_count_cb, (void *)1);
    frt_weakref *wplain = frt_weakref_new(&a->ob, NULL, NULL);
    probe_wr = wplain;
    frt_decref(&a->ob);
    frt_decref(&b->ob);
    CHECK_EQ(frt_gc_collect(-1), 2);
    CHECK_EQ(cb_calls[1], 1);
    CHECK_EQ(order[0], 1);                   /* the callback first */
    CHECK_EQ(finalized[0] + finalized[1], 2);
    CHECK_EQ(probe_result, 1);               /* wplain still worked inside a finalizer */
    CHECK_EQ(destroyed[0] + destroyed[1], 2);
    CHECK(frt_weakref_get(wplain) == NULL);  /* and was cleared after */
    CHECK(!cb_saw_target);
    frt_decref(frt_weakref_object(wcb));
    frt_decref(frt_weakref_object(wplain));

    /* Resurrection: a's finalizer stores a. wplain stays valid, wcb was
     * cleared (its callback ran), nothing is destroyed. */
    reset();
    a = mk(&fnode_type);
    b = mk(&fnode_type);
    link2(a, b);
    wcb = frt_weakref_new(&a->ob, wr_count_cb, (void *)2);
    wplain = frt_weakref_new(&a->ob, NULL, NULL);
    frt_weakref *wb = frt_weakref_new(&b->ob, NULL, NULL);
    resurrect_id = a->id;
    frt_decref(&a->ob);
    frt_decref(&b->ob);
    CHECK_EQ(frt_gc_collect(-1), 0);          /* both resurrected: none collected */
    CHECK(resurrect_slot == &a->ob);
    CHECK_EQ(destroyed[0] + destroyed[1], 0);
    CHECK_EQ(cb_calls[2], 1);
    CHECK(frt_weakref_get(wcb) == NULL);
    frt_object *g = frt_weakref_get(wplain);
    CHECK(g == &a->ob);
    frt_decref(g);
    g = frt_weakref_get(wb);                  /* b is reachable from a: it survived too */
    CHECK(g == &b->ob);
    frt_decref(g);
    CHECK(frt_gc_is_finalized(&a->ob) && frt_gc_is_finalized(&b->ob));
    /* Drop it again: collected this time, finalizers do not run twice. */
    frt_object *keep = resurrect_slot;
    resurrect_slot = NULL;
    resurrect_id = -1;
    frt_decref(keep);
    CHECK_EQ(frt_gc_collect(-1), 2);
    CHECK_EQ(finalized[0], 1);
    CHECK_EQ(finalized[1], 1);
    CHECK_EQ(destroyed[0] + destroyed[1], 2);
    CHECK(frt_weakref_get(wplain) == NULL);
    CHECK(frt_weakref_get(wb) == NULL);
    frt_decref(frt_weakref_object(wcb));
    frt_decref(frt_weakref_object(wplain));
    frt_decref(frt_weakref_object(wb));

    /* A garbage weakref never calls back: c <-> d hold wg (a weakref with a
     * callback to c, and wx to x outside). x dies after the collection:
     * wx was cleared as garbage, so no callback either. */
    reset();
    node *c = mk(&node_type), *d = mk(&node_type), *x = mk(&node_type);
    c->ref[0] = frt_newref(&d->ob);
    d->ref[0] = frt_newref(&c->ob);
    frt_weakref *wg = frt_weakref_new(&c->ob, wr_count_cb, (void *)3);
    frt_weakref *wx = frt_weakref_new(&x->ob, wr_count_cb, (void *)4);
    c->ref[1] = frt_weakref_object(wg);       /* the cycle owns both weakrefs */
    d->ref[1] = frt_weakref_object(wx);
    frt_decref(&c->ob);
    frt_decref(&d->ob);
    CHECK_EQ(frt_gc_collect(-1), 4);          /* c, d and the two weakrefs */
    CHECK_EQ(cb_calls[3], 0);
    CHECK_EQ(frt_weakref_count(&x->ob), 0);
    frt_decref(&x->ob);
    CHECK_EQ(cb_calls[4], 0);
    CHECK_EQ(destroyed[0] + destroyed[1] + destroyed[2], 3);

    /* A weakref that a finalizer creates to garbage is cleared, silently. */
    reset();
    a = mk(&fnode_type);
    b = mk(&node_type);
    link2(a, b);
    make_wr_target = &b->ob;
    frt_decref(&a->ob);
    frt_decref(&b->ob);
    CHECK_EQ(frt_gc_collect(-1), 2);
    CHECK(made_wr != NULL);
    CHECK(frt_weakref_get(made_wr) == NULL);
    CHECK_EQ(cb_calls[50], 0);
    CHECK_EQ(destroyed[0] + destroyed[1], 2);
    frt_decref(frt_weakref_object(made_wr));
    finish();
}

/* A callback that resurrects its referent's neighbour through a plain
 * weakref: the neighbour, and all it reaches (the referent too), survive. */
static frt_weakref *nb_plain;
static frt_object *nb_kept;
static _Atomic long nb_allocated;

static void resurrect_neighbour_cb(frt_weakref *wr, void *ctx)
{
    (void)wr;
    (void)ctx;
    nb_kept = frt_weakref_get(nb_plain);
    /* Callbacks may allocate and make new garbage. */
    node *p = mk(&node_type), *q = mk(&node_type);
    link2(p, q);
    frt_decref(&p->ob);
    frt_decref(&q->ob);
    atomic_fetch_add(&nb_allocated, 2);
}

static void test_callback_resurrects(void)
{
    start();
    node *a = mk(&node_type), *b = mk(&node_type);
    link2(a, b);
    frt_weakref *wa = frt_weakref_new(&a->ob, resurrect_neighbour_cb, NULL);
    nb_plain = frt_weakref_new(&b->ob, NULL, NULL);
    frt_decref(&a->ob);
    frt_decref(&b->ob);
    CHECK_EQ(frt_gc_collect(-1), 0);           /* both resurrected: none collected */
    CHECK(nb_kept == &b->ob);
    CHECK_EQ(destroyed[0] + destroyed[1], 0);  /* b resurrected, a reachable from b */
    CHECK(frt_weakref_get(wa) == NULL);        /* a's callback weakref was cleared */
    CHECK_EQ(atomic_load(&nb_allocated), 2);
    CHECK_EQ(frt_gc_collect(-1), 2);           /* the callback's new cycle */
    CHECK_EQ(destroyed[2] + destroyed[3], 2);
    frt_decref(nb_kept);
    nb_kept = NULL;
    CHECK_EQ(frt_gc_collect(-1), 2);
    CHECK_EQ(destroyed[0] + destroyed[1], 2);
    CHECK(frt_weakref_get(nb_plain) == NULL);
    frt_decref(frt_weakref_object(wa));
    frt_decref(frt_weakref_object(nb_plain));
    finish();
}

/* ------------------------------------------------------------------ */
/* Frozen, immortal, queued.                                           */

static void test_frozen_immortal(void)
{
    start();
    node *a = mk(&node_type), *b = mk(&node_type);
    link2(a, b);
    frt_weakref *wa = frt_weakref_new(&a->ob, wr_count_cb, (void *)1);
    frt_decref(&a->ob);
    frt_decref(&b->ob);
    frt_gc_freeze();
    CHECK_EQ(frt_gc_collect(-1), 0);           /* frozen: never examined */
    frt_object *g = frt_weakref_get(wa);
    CHECK(g == &a->ob);
    frt_decref(g);
    frt_gc_unfreeze();
    CHECK_EQ(frt_gc_collect(-1), 2);
    CHECK_EQ(cb_calls[1], 1);
    CHECK_EQ(destroyed[0] + destroyed[1], 2);
    frt_decref(frt_weakref_object(wa));

    node *im = mk(&node_type);
    frt_set_immortal(&im->ob);
    frt_weakref *wi = frt_weakref_new(&im->ob, wr_count_cb, (void *)2);
    frt_decref(&im->ob);                       /* a no-op */
    g = frt_weakref_get(wi);
    CHECK(g == &im->ob);
    frt_decref(g);
    CHECK_EQ(frt_weakref_count(&im->ob), 1);
    frt_decref(frt_weakref_object(wi));
    CHECK_EQ(frt_weakref_count(&im->ob), 0);
    CHECK_EQ(cb_calls[2], 0);
    finish();                                  /* the immortal is not counted alive */
}

/* An object queued to its owner (its last reference dropped by a non-owner,
 * not merged yet) can still be got through a weakref from a third thread:
 * the owner's merge then finds it alive. */
static node *q_obj;
static frt_weakref *q_wr;
static _Atomic long q_step;
static frt_object *q_got;

static void *q_dropper(void *arg)
{
    (void)arg;
    CHECK_EQ(frt_thread_attach(), 0);
    frt_decref(&q_obj->ob);                    /* queued: the owner is busy, not polling */
    intptr_t s = atomic_load(&q_obj->ob.ob_ref_shared);
    CHECK_EQ(FRT_REF_STATE(s), FRT_REF_QUEUED);
    q_got = frt_weakref_get(q_wr);             /* not yet merged: still alive */
    CHECK(q_got == &q_obj->ob);
    frt_thread_detach();                       /* q_got stays held (shared count) */
    atomic_store(&q_step, 1);
    return NULL;
}

static void test_queued(void)
{
    start();
    q_obj = mk(&node_type);
    q_wr = frt_weakref_new(&q_obj->ob, wr_count_cb, (void *)1);
    atomic_store(&q_step, 0);
    pthread_t t = test_spawn(q_dropper, NULL); /* its reference is the one we made */
    /* Busy without safepoints, so the queue is not merged meanwhile. */
    while (!atomic_load(&q_step))
        sched_yield();
    CHECK_EQ(pthread_join(t, NULL), 0);
    frt_safepoint();                           /* merge: 1 local + 1 shared - 1 queued */
    CHECK_EQ(destroyed[0], 0);
    CHECK_EQ(frt_refcount(&q_obj->ob), 1);
    frt_decref(q_got);
    CHECK_EQ(destroyed[0], 1);
    CHECK_EQ(cb_calls[1], 1);
    frt_decref(frt_weakref_object(q_wr));
    finish();
}

/* ------------------------------------------------------------------ */
/* Finalizers (weakref.finalize).                                      */

static int fin_runs[16];

static void fin_fn(void *ctx)
{
    fin_runs[(intptr_t)ctx]++;
}

static _Atomic long race_calls_won;
static frt_finalizer *race_f;

static void *fin_caller(void *arg)
{
    (void)arg;
    CHECK_EQ(frt_thread_attach(), 0);
    atomic_fetch_add(&race_calls_won, frt_finalizer_call(race_f));
    frt_thread_detach();
    return NULL;
}

static void test_finalizer(void)
{
    start();
    memset(fin_runs, 0, sizeof fin_runs);
    /* At death, by a plain decref; the handle dropped first. */
    node *a = mk(&node_type);
    frt_finalizer *f = frt_finalizer_new(&a->ob, fin_fn, (void *)1);
    CHECK(f && frt_finalizer_alive(f));
    CHECK_EQ(frt_refcount(&a->ob), 1);          /* no reference to the target */
    frt_finalizer_free(f);                      /* still registered */
    frt_decref(&a->ob);
    CHECK_EQ(fin_runs[1], 1);

    /* In a cycle. */
    node *b = mk(&node_type), *c = mk(&node_type);
    link2(b, c);
    f = frt_finalizer_new(&b->ob, fin_fn, (void *)2);
    frt_decref(&b->ob);
    frt_decref(&c->ob);
    CHECK_EQ(fin_runs[2], 0);
    CHECK_EQ(frt_gc_collect(-1), 2);
    CHECK_EQ(fin_runs[2], 1);
    CHECK(!frt_finalizer_alive(f));
    CHECK_EQ(frt_finalizer_call(f), 0);
    frt_finalizer_free(f);

    /* Called: once; then the target's death does nothing. */
    node *d = mk(&node_type);
    f = frt_finalizer_new(&d->ob, fin_fn, (void *)3);
    CHECK_EQ(frt_finalizer_call(f), 1);
    CHECK_EQ(frt_finalizer_call(f), 0);
    CHECK_EQ(frt_finalizer_detach(f), 0);
    CHECK_EQ(frt_weakref_count(&d->ob), 0);     /* it left the target's list */
    frt_decref(&d->ob);
    CHECK_EQ(fin_runs[3], 1);
    frt_finalizer_free(f);

    /* Detached: never runs. */
    node *e = mk(&node_type);
    f = frt_finalizer_new(&e->ob, fin_fn, (void *)4);
    CHECK_EQ(frt_finalizer_detach(f), 1);
    CHECK(!frt_finalizer_alive(f));
    frt_decref(&e->ob);
    CHECK_EQ(fin_runs[4], 0);
    frt_finalizer_free(f);

    /* Two threads call at once: exactly one runs it. */
    node *g = mk(&node_type);
    race_f = frt_finalizer_new(&g->ob, fin_fn, (void *)5);
    atomic_store(&race_calls_won, 0);
    pthread_t t1 = test_spawn(fin_caller, NULL), t2 = test_spawn(fin_caller, NULL);
    test_join(t1);
    test_join(t2);
    CHECK_EQ(atomic_load(&race_calls_won), 1);
    CHECK_EQ(fin_runs[5], 1);
    frt_finalizer_free(race_f);
    frt_decref(&g->ob);
    CHECK_EQ(fin_runs[5], 1);

    /* Targets alive at shutdown: their finalizers run there, newest first;
     * an immortal target's too. */
    node *h = mk(&node_type), *im = mk(&node_type);
    frt_set_immortal(&im->ob);
    frt_finalizer_free(frt_finalizer_new(&h->ob, fin_fn, (void *)6));
    frt_finalizer_free(frt_finalizer_new(&im->ob, fin_fn, (void *)7));
#if !FRT_DEBUG
    CHECK(frt_finalizer_new(NULL, fin_fn, NULL) == NULL);
#endif
    CHECK_EQ(fin_runs[6] + fin_runs[7], 0);
    CHECK_EQ(frt_shutdown(), 1);                /* h is still alive (leaked on purpose) */
    CHECK_EQ(fin_runs[6], 1);
    CHECK_EQ(fin_runs[7], 1);
}

int main(void)
{
    test_watchdog("test_weakref", 120);
    test_basics();
    test_threads();
    test_gc_order();
    test_callback_resurrects();
    test_frozen_immortal();
    test_queued();
    test_finalizer();
    TEST_PASS("test_weakref");
    return 0;
}
