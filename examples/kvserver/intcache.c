/* The weak cache of parsed integers (intcache.h). */
#include "intcache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#define SLOTS 4096 /* a power of two */
#define STRIPES 64 /* slot i is under stripe i % STRIPES */

typedef struct slot {
    frt_weakref *wr; /* the cache's reference to the weakref; NULL: empty */
    long long value;
} slot;

static slot slots[SLOTS];
static struct stripe {
    pthread_mutex_t lock;
    char pad[64 - sizeof(pthread_mutex_t) % 64];
} stripes[STRIPES];
static _Atomic uint64_t n_hits, n_misses, n_puts, n_callback;
static _Atomic long n_used;

/* A stripe lock is held for a few loads and stores and frt_weakref_get
 * (which takes one of frt's own short locks and never polls). No holder
 * ever reaches a safepoint, so a waiter cannot wait for a parked thread:
 * a plain lock is right here, and a blocking section would be wrong. Its
 * frt_blocking_end polls, and a poll may free objects, whose weakref
 * callbacks (slot_dead) take this very lock. */
static pthread_mutex_t *lock_of(size_t i)
{
    return &stripes[i % STRIPES].lock;
}

static size_t slot_of(const kv_str *s)
{
    uint64_t h = (uint64_t)(uintptr_t)s * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 52) & (SLOTS - 1); /* top 12 bits */
}

void intcache_init(void)
{
    for (size_t i = 0; i < STRIPES; i++)
        pthread_mutex_init(&stripes[i].lock, NULL);
}

static void drop_weakref(frt_weakref *wr)
{
    if (wr) {
        atomic_fetch_sub_explicit(&n_used, 1, memory_order_relaxed);
        frt_decref(frt_weakref_object(wr));
    }
}

/* Empty slot i if it still holds wr; the caller drops the reference. */
static frt_weakref *take_if(size_t i, frt_weakref *wr)
{
    frt_weakref *got = NULL;
    pthread_mutex_lock(lock_of(i));
    if (slots[i].wr == wr) {
        got = wr;
        slots[i].wr = NULL;
    }
    pthread_mutex_unlock(lock_of(i));
    return got;
}

/* The weakref callback: the string died, on whichever thread dropped its
 * last reference (a worker replacing a value, the expiry sweeper, the main
 * thread at shutdown, or the collector). The runtime holds a reference to
 * wr while this runs, so dropping the cache's one here is safe. */
static void slot_dead(frt_weakref *wr, void *ctx)
{
    frt_weakref *got = take_if((size_t)(uintptr_t)ctx, wr);
    if (got) {
        atomic_fetch_add_explicit(&n_callback, 1, memory_order_relaxed);
        drop_weakref(got);
    }
}

int intcache_get(kv_str *s, long long *out)
{
    size_t i = slot_of(s);
    pthread_mutex_lock(lock_of(i));
    frt_weakref *wr = slots[i].wr;
    long long v = slots[i].value;
    frt_object *o = wr ? frt_weakref_get(wr) : NULL; /* new reference, or NULL if dead */
    pthread_mutex_unlock(lock_of(i));
    int hit = o == &s->ob;
    frt_xdecref(o); /* outside the lock: it may be the last reference to another string */
    if (hit) {
        *out = v;
        atomic_fetch_add_explicit(&n_hits, 1, memory_order_relaxed);
    } else {
        atomic_fetch_add_explicit(&n_misses, 1, memory_order_relaxed);
    }
    return hit;
}

void intcache_put(kv_str *s, long long v)
{
    size_t i = slot_of(s);
    /* Allocating (frt_weakref_new polls) happens before the lock. */
    frt_weakref *wr = frt_weakref_new(&s->ob, slot_dead, (void *)(uintptr_t)i);
    if (!wr)
        return; /* a cache: failing to fill it is fine */
    atomic_fetch_add_explicit(&n_used, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&n_puts, 1, memory_order_relaxed);
    pthread_mutex_lock(lock_of(i));
    frt_weakref *old = slots[i].wr;
    slots[i].wr = wr;
    slots[i].value = v;
    pthread_mutex_unlock(lock_of(i));
    drop_weakref(old); /* evicted: destroying it cancels its callback */
    /* If s died between frt_weakref_new and the store, its callback found
     * the slot without wr: take it out again so no dead weakref lingers.
     * (Callers hold a reference to s, so this is belt and braces.) */
    frt_object *t = frt_weakref_get(wr);
    if (t)
        frt_decref(t);
    else
        drop_weakref(take_if(i, wr));
}

void intcache_clear(void)
{
    for (size_t i = 0; i < SLOTS; i++) {
        pthread_mutex_lock(lock_of(i));
        frt_weakref *wr = slots[i].wr;
        slots[i].wr = NULL;
        pthread_mutex_unlock(lock_of(i));
        drop_weakref(wr);
    }
}

void intcache_get_stats(intcache_stats *out)
{
    out->hits = atomic_load_explicit(&n_hits, memory_order_relaxed);
    out->misses = atomic_load_explicit(&n_misses, memory_order_relaxed);
    out->puts = atomic_load_explicit(&n_puts, memory_order_relaxed);
    out->evicted_by_callback = atomic_load_explicit(&n_callback, memory_order_relaxed);
    long used = atomic_load_explicit(&n_used, memory_order_relaxed);
    out->slots_used = used > 0 ? (uint64_t)used : 0;
}
