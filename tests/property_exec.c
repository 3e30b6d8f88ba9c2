/* The executor: the objects the test makes, the logs their hooks write,
 * the test threads and the step loop. See property_exec.h. */
#define _GNU_SOURCE
#include "property_exec.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <frt/frt.h>

#include "property_model.h"

#define MAGIC_LIVE 0x9e11b0b5u
#define MAGIC_DEAD 0xdeadf00du

/* Every object the test makes: a header, a magic word (a destroyed or
 * reused block shows), its model id, and its slots. */
typedef struct pobj {
    frt_object ob;
    uint32_t magic;
    int32_t id;
    uint8_t kind, nslots, fmode;
    frt_object *slot[];
} pobj;

typedef struct pworker {
    unsigned t;
    pthread_t th;
    sem_t go;
    int quit;
    prop_rop *ops;
    size_t nops;
    frt_object *h[PROP_HCAP];
    frt_finalizer *f[PROP_FCAP];
    frt_object *mbox[PROP_MAX_THREADS][PROP_MBCAP];
} pworker;

/* One run at a time (the fuzzer and the property test both run programs
 * one after the other). */
static struct {
    prop_model model;
    unsigned threads;
    pworker w[PROP_MAX_THREADS];
    sem_t done;
    size_t nids, nfins, child_base;
    _Atomic(frt_object *) *ptr;   /* by id */
    _Atomic(frt_object *) *res;   /* the resurrection table, by id */
    _Atomic(frt_finalizer *) *fin; /* by finalizer id, while the handle lives */
    _Atomic int *destroyed, *finalized, *called, *fn;
    _Atomic long ncoll;
    _Atomic unsigned gate, running; /* concurrent rounds: threads arrived, threads running ops */
    _Atomic size_t overlapped;      /* operations run while another test thread ran */
    int concurrent;                 /* the round runs its threads at once */
    _Atomic(const frt_type *) wr_type;
} X;

static void obj_destroy(frt_object *self);
static void obj_clear(frt_object *self);
static int obj_traverse(frt_object *self, frt_visit_fn visit, void *arg);
static void obj_finalize(frt_object *self);

static const frt_type leaf_type = {"prop.leaf", sizeof(pobj), NULL, NULL, NULL, obj_destroy};
static const frt_type child_type = {"prop.child", sizeof(pobj), NULL, NULL, NULL, obj_destroy};
static const frt_type cont_type = {"prop.cont", sizeof(pobj), obj_traverse, obj_clear, NULL,
                                   obj_destroy};
static const frt_type fcont_type = {"prop.fcont", sizeof(pobj), obj_traverse, obj_clear,
                                    obj_finalize, obj_destroy};

static const frt_type *type_of_kind(unsigned k)
{
    switch (k) {
    case MK_LEAF:
        return &leaf_type;
    case MK_CONT:
        return &cont_type;
    case MK_FCONT:
        return &fcont_type;
    case MK_CHILD:
        return &child_type;
    default:
        return NULL;
    }
}

static int is_ours(const frt_object *o)
{
    const frt_type *t = o->ob_type;
    return t == &leaf_type || t == &child_type || t == &cont_type || t == &fcont_type;
}

/* A handle the test holds must be a whole object of the kind the model
 * says; a block freed under us shows a dead magic (0xdd.. in a debug
 * build, which poisons freed blocks) or another object's id. */
static pobj *whole(frt_object *o, int id, const char *what)
{
    if (!o->ob_type || !is_ours(o))
        prop_fail("use-after-free", "%s: #%d's block has type %s", what, id,
                  o->ob_type ? o->ob_type->name : "NULL (freed)");
    pobj *p = (pobj *)o;
    if (p->magic != MAGIC_LIVE || (id >= 0 && p->id != id))
        prop_fail("use-after-free", "%s: expected #%d, the block holds magic %#x id %d", what, id,
                  p->magic, p->id);
    return p;
}

/* ------------------------------------------------------------------ */
/* The hooks of the test's types, and the callbacks                     */

static int obj_traverse(frt_object *self, frt_visit_fn visit, void *arg)
{
    pobj *p = (pobj *)self;
    for (int s = 0; s < p->nslots; s++)
        if (p->slot[s] && visit(p->slot[s], arg))
            return 1;
    return 0;
}

