/* shared-read: one hot object touched by every thread.
 *
 * The main thread makes the hot object (it stays its owner and never
 * counts on it during the run), so every worker counts on the shared,
 * atomic count of one cache line: the "hot object" row of the design targets (docs/benchmarks.md). Each
 * operation takes a reference, reads and checks the payload, and drops it.
 * Now and then a worker keeps references for a while (up to 16), and it
 * swaps references through a mailbox of 64 slots, so references taken on
 * one thread are dropped on another.
 *
 * With --hot the object is made hot (frt_make_hot): every thread counts on
 * its own slot, and the collector frees it at teardown. Without it the
 * runtime may make it hot by itself (adaptive promotion), which is the
 * point of the plain row. Two variants of the same code give the report
 * the three rows in one sweep: shared-hot (made hot, as --hot) and
 * shared-nohot (adaptive promotion off, as --hot-off: the atomic line).
 *
 * Invariants: every read sees the payload intact; with the world stopped
 * (the harness's probe stops) and when quiescent, the hot object's count is
 * exactly 1 (main's) + the references every worker holds + those in the
 * mailbox; at the end it is destroyed exactly once. */
#include "stress.h"

#include <stdlib.h>

enum { K_HOT };
#define WORDS 8
#define MAX_HELD 16
#define MBOX 64
#define BATCH 64

typedef struct shared_state {
    stress_obj *hot;
    _Atomic(frt_object *) mbox[MBOX];
} shared_state;

typedef struct reader_state {
    _Atomic unsigned held; /* the model: references this worker holds; main reads it stopped */
} reader_state;

static const frt_type hot_type = {"stress.shared-read.hot", sizeof(stress_obj), NULL, NULL, NULL,
                                  stress_obj_destroy};

static uint64_t *words(stress_obj *o)
{
    return (uint64_t *)(void *)(o->ref + o->nref);
}

static uint64_t word_value(unsigned i)
{
    return 0x0123456789abcdefull * (i + 1);
}

static int setup(stress_case *c)
{
    shared_state *s = calloc(1, sizeof *s);
    if (!s)
        return -1;
    s->hot = stress_obj_new(c, &hot_type, K_HOT, 0, WORDS * sizeof(uint64_t), STRESS_MAIN, 1);
    if (!s->hot) {
        free(s);
        return -1;
    }
    for (unsigned i = 0; i < WORDS; i++)
        words(s->hot)[i] = word_value(i);
    int make_hot = c->opt->hot || (c->wl->flags & STRESS_WL_MAKE_HOT);
    if (!STRESS_RC_ATOMIC && make_hot && frt_make_hot(&s->hot->ob) != 0) {
        frt_decref(&s->hot->ob);
        free(s);
        return -1;
    }
    c->shared = s;
    return 0;
}

static size_t expected_count(stress_case *c)
{
    shared_state *s = c->shared;
    size_t n = 1 + stress_holds_of(c, &s->hot->ob);
    for (unsigned i = 0; i < c->nthreads; i++)
        n += atomic_load_explicit(&((reader_state *)c->w[i].state)->held, memory_order_relaxed);
    for (unsigned i = 0; i < MBOX; i++)
        n += atomic_load_explicit(&s->mbox[i], memory_order_relaxed) != NULL;
    return n;
}

static void check_count(stress_case *c, const char *when)
{
    shared_state *s = c->shared;
    for (unsigned i = 0; i < c->nthreads; i++)
        if (!c->w[i].state)
            return;
    size_t expect = expected_count(c), got = frt_refcount(&s->hot->ob);
    STRESS_CHECK(c, got == expect, "refcount",
                 "%s: the hot object's refcount is %zu; main, the workers and the mailbox hold %zu",
                 when, got, expect);
}

