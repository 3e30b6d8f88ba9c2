/* handoff: producer/consumer queues passing ownership.
 *
 * The workers form a ring; each has an inbox (a lock-free MPSC stack).
 * Each operation makes an item and hands its one reference to the next
 * worker's inbox; a worker drains its own inbox, checks every item, and
 * either forwards it (up to three hops, the reference travelling with it)
 * or drops it. Three items in four keep their creator's bias, so the
 * receiver's last decref queues them to their owner (the BRC merge queue;
 * the owner frees them at its next safepoint, or the receiver merges for an
 * owner that is blocked); the fourth is made shared first (frt_make_shared),
 * so the receiver frees it and the block goes back to the owner's pool as a
 * remote free. Every item also holds a reference to its creator's source
 * object, which the destroy drops on whichever thread frees the item.
 *
 * Invariants: an item arrives intact with a refcount of exactly 1; every
 * item handed over arrives (sent + forwarded == received, item by item);
 * when quiescent every inbox is empty, every item was destroyed (their
 * merges are done: every owner is blocked or has polled) and each source's
 * count is exactly 1 again. */
#include "stress.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>

enum { K_ITEM, K_SOURCE };
#define INBOX_LIMIT 1024
#define MAX_HOPS 3
#define BATCH 32

/* An item is a stress_obj with one reference slot (its creator's source)
 * followed by its link and travel data. */
typedef struct item_tail {
    stress_link link;
    uint32_t hops_left;
    uint32_t origin;
} item_tail;

typedef struct handoff_thread {
    stress_inbox inbox;
    stress_obj *source;
    uint64_t next_id;
    _Atomic uint64_t sent, forwarded, received, dropped;
    _Atomic int done; /* left run: it drains no more until thread_quiesce */
} handoff_thread;

static const frt_type item_type = {"stress.handoff.item", sizeof(stress_obj), NULL, NULL, NULL,
                                   stress_obj_destroy};
static const frt_type source_type = {"stress.handoff.source", sizeof(stress_obj), NULL, NULL, NULL,
                                     stress_obj_destroy};

static item_tail *tail_of(stress_obj *o)
{
    return (item_tail *)(void *)(o->ref + o->nref);
}

static stress_obj *obj_of(stress_link *l)
{
    /* the tail follows the one ref slot */
    return (stress_obj *)(void *)((char *)l - offsetof(stress_obj, ref) - sizeof(frt_object *));
}

static handoff_thread *hs(stress_case *c, unsigned i)
{
    return c->w[i].state;
}

static void thread_init(stress_case *c, stress_worker *w)
{
    handoff_thread *me = w->state;
    me->source = stress_obj_new(c, &source_type, K_SOURCE, 0, 0, w->index, w->index);
}

/* Check and count what arrived; forward it or drop it. */
static size_t drain(stress_case *c, stress_worker *w, int forward)
{
    handoff_thread *me = w->state;
    handoff_thread *next = hs(c, (w->index + 1) % c->nthreads);
    stress_link *l = stress_inbox_take(&me->inbox);
    size_t n = 0;
    if (!next)
        forward = 0;
    while (l) {
        stress_link *following = l->next;
        stress_obj *o = obj_of(l);
        item_tail *t = tail_of(o);
        n++;
        if (!stress_obj_ok(o, K_ITEM)) {
            stress_corrupt(c, "handoff/tag", o, K_ITEM);
        } else {
            size_t rc = frt_refcount(&o->ob);
            STRESS_CHECK(c, rc == 1, "refcount",
                         "thread %u received item id %llu from thread %u with refcount %zu, "
                         "expected 1 (the reference handed over)",
                         w->index, (unsigned long long)o->id, t->origin, rc);
        }
        if (forward && t->hops_left > 0) {
            t->hops_left--;
            stress_inbox_push(&next->inbox, l);
            stress_count(&me->forwarded, 1);
        } else {
            frt_decref(&o->ob);
            stress_count(&me->dropped, 1);
        }
        l = following;
    }
    if (n) {
        atomic_fetch_sub_explicit(&me->inbox.len, (long)n, memory_order_relaxed);
        stress_count(&me->received, n);
    }
    return n;
}

