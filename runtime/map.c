/* The concurrent map (include/frt/map.h) on frt's own table (map_table.h).
 *
 * A key's value lives in its slot, read like an frt_ref (try-incref, then
 * re-check the slot). get probes the table without a lock, and so does a
 * set of a key that is present: it swaps the slot's value by
 * compare-and-swap (its linearization point). What changes which slots hold
 * keys locks the stripe of the key's hash: a set that places the key in a
 * new slot, get_or_insert, and delete, which exchanges the value for
 * DELETED (the linearization point: from then on readers pass the slot).
 * So under a stripe lock a key's slot stays the key's, but its value may
 * still be swapped: what reads it there takes its reference as a get does
 * (slot_ref), and what deletes a value it has seen deletes by
 * compare-and-swap. A deleted key's entry (long
 * and object keys have one) is freed, and its key object dropped, after a
 * grace period (qsbr.h), so a reader that found it can still read it.
 * Inside a probe no reference is dropped and no lock is waited for: a drop
 * may run a destroy, and a wait puts the thread offline, and either lets a
 * grace period free the array or entry under us; references to drop wait
 * in a small list until the probe is done. Weak maps keep, per key, a weak
 * reference (an object) as the value; a key whose target died is deleted
 * by the first operation that sees it (a get only if the stripe is free:
 * get never waits). */
#include <string.h>

#include <frt/errors.h>
#include <frt/lifecycle.h>
#include <frt/map.h>
#include <frt/weakref.h>

#include "debug.h"
#include "map_table.h"
#include "object_internal.h"
#include "os.h"
#include "tstate.h"
#include "try_incref.h"

struct frt_map {
    frt_object ob;
    map_table *t;
    const frt_map_key_ops *ops; /* NULL: byte keys */
    unsigned flags;
};

typedef struct key {
    const void *bytes;
    size_t len;
    frt_object *obj;
    const frt_map_key_ops *ops;
    uint64_t hash;
    uint64_t word; /* as a slot holds it (map_table.h) */
    int kind;
} key;

/* References an operation drops once it is done with the table: a few
 * inline, more in a growing array. */
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

/* ------------------------------------------------------------------ */
/* The two key kinds.                                                 */

static inline key bytes_key(const void *p, size_t len)
{
    key k = {p, len, NULL, NULL, 0, 0, MAP_KEY_8};
    if (FRT_LIKELY(len == 8)) { /* the common id key: no call */
        memcpy(&k.word, p, 8);
        k.hash = frt__map_hash8(k.word);
        return k;
    }
    k.hash = frt__map_hash_bytes(p, len);
    k.word = frt__map_key_word(p, len, 0, k.hash, &k.kind);
    return k;
}

static key obj_key(frt_map *m, frt_object *o)
{
    key k = {NULL, 0, o, m->ops, m->ops->hash(o), 0, 0};
    k.word = frt__map_key_word(NULL, 0, 1, k.hash, &k.kind);
    return k;
}

/* Whether entry e holds the long byte key or the object key (ops) given.
 * Out of line, and given the key's fields rather than the key: a get of a
 * short key then keeps its key in registers. */
static __attribute__((noinline)) int entry_matches(const map_entry *e, const frt_map_key_ops *ops,
                                                   frt_object *obj, const void *bytes, size_t len)
{
    if (ops)
        return e->key_obj == obj || ops->eq(e->key_obj, obj);
    return e->len == len && memcmp(e->bytes, bytes, len) == 0;
}

/* Whether slot i of a, whose value word is v (not empty), holds key k: a
 * short byte key is the slot's word; a longer one or an object key is in
 * the slot's entry. The kind comparison comes first: it fails for the
 * markers, whose word must not be read. */
static inline int slot_matches(const map_array *a, size_t i, uintptr_t v, const key *k)
{
    if ((int)(v & MAP_KEY_MASK) != k->kind || a->slot[i].word != k->word)
        return 0;
    return k->kind != MAP_KEY_ENTRY || entry_matches(a->entry[i], k->ops, k->obj, k->bytes, k->len);
}

