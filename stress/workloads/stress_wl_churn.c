/* churn: threads attaching and detaching.
 *
 * Each worker is a lane that is not attached between operations. One
 * operation is one short-lived frt thread: half the time the lane itself
 * attaches, works and detaches; otherwise it starts a new pthread that
 * does so (one in four of those returns without frt_thread_detach, so the
 * runtime's thread-exit destructor detaches it) and joins it. The work:
 * make 1..8 tokens, each holding a reference to a hub object that the main
 * thread owns, drop some at once, carry some over to the lane's next
 * thread (so the next thread drops objects whose owner has detached) and
 * swap some with other lanes through a shared exchange; count on the hub.
 * Heaps are pooled: a detached thread's heap is adopted by the next.
 *
 * Invariants: every attach succeeds and the thread is attached until it
 * detaches; a token taken from the carry or the exchange is intact with
 * refcount exactly 1; when quiescent the live tokens are exactly those in
 * the carries and the exchange, and the hub's count is 1 + live tokens. */
#include "stress.h"

#include <stdlib.h>
#include <string.h>

enum { K_TOKEN, K_HUB };
#define CARRY 16
#define XSLOTS 64

typedef struct churn_shared {
    stress_obj *hub;
    _Atomic(frt_object *) x[XSLOTS];
} churn_shared;

typedef struct churn_lane {
    stress_obj *carry[CARRY]; /* one reference each, held across the lane's threads */
    uint64_t next_id;
    uint64_t cycles, children, exits_attached;
} churn_lane;

static const frt_type token_type = {"stress.churn.token", sizeof(stress_obj), NULL, NULL, NULL,
                                    stress_obj_destroy};
static const frt_type hub_type = {"stress.churn.hub", sizeof(stress_obj), NULL, NULL, NULL,
                                  stress_obj_destroy};

static int setup(stress_case *c)
{
    churn_shared *s = calloc(1, sizeof *s);
    if (!s)
        return -1;
    s->hub = stress_obj_new(c, &hub_type, K_HUB, 0, 0, STRESS_MAIN, 1);
    if (!s->hub) {
        free(s);
        return -1;
    }
    c->shared = s;
    return 0;
}

static void check_token(stress_case *c, stress_worker *w, stress_obj *t, const char *from)
{
    if (!stress_obj_ok(t, K_TOKEN)) {
        stress_corrupt(c, "churn/tag", t, K_TOKEN);
        return;
    }
    size_t rc = stress_refcount_settled(&t->ob, 1); /* its creator may be merging it */
    STRESS_CHECK(c, rc == 1, "refcount",
                 "lane %u: token id %llu taken from the %s has refcount %zu, expected 1", w->index,
                 (unsigned long long)t->id, from, rc);
}

/* One attached thread's work. */
static void work(stress_case *c, stress_worker *w)
{
    churn_shared *s = c->shared;
    churn_lane *me = w->state;
    STRESS_CHECK(c, frt_thread_is_attached() == 1, "attach",
                 "lane %u: frt_thread_is_attached() is 0 right after a successful attach", w->index);
    unsigned k = 1 + stress_below(&w->rng, 8);
    for (unsigned i = 0; i < k; i++) {
        stress_obj *t = stress_obj_new(c, &token_type, K_TOKEN, 1, 0, w->index,
                                       (uint64_t)w->index << 40 | me->next_id++);
        if (!t)
            return;
        t->ref[0] = frt_newref(&s->hub->ob);
        uint32_t r = stress_below(&w->rng, 8);
        if (r < 3) { /* carry it to this lane's next thread */
            unsigned slot = stress_below(&w->rng, CARRY);
            stress_obj *old = me->carry[slot];
            me->carry[slot] = t;
            if (old) { /* made by a thread that has detached since */
                check_token(c, w, old, "carry");
                frt_decref(&old->ob);
            }
        } else if (r < 5) { /* swap with another lane */
            frt_object *old = atomic_exchange(&s->x[stress_below(&w->rng, XSLOTS)], &t->ob);
            if (old) {
                check_token(c, w, (stress_obj *)old, "exchange");
                frt_decref(old);
            }
        } else {
            frt_decref(&t->ob);
        }
    }
    for (unsigned i = 0; i < 4; i++) {
        frt_incref(&s->hub->ob);
        frt_decref(&s->hub->ob);
    }
    stress_fault_point(c, w, &s->hub->ob);
    frt_safepoint();
}

typedef struct child_arg {
    stress_case *c;
    stress_worker *w;
    int exit_attached;
} child_arg;

static void *child_main(void *p)
{
    child_arg *a = p;
    stress_set_tls_counters(&a->w->counters); /* the lane is joining us: one writer at a time */
    int rc = frt_thread_attach();
    if (rc != 0) {
        stress_fail(a->c, "attach", "lane %u: a new thread's frt_thread_attach returned %s",
                    a->w->index, frt_strerror(rc));
        return NULL;
    }
    work(a->c, a->w);
    if (!a->exit_attached)
        frt_thread_detach();
    /* else: the thread-exit destructor detaches it; its counters stay ours
     * until the lane's join returns, which is after that destructor. */
    return NULL;
}

