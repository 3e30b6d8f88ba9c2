/* map: the library's concurrent map under readers, writers, resizes, weak
 * values dying and collections, checked against a sequential model.
 *
 * Keys are 8-byte ids. Each key of the main map has one writer (key %
 * threads == worker), which keeps the exact sequential model of its keys:
 * its own gets, sets, deletes and get_or_inserts must agree with the model
 * every time (linearizability with one writer per key). Every worker also
 * reads every key: another writer's key gives NULL or an intact value made
 * for that key. The table grows to thousands of keys and shrinks as keys
 * are deleted, while all of this runs (the writer that crosses a size
 * threshold rebuilds the table). A weak-value map gets values that the writer holds for a
 * while and then drops: while held, its get must return exactly that
 * value; after, NULL or that value (a reader may still hold it). Contended
 * keys: every worker get_or_inserts the same few keys, never deleted: all
 * must see one value per key, the first inserted. Iterations run
 * meanwhile and check every value they see. Collections run now and then
 * (values are tracked containers; the maps are traversed).
 *
 * When quiescent: each key's value is its model's, the map's length is the
 * number of keys present, an iteration visits exactly those, each worker's
 * pinned value has the refcount the worker accounts for. At the end every
 * value made is destroyed (the runner checks). */
#include "stress.h"

#include <stdlib.h>
#include <string.h>

enum { K_VALUE };
#define KEYS 4096
#define CKEYS 16
#define HELD 8

typedef struct maps {
    frt_map *main, *weak, *contended;
} maps;

typedef struct held_weak {
    uint64_t key;
    stress_obj *v;
} held_weak;

typedef struct map_worker {
    uint64_t model[KEYS];       /* own keys: the value id present, 0 if absent */
    uint64_t got[CKEYS];        /* contended keys: the value id seen, 0 before */
    held_weak held[HELD];       /* weak-map values this worker holds */
    unsigned next_held;
    uint64_t seq;
    stress_obj *pin;            /* the fault target */
} map_worker;

static const frt_type value_type = {"stress.map.value", sizeof(stress_obj), stress_obj_traverse,
                                    stress_obj_clear, NULL, stress_obj_destroy};

static stress_obj *value_new(stress_case *c, stress_worker *w, map_worker *me, uint64_t key)
{
    return stress_obj_new(c, &value_type, K_VALUE, 0, 0, w->index, key << 32 | ++me->seq);
}

static int value_for(const stress_obj *v, uint64_t key)
{
    return stress_obj_ok(v, K_VALUE) && v->id >> 32 == key;
}

static int setup(stress_case *c)
{
    maps *m = calloc(1, sizeof *m);
    if (!m)
        return -1;
    m->main = frt_map_new(0, NULL);
    m->weak = frt_map_new(FRT_MAP_WEAK_VALUES, NULL);
    m->contended = frt_map_new(0, NULL);
    c->shared = m;
    return m->main && m->weak && m->contended ? 0 : -1;
}

static void thread_init(stress_case *c, stress_worker *w)
{
    map_worker *me = w->state;
    me->pin = value_new(c, w, me, KEYS + w->index);
}

static uint64_t own_key(stress_case *c, stress_worker *w)
{
    uint32_t per = KEYS / c->nthreads;
    return (uint64_t)stress_below(&w->rng, per) * c->nthreads + w->index;
}

static void read_any(stress_case *c, stress_worker *w, map_worker *me, maps *m)
{
    uint64_t k = stress_below(&w->rng, KEYS);
    stress_obj *v = (stress_obj *)frt_map_get(m->main, &k, sizeof k);
    if (k % c->nthreads == w->index && k < KEYS / c->nthreads * c->nthreads) {
        STRESS_CHECK(c, (v ? v->id : 0) == me->model[k], "model",
                     "own key %llu: get found id %llx, the model says %llx", (unsigned long long)k,
                     (unsigned long long)(v ? v->id : 0), (unsigned long long)me->model[k]);
    } else if (v && !value_for(v, k)) {
        stress_corrupt(c, "map/get", v, K_VALUE);
    }
    if (v)
        frt_decref(&v->ob);
}

