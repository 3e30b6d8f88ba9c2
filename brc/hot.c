/* Hot objects: per-thread reference counts for objects that every thread
 * counts on (CPython 3.14 does this for heap types: Python/uniqueid.c).
 *
 * A hot object has an index, unique among hot objects; every thread keeps
 * an array of counts indexed by it (frt_tstate.hot), and an incref or
 * decref of a hot object changes only the calling thread's slot, with a
 * plain load and store on memory no other thread writes. The true count is
 * the object's shared count plus every thread's slot: only a sum taken with
 * the world stopped is exact, so a hot object is never freed by a decref.
 * The collector calls frt__hot_sweep at each collection's stop: objects
 * whose sum is zero go back to ordinary (merged) counting with count zero
 * and are freed as if their last decref had just happened.
 *
 * Why each step is safe:
 *   - promotion and demotion rewrite the header with the world stopped, so
 *     no thread is half-way through an inc/decref that read the old state
 *     (none of them contains a safepoint), and no owner is writing its
 *     local count;
 *   - an index is released only at a stop, after the object left hot
 *     counting (freed, demoted or made immortal), and every thread's slot
 *     for it is zeroed then: the next object given the index starts at 0;
 *   - a thread that detaches folds its slots into the objects' shared
 *     counts and from then on (hot_open 0) counts hot objects on their
 *     shared count, which is just as exact; so does a thread whose array
 *     could not grow;
 *   - hot.lock guards the index table and the list of threads with arrays;
 *     it is never held across a safepoint, so a stopper can always take it.
 *     Other threads read a thread's slots under it or with the world
 *     stopped; a thread swaps in a grown array under it.
 * hot_adaptive.c promotes contended objects by itself; the sweep demotes
 * them once cold (went_cold). */
#include <string.h>

#include "brc.h"
#include "../runtime/debug.h"
#include "../runtime/object_internal.h"
#include "../runtime/os.h"

typedef struct hot_entry {
    frt_object *o;     /* NULL: a free index */
    uint32_t next_free; /* free list, index + 1 (0 ends it) */
    uint32_t cold;      /* adaptive: collections in a row that found it cold */
} hot_entry;

static struct {
    pthread_mutex_t lock;
    hot_entry *tab;
    uint32_t cap, used; /* entries allocated; indices ever given out */
    uint32_t free_head;
    frt_tstate *threads; /* states with an array */
} hot = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* Arrays of two threads never share a cache line, nor a pair of lines
 * that the adjacent-line prefetcher fetches together: each starts on a
 * 128-byte boundary and its length (a power of two >= 16 counts) is a
 * multiple of 128 bytes. */
#define SLOT_ALIGN 128

/* The calling thread's array for the inline paths (<frt/object.h>): a
 * copy of its state's hot and hot_cap, written only by the thread itself,
 * under hot.lock where the state's copy changes. */
#if defined(__GNUC__)
__thread frt__hot_counts frt__hot_tls __attribute__((tls_model("initial-exec")));
#endif

static void tls_publish(frt_tstate *ts)
{
#if defined(__GNUC__)
    if (ts == frt__tstate()) { /* fork's take-over folds a vanished thread's */
        uint32_t cap = atomic_load_explicit(&ts->hot_cap, memory_order_relaxed);
        frt__hot_tls.base = (uintptr_t)atomic_load_explicit(&ts->hot, memory_order_relaxed) -
                            (uintptr_t)FRT_REF_HOT * sizeof(frt__hot_slot);
        frt__hot_tls.end = cap ? FRT_REF_HOT + cap : 0;
    }
#else
    (void)ts;
#endif
}

/* A slot's net count: increfs less decrefs (<frt/object.h>). */
static inline intptr_t slot_count(frt__hot_slot *s)
{
    return (intptr_t)(atomic_load_explicit(&s->inc, memory_order_relaxed) -
                      atomic_load_explicit(&s->dec, memory_order_relaxed));
}

