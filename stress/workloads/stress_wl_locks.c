/* locks: per-object critical sections under everything that can interrupt
 * them.
 *
 * 32 shared objects, each with a plain (non-atomic) counter that is only
 * ever changed inside a critical section on its object, and an atomic
 * shadow bumped in the same section. A worker's loop, at random: a section
 * on a pair of objects (begin2, the same object twice included), with a
 * nested section on a third; two nested single-object sections in random
 * order (A then B on one thread, B then A on another: without suspension a
 * deadlock); a section around blocking I/O (a byte through a pipe, or a
 * sleep, inside frt_blocking_begin/end); frt_new, frt_safepoint and young
 * collections inside sections; and temporaries whose finalizer and weakref
 * callback take a section on an object: dropped inside a section (the
 * finalizer runs nested in it, on the same object or another), handed to
 * another thread through a mailbox (they die on a non-owner, or at their
 * owner's next safepoint), or cyclic (they die in a collection, their
 * finalizer on the collecting thread). The harness stops the world
 * meanwhile.
 *
 * Invariants: while a section holds an object its counter does not change
 * under it; when quiescent, every counter equals its shadow (no update was
 * lost: the sections excluded each other, TSan sees any that did not);
 * every temporary's finalizer ran exactly once by the end; the pinned
 * objects' counts are exact (for --inject-fault). A deadlock is a case that
 * never ends: the runner's per-case timeout fails it. */
#include "stress.h"

#include <fcntl.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

enum { K_SHARED, K_TEMP, K_PIN };
#define NOBJ 32
#define MAILBOX 64
#define BATCH 16

typedef struct locks_shared {
    stress_obj *obj[NOBJ];
    _Atomic uint64_t shadow[NOBJ];
    _Atomic(stress_obj *) mailbox[MAILBOX];
    _Atomic uint64_t finalized, callbacks;
} locks_shared;

typedef struct locks_worker {
    int pipe[2];
    stress_obj *pin;
    uint64_t next_id, rounds;
} locks_worker;

/* One case at a time per process: the finalizer and callback find the
 * shared objects here. */
static locks_shared *cur;

static uint64_t *counter(stress_obj *o)
{
    return (uint64_t *)(void *)(o->ref + o->nref);
}

/* Inside a section on o. */
static void bump(stress_obj *o)
{
    (*counter(o))++;
    atomic_fetch_add_explicit(&cur->shadow[o->id], 1, memory_order_relaxed);
}

static void bump_locked(unsigned i)
{
    stress_obj *o = cur->obj[i];
    FRT_BEGIN_CRITICAL_SECTION(o);
    bump(o);
    FRT_END_CRITICAL_SECTION();
}

/* A temporary's target object index is its first word. */
static void temp_finalize(frt_object *self)
{
    stress_obj *t = (stress_obj *)self;
    bump_locked((unsigned)counter(t)[0]);
    atomic_fetch_add(&cur->finalized, 1);
}

static void temp_callback(frt_weakref *wr, void *ctx)
{
    (void)wr;
    bump_locked((unsigned)(uintptr_t)ctx);
    atomic_fetch_add(&cur->callbacks, 1);
}

static const frt_type shared_type = {"stress.locks.shared", sizeof(stress_obj), NULL, NULL, NULL,
                                     stress_obj_destroy};
static const frt_type temp_type = {"stress.locks.temp", sizeof(stress_obj), stress_obj_traverse,
                                   stress_obj_clear, temp_finalize, stress_obj_destroy};

static int setup(stress_case *c)
{
    locks_shared *s = calloc(1, sizeof *s);
    if (!s)
        return -1;
    cur = s;
    c->shared = s;
    for (unsigned i = 0; i < NOBJ; i++) {
        s->obj[i] = stress_obj_new(c, &shared_type, K_SHARED, 0, sizeof(uint64_t), STRESS_MAIN, i);
        if (!s->obj[i])
            return -1;
        frt_make_shared(&s->obj[i]->ob);
    }
    return 0;
}

