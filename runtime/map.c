/* The concurrent map (include/frt/map.h) on liburcu's rculfhash.
 *
 * Each entry is a node in the lock-free table; its value lives in an atomic
 * slot, read like an frt_ref (try-incref, then re-check the slot). A node's
 * life: added with cds_lfht_add_unique; its value replaced by CAS; deleted
 * by a CAS of the value to TOMB (the linearization point: from then on the
 * key is absent, lookups skip the node) followed by cds_lfht_del by the
 * same thread. A deleted node is freed, and its key object dropped, after a
 * grace period (qsbr.h), so a reader that found it can still read it.
 * Inside a lookup no reference is dropped: a drop may run a destroy, that
 * may reach a quiescent state and free the node under us; references to
 * drop wait in a small list until the operation is done with its node.
 * Weak maps keep, per entry, a weak reference (an object) in the slot; an
 * entry whose target died is deleted by the first operation that sees it. */
#include <string.h>
#include <urcu-qsbr.h>
#include <urcu/rculfhash.h>

#include <frt/errors.h>
#include <frt/lifecycle.h>
#include <frt/map.h>
#include <frt/weakref.h>

#include "debug.h"
#include "object_internal.h"
#include "os.h"
#include "qsbr.h"
#include "tstate.h"
#include "try_incref.h"

/* A deleted entry's value: an immortal object no caller ever sees. */
static const frt_type tomb_type = {"frt.map.tombstone", sizeof(frt_object), NULL, NULL, NULL, NULL};
static frt_object tomb_obj = {.ob_ref_local = FRT_REF_IMMORTAL,
                              .ob_ref_shared = FRT_REF_MERGED,
                              .ob_type = &tomb_type};
#define TOMB (&tomb_obj)
#define RETRY ((frt_object *)1) /* a stale reference went to the drop list */

struct frt_map {
    frt_object ob;
    struct cds_lfht *ht;
    const frt_map_key_ops *ops; /* NULL: byte keys */
    unsigned flags;
    _Atomic long len;
    _Atomic unsigned long buckets; /* the size the table was last resized to */
    _Atomic int resizing;
};

typedef struct node {
    struct cds_lfht_node lfht;
    frt_qsbr_later later; /* the free after a grace period */
    _Atomic(frt_object *) value;
    frt_object *key_obj;
    unsigned long hash;
    size_t len;
    unsigned char bytes[];
} node;

typedef struct key {
    const void *bytes;
    size_t len;
    frt_object *obj;
    const frt_map_key_ops *ops;
    unsigned long hash;
} key;

/* References an operation drops once it is done with its nodes: a few
 * inline, more (an iteration) in a growing array. */
typedef struct drops {
    size_t n, cap;
    frt_object *inline_o[4];
    frt_object **o;
} drops;

#define DROPS_INIT(d) {0, 4, {0}, (d).inline_o}

static void drop_later(drops *d, frt_object *o)
{
    if (d->n == d->cap) {
        size_t cap = d->cap * 2;
        frt_object **g = frt__sys_realloc(d->o == d->inline_o ? NULL : d->o, cap * sizeof *g);
        if (!g)
            return; /* out of memory: the reference leaks, which is safe */
        if (d->o == d->inline_o)
            memcpy(g, d->inline_o, sizeof d->inline_o);
        d->o = g;
        d->cap = cap;
    }
    d->o[d->n++] = o;
}

static void drop_now(drops *d)
{
    for (size_t i = 0; i < d->n; i++)
        frt_decref(d->o[i]);
    d->n = 0;
    if (d->o != d->inline_o)
        frt__sys_free(d->o);
    d->o = d->inline_o;
    d->cap = 4;
}

static unsigned long hash_bytes(const void *p, size_t n)
{
    /* FNV-1a, then a final mix: the table takes its bucket from the low
     * bits and orders by the reversed hash, so every bit must be mixed. */
    const unsigned char *s = p;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 0x100000001b3ull;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return (unsigned long)h;
}

static int match(struct cds_lfht_node *ln, const void *arg)
{
    node *n = caa_container_of(ln, node, lfht);
    const key *k = arg;
    FRT_QSBR_ACQUIRE(n);
    if (n->hash != k->hash || atomic_load_explicit(&n->value, memory_order_acquire) == TOMB)
        return 0;
    if (k->ops)
        return n->key_obj == k->obj || k->ops->eq(n->key_obj, k->obj);
    return n->len == k->len && memcmp(n->bytes, k->bytes, k->len) == 0;
}

