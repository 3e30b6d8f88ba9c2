/* Weak references: the sharded target -> weakrefs table, frt_weakref_*,
 * and clearing when a target dies.
 *
 * The one race that matters is frt_weakref_get on one thread against the
 * target's last decref on another. The getter reads the target under the
 * target's shard lock and takes its reference with a try-incref
 * (try_incref.h), which fails once the count has reached zero. The dying
 * thread clears the target's weakrefs under the same lock before the block
 * is freed. So a getter holding the lock either sees the target still
 * registered, and then its memory is valid and the try-incref decides, or
 * sees NULL. docs/design.md, "Weak references", has the whole argument. */
#include <pthread.h>
#include <string.h>

#include "debug.h"
#include "fork.h"
#include "os.h"
#include "runtime.h"
#include "try_incref.h"
#include "weakref.h"

#define NSHARDS 64
#define MIN_BUCKETS 16

typedef struct wr_shard {
    pthread_mutex_t lock;
    frt_weakref **buckets; /* chains of weakrefs whose targets hash here */
    size_t nbuckets;       /* a power of two, or 0 before the first weakref */
    size_t count;
} __attribute__((aligned(64))) wr_shard;

static wr_shard shards[NSHARDS];
static pthread_once_t shards_once = PTHREAD_ONCE_INIT;

static void shards_init(void)
{
    for (unsigned i = 0; i < NSHARDS; i++)
        pthread_mutex_init(&shards[i].lock, NULL);
}

/* Fibonacci hashing of the block address: the low bits of object
 * addresses are all alike (16-byte blocks), the product's high bits are
 * not. The shard takes the low 6 of those, the bucket the rest. */
static inline uint64_t target_hash(const frt_object *o)
{
    return ((uint64_t)(uintptr_t)o * 0x9e3779b97f4a7c15ull) >> 32;
}

static inline size_t bucket_of(const wr_shard *s, uint64_t h)
{
    return (size_t)(h / NSHARDS) & (s->nbuckets - 1);
}

/* Double the table; on failure keep the old one (chains get longer, nothing
 * breaks). Under the shard lock. */
static void shard_grow(wr_shard *s)
{
    size_t n = s->nbuckets ? s->nbuckets * 2 : MIN_BUCKETS;
    frt_weakref **b = frt__sys_calloc(n, sizeof *b);
    if (!b)
        return;
    size_t old_n = s->nbuckets;
    frt_weakref **old = s->buckets;
    s->buckets = b;
    s->nbuckets = n;
    /* A chain holds a target's weakrefs newest first, the order their
     * callbacks run in: append, so that a resize keeps it. Doubling splits
     * old bucket i into new buckets i and i + old_n, hence two tails. */
    for (size_t i = 0; i < old_n; i++) {
        frt_weakref **tail[2] = {&b[i], &b[i + old_n]};
        for (frt_weakref *wr = old[i], *next; wr; wr = next) {
            next = wr->link;
            frt_object *t = atomic_load_explicit(&wr->target, memory_order_relaxed);
            frt_weakref ***end = &tail[bucket_of(s, target_hash(t)) != i];
            wr->link = NULL;
            **end = wr;
            *end = &wr->link;
        }
    }
    frt__sys_free(old);
}

static void clear_ref(frt_weakref *wr)
{
    /* Release: a getter that reads NULL without the lock needs no more. */
    atomic_store_explicit(&wr->target, NULL, memory_order_release);
}

int frt__weakref_register(frt_weakref *wr, frt_object *target, frt_weakref_cb cb, void *ctx)
{
    pthread_once(&shards_once, shards_init);
    uint64_t h = target_hash(target);
    wr_shard *s = &shards[h % NSHARDS];
    wr->cb = cb;
    wr->ctx = ctx;
    wr->shard = (uint32_t)(h % NSHARDS);
    /* The clearing thread try-increfs a weakref whose callback must run,
     * and the getter try-increfs the target: both need MAYBE_WEAKREF (a
     * word of exactly 0 refuses every non-owner, see try_incref.h). */
    frt__set_maybe_weakref(&wr->ob);
    frt__set_maybe_weakref(target);
    pthread_mutex_lock(&s->lock);
    if (s->count >= s->nbuckets)
        shard_grow(s);
    if (!s->nbuckets) {
        pthread_mutex_unlock(&s->lock);
        return FRT_ENOMEM;
    }
    atomic_fetch_or_explicit(&target->ob_flags, FRT_OF_MAYBE_WEAKREF, memory_order_relaxed);
    size_t k = bucket_of(s, h);
    wr->link = s->buckets[k];
    s->buckets[k] = wr;
    s->count++;
    atomic_store_explicit(&wr->target, target, memory_order_relaxed);
    pthread_mutex_unlock(&s->lock);
    return 0;
}

