/* The concurrent map's table (runtime/map.c has the operations on it).
 *
 * Open addressing with linear probing over an array of entry pointers.
 * Readers take no lock: they load the array, then probe slots until an
 * empty one. Writers lock the stripe of the key's hash (an frt_mutex), so
 * every write to one key is serialised while writers of other stripes run
 * on; slots are claimed by compare-and-swap because two stripes' keys may
 * probe the same slot. A slot goes empty -> entry -> DELETED -> entry ...,
 * never back to empty, so a probe run only grows and a reader that starts
 * at a key's home slot passes every slot the key can be in.
 *
 * A resize locks every stripe (writers wait, readers do not), builds a new
 * array holding the same entries, publishes it, and retires the old one
 * through QSBR: readers still probing the old array see the same entries
 * (whose value slots are shared), and it is freed after a grace period.
 * Deleted entries are retired the same way. */
#ifndef FRT_RUNTIME_MAP_TABLE_H
#define FRT_RUNTIME_MAP_TABLE_H

#include <frt/lock.h>
#include <frt/object.h>
#include <stddef.h>
#include <stdint.h>

#include "qsbr.h"

typedef struct map_entry {
    uint64_t hash;
    _Atomic(frt_object *) value; /* read like an frt_ref; TOMB once deleted */
    frt_object *key_obj;         /* object keys: a strong reference */
    size_t len;                  /* byte keys: the bytes follow */
    frt_qsbr_later later;
    unsigned char bytes[];
} map_entry;

/* What a slot holds after its entry was deleted. */
extern map_entry frt__map_deleted;
#define MAP_DELETED (&frt__map_deleted)

typedef struct map_array {
    size_t mask;         /* slots - 1 (a power of two minus one) */
    _Atomic size_t used; /* slots not empty: entries and DELETED */
    frt_qsbr_later later;
    _Atomic(map_entry *) slot[];
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

/* Under e's stripe lock, a the current array, e not in it: put e in the
 * first free slot of its probe run at or after slot `from` (its home slot,
 * or the first DELETED one the caller's probe passed). 0, or FRT_EBUSY:
 * the array is too full, unlock and frt__map_table_resize, then retry. */
int frt__map_table_place(map_table *t, map_array *a, map_entry *e, size_t from);

/* Under the stripe lock of slot i's entry, whose value is already TOMB:
 * empty the slot (DELETED) and retire the entry. */
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
