/* weakref: a weak-value cache under churn (Python's WeakValueDictionary).
 *
 * A cache of 256 slots, each a weak reference (with a callback) to a
 * value. A worker looks a random key up: frt_weakref_get gives it the
 * value (a hit), which it keeps for a while (up to 8 at once, the oldest
 * dropped when a new one comes) or drops at once; on a miss it builds a
 * new value and a new weakref. Values die on whichever thread drops the
 * last reference, often not the one that built them; one value in sixteen
 * also references itself, so only the collector can free it, and its
 * weakref's callback runs in a collection (automatic runs are on, and the
 * workers collect now and then).
 *
 * A slot's weakref is replaced only after its callback ran: then every
 * weakref made sees its target die, so its callback must run exactly once.
 * The callback counts itself on the slot and in the dying thread's
 * counters (kind "callback": one "made" per weakref, one "destroyed" per
 * callback run).
 *
 * Invariants: every hit's value is intact (a get never returns a freed
 * object); with the world stopped and when quiescent, each slot has at most
 * one callback outstanding; when quiescent, each live value has exactly one
 * weakref and a refcount equal to the workers' holds (+1 for a self
 * reference, +1 for the check's own get); at the end, after a full
 * collection, every slot's callbacks ran exactly once per weakref made. */
#include "stress.h"

#include <stdlib.h>

enum { K_VALUE, K_CALLBACK };
#define SLOTS 256
#define HELD 8
#define BATCH 32
#define WORDS 4

typedef struct cache_slot {
    pthread_mutex_t mu;
    frt_weakref *wr;           /* under mu */
    uint64_t made;             /* weakrefs made for this slot, under mu */
    _Atomic uint64_t cb_seen;  /* callbacks run for them */
} cache_slot;

typedef struct cache {
    cache_slot slot[SLOTS];
} cache;

typedef struct cache_reader {
    _Atomic(stress_obj *) held[HELD]; /* the worker's references; main reads them quiescent */
    unsigned next;                    /* the oldest held slot */
    unsigned batches;                 /* loop rounds, for the collection schedule */
    stress_obj *pin;                  /* never dropped before thread_finish: the fault target */
    uint64_t next_id;
} cache_reader;

static const frt_type value_type = {"stress.weakref.value", sizeof(stress_obj), stress_obj_traverse,
                                    stress_obj_clear, NULL, stress_obj_destroy};

static uint64_t *words(stress_obj *o)
{
    return (uint64_t *)(void *)(o->ref + o->nref);
}

static int value_ok(stress_obj *o)
{
    if (!stress_obj_ok(o, K_VALUE))
        return 0;
    for (unsigned i = 0; i < WORDS; i++)
        if (words(o)[i] != o->id * (i + 3))
            return 0;
    return 1;
}

static void died(frt_weakref *wr, void *ctx)
{
    (void)wr;
    cache_slot *s = ctx;
    atomic_fetch_add(&s->cb_seen, 1);
    stress_count(&stress_tls_counters()->destroyed[K_CALLBACK], 1);
}

static stress_obj *make_value(stress_case *c, stress_worker *w, cache_reader *me, int cyclic)
{
    stress_obj *v = stress_obj_new(c, &value_type, K_VALUE, 1, WORDS * sizeof(uint64_t), w->index,
                                   (uint64_t)w->index << 40 | me->next_id++);
    if (!v)
        return NULL;
    for (unsigned i = 0; i < WORDS; i++)
        words(v)[i] = v->id * (i + 3);
    if (cyclic)
        v->ref[0] = frt_newref(&v->ob);
    return v;
}

static int setup(stress_case *c)
{
    cache *k = calloc(1, sizeof *k);
    if (!k)
        return -1;
    for (unsigned i = 0; i < SLOTS; i++)
        pthread_mutex_init(&k->slot[i].mu, NULL);
    c->shared = k;
    return 0;
}

static void thread_init(stress_case *c, stress_worker *w)
{
    cache_reader *me = w->state;
    me->pin = make_value(c, w, me, 0);
}

