/* Drop batches: the dropper's side of a hand-off (brc/merge_queue.c is the
 * owner's).
 *
 * A non-owner decref that finds the shared count at zero marks the object
 * QUEUED (refcount.c) and hands its reference to the owner. Instead of
 * taking the owner's queue lock for each object, the dropper stores the
 * object in a chunk of its own (ts->drops, FRT_OBJQ_CHUNK pointers, for
 * one owner at a time) and links the whole chunk onto the owner's queue in
 * one locked step (frt_objq_push_chunk), taking one of the owner's spare
 * chunks back for its next batch: in steady hand-off nothing is allocated,
 * and the dropper pays one plain store per object besides the QUEUED CAS,
 * the owner (merge_queue.c) a load or two.
 *
 * When a batch goes to its owner:
 *   - when it is full, or a drop for another owner comes;
 *   - at the dropper's frt_safepoint, frt_blocking_begin and detach;
 *   - before the dropper parks for a stop or waits for a contended lock
 *     as blocked (runtime/stw.c): push only, nothing merged or freed.
 * So a dropped object waits in its dropper's batch for at most 61 more
 * drops or the dropper's next safepoint, then on the owner's queue as
 * before; and whenever the world is stopped every batch is empty (or, on
 * the path that found no memory, counted as still referenced, which keeps
 * an object alive, never frees one): a collection sees every queued
 * reference on an owner's queue.
 *
 * The batch's owner may detach meanwhile: its detach merges every object
 * it owns, ours included (each still holds our reference), and closes its
 * queue. The batch then goes onto the dropper's own queue, whose merge of
 * an object already merged is an ordinary shared decref. */
#include <string.h>

#include "brc.h"
#include "../runtime/debug.h"
#include "../runtime/object_internal.h"
#include "../runtime/os.h"

/* No memory for a batch: merge o with every owner parked. */
static void merge_stopped(frt_object *o)
{
    if (frt_stop_the_world() != 0) {
        frt__fatal(o, "cannot queue an object to its owner (no memory, thread not attached)");
        return;
    }
    intptr_t count = frt__brc_merge(o, -1);
    frt_start_the_world();
    if (count == 0)
        frt__dealloc(o);
}

/* Our own queue is closed too (we are detaching, past the close): merge
 * each object here, as its owner is gone. Out of the batch first: the
 * frees may drop more. */
static void merge_here(frt_objq_chunk *c)
{
    frt_object *v[FRT_OBJQ_CHUNK];
    uint32_t n = c->n;
    memcpy(v, c->obj, n * sizeof *v);
    c->n = 0;
    for (uint32_t i = 0; i < n; i++) {
        frt_object *o = frt__brc_entry_object(v[i]);
        if (frt__brc_merge(o, -1) == 0)
            frt__dealloc(o);
    }
}

void frt__brc_flush_drops(frt_tstate *ts, int may_run_code)
{
    frt_objq_chunk *c = ts->drops;
    if (!c || !c->n)
        return;
    frt_tstate *owner = ts->drops_to;
    frt_objq_chunk *spare = NULL;
    int pushed = owner ? frt_objq_push_chunk(&owner->brc_queue, c, &spare) : FRT_OBJQ_CLOSED;
    if (pushed == FRT_OBJQ_CLOSED) {
        owner = ts;
        pushed = frt_objq_push_chunk(&ts->brc_queue, c, &spare);
        if (pushed == FRT_OBJQ_CLOSED) {
            if (may_run_code)
                merge_here(c);
            return;
        }
    }
    ts->drops = spare; /* NULL: the next drop allocates one */
    /* Only the push onto an empty queue, or the one that brings it to a
     * batch, sets MERGE: the owner clears it before it looks at the queue,
     * so a later push finds the queue empty again (or a batch full) and
     * sets it anew. Other pushes only look at the owner's state: if the
     * first one's help was refused (a stop was suspending the owner), a
     * BLOCKED owner must still not hold them hostage. */
    uint32_t w = pushed != FRT_OBJQ_PUSHED
                     ? atomic_fetch_or_explicit(&owner->word, FRT_TS_MERGE, memory_order_seq_cst)
                     : atomic_load_explicit(&owner->word, memory_order_relaxed);
    if (may_run_code && owner != ts &&
        (frt_ts_state(w) == FRT_TS_BLOCKED || frt_ts_state(w) == FRT_TS_SUSPENDED))
        frt__brc_help(owner); /* help_begin refuses a thread parked at a safepoint */
}

void frt__brc_queue(frt_object *o, int maybe_weak)
{
    uintptr_t tid = atomic_load_explicit(&o->ob_tid, memory_order_acquire);
    if (tid == 0) {
        /* The owner merged meanwhile: our reference is an ordinary shared
         * one again. */
        frt_decref(o);
        return;
    }
    frt_tstate *ts = frt__tstate();
    if (!ts) {
        /* Misuse: a thread that is not attached cannot queue, nor stop the
         * world. Keeping the reference (a leak) is the safe failure. */
        frt__misuse(o, "last shared reference dropped by a thread that is not attached");
        return;
    }
    /* FRT_FAULT_NODE lets a test refuse this queue entry alone. */
    if (frt__fault_hit(FRT_FAULT_NODE)) {
        merge_stopped(o);
        return;
    }
    /* A batch for another owner goes first. Its push may free objects
     * (helping a BLOCKED owner), whose destroy may drop more: look again. */
    while (frt__tstate_has_drops(ts) && ts->drops_owner != tid)
        frt__brc_flush_drops(ts, 1);
    frt_objq_chunk *c = ts->drops;
    if (FRT_UNLIKELY(!c)) {
        c = frt__sys_calloc_as(FRT_FAULT_NODE, 1, sizeof *c);
        if (!c) {
            merge_stopped(o);
            return;
        }
        ts->drops = c;
    }
    if (c->n == 0) {
        ts->drops_owner = tid;
        ts->drops_to = frt__tstate_of_tid(tid);
    }
    c->obj[c->n++] = frt__brc_entry(o, maybe_weak);
    /* Only an owner that is ATTACHED waits for a batch: one that is not
     * (blocked, parked, gone) gets the drop now, merged for it if it is
     * blocked (gh-157838). An owner that goes blocked after this load gets
     * it at our next flush. A detaching thread past its queue's close
     * keeps nothing back. */
    frt_tstate *to = ts->drops_to;
    if (c->n == FRT_OBJQ_CHUNK || FRT_UNLIKELY(!to) ||
        FRT_UNLIKELY(frt_ts_state(atomic_load_explicit(&to->word, memory_order_relaxed)) != FRT_TS_ATTACHED) ||
        FRT_UNLIKELY(!ts->owner_id))
        frt__brc_flush_drops(ts, 1);
}