static void thread_init(stress_case *c, stress_worker *w)
{
    locks_worker *me = w->state;
    if (pipe2(me->pipe, O_CLOEXEC) != 0) {
        me->pipe[0] = me->pipe[1] = -1;
        stress_fail(c, "pipe", "pipe2 failed");
    }
    me->pin = stress_obj_new(c, &shared_type, K_PIN, 0, sizeof(uint64_t), w->index, 0);
}

/* A temporary aimed at object i: its finalizer and (sometimes) a weakref
 * callback will take a section on that object. NULL: out of memory. */
static stress_obj *make_temp(stress_case *c, stress_worker *w, locks_worker *me, unsigned i)
{
    stress_obj *t = stress_obj_new(c, &temp_type, K_TEMP, 2, sizeof(uint64_t), w->index,
                                   (uint64_t)w->index << 40 | me->next_id++);
    if (!t)
        return NULL;
    counter(t)[0] = i;
    if (stress_below(&w->rng, 2)) /* the temporary owns its weakref: the callback runs */
        t->ref[1] = frt_weakref_object(frt_weakref_new(&t->ob, temp_callback, (void *)(uintptr_t)i));
    if (stress_below(&w->rng, 8) == 0)
        t->ref[0] = frt_newref(&t->ob); /* only a collection frees it */
    return t;
}

static void blocking_io(stress_case *c, stress_worker *w, locks_worker *me)
{
    frt_blocking_begin();
    if (stress_below(&w->rng, 2)) {
        char b = 'x';
        if (write(me->pipe[1], &b, 1) != 1 || read(me->pipe[0], &b, 1) != 1)
            stress_fail(c, "pipe", "a byte did not go through the pipe");
    } else {
        struct timespec ts = {0, 1000};
        nanosleep(&ts, NULL);
    }
    frt_blocking_end();
}

/* Inside a section on o, with no wait since before was read: nobody else
 * has changed its counter. */
static void check_held(stress_case *c, stress_obj *o, uint64_t before)
{
    for (volatile int spin = 0; spin < 16; spin++) {
    }
    STRESS_CHECK(c, *counter(o) == before, "exclusion",
                 "object %llu's counter changed from %llu to %llu inside a critical section on it",
                 (unsigned long long)o->id, (unsigned long long)before,
                 (unsigned long long)*counter(o));
}

static void one_op(stress_case *c, stress_worker *w, locks_worker *me)
{
    locks_shared *s = c->shared;
    stress_obj *a = s->obj[stress_below(&w->rng, NOBJ)];
    stress_obj *b = s->obj[stress_below(&w->rng, NOBJ)];
    unsigned r = stress_below(&w->rng, 16);
    if (r < 5) {
        FRT_BEGIN_CRITICAL_SECTION2(a, b);
        bump(a);
        bump(b);
        uint64_t before = *counter(a);
        if (r == 0)
            bump_locked(stress_below(&w->rng, NOBJ)); /* nested: a, b or another */
        else
            check_held(c, a, before);
        FRT_END_CRITICAL_SECTION();
    } else if (r < 8) {
        FRT_BEGIN_CRITICAL_SECTION(a);
        bump(a);
        FRT_BEGIN_CRITICAL_SECTION(b); /* waiting for b lets go of a */
        bump(b);
        FRT_END_CRITICAL_SECTION();
        bump(a);
        FRT_END_CRITICAL_SECTION();
    } else if (r < 10) {
        FRT_BEGIN_CRITICAL_SECTION(a);
        bump(a);
        blocking_io(c, w, me); /* suspends the section: a may change meanwhile */
        bump(a);
        FRT_END_CRITICAL_SECTION();
    } else if (r < 14) {
        stress_obj *t;
        FRT_BEGIN_CRITICAL_SECTION(a);
        t = make_temp(c, w, me, stress_below(&w->rng, NOBJ)); /* may park */
        bump(a);
        if (t && r == 10) {
            frt_decref(&t->ob); /* its finalizer runs here, nested in our section */
            t = NULL;
        }
        FRT_END_CRITICAL_SECTION();
        if (t) {
            stress_obj *old = atomic_exchange(&s->mailbox[stress_below(&w->rng, MAILBOX)], t);
            if (old)
                frt_decref(&old->ob); /* another thread's: maybe queued to its owner */
        }
    } else {
        FRT_BEGIN_CRITICAL_SECTION(a);
        bump(a);
        if (r == 14 && ++me->rounds % 64 == 0)
            frt_gc_collect(0); /* stops the world holding a */
        else
            frt_safepoint();
        bump(a);
        FRT_END_CRITICAL_SECTION();
    }
}

