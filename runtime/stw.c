/* Safepoints, blocking sections and stop-the-world: the one protocol the
 * collector and the stress harness share.
 *
 * A stopper takes stw_mutex (stops are serialised), then the FIFO threads
 * lock (no thread attaches or leaves the registry during the stop), then
 * walks the registry: an ATTACHED thread gets the STOP bit and parks itself
 * at its next safepoint (ATTACHED -> SUSPENDED); a BLOCKED thread is
 * suspended by the stopper (BLOCKED -> SUSPENDED), so it cannot re-attach
 * until the restart. Both are compare-and-swaps on the thread's one word,
 * which is what keeps a thread from parking after the stop ended or slipping
 * back in while it is being suspended. At restart a thread that parked at a
 * safepoint, or that was waiting to re-attach, is handed ATTACHED directly:
 * the next stop cannot starve it before it runs. */
#define _GNU_SOURCE
#include <sched.h>
#include <unistd.h>

#include "debug.h"
#include "fork.h"
#include "futex.h"
#include "os.h"
#include "qsbr.h"
#include "runtime.h"

#define SPIN_BEFORE_SLEEP 2000

/* Spinning only pays while every registered thread can have a CPU: with more
 * threads than CPUs a spinning waiter takes the time slice that a thread
 * still on its way to a safepoint (or the stopper) needs, and a stop then
 * costs whole scheduler slices (milliseconds) instead of microseconds. */
static unsigned spin_limit(void)
{
    static _Atomic long ncpu;
    long n = atomic_load_explicit(&ncpu, memory_order_relaxed);
    if (n == 0) {
        n = sysconf(_SC_NPROCESSORS_ONLN);
        if (n < 1)
            n = 1;
        atomic_store_explicit(&ncpu, n, memory_order_relaxed);
    }
    return atomic_load_explicit(&frt__rt.nthreads_hint, memory_order_relaxed) > (size_t)n ? 0 : SPIN_BEFORE_SLEEP;
}

void frt__tstate_wake(frt_tstate *ts)
{
    if (atomic_load_explicit(&ts->word, memory_order_seq_cst) & FRT_TS_SLEEPING) {
        atomic_fetch_and(&ts->word, ~(uint32_t)FRT_TS_SLEEPING);
        frt_futex_wake_all(&ts->word);
    }
}

/* Wait, on our own word, until done(word) holds. */
static uint32_t wait_word(frt_tstate *ts, int (*done)(uint32_t))
{
    unsigned limit = spin_limit();
    for (unsigned spin = 0;; spin++) {
        uint32_t w = atomic_load_explicit(&ts->word, memory_order_acquire);
        if (done(w))
            return w;
        if (spin < limit) {
            frt_cpu_relax();
            continue;
        }
        uint32_t sw = w | FRT_TS_SLEEPING;
        if (w == sw || atomic_compare_exchange_strong(&ts->word, &w, sw))
            frt_futex_wait(&ts->word, sw);
    }
}

static int not_suspended(uint32_t w)
{
    return frt_ts_state(w) != FRT_TS_SUSPENDED;
}

static int no_helpers(uint32_t w)
{
    return (w & FRT_TS_HELPERS) == 0 || frt_ts_state(w) != FRT_TS_BLOCKED;
}

/* ts's batch of drops to their owners' queues (brc/drop_batch.c): before
 * ts stops being ATTACHED, so that a stopped world hides none. */
static void flush_drops(frt_tstate *ts, int may_run_code)
{
    if (frt__tstate_has_drops(ts) && frt__rt.hooks.flush_drops)
        frt__rt.hooks.flush_drops(ts, may_run_code);
}

/* Park here while a stop is requested. Our critical sections are
 * suspended while we are parked, as in any wait: a thread that waits for
 * one of their locks would otherwise wait for the whole stop. */
