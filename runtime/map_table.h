/* The concurrent map's table (runtime/map.c has the operations on it).
 *
 * Open addressing with linear probing over an array of 16-byte slots: a
 * key word and the value pointer, whose low bits say how the word holds
 * the key. A byte key of up to 8 bytes is in the word itself; a longer one,
 * or an object key, has an entry (map_entry, in a parallel array that only
 * such keys touch) and the word holds its hash. So a get of a short key
 * touches one slot and the value object, as a locked table that keeps keys
 * and values in two arrays touches two lines and the object.
 *
 * Readers take no lock: they load the array, then probe slots until an
 * empty one. Inserts and deletes lock the stripe of the key's hash (an
 * frt_mutex), so they are serialised per key while writers of other
 * stripes run on; empty slots are claimed by compare-and-swap because two stripes'
 * keys may probe the same slot. A slot goes empty -> claimed -> holding a
 * key -> DELETED and stays so until the array is rebuilt: a probe run only
 * grows, a reader that starts where the key's probe starts (frt__map_home)
 * passes every slot the key can be in, and a slot's word never changes
 * while readers may see it.
 *
 * A set of a key already in the table takes no lock: it swaps the slot's
 * value by compare-and-swap (one key's slot never changes key, and only
 * goes from live to DELETED under the stripe lock), so writers of present
 * keys share no lock line. Everything that changes which slots hold keys
 * (insert, delete, resize) locks a stripe.
 *
 * A resize locks every stripe (inserts and deletes wait, readers do not),
 * freezes every live slot of the old array (MAP_FROZEN: a lock-free set
 * that finds it takes the locked path, which waits for the resize), builds
 * a new array holding the live keys and values, publishes it, and retires
 * the old one through QSBR. The old array is frozen from then on: a reader
 * still probing it sees the map as it was then, which was during that
 * reader's call. Its values may since have
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

/* A key that does not fit a slot's word. */
typedef struct map_entry {
    uint64_t hash;
    frt_object *key_obj; /* object keys: a strong reference */
    size_t len;          /* byte keys: the bytes follow */
    frt_qsbr_later later;
    unsigned char bytes[];
} map_entry;

/* How a slot's word holds its key (the low bits of the slot's value;
 * objects are at least 8-byte aligned). */
enum {
    MAP_KEY_SHORT = 0, /* up to 7 bytes, and (length + 1) in the top byte */
    MAP_KEY_8 = 1,     /* exactly 8 bytes */
    MAP_KEY_ENTRY = 2, /* the word is the hash; the key is in the entry */
    MAP_KEY_MASK = 7
};

/* A slot's value word: 0 (empty), CLAIMED (a writer fills it in), DELETED,
 * or a value object's address | the key kind (| FROZEN). The two markers
 * carry kind bits no key has, so a probe's kind comparison also passes
 * over them before it reads the slot's word (which a claimed slot is still
 * being given). FROZEN marks a live slot of an array that a resize is
 * copying: a set that replaces values without the stripe lock (by
 * compare-and-swap) fails on it and waits for the new array, so no
 * replacement lands in an array after its copy. Objects are 16-byte
 * aligned (every block is), so the bit is free. */
#define MAP_CLAIMED ((uintptr_t)7)
#define MAP_DELETED ((uintptr_t)6)
#define MAP_FROZEN ((uintptr_t)8)

static inline int frt__map_is_live(uintptr_t v)
{
    return v > MAP_CLAIMED;
}

static inline frt_object *frt__map_value(uintptr_t v)
{
    return (frt_object *)(v & ~(uintptr_t)(MAP_KEY_MASK | MAP_FROZEN));
}

typedef struct map_slot {
    uint64_t word;      /* written before v publishes it, never after */
    _Atomic uintptr_t v;
} map_slot;

/* A probe starts at the first slot of its cache line, not at the hash's
 * own slot: it then reads the line's four slots before it needs another
 * line, where a probe that starts mid-line crosses into the next line
 * whenever the keys before it fill the rest of its line. */
#define MAP_LINE 64
#define MAP_LINE_SLOTS (MAP_LINE / sizeof(map_slot))

typedef struct map_array {
    size_t mask;          /* slots - 1 (a power of two minus one) */
    map_entry **entry;    /* per slot, MAP_KEY_ENTRY keys only (set before v) */
    void *base;           /* what was allocated (the array is aligned in it) */
    frt_qsbr_later later;
    /* written by inserts: off the line every get reads */
    _Alignas(MAP_LINE) _Atomic size_t used; /* slots not empty: keys and DELETED */
    _Alignas(MAP_LINE) map_slot slot[];
} map_array;

