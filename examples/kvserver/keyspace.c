/* The sharded key space (keyspace.h). */
#include "keyspace.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static kv_shard shards[KS_SHARDS];
static _Atomic uint64_t expired_total;

/* ---- dropping references after the unlock -------------------------------- */

void drop_init(kv_drop *d)
{
    d->n = 0;
    d->cap = sizeof d->inl / sizeof d->inl[0];
    d->more = NULL;
}

void drop_add(kv_drop *d, frt_object *o)
{
    if (d->n == d->cap) {
        size_t cap = d->cap * 2;
        frt_object **m = malloc(cap * sizeof *m);
        if (!m) {
            frt_decref(o); /* out of memory: drop it now (safe, only slower under the lock) */
            return;
        }
        memcpy(m, d->more ? d->more : d->inl, d->n * sizeof *m);
        free(d->more);
        d->more = m;
        d->cap = cap;
    }
    (d->more ? d->more : d->inl)[d->n++] = o;
}

void drop_release(kv_drop *d)
{
    frt_object **v = d->more ? d->more : d->inl;
    for (size_t i = 0; i < d->n; i++) {
        frt_decref(v[i]);
        if ((i & 1023) == 1023)
            frt_safepoint(); /* a long loop: let a pending stop-the-world in */
    }
    free(d->more);
    drop_init(d);
}

/* ---- hashing, time ------------------------------------------------------- */

