/* The key space: a concurrent hash map from key to value, split into
 * shards with a mutex each. An entry holds one reference to its key (a
 * kv_str) and one to its value (a kv_str or a kv_list). Entries themselves
 * are plain malloc'ed structs: only what they point to is an frt object.
 *
 * The rules that make this safe next to frt's stop-the-world collector:
 *
 * - ks_lock waits for a contended shard inside a blocking section, so a
 *   collection never waits for a thread that waits for a shard. Because of
 *   that, a thread may park for a collection while it holds a shard lock
 *   (right after acquiring it, or in frt_new): fine, since neither the
 *   collector nor any destroy/clear/weakref callback ever takes a shard
 *   lock.
 * - No list is changed across a safepoint, so traverse always sees a
 *   consistent list: list code does not allocate frt objects.
 * - References an operation removes (an old value, an expired entry) are
 *   collected on a kv_drop list and released after the unlock, so a shard
 *   is never held while a long chain of objects is freed.
 *
 * Expiry: entries carry an absolute CLOCK_MONOTONIC deadline in ms. Lookups
 * delete expired entries lazily; ks_sweep (the sweeper thread, every 100 ms)
 * removes the rest. Either way the references are dropped by whichever
 * thread notices, not by the thread that wrote the value. */
#ifndef KV_KEYSPACE_H
#define KV_KEYSPACE_H

#include "objects.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define KS_SHARDS 256 /* a power of two */

typedef struct kv_entry {
    struct kv_entry *next;
    uint64_t hash;
    kv_str *key;
    frt_object *val;   /* kv_str or kv_list */
    int64_t expire_ms; /* 0: never */
} kv_entry;

typedef struct kv_shard {
    pthread_mutex_t lock;
    kv_entry **buckets;
    size_t nbuckets; /* 0 or a power of two */
    size_t count, nexpires;
} __attribute__((aligned(64))) kv_shard;

/* References to drop once the shard lock is released. */
typedef struct kv_drop {
    size_t n, cap;
    frt_object **more;
    frt_object *inl[8];
} kv_drop;

void drop_init(kv_drop *d);
void drop_add(kv_drop *d, frt_object *o);
void drop_release(kv_drop *d); /* decref everything, with a safepoint now and then */

int64_t kv_now_ms(void);
uint64_t ks_hash(const char *p, size_t n);

void ks_init(void);
void ks_destroy(void); /* drop every entry and free the tables */

kv_shard *ks_lock(uint64_t hash);
void ks_unlock(kv_shard *s);

/* Under the lock. find deletes an expired match (its references go to d)
 * and returns NULL for it. add steals the references to key and val and
 * returns the entry, or NULL when out of memory (the caller still owns
 * both then). */
kv_entry *ks_find(kv_shard *s, uint64_t hash, const char *key, size_t len, kv_drop *d);
kv_entry *ks_add(kv_shard *s, uint64_t hash, kv_str *key, frt_object *val);
void ks_delete(kv_shard *s, kv_entry *e, kv_drop *d);
void ks_set_expire(kv_shard *s, kv_entry *e, int64_t expire_ms);

/* Remove expired entries from every shard; returns how many. */
size_t ks_sweep(void);
/* Delete everything; returns how many keys there were. */
size_t ks_flush(void);
void ks_counts(size_t *keys, size_t *expires);
uint64_t ks_expired_total(void);

#endif
