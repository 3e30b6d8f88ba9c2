/* Merge queues: the owner's side of a hand-off (brc/drop_batch.c is the
 * dropper's).
 *
 * A queue is a chunked stack of object pointers on the owner's thread
 * state (runtime/obj_queue.h); droppers link whole chunks onto it, and
 * only the push that finds the queue empty, or that brings it to
 * FRT_OBJQ_BATCH, sets MERGE in the owner's state word. The owner merges
 * at its next explicit safepoint (frt_safepoint, a blocking section,
 * detach; a collection merges every queue), and at any safepoint poll
 * (frt_new's) once FRT_OBJQ_BATCH objects wait: merges are paid per batch,
 * not per object. Merging an entry whose object nobody else can reach
 * needs no atomic read-modify-write (frt__brc_merge_queued), and the
 * owner frees such an object on the spot when it runs no code.
 * Elsewhere, each safe because the owner cannot be writing the local
 * count:
 *   - the owner has detached (its id matches no thread, or its queue is
 *     closed): its detach merged every object it owned, the queued ones
 *     included, so the dropper's own queue takes the batch (drop_batch.c);
 *   - the owner is BLOCKED (frt_blocking_begin): the pusher registers as a
 *     helper in the owner's state word, which keeps the owner from
 *     re-attaching, and merges the owner's whole queue for it, so a thread
 *     parked in a long blocking call holds no memory hostage (gh-157838);
 *   - a batch chunk cannot be allocated: the dropper stops the world and
 *     merges with everyone parked. */
#include "brc.h"
#include "../runtime/debug.h"
#include "../runtime/object_internal.h"
#include "../runtime/os.h"

/* Merge what was taken from q; objects whose count reached zero are
 * chained through their (dead) ob_tid onto *dead for the caller to free.
 * With free_now (the owner merging its own queue, world running) a dead
 * object that runs no code when freed is freed here: nothing of user code
 * or safepoints can come between two objects of the loop then. The chunks
 * go back to q as spares. */
static void merge_chunks(frt_objq *q, frt_objq_chunk *chunks, frt_object **dead, int free_now)
{
    for (frt_objq_chunk *c = chunks; c; c = c->next) {
        for (uint32_t i = 0; i < c->n; i++) {
            frt_object *o = frt__brc_entry_object(c->obj[i]);
            if (frt__brc_merge_queued(o, frt__brc_entry_maybe_weak(c->obj[i])) == 0 &&
                !(free_now && frt__dealloc_trivial(o))) {
                atomic_store_explicit(&o->ob_tid, (uintptr_t)*dead, memory_order_relaxed);
                *dead = o;
            }
        }
    }
    if (chunks)
        frt_objq_recycle(q, chunks);
}

static void free_dead(frt_object *dead)
{
    frt__dealloc_chain(dead);
}

void frt__brc_take_queue(frt_tstate *ts, frt_object **dead)
{
    merge_chunks(&ts->brc_queue, frt_objq_take(&ts->brc_queue), dead, 0);
}

void frt__brc_free_dead(frt_object *dead)
{
    free_dead(dead);
}

void frt__brc_merge_queue(frt_tstate *ts)
{
    frt_object *dead = NULL;
    merge_chunks(&ts->brc_queue, frt_objq_take(&ts->brc_queue), &dead, ts == frt__tstate());
    free_dead(dead);
}

typedef struct disown_walk {
    uintptr_t tid;
    frt_object *dead;
} disown_walk;

/* Reads nothing but ob_tid, atomically: other threads may be freeing
 * merged objects of our heap meanwhile (a free block's link overlays
 * ob_tid and is written atomically, runtime/mpsc.h). A link or a free
 * block never equals a thread pointer, so only our live objects match. */
static void disown_one(void *block, size_t size, void *arg)
{
    (void)size;
    disown_walk *d = arg;
    frt_object *o = block;
    if (atomic_load_explicit(&o->ob_tid, memory_order_relaxed) != d->tid)
        return;
    if (frt__brc_merge(o, 0) == 0) {
        atomic_store_explicit(&o->ob_tid, (uintptr_t)d->dead, memory_order_relaxed);
        d->dead = o;
    }
}

/* Detach. Our own batch of drops goes first, each round (the frees below
 * may drop more). The owner keeps its id throughout: every object queued to it
 * is merged and freed by it as the owner (finalize_once needs that), and
 * it gives up every object it owns, since the next thread given its thread
 * pointer must find none claiming it. An owned object lives in our heap or
 * among the large objects (object.c keeps it so); the walk costs one load
 * per block of our heap. The frees run finalizers and destroys, which may
 * allocate (objects we own) and drop references (queued to us): so go
 * round until a walk frees nothing and the queue closes empty, the only
 * moment nothing of ours is left anywhere. It ends: an object is queued to
 * us at most once, and only what the frees allocate can be ours anew. (A
 * fork child closes the queue of a thread that did not come along: nothing
 * is pushed to it any more and its frees run on the calling thread, so one
 * round does.) */
void frt__brc_close_queue(frt_tstate *ts)
{
    uintptr_t tid = atomic_load_explicit(&ts->tid, memory_order_relaxed);
    for (;;) {
        frt__brc_flush_drops(ts, 1);
        frt__brc_merge_queue(ts);
        disown_walk d = {tid, NULL};
        frt__heap_walk_blocks(ts->heap, disown_one, &d);
        frt__large_walk(disown_one, &d);
        if (!d.dead && !frt__tstate_has_drops(ts) && frt_objq_close_empty(&ts->brc_queue))
            break;
        free_dead(d.dead);
    }
    /* Last: the frees above may have counted on hot objects. */
    frt__hot_thread_fold(ts);
}

/* Merge for a BLOCKED owner. Objects are freed only after we stop being a
 * helper: destroy() runs user code, which may park us at a safepoint, and
 * a parked helper would keep the owner from ever re-attaching. */
void frt__brc_help(frt_tstate *owner)
{
    if (!frt__tstate_help_begin(owner))
        return;
    frt_object *dead = NULL;
    merge_chunks(&owner->brc_queue, frt_objq_take(&owner->brc_queue), &dead, 0);
    frt__tstate_help_end(owner);
    free_dead(dead);
}

void frt__brc_install(frt_hooks *hooks)
{
    hooks->merge_queue = frt__brc_merge_queue;
    hooks->close_queue = frt__brc_close_queue;
    hooks->flush_drops = frt__brc_flush_drops;
    hooks->merge = frt__brc_merge;
    hooks->hot_pending = frt__hot_promote_pending;
    hooks->hot_forget = frt__hot_forget;
}