static node *lookup(frt_map *m, const key *k)
{
    struct cds_lfht_iter it;
    cds_lfht_lookup(m->ht, k->hash, match, k, &it);
    struct cds_lfht_node *ln = cds_lfht_iter_get_node(&it);
    return ln ? caa_container_of(ln, node, lfht) : NULL;
}

/* A new reference to what the slot holds; NULL, TOMB, or RETRY (a stale
 * reference went to d: drop it and start over). */
static frt_object *slot_load(_Atomic(frt_object *) *slot, drops *d)
{
    frt_object *o = atomic_load_explicit(slot, memory_order_acquire);
    if (!o || o == TOMB)
        return o;
    if (!frt__try_incref(o))
        return RETRY; /* dying: the slot has moved on */
    if (atomic_load_explicit(slot, memory_order_acquire) == o)
        return o;
    drop_later(d, o);
    return RETRY;
}

static void node_free(frt_qsbr_later *w)
{
    node *n = caa_container_of(w, node, later);
    if (n->key_obj && frt_thread_is_attached())
        frt_decref(n->key_obj); /* (at shutdown the arenas take it) */
    frt__sys_free(n);
}

/* The value was just CASed to TOMB by us: unlink and retire the node. */
static void node_retire(frt_map *m, node *n, frt_object *old, drops *d)
{
    cds_lfht_del(m->ht, &n->lfht);
    frt__qsbr_defer_call(&n->later, node_free);
    atomic_fetch_sub_explicit(&m->len, 1, memory_order_relaxed);
    drop_later(d, old);
}

/* Keep about one entry per bucket. rculfhash resizes while readers and
 * other writers go on; the thread that crosses a threshold does it, in a
 * blocking section (a resize waits for grace periods), and only from a
 * clean point (else a later write does it). liburcu's own automatic
 * resizing never ran here (its worker stayed idle), so the map drives it. */
static void maybe_resize(frt_map *m)
{
    unsigned long n = (unsigned long)atomic_load_explicit(&m->len, memory_order_relaxed);
    unsigned long b = atomic_load_explicit(&m->buckets, memory_order_relaxed), want = b;
    if (n > b)
        while (want < 2 * n)
            want <<= 1;
    else if (b > 64 && n < b / 8)
        want = b / 4;
    frt_tstate *ts = frt__tstate();
    /* In a forked child a resize would wait for liburcu's grace period,
     * which never comes there (qsbr.c): the table keeps its size. */
    if (want == b || !ts || frt__qsbr_forked() || ts->blocking_depth || ts->stw_depth ||
        ts->in_dealloc || ts->in_gc_callback)
        return;
    int idle = 0;
    if (!atomic_compare_exchange_strong(&m->resizing, &idle, 1))
        return;
    frt_blocking_begin();
    cds_lfht_resize(m->ht, want);
    frt_blocking_end();
    atomic_store_explicit(&m->buckets, want, memory_order_relaxed);
    atomic_store(&m->resizing, 0);
}

static int try_delete(frt_map *m, node *n, frt_object *expect, drops *d)
{
    if (!atomic_compare_exchange_strong_explicit(&n->value, &expect, TOMB, memory_order_acq_rel,
                                                 memory_order_acquire))
        return 0;
    node_retire(m, n, expect, d);
    return 1;
}

/* The live value behind what a slot holds: itself, or a weak map's target
 * (a new reference, NULL once dead; the weakref goes to d). */
static frt_object *resolve(frt_map *m, frt_object *v, drops *d)
{
    if (!(m->flags & FRT_MAP_WEAK_VALUES))
        return v;
    frt_object *t = frt_weakref_get(frt_weakref_from_object(v));
    drop_later(d, v);
    return t;
}

static int usable(frt_map *m, int obj_keys, const char *what)
{
    if (FRT_UNLIKELY(!m || (m->ops != NULL) != obj_keys))
        return 0;
    if (FRT_UNLIKELY(!frt__tstate())) {
        FRT_MISUSE(&m->ob, what);
        return 0;
    }
    FRT_CHECK_LIVE(&m->ob, "frt_map");
    return 1;
}

static frt_object *map_get(frt_map *m, key *k)
{
    for (;;) {
        drops d = DROPS_INIT(d);
        frt_object *res = NULL;
        int again = 0;
        node *n = lookup(m, k);
        if (n) {
            frt_object *v = slot_load(&n->value, &d);
            if (v == RETRY || v == TOMB) {
                again = 1;
            } else if (v) {
                res = resolve(m, v, &d);
                if (!res) /* a weak value died: the entry goes */
                    try_delete(m, n, v, &d);
            }
        }
        drop_now(&d);
        if (!again)
            return res;
    }
}