static void run(stress_case *c, stress_worker *w)
{
    locks_worker *me = w->state;
    while (stress_continue(c, w)) {
        for (int n = 0; n < BATCH; n++)
            one_op(c, w, me);
        stress_ops_add(w, BATCH);
        stress_fault_point(c, w, &me->pin->ob);
        frt_safepoint();
    }
}

static void verify_held(stress_case *c)
{
    locks_shared *s = c->shared;
    for (unsigned i = 0; i < NOBJ; i++) {
        uint64_t n = *counter(s->obj[i]), want = atomic_load(&s->shadow[i]);
        STRESS_CHECK(c, n == want, "lost update",
                     "object %u's counter is %llu, but %llu updates were made in sections on it", i,
                     (unsigned long long)n, (unsigned long long)want);
        STRESS_CHECK(c, !frt_mutex_is_locked(&s->obj[i]->ob.ob_mutex), "unlocked",
                     "object %u is still locked with every worker quiescent", i);
    }
    for (unsigned t = 0; t < c->nthreads; t++) {
        locks_worker *r = c->w[t].state;
        if (!r->pin)
            continue;
        size_t expect = 1 + stress_holds_of(c, &r->pin->ob), got = frt_refcount(&r->pin->ob);
        STRESS_CHECK(c, got == expect, "refcount",
                     "thread %u's pinned object has refcount %zu; the thread holds %zu", t, got, expect);
    }
}

static void thread_finish(stress_case *c, stress_worker *w)
{
    (void)c;
    locks_worker *me = w->state;
    if (me->pin)
        frt_decref(&me->pin->ob);
    me->pin = NULL;
    if (me->pipe[0] >= 0) {
        close(me->pipe[0]);
        close(me->pipe[1]);
    }
}

static void teardown(stress_case *c)
{
    locks_shared *s = c->shared;
    if (!s)
        return;
    for (unsigned i = 0; i < MAILBOX; i++) {
        stress_obj *t = atomic_exchange(&s->mailbox[i], NULL);
        if (t)
            frt_decref(&t->ob);
    }
    frt_gc_collect(-1); /* the cyclic temporaries */
    uint64_t temps = stress_sum_created(c, K_TEMP), fin = atomic_load(&s->finalized);
    STRESS_CHECK(c, fin == temps, "finalizers",
                 "%llu temporaries made, %llu finalizers ran (every one is dead: one each)",
                 (unsigned long long)temps, (unsigned long long)fin);
    for (unsigned i = 0; i < NOBJ; i++) {
        uint64_t n = *counter(s->obj[i]), want = atomic_load(&s->shadow[i]);
        STRESS_CHECK(c, n == want, "lost update",
                     "at the end object %u's counter is %llu, but %llu updates were made", i,
                     (unsigned long long)n, (unsigned long long)want);
        frt_decref(&s->obj[i]->ob);
    }
    free(s);
    cur = NULL;
    c->shared = NULL;
}

static frt_object *fault_target(stress_case *c, stress_worker *w)
{
    (void)c;
    return &((locks_worker *)w->state)->pin->ob;
}

const stress_workload stress_wl_locks = {
    .name = "locks",
    .what = "nested critical sections on random pairs, finalizers and callbacks that lock, "
            "blocking I/O and collections inside sections: no lost update, no deadlock",
    .op = "one critical-section operation (pair, nested, blocking I/O, temporary, collection)",
    .kinds = {"shared", "temp", "pin", NULL},
    .thread_state = sizeof(locks_worker),
    .setup = setup,
    .thread_init = thread_init,
    .run = run,
    .verify_held = verify_held,
    .thread_finish = thread_finish,
    .teardown = teardown,
    .fault_target = fault_target,
};