static inline void slot_set(frt__hot_slot *s, uint64_t inc, uint64_t dec)
{
    atomic_store_explicit(&s->inc, inc, memory_order_relaxed);
    atomic_store_explicit(&s->dec, dec, memory_order_relaxed);
}

/* Objects hot now that the runtime made hot (FRT_OF_HOT_AUTO). */
static _Atomic size_t auto_now;

size_t frt__hot_auto_count(void)
{
    return atomic_load_explicit(&auto_now, memory_order_relaxed);
}

/* o stops being the runtime's: demoted, dead, or claimed by frt_make_hot. */
static void clear_auto(frt_object *o)
{
    if (atomic_fetch_and_explicit(&o->ob_flags, (uint8_t)~FRT_OF_HOT_AUTO, memory_order_relaxed) &
        FRT_OF_HOT_AUTO)
        atomic_fetch_sub_explicit(&auto_now, 1, memory_order_relaxed);
}

static inline int local_is_hot(uint32_t local)
{
    return local >= FRT_REF_HOT && local != FRT_REF_IMMORTAL;
}

int frt_is_hot(const frt_object *o)
{
    return o && frt__is_hot(o);
}

/* Room for index i in ts's array. Only ts itself calls this. */
static int grow(frt_tstate *ts, uint32_t i)
{
    uint32_t cap = atomic_load_explicit(&ts->hot_cap, memory_order_relaxed);
    uint32_t ncap = cap ? cap : 16;
    while (ncap <= i)
        ncap *= 2;
    /* Indices stop below FRT_REF_IMMORTAL - FRT_REF_HOT: so does the array,
     * and FRT_REF_HOT + its length fits in ob_ref_local's 32 bits. */
    if (ncap > FRT_REF_IMMORTAL - FRT_REF_HOT)
        ncap = FRT_REF_IMMORTAL - FRT_REF_HOT;
    size_t bytes = (size_t)ncap * sizeof(frt__hot_slot);
    void *mem = frt__sys_calloc(1, bytes + SLOT_ALIGN);
    if (!mem)
        return -1;
    frt__hot_slot *slots =
        (frt__hot_slot *)(((uintptr_t)mem + SLOT_ALIGN - 1) & ~(uintptr_t)(SLOT_ALIGN - 1));
    pthread_mutex_lock(&hot.lock);
    frt__hot_slot *old = atomic_load_explicit(&ts->hot, memory_order_relaxed);
    for (uint32_t k = 0; k < cap; k++)
        slot_set(&slots[k], atomic_load_explicit(&old[k].inc, memory_order_relaxed),
                 atomic_load_explicit(&old[k].dec, memory_order_relaxed));
    void *old_mem = ts->hot_mem;
    if (!old_mem) {
        ts->hot_prev = NULL;
        ts->hot_next = hot.threads;
        if (hot.threads)
            hot.threads->hot_prev = ts;
        hot.threads = ts;
    }
    ts->hot_mem = mem;
    atomic_store_explicit(&ts->hot, slots, memory_order_relaxed);
    atomic_store_explicit(&ts->hot_cap, ncap, memory_order_relaxed);
    tls_publish(ts);
    pthread_mutex_unlock(&hot.lock);
    frt__sys_free(old_mem);
    return 0;
}

/* The inline path's fallback (and try_incref's way in): the state's
 * array, grown if need be, or the object's own count, which is part of
 * the sum too, where the thread has no array. */
static void add(frt_object *o, uint32_t local, int dec)
{
    frt_tstate *ts = frt__tstate();
    uint32_t i = local - FRT_REF_HOT;
    if (ts && (i < atomic_load_explicit(&ts->hot_cap, memory_order_relaxed) ||
               (ts->hot_open && grow(ts, i) == 0))) {
        frt__hot_slot *s = &atomic_load_explicit(&ts->hot, memory_order_relaxed)[i];
        _Atomic uint64_t *c = dec ? &s->dec : &s->inc;
        atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
                              memory_order_relaxed);
        return;
    }
    atomic_fetch_add_explicit(&o->ob_ref_shared, dec ? -FRT_REF_SHARED_ONE : FRT_REF_SHARED_ONE,
                              memory_order_relaxed);
}