static node *node_new(const key *k)
{
    node *n = frt__sys_calloc(1, sizeof(node) + (k->ops ? 0 : k->len));
    if (!n)
        return NULL;
    n->hash = k->hash;
    if (k->ops) {
        n->key_obj = k->obj;
        frt_incref(k->obj);
    } else {
        n->len = k->len;
        memcpy(n->bytes, k->bytes, k->len);
    }
    return n;
}

/* What the map stores for value: a published reference to it, or (weak
 * maps) to a new weak reference to it. NULL: out of memory. */
static frt_object *stored_new(frt_map *m, frt_object *value)
{
    if (m->flags & FRT_MAP_WEAK_VALUES) {
        frt_weakref *wr = frt_weakref_new(value, NULL, NULL);
        if (!wr)
            return NULL;
        frt_object *o = frt_weakref_object(wr);
        frt__ref_publish(o);
        frt_decref(o);
        return o;
    }
    frt__ref_publish(value);
    return value;
}

/* Add node fresh holding stored, or find the live entry for k. */
static node *insert(frt_map *m, key *k, node *fresh, frt_object *stored)
{
    atomic_store_explicit(&fresh->value, stored, memory_order_relaxed);
    FRT_QSBR_RELEASE(fresh);
    struct cds_lfht_node *ln = cds_lfht_add_unique(m->ht, k->hash, match, k, &fresh->lfht);
    if (ln == &fresh->lfht) {
        atomic_fetch_add_explicit(&m->len, 1, memory_order_relaxed);
        return fresh;
    }
    atomic_store_explicit(&fresh->value, NULL, memory_order_relaxed);
    return caa_container_of(ln, node, lfht);
}

static int map_set(frt_map *m, key *k, frt_object *value)
{
    frt_object *stored = stored_new(m, value);
    if (!stored)
        return FRT_ENOMEM;
    node *fresh = NULL;
    for (;;) {
        drops d = DROPS_INIT(d);
        node *n = lookup(m, k);
        if (!n) {
            if (!fresh && !(fresh = node_new(k))) {
                frt_decref(stored);
                return FRT_ENOMEM;
            }
            n = insert(m, k, fresh, stored);
            if (n == fresh) {
                maybe_resize(m);
                return 0;
            }
        }
        frt_object *cur = atomic_load_explicit(&n->value, memory_order_acquire);
        int done = cur != TOMB && atomic_compare_exchange_strong_explicit(
                                      &n->value, &cur, stored, memory_order_acq_rel,
                                      memory_order_acquire);
        if (done)
            drop_later(&d, cur);
        drop_now(&d);
        if (done) {
            if (fresh)
                node_free(&fresh->later); /* never published */
            return 0;
        }
    }
}

static int map_delete(frt_map *m, key *k)
{
    for (;;) {
        drops d = DROPS_INIT(d);
        int res = -1;
        node *n = lookup(m, k);
        if (!n) {
            res = 0;
        } else {
            frt_object *cur = atomic_load_explicit(&n->value, memory_order_acquire);
            if (cur != TOMB && try_delete(m, n, cur, &d)) {
                res = 1;
                if (m->flags & FRT_MAP_WEAK_VALUES) /* a dead value was no entry */
                    res = frt_weakref_alive(frt_weakref_from_object(cur)) ? 1 : 0;
            }
        }
        drop_now(&d);
        if (res == 1)
            maybe_resize(m);
        if (res >= 0)
            return res;
    }
}

static frt_object *map_get_or_insert(frt_map *m, key *k, frt_object *value)
{
    frt_object *stored = NULL;
    node *fresh = NULL;
    frt_object *res = NULL;
    for (;;) {
        drops d = DROPS_INIT(d);
        int again = 0;
        node *n = lookup(m, k);
        if (!n) {
            if (!stored && !(stored = stored_new(m, value)))
                break;
            if (!fresh && !(fresh = node_new(k)))
                break;
            n = insert(m, k, fresh, stored);
            if (n == fresh) {
                fresh = NULL;
                stored = NULL;
                res = frt_newref(value);
                break;
            }
        }
        frt_object *v = slot_load(&n->value, &d);
        if (v == RETRY || v == TOMB || !v) {
            again = 1;
        } else {
            res = resolve(m, v, &d);
            if (!res) {
                try_delete(m, n, v, &d);
                again = 1;
            }
        }
        drop_now(&d);
        if (!again)
            break;
    }
    if (fresh)
        node_free(&fresh->later);
    else if (res)
        maybe_resize(m); /* we inserted */
    frt_xdecref(stored);
    return res;
}