static void write_own(stress_case *c, stress_worker *w, map_worker *me, maps *m, unsigned r)
{
    uint64_t k = own_key(c, w);
    if (r < 60) {
        stress_obj *v = value_new(c, w, me, k);
        if (!v)
            return;
        STRESS_CHECK(c, frt_map_set(m->main, &k, sizeof k, &v->ob) == 0, "set", "frt_map_set failed");
        me->model[k] = v->id;
        frt_decref(&v->ob);
    } else if (r < 85) {
        int rc = frt_map_delete(m->main, &k, sizeof k);
        STRESS_CHECK(c, rc == (me->model[k] != 0), "model",
                     "own key %llu: delete returned %d, the model has id %llx", (unsigned long long)k,
                     rc, (unsigned long long)me->model[k]);
        me->model[k] = 0;
    } else {
        stress_obj *v = value_new(c, w, me, k);
        if (!v)
            return;
        stress_obj *got = (stress_obj *)frt_map_get_or_insert(m->main, &k, sizeof k, &v->ob);
        uint64_t want = me->model[k] ? me->model[k] : v->id;
        STRESS_CHECK(c, got && got->id == want, "model",
                     "own key %llu: get_or_insert gave id %llx, the model says %llx",
                     (unsigned long long)k, (unsigned long long)(got ? got->id : 0),
                     (unsigned long long)want);
        me->model[k] = want;
        if (got)
            frt_decref(&got->ob);
        frt_decref(&v->ob);
    }
}

static void weak_op(stress_case *c, stress_worker *w, map_worker *me, maps *m)
{
    held_weak *h = &me->held[me->next_held];
    if (h->v) { /* while held, the entry is exactly our value */
        stress_obj *v = (stress_obj *)frt_map_get(m->weak, &h->key, sizeof h->key);
        STRESS_CHECK(c, v == h->v, "weak", "key %llu: a held weak value read back as %p, not %p",
                     (unsigned long long)h->key, (void *)v, (void *)h->v);
        if (v)
            frt_decref(&v->ob);
        frt_decref(&h->v->ob); /* often its last reference: the entry vanishes */
        h->v = NULL;
    }
    uint64_t k = own_key(c, w);
    for (unsigned i = 0; i < HELD; i++)
        if (me->held[i].v && me->held[i].key == k)
            return; /* one held value per key */
    stress_obj *v = value_new(c, w, me, k);
    if (!v)
        return;
    STRESS_CHECK(c, frt_map_set(m->weak, &k, sizeof k, &v->ob) == 0, "set", "weak set failed");
    h->key = k;
    h->v = v;
    me->next_held = (me->next_held + 1) % HELD;
}

static void contend(stress_case *c, stress_worker *w, map_worker *me, maps *m)
{
    uint64_t k = stress_below(&w->rng, CKEYS);
    stress_obj *v = value_new(c, w, me, k);
    if (!v)
        return;
    stress_obj *got = (stress_obj *)frt_map_get_or_insert(m->contended, &k, sizeof k, &v->ob);
    STRESS_CHECK(c, got && value_for(got, k), "contended", "key %llu: get_or_insert gave a bad value",
                 (unsigned long long)k);
    if (got) {
        STRESS_CHECK(c, !me->got[k] || me->got[k] == got->id, "contended",
                     "key %llu: get_or_insert gave id %llx after %llx (never deleted)",
                     (unsigned long long)k, (unsigned long long)got->id,
                     (unsigned long long)me->got[k]);
        me->got[k] = got->id;
        frt_decref(&got->ob);
    }
    frt_decref(&v->ob);
}

typedef struct walk {
    stress_case *c;
    size_t n;
    int bad;
} walk;

static int walk_visit(const void *key, size_t len, frt_object *key_obj, frt_object *value, void *arg)
{
    walk *wk = arg;
    uint64_t k;
    if (len != sizeof k || key_obj) {
        wk->bad++;
        return 0;
    }
    memcpy(&k, key, sizeof k);
    if (!value_for((stress_obj *)value, k))
        wk->bad++;
    wk->n++;
    return 0;
}