/* The slot's value, or a new one if its last weakref has called back:
 * a new reference, or NULL (the value is dying and its callback has not run
 * yet, or memory ran out). Nothing is decref'd under the slot lock but a
 * dead weakref (no callback can run from that). */
static void slot_lock(cache_slot *s)
{
    /* A holder may be parked at a safepoint (frt_new under the lock): wait
     * in a blocking section, or a stop of the world would wait for us while
     * we wait for it (python/cpython gh-118332). */
    if (pthread_mutex_trylock(&s->mu) == 0)
        return;
    frt_blocking_begin();
    pthread_mutex_lock(&s->mu);
    frt_blocking_end();
}

static stress_obj *lookup(stress_case *c, stress_worker *w, cache_reader *me, cache_slot *s)
{
    slot_lock(s);
    stress_obj *v = s->wr ? (stress_obj *)frt_weakref_get(s->wr) : NULL;
    if (!v && atomic_load(&s->cb_seen) == s->made) {
        if (s->wr)
            frt_decref(frt_weakref_object(s->wr)); /* it called back: retire it */
        s->wr = NULL;
        v = make_value(c, w, me, stress_below(&w->rng, 16) == 0);
        if (v) {
            s->wr = frt_weakref_new(&v->ob, died, s);
            if (s->wr) {
                s->made++;
                stress_count(&stress_tls_counters()->created[K_CALLBACK], 1);
            } else {
                stress_fail(c, "weakref_new", "frt_weakref_new returned NULL");
            }
        }
    }
    pthread_mutex_unlock(&s->mu);
    return v;
}

static void run(stress_case *c, stress_worker *w)
{
    cache *k = c->shared;
    cache_reader *me = w->state;
    while (stress_continue(c, w)) {
        for (int n = 0; n < BATCH; n++) {
            stress_obj *v = lookup(c, w, me, &k->slot[stress_below(&w->rng, SLOTS)]);
            if (!v)
                continue;
            if (!value_ok(v))
                stress_corrupt(c, "weakref/value", v, K_VALUE);
            if (stress_below(&w->rng, 2)) {
                frt_decref(&v->ob);
                continue;
            }
            stress_obj *old = atomic_exchange_explicit(&me->held[me->next], v, memory_order_relaxed);
            me->next = (me->next + 1) % HELD;
            if (old)
                frt_decref(&old->ob); /* often the last reference, to another thread's value */
        }
        stress_ops_add(w, BATCH);
        stress_fault_point(c, w, &me->pin->ob);
        /* A self-referencing value is alive by its count until a collection
         * finds nobody holding it; every hit revives it meanwhile, and the
         * thresholds alone come rarely once the cache is warm. So collect
         * now and then, mostly young, sometimes everything (each returns 0
         * without a run if another collection is under way). */
        if (++me->batches % 64 == 0)
            frt_gc_collect(me->batches % 4096 == 0 ? 2 : me->batches % 512 == 0 ? 1 : 0);
        frt_safepoint();
    }
}

static void check_slots(stress_case *c, const char *when)
{
    cache *k = c->shared;
    for (unsigned i = 0; i < SLOTS; i++) {
        cache_slot *s = &k->slot[i];
        uint64_t seen = atomic_load(&s->cb_seen);
        STRESS_CHECK(c, seen <= s->made && s->made - seen <= 1, "callbacks",
                     "%s: slot %u made %llu weakrefs and saw %llu callbacks (at most one may be "
                     "outstanding)", when, i, (unsigned long long)s->made, (unsigned long long)seen);
    }
}

static void check_stopped(stress_case *c)
{
    check_slots(c, "world stopped");
}

static size_t held_by_workers(stress_case *c, stress_obj *v)
{
    size_t n = stress_holds_of(c, &v->ob);
    for (unsigned t = 0; t < c->nthreads; t++) {
        cache_reader *r = c->w[t].state;
        for (unsigned i = 0; i < HELD; i++)
            n += atomic_load_explicit(&r->held[i], memory_order_relaxed) == v;
        n += r->pin == v;
    }
    return n;
}

