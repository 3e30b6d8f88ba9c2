/* One collection, in CPython's order (main branch, gh-136189):
 *
 *   world stopped:  merge queued counts; find the unreachable set; promote
 *                   survivors; hold a reference to each unreachable object
 *                   (weakrefs.c: clear garbage weakrefs, and the weakrefs
 *                   with callbacks to garbage)
 *   world running:  free what the merge released; run those callbacks; run
 *                   finalize once per object not yet finalized
 *   world stopped:  if anything could have resurrected an object (a
 *                   finalizer, a callback, a weakref left), find what was:
 *                   anything with references from outside the set, and all
 *                   it reaches; clear the weakrefs to what is still garbage
 *   world running:  clear() the rest, or keep it in the garbage list with
 *                   SAVEALL; drop the held references, which frees it
 *
 * Finalizers, clear() and callbacks run with the world running: they may
 * allocate, take locks and touch other threads' objects. The thread that
 * runs them is marked, and frt_gc_collect from it returns 0. */
#include <stdio.h>
#include <string.h>

#include "gc_internal.h"
#include "../runtime/os.h"
#include "../runtime/weakref.h"

frt_gc_state frt__gc = {.lock = PTHREAD_MUTEX_INITIALIZER};

void frt__gc_run_callbacks(int phase, const frt_gc_info *info)
{
    pthread_mutex_lock(&frt__gc.lock);
    size_t n = frt__gc.ncallbacks;
    gc_callback local[16];
    gc_callback *cbs = n <= 16 ? local : frt__sys_calloc(n, sizeof *cbs);
    if (cbs) {
        if (n)
            memcpy(cbs, frt__gc.callbacks, n * sizeof *cbs);
        pthread_mutex_unlock(&frt__gc.lock);
        for (size_t i = 0; i < n; i++)
            cbs[i].cb(phase, info, cbs[i].ctx);
        if (cbs != local)
            frt__sys_free(cbs);
        return;
    }
    /* No memory for the copy: call them from the list itself, one at a
     * time, never holding the lock while one runs (a callback may add or
     * remove callbacks; the later ones then shift, as when CPython walks
     * its live list). Skipping them would give START without STOP. */
    pthread_mutex_unlock(&frt__gc.lock);
    for (size_t i = 0;; i++) {
        pthread_mutex_lock(&frt__gc.lock);
        if (i >= frt__gc.ncallbacks) {
            pthread_mutex_unlock(&frt__gc.lock);
            return;
        }
        gc_callback c = frt__gc.callbacks[i];
        pthread_mutex_unlock(&frt__gc.lock);
        c.cb(phase, info, c.ctx);
    }
}

/* Resurrection check over the held set u[0..n), world stopped. Marks
 * resurrected[i]; returns how many. */
static size_t find_resurrected(frt_object **u, size_t n, uint8_t *resurrected, int *failed)
{
    gc_work w = {0};
    w.extra = -1; /* the collector's own hold */
    for (size_t i = 0; i < n; i++)
        frt__gc_work_add(&w, u[i]);
    size_t count = 0;
    if (!w.failed && frt__gc_find_reachable(&w) == 0) {
        for (size_t i = 0; i < n; i++) {
            resurrected[i] = w.state[i];
            count += w.state[i];
        }
    } else {
        /* No memory to check: keep all of them alive, which is safe. */
        memset(resurrected, 1, n);
        count = n;
        *failed = 1;
    }
    frt__gc_work_restore(&w);
    frt__gc_work_free(&w);
    return count;
}

static void print_object(const char *what, frt_object *o)
{
    fprintf(stderr, "gc: %s <%s %p>\n", what, o->ob_type->name ? o->ob_type->name : "?", (void *)o);
}

