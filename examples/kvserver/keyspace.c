/* The key space on frt_map (keyspace.h). */
#define _GNU_SOURCE
#include "keyspace.h"

#include <sched.h>
#include <stdatomic.h>
#include <time.h>

static frt_map *space;
static _Atomic uint64_t expired_total;
static _Atomic long nexpires; /* slots with a deadline, for INFO */
/* No deadline falls before this: the sweeper walks the map only from then
 * (a walk visits every key, and few of them may have a deadline). */
static _Atomic int64_t next_due = INT64_MAX;

int64_t kv_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- kv_slot: a container of one reference -------------------------------- */

static int slot_traverse(frt_object *self, frt_visit_fn visit, void *arg)
{
    return frt_ref_visit(&((kv_slot *)self)->val, visit, arg);
}

static void slot_clear(frt_object *self)
{
    frt_ref_clear(&((kv_slot *)self)->val);
}

static const frt_type kv_slot_type = {"kv.slot", sizeof(kv_slot), slot_traverse, slot_clear, NULL, slot_clear};

/* ---- the map ----------------------------------------------------------------- */

int ks_init(void)
{
    atomic_store(&expired_total, 0);
    atomic_store(&nexpires, 0);
    atomic_store(&next_due, INT64_MAX);
    space = frt_map_new(0, NULL);
    return space ? 0 : -1;
}

static int past(int64_t expire_ms)
{
    return expire_ms && expire_ms <= kv_now_ms();
}

/* Have key removed if it is past its deadline (ks_lock does it). */
static void remove_if_expired(const char *key, size_t len)
{
    ks_op op;
    ks_lock(&op, key, len, 0);
    ks_unlock(&op);
}

frt_object *ks_get(const char *key, size_t len, int64_t *expire_ms)
{
    kv_slot *s = (kv_slot *)frt_map_get(space, key, len);
    if (!s)
        return NULL;
    frt_object *v = frt_ref_load(&s->val);
    int64_t exp = atomic_load_explicit(&s->expire_ms, memory_order_acquire);
    frt_decref(&s->ob);
    if (v && past(exp)) {
        frt_decref(v);
        remove_if_expired(key, len);
        return NULL;
    }
    if (expire_ms)
        *expire_ms = exp;
    return v;
}

static void lower_next_due(int64_t due)
{
    int64_t cur = atomic_load_explicit(&next_due, memory_order_relaxed);
    while (due < cur && !atomic_compare_exchange_weak(&next_due, &cur, due))
        ;
}

static void count_expire(int64_t from, int64_t to)
{
    if (!from != !to)
        atomic_fetch_add_explicit(&nexpires, to ? 1 : -1, memory_order_relaxed);
}

/* Under the section: the slot leaves the map at the unlock. */
static void mark_dead(ks_op *op)
{
    kv_slot *s = op->slot;
    frt_object *v = frt_ref_exchange(&s->val, NULL);
    if (v) {
        frt_xdecref(op->old);
        op->old = v;
    }
    count_expire(atomic_load_explicit(&s->expire_ms, memory_order_relaxed), 0);
    atomic_store_explicit(&s->expire_ms, 0, memory_order_release);
    s->dead = 1;
    op->killed = 1;
}

/* End the section; a slot this op marked dead leaves the map. No slot can
 * be inserted for the key while the dead one is in the map, so the delete
 * removes exactly this slot. (A slot some other op killed while this op's
 * section was suspended is that op's to delete.) */
static void release(ks_op *op)
{
    kv_slot *s = op->slot;
    frt_critical_section_end(&op->cs);
    if (op->killed)
        frt_map_delete(space, op->key, op->len);
    op->killed = 0;
    frt_decref(&s->ob);
    op->slot = NULL;
}

