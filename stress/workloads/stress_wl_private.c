/* private: each thread on its own objects.
 *
 * Every worker owns a base object and 256 slots of objects of mixed sizes
 * (a few above FRT_SMALL_MAX, from the large-object path) that nobody else
 * ever sees. It counts on them (four incref/decref pairs, extra references held
 * for a while), replaces them (the last decref must free at once, on this
 * thread) and checks them against its own model of their counts. This is
 * the owner's fast path of biased reference counting and the thread's own
 * arena pool; with every count atomic (frt-stress-atomic) it is the same
 * work on atomic instructions, so brc/atomic is the price of atomics.
 *
 * Invariants: frt_refcount of every object equals the model at every check
 * and when quiescent; the object stays owned by its creator (brc); the
 * last decref of a replaced object destroys it at once on this thread;
 * after the thread drops everything, it has destroyed exactly what it made. */
#include "stress.h"

#include <string.h>

enum { K_OBJ };
#define SLOTS 256
#define MAX_REFS 6
#define BATCH 64
#define PAIRS 4 /* incref/decref pairs in a counting operation */

typedef struct pslot {
    stress_obj *o;
    uint32_t refs; /* references this thread holds: the model */
    uint32_t extra;
} pslot;

typedef struct priv_state {
    stress_obj *base;
    uint32_t base_refs;
    uint64_t next_id;
    pslot s[SLOTS];
} priv_state;

static const frt_type priv_type = {"stress.private.obj", sizeof(stress_obj), NULL, NULL, NULL,
                                   stress_obj_destroy};

static const uint32_t sizes[] = {0, 8, 24, 56, 120, 248, 504, 1000, 2040, 4000};

static unsigned char *payload(stress_obj *o)
{
    return (unsigned char *)(o->ref + o->nref);
}

static int payload_ok(stress_obj *o, uint32_t extra)
{
    return !extra || (payload(o)[0] == (unsigned char)o->id && payload(o)[extra - 1] == (unsigned char)o->id);
}

static stress_obj *make(stress_case *c, stress_worker *w, priv_state *st, uint32_t *extra_out)
{
    uint32_t r = stress_below(&w->rng, 1024);
    uint32_t extra = r == 0 ? 20000 + stress_below(&w->rng, 8000) : sizes[r % 10];
    stress_obj *o = stress_obj_new(c, &priv_type, K_OBJ, 0, extra, w->index,
                                   (uint64_t)w->index << 40 | st->next_id++);
    if (o && extra)
        memset(payload(o), (unsigned char)o->id, extra);
    *extra_out = extra;
    return o;
}

static void check_one(stress_case *c, stress_worker *w, stress_obj *o, uint32_t refs, uint32_t extra,
                      const char *what)
{
    if (!stress_obj_ok(o, K_OBJ) || !payload_ok(o, extra)) {
        stress_corrupt(c, "private/tag", o, K_OBJ);
        return;
    }
    size_t expect = refs + stress_worker_holds(w, &o->ob);
    size_t got = frt_refcount(&o->ob);
    STRESS_CHECK(c, got == expect, "refcount",
                 "thread %u: %s object id %llu has refcount %zu, the thread holds %zu", w->index,
                 what, (unsigned long long)o->id, got, expect);
#if !STRESS_RC_ATOMIC
    STRESS_CHECK(c, frt_is_owned(&o->ob), "owner",
                 "thread %u: %s object id %llu is no longer owned by the thread that made it and "
                 "alone ever touched it",
                 w->index, what, (unsigned long long)o->id);
#endif
}

static void check_all(stress_case *c, stress_worker *w, priv_state *st)
{
    check_one(c, w, st->base, st->base_refs, 0, "base");
    for (unsigned i = 0; i < SLOTS && !stress_failed(c); i++)
        check_one(c, w, st->s[i].o, st->s[i].refs, st->s[i].extra, "slot");
}

/* Drop every reference to the slot's object: the last one must destroy it
 * at once, on this thread. */