static void drop_slots(pobj *p)
{
    for (int s = 0; s < p->nslots; s++) {
        frt_object *v = p->slot[s];
        p->slot[s] = NULL;
        frt_xdecref(v);
    }
}

static void obj_clear(frt_object *self)
{
    drop_slots(whole(self, -1, "clear"));
}

static void obj_destroy(frt_object *self)
{
    pobj *p = whole(self, -1, "destroy");
    if (atomic_fetch_add(&X.destroyed[p->id], 1) != 0)
        prop_fail("destroy-once", "#%d destroyed a second time", p->id);
    drop_slots(p);
    p->magic = MAGIC_DEAD;
}

static void obj_finalize(frt_object *self)
{
    pobj *p = whole(self, -1, "finalize");
    int id = p->id;
    if (atomic_fetch_add(&X.finalized[id], 1) != 0)
        prop_fail("finalize-once", "#%d finalized a second time", id);
    if (id % 4 == 0) {
        /* From a finalizer a collection is refused (docs/api.md). */
        long r = frt_gc_collect(2);
        if (r > 0)
            prop_fail("collect-in-finalizer", "frt_gc_collect from a finalizer returned %ld", r);
    }
    if (p->fmode == FM_RESURRECT) {
        frt_object *old = atomic_exchange(&X.res[id], frt_newref(self));
        if (old)
            prop_fail("finalize-once", "#%d resurrected a second time", id);
    } else if (p->fmode == FM_ALLOC) {
        pobj *c = (pobj *)frt_new(&child_type);
        if (!c)
            prop_fail("alloc", "frt_new in a finalizer failed");
        c->magic = MAGIC_LIVE;
        c->id = (int32_t)(X.child_base + (size_t)id);
        c->kind = MK_CHILD;
        atomic_store(&X.ptr[c->id], &c->ob);
        frt_object *old = p->slot[0];
        p->slot[0] = &c->ob;
        frt_xdecref(old);
    }
}

static void wr_callback(frt_weakref *wr, void *ctx)
{
    int id = (int)(intptr_t)ctx - 1;
    frt_object *t = frt_weakref_get(wr);
    if (t)
        prop_fail("callback-sees-target", "weakref #%d's callback can still get its target", id);
    atomic_fetch_add(&X.called[id], 1);
}

static void fin_function(void *ctx)
{
    atomic_fetch_add(&X.fn[(int)(intptr_t)ctx - 1], 1);
}

static void gc_callback(int phase, const frt_gc_info *info, void *ctx)
{
    (void)info;
    (void)ctx;
    if (phase == FRT_GC_START)
        atomic_fetch_add(&X.ncoll, 1);
}

/* ------------------------------------------------------------------ */
/* Running resolved operations                                          */

static frt_object *ptr_of(int id)
{
    return atomic_load_explicit(&X.ptr[id], memory_order_relaxed);
}

static void check_handles(pworker *w)
{
    const frt_type *wt = atomic_load_explicit(&X.wr_type, memory_order_relaxed);
    for (int k = 0; k < PROP_HCAP; k++) {
        frt_object *o = w->h[k];
        if (!o)
            continue;
        if (o->ob_type == wt && wt)
            continue;
        whole(o, -1, "a handle of the thread");
    }
}