int64_t kv_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t ks_hash(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a, then a final mix */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

/* ---- shards ---------------------------------------------------------------- */

void ks_init(void)
{
    for (size_t i = 0; i < KS_SHARDS; i++) {
        memset(&shards[i], 0, sizeof shards[i]);
        pthread_mutex_init(&shards[i].lock, NULL);
    }
    atomic_store(&expired_total, 0);
}

static kv_shard *shard_of(uint64_t hash)
{
    return &shards[hash & (KS_SHARDS - 1)];
}

/* The bucket index uses the bits above the shard bits. */
static size_t bucket_of(const kv_shard *s, uint64_t hash)
{
    return (size_t)(hash >> 8) & (s->nbuckets - 1);
}

/* A lock wait that could be long (a holder copying a big LRANGE, the
 * sweeper, FLUSHALL detaching a shard) is a blocking section: a
 * stop-the-world does not wait for this thread meanwhile. The uncontended
 * case stays a single trylock. */
static void lock_blocking(pthread_mutex_t *m)
{
    if (pthread_mutex_trylock(m) == 0)
        return;
    frt_blocking_begin();
    pthread_mutex_lock(m);
    frt_blocking_end(); /* may park for a stop, holding m: nobody the stop waits for needs m */
}

kv_shard *ks_lock(uint64_t hash)
{
    kv_shard *s = shard_of(hash);
    lock_blocking(&s->lock);
    return s;
}

void ks_unlock(kv_shard *s)
{
    pthread_mutex_unlock(&s->lock);
}

static int expired(const kv_entry *e, int64_t *now)
{
    if (!e->expire_ms)
        return 0;
    if (*now == 0)
        *now = kv_now_ms();
    return e->expire_ms <= *now;
}

static void unlink_entry(kv_shard *s, kv_entry **pp, kv_drop *d)
{
    kv_entry *e = *pp;
    *pp = e->next;
    s->count--;
    if (e->expire_ms)
        s->nexpires--;
    drop_add(d, &e->key->ob);
    drop_add(d, e->val);
    free(e);
}

kv_entry *ks_find(kv_shard *s, uint64_t hash, const char *key, size_t len, kv_drop *d)
{
    if (!s->nbuckets)
        return NULL;
    int64_t now = 0;
    for (kv_entry **pp = &s->buckets[bucket_of(s, hash)]; *pp; pp = &(*pp)->next) {
        kv_entry *e = *pp;
        if (e->hash == hash && e->key->len == len && memcmp(e->key->data, key, len) == 0) {
            if (expired(e, &now)) {
                unlink_entry(s, pp, d);
                atomic_fetch_add_explicit(&expired_total, 1, memory_order_relaxed);
                return NULL;
            }
            return e;
        }
    }
    return NULL;
}

static int grow(kv_shard *s)
{
    size_t nb = s->nbuckets ? s->nbuckets * 2 : 16;
    kv_entry **b = calloc(nb, sizeof *b);
    if (!b)
        return -1;
    for (size_t i = 0; i < s->nbuckets; i++) {
        kv_entry *e = s->buckets[i];
        while (e) {
            kv_entry *next = e->next;
            size_t j = (size_t)(e->hash >> 8) & (nb - 1);
            e->next = b[j];
            b[j] = e;
            e = next;
        }
    }
    free(s->buckets);
    s->buckets = b;
    s->nbuckets = nb;
    return 0;
}

kv_entry *ks_add(kv_shard *s, uint64_t hash, kv_str *key, frt_object *val)
{
    if (s->count >= s->nbuckets && grow(s) != 0 && !s->nbuckets)
        return NULL;
    kv_entry *e = malloc(sizeof *e);
    if (!e)
        return NULL;
    e->hash = hash;
    e->key = key;
    e->val = val;
    e->expire_ms = 0;
    size_t b = bucket_of(s, hash);
    e->next = s->buckets[b];
    s->buckets[b] = e;
    s->count++;
    return e;
}

void ks_delete(kv_shard *s, kv_entry *e, kv_drop *d)
{
    for (kv_entry **pp = &s->buckets[bucket_of(s, e->hash)]; *pp; pp = &(*pp)->next)
        if (*pp == e) {
            unlink_entry(s, pp, d);
            return;
        }
}

void ks_set_expire(kv_shard *s, kv_entry *e, int64_t expire_ms)
{
    if (e->expire_ms && !expire_ms)
        s->nexpires--;
    else if (!e->expire_ms && expire_ms)
        s->nexpires++;
    e->expire_ms = expire_ms;
}

/* ---- whole-space operations ---------------------------------------------- */

size_t ks_sweep(void)
{
    size_t n = 0;
    kv_drop d;
    drop_init(&d);
    for (size_t i = 0; i < KS_SHARDS; i++) {
        kv_shard *s = &shards[i];
        lock_blocking(&s->lock);
        if (s->nexpires) {
            int64_t now = kv_now_ms();
            for (size_t b = 0; b < s->nbuckets; b++) {
                kv_entry **pp = &s->buckets[b];
                while (*pp) {
                    if (expired(*pp, &now)) {
                        unlink_entry(s, pp, &d);
                        n++;
                    } else {
                        pp = &(*pp)->next;
                    }
                }
            }
        }
        pthread_mutex_unlock(&s->lock);
        drop_release(&d); /* the sweeper drops values some worker made */
        frt_safepoint();
    }
    atomic_fetch_add_explicit(&expired_total, n, memory_order_relaxed);
    return n;
}

/* Detach a whole table under the lock, free it outside. */
size_t ks_flush(void)
{
    size_t total = 0;
    for (size_t i = 0; i < KS_SHARDS; i++) {
        kv_shard *s = &shards[i];
        lock_blocking(&s->lock);
        kv_entry **b = s->buckets;
        size_t nb = s->nbuckets;
        total += s->count;
        s->buckets = NULL;
        s->nbuckets = s->count = s->nexpires = 0;
        pthread_mutex_unlock(&s->lock);
        size_t freed = 0;
        for (size_t j = 0; j < nb; j++) {
            kv_entry *e = b[j];
            while (e) {
                kv_entry *next = e->next;
                frt_decref(&e->key->ob);
                frt_decref(e->val);
                free(e);
                e = next;
                if ((++freed & 1023) == 0)
                    frt_safepoint();
            }
        }
        free(b);
    }
    return total;
}

void ks_destroy(void)
{
    ks_flush();
    for (size_t i = 0; i < KS_SHARDS; i++)
        pthread_mutex_destroy(&shards[i].lock);
}

void ks_counts(size_t *keys, size_t *expires)
{
    size_t k = 0, x = 0;
    for (size_t i = 0; i < KS_SHARDS; i++) {
        lock_blocking(&shards[i].lock);
        k += shards[i].count;
        x += shards[i].nexpires;
        pthread_mutex_unlock(&shards[i].lock);
    }
    *keys = k;
    *expires = x;
}

uint64_t ks_expired_total(void)
{
    return atomic_load_explicit(&expired_total, memory_order_relaxed);
}