void frt__safepoint_park(frt_tstate *ts)
{
    uint32_t w = atomic_load(&ts->word);
    if (!(w & FRT_TS_STOP) || frt_ts_state(w) != FRT_TS_ATTACHED)
        return;
    flush_drops(ts, 0);
    int suspended = frt__cs_suspend_all(ts);
    frt__qsbr_flush();
    for (;;) {
        if (!(w & FRT_TS_STOP) || frt_ts_state(w) != FRT_TS_ATTACHED)
            goto resume;
        uint32_t nw = (w & ~FRT_TS_STATE) | FRT_TS_SUSPENDED | FRT_TS_RESUME_ATTACHED;
        if (atomic_compare_exchange_weak(&ts->word, &w, nw))
            break;
    }
    /* Parked, the thread reads no slot: grace periods need not wait. */
    frt__qsbr_offline();
    wait_word(ts, not_suspended); /* the stopper hands us ATTACHED */
    frt__qsbr_online();
resume:
    if (suspended)
        frt__cs_resume(ts);
}

void frt__safepoint_slow(frt_tstate *ts)
{
    ts->safepoint_polls++;
    frt__qsbr_quiescent();
    for (;;) {
        uint32_t w = atomic_load(&ts->word);
        if (w & FRT_TS_STOP) {
            flush_drops(ts, 1); /* help a BLOCKED owner now, which parking does not */
            frt__safepoint_park(ts);
        } else if (w & FRT_TS_MERGE) {
            /* Clear first: a push after this sets it again. A short queue
             * waits (obj_queue.h, FRT_OBJQ_BATCH): merged one object per
             * poll, as a producer polling in every frt_new would, each
             * hand-off would cost the pusher and us a round of atomics on
             * the queue and on this word. */
            atomic_fetch_and(&ts->word, ~(uint32_t)FRT_TS_MERGE);
            if (frt__rt.hooks.merge_queue && frt_objq_batch_ready(&ts->brc_queue))
                frt__rt.hooks.merge_queue(ts);
        } else if (w & FRT_TS_TRIM) {
            atomic_fetch_and(&ts->word, ~(uint32_t)FRT_TS_TRIM);
            frt__heap_trim(ts->heap);
        } else if (w & FRT_TS_GC) {
            atomic_fetch_and(&ts->word, ~(uint32_t)FRT_TS_GC);
            if (frt__rt.hooks.collect_pending)
                frt__rt.hooks.collect_pending(ts);
        } else if (w & FRT_TS_HOT) {
            atomic_fetch_and(&ts->word, ~(uint32_t)FRT_TS_HOT);
            if (frt__rt.hooks.hot_pending)
                frt__rt.hooks.hot_pending(ts);
        } else {
            return;
        }
    }
}

void frt_safepoint(void)
{
    frt_tstate *ts = frt__tstate();
    if (!ts) {
        FRT_MISUSE(NULL, "frt_safepoint from a thread that is not attached");
        return;
    }
    frt__heap_collect_remote(ts->heap);
    frt__arena_purge_poll();
    frt__qsbr_quiescent();
    frt__safepoint_poll(ts);
    flush_drops(ts, 1);
    /* An explicit safepoint merges whatever is queued, short or not. */
    if (frt__rt.hooks.merge_queue && !frt_objq_empty(&ts->brc_queue))
        frt__rt.hooks.merge_queue(ts);
    /* Too much memory waits for a grace period: wait for one here, where
     * the caller holds nothing (qsbr.h). */
    if (FRT_UNLIKELY(frt__qsbr_over_limit()))
        frt__qsbr_drain();
    frt__qsbr_run_ready();
}

/* ATTACHED -> BLOCKED and nothing else. Objects queued to us before this
 * wait for the next pusher to help, or for our next safepoint. */
static void go_blocked(frt_tstate *ts)
{
    flush_drops(ts, 0);
    frt__qsbr_flush();
    uint32_t w = atomic_load(&ts->word);
    while (!atomic_compare_exchange_weak(
        &ts->word, &w, (w & ~(FRT_TS_STATE | FRT_TS_ATTACH_WAITING)) | FRT_TS_BLOCKED)) {
    }
}