static void exec_one(pworker *w, prop_rop *r)
{
    frt_object *o, *v, *old;
    pobj *c;
    frt_weakref *wr;
    frt_finalizer *f;
    switch (r->kind) {
    case P_NEW:
        c = (pobj *)frt_new_var(type_of_kind(r->mk), r->ns * sizeof(frt_object *) + r->pad);
        if (!c)
            prop_fail("alloc", "frt_new failed (errno %d)", errno);
        c->magic = MAGIC_LIVE;
        c->id = r->id;
        c->kind = r->mk;
        c->nslots = r->ns;
        c->fmode = r->fm;
        atomic_store_explicit(&X.ptr[r->id], &c->ob, memory_order_relaxed);
        w->h[r->out] = &c->ob;
        break;
    case P_DUP:
        if ((o = w->h[r->h]) != NULL) {
            frt_incref(o);
            w->h[r->out] = o;
        }
        break;
    case P_DROP:
        o = w->h[r->h];
        w->h[r->h] = NULL;
        frt_xdecref(o);
        break;
    case P_LINK:
        c = whole(w->h[r->h], r->id, "link");
        v = w->h[r->h2];
        old = c->slot[r->slot];
        c->slot[r->slot] = v ? frt_newref(v) : NULL;
        frt_xdecref(old);
        break;
    case P_UNLINK:
        c = whole(w->h[r->h], r->id, "unlink");
        old = c->slot[r->slot];
        c->slot[r->slot] = NULL;
        frt_xdecref(old);
        break;
    case P_LOAD:
        c = whole(w->h[r->h], r->id, "load");
        v = c->slot[r->slot];
        r->result = v != NULL;
        if (v) {
            if (v != ptr_of(r->id2))
                prop_fail("slot", "#%d.slot[%d] holds %p, the model expected #%d", r->id, r->slot,
                          (void *)v, r->id2);
            w->h[r->out] = frt_newref(v);
        }
        break;
    case P_HANDOFF:
        w->mbox[r->to][r->mb] = w->h[r->h];
        w->h[r->h] = NULL;
        break;
    case P_SHARE:
        o = w->h[r->h];
        frt_xincref(o);
        w->mbox[r->to][r->mb] = o;
        break;
    case P_MAKE_SHARED:
        o = w->h[r->h];
        r->result = o ? frt_make_shared(o) : 1;
        break;
    case P_MAKE_HOT:
        /* Not weakref objects: the model infers their deaths from their
         * counts, which a hot object's death does not follow. */
        o = w->h[r->h];
        r->result = o && o->ob_type != atomic_load_explicit(&X.wr_type, memory_order_relaxed)
                        ? frt_make_hot(o)
                        : 1;
        break;
    case P_WR_NEW:
        if (!(o = w->h[r->h])) {
            r->result = -1;
            break;
        }
        wr = frt_weakref_new(o, r->cb ? wr_callback : NULL, (void *)(intptr_t)(r->id + 1));
        r->result = wr != NULL;
        if (wr) {
            v = frt_weakref_object(wr);
            atomic_store_explicit(&X.wr_type, v->ob_type, memory_order_relaxed);
            atomic_store_explicit(&X.ptr[r->id], v, memory_order_relaxed);
            w->h[r->out] = v;
        }
        break;
    case P_WR_GET:
        wr = frt_weakref_from_object(w->h[r->h]);
        if (!wr)
            prop_fail("weakref", "handle %d of t%u (#%d) is not a weakref", r->h, w->t, r->id);
        o = frt_weakref_get(wr);
        r->result = o != NULL;
        if (o) {
            if (o != ptr_of(r->id2))
                prop_fail("weakref-get", "weakref #%d returned %p, not its target #%d", r->id,
                          (void *)o, r->id2);
            w->h[r->out] = o;
        }
        break;
    case P_FIN_NEW:
        if (!(o = w->h[r->h])) {
            r->result = -1;
            break;
        }
        f = frt_finalizer_new(o, fin_function, (void *)(intptr_t)(r->fin + 1));
        r->result = f != NULL;
        w->f[r->out] = f;
        atomic_store_explicit(&X.fin[r->fin], f, memory_order_relaxed);
        break;
    case P_FIN_CALL:
    case P_FIN_DETACH:
        f = w->f[r->h];
        r->result = !f ? -1 : r->kind == P_FIN_CALL ? frt_finalizer_call(f) : frt_finalizer_detach(f);
        break;
    case P_FIN_FREE:
        f = w->f[r->h];
        w->f[r->h] = NULL;
        if (f)
            atomic_store_explicit(&X.fin[r->fin], NULL, memory_order_relaxed);
        frt_finalizer_free(f);
        break;
    case P_ADOPT:
        o = atomic_exchange(&X.res[r->id], NULL);
        r->result = o != NULL;
        if (o && o != ptr_of(r->id))
            prop_fail("resurrection-table", "entry #%d holds %p", r->id, (void *)o);
        w->h[r->out] = o;
        break;
    case P_DETACH:
        frt_thread_detach();
        if (frt_thread_attach() != 0)
            prop_fail("attach", "frt_thread_attach after a detach failed");
        break;
    case P_BLOCK:
        frt_blocking_begin();
        sched_yield();
        frt_blocking_end();
        break;
    case P_SAFEPOINT:
        frt_safepoint();
        break;
    case P_COLLECT:
        r->result = frt_gc_collect(r->gen);
        if (r->result < 0)
            prop_fail("collect", "frt_gc_collect(%u) from a test thread returned %ld", r->gen,
                      r->result);
        break;
    default:
        break;
    }
}