void frt__incref_hot(frt_object *o, uint32_t local)
{
    add(o, local, 0);
}

void frt__decref_hot(frt_object *o, uint32_t local)
{
    add(o, local, 1);
}

/* hot.lock held (or the world stopped, for the counts to be exact). */
static intptr_t sum_locked(frt_object *o, uint32_t i)
{
    intptr_t n = atomic_load_explicit(&o->ob_ref_shared, memory_order_relaxed) >> FRT_REF_SHARED_SHIFT;
    for (frt_tstate *ts = hot.threads; ts; ts = ts->hot_next)
        if (i < atomic_load_explicit(&ts->hot_cap, memory_order_relaxed))
            n += slot_count(&atomic_load_explicit(&ts->hot, memory_order_relaxed)[i]);
    return n;
}

intptr_t frt__hot_count(frt_object *o)
{
    pthread_mutex_lock(&hot.lock);
    uint32_t local = atomic_load_explicit(&o->ob_ref_local, memory_order_relaxed);
    intptr_t n;
    if (local_is_hot(local))
        n = sum_locked(o, local - FRT_REF_HOT);
    else /* demoted meanwhile */
        n = (intptr_t)(local == FRT_REF_IMMORTAL ? 0 : local) +
            (atomic_load_explicit(&o->ob_ref_shared, memory_order_relaxed) >> FRT_REF_SHARED_SHIFT);
    pthread_mutex_unlock(&hot.lock);
    return n;
}

static int index_take(uint32_t *out)
{
    if (hot.free_head) {
        *out = hot.free_head - 1;
        hot.free_head = hot.tab[*out].next_free;
        return 0;
    }
    if (hot.used == FRT_REF_IMMORTAL - FRT_REF_HOT)
        return FRT_ENOMEM;
    if (hot.used == hot.cap) {
        uint32_t ncap = hot.cap ? hot.cap * 2 : 16;
        hot_entry *tab = frt__sys_realloc(hot.tab, (size_t)ncap * sizeof *tab);
        if (!tab)
            return FRT_ENOMEM;
        hot.tab = tab;
        hot.cap = ncap;
    }
    *out = hot.used++;
    return 0;
}

/* World stopped, hot.lock held: i's object left hot counting. */
static void index_release(uint32_t i)
{
    for (frt_tstate *ts = hot.threads; ts; ts = ts->hot_next) {
        if (i < atomic_load_explicit(&ts->hot_cap, memory_order_relaxed))
            slot_set(&atomic_load_explicit(&ts->hot, memory_order_relaxed)[i], 0, 0);
    }
    hot.tab[i].o = NULL;
    hot.tab[i].next_free = hot.free_head;
    hot.free_head = i + 1;
    atomic_fetch_sub_explicit(&frt__rt.hot_now, 1, memory_order_relaxed);
}

/* World stopped, hot.lock held. */
static int promote_locked(frt_object *o, int automatic)
{
    uint32_t local = atomic_load_explicit(&o->ob_ref_local, memory_order_relaxed);
    if (local >= FRT_REF_HOT)
        return FRT_EALREADY;
    uint32_t i;
    int rc = index_take(&i);
    if (rc != 0)
        return rc;
    /* Owned: the owner's count joins the shared one (a merged object's
     * local count is 0). A queue entry still pending for it merges into
     * the shared count later (frt__brc_merge), which stays exact. */
    intptr_t shared = atomic_load_explicit(&o->ob_ref_shared, memory_order_relaxed);
    intptr_t count = (shared >> FRT_REF_SHARED_SHIFT) + (intptr_t)local;
    atomic_store_explicit(&o->ob_ref_shared, count * FRT_REF_SHARED_ONE | FRT_REF_MERGED,
                          memory_order_relaxed);
    atomic_store_explicit(&o->ob_tid, FRT_TID_HOT, memory_order_relaxed);
    atomic_store_explicit(&o->ob_ref_local, FRT_REF_HOT + i, memory_order_relaxed);
    if (automatic) {
        atomic_fetch_or_explicit(&o->ob_flags, FRT_OF_HOT_AUTO, memory_order_relaxed);
        atomic_fetch_add_explicit(&auto_now, 1, memory_order_relaxed);
    }
    hot.tab[i].o = o;
    hot.tab[i].cold = 0;
    atomic_fetch_add_explicit(&frt__rt.hot_now, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&frt__rt.hot_promoted, 1, memory_order_relaxed);
    return 0;
}

