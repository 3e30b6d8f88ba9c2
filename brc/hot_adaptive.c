/* Adaptive hot objects: the runtime notices an object that several threads
 * count on through its shared count and makes it hot (brc/hot.c) without
 * being asked; the collector's sweep demotes it once it has gone cold
 * (hot.c, went_cold).
 *
 * The heuristic (docs/design.md, "Hot objects"):
 *   - sampling: a non-owner decref of an owned object that loses its CAS
 *     looks at the object, and so does every FRT_HOT_SAMPLE-th non-owner
 *     decref of a merged object on a thread (refcount.c: a thread-local
 *     countdown beside the fetch_sub, which cannot lose);
 *   - nomination: a thread whose last FRT_HOT_STREAK samples all found the
 *     same object nominates it: most of its counting goes there. The table
 *     keeps the pointer only, to compare: never followed, no reference;
 *   - promotion: when a second thread nominates the same object, two
 *     threads contend on one line. That thread holds a reference at that
 *     moment, so the object is alive; it is marked waiting, and from then
 *     on every free checks the waiting ones (frt__hot_forget), so a
 *     waiting entry always names a live object. It is promoted with the
 *     world stopped: at that thread's next safepoint, or at the next
 *     collection if the thread cannot stop the world where it is;
 *   - expiry: each collection empties the table of nominations that no
 *     other thread seconded, and a nomination that finds the table full
 *     replaces the oldest one that is not waiting: a program whose
 *     threads streak over objects that only they count on (and that runs
 *     no collection) would otherwise fill the table with stale entries
 *     for good, and never promote again.
 * No reference is held for any of this: frt_refcount stays exact.
 * frt_config.hot_adaptive = FRT_HOT_ADAPTIVE_OFF turns it off; a disabled
 * collector pauses it (frt__hot_adaptive_pause): a hot object dies only at
 * a collection, and a program that turned collections off expects its
 * objects to die at their last decref. */
#include "brc.h"
#include "../runtime/debug.h"
#include "../runtime/object_internal.h"

#define FRT_HOT_STREAK 16
#define NCAND 8

static struct {
    pthread_mutex_t lock;
    struct {
        frt_object *o;
        frt_tstate *first; /* the first nominator; compared, never followed */
        int waiting;       /* seconded: promote at the next stop */
        unsigned long age; /* clock at the last nomination: the oldest makes room */
    } e[NCAND];
    unsigned n;
    unsigned long clock;
} cand = {.lock = PTHREAD_MUTEX_INITIALIZER};

static _Atomic int paused;

int frt__hot_adaptive_paused(void)
{
    return atomic_load_explicit(&paused, memory_order_relaxed);
}

/* cand.lock held, the table full: the entry to replace, NCAND if every
 * one waits (those name live objects and are promoted at the next stop). */
static unsigned oldest_not_waiting(void)
{
    unsigned best = NCAND;
    for (unsigned i = 0; i < NCAND; i++)
        if (!cand.e[i].waiting && (best == NCAND || cand.e[i].age < cand.e[best].age))
            best = i;
    return best;
}

static void nominate(frt_tstate *ts, frt_object *o)
{
    int request = 0;
    pthread_mutex_lock(&cand.lock);
    unsigned i = 0;
    while (i < cand.n && cand.e[i].o != o)
        i++;
    if (i < cand.n) {
        if (!cand.e[i].waiting && cand.e[i].first != ts) {
            cand.e[i].waiting = 1;
            /* Release: a free that follows our decref sees it (object.c). */
            atomic_fetch_add_explicit(&frt__hot_waiting, 1, memory_order_release);
            request = 1;
        }
        cand.e[i].age = ++cand.clock;
    } else {
        if (cand.n == NCAND)
            i = oldest_not_waiting();
        else
            i = cand.n++;
        if (i < NCAND) {
            cand.e[i].o = o;
            cand.e[i].first = ts;
            cand.e[i].waiting = 0;
            cand.e[i].age = ++cand.clock;
        }
    }
    pthread_mutex_unlock(&cand.lock);
    if (request)
        frt__tstate_request(ts, FRT_TS_HOT);
}