static void run_ops(pworker *w)
{
    size_t overlapped = 0;
    atomic_fetch_add(&X.running, 1);
    for (size_t i = 0; i < w->nops; i++) {
        overlapped += atomic_load_explicit(&X.running, memory_order_relaxed) > 1;
        exec_one(w, &w->ops[i]);
        check_handles(w);
    }
    atomic_fetch_sub(&X.running, 1);
    atomic_fetch_add(&X.overlapped, overlapped);
}

/* Concurrent rounds: every thread of the round starts its operations at
 * the same moment (each waits, attached, until all have arrived). */
static void gate_pass(void)
{
    if (atomic_load(&X.gate) == 0)
        return; /* serial round */
    atomic_fetch_sub(&X.gate, 1);
    while (atomic_load(&X.gate) != 0)
        sched_yield();
}

static void sem_wait_retry(sem_t *s)
{
    while (sem_wait(s) != 0)
        if (errno != EINTR) {
            perror("property: sem_wait");
            abort();
        }
}

static void *worker_main(void *arg)
{
    pworker *w = arg;
    if (frt_thread_attach() != 0)
        prop_fail("attach", "test thread %u could not attach", w->t);
    frt_blocking_begin();
    for (;;) {
        sem_wait_retry(&w->go);
        if (w->quit)
            break;
        frt_blocking_end();
        gate_pass();
        run_ops(w);
        frt_blocking_begin();
        sem_post(&X.done);
    }
    frt_blocking_end();
    frt_thread_detach();
    return NULL;
}

/* Thread 0 waits for the others inside a blocking section: a collection
 * one of them runs must not wait for it. */
static void wait_done(unsigned n)
{
    frt_blocking_begin();
    for (unsigned i = 0; i < n; i++)
        sem_wait_retry(&X.done);
    frt_blocking_end();
}

static void exec_round(prop_rop *rops, const size_t *counts, int serial)
{
    size_t off = 0;
    for (unsigned t = 0; t < X.threads; t++) {
        X.w[t].ops = rops + off;
        X.w[t].nops = counts[t];
        off += counts[t];
    }
    X.concurrent = !serial && X.threads > 1;
    if (serial) {
        run_ops(&X.w[0]);
        for (unsigned t = 1; t < X.threads; t++) {
            if (!X.w[t].nops)
                continue;
            sem_post(&X.w[t].go);
            wait_done(1);
        }
    } else {
        unsigned started = 0;
        for (unsigned t = 1; t < X.threads; t++)
            started += X.w[t].nops != 0;
        atomic_store(&X.gate, started ? started + 1 : 0);
        for (unsigned t = 1; t < X.threads; t++)
            if (X.w[t].nops)
                sem_post(&X.w[t].go);
        gate_pass();
        run_ops(&X.w[0]);
        wait_done(started);
    }
}

/* ------------------------------------------------------------------ */
/* The observer the model reads the runtime through                      */

static int o_destroyed(void *ctx, int id)
{
    (void)ctx;
    return atomic_load(&X.destroyed[id]);
}

static int o_finalized(void *ctx, int id)
{
    (void)ctx;
    return atomic_load(&X.finalized[id]);
}

static int o_called(void *ctx, int id)
{
    (void)ctx;
    return atomic_load(&X.called[id]);
}

static int o_fn_ran(void *ctx, int f)
{
    (void)ctx;
    return atomic_load(&X.fn[f]);
}

static long o_collections(void *ctx)
{
    (void)ctx;
    return atomic_load(&X.ncoll);
}

static long o_refcount(void *ctx, int id)
{
    (void)ctx;
    return (long)frt_refcount(ptr_of(id));
}

static int o_is_hot(void *ctx, int id)
{
    (void)ctx;
    return frt_is_hot(ptr_of(id));
}

static int o_wr_get(void *ctx, int id, int target)
{
    (void)ctx;
    frt_weakref *wr = frt_weakref_from_object(ptr_of(id));
    if (!wr)
        prop_fail("weakref", "#%d is not a weakref", id);
    frt_object *o = frt_weakref_get(wr);
    if (!o)
        return 0;
    if (o != ptr_of(target))
        prop_fail("weakref-get", "weakref #%d returns %p, not its target #%d", id, (void *)o, target);
    frt_decref(o);
    return 1;
}