int frt__hot_promote_stopped(frt_object *o, int automatic)
{
    pthread_mutex_lock(&hot.lock);
    int rc = promote_locked(o, automatic);
    pthread_mutex_unlock(&hot.lock);
    return rc;
}

/* World stopped, hot.lock held: back to ordinary counting, merged (no
 * owner), with the exact count, which is returned. */
static intptr_t demote_locked(frt_object *o, uint32_t i)
{
    intptr_t n = sum_locked(o, i);
    index_release(i);
    atomic_store_explicit(&o->ob_tid, 0, memory_order_relaxed);
    atomic_store_explicit(&o->ob_ref_local, 0, memory_order_relaxed);
    atomic_store_explicit(&o->ob_ref_shared, n * FRT_REF_SHARED_ONE | FRT_REF_MERGED,
                          memory_order_relaxed);
    clear_auto(o);
    return n;
}

intptr_t frt__hot_demote_stopped(frt_object *o)
{
    pthread_mutex_lock(&hot.lock);
    uint32_t local = atomic_load_explicit(&o->ob_ref_local, memory_order_relaxed);
    intptr_t n = local_is_hot(local) ? demote_locked(o, local - FRT_REF_HOT) : -1;
    pthread_mutex_unlock(&hot.lock);
    return n;
}

/* World stopped, hot.lock held: every thread's net count of o moves into
 * o's own count, and the slots restart from zero, so that a slot that is
 * not zero at the next collection says its thread counted on o since this
 * one. Returns the exact count; *busy: the threads that counted since the
 * collection before. */
static intptr_t fold_locked(frt_object *o, uint32_t i, unsigned *busy)
{
    intptr_t net = 0;
    *busy = 0;
    for (frt_tstate *ts = hot.threads; ts; ts = ts->hot_next) {
        if (i < atomic_load_explicit(&ts->hot_cap, memory_order_relaxed)) {
            frt__hot_slot *s = &atomic_load_explicit(&ts->hot, memory_order_relaxed)[i];
            *busy += atomic_load_explicit(&s->inc, memory_order_relaxed) != 0 ||
                     atomic_load_explicit(&s->dec, memory_order_relaxed) != 0;
            net += slot_count(s);
            slot_set(s, 0, 0);
        }
    }
    intptr_t shared = atomic_fetch_add_explicit(&o->ob_ref_shared, net * FRT_REF_SHARED_ONE,
                                                memory_order_relaxed);
    return (shared >> FRT_REF_SHARED_SHIFT) + net;
}

/* Adaptive demotion (docs/design.md, "Hot objects"): an object the runtime
 * promoted goes back once FRT_HOT_COLD_RUNS collections in a row found
 * fewer than two threads counting on it since the collection before. */
#define FRT_HOT_COLD_RUNS 4

static int went_cold(frt_object *o, uint32_t i, unsigned busy)
{
    if (!(atomic_load_explicit(&o->ob_flags, memory_order_relaxed) & FRT_OF_HOT_AUTO))
        return 0; /* made hot by the program: it stays hot */
    if (frt__hot_adaptive_paused())
        return 1; /* no automatic collection will come to free it */
    hot.tab[i].cold = busy >= 2 ? 0 : hot.tab[i].cold + 1;
    return hot.tab[i].cold >= FRT_HOT_COLD_RUNS;
}