/* Where a probe for hash starts. */
static inline size_t frt__map_home(const map_array *a, uint64_t hash)
{
    return (size_t)hash & a->mask & ~(MAP_LINE_SLOTS - 1);
}

/* A key as a slot holds it: its word and kind. */
static inline uint64_t frt__map_key_word(const void *bytes, size_t len, int obj_key, uint64_t hash,
                                         int *kind)
{
    const unsigned char *b = bytes;
    uint64_t w = 0;
    if (!obj_key && len == 8) {
        memcpy(&w, b, 8);
        *kind = MAP_KEY_8;
    } else if (!obj_key && len < 8) {
        for (size_t i = 0; i < len; i++)
            w |= (uint64_t)b[i] << (8 * i);
        w |= (uint64_t)(len + 1) << 56;
        *kind = MAP_KEY_SHORT;
    } else {
        w = hash;
        *kind = MAP_KEY_ENTRY;
    }
    return w;
}

/* The bytes of a slot's short key (kind MAP_KEY_SHORT or MAP_KEY_8) into
 * out[8]; its length. */
static inline size_t frt__map_word_key(uint64_t w, int kind, unsigned char *out)
{
    if (kind == MAP_KEY_8) {
        memcpy(out, &w, 8);
        return 8;
    }
    size_t len = (size_t)(w >> 56) - 1;
    for (size_t i = 0; i < len; i++)
        out[i] = (unsigned char)(w >> (8 * i));
    return len;
}

/* The hash of a byte key. The table takes its slot from the low bits
 * and the stripe from the high ones. */
uint64_t frt__map_hash_bytes(const void *p, size_t n);

static inline uint64_t frt__map_hash_mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

/* The common id key, 8 bytes: one step (frt__map_hash_bytes agrees). */
static inline uint64_t frt__map_hash8(uint64_t w)
{
    uint64_t h = ((0x9e3779b97f4a7c15ull ^ 8) ^ w) * 0xc2b2ae3d27d4eb4full;
    return frt__map_hash_mix(h ^ (h >> 29));
}

#define MAP_STRIPES 32

/* Every get reads arr; writers write live and the stripes: each on a line
 * of its own (the table is allocated aligned). */
typedef struct map_table {
    _Alignas(MAP_LINE) _Atomic(map_array *) arr;
    void *base; /* what was allocated */
    _Alignas(MAP_LINE) _Atomic long live; /* keys in the table */
    struct {
        _Alignas(MAP_LINE) frt_mutex mu;
    } stripe[MAP_STRIPES];
} map_table;

map_table *frt__map_table_new(void);
/* No thread can reach t any more: free it and its array now. */
void frt__map_table_free(map_table *t);

static inline frt_mutex *frt__map_stripe(map_table *t, uint64_t hash)
{
    return &t->stripe[(hash >> 58) % MAP_STRIPES].mu;
}

/* Under the key's stripe lock, a the current array, the key not in it:
 * put it (word, kind, e: its entry for MAP_KEY_ENTRY, else NULL) with
 * value v in the first empty slot at or after slot `from` (where the
 * caller's probe ended). 0, or FRT_EBUSY: the array is too full: unlock,
 * frt__map_table_resize, then retry. */
int frt__map_table_place(map_table *t, map_array *a, size_t from, uint64_t word, int kind,
                         map_entry *e, frt_object *v);

/* Under the stripe lock of slot i's key, its value already swapped for
 * DELETED: retire its entry (if any) and count it gone. */
void frt__map_table_remove(map_table *t, map_array *a, size_t i);

/* 1 when a (the current array) should be rebuilt: too full of keys or
 * DELETED slots, or far too big for its keys. */
int frt__map_table_wants_resize(map_table *t, map_array *a);

/* If a is still the current array, rebuild it to fit the live keys
 * (locks every stripe; takes no lock the caller holds). 0 or FRT_ENOMEM. */
int frt__map_table_resize(map_table *t, map_array *a);

void frt__map_lock_all(map_table *t);
void frt__map_unlock_all(map_table *t);

/* A new, unpublished entry (NULL: no memory); the key object gets a reference. */
map_entry *frt__map_entry_new(uint64_t hash, const void *bytes, size_t len, frt_object *key_obj);
/* Free an entry no reader can have seen (never placed). */
void frt__map_entry_free(map_entry *e);

#endif