static long o_wr_count(void *ctx, int id)
{
    (void)ctx;
    return (long)frt_weakref_count(ptr_of(id));
}

static int o_fin_alive(void *ctx, int f)
{
    (void)ctx;
    frt_finalizer *fi = atomic_load(&X.fin[f]);
    return fi ? frt_finalizer_alive(fi) : -1;
}

static int o_res_present(void *ctx, int id)
{
    (void)ctx;
    frt_object *o = atomic_load(&X.res[id]);
    if (o && o != ptr_of(id))
        prop_fail("resurrection-table", "entry #%d holds %p, not #%d", id, (void *)o, id);
    return o != NULL;
}

static void o_check_object(void *ctx, int id, const prop_mobj *m)
{
    (void)ctx;
    frt_object *o = ptr_of(id);
    if (!o)
        prop_fail("model", "internal: no pointer for #%d", id);
    if (m->kind == MK_WREF) {
        if (o->ob_type != atomic_load(&X.wr_type) || !frt_weakref_from_object(o))
            prop_fail("use-after-free", "weakref #%d's block has type %s", id,
                      o->ob_type ? o->ob_type->name : "NULL (freed)");
        return;
    }
    pobj *p = whole(o, id, "barrier check");
    if (p->kind != m->kind || o->ob_type != type_of_kind(m->kind) || p->nslots != m->nslots)
        prop_fail("use-after-free", "#%d: kind %u/%u slots %u/%u", id, p->kind, m->kind, p->nslots,
                  m->nslots);
    for (int s = 0; s < p->nslots; s++) {
        frt_object *want = m->slot[s] >= 0 ? ptr_of(m->slot[s]) : NULL;
        if (p->slot[s] != want)
            prop_fail("slot", "#%d.slot[%d] holds %p, the model says #%d (%p)", id, s,
                      (void *)p->slot[s], m->slot[s], (void *)want);
    }
}

typedef struct ptr_id {
    frt_object *p;
    size_t j;
} ptr_id;

static int cmp_ptr_id(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)((const ptr_id *)a)->p, y = (uintptr_t)((const ptr_id *)b)->p;
    return x < y ? -1 : x > y;
}

static int o_gens(void *ctx, const int *ids, size_t n, int8_t *out)
{
    (void)ctx;
    ptr_id *map = calloc(n ? n : 1, sizeof *map);
    if (!map)
        return -1;
    for (size_t j = 0; j < n; j++) {
        map[j] = (ptr_id){ptr_of(ids[j]), j};
        out[j] = PROP_GEN_FROZEN; /* in none of 0..2 */
    }
    qsort(map, n, sizeof *map, cmp_ptr_id);
    int rc = 0;
    for (int g = 0; g < 3 && rc == 0; g++) {
        size_t total = frt_gc_get_objects(g, NULL, 0), cap = total + 16;
        frt_object **objs = calloc(cap, sizeof *objs);
        if (!objs) {
            rc = -1;
            break;
        }
        size_t got = frt_gc_get_objects(g, objs, cap);
        if (got > cap)
            prop_fail("gc_get_objects", "generation %d grew from %zu to %zu objects while quiescent",
                      g, total, got);
        for (size_t i = 0; i < got; i++) {
            ptr_id key = {objs[i], 0};
            ptr_id *hit = bsearch(&key, map, n, sizeof *map, cmp_ptr_id);
            if (hit)
                out[hit->j] = out[hit->j] == PROP_GEN_FROZEN ? (int8_t)g : -1;
            frt_decref(objs[i]);
        }
        free(objs);
    }
    free(map);
    return rc;
}

static long o_freeze_count(void *ctx)
{
    (void)ctx;
    return (long)frt_gc_get_freeze_count();
}

static const prop_observer observer = {
    NULL,          o_destroyed,   o_finalized,  o_called,      o_fn_ran,
    o_collections, o_refcount,    o_wr_get,     o_wr_count,    o_fin_alive,
    o_res_present, o_check_object, o_gens,      o_freeze_count, o_is_hot,
};

/* ------------------------------------------------------------------ */
/* Steps                                                                */

