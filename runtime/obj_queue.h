/* A queue of object pointers in chunks, behind a test-and-set lock: the
 * BRC merge queue on each thread state (brc/merge_queue.c drains it).
 *
 * Pushers hand over whole chunks: a thread fills a chunk of its own with
 * the objects it drops for one owner (brc/drop_batch.c) and links it onto
 * the owner's queue in one locked step, so a hand-off allocates nothing
 * and takes the lock once per chunk, not per object. A chunk holds 62
 * pointers; the owner keeps drained chunks as spares, and a pusher takes
 * one back for its next batch in the same locked step. The lock is held
 * for a few stores, so it is a plain test-and-set lock: one atomic
 * exchange to take, a store to give back; a waiter spins, then yields.
 * `count` is read without the lock (seq_cst, see frt_objq_empty) by a
 * thread deciding to block. */
#ifndef FRT_RUNTIME_OBJ_QUEUE_H
#define FRT_RUNTIME_OBJ_QUEUE_H

#include <stdatomic.h>
#include <stdint.h>

#include <frt/object.h>

#include "futex.h"

#define FRT_OBJQ_CHUNK 62

typedef struct frt_objq_chunk {
    struct frt_objq_chunk *next;
    uint32_t n;
    frt_object *obj[FRT_OBJQ_CHUNK];
} frt_objq_chunk;

typedef struct frt_objq {
    _Atomic uint32_t lock;   /* 1 while held (obj_queue.c) */
    _Atomic uint32_t count;  /* objects queued; written under the lock */
    int closed;              /* under the lock */
    frt_objq_chunk *head;    /* newest chunk first; any may be partly filled */
    frt_objq_chunk *spare;   /* drained chunks */
    unsigned nspare;
} frt_objq;

/* A queue this long is worth its owner's while at any safepoint poll;
 * a shorter one waits for an explicit safepoint (frt_safepoint, a
 * blocking section, detach, a collection) or for this many. */
#define FRT_OBJQ_BATCH FRT_OBJQ_CHUNK

enum {
    FRT_OBJQ_PUSHED = 0,
    FRT_OBJQ_FIRST = 1,
    FRT_OBJQ_BATCHED = 2,
    FRT_OBJQ_CLOSED = -1
};

/* Open (again, after a close): the chunks kept for reuse stay. */
void frt_objq_open(frt_objq *q);
/* Link c (c->n > 0 objects) onto q. FRT_OBJQ_FIRST when the queue was
 * empty and FRT_OBJQ_BATCHED when it now holds FRT_OBJQ_BATCH objects or
 * more for the first time (either way the owner needs telling),
 * FRT_OBJQ_PUSHED otherwise; then *spare is one of q's spare chunks
 * (emptied) or NULL. FRT_OBJQ_CLOSED when c was not linked: it stays the
 * caller's. Never allocates. */
int frt_objq_push_chunk(frt_objq *q, frt_objq_chunk *c, frt_objq_chunk **spare);
/* Everything queued so far (NULL if none), leaving the queue empty. */
frt_objq_chunk *frt_objq_take(frt_objq *q);
/* Close, making every later push fail, but only if empty: 1 when closed
 * (now or before), 0 when something is queued, which the caller merges
 * before it tries again. */
int frt_objq_close_empty(frt_objq *q);
/* Drained chunks back to q for reuse (a few are kept, the rest freed). */
void frt_objq_recycle(frt_objq *q, frt_objq_chunk *chunks);
/* Free every chunk (the queue's thread state is going away). */
void frt_objq_destroy(frt_objq *q);

/* Sequentially consistent, as the push's count store: a thread that went
 * BLOCKED and then finds the queue empty cannot miss a push whose pusher
 * did not see it BLOCKED (runtime/stw.c). */
static inline int frt_objq_empty(frt_objq *q)
{
    return atomic_load_explicit(&q->count, memory_order_seq_cst) == 0;
}

/* Enough queued for a safepoint poll to merge (FRT_OBJQ_BATCH). */
static inline int frt_objq_batch_ready(frt_objq *q)
{
    return atomic_load_explicit(&q->count, memory_order_relaxed) >= FRT_OBJQ_BATCH;
}

#endif