/* Under the key's stripe lock: 1 if the key is in a (its slot in *at),
 * else 0 (*at: the empty slot that ended the probe). */
static int find_locked(map_array *a, const key *k, size_t *at)
{
    for (size_t i = frt__map_home(a, k->hash);; i = (i + 1) & a->mask) {
        uintptr_t v = atomic_load_explicit(&a->slot[i].v, memory_order_acquire);
        *at = i;
        if (!v)
            return 0;
        if (slot_matches(a, i, v, k))
            return 1;
    }
}

static map_array *current(frt_map *m)
{
    return atomic_load_explicit(&m->t->arr, memory_order_acquire);
}

/* After a write, from a clean point (not while the world is stopped by
 * this thread, where a stripe's holder may be parked for good). */
static void maybe_resize(frt_map *m)
{
    map_array *a = current(m);
    frt_tstate *ts = frt__tstate();
    if (!ts || ts->stw_depth || !frt__map_table_wants_resize(m->t, a))
        return;
    frt__map_table_resize(m->t, a);
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

/* Under k's stripe lock, slot at of a holding k: delete it, if it still
 * holds the value word seen (seen 0: whatever it holds). The map's
 * reference to the value goes to d. */
static void delete_at(frt_map *m, map_array *a, size_t at, uintptr_t seen, drops *d)
{
    uintptr_t old = seen;
    if (!seen)
        old = atomic_exchange_explicit(&a->slot[at].v, MAP_DELETED, memory_order_acq_rel);
    else if (!atomic_compare_exchange_strong_explicit(&a->slot[at].v, &old, MAP_DELETED,
                                                      memory_order_acq_rel, memory_order_relaxed))
        return; /* a set replaced it meanwhile */
    frt__map_table_remove(m->t, a, at);
    drop_later(d, frt__map_value(old));
}

/* Delete k if its value is still v (a weakref found dead). wait 0: only if
 * the stripe is free now. */
static void remove_dead(frt_map *m, const key *k, frt_object *v, int wait, drops *d)
{
    frt_mutex *mu = frt__map_stripe(m->t, k->hash);
    if (wait)
        frt_mutex_lock(mu);
    else if (frt_mutex_trylock(mu) != 1)
        return;
    map_array *a = current(m);
    size_t i;
    if (find_locked(a, k, &i)) {
        uintptr_t seen = atomic_load_explicit(&a->slot[i].v, memory_order_relaxed);
        if (frt__map_value(seen) == v)
            delete_at(m, a, i, seen, d);
    }
    frt_mutex_unlock(mu);
}

/* Slot i of a is live and stays so (its stripe is locked, a is current):
 * a new reference to its value. A lock-free set may swap the value under
 * us, so this is a get's read: try-incref, then check the slot; a stale
 * reference goes to d. */
static frt_object *slot_ref(map_array *a, size_t i, drops *d)
{
    for (;;) {
        uintptr_t v = atomic_load_explicit(&a->slot[i].v, memory_order_acquire);
        frt_object *o = frt__map_value(v);
        if (frt__try_incref(o)) {
            if (atomic_load_explicit(&a->slot[i].v, memory_order_acquire) == v)
                return o;
            drop_later(d, o);
        }
    }
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

/* A weak map's get found the weakref w (a new reference) for the key with
 * these bytes or this object: its target (a new reference), or NULL, and
 * then the dead key goes if its stripe is free (get never waits). */
static __attribute__((noinline)) frt_object *get_weak(frt_map *m, const void *bytes, size_t len,
                                                      frt_object *obj, frt_object *w)
{
    key k = obj ? obj_key(m, obj) : bytes_key(bytes, len);
    drops d = DROPS_INIT(d);
    frt_object *res = resolve(m, w, &d);
    if (!res)
        remove_dead(m, &k, w, 0, &d);
    drop_now(&d);
    return res;
}

/* Lock-free: the slot of a that holds k (*vp: its value word, the key
 * live or DELETED), or NULL when an empty slot ends the probe. */
static inline __attribute__((always_inline)) _Atomic uintptr_t *probe(const map_array *a,
                                                                      const key *k, uintptr_t *vp)
{
    for (size_t i = frt__map_home(a, k->hash);; i = (i + 1) & a->mask) {
        uintptr_t v = atomic_load_explicit(&a->slot[i].v, memory_order_acquire);
        if (!v)
            return NULL;
        if (slot_matches(a, i, v, k)) {
            *vp = v;
            return (_Atomic uintptr_t *)&a->slot[i].v;
        }
    }
}

/* Lock-free: probe the current array; try-incref the value, then check
 * that the slot still holds it. A value that changed or died meanwhile
 * (replaced or deleted, or the array was rebuilt and its values replaced
 * since): start over on the current array. Nothing is dropped before the
 * probe is over. */
static inline __attribute__((always_inline)) frt_object *map_get(frt_map *m, const key *k)
{
    for (;;) {
        uintptr_t v;
        _Atomic uintptr_t *slot = probe(current(m), k, &v);
        if (!slot)
            return NULL;
        frt_object *o = frt__map_value(v);
        if (FRT_LIKELY(frt__try_incref(o))) {
            if (FRT_LIKELY(atomic_load_explicit(slot, memory_order_acquire) == v))
                return m->flags & FRT_MAP_WEAK_VALUES ? get_weak(m, k->bytes, k->len, k->obj, o) : o;
            frt_decref(o); /* stale; the probe is over */
        }
    }
}

/* The common get, an 8-byte key in a map of strong values, as a leaf:
 * it calls nothing, so it saves no register, and anything unusual goes to
 * map_get. The value (a new reference), NULL when the key is absent, or
 * GET_SLOW: take map_get, after dropping *stale if it is set (a reference
 * taken to a value that was replaced before the check). */
#define GET_SLOW ((frt_object *)1)

static inline __attribute__((always_inline)) frt_object *get8_leaf(frt_map *m, uint64_t word,
                                                                   frt_object **stale)
{
    const map_array *a = current(m);
    for (size_t i = frt__map_home(a, frt__map_hash8(word));; i = (i + 1) & a->mask) {
        uintptr_t v = atomic_load_explicit(&a->slot[i].v, memory_order_acquire);
        if (!v)
            return NULL;
        if ((v & MAP_KEY_MASK) != MAP_KEY_8 || a->slot[i].word != word)
            continue;
        frt_object *o = frt__map_value(v);
        if (FRT_UNLIKELY(frt__try_incref_leaf(o) != 1))
            return GET_SLOW;
        if (FRT_UNLIKELY(atomic_load_explicit(&a->slot[i].v, memory_order_acquire) != v))
            *stale = o;
        return *stale ? GET_SLOW : o;
    }
}

static __attribute__((noinline)) frt_object *get_slow(frt_map *m, const void *kp, size_t len,
                                                      frt_object *stale)
{
    frt_xdecref(stale);
    key k = bytes_key(kp, len);
    return map_get(m, &k);
}

/* What the map stores for value: a published reference to it, or (weak
 * maps) to a new weak reference to it. NULL: out of memory.
 *
 * A value the caller owns is made shared (frt_make_shared) as it goes in:
 * a map's values are there for other threads, which read them and, when a
 * set replaces one, drop its last reference. An owned value dropped to
 * zero by another thread is queued back to its owner, who frees it at its
 * next merge (about 350 instructions and the value's line crossing to the
 * queue and back: most of a replacement's cost at 2 threads); a shared one
 * is freed by the thread that drops it. The owner pays atomics on its own
 * later counts of that value, as every other thread already does. */
static frt_object *stored_new(frt_map *m, frt_object *value)
{
    frt_object *o = value;
    if (m->flags & FRT_MAP_WEAK_VALUES) {
        frt_weakref *wr = frt_weakref_new(value, NULL, NULL);
        if (!wr)
            return NULL;
        o = frt_weakref_object(wr);
    }
    frt__ref_publish(o);
    if (frt_is_owned(o))
        frt_make_shared(o);
    if (o != value)
        frt_decref(o);
    return o;
}

/* What placing k needs beyond its slot: an entry for a long or object
 * key. 0, or FRT_ENOMEM. */
static int entry_for(const key *k, map_entry **e)
{
    if (k->kind != MAP_KEY_ENTRY || *e)
        return 0;
    *e = frt__map_entry_new(k->hash, k->bytes, k->len, k->obj);
    return *e ? 0 : FRT_ENOMEM;
}

/* Under k's stripe lock, k absent from a: place it with value stored. 0,
 * or FRT_EBUSY (unlock, resize, retry). */
static int place(frt_map *m, map_array *a, size_t at, const key *k, map_entry *e, frt_object *stored)
{
    return frt__map_table_place(m->t, a, at, k->word, k->kind, e, stored);
}

/* A set of a key present in the current array, with no lock: swap its
 * slot's value for stored and drop the old one. 0 when the key is not
 * there, was deleted meanwhile, or its array is being resized (frozen):
 * the caller takes the stripe lock. */
static int replace_unlocked(frt_map *m, const key *k, frt_object *stored)
{
    uintptr_t v;
    _Atomic uintptr_t *slot = probe(current(m), k, &v);
    if (!slot)
        return 0;
    do {
        if (!frt__map_is_live(v) || (v & MAP_FROZEN))
            return 0;
    } while (!atomic_compare_exchange_weak_explicit(slot, &v,
                                                    (uintptr_t)stored | (v & MAP_KEY_MASK),
                                                    memory_order_acq_rel, memory_order_acquire));
    frt_decref(frt__map_value(v)); /* the probe is over */
    return 1;
}

static int map_set(frt_map *m, key *k, frt_object *value)
{
    frt_object *stored = stored_new(m, value);
    if (!stored)
        return FRT_ENOMEM;
    if (replace_unlocked(m, k, stored))
        return 0;
    frt_mutex *mu = frt__map_stripe(m->t, k->hash);
    map_entry *e = NULL;
    int rc = 0;
    for (;;) {
        frt_mutex_lock(mu);
        map_array *a = current(m);
        size_t at;
        if (find_locked(a, k, &at)) { /* inserted meanwhile, or the array was frozen */
            uintptr_t old = atomic_exchange_explicit(&a->slot[at].v, (uintptr_t)stored | (uintptr_t)k->kind,
                                                     memory_order_acq_rel);
            frt_mutex_unlock(mu);
            if (e)
                frt__map_entry_free(e);
            frt_decref(frt__map_value(old));
            return 0;
        }
        if (k->kind == MAP_KEY_ENTRY && !e) {
            frt_mutex_unlock(mu); /* allocate unlocked, then look again */
            if ((rc = entry_for(k, &e)))
                break;
            continue;
        }
        rc = place(m, a, at, k, e, stored);
        frt_mutex_unlock(mu);
        if (rc == 0) {
            maybe_resize(m);
            return 0;
        }
        if ((rc = frt__map_table_resize(m->t, a)))
            break;
    }
    if (e)
        frt__map_entry_free(e);
    frt_decref(stored);
    return rc;
}

static int map_delete(frt_map *m, key *k)
{
    drops d = DROPS_INIT(d);
    frt_mutex *mu = frt__map_stripe(m->t, k->hash);
    frt_mutex_lock(mu);
    map_array *a = current(m);
    size_t at;
    int found = find_locked(a, k, &at);
    if (found)
        delete_at(m, a, at, 0, &d);
    frt_mutex_unlock(mu);
    if (!found)
        return 0;
    int res = 1;
    if (m->flags & FRT_MAP_WEAK_VALUES) /* a dead value was no entry */
        res = frt_weakref_alive(frt_weakref_from_object(d.o[0])) ? 1 : 0;
    drop_now(&d);
    maybe_resize(m);
    return res;
}

/* Under the stripe lock the present value is found (a new reference to
 * what the slot holds, slot_ref) or the key placed. */
static frt_object *map_get_or_insert(frt_map *m, key *k, frt_object *value)
{
    frt_object *stored = NULL, *res = NULL;
    frt_mutex *mu = frt__map_stripe(m->t, k->hash);
    map_entry *e = NULL;
    for (;;) {
        frt_mutex_lock(mu);
        map_array *a = current(m);
        size_t at;
        int found = find_locked(a, k, &at), rc = FRT_ENOMEM;
        frt_object *v = NULL;
        drops d = DROPS_INIT(d);
        if (found)
            v = slot_ref(a, at, &d);
        else if (stored && (e || k->kind != MAP_KEY_ENTRY))
            rc = place(m, a, at, k, e, stored);
        frt_mutex_unlock(mu);
        drop_now(&d);
        if (v) {
            if (!(res = resolve(m, v, &d)))
                remove_dead(m, k, v, 1, &d); /* then insert */
            drop_now(&d);
            if (res)
                break;
        } else if (rc == 0) {
            e = NULL;
            stored = NULL;
            res = frt_newref(value);
            maybe_resize(m);
            break;
        } else if (rc == FRT_EBUSY) {
            if (frt__map_table_resize(m->t, a))
                break;
        } else if ((!stored && !(stored = stored_new(m, value))) || entry_for(k, &e)) {
            break; /* allocate unlocked, then look again */
        }
    }
    if (e)
        frt__map_entry_free(e);
    frt_xdecref(stored);
    return res;
}

/* ------------------------------------------------------------------ */
/* Iteration, and the map as an object.                               */

typedef struct snap_entry {
    frt_object *key_obj, *value; /* value: what the slot held (weak maps: the weakref) */
    map_entry *keycopy;          /* a long byte key: a private copy of its bytes */
    uint64_t word;               /* a short byte key: the slot's word, */
    int kind;                    /* and its kind (MAP_KEY_ENTRY: not a short key) */
} snap_entry;

/* Every key, with references, taken with every stripe locked: writers
 * wait for the walk (it takes references and copies long keys, nothing
 * more; a short key is its slot's word), readers do not. Then the map is
 * not walked again, so fn may do anything. */
static snap_entry *snapshot(frt_map *m, size_t *count)
{
    size_t n = 0, cap = 0;
    snap_entry *s = NULL;
    drops d = DROPS_INIT(d);
    frt__map_lock_all(m->t);
    map_array *a = current(m);
    for (size_t i = 0; i <= a->mask; i++) {
        uintptr_t v = atomic_load_explicit(&a->slot[i].v, memory_order_relaxed);
        if (!frt__map_is_live(v))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            snap_entry *g = frt__sys_realloc(s, cap * sizeof *s);
            if (!g)
                break;
            s = g;
        }
        const map_entry *e = a->entry[i];
        snap_entry *se = &s[n++];
        se->value = slot_ref(a, i, &d);
        se->key_obj = e && e->key_obj ? frt_newref(e->key_obj) : NULL;
        se->keycopy = e && !e->key_obj ? frt__map_entry_new(e->hash, e->bytes, e->len, NULL) : NULL;
        se->word = a->slot[i].word;
        se->kind = (int)(v & MAP_KEY_MASK);
    }
    frt__map_unlock_all(m->t);
    drop_now(&d);
    *count = n;
    return s;
}

int frt_map_foreach(frt_map *m, frt_map_visit_fn fn, void *arg)
{
    if (!fn || !m || !frt__tstate())
        return FRT_EINVAL;
    size_t n;
    snap_entry *s = snapshot(m, &n);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        drops d = DROPS_INIT(d);
        const map_entry *c = s[i].keycopy;
        unsigned char word_key[8];
        const void *bytes = c ? c->bytes : NULL;
        size_t len = c ? c->len : 0;
        if (s[i].kind != MAP_KEY_ENTRY) {
            len = frt__map_word_key(s[i].word, s[i].kind, word_key);
            bytes = word_key;
        }
        int has_key = s[i].key_obj || bytes; /* (no copy: out of memory) */
        frt_object *live = resolve(m, s[i].value, &d);
        if (!live && has_key) { /* a weak value that died: its key goes */
            key k = bytes ? bytes_key(bytes, len) : obj_key(m, s[i].key_obj);
            remove_dead(m, &k, s[i].value, 1, &d);
        } else if (live && !rc && has_key) {
            rc = fn(bytes, len, s[i].key_obj, live, arg);
        }
        if (live)
            drop_later(&d, live);
        drop_now(&d);
        frt_xdecref(s[i].key_obj);
        frt__sys_free(s[i].keycopy);
    }
    frt__sys_free(s);
    return rc;
}

