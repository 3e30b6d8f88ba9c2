/* The chunked object queue behind the BRC merge queues (obj_queue.h). */
#include "obj_queue.h"

#include <sched.h>

#include "os.h"

#define SPARE_MAX 4
#define SPINS 100

static void lock(frt_objq *q)
{
    for (unsigned spin = 0; atomic_exchange_explicit(&q->lock, 1, memory_order_acquire);) {
        while (atomic_load_explicit(&q->lock, memory_order_relaxed)) {
            /* The holder stores a few words: it is running, or preempted
             * (then yield it the CPU). */
            if (++spin < SPINS)
                frt_cpu_relax();
            else
                sched_yield();
        }
    }
}

static void unlock(frt_objq *q)
{
    atomic_store_explicit(&q->lock, 0, memory_order_release);
}

void frt_objq_open(frt_objq *q)
{
    lock(q);
    q->closed = 0;
    unlock(q);
}

int frt_objq_push_chunk(frt_objq *q, frt_objq_chunk *c, frt_objq_chunk **spare)
{
    lock(q);
    if (q->closed) {
        unlock(q);
        return FRT_OBJQ_CLOSED;
    }
    c->next = q->head;
    q->head = c;
    frt_objq_chunk *s = q->spare;
    if (s) {
        q->spare = s->next;
        q->nspare--;
        s->next = NULL;
        s->n = 0;
    }
    /* c is the owner's once the lock is released (taken, merged, freed):
     * nothing of it is read after that. */
    uint32_t n = atomic_load_explicit(&q->count, memory_order_relaxed), added = c->n;
    /* Only the push onto an empty queue races an owner going BLOCKED
     * (frt_objq_empty): a later one finds the count non-zero already, and
     * only a take (under this lock) clears it. So only the first needs the
     * sequentially consistent store (an xchg on x86). */
    if (n == 0)
        atomic_store_explicit(&q->count, added, memory_order_seq_cst);
    else
        atomic_store_explicit(&q->count, n + added, memory_order_relaxed);
    unlock(q);
    *spare = s;
    if (n == 0)
        return FRT_OBJQ_FIRST;
    return n < FRT_OBJQ_BATCH && n + added >= FRT_OBJQ_BATCH ? FRT_OBJQ_BATCHED : FRT_OBJQ_PUSHED;
}

static frt_objq_chunk *take(frt_objq *q)
{
    lock(q);
    frt_objq_chunk *c = q->head;
    q->head = NULL;
    atomic_store_explicit(&q->count, 0, memory_order_seq_cst);
    unlock(q);
    return c;
}

frt_objq_chunk *frt_objq_take(frt_objq *q)
{
    if (frt_objq_empty(q))
        return NULL; /* the owner's safepoint: no lock when nothing came */
    return take(q);
}

int frt_objq_close_empty(frt_objq *q)
{
    lock(q);
    int empty = atomic_load_explicit(&q->count, memory_order_relaxed) == 0;
    if (empty)
        q->closed = 1;
    unlock(q);
    return empty;
}

void frt_objq_recycle(frt_objq *q, frt_objq_chunk *chunks)
{
    lock(q);
    while (chunks && q->nspare < SPARE_MAX) {
        frt_objq_chunk *next = chunks->next;
        chunks->next = q->spare;
        q->spare = chunks;
        q->nspare++;
        chunks = next;
    }
    unlock(q);
    while (chunks) {
        frt_objq_chunk *next = chunks->next;
        frt__sys_free(chunks);
        chunks = next;
    }
}

void frt_objq_destroy(frt_objq *q)
{
    frt_objq_chunk *lists[2] = {q->head, q->spare};
    for (int i = 0; i < 2; i++)
        while (lists[i]) {
            frt_objq_chunk *next = lists[i]->next;
            frt__sys_free(lists[i]);
            lists[i] = next;
        }
    q->head = q->spare = NULL;
    q->nspare = 0;
    atomic_store_explicit(&q->count, 0, memory_order_relaxed);
}