kv_slot *ks_lock(ks_op *op, const char *key, size_t len, int create)
{
    op->key = key;
    op->len = len;
    op->slot = NULL;
    op->old = NULL;
    op->killed = 0;
    for (;;) {
        kv_slot *s = (kv_slot *)frt_map_get(space, key, len);
        if (!s) {
            if (!create)
                return NULL;
            kv_slot *fresh = (kv_slot *)frt_new(&kv_slot_type); /* zeroed: no value, no deadline */
            if (!fresh)
                return NULL;
            s = (kv_slot *)frt_map_get_or_insert(space, key, len, &fresh->ob);
            frt_decref(&fresh->ob);
            if (!s)
                return NULL;
        }
        frt_critical_section_begin(&op->cs, &s->ob);
        if (s->dead) {
            /* Another thread is deleting it from the map: wait for that. */
            frt_critical_section_end(&op->cs);
            frt_decref(&s->ob);
            sched_yield();
            frt_safepoint();
            continue;
        }
        op->slot = s;
        if (!create && !ks_value(op)) {
            release(op); /* a slot another writer is about to fill: absent until it has */
            return NULL;
        }
        if (!past(atomic_load_explicit(&s->expire_ms, memory_order_relaxed)))
            return s;
        mark_dead(op);
        atomic_fetch_add_explicit(&expired_total, 1, memory_order_relaxed);
        release(op);
    }
}

frt_object *ks_value(const ks_op *op)
{
    return op->slot ? frt_ref_peek(&op->slot->val) : NULL; /* every writer is excluded */
}

void ks_store(ks_op *op, frt_object *val)
{
    if (!val) {
        mark_dead(op);
        return;
    }
    frt_object *v = frt_ref_exchange(&op->slot->val, val);
    if (v) {
        frt_xdecref(op->old); /* two stores in one op: the first one's value */
        op->old = v;
    }
}

void ks_set_expire(ks_op *op, int64_t expire_ms)
{
    kv_slot *s = op->slot;
    count_expire(atomic_load_explicit(&s->expire_ms, memory_order_relaxed), expire_ms);
    atomic_store_explicit(&s->expire_ms, expire_ms, memory_order_release);
    if (expire_ms)
        lower_next_due(expire_ms);
}

int64_t ks_expire(const ks_op *op)
{
    return atomic_load_explicit(&op->slot->expire_ms, memory_order_relaxed);
}

int ks_changed(const ks_op *op, const frt_object *expect)
{
    return op->slot->dead || ks_value(op) != expect;
}

void ks_unlock(ks_op *op)
{
    if (op->slot) {
        if (!op->slot->dead && !ks_value(op))
            mark_dead(op); /* created and never filled, or emptied */
        release(op);
    }
    frt_xdecref(op->old); /* an old value may be a long list: freed with no lock held */
    op->old = NULL;
}

/* ---- whole-space operations ---------------------------------------------- */

typedef struct walk {
    int expired_only;
    size_t n, seen;
} walk;

/* ks_lock removes a key past its deadline; flush removes the rest too. */
static int walk_one(const void *key, size_t len, frt_object *key_obj, frt_object *value, void *arg)
{
    walk *w = arg;
    int64_t due = atomic_load_explicit(&((kv_slot *)value)->expire_ms, memory_order_acquire);
    if (w->expired_only && due && !past(due))
        lower_next_due(due);
    if (!w->expired_only || past(due)) {
        ks_op op;
        if (ks_lock(&op, key, len, 0) && !w->expired_only) {
            ks_store(&op, NULL);
            w->n++;
        }
        ks_unlock(&op);
    }
    if ((++w->seen & 1023) == 0)
        frt_safepoint(); /* a long walk: let a pending stop-the-world in */
    return 0;
}

size_t ks_sweep(void)
{
    if (atomic_load_explicit(&nexpires, memory_order_relaxed) == 0 ||
        kv_now_ms() < atomic_load_explicit(&next_due, memory_order_relaxed))
        return 0;
    /* The walk sets it again from the deadlines it passes; one set
     * meanwhile lowers it itself. */
    atomic_store_explicit(&next_due, INT64_MAX, memory_order_relaxed);
    uint64_t before = ks_expired_total();
    walk w = {1, 0, 0};
    frt_map_foreach(space, walk_one, &w);
    return (size_t)(ks_expired_total() - before); /* lazy removals meanwhile included */
}

size_t ks_flush(void)
{
    walk w = {0, 0, 0};
    frt_map_foreach(space, walk_one, &w);
    return w.n;
}

void ks_destroy(void)
{
    ks_flush();
    frt_decref((frt_object *)space);
    space = NULL;
}

void ks_counts(size_t *keys, size_t *expires)
{
    long x = atomic_load_explicit(&nexpires, memory_order_relaxed);
    *keys = frt_map_len(space);
    *expires = x > 0 ? (size_t)x : 0;
}

uint64_t ks_expired_total(void)
{
    return atomic_load_explicit(&expired_total, memory_order_relaxed);
}
