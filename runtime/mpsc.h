/* An intrusive multi-producer stack whose consumer takes everything at once.
 *
 * Producers push with a release CAS; a consumer detaches the whole list with
 * one acquire exchange. Taking everything makes it ABA-free, and several
 * consumers may take concurrently (each gets a disjoint batch). A stack can
 * be closed for good: pushes then fail and the producer handles the item
 * itself. Plain C11 atomics, so ThreadSanitizer sees every edge. */
#ifndef FRT_RUNTIME_MPSC_H
#define FRT_RUNTIME_MPSC_H

#include <stdatomic.h>
#include <stddef.h>

typedef struct frt_mpsc_node {
    struct frt_mpsc_node *next;
} frt_mpsc_node;

typedef struct frt_mpsc {
    _Atomic(frt_mpsc_node *) head;
} frt_mpsc;

#define FRT_MPSC_CLOSED ((frt_mpsc_node *)1)

/* The link of a node being pushed is stored atomically: a freed block is
 * pushed as a node whose link overlays an object's ob_tid, which its
 * heap's owner may be reading at that moment (brc/merge_queue.c). */
static inline void frt_mpsc_link(frt_mpsc_node *n, frt_mpsc_node *next)
{
#if defined(__GNUC__)
    __atomic_store_n(&n->next, next, __ATOMIC_RELAXED);
#else
    n->next = next;
#endif
}

static inline void frt_mpsc_init(frt_mpsc *s)
{
    atomic_store_explicit(&s->head, NULL, memory_order_relaxed);
}

/* 0 on success; -1 if the stack is closed (n was not pushed). */
static inline int frt_mpsc_push(frt_mpsc *s, frt_mpsc_node *n)
{
    /* Acquire, on the load and on a failed CAS: a producer that finds the
     * stack closed handles the item itself (merges an object's counts),
     * after everything the consumer did before closing it. */
    frt_mpsc_node *old = atomic_load_explicit(&s->head, memory_order_acquire);
    do {
        if (old == FRT_MPSC_CLOSED)
            return -1;
        frt_mpsc_link(n, old);
    } while (!atomic_compare_exchange_weak_explicit(&s->head, &old, n, memory_order_seq_cst,
                                                    memory_order_acquire));
    return 0;
}

/* 1 if old head was empty before this push: lets the first producer notify. */
static inline int frt_mpsc_push_first(frt_mpsc *s, frt_mpsc_node *n)
{
    frt_mpsc_node *old = atomic_load_explicit(&s->head, memory_order_relaxed);
    do {
        frt_mpsc_link(n, old);
    } while (!atomic_compare_exchange_weak_explicit(&s->head, &old, n, memory_order_seq_cst,
                                                    memory_order_relaxed));
    return old == NULL;
}

/* Everything pushed so far, newest first; NULL if empty or closed. */
static inline frt_mpsc_node *frt_mpsc_take(frt_mpsc *s)
{
    frt_mpsc_node *h = atomic_load_explicit(&s->head, memory_order_relaxed);
    do {
        if (h == NULL || h == FRT_MPSC_CLOSED)
            return NULL;
    } while (!atomic_compare_exchange_weak_explicit(&s->head, &h, NULL, memory_order_seq_cst,
                                                    memory_order_relaxed));
    return h;
}

static inline int frt_mpsc_empty(frt_mpsc *s)
{
    frt_mpsc_node *h = atomic_load_explicit(&s->head, memory_order_seq_cst);
    return h == NULL || h == FRT_MPSC_CLOSED;
}

#endif