static void deliver(void)
{
    prop_model *m = &X.model;
    for (size_t i = 0; i < m->ndeliv; i++) {
        prop_delivery *d = &m->deliv[i];
        frt_object **src = &X.w[d->from].mbox[d->to][d->k];
        frt_object *o = *src;
        *src = NULL;
        if (!o)
            prop_fail("model", "internal: delivery t%u -> t%u #%u is empty", d->from, d->to, d->k);
        if (d->slot >= 0) {
            if (X.w[d->to].h[d->slot])
                prop_fail("model", "internal: delivery into a full handle slot");
            X.w[d->to].h[d->slot] = o;
        } else {
            frt_decref(o); /* the receiver has no room: the barrier drops it */
        }
    }
    for (unsigned t = 0; t < X.threads; t++)
        for (unsigned u = 0; u < X.threads; u++)
            for (int k = 0; k < PROP_MBCAP; k++)
                if (X.w[t].mbox[u][k])
                    prop_fail("model", "internal: t%u's mailbox to t%u keeps a reference", t, u);
}

static void trace_step(FILE *f, const char *what, const prop_rop *rops, size_t n)
{
    if (!f)
        return;
    fprintf(f, "%s\n", what);
    for (size_t i = 0; i < n; i++)
        prop_rop_print(f, &X.model, &rops[i]);
    fflush(f);
}

static size_t step_no;

static void do_round(const prop_op *ops, size_t n, size_t pidx, const prop_cfg *cfg,
                     prop_result *res)
{
    prop_rop *rops = calloc(n ? n : 1, sizeof *rops);
    size_t counts[PROP_MAX_THREADS];
    if (!rops)
        abort();
    step_no++;
    snprintf(prop_fail_where, sizeof prop_fail_where, "step %zu (round of program ops %zu..%zu)",
             step_no, pidx, pidx + n - 1);
    size_t nr = prop_model_plan_round(&X.model, ops, n, pidx, rops, counts);
    exec_round(rops, counts, cfg->serial);
    frt_safepoint(); /* thread 0 takes back remote frees, runs a pending collection */
    prop_model_apply(&X.model, rops, nr);
    deliver();
    X.model.step_concurrent = !cfg->serial && X.threads > 1;
    char what[64];
    snprintf(what, sizeof what, "round (step %zu):", step_no);
    trace_step(cfg->trace, what, rops, nr);
    prop_model_reconcile(&X.model, &observer, NULL, rops, nr);
    res->rounds++;
    res->ops_run += nr;
    free(rops);
}

static void do_global(const prop_op *op, size_t pidx, const prop_cfg *cfg, prop_result *res)
{
    prop_model *m = &X.model;
    prop_rop r;
    step_no++;
    snprintf(prop_fail_where, sizeof prop_fail_where, "step %zu (%s, program op %zu)", step_no,
             prop_op_name(op->kind), pidx);
    if (!prop_model_plan_global(m, op, pidx, &r))
        return;
    prop_expect e;
    int predicted = 0;
    size_t t[3];
    switch (r.kind) {
    case P_G_COLLECT: {
        long before = atomic_load(&X.ncoll);
        prop_model_learn_gens(m, &observer);
        if (atomic_load(&X.ncoll) != before) {
            /* a collection was pending on this thread and ran in the stop
             * that read the generations: account for it first */
            prop_model_reconcile(m, &observer, NULL, NULL, 0);
            prop_model_plan_global(m, op, pidx, &r);
            prop_model_learn_gens(m, &observer);
        }
        prop_model_predict_collect(m, r.gen, &e);
        predicted = 1;
        r.result = frt_gc_collect(r.gen);
        if (r.result != e.ret)
            prop_fail("collect-result", "frt_gc_collect(%u) returned %ld; the model finds %ld "
                      "collected (%zu more resurrected)", r.gen, r.result, e.ret,
                      e.n_resurrected);
        res->collections_checked++;
        break;
    }
    case P_G_FREEZE:
        frt_gc_freeze();
        break;
    case P_G_UNFREEZE:
        frt_gc_unfreeze();
        break;
    case P_G_THRESH: {
        size_t t0 = prop_thresh_t0[r.mk % 6], t1 = prop_thresh_t12[r.ns % 3],
               t2 = prop_thresh_t12[r.fm % 3];
        if (frt_gc_set_threshold(t0, t1, t2) != 0)
            prop_fail("threshold", "frt_gc_set_threshold failed");
        frt_gc_get_threshold(t);
        if (t[0] != t0 || t[1] != t1 || t[2] != t2)
            prop_fail("threshold", "frt_gc_get_threshold after set");
        break;
    }
    case P_G_ENABLE:
        frt_gc_enable();
        if (!frt_gc_isenabled())
            prop_fail("enable", "frt_gc_isenabled is 0 after frt_gc_enable");
        break;
    case P_G_DISABLE:
        frt_gc_disable();
        if (frt_gc_isenabled())
            prop_fail("enable", "frt_gc_isenabled is 1 after frt_gc_disable");
        break;
    case P_G_RELEASE: {
        frt_object *o = atomic_exchange(&X.res[r.id], NULL);
        if (!o)
            prop_fail("resurrection-table", "#%d is not in the resurrection table", r.id);
        frt_decref(o);
        break;
    }
    default:
        break;
    }
    prop_model_apply(m, &r, 1);
    m->step_concurrent = 0;
    trace_step(cfg->trace, "barrier:", &r, 1);
    prop_model_reconcile(m, &observer, predicted ? &e : NULL, &r, 1);
    if (predicted)
        prop_expect_free(&e);
    (void)res;
}

