/* The concurrent map's table (runtime/map.c has the operations on it).
 *
 * Open addressing with linear probing over an array of slots, each an
 * entry pointer (hash and key) and the entry's value beside it, so that a
 * get's load of the key and of the value object overlap (two dependent
 * cache misses, as in a locked table that keeps keys and values in two
 * arrays). Readers take no lock: they load the array, then probe slots
 * until an empty one. Writers lock the stripe of the key's hash (an
 * frt_mutex), so every write to one key is serialised while writers of
 * other stripes run on; empty slots are claimed by compare-and-swap
 * because two stripes' keys may probe the same slot. A slot goes empty ->
 * (claimed) entry -> DELETED and stays so until the array is rebuilt: a probe run
 * only grows, a reader that starts at a key's home slot passes every slot
 * the key can be in, and a slot's value always belongs to its entry.
 *
 * A resize locks every stripe (writers wait, readers do not), builds a new
 * array holding the live entries and values, publishes it, and retires the
 * old one through QSBR. The old array is frozen from the moment the resize
 * holds every stripe: a reader still probing it sees the map as it was
 * then, which was during that reader's call. Its values may since have
 * been replaced and freed (a try-incref fails): the reader starts over on
 * the current array. Deleted entries are retired through QSBR too. */
#ifndef FRT_RUNTIME_MAP_TABLE_H
#define FRT_RUNTIME_MAP_TABLE_H

#include <frt/lock.h>
#include <frt/object.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "qsbr.h"

typedef struct map_entry {
    uint64_t hash;
    frt_object *key_obj;         /* object keys: a strong reference */
    size_t len;                  /* byte keys: the bytes follow */
    frt_qsbr_later later;
    unsigned char bytes[];
} map_entry;

/* What a slot holds after its entry was deleted, and while a writer fills
 * it in (claimed, its value not yet stored). Probes pass over both. */
extern map_entry frt__map_deleted, frt__map_claimed;
#define MAP_DELETED (&frt__map_deleted)
#define MAP_CLAIMED (&frt__map_claimed)

static inline int frt__map_is_entry(const map_entry *e)
{
    return e != MAP_DELETED && e != MAP_CLAIMED;
}

typedef struct map_slot {
    _Atomic(map_entry *) e;  /* NULL, CLAIMED, an entry, or DELETED */
    _Atomic(frt_object *) v; /* e's value, read like an frt_ref (the map.c TOMB once deleted) */
    /* Written before e is published and never after, so a probe compares
     * a short key without touching the entry: */
    uint64_t tag;  /* frt__map_tag of e's key */
    uint64_t word; /* a byte key of at most 8 bytes, zero-padded; else 0 */
} map_slot;

/* The hash with its low 4 bits replaced by the key's length if the key is
 * bytes and fits a slot's word, else by 15 (compare the entries' keys). */
static inline uint64_t frt__map_tag(uint64_t hash, size_t len, int obj_key)
{
    return (hash & ~(uint64_t)15) | (!obj_key && len <= 8 ? len : 15);
}

static inline uint64_t frt__map_word(const void *bytes, size_t len)
{
    uint64_t w = 0;
    if (len && len <= 8)
        memcpy(&w, bytes, len);
    return w;
}

typedef struct map_array {
    size_t mask;         /* slots - 1 (a power of two minus one) */
    _Atomic size_t used; /* slots not empty: entries and DELETED */
    frt_qsbr_later later;
    map_slot slot[];
} map_array;

#define MAP_STRIPES 32

typedef struct map_table {
    _Atomic(map_array *) arr;
    _Atomic long live; /* entries in the table */
    struct {
        frt_mutex mu;
        char pad[63]; /* writers of two stripes share no cache line */
    } stripe[MAP_STRIPES];
} map_table;

map_table *frt__map_table_new(void);
/* No thread can reach t any more: free it and its array now. */
void frt__map_table_free(map_table *t);

static inline frt_mutex *frt__map_stripe(map_table *t, uint64_t hash)
{
    return &t->stripe[(hash >> 58) % MAP_STRIPES].mu;
}

/* Under e's stripe lock, a the current array, e not in it: put e with
 * value v in the first empty slot at or after slot `from` (where the
 * caller's probe for e's key ended). 0, or FRT_EBUSY: the array is too
 * full: unlock, frt__map_table_resize, then retry. */
int frt__map_table_place(map_table *t, map_array *a, map_entry *e, frt_object *v, size_t from);

/* Under the stripe lock of slot i's entry, its value already swapped for
 * a tombstone: mark the slot DELETED and retire the entry. */
void frt__map_table_remove(map_table *t, map_array *a, size_t i);

/* 1 when a (the current array) should be rebuilt: too full of entries or
 * DELETED slots, or far too big for its entries. */
int frt__map_table_wants_resize(map_table *t, map_array *a);

/* If a is still the current array, rebuild it to fit the live entries
 * (locks every stripe; takes no lock the caller holds). 0 or FRT_ENOMEM. */
int frt__map_table_resize(map_table *t, map_array *a);

void frt__map_lock_all(map_table *t);
void frt__map_unlock_all(map_table *t);

/* A new, unpublished entry (NULL: no memory); the key object gets a reference. */
map_entry *frt__map_entry_new(uint64_t hash, const void *bytes, size_t len, frt_object *key_obj);
/* Free an entry no reader can have seen (never placed). */
void frt__map_entry_free(map_entry *e);

#endif