static void run(stress_case *c, stress_worker *w)
{
    shared_state *s = c->shared;
    reader_state *me = w->state;
    /* Read once: s->hot shares a line with the first mailbox slots, which
     * other threads exchange. */
    stress_obj *obj = s->hot;
    frt_object *hot = &obj->ob;
    unsigned held = 0;
    while (stress_continue(c, w)) {
        for (int k = 0; k < BATCH; k++) {
            uint32_t r = stress_below(&w->rng, 100);
            if (r < 90) {
                frt_incref(hot);
                unsigned i = r % WORDS;
                if (words(obj)[i] != word_value(i) || obj->tag != stress_tag(1, K_HOT))
                    stress_corrupt(c, "shared-read/payload", obj, K_HOT);
                frt_decref(hot);
            } else if (r < 95) {
                if (held < MAX_HELD && (r & 1 || held == 0)) {
                    frt_incref(hot);
                    held++;
                } else {
                    frt_decref(hot);
                    held--;
                }
            } else if (held > 0) {
                /* Our reference goes to the mailbox; one that another thread
                 * took, if the slot had one, becomes ours. */
                frt_object *old = atomic_exchange(&s->mbox[stress_below(&w->rng, MBOX)], hot);
                if (!old)
                    held--;
                else if (old != hot)
                    stress_fail(c, "mailbox", "a mailbox slot held %p, not the hot object", (void *)old);
            }
            atomic_store_explicit(&me->held, held, memory_order_relaxed);
        }
        stress_ops_add(w, BATCH);
        stress_fault_point(c, w, hot);
        frt_safepoint(); /* the model is exact here: where a stop may park us */
    }
}

static void check_stopped(stress_case *c)
{
    check_count(c, "world stopped");
}

static void verify_held(stress_case *c)
{
    check_count(c, "quiescent");
}

static void thread_finish(stress_case *c, stress_worker *w)
{
    shared_state *s = c->shared;
    reader_state *me = w->state;
    for (unsigned n = atomic_load(&me->held); n; n--)
        frt_decref(&s->hot->ob);
    atomic_store(&me->held, 0);
}

static void teardown(stress_case *c)
{
    shared_state *s = c->shared;
    if (!s)
        return;
    for (unsigned i = 0; i < MBOX; i++) {
        frt_object *o = atomic_exchange(&s->mbox[i], NULL);
        if (o)
            frt_decref(o);
    }
    size_t left = frt_refcount(&s->hot->ob);
    STRESS_CHECK(c, left == 1, "refcount",
                 "every worker and the mailbox let go, and the hot object's refcount is %zu, not 1", left);
    uint64_t before = stress_sum_destroyed(c, K_HOT);
    int hot = frt_is_hot(&s->hot->ob);
    frt_decref(&s->hot->ob);
    if (hot) /* counted per thread: the collector frees it */
        frt_gc_collect(0);
    STRESS_CHECK(c, stress_sum_destroyed(c, K_HOT) == before + 1, "destroyed",
                 "main's last decref of the hot object did not destroy it");
    free(s);
    c->shared = NULL;
}

static frt_object *fault_target(stress_case *c, stress_worker *w)
{
    return &((shared_state *)c->shared)->hot->ob;
}

#define SHARED_READ(NAME, WHAT, FLAGS)                                                             \
    {                                                                                              \
        .name = NAME,                                                                              \
        .what = WHAT,                                                                              \
        .op = "one incref, read, decref of the hot object (or a hold/release/mailbox swap)",       \
        .brc_note = "every count is a non-owner's atomic on one hot object, as in the atomic "     \
                    "build; biased counting adds its owner test to each and has nothing to gain",  \
        .kinds = {"hot", NULL},                                                                    \
        .flags = FLAGS,                                                                            \
        .thread_state = sizeof(reader_state),                                                      \
        .setup = setup,                                                                            \
        .run = run,                                                                                \
        .check_stopped = check_stopped,                                                            \
        .verify_held = verify_held,                                                                \
        .thread_finish = thread_finish,                                                            \
        .teardown = teardown,                                                                      \
        .fault_target = fault_target,                                                              \
    }

const stress_workload stress_wl_shared_read =
    SHARED_READ("shared-read",
                "every thread reads one hot object, counting on its shared count (which the "
                "runtime may make hot by itself); references travel through a mailbox",
                0);
const stress_workload stress_wl_shared_hot =
    SHARED_READ("shared-hot", "shared-read with the object made hot (frt_make_hot)",
                STRESS_WL_MAKE_HOT);
const stress_workload stress_wl_shared_nohot =
    SHARED_READ("shared-nohot",
                "shared-read with adaptive hot objects off: every count an atomic on one line",
                STRESS_WL_NO_ADAPTIVE);