/* ------------------------------------------------------------------ */
/* Iteration, and the map as an object.                               */

typedef struct snap_entry {
    frt_object *key_obj, *value;
    node *keynode; /* a private copy holding the key bytes */
} snap_entry;

/* Every entry, with references, taken in one walk that drops nothing. */
static snap_entry *snapshot(frt_map *m, size_t *count, drops *d)
{
    size_t n = 0, cap = 0;
    snap_entry *s = NULL;
    struct cds_lfht_iter it;
    struct cds_lfht_node *ln;
    cds_lfht_for_each(m->ht, &it, ln) {
        node *e = caa_container_of(ln, node, lfht);
        FRT_QSBR_ACQUIRE(e);
        frt_object *v = slot_load(&e->value, d);
        while (v == RETRY) /* replaced meanwhile: the entry holds the new value */
            v = slot_load(&e->value, d);
        if (v == TOMB || !v)
            continue; /* deleted during the walk */
        frt_object *live = resolve(m, v, d);
        if (!live) {
            try_delete(m, e, v, d);
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            snap_entry *g = frt__sys_realloc(s, cap * sizeof *s);
            if (!g) {
                frt_decref(live);
                break;
            }
            s = g;
        }
        s[n].value = live;
        s[n].key_obj = e->key_obj ? frt_newref(e->key_obj) : NULL;
        s[n].keynode = NULL;
        if (!e->key_obj) {
            key k = {e->bytes, e->len, NULL, NULL, e->hash};
            s[n].keynode = node_new(&k);
        }
        n++;
    }
    *count = n;
    return s;
}

int frt_map_foreach(frt_map *m, frt_map_visit_fn fn, void *arg)
{
    if (!fn || !m || !frt__tstate())
        return FRT_EINVAL;
    size_t n;
    drops d = DROPS_INIT(d);
    snap_entry *s = snapshot(m, &n, &d);
    drop_now(&d);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        if (!rc && (s[i].key_obj || s[i].keynode))
            rc = fn(s[i].keynode ? s[i].keynode->bytes : NULL, s[i].keynode ? s[i].keynode->len : 0,
                    s[i].key_obj, s[i].value, arg);
        frt_decref(s[i].value);
        frt_xdecref(s[i].key_obj);
        frt__sys_free(s[i].keynode);
    }
    frt__sys_free(s);
    return rc;
}

size_t frt_map_len(frt_map *m)
{
    long n = m ? atomic_load_explicit(&m->len, memory_order_relaxed) : 0;
    return n > 0 ? (size_t)n : 0;
}

/* World stopped (or no writer): report what the map holds strongly. */
static int map_traverse(frt_object *self, frt_visit_fn visit, void *arg)
{
    frt_map *m = (frt_map *)self;
    struct cds_lfht_iter it;
    struct cds_lfht_node *ln;
    cds_lfht_for_each(m->ht, &it, ln) {
        node *e = caa_container_of(ln, node, lfht);
        FRT_QSBR_ACQUIRE(e);
        frt_object *v = atomic_load_explicit(&e->value, memory_order_acquire);
        if (!v || v == TOMB)
            continue;
        int rc = visit(v, arg);
        if (!rc && e->key_obj)
            rc = visit(e->key_obj, arg);
        if (rc)
            return rc;
    }
    return 0;
}

/* Delete every entry (what a collection does to break a cycle). */
static void map_clear(frt_object *self)
{
    frt_map *m = (frt_map *)self;
    for (;;) {
        drops d = DROPS_INIT(d);
        int again = 0;
        struct cds_lfht_iter it;
        struct cds_lfht_node *ln;
        cds_lfht_for_each(m->ht, &it, ln) {
            node *e = caa_container_of(ln, node, lfht);
            FRT_QSBR_ACQUIRE(e);
            frt_object *v = atomic_load_explicit(&e->value, memory_order_acquire);
            if (v != TOMB && !try_delete(m, e, v, &d))
                again = 1; /* replaced meanwhile */
        }
        drop_now(&d);
        if (!again)
            return;
    }
}

typedef struct ht_grave {
    frt_qsbr_later later;
    struct cds_lfht *ht;
} ht_grave;