static void run(stress_case *c, stress_worker *w)
{
    churn_lane *me = w->state;
    while (stress_continue(c, w)) {
        uint32_t r = stress_below(&w->rng, 8);
        if (r < 4) {
            int rc = frt_thread_attach();
            if (rc != 0) {
                stress_fail(c, "attach", "lane %u: frt_thread_attach returned %s", w->index,
                            frt_strerror(rc));
                return;
            }
            work(c, w);
            frt_thread_detach();
            STRESS_CHECK(c, frt_thread_is_attached() == 0, "detach",
                         "lane %u: still attached after frt_thread_detach", w->index);
        } else {
            child_arg a = {c, w, r == 7};
            pthread_t t;
            int e = pthread_create(&t, NULL, child_main, &a);
            if (e != 0) {
                stress_fail(c, "thread", "lane %u: pthread_create: %s", w->index, strerror(e));
                return;
            }
            pthread_join(t, NULL); /* not attached here: no blocking section needed */
            stress_set_tls_counters(&w->counters);
            me->children++;
            me->exits_attached += r == 7;
        }
        me->cycles++;
        stress_ops_add(w, 1);
    }
}

static void verify_held(stress_case *c)
{
    churn_shared *s = c->shared;
    uint64_t held = 0;
    for (unsigned i = 0; i < c->nthreads; i++) {
        churn_lane *l = c->w[i].state;
        if (!l)
            continue;
        for (unsigned k = 0; k < CARRY; k++)
            if (l->carry[k]) {
                held++;
                if (!stress_obj_ok(l->carry[k], K_TOKEN))
                    stress_corrupt(c, "churn/carry", l->carry[k], K_TOKEN);
                else
                    STRESS_CHECK(c, frt_refcount(&l->carry[k]->ob) == 1, "refcount",
                                 "a carried token has refcount %zu, expected 1",
                                 frt_refcount(&l->carry[k]->ob));
            }
    }
    for (unsigned i = 0; i < XSLOTS; i++) {
        frt_object *x = atomic_load(&s->x[i]);
        if (x) {
            held++;
            STRESS_CHECK(c, frt_refcount(x) == 1, "refcount",
                         "a token in the exchange has refcount %zu, expected 1", frt_refcount(x));
        }
    }
    uint64_t alive = stress_sum_created(c, K_TOKEN) - stress_sum_destroyed(c, K_TOKEN);
    STRESS_CHECK(c, alive == held, "live",
                 "%llu tokens alive (made - destroyed), %llu held by the carries and the exchange",
                 (unsigned long long)alive, (unsigned long long)held);
    size_t expect = 1 + held + stress_holds_of(c, &s->hub->ob);
    size_t rc = frt_refcount(&s->hub->ob);
    STRESS_CHECK(c, rc == expect, "refcount",
                 "the hub's refcount is %zu; main, the live tokens and the harness hold %zu", rc, expect);
}

static void thread_finish(stress_case *c, stress_worker *w)
{
    churn_lane *me = w->state;
    for (unsigned k = 0; k < CARRY; k++)
        if (me->carry[k]) {
            frt_decref(&me->carry[k]->ob);
            me->carry[k] = NULL;
        }
}

static void teardown(stress_case *c)
{
    churn_shared *s = c->shared;
    if (!s)
        return;
    for (unsigned i = 0; i < XSLOTS; i++)
        frt_xdecref(atomic_exchange(&s->x[i], NULL));
    size_t rc = frt_refcount(&s->hub->ob);
    STRESS_CHECK(c, rc == 1, "refcount", "with every token gone the hub's refcount is %zu, not 1", rc);
    frt_decref(&s->hub->ob);
    free(s);
    c->shared = NULL;
}

static frt_object *fault_target(stress_case *c, stress_worker *w)
{
    return &((churn_shared *)c->shared)->hub->ob;
}

const stress_workload stress_wl_churn = {
    .name = "churn",
    .what = "short-lived frt threads (the lane itself, or new pthreads, some exiting attached) "
            "make tokens that outlive them",
    .op = "one thread attached, working and detached",
    .brc_note = "an operation is a thread's whole life (half of them a pthread_create and join):"
                " a 1-thread profile (perf, cpu-clock) puts 82% of the samples in the kernel"
                " creating and scheduling threads and about 4% in the runtime (attach, detach,"
                " the detaching owner's disown walk: 0.7%); at 1 thread, cases of 1 s ran at 12"
                " to 42 thousand ops/s from seed to seed (load average 2.2), so a ratio below 1"
                " here is the kernel's and the machine's spread, not the counting's",
    .kinds = {"token", "hub", NULL},
    .flags = STRESS_WL_SELF_ATTACH,
    .thread_state = sizeof(churn_lane),
    .setup = setup,
    .run = run,
    .verify_held = verify_held,
    .thread_finish = thread_finish,
    .teardown = teardown,
    .fault_target = fault_target,
};
