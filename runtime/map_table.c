/* The concurrent map's table: slots, stripes, resizes (see map_table.h). */
#include <string.h>

#include <frt/errors.h>
#include <frt/lifecycle.h>

#include "map_table.h"
#include "os.h"

#define MIN_SLOTS 64

/* Grow (or clean out DELETED slots) past 3/4 full; a writer that would
 * fill past 7/8 waits for the resize, so a probe always ends at an empty
 * slot. Shrink below 1/16 live. A rebuilt array is at most half full. */
static size_t soft_limit(size_t slots)
{
    return slots - slots / 4;
}

static size_t hard_limit(size_t slots)
{
    return slots - slots / 8;
}

/* A big array is probed at random: it gets a mapping of its own on huge
 * pages where the OS gives them (a TLB miss per get otherwise). */
#define HUGE_PAGE ((size_t)2 << 20)

static size_t array_bytes(size_t slots)
{
    size_t b = sizeof(map_array) + slots * (sizeof(map_slot) + sizeof(map_entry *));
    return b >= HUGE_PAGE ? (b + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1) : b;
}

/* Zeroed memory aligned to a cache line (*base: what to free). */
static void *line_calloc(size_t bytes, void **base)
{
    char *p = frt__sys_calloc(1, bytes + MAP_LINE - 1);
    *base = p;
    return p ? (void *)(((uintptr_t)p + MAP_LINE - 1) & ~(uintptr_t)(MAP_LINE - 1)) : NULL;
}

static map_array *array_new(size_t slots)
{
    size_t bytes = array_bytes(slots);
    map_array *a;
    void *base = NULL;
    if (bytes >= HUGE_PAGE) {
        if ((a = frt__os_map(bytes, HUGE_PAGE)))
            frt__os_prefer_huge(a, bytes);
    } else {
        a = line_calloc(bytes, &base);
    }
    if (a) {
        a->mask = slots - 1;
        a->entry = (map_entry **)(a->slot + slots);
        a->base = base;
    }
    return a;
}

static void array_release(map_array *a)
{
    size_t bytes = array_bytes(a->mask + 1);
    if (bytes >= HUGE_PAGE)
        frt__os_unmap(a, bytes);
    else
        frt__sys_free(a->base);
}

static void array_free(frt_qsbr_later *w)
{
    array_release((map_array *)((char *)w - offsetof(map_array, later)));
}

map_table *frt__map_table_new(void)
{
    void *base;
    map_table *t = line_calloc(sizeof *t, &base);
    map_array *a = t ? array_new(MIN_SLOTS) : NULL;
    if (!a) {
        frt__sys_free(base);
        return NULL;
    }
    t->base = base;
    atomic_init(&t->arr, a);
    return t;
}

void frt__map_table_free(map_table *t)
{
    array_release(atomic_load_explicit(&t->arr, memory_order_relaxed));
    frt__sys_free(t->base);
}

map_entry *frt__map_entry_new(uint64_t hash, const void *bytes, size_t len, frt_object *key_obj)
{
    map_entry *e = frt__sys_calloc(1, sizeof *e + len);
    if (!e)
        return NULL;
    e->hash = hash;
    e->len = len;
    if (len)
        memcpy(e->bytes, bytes, len);
    if (key_obj) {
        e->key_obj = key_obj;
        frt_incref(key_obj);
    }
    return e;
}

static void entry_retired(frt_qsbr_later *w)
{
    map_entry *e = (map_entry *)((char *)w - offsetof(map_entry, later));
    if (e->key_obj && frt_thread_is_attached())
        frt_decref(e->key_obj); /* (at shutdown the arenas take it) */
    frt__sys_free(e);
}

void frt__map_entry_free(map_entry *e)
{
    entry_retired(&e->later);
}

int frt__map_table_place(map_table *t, map_array *a, size_t from, uint64_t word, int kind,
                         map_entry *e, frt_object *v)
{
    /* Reserve before claiming, so that writers of all stripes together
     * never fill the last empty slots. */
    if (atomic_fetch_add_explicit(&a->used, 1, memory_order_relaxed) >= hard_limit(a->mask + 1)) {
        atomic_fetch_sub_explicit(&a->used, 1, memory_order_relaxed);
        return FRT_EBUSY;
    }
    for (size_t i = from & a->mask;; i = (i + 1) & a->mask) {
        uintptr_t s = 0;
        if (atomic_load_explicit(&a->slot[i].v, memory_order_relaxed))
            continue;
        /* Claimed first (another stripe's writer may want the slot), then
         * the word and entry, then the value: a reader that sees the value
         * sees them. */
        if (!atomic_compare_exchange_strong_explicit(&a->slot[i].v, &s, MAP_CLAIMED,
                                                     memory_order_relaxed, memory_order_relaxed))
            continue;
        a->slot[i].word = word;
        a->entry[i] = e;
        atomic_store_explicit(&a->slot[i].v, (uintptr_t)v | (uintptr_t)kind, memory_order_release);
        break;
    }
    atomic_fetch_add_explicit(&t->live, 1, memory_order_relaxed);
    return 0;
}