/* ATTACHED -> BLOCKED, after merging our queue (and pushing our batch of
 * drops, go_blocked). A thread that pushed while we went blocked either
 * sees BLOCKED and merges for us, or we see its push here and go round
 * again (both operations are sequentially consistent). */
static void enter_blocked(frt_tstate *ts)
{
    for (;;) {
        frt__safepoint_poll(ts);
        if (frt__rt.hooks.merge_queue)
            frt__rt.hooks.merge_queue(ts);
        /* What that merge freed may have dropped objects of other owners:
         * push them now, helping an owner that is BLOCKED by then. Left to
         * go_blocked's push, which runs no code, they would wait for that
         * owner to come back. */
        flush_drops(ts, 1);
        go_blocked(ts);
        if (frt_objq_empty(&ts->brc_queue))
            return;
        frt__leave_blocked(ts);
    }
}

void frt__enter_blocked(frt_tstate *ts)
{
    enter_blocked(ts);
}

/* BLOCKED -> ATTACHED, waiting out a stop and any helpers. Parks for a
 * stop requested meanwhile but takes on no other pending work (merge,
 * trim, collection): those run user code (destructors, finalizers,
 * callbacks), which must not run where a thread re-acquires a lock. The
 * MERGE/GC bits stay set for the next safepoint. */
void frt__leave_blocked(frt_tstate *ts)
{
    for (;;) {
        uint32_t w = atomic_load(&ts->word);
        switch (frt_ts_state(w)) {
        case FRT_TS_BLOCKED:
            if (w & FRT_TS_HELPERS) {
                wait_word(ts, no_helpers);
                continue;
            }
            /* Clear ATTACH_WAITING too: left set, a later restart would
             * hand ATTACHED to a thread sitting in a blocking call. */
            if (atomic_compare_exchange_weak(
                    &ts->word, &w,
                    (w & ~(FRT_TS_STATE | FRT_TS_ATTACH_WAITING)) | FRT_TS_ATTACHED)) {
                frt__safepoint_park_poll(ts); /* a stop may have been requested meanwhile */
                return;
            }
            continue;
        case FRT_TS_SUSPENDED:
            if (!(w & FRT_TS_ATTACH_WAITING) &&
                !atomic_compare_exchange_weak(&ts->word, &w, w | FRT_TS_ATTACH_WAITING))
                continue;
            w = wait_word(ts, not_suspended);
            if (frt_ts_state(w) == FRT_TS_ATTACHED) {
                frt__safepoint_park_poll(ts);
                return; /* handed over at restart */
            }
            continue;
        default:
            FRT_MISUSE(NULL, "frt_blocking_end without frt_blocking_begin");
            return;
        }
    }
}

void frt_blocking_begin(void)
{
    frt_tstate *ts = frt__tstate();
    if (!ts) {
        FRT_MISUSE(NULL, "frt_blocking_begin from a thread that is not attached");
        return;
    }
    /* Pending work first, while this thread may still do all of it: a
     * collection cannot run once the depth says "blocked". */
    if (ts->blocking_depth == 0) {
        frt__safepoint_poll(ts);
        flush_drops(ts, 1);
    }
    if (ts->blocking_depth++ == 0) {
        enter_blocked(ts);
        frt__qsbr_offline();
        frt__cs_suspend_all(ts);
    }
}

void frt_blocking_end(void)
{
    frt_tstate *ts = frt__tstate();
    if (!ts || ts->blocking_depth == 0) {
        FRT_MISUSE(NULL, "frt_blocking_end without frt_blocking_begin");
        return;
    }
    if (--ts->blocking_depth == 0) {
        /* Online first: leaving may park for a stop (offline again
         * there), and resuming sections may wait for their locks. */
        frt__qsbr_online();
        frt__leave_blocked(ts);
        frt__cs_resume(ts);
    }
}

