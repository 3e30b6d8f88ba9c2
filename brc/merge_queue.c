/* Merge queues: how a non-owner hands a reference to an object's owner.
 *
 * A queue is an MPSC stack on the owner's thread state, of 16-byte nodes
 * allocated from the pusher's own heap (the object header has no spare word
 * for a link). The owner merges at its next safepoint. Three cases merge
 * elsewhere, each safe because the owner cannot be writing the local count:
 *   - the owner has detached (its id matches no thread, or its queue is
 *     closed): the pusher merges on the spot;
 *   - the owner is BLOCKED (frt_blocking_begin): the pusher registers as a
 *     helper in the owner's state word, which keeps the owner from
 *     re-attaching, and merges the owner's whole queue for it, so a thread
 *     parked in a long blocking call holds no memory hostage (gh-157838);
 *   - the queue node cannot be allocated: the pusher stops the world and
 *     merges with everyone parked. */
#include "brc.h"
#include "../runtime/debug.h"
#include "../runtime/object_internal.h"
#include "../runtime/os.h"

typedef struct brc_node {
    frt_mpsc_node link;
    frt_object *obj;
} brc_node;

_Static_assert(sizeof(brc_node) <= 16, "queue nodes live in the 16-byte raw class");

static frt_heap *my_heap(void)
{
    frt_tstate *me = frt__tstate();
    return me ? me->heap : NULL;
}

/* Merge a batch; objects whose count reached zero are chained through
 * their (dead) ob_tid onto *dead for the caller to free. */
static void merge_nodes(frt_mpsc_node *n, frt_object **dead)
{
    frt_heap *heap = my_heap();
    while (n) {
        brc_node *bn = (brc_node *)n;
        frt_object *o = bn->obj;
        n = n->next;
        frt__block_free(heap, bn);
        if (frt__brc_merge(o, -1) == 0) {
            atomic_store_explicit(&o->ob_tid, (uintptr_t)*dead, memory_order_relaxed);
            *dead = o;
        }
    }
}

static void free_dead(frt_object *dead)
{
    frt__dealloc_chain(dead);
}

void frt__brc_take_queue(frt_tstate *ts, frt_object **dead)
{
    merge_nodes(frt_mpsc_take(&ts->brc_queue), dead);
}

void frt__brc_free_dead(frt_object *dead)
{
    free_dead(dead);
}

void frt__brc_merge_queue(frt_tstate *ts)
{
    frt_object *dead = NULL;
    merge_nodes(frt_mpsc_take(&ts->brc_queue), &dead);
    free_dead(dead);
}

/* At detach, the owner still has its id: it merges and frees until the
 * queue is empty and closes it only then, so every object queued to it is
 * freed by it as the owner (finalize_once needs that). The loop ends: an
 * object is queued to its owner at most once, and only what the frees
 * themselves allocate can be queued anew. (A fork child closes the queue
 * of a thread that did not come along, whose id is gone already: nothing
 * is pushed to it any more, and one round empties it.) */
void frt__brc_close_queue(frt_tstate *ts)
{
    while (!frt_mpsc_close_empty(&ts->brc_queue))
        frt__brc_merge_queue(ts);
}

/* Merge for a BLOCKED owner. Objects are freed only after we stop being a
 * helper: destroy() runs user code, which may park us at a safepoint, and
 * a parked helper would keep the owner from ever re-attaching. */
static void help(frt_tstate *owner)
{
    if (!frt__tstate_help_begin(owner))
        return;
    frt_object *dead = NULL;
    merge_nodes(frt_mpsc_take(&owner->brc_queue), &dead);
    frt__tstate_help_end(owner);
    free_dead(dead);
}

static void merge_here(frt_object *o)
{
    if (frt__brc_merge(o, -1) == 0)
        frt__dealloc(o);
}

void frt__brc_queue(frt_object *o)
{
    uintptr_t tid = atomic_load_explicit(&o->ob_tid, memory_order_acquire);
    if (tid == 0) {
        /* The owner merged meanwhile: our reference is an ordinary shared
         * one again. */
        frt_decref(o);
        return;
    }
    frt_tstate *owner = frt__tstate_of_tid(tid);
    if (!owner) {
        merge_here(o);
        return;
    }
    frt_heap *heap = my_heap();
    if (!heap) {
        /* Misuse: a thread that is not attached cannot queue, nor stop the
         * world. Keeping the reference (a leak) is the safe failure. */
        frt__misuse(o, "last shared reference dropped by a thread that is not attached");
        return;
    }
    /* FRT_FAULT_NODE lets a test refuse this node alone; the heap refuses
     * it too when no arena can be mapped (FRT_FAULT_MAP). */
    brc_node *bn = frt__fault_hit(FRT_FAULT_NODE) ? NULL : frt__heap_alloc(heap, FRT_CLASS_RAW);
    if (!bn) {
        if (frt_stop_the_world() == 0) {
            intptr_t count = frt__brc_merge(o, -1);
            frt_start_the_world();
            if (count == 0)
                frt__dealloc(o);
        } else {
            frt__fatal(o, "cannot queue an object to its owner (no memory, thread not attached)");
        }
        return;
    }
    bn->obj = o;
    if (frt_mpsc_push(&owner->brc_queue, &bn->link) != 0) {
        frt__block_free(heap, bn); /* closed: the owner has detached */
        merge_here(o);
        return;
    }
    uint32_t w = atomic_fetch_or_explicit(&owner->word, FRT_TS_MERGE, memory_order_seq_cst);
    if (frt_ts_state(w) == FRT_TS_BLOCKED || frt_ts_state(w) == FRT_TS_SUSPENDED)
        help(owner); /* help_begin refuses a thread parked at a safepoint */
}

void frt__brc_install(frt_hooks *hooks)
{
    hooks->merge_queue = frt__brc_merge_queue;
    hooks->close_queue = frt__brc_close_queue;
}