void frt__map_table_remove(map_table *t, map_array *a, size_t i)
{
    atomic_fetch_sub_explicit(&t->live, 1, memory_order_relaxed);
    /* Readers may still hold the entry (from this array or an older one):
     * it goes after a grace period, its key object with it. */
    if (a->entry[i])
        frt__qsbr_defer_call(&a->entry[i]->later, entry_retired);
}

int frt__map_table_wants_resize(map_table *t, map_array *a)
{
    size_t slots = a->mask + 1;
    if (atomic_load_explicit(&a->used, memory_order_relaxed) > soft_limit(slots))
        return 1;
    long live = atomic_load_explicit(&t->live, memory_order_relaxed);
    return slots > MIN_SLOTS && (size_t)live < slots / 16;
}

void frt__map_lock_all(map_table *t)
{
    for (int i = 0; i < MAP_STRIPES; i++)
        frt_mutex_lock(&t->stripe[i].mu);
}

void frt__map_unlock_all(map_table *t)
{
    for (int i = MAP_STRIPES; i-- > 0;)
        frt_mutex_unlock(&t->stripe[i].mu);
}

uint64_t frt__map_hash_bytes(const void *p, size_t n)
{
    /* Eight bytes a step, then a final mix. */
    const unsigned char *s = p;
    uint64_t h = 0x9e3779b97f4a7c15ull ^ n, w;
    if (n == 8) {
        memcpy(&w, s, 8);
        return frt__map_hash8(w);
    }
    for (; n >= 8; n -= 8, s += 8) {
        memcpy(&w, s, 8);
        h = (h ^ w) * 0xc2b2ae3d27d4eb4full;
        h ^= h >> 29;
    }
    if (n) {
        w = 0;
        memcpy(&w, s, n);
        h = (h ^ w) * 0xc2b2ae3d27d4eb4full;
    }
    return frt__map_hash_mix(h);
}

/* The hash slot i's key was placed by. */
static uint64_t slot_hash(const map_array *a, size_t i, uintptr_t v)
{
    int kind = (int)(v & MAP_KEY_MASK);
    if (kind == MAP_KEY_ENTRY)
        return a->entry[i]->hash;
    unsigned char b[8];
    size_t len = frt__map_word_key(a->slot[i].word, kind, b);
    return frt__map_hash_bytes(b, len);
}

int frt__map_table_resize(map_table *t, map_array *a)
{
    frt__map_lock_all(t);
    int rc = 0;
    if (atomic_load_explicit(&t->arr, memory_order_relaxed) != a)
        goto out; /* another writer resized first */
    size_t live = (size_t)atomic_load_explicit(&t->live, memory_order_relaxed), slots = MIN_SLOTS;
    while (slots / 2 < live + 1)
        slots <<= 1;
    map_array *b = array_new(slots);
    if (!b) {
        rc = FRT_ENOMEM;
        goto out;
    }
    /* No insert or delete runs; a set of a present key may still swap a
     * live slot's value until the slot is frozen, after which a is final,
     * and its values (the map's references) move to b. b is private until
     * the release store below publishes it. */
    for (size_t i = 0; i <= a->mask; i++) {
        uintptr_t v = atomic_load_explicit(&a->slot[i].v, memory_order_acquire);
        while (frt__map_is_live(v) &&
               !atomic_compare_exchange_weak_explicit(&a->slot[i].v, &v, v | MAP_FROZEN,
                                                      memory_order_acq_rel, memory_order_acquire)) {
        }
        if (!frt__map_is_live(v))
            continue;
        size_t j = frt__map_home(b, slot_hash(a, i, v));
        while (atomic_load_explicit(&b->slot[j].v, memory_order_relaxed))
            j = (j + 1) & b->mask;
        b->slot[j].word = a->slot[i].word;
        b->entry[j] = a->entry[i];
        atomic_store_explicit(&b->slot[j].v, v, memory_order_relaxed); /* (not frozen) */
    }
    atomic_store_explicit(&b->used, live, memory_order_relaxed);
    atomic_store_explicit(&t->arr, b, memory_order_release);
    frt__qsbr_defer_call(&a->later, array_free); /* readers may still probe a */
out:
    frt__map_unlock_all(t);
    return rc;
}