/* cds_lfht_destroy may wait for the table's resize work: in a blocking
 * section, on a clean point of an attached thread (a safepoint). */
static void ht_destroy(frt_qsbr_later *w)
{
    ht_grave *g = caa_container_of(w, ht_grave, later);
    int attached = frt_thread_is_attached();
    if (attached)
        frt_blocking_begin();
    cds_lfht_destroy(g->ht, NULL);
    if (attached)
        frt_blocking_end();
    frt__sys_free(g);
}

static void map_destroy(frt_object *self)
{
    frt_map *m = (frt_map *)self;
    map_clear(self);
    ht_grave *g = frt__sys_calloc(1, sizeof *g);
    if (!g)
        return; /* the empty table leaks: out of memory */
    g->ht = m->ht;
    frt__qsbr_defer_call(&g->later, ht_destroy);
}

static const frt_type map_type = {"frt.map", sizeof(frt_map), map_traverse, map_clear, NULL,
                                  map_destroy};

frt_map *frt_map_new(unsigned flags, const frt_map_key_ops *key_ops)
{
    if (flags & ~(unsigned)FRT_MAP_WEAK_VALUES)
        return NULL;
    if (key_ops && (!key_ops->hash || !key_ops->eq))
        return NULL;
    struct cds_lfht *ht = cds_lfht_new_flavor(64, 64, 0, 0, &urcu_qsbr_flavor, NULL);
    if (!ht)
        return NULL;
    frt_map *m = (frt_map *)frt_new(&map_type);
    if (!m) {
        cds_lfht_destroy(ht, NULL);
        return NULL;
    }
    m->ht = ht;
    m->ops = key_ops;
    m->flags = flags;
    atomic_store(&m->buckets, 64);
    return m;
}

/* ------------------------------------------------------------------ */
/* The two key kinds.                                                 */

static key bytes_key(const void *p, size_t len)
{
    key k = {p, len, NULL, NULL, hash_bytes(p, len)};
    return k;
}

static key obj_key(frt_map *m, frt_object *o)
{
    key k = {NULL, 0, o, m->ops, (unsigned long)m->ops->hash(o)};
    return k;
}

frt_object *frt_map_get(frt_map *m, const void *kp, size_t len)
{
    if (!usable(m, 0, "frt_map_get from a thread that is not attached") || (!kp && len))
        return NULL;
    key k = bytes_key(kp, len);
    return map_get(m, &k);
}

int frt_map_set(frt_map *m, const void *kp, size_t len, frt_object *value)
{
    if (!usable(m, 0, "frt_map_set from a thread that is not attached") || (!kp && len) || !value)
        return FRT_EINVAL;
    key k = bytes_key(kp, len);
    return map_set(m, &k, value);
}

int frt_map_delete(frt_map *m, const void *kp, size_t len)
{
    if (!usable(m, 0, "frt_map_delete from a thread that is not attached") || (!kp && len))
        return FRT_EINVAL;
    key k = bytes_key(kp, len);
    return map_delete(m, &k);
}

frt_object *frt_map_get_or_insert(frt_map *m, const void *kp, size_t len, frt_object *value)
{
    if (!usable(m, 0, "frt_map_get_or_insert from a thread that is not attached") || (!kp && len) ||
        !value)
        return NULL;
    key k = bytes_key(kp, len);
    return map_get_or_insert(m, &k, value);
}

frt_object *frt_map_get_obj(frt_map *m, frt_object *ko)
{
    if (!usable(m, 1, "frt_map_get_obj from a thread that is not attached") || !ko)
        return NULL;
    key k = obj_key(m, ko);
    return map_get(m, &k);
}

int frt_map_set_obj(frt_map *m, frt_object *ko, frt_object *value)
{
    if (!usable(m, 1, "frt_map_set_obj from a thread that is not attached") || !ko || !value)
        return FRT_EINVAL;
    key k = obj_key(m, ko);
    return map_set(m, &k, value);
}

int frt_map_delete_obj(frt_map *m, frt_object *ko)
{
    if (!usable(m, 1, "frt_map_delete_obj from a thread that is not attached") || !ko)
        return FRT_EINVAL;
    key k = obj_key(m, ko);
    return map_delete(m, &k);
}

frt_object *frt_map_get_or_insert_obj(frt_map *m, frt_object *ko, frt_object *value)
{
    if (!usable(m, 1, "frt_map_get_or_insert_obj from a thread that is not attached") || !ko ||
        !value)
        return NULL;
    key k = obj_key(m, ko);
    return map_get_or_insert(m, &k, value);
}