static void run(stress_case *c, stress_worker *w)
{
    maps *m = c->shared;
    map_worker *me = w->state;
    for (uint64_t i = 1; stress_continue(c, w); i++) {
        unsigned r = stress_below(&w->rng, 1000);
        if (r < 600) {
            read_any(c, w, me, m);
        } else if (r < 900) {
            write_own(c, w, me, m, stress_below(&w->rng, 100));
        } else if (r < 960) {
            weak_op(c, w, me, m);
        } else if (r < 998) {
            contend(c, w, me, m);
        } else {
            walk wk = {c, 0, 0};
            frt_map_foreach(r & 1 ? m->weak : m->main, walk_visit, &wk);
            STRESS_CHECK(c, !wk.bad, "foreach", "an iteration saw %d bad entries", wk.bad);
        }
        stress_ops_add(w, 1);
        if ((i & 255) == 0) {
            stress_fault_point(c, w, &me->pin->ob);
            frt_safepoint();
        }
        if ((i & 8191) == 0)
            frt_gc_collect(0);
    }
}

static void verify_held(stress_case *c)
{
    maps *m = c->shared;
    size_t present = 0;
    for (unsigned t = 0; t < c->nthreads; t++) {
        map_worker *me = c->w[t].state;
        for (uint64_t k = t; k < KEYS / c->nthreads * c->nthreads; k += c->nthreads) {
            stress_obj *v = (stress_obj *)frt_map_get(m->main, &k, sizeof k);
            STRESS_CHECK(c, (v ? v->id : 0) == me->model[k], "model",
                         "quiescent: key %llu holds id %llx, its writer's model %llx",
                         (unsigned long long)k, (unsigned long long)(v ? v->id : 0),
                         (unsigned long long)me->model[k]);
            present += v != NULL;
            if (v)
                frt_decref(&v->ob);
        }
        for (uint64_t k = 0; k < CKEYS; k++) {
            if (!me->got[k])
                continue;
            stress_obj *v = (stress_obj *)frt_map_get(m->contended, &k, sizeof k);
            STRESS_CHECK(c, v && v->id == me->got[k], "contended",
                         "quiescent: contended key %llu is not what thread %u saw",
                         (unsigned long long)k, t);
            if (v)
                frt_decref(&v->ob);
        }
        if (me->pin) {
            size_t expect = 1 + stress_holds_of(c, &me->pin->ob), got = frt_refcount(&me->pin->ob);
            STRESS_CHECK(c, got == expect, "refcount",
                         "thread %u's pinned value has refcount %zu; the thread holds %zu", t, got,
                         expect);
        }
    }
    STRESS_CHECK(c, frt_map_len(m->main) == present, "len", "frt_map_len says %zu, %zu keys present",
                 frt_map_len(m->main), present);
    walk wk = {c, 0, 0};
    frt_map_foreach(m->main, walk_visit, &wk);
    STRESS_CHECK(c, wk.n == present && !wk.bad, "foreach",
                 "quiescent: an iteration saw %zu entries (%d bad), %zu keys present", wk.n, wk.bad,
                 present);
}

static void thread_finish(stress_case *c, stress_worker *w)
{
    (void)c;
    map_worker *me = w->state;
    for (unsigned i = 0; i < HELD; i++) {
        if (me->held[i].v)
            frt_decref(&me->held[i].v->ob);
        me->held[i].v = NULL;
    }
    if (me->pin)
        frt_decref(&me->pin->ob);
    me->pin = NULL;
}

static void teardown(stress_case *c)
{
    maps *m = c->shared;
    if (!m)
        return;
    if (m->main)
        frt_decref((frt_object *)m->main);
    if (m->weak)
        frt_decref((frt_object *)m->weak);
    if (m->contended)
        frt_decref((frt_object *)m->contended);
    free(m);
    c->shared = NULL;
}

static frt_object *fault_target(stress_case *c, stress_worker *w)
{
    (void)c;
    return &((map_worker *)w->state)->pin->ob;
}

const stress_workload stress_wl_map = {
    .name = "map",
    .what = "the concurrent map: one writer per key checked against its sequential model, readers "
            "everywhere, weak values dying, contended get_or_insert, iterations, resizes, collections",
    .op = "one map operation (get, set, delete, get_or_insert, weak set, or an iteration)",
    .kinds = {"value", NULL},
    .thread_state = sizeof(map_worker),
    .setup = setup,
    .thread_init = thread_init,
    .run = run,
    .verify_held = verify_held,
    .thread_finish = thread_finish,
    .teardown = teardown,
    .fault_target = fault_target,
};