static void run(stress_case *c, stress_worker *w)
{
    handoff_thread *me = w->state;
    handoff_thread *next = hs(c, (w->index + 1) % c->nthreads);
    if (!me->source || !next)
        return;
    while (stress_continue(c, w)) {
        unsigned made = 0;
        for (int k = 0; k < BATCH; k++) {
            /* The consumer is behind (or descheduled): let it catch up. Not
             * if it has finished its --ops: it would never catch up, and
             * what we still send is bounded by our own --ops. */
            if (atomic_load_explicit(&next->inbox.len, memory_order_relaxed) > INBOX_LIMIT &&
                !atomic_load_explicit(&next->done, memory_order_relaxed))
                break;
            stress_obj *o = stress_obj_new(c, &item_type, K_ITEM, 1, sizeof(item_tail), w->index,
                                           (uint64_t)w->index << 40 | me->next_id++);
            if (!o)
                return;
            o->ref[0] = frt_newref(&me->source->ob);
            item_tail *t = tail_of(o);
            uint32_t r = stress_below(&w->rng, 16);
            t->hops_left = r % (MAX_HOPS + 1);
            t->origin = w->index;
            if (r < 4)
                frt_make_shared(&o->ob); /* FRT_EALREADY in the atomic build: already shared */
            stress_inbox_push(&next->inbox, &t->link);
            stress_count(&me->sent, 1);
            made++;
        }
        stress_ops_add(w, made);
        size_t got = drain(c, w, 1);
        stress_fault_point(c, w, &me->source->ob);
        frt_safepoint();
        if (!made && !got)
            sched_yield();
    }
    atomic_store(&me->done, 1);
}

static void thread_quiesce(stress_case *c, stress_worker *w)
{
    /* Nobody produces any more; what is in my inbox is dropped here, and
     * nothing is forwarded, so every inbox is empty once all are past. */
    drain(c, w, 0);
}

static void verify_held(stress_case *c)
{
    uint64_t sent = 0, forwarded = 0, received = 0, dropped = 0;
    for (unsigned i = 0; i < c->nthreads; i++) {
        handoff_thread *t = hs(c, i);
        if (!t)
            continue;
        sent += atomic_load(&t->sent);
        forwarded += atomic_load(&t->forwarded);
        received += atomic_load(&t->received);
        dropped += atomic_load(&t->dropped);
        STRESS_CHECK(c, atomic_load(&t->inbox.head) == NULL, "inbox",
                     "thread %u's inbox is not empty when every worker is quiescent", i);
        if (t->source) {
            size_t rc = frt_refcount(&t->source->ob);
            size_t expect = 1 + stress_holds_of(c, &t->source->ob);
            STRESS_CHECK(c, rc == expect, "refcount",
                         "thread %u's source has refcount %zu when every item is gone, expected %zu",
                         i, rc, expect);
        }
    }
    STRESS_CHECK(c, sent + forwarded == received, "delivery",
                 "%llu items sent and %llu forwarded, but %llu received", (unsigned long long)sent,
                 (unsigned long long)forwarded, (unsigned long long)received);
    STRESS_CHECK(c, sent == dropped, "delivery", "%llu items sent, %llu dropped",
                 (unsigned long long)sent, (unsigned long long)dropped);
    uint64_t made = stress_sum_created(c, K_ITEM), gone = stress_sum_destroyed(c, K_ITEM);
    STRESS_CHECK(c, made == gone, "destroyed",
                 "%llu items made, %llu destroyed when every inbox is empty and every owner has "
                 "merged its queue",
                 (unsigned long long)made, (unsigned long long)gone);
    STRESS_CHECK(c, stress_sum_destroyed(c, K_SOURCE) == 0, "destroyed",
                 "a source object was destroyed while its thread still holds it");
}

static void thread_finish(stress_case *c, stress_worker *w)
{
    handoff_thread *me = w->state;
    if (me->source)
        frt_decref(&me->source->ob);
    me->source = NULL;
}

static frt_object *fault_target(stress_case *c, stress_worker *w)
{
    handoff_thread *me = w->state;
    return me->source ? &me->source->ob : NULL;
}

const stress_workload stress_wl_handoff = {
    .name = "handoff",
    .what = "a ring of producer/consumer inboxes passing each item's one reference along "
            "(biased, and made shared); merge queues and remote frees",
    .op = "one item made and handed to the next thread",
    .brc_note = "three items in four go back to their creator through the merge queue (the"
                " receiver's CAS and push, the creator's merge at its frt_safepoint: callgrind"
                " at 2 threads counts 641 instructions per op against the atomic build's 566)"
                " where the atomic build frees them where they are dropped; objects made to be"
                " handed off are better made with frt_new_shared",
    .kinds = {"item", "source", NULL},
    .thread_state = sizeof(handoff_thread),
    .thread_init = thread_init,
    .run = run,
    .thread_quiesce = thread_quiesce,
    .verify_held = verify_held,
    .thread_finish = thread_finish,
    .fault_target = fault_target,
};