long frt__gc_collect_gen(frt_tstate *me, int gen, int automatic, size_t *found)
{
    (void)automatic;
    if (found)
        *found = 0;
    if (me->in_gc_callback)
        return 0;
    int expected = 0;
    if (!atomic_compare_exchange_strong(&frt__gc.collecting, &expected, 1))
        return 0;
    unsigned debug = atomic_load(&frt__gc.debug);
    frt_gc_info info = {gen, 0, 0, 0};
    me->in_gc_callback++;
    frt__gc_run_callbacks(FRT_GC_START, &info);
    me->in_gc_callback--;

    uint64_t t0 = frt__now_ns();
    if (frt_stop_the_world() != 0) { /* callers check, this is the backstop */
        atomic_store(&frt__gc.collecting, 0);
        return 0;
    }
    frt_object *dead = NULL;
    frt__gc_merge_all_queues(&dead);
    /* Hot objects whose counts sum to zero die here, at every collection
     * whatever its generation: none outlives the next one. */
    frt__hot_sweep(&dead, 0);
    gc_work w = {0};
    frt__gc_gather(&w, gen);
    /* A mark stack that cannot grow leaves the marks partial: everything
     * not marked yet would pass for garbage. Postpone, whatever the flag. */
    if (!w.failed && frt__gc_find_reachable(&w) != 0)
        w.failed = 1;
    if (w.failed) {
        /* No memory for the work set: undo and try another time. The heap
         * is untouched; the stats say it happened. */
        frt__gc_work_restore(&w);
        frt_start_the_world();
        info.pause_ns = frt__now_ns() - t0;
        frt__gc_work_free(&w);
        frt__brc_free_dead(dead);
        pthread_mutex_lock(&frt__gc.lock);
        frt__gc.stats[gen].postponed++;
        pthread_mutex_unlock(&frt__gc.lock);
        /* The callbacks saw START: they see its STOP (nothing collected). */
        me->in_gc_callback++;
        frt__gc_run_callbacks(FRT_GC_STOP, &info);
        me->in_gc_callback--;
        atomic_store(&frt__gc.collecting, 0);
        return 0;
    }
    frt__gc_work_restore(&w);
    /* Survivors move up; the unreachable are packed at the front of obj[]
     * and held by one reference each until we are done with them. */
    size_t nu = 0, survivors = 0;
    for (size_t i = 0; i < w.n; i++) {
        frt_object *o = w.obj[i];
        if (w.state[i]) {
            frt__gc_promote(o, gen);
            survivors++;
        } else {
            w.obj[nu++] = o;
        }
    }
    if (gen == 2)
        frt__gc_forget_young();
    /* With no other thread running (the others, if any, blocked), we may
     * keep our own garbage owned: a helper's drop of it would go back to us
     * through our queue (sweep.c), and none is likely to come. */
    int alone = 1;
    for (frt_tstate *ts = frt__tstate_first(); ts && alone; ts = ts->next)
        alone = ts == me || frt_ts_state(atomic_load(&ts->word)) == FRT_TS_BLOCKED;
    for (size_t i = 0; i < nu; i++) {
        /* Garbage goes to merged (ownerless) counting, hot garbage too, so
         * the sweep frees each object where its hold is dropped, before
         * frt_gc_collect returns, whatever its owner is doing then. */
        if (frt__is_hot(w.obj[i]))
            frt__hot_demote_stopped(w.obj[i]);
        else
            frt__brc_disown_stopped(w.obj[i], alone);
        frt_incref(w.obj[i]);
        w.obj[i]->ob_gc_bits |= FRT_GC_UNREACHABLE;
    }
    frt_weakref *calls = NULL;
    int weakly_referenced = frt__gc_weakrefs_take_callbacks(w.obj, nu, &calls);
    pthread_mutex_lock(&frt__gc.lock);
    me->gc_delta = 0;
    atomic_store(&frt__gc.young_count, 0);
    if (gen < 2)
        frt__gc.gen_count[gen + 1]++;
    for (int i = 1; i <= gen; i++)
        frt__gc.gen_count[i] = 0;
    if (gen == 2) {
        frt__gc.long_lived_total = survivors;
        frt__gc.long_lived_pending = 0;
        frt__gc.gen_size[1] = 0;
        frt__gc.gen_size[2] = survivors;
    } else {
        frt__gc.gen_size[gen + 1] += survivors;
        if (gen == 1) {
            frt__gc.long_lived_pending += survivors;
            frt__gc.gen_size[1] = 0;
        }
    }
    pthread_mutex_unlock(&frt__gc.lock);
    frt_start_the_world();
    uint64_t pause = frt__now_ns() - t0;
    /* From here on this thread runs the collection's own frees and user
     * code for it (tracking.c does not count those frees). */
    me->in_gc_callback++;
    frt__brc_free_dead(dead);

    frt_object **u = w.obj;
    uint8_t *resurrected = w.state; /* reused: one flag per held object */
    if (nu) /* with nothing unreachable there is no buffer: memset(NULL) is UB */
        memset(resurrected, 0, nu);
    /* Callbacks of weakrefs to garbage run before any finalizer. */
    int called = calls != NULL;
    frt__weakrefs_run_callbacks(calls);
    size_t finalized = 0;
    for (size_t i = 0; i < nu; i++) {
        frt_object *o = u[i];
        if (o->ob_type->finalize &&
            !(atomic_fetch_or(&o->ob_flags, FRT_OF_FINALIZED) & FRT_OF_FINALIZED)) {
            o->ob_type->finalize(o);
            finalized++;
        }
    }
    size_t nres = 0;
    int check_failed = 0;
    /* While the world ran, code could reach the garbage only through a
     * finalizer, a callback, or a weakref without callback: if none of
     * those exist, nothing was resurrected and no second stop is needed. */
    if (finalized || called || weakly_referenced) {
        uint64_t t1 = frt__now_ns();
        frt_stop_the_world();
        frt_object *dead2 = NULL;
        frt__gc_merge_all_queues(&dead2);
        nres = find_resurrected(u, nu, resurrected, &check_failed);
        /* A resurrected object may be in another thread's hands already
         * (a finalizer published it), and that thread may untrack it: its
         * bits are written now, while the world is stopped, never after. */
        for (size_t i = 0; i < nu; i++) {
            if (resurrected[i]) {
                frt__gc_promote(u[i], gen);
                u[i]->ob_gc_bits &= (uint8_t)~FRT_GC_UNREACHABLE;
            }
        }
        /* Still stopped: no weakref_get can slip in between the check and
         * the clearing of what stays garbage. */
        frt__gc_weakrefs_clear_rest(u, nu, resurrected);
        frt_start_the_world();
        pause += frt__now_ns() - t1;
        frt__brc_free_dead(dead2);
    }

    size_t collected = 0, uncollectable = 0;
    int saveall = (debug & FRT_GC_DEBUG_SAVEALL) != 0;
    if (!saveall) {
        for (size_t i = 0; i < nu; i++) {
            collected += !resurrected[i];
            if (!resurrected[i] && debug & FRT_GC_DEBUG_COLLECTABLE)
                print_object("collectable", u[i]);
        }
        frt__gc_sweep(me, u, resurrected, nu);
    }
    for (size_t i = 0; saveall && i < nu; i++) {
        if (resurrected[i])
            continue;
        frt_object *o = u[i];
        if (debug & FRT_GC_DEBUG_UNCOLLECTABLE)
            print_object("uncollectable", o);
        /* Garbage no more once in the list, where any thread can get it:
         * its bits are final before it is published. */
        o->ob_gc_bits &= (uint8_t)~FRT_GC_UNREACHABLE;
        frt_incref(o); /* the list's own reference */
        /* Without memory for the list the object stays as it is,
         * unreachable and alive, for the next collection to find (as
         * CPython keeps it in an older generation): not counted. */
        if (frt__gc_garbage_append(o) == 0)
            uncollectable++;
    }
    /* With SAVEALL the list keeps what was garbage: dropping the holds
     * frees nothing of it but the resurrected that nobody kept. */
    for (size_t i = 0; saveall && i < nu; i++)
        frt_decref(u[i]);
    me->in_gc_callback--;

    pthread_mutex_lock(&frt__gc.lock);
    frt_gc_stats *st = &frt__gc.stats[gen];
    st->collections++;
    st->collected += collected;
    st->uncollectable += uncollectable;
    st->pause_ns_total += pause;
    if (pause > st->pause_ns_max)
        st->pause_ns_max = pause;
    size_t sizes[3] = {0, frt__gc.gen_size[1], frt__gc.gen_size[2]};
    pthread_mutex_unlock(&frt__gc.lock);
    if (debug & FRT_GC_DEBUG_STATS)
        fprintf(stderr,
                "gc: generation %d: %zu examined, %zu unreachable (%zu finalized, %zu resurrected), "
                "%zu collected, %zu uncollectable, pause %.1f us; survivors in gen 1/2 ~%zu/%zu%s\n",
                gen, w.n, nu, finalized, nres, collected, uncollectable, pause / 1e3, sizes[1],
                sizes[2], check_failed ? " (no memory for the resurrection check: all kept)" : "");
    frt__gc_work_free(&w);

    info.collected = collected;
    info.uncollectable = uncollectable;
    info.pause_ns = pause;
    me->in_gc_callback++;
    frt__gc_run_callbacks(FRT_GC_STOP, &info);
    me->in_gc_callback--;
    atomic_store(&frt__gc.collecting, 0);
    if (found)
        *found = nu;
    /* As CPython: what a finalizer resurrected was not collected. */
    return (long)(collected + uncollectable);
}

long frt_gc_collect(int generation)
{
    frt_tstate *me = frt__tstate();
    if (!me || me->blocking_depth || me->stw_depth)
        return FRT_ESTATE;
    if (generation == -1)
        generation = 2;
    if (generation < 0 || generation > 2)
        return FRT_EINVAL;
    /* From a finalizer (or destroy) that a plain last decref runs: 0 and no
     * collection, as from one the collector runs (in_gc_callback). */
    if (me->in_dealloc)
        return 0;
    return frt__gc_collect_gen(me, generation, 0, NULL);
}