/* Unlink wr from its chain. Under the shard lock; wr->target is set, so
 * the target has not been cleared yet and its header is still valid. */
static void unlink_ref(wr_shard *s, frt_weakref *wr)
{
    frt_object *t = atomic_load_explicit(&wr->target, memory_order_relaxed);
    frt_weakref **head = &s->buckets[bucket_of(s, target_hash(t))];
    frt_weakref **pp = head;
    while (*pp != wr)
        pp = &(*pp)->link;
    *pp = wr->link;
    wr->link = NULL;
    s->count--;
    clear_ref(wr);
    /* The target's last weakref gone: its death need not look here again
     * (the flag is only ever set under this same lock). Release: a thread
     * that then sees the flag clear frees the target without this lock,
     * after everything we did to it under the lock (object.c reads the
     * flag with acquire). */
    for (frt_weakref *o = *head; o; o = o->link)
        if (atomic_load_explicit(&o->target, memory_order_relaxed) == t)
            return;
    atomic_fetch_and_explicit(&t->ob_flags, (uint8_t)~FRT_OF_MAYBE_WEAKREF, memory_order_release);
}

void frt__weakref_unregister(frt_weakref *wr)
{
    if (!atomic_load_explicit(&wr->target, memory_order_acquire))
        return;
    wr_shard *s = &shards[wr->shard];
    pthread_mutex_lock(&s->lock);
    if (atomic_load_explicit(&wr->target, memory_order_relaxed))
        unlink_ref(s, wr);
    pthread_mutex_unlock(&s->lock);
}

int frt__weakref_traverse(frt_object *self, frt_visit_fn visit, void *arg)
{
    (void)self;
    (void)visit;
    (void)arg;
    return 0; /* the target is not a strong reference */
}

void frt__weakref_destroy(frt_object *self)
{
    frt__weakref_unregister((frt_weakref *)self);
}

const frt_type frt__weakref_type = {"frt.weakref", sizeof(frt_weakref), frt__weakref_traverse,
                                    NULL, NULL, frt__weakref_destroy};

int frt__is_weakref(const frt_object *o)
{
    return o && o->ob_type && o->ob_type->destroy == frt__weakref_destroy;
}

/* Take every weakref to o off its shard, under the lock. Those that have
 * a callback, for which want(wr) holds (want NULL: none) and that are
 * still alive (a try-incref: a weakref being destroyed right now gets no
 * callback), are chained on *calls with that reference. */
static void take_refs(frt_object *o, int only_with_cb, int (*want)(frt_weakref *, void *), void *arg,
                      frt_weakref **calls)
{
    /* Acquire, as in object.c: seeing the flag cleared by a last weakref
     * leaving, we skip the lock, so that release is our only ordering. */
    if (!(atomic_load_explicit(&o->ob_flags, memory_order_acquire) & FRT_OF_MAYBE_WEAKREF))
        return;
    pthread_once(&shards_once, shards_init);
    uint64_t h = target_hash(o);
    wr_shard *s = &shards[h % NSHARDS];
    pthread_mutex_lock(&s->lock);
    if (s->nbuckets) {
        frt_weakref **pp = &s->buckets[bucket_of(s, h)];
        while (*pp) {
            frt_weakref *wr = *pp;
            if (atomic_load_explicit(&wr->target, memory_order_relaxed) != o ||
                (only_with_cb && !wr->cb)) {
                pp = &wr->link;
                continue;
            }
            *pp = wr->link;
            s->count--;
            /* Everything we need from wr first, clearing it last: once its
             * target reads NULL, a thread destroying wr no longer waits for
             * this lock (frt__weakref_unregister) and may free the block. A
             * weakref we keep is safe after that: we hold a reference. */
            int call = wr->cb && want && want(wr, arg) && frt__try_incref(&wr->ob);
            wr->link = call ? *calls : NULL;
            if (call)
                *calls = wr;
            clear_ref(wr);
        }
    }
    pthread_mutex_unlock(&s->lock);
}

void frt__weakrefs_run_callbacks(frt_weakref *calls)
{
    /* take_refs chains newest-registered first: callbacks run in that
     * order, as CPython's do. */
    frt_weakref *rev = NULL;
    while (calls) {
        frt_weakref *next = calls->link;
        calls->link = rev;
        rev = calls;
        calls = next;
    }
    while (rev) {
        frt_weakref *next = rev->link;
        rev->link = NULL;
        rev->cb(rev, rev->ctx);
        frt_decref(&rev->ob);
        rev = next;
    }
}