size_t frt_map_len(frt_map *m)
{
    long n = m ? atomic_load_explicit(&m->t->live, memory_order_relaxed) : 0;
    return n > 0 ? (size_t)n : 0;
}

/* World stopped (or no writer): report what the map holds strongly. */
static int map_traverse(frt_object *self, frt_visit_fn visit, void *arg)
{
    frt_map *m = (frt_map *)self;
    map_array *a = current(m);
    for (size_t i = 0; i <= a->mask; i++) {
        uintptr_t v = atomic_load_explicit(&a->slot[i].v, memory_order_acquire);
        if (!frt__map_is_live(v))
            continue;
        int rc = visit(frt__map_value(v), arg);
        if (!rc && a->entry[i] && a->entry[i]->key_obj)
            rc = visit(a->entry[i]->key_obj, arg);
        if (rc)
            return rc;
    }
    return 0;
}

/* Delete every key (what a collection does to break a cycle). */
static void map_clear(frt_object *self)
{
    frt_map *m = (frt_map *)self;
    drops d = DROPS_INIT(d);
    frt__map_lock_all(m->t);
    map_array *a = current(m);
    for (size_t i = 0; i <= a->mask; i++)
        if (frt__map_is_live(atomic_load_explicit(&a->slot[i].v, memory_order_relaxed)))
            delete_at(m, a, i, 0, &d);
    frt__map_unlock_all(m->t);
    drop_now(&d);
    maybe_resize(m);
}