void frt__hot_sample(frt_tstate *ts, frt_object *o)
{
    /* The atomic-only baseline library stays atomic-only. */
    if (FRT_RC_ATOMIC_ONLY || frt__rt.config.hot_adaptive == FRT_HOT_ADAPTIVE_OFF ||
        frt__hot_adaptive_paused())
        return;
    if (o != ts->hot_seen) {
        ts->hot_seen = o;
        ts->hot_streak = 1;
    } else if (++ts->hot_streak == FRT_HOT_STREAK) {
        nominate(ts, o);
    }
}

static void remove_at(unsigned i)
{
    if (cand.e[i].waiting)
        atomic_fetch_sub_explicit(&frt__hot_waiting, 1, memory_order_relaxed);
    cand.e[i] = cand.e[--cand.n];
}

void frt__hot_forget(frt_object *o)
{
    pthread_mutex_lock(&cand.lock);
    for (unsigned i = 0; i < cand.n; i++)
        if (cand.e[i].o == o) {
            remove_at(i);
            break;
        }
    pthread_mutex_unlock(&cand.lock);
}

/* World stopped, cand.lock held: promote what waits. An object that is
 * waiting may sit, with a count of 0, on a parked thread's list of
 * objects to free (frt__dealloc's loop, which forgets it only when it gets
 * there): a zero count means it is dying, not contended. */
static void promote_waiting(int expire)
{
    for (unsigned i = 0; i < cand.n;) {
        frt_object *o = cand.e[i].o;
        if (cand.e[i].waiting) {
            uint32_t local = atomic_load_explicit(&o->ob_ref_local, memory_order_relaxed);
            intptr_t n = (local < FRT_REF_HOT ? (intptr_t)local : 0) +
                         (atomic_load_explicit(&o->ob_ref_shared, memory_order_relaxed) >>
                          FRT_REF_SHARED_SHIFT);
            if (n > 0 && !frt__hot_adaptive_paused())
                frt__hot_promote_stopped(o, 1);
            remove_at(i);
        } else if (expire) {
            remove_at(i);
        } else {
            i++;
        }
    }
}

/* Not from inside a stop, a collection, a dealloc loop or a blocking
 * section: the next collection does the work instead. */
static int can_stop(const frt_tstate *ts)
{
    return ts && !ts->stw_depth && !ts->in_gc_callback && !ts->in_dealloc && !ts->blocking_depth;
}

void frt__hot_promote_pending(frt_tstate *ts)
{
    if (!can_stop(ts))
        return;
    if (!atomic_load_explicit(&frt__hot_waiting, memory_order_relaxed))
        return;
    if (frt_stop_the_world() != 0)
        return;
    pthread_mutex_lock(&cand.lock);
    promote_waiting(0);
    pthread_mutex_unlock(&cand.lock);
    frt_start_the_world();
}

void frt__hot_sweep_candidates(void)
{
    pthread_mutex_lock(&cand.lock);
    promote_waiting(1);
    pthread_mutex_unlock(&cand.lock);
}

void frt__hot_adaptive_pause(frt_tstate *ts, int on)
{
    atomic_store_explicit(&paused, on, memory_order_relaxed);
    if (!on || !can_stop(ts) || !frt__hot_auto_count())
        return;
    /* The sweep demotes what the runtime made hot (and frees those that
     * died meanwhile; the program's own hot objects wait for a collection):
     * from here on, the objects die at their last decref again. */
    if (frt_stop_the_world() != 0)
        return;
    frt_object *dead = NULL;
    frt__hot_sweep(&dead, 1);
    frt_start_the_world();
    frt__brc_free_dead(dead);
}