static int every_callback(frt_weakref *wr, void *arg)
{
    (void)wr;
    (void)arg;
    return 1;
}

void frt__weakrefs_on_dealloc(frt_object *o)
{
    frt_weakref *calls = NULL;
    take_refs(o, 0, every_callback, NULL, &calls);
    frt__weakrefs_run_callbacks(calls);
}

void frt__weakrefs_take_callbacks(frt_object *o, int (*keep)(frt_weakref *wr, void *arg), void *arg,
                                  frt_weakref **calls)
{
    take_refs(o, 1, keep, arg, calls);
}

void frt__weakrefs_clear_silently(frt_object *o)
{
    frt_weakref *none = NULL;
    take_refs(o, 0, NULL, NULL, &none);
}

void frt__weakrefs_fork(int phase)
{
    /* Only attached threads take shard locks, and never across a
     * safepoint: with the world stopped none is held, so there is nothing
     * to take (and 64 locks held at once is more than TSan's deadlock
     * detector can track). The child's are made new all the same. */
    if (phase != FRT_FORK_CHILD)
        return;
    pthread_once(&shards_once, shards_init);
    for (unsigned i = 0; i < NSHARDS; i++)
        frt__fork_mutex(&shards[i].lock, phase);
}

void frt__weakref_tables_reset(void)
{
    pthread_once(&shards_once, shards_init);
    for (unsigned i = 0; i < NSHARDS; i++) {
        pthread_mutex_lock(&shards[i].lock);
        frt__sys_free(shards[i].buckets);
        shards[i].buckets = NULL;
        shards[i].nbuckets = shards[i].count = 0;
        pthread_mutex_unlock(&shards[i].lock);
    }
}

void frt__weakref_tables_free(void)
{
    frt__weakref_tables_reset();
}

/* ------------------------------------------------------------------ */
/* The public API.                                                    */

frt_weakref *frt_weakref_new(frt_object *target, frt_weakref_cb cb, void *ctx)
{
    if (!target || !frt__tstate()) {
        FRT_MISUSE(target, "frt_weakref_new with a NULL target or from a thread that is not attached");
        return NULL;
    }
    if (!target->ob_type) {
        frt__misuse(target, "frt_weakref_new of a freed object");
        return NULL;
    }
    frt_weakref *wr = (frt_weakref *)frt_new(&frt__weakref_type);
    if (!wr)
        return NULL;
    if (frt__weakref_register(wr, target, cb, ctx) != 0) {
        frt_decref(&wr->ob);
        return NULL;
    }
    return wr;
}

frt_object *frt_weakref_get(frt_weakref *wr)
{
    if (!wr)
        return NULL;
    FRT_CHECK_LIVE(&wr->ob, "frt_weakref_get");
    if (!atomic_load_explicit(&wr->target, memory_order_acquire))
        return NULL;
    wr_shard *s = &shards[wr->shard];
    pthread_mutex_lock(&s->lock);
    frt_object *t = atomic_load_explicit(&wr->target, memory_order_relaxed);
    if (t && !frt__try_incref(t))
        t = NULL;
    pthread_mutex_unlock(&s->lock);
    return t;
}

int frt_weakref_alive(frt_weakref *wr)
{
    frt_object *t = frt_weakref_get(wr);
    if (!t)
        return 0;
    frt_decref(t);
    return 1;
}

size_t frt_weakref_count(const frt_object *target)
{
    FRT_CHECK_LIVE(target, "frt_weakref_count");
    if (!target ||
        !(atomic_load_explicit(&((frt_object *)target)->ob_flags, memory_order_relaxed) &
          FRT_OF_MAYBE_WEAKREF))
        return 0;
    uint64_t h = target_hash(target);
    wr_shard *s = &shards[h % NSHARDS];
    size_t n = 0;
    pthread_mutex_lock(&s->lock);
    if (s->nbuckets)
        for (frt_weakref *wr = s->buckets[bucket_of(s, h)]; wr; wr = wr->link)
            n += atomic_load_explicit(&wr->target, memory_order_relaxed) == target;
    pthread_mutex_unlock(&s->lock);
    return n;
}

frt_object *frt_weakref_object(frt_weakref *wr)
{
    return wr ? &wr->ob : NULL;
}

frt_weakref *frt_weakref_from_object(frt_object *o)
{
    return frt__is_weakref(o) ? (frt_weakref *)o : NULL;
}