int frt__wait_begin(frt_tstate *ts)
{
    /* Not attached, or blocked already (a standalone mutex in a blocking
     * section). The depth would not do: frt_blocking_begin raises it
     * before its last merge, whose destructors may take locks. */
    if (!ts || frt_ts_state(atomic_load_explicit(&ts->word, memory_order_relaxed)) != FRT_TS_ATTACHED)
        return 0;
    /* The holder of a stop stays attached: going blocked would let another
     * stopper in while the world is ours. */
    if (!ts->stw_depth)
        go_blocked(ts);
    /* Offline for RCU too (the holder of a stop included): the lock's
     * holder may be waiting for a grace period. Attached means online. */
    frt__qsbr_offline();
    frt__cs_suspend_all(ts);
    return 1;
}

void frt__wait_end(frt_tstate *ts, int token)
{
    if (!token)
        return;
    frt__qsbr_online();
    if (!ts->stw_depth)
        frt__leave_blocked(ts);
    frt__cs_resume(ts);
}

int frt__tstate_help_begin(frt_tstate *owner)
{
    uint32_t w = atomic_load(&owner->word);
    for (;;) {
        /* Suspended by a stop while blocked (no RESUME_ATTACHED) counts as
         * blocked: it cannot re-attach while we help (restart and
         * leave_blocked wait for helpers). Refusing it would strand what is
         * queued to the owner during a stop until its blocking call returns
         * (gh-157838). A thread parked at a safepoint is not helped. */
        uint32_t st = frt_ts_state(w);
        int blocked = st == FRT_TS_BLOCKED ||
                      (st == FRT_TS_SUSPENDED && !(w & FRT_TS_RESUME_ATTACHED));
        if (!blocked || (w & FRT_TS_HELPERS) == FRT_TS_HELPERS)
            return 0;
        if (atomic_compare_exchange_weak(&owner->word, &w, w + FRT_TS_HELPER))
            return 1;
    }
}

void frt__tstate_help_end(frt_tstate *owner)
{
    atomic_fetch_sub_explicit(&owner->word, FRT_TS_HELPER, memory_order_release);
    frt__tstate_wake(owner);
}

/* ------------------------------------------------------------------ */
/* Stop and restart.                                                  */

/* Ask ts to stop; 1 if it is stopped already. */
static int request_stop(frt_tstate *ts)
{
    uint32_t w = atomic_load(&ts->word);
    for (;;) {
        uint32_t nw;
        switch (frt_ts_state(w)) {
        case FRT_TS_ATTACHED:
            nw = w | FRT_TS_STOP;
            break;
        case FRT_TS_BLOCKED:
            nw = (w & ~(FRT_TS_STATE | FRT_TS_RESUME_ATTACHED)) | FRT_TS_SUSPENDED | FRT_TS_STOP;
            break;
        default:
            return 1; /* suspended or detached */
        }
        if (atomic_compare_exchange_weak(&ts->word, &w, nw))
            return frt_ts_state(nw) == FRT_TS_SUSPENDED;
    }
}

static void wait_stopped(frt_tstate *ts)
{
    unsigned limit = spin_limit();
    for (unsigned spin = 0;; spin++) {
        uint32_t w = atomic_load(&ts->word);
        if (frt_ts_state(w) == FRT_TS_BLOCKED) { /* went blocking instead of parking */
            if (request_stop(ts))
                return;
            continue;
        }
        if (frt_ts_state(w) != FRT_TS_ATTACHED)
            return;
        if (spin < limit)
            frt_cpu_relax();
        else
            sched_yield();
    }
}

static void restart(frt_tstate *ts)
{
    uint32_t w = atomic_load(&ts->word);
    for (;;) {
        uint32_t nw = w & ~FRT_TS_STOP;
        if (frt_ts_state(w) == FRT_TS_SUSPENDED) {
            int attach = (w & FRT_TS_RESUME_ATTACHED) ||
                         ((w & FRT_TS_ATTACH_WAITING) && !(w & FRT_TS_HELPERS));
            nw &= ~(FRT_TS_STATE | FRT_TS_RESUME_ATTACHED | (attach ? FRT_TS_ATTACH_WAITING : 0));
            nw |= attach ? FRT_TS_ATTACHED : FRT_TS_BLOCKED;
        }
        if (atomic_compare_exchange_weak(&ts->word, &w, nw))
            break;
    }
}