static void setup(const prop_prog *prog)
{
    memset(&X, 0, sizeof X);
    X.threads = prog->threads;
    prop_model_init(&X.model, prog->threads, prog->n);
    X.nids = X.model.nids;
    X.nfins = X.model.nfins;
    X.child_base = X.model.child_base;
    X.ptr = calloc(X.nids, sizeof *X.ptr);
    X.res = calloc(X.nids, sizeof *X.res);
    X.fin = calloc(X.nfins, sizeof *X.fin);
    X.destroyed = calloc(X.nids, sizeof *X.destroyed);
    X.finalized = calloc(X.nids, sizeof *X.finalized);
    X.called = calloc(X.nids, sizeof *X.called);
    X.fn = calloc(X.nfins, sizeof *X.fn);
    if (!X.ptr || !X.res || !X.fin || !X.destroyed || !X.finalized || !X.called || !X.fn) {
        perror("property: calloc");
        abort();
    }
}

static void teardown(void)
{
    prop_model_free(&X.model);
    free(X.ptr);
    free(X.res);
    free(X.fin);
    free(X.destroyed);
    free(X.finalized);
    free(X.called);
    free(X.fn);
}

#define FIELD(f) {#f, offsetof(prop_result, f)}
const prop_field prop_result_fields[] = {
    FIELD(steps),       FIELD(rounds),      FIELD(ops_run),         FIELD(objects),
    FIELD(weakrefs),    FIELD(finalizers),  FIELD(max_alive),       FIELD(collections),
    FIELD(collections_checked), FIELD(unreachable), FIELD(destroyed), FIELD(finalized),
    FIELD(resurrected), FIELD(callbacks),   FIELD(fn_ran),          FIELD(gets_ok),
    FIELD(gets_null),   FIELD(learned_cleared), FIELD(steps_with_collections),
    FIELD(ops_overlapped),
};
#undef FIELD
const size_t prop_result_nfields = sizeof prop_result_fields / sizeof prop_result_fields[0];