void frt__hot_sweep(frt_object **dead, int auto_only)
{
    frt__hot_sweep_candidates();
    pthread_mutex_lock(&hot.lock);
    for (uint32_t i = 0; i < hot.used; i++) {
        frt_object *o = hot.tab[i].o;
        if (!o || (auto_only && !(atomic_load_explicit(&o->ob_flags, memory_order_relaxed) &
                                  FRT_OF_HOT_AUTO)))
            continue;
        unsigned busy;
        intptr_t n = fold_locked(o, i, &busy);
        if (n < 0) {
            frt__misuse(o, "decref below zero (found summing its per-thread counts)");
            continue;
        }
        if (n == 0) {
            /* Dead: as after a last decref, count 0 and merged, so a
             * weakref_get refuses it; freed once the world runs. */
            demote_locked(o, i);
            atomic_store_explicit(&o->ob_tid, (uintptr_t)*dead, memory_order_relaxed);
            *dead = o;
        } else if (went_cold(o, i, busy)) {
            demote_locked(o, i);
            atomic_fetch_add_explicit(&frt__rt.hot_demoted, 1, memory_order_relaxed);
        }
    }
    pthread_mutex_unlock(&hot.lock);
}

void frt__hot_thread_fold(frt_tstate *ts)
{
    pthread_mutex_lock(&hot.lock);
    ts->hot_open = 0;
    uint32_t cap = atomic_load_explicit(&ts->hot_cap, memory_order_relaxed);
    frt__hot_slot *slots = atomic_load_explicit(&ts->hot, memory_order_relaxed);
    for (uint32_t i = 0; i < cap; i++) {
        intptr_t c = slot_count(&slots[i]);
        /* A slot that is not 0 belongs to a live hot object: releasing an
         * index zeroes it in every array. */
        if (c)
            atomic_fetch_add_explicit(&hot.tab[i].o->ob_ref_shared, c * FRT_REF_SHARED_ONE,
                                      memory_order_relaxed);
    }
    void *mem = ts->hot_mem;
    if (mem) {
        if (ts->hot_prev)
            ts->hot_prev->hot_next = ts->hot_next;
        else
            hot.threads = ts->hot_next;
        if (ts->hot_next)
            ts->hot_next->hot_prev = ts->hot_prev;
        ts->hot_next = ts->hot_prev = NULL;
    }
    atomic_store_explicit(&ts->hot_cap, 0, memory_order_relaxed);
    atomic_store_explicit(&ts->hot, NULL, memory_order_relaxed);
    tls_publish(ts);
    ts->hot_mem = NULL;
    pthread_mutex_unlock(&hot.lock);
    frt__sys_free(mem);
}

void frt__hot_reset(void)
{
    pthread_mutex_lock(&hot.lock);
    frt__sys_free(hot.tab);
    hot.tab = NULL;
    hot.cap = hot.used = hot.free_head = 0;
    hot.threads = NULL;
    pthread_mutex_unlock(&hot.lock);
    atomic_store(&frt__rt.hot_now, 0);
    atomic_store(&frt__rt.hot_promoted, 0);
    atomic_store(&frt__rt.hot_demoted, 0);
    atomic_store(&auto_now, 0);
}

int frt_make_hot(frt_object *o)
{
    if (!o)
        return FRT_EINVAL;
    FRT_CHECK_LIVE(o, "frt_make_hot");
    if (!frt__tstate()) {
        FRT_MISUSE(o, "frt_make_hot from a thread that is not attached");
        return FRT_ESTATE;
    }
    if (atomic_load_explicit(&o->ob_ref_local, memory_order_relaxed) >= FRT_REF_HOT) {
        /* Made hot by the runtime: the program wants it hot for good. No
         * stop can demote it meanwhile: we are not at a safepoint. */
        clear_auto(o);
        return FRT_EALREADY;
    }
    if (frt_stop_the_world() != 0)
        return FRT_ESTATE;
    int rc = frt__hot_promote_stopped(o, 0);
    frt_start_the_world();
    return rc;
}