int frt_stop_the_world(void)
{
    frt_tstate *me = frt__tstate();
    if (!me) {
        FRT_MISUSE(NULL, "frt_stop_the_world from a thread that is not attached");
        return FRT_ESTATE;
    }
    if (me->stw_depth) {
        me->stw_depth++;
        return 0;
    }
    if (me->blocking_depth) {
        FRT_MISUSE(NULL, "frt_stop_the_world inside a blocking section");
        return FRT_ESTATE;
    }
    /* Our drops first, helping BLOCKED owners as any flush would:
     * going blocked below only pushes them. */
    flush_drops(me, 1);
    uint64_t t0 = frt__now_ns();
    /* Wait for other stoppers as a blocked thread, so they need not wait
     * for us: two simultaneous requests never deadlock. */
    enter_blocked(me);
    pthread_mutex_lock(&frt__rt.stw_mutex);
    frt_ticket_lock_acquire(&frt__rt.threads_lock);
    frt__leave_blocked(me); /* nobody else can stop us now */
    t0 = frt__now_ns();
    atomic_store(&frt__rt.stw_active, 1);
    frt__rt.stw_owner = me;
    frt__rt.stw_t0 = t0;
    for (frt_tstate *ts = frt__rt.threads; ts; ts = ts->next)
        if (ts != me)
            request_stop(ts);
    for (frt_tstate *ts = frt__rt.threads; ts; ts = ts->next)
        if (ts != me)
            wait_stopped(ts);
    pthread_mutex_lock(&frt__rt.stw_stats_lock);
    frt__rt.stw.last_time_to_stop_ns = frt__now_ns() - t0;
    pthread_mutex_unlock(&frt__rt.stw_stats_lock);
    me->stw_depth = 1;
    frt__qsbr_world_stopped(); /* a grace period, in a forked child */
    return 0;
}

void frt_start_the_world(void)
{
    frt_tstate *me = frt__tstate();
    if (!me || me->stw_depth == 0) {
        FRT_MISUSE(NULL, "frt_start_the_world without frt_stop_the_world");
        return;
    }
    if (--me->stw_depth)
        return;
    /* Release every thread first, then wake the sleepers: a thread still
     * spinning runs at once, and one woken early cannot preempt us before
     * the others are released. */
    for (frt_tstate *ts = frt__rt.threads; ts; ts = ts->next)
        if (ts != me)
            restart(ts);
    for (frt_tstate *ts = frt__rt.threads; ts; ts = ts->next)
        if (ts != me)
            frt__tstate_wake(ts);
    uint64_t pause = frt__now_ns() - frt__rt.stw_t0;
    frt__rt.stw_owner = NULL;
    atomic_store(&frt__rt.stw_active, 0);
    pthread_mutex_lock(&frt__rt.stw_stats_lock);
    frt__rt.stw.stops++;
    frt__rt.stw.pause_ns_total += pause;
    if (pause > frt__rt.stw.pause_ns_max)
        frt__rt.stw.pause_ns_max = pause;
    frt__rt.stw.last_pause_ns = pause;
    pthread_mutex_unlock(&frt__rt.stw_stats_lock);
    frt_ticket_lock_release(&frt__rt.threads_lock);
    pthread_mutex_unlock(&frt__rt.stw_mutex);
    frt__qsbr_world_started(); /* frees what the stop's grace period let go */
}

void frt__stw_fork(int phase)
{
    frt__fork_mutex(&frt__rt.stw_stats_lock, phase);
}

void frt_stw_get_stats(frt_stw_stats *out)
{
    if (!out)
        return;
    pthread_mutex_lock(&frt__rt.stw_stats_lock);
    *out = frt__rt.stw;
    pthread_mutex_unlock(&frt__rt.stw_stats_lock);
}