static void drop(stress_case *c, stress_worker *w, pslot *p)
{
    stress_obj *o = p->o;
    if (!payload_ok(o, p->extra))
        stress_corrupt(c, "private/payload", o, K_OBJ);
    while (p->refs > 1) {
        frt_decref(&o->ob);
        p->refs--;
    }
    size_t left = frt_refcount(&o->ob);
    STRESS_CHECK(c, left == 1, "refcount",
                 "thread %u: object id %llu has refcount %zu before its last decref", w->index,
                 (unsigned long long)o->id, left);
    uint64_t before = atomic_load_explicit(&w->counters.destroyed[K_OBJ], memory_order_relaxed);
    frt_decref(&o->ob);
    uint64_t after = atomic_load_explicit(&w->counters.destroyed[K_OBJ], memory_order_relaxed);
    STRESS_CHECK(c, after == before + 1, "destroyed",
                 "thread %u: the last decref of object id %llu destroyed %llu objects, not 1",
                 w->index, (unsigned long long)o->id, (unsigned long long)(after - before));
    p->o = NULL;
    p->refs = 0;
}

static void thread_init(stress_case *c, stress_worker *w)
{
    priv_state *st = w->state;
    uint32_t extra;
    st->base = make(c, w, st, &extra);
    if (!st->base)
        return;
    /* The base is never replaced: keep it small and fixed. */
    st->base_refs = 1;
    for (unsigned i = 0; i < SLOTS; i++) {
        st->s[i].o = make(c, w, st, &st->s[i].extra);
        if (!st->s[i].o)
            return;
        st->s[i].refs = 1;
    }
}

static void run(stress_case *c, stress_worker *w)
{
    priv_state *st = w->state;
    if (!st->base)
        return;
    while (stress_continue(c, w)) {
        for (int k = 0; k < BATCH; k++) {
            uint32_t r = stress_below(&w->rng, 100);
            pslot *p = &st->s[stress_below(&w->rng, SLOTS)];
            if (r < 75) { /* four pairs, on the base or a slot */
                stress_obj *o = r & 1 ? st->base : p->o;
                for (int n = 0; n < PAIRS; n++)
                    frt_incref(&o->ob);
                if (o->tag != stress_tag(o->id, K_OBJ))
                    stress_corrupt(c, "private/tag", o, K_OBJ);
                for (int n = 0; n < PAIRS; n++)
                    frt_decref(&o->ob);
            } else if (r < 90) { /* hold one more reference, or let one go */
                if (p->refs < MAX_REFS && (r & 1 || p->refs == 1)) {
                    frt_incref(&p->o->ob);
                    p->refs++;
                } else {
                    frt_decref(&p->o->ob);
                    p->refs--;
                }
            } else if (r < 97) { /* replace */
                drop(c, w, p);
                p->o = make(c, w, st, &p->extra);
                if (!p->o)
                    return;
                p->refs = 1;
            } else {
                check_one(c, w, p->o, p->refs, p->extra, "slot");
            }
        }
        stress_ops_add(w, BATCH);
        if ((atomic_load_explicit(&w->ops, memory_order_relaxed) & 4095) < BATCH)
            check_all(c, w, st);
        stress_fault_point(c, w, &st->base->ob);
        frt_safepoint();
    }
}

static void thread_quiesce(stress_case *c, stress_worker *w)
{
    priv_state *st = w->state;
    if (st->base)
        check_all(c, w, st);
}

static void thread_finish(stress_case *c, stress_worker *w)
{
    priv_state *st = w->state;
    if (!st->base)
        return;
    for (unsigned i = 0; i < SLOTS && st->s[i].o; i++)
        drop(c, w, &st->s[i]);
    pslot b = {st->base, st->base_refs, 0};
    drop(c, w, &b);
    st->base = NULL;
    uint64_t made = atomic_load(&w->counters.created[K_OBJ]);
    uint64_t gone = atomic_load(&w->counters.destroyed[K_OBJ]);
    STRESS_CHECK(c, made == gone, "destroyed",
                 "thread %u made %llu private objects and destroyed %llu of them itself", w->index,
                 (unsigned long long)made, (unsigned long long)gone);
}

static frt_object *fault_target(stress_case *c, stress_worker *w)
{
    priv_state *st = w->state;
    return st->base ? &st->base->ob : NULL;
}

const stress_workload stress_wl_private = {
    .name = "private",
    .what = "each thread counts on, replaces and checks its own objects (owner fast path, own pool)",
    .op = "4 incref/decref pairs (75%), a held reference (15%), a replacement (7%) or a check",
    .kinds = {"object", NULL},
    .thread_state = sizeof(priv_state),
    .thread_init = thread_init,
    .run = run,
    .thread_quiesce = thread_quiesce,
    .thread_finish = thread_finish,
    .fault_target = fault_target,
};