void prop_run(const prop_prog *prog, const prop_cfg *cfg, prop_result *res)
{
    memset(res, 0, sizeof *res);
    setup(prog);
    step_no = 0;
    snprintf(prop_fail_where, sizeof prop_fail_where, "init");
    X.model.trace = cfg->trace != NULL;
    X.model.trace_out = cfg->trace;
    frt_config c;
    frt_config_default(&c);
    /* The model knows which objects are hot from make_hot: the runtime
     * must not promote others by itself (test_hot_adaptive tests that). */
    c.hot_adaptive = FRT_HOT_ADAPTIVE_OFF;
    if (frt_init(&c) != 0)
        prop_fail("init", "frt_init failed");
    if (frt_gc_callback_add(gc_callback, NULL) != 0)
        prop_fail("init", "frt_gc_callback_add failed");
    if (sem_init(&X.done, 0, 0) != 0)
        abort();
    for (unsigned t = 0; t < X.threads; t++) {
        X.w[t].t = t;
        if (sem_init(&X.w[t].go, 0, 0) != 0)
            abort();
        if (t > 0 && pthread_create(&X.w[t].th, NULL, worker_main, &X.w[t]) != 0)
            prop_fail("init", "pthread_create failed");
    }

    size_t round_max = cfg->round_max ? cfg->round_max : 64;
    for (size_t i = 0; i < prog->n;) {
        const prop_op *op = &prog->ops[i];
        if (prop_op_is_global(op)) {
            do_global(op, i, cfg, res);
            i++;
            continue;
        }
        size_t j = i;
        while (j < prog->n && !prop_op_is_global(&prog->ops[j]) && j - i < round_max)
            j++;
        do_round(prog->ops + i, j - i, i, cfg, res);
        i = j;
    }

    /* Teardown, checked like everything else: every thread drops what it
     * holds, the frozen generation goes back, the resurrection table is
     * emptied and full collections run until nothing is left. */
    prop_model *m = &X.model;
    prop_prog td;
    prop_prog_init(&td, X.threads);
    for (unsigned t = 0; t < X.threads; t++) {
        for (size_t k = prop_model_handles(m, t); k > 0; k--)
            prop_prog_push(&td, (prop_op){P_DROP, (uint8_t)t, 0, 0, 0});
        for (size_t k = prop_model_fin_handles(m, t); k > 0; k--)
            prop_prog_push(&td, (prop_op){P_FIN_FREE, (uint8_t)t, 0, 0, 0});
    }
    if (td.n)
        do_round(td.ops, td.n, prog->n, cfg, res);
    prop_prog_free(&td);
    prop_op unfreeze = {P_G_UNFREEZE, 0, 0, 0, 0}, release = {P_G_RELEASE, 0, 0, 0, 0},
            full = {P_G_COLLECT, 0, 2, 0, 0};
    if (m->frozen_any)
        do_global(&unfreeze, prog->n, cfg, res);
    for (int round = 0; round < 16 && (prop_model_alive(m) || prop_model_res_count(m)); round++) {
        while (prop_model_res_count(m))
            do_global(&release, prog->n, cfg, res);
        do_global(&full, prog->n, cfg, res);
    }
    snprintf(prop_fail_where, sizeof prop_fail_where, "end (everything dropped and collected)");
    prop_model_check_final(m, &observer);

    for (unsigned t = 1; t < X.threads; t++) {
        X.w[t].quit = 1;
        sem_post(&X.w[t].go);
    }
    frt_blocking_begin();
    for (unsigned t = 1; t < X.threads; t++)
        pthread_join(X.w[t].th, NULL);
    frt_blocking_end();
    for (unsigned t = 0; t < X.threads; t++)
        sem_destroy(&X.w[t].go);
    sem_destroy(&X.done);

    /* Every block came back: the heaps (this thread's and those the test
     * threads left) hold nothing once their remote frees are taken back. */
    frt_heap_trim();
    frt_heap_stats hs;
    frt_heap_get_stats(&hs);
    if (hs.blocks_in_use != 0 || hs.arenas != 0)
        prop_fail("heap", "after freeing everything and frt_heap_trim: %zu blocks in use, %zu "
                  "arenas mapped", hs.blocks_in_use, hs.arenas);
    frt_gc_callback_remove(gc_callback, NULL);
    res->collections = (size_t)atomic_load(&X.ncoll);
    int alive = frt_shutdown();
    if (alive != 0)
        prop_fail("shutdown", "frt_shutdown returned %d (objects still alive)", alive);
    res->steps = step_no;
    res->objects = m->objects_made;
    res->weakrefs = m->weakrefs_made;
    res->finalizers = m->finalizers_made;
    res->max_alive = m->max_alive;
    res->unreachable = m->unreachable_found;
    res->destroyed = m->ev_destroyed;
    res->finalized = m->ev_finalized;
    res->resurrected = m->ev_resurrected;
    res->callbacks = m->ev_callbacks;
    res->fn_ran = m->ev_fn;
    res->gets_ok = m->gets_ok;
    res->gets_null = m->gets_null;
    res->learned_cleared = m->learned_cleared;
    res->steps_with_collections = m->steps_with_collections;
    res->ops_overlapped = atomic_load(&X.overlapped);
    teardown();
}