static void verify_held(stress_case *c)
{
    cache *k = c->shared;
    check_slots(c, "quiescent");
    for (unsigned i = 0; i < SLOTS; i++) {
        cache_slot *s = &k->slot[i];
        pthread_mutex_lock(&s->mu);
        stress_obj *v = s->wr ? (stress_obj *)frt_weakref_get(s->wr) : NULL;
        pthread_mutex_unlock(&s->mu);
        if (!v)
            continue;
        size_t expect = 1 + (v->ref[0] == &v->ob) + held_by_workers(c, v), got = frt_refcount(&v->ob);
        STRESS_CHECK(c, got == expect, "refcount",
                     "slot %u: value id %llu has refcount %zu; the workers, its self reference and "
                     "this check hold %zu", i, (unsigned long long)v->id, got, expect);
        size_t nwr = frt_weakref_count(&v->ob);
        STRESS_CHECK(c, nwr == 1, "weakref_count", "slot %u: value id %llu has %zu weakrefs, not 1", i,
                     (unsigned long long)v->id, nwr);
        frt_decref(&v->ob);
    }
    for (unsigned t = 0; t < c->nthreads; t++) {
        cache_reader *r = c->w[t].state;
        if (!r->pin)
            continue;
        size_t expect = 1 + stress_holds_of(c, &r->pin->ob), got = frt_refcount(&r->pin->ob);
        STRESS_CHECK(c, got == expect, "refcount",
                     "thread %u's pinned value has refcount %zu; the thread holds %zu", t, got, expect);
    }
}

static void thread_finish(stress_case *c, stress_worker *w)
{
    cache_reader *me = w->state;
    for (unsigned i = 0; i < HELD; i++) {
        stress_obj *v = atomic_exchange(&me->held[i], NULL);
        if (v)
            frt_decref(&v->ob);
    }
    if (me->pin)
        frt_decref(&me->pin->ob);
    me->pin = NULL;
}

static void teardown(stress_case *c)
{
    cache *k = c->shared;
    if (!k)
        return;
    /* Nobody holds a value now: the plain ones died with their last holder,
     * the self-referencing ones are cyclic garbage for this collection. */
    frt_gc_collect(-1);
    for (unsigned i = 0; i < SLOTS; i++) {
        cache_slot *s = &k->slot[i];
        uint64_t seen = atomic_load(&s->cb_seen);
        STRESS_CHECK(c, seen == s->made, "callbacks",
                     "slot %u: %llu weakrefs made, %llu callbacks ran (every target is dead: one each)",
                     i, (unsigned long long)s->made, (unsigned long long)seen);
        if (s->wr) {
            STRESS_CHECK(c, !frt_weakref_alive(s->wr), "weakref_alive",
                         "slot %u: a weakref still reaches its value after the last collection", i);
            frt_decref(frt_weakref_object(s->wr));
        }
        pthread_mutex_destroy(&s->mu);
    }
    free(k);
    c->shared = NULL;
}

static frt_object *fault_target(stress_case *c, stress_worker *w)
{
    (void)c;
    return &((cache_reader *)w->state)->pin->ob;
}

const stress_workload stress_wl_weakref = {
    .name = "weakref",
    .what = "a weak-value cache under churn: gets race last decrefs and collections, callbacks "
            "counted exactly",
    .op = "one cache lookup (a weakref get, or a new value and weakref on a miss)",
    .brc_note = "not more work (callgrind at 2 threads: 760 instructions per op against the"
                " atomic build's 770): both builds spend 60-70% of their CPU samples in the 256"
                " slot mutexes, so throughput follows how long a slot stays locked; a value"
                " dropped by another thread is freed by its owner when it merges its queue,"
                " which frt_new (called under the slot lock on a miss) does only once 62 wait",
    .kinds = {"value", "callback", NULL},
    .thread_state = sizeof(cache_reader),
    .setup = setup,
    .thread_init = thread_init,
    .run = run,
    .check_stopped = check_stopped,
    .verify_held = verify_held,
    .thread_finish = thread_finish,
    .teardown = teardown,
    .fault_target = fault_target,
};