static void map_destroy(frt_object *self)
{
    frt_map *m = (frt_map *)self;
    map_clear(self);
    frt__map_table_free(m->t); /* no reader is left: it held a reference */
}

static const frt_type map_type = {"frt.map", sizeof(frt_map), map_traverse, map_clear, NULL,
                                  map_destroy};

frt_map *frt_map_new(unsigned flags, const frt_map_key_ops *key_ops)
{
    if (flags & ~(unsigned)FRT_MAP_WEAK_VALUES)
        return NULL;
    if (key_ops && (!key_ops->hash || !key_ops->eq))
        return NULL;
    map_table *t = frt__map_table_new();
    if (!t)
        return NULL;
    frt_map *m = (frt_map *)frt_new(&map_type);
    if (!m) {
        frt__map_table_free(t);
        return NULL;
    }
    m->t = t;
    m->ops = key_ops;
    m->flags = flags;
    return m;
}

/* ------------------------------------------------------------------ */
/* The API.                                                           */

frt_object *frt_map_get(frt_map *m, const void *kp, size_t len)
{
    if (!usable(m, 0, "frt_map_get from a thread that is not attached") || (!kp && len))
        return NULL;
    frt_object *stale = NULL;
    if (FRT_LIKELY(len == 8 && !(m->flags & FRT_MAP_WEAK_VALUES))) {
        uint64_t w;
        memcpy(&w, kp, 8);
        frt_object *o = get8_leaf(m, w, &stale);
        if (FRT_LIKELY(o != GET_SLOW))
            return o;
    }
    return get_slow(m, kp, len, stale);
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
