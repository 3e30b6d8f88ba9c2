/* Drop batches (brc/drop_batch.c): a non-owner's last references reach the
 * owner's queue a chunk at a time.
 *
 * 1. Latency, as documented: drops wait in the dropper's batch until it is
 *    full (FRT_OBJQ_CHUNK), until the dropper's own frt_safepoint, or until
 *    it enters a blocking section; the owner's safepoint alone does not
 *    free them. A drop for an owner that sits in a blocking section goes
 *    at once and is merged for it (gh-157838).
 * 2. A stopped world hides no batch: garbage whose last references sit in
 *    the batch of a thread that only polls (frt_new) is freed by the
 *    collection, before frt_gc_collect returns.
 * 3. Stress: three threads own objects and hand them round a ring of
 *    mailboxes, dropping what they receive, while another thread collects
 *    and toggles blocking sections: every object destroyed exactly once,
 *    never early. Run under TSan by the tsan preset. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>

#include <frt/frt.h>

#include "runtime/obj_queue.h" /* FRT_OBJQ_CHUNK */
#include "test_util.h"
#include "tobj.h"

static const frt_config *config(void)
{
    static frt_config cfg;
    frt_config_default(&cfg);
    cfg.hot_adaptive = FRT_HOT_ADAPTIVE_OFF;
    return &cfg;
}

/* ------------------------------------------------------------------ */
/* 1. Latency                                                          */

#define FEW 10
static tobj *l_objs[FRT_OBJQ_CHUNK + FEW];
static tobj *l_other;   /* owned by l_helper */
static _Atomic long l_step;

/* Steps, main (the owner) and the dropper taking turns. */
static void step_to(long s)
{
    atomic_store(&l_step, s);
}

static void *l_dropper(void *arg)
{
    (void)arg;
    CHECK_EQ(frt_thread_attach(), 0);
    test_wait_at_least(&l_step, 1, 0, "step 1");
    for (int i = 0; i < FEW; i++)
        frt_decref(&l_objs[i]->ob);
    step_to(2);
    test_wait_at_least(&l_step, 3, 0, "step 3");
    frt_safepoint(); /* our batch goes to its owner */
    step_to(4);
    test_wait_at_least(&l_step, 5, 0, "step 5");
    /* A full batch goes by itself. */
    for (int i = FEW; i < FEW + FRT_OBJQ_CHUNK; i++)
        frt_decref(&l_objs[i]->ob);
    step_to(6);
    test_wait_at_least(&l_step, 7, 0, "step 7");
    /* Each of us drops the other's object. */
    l_objs[0] = make(); /* ours: main drops it below */
    step_to(8);
    test_wait_at_least(&l_step, 9, 0, "step 9");
    frt_decref(&l_other->ob); /* main's object: into our batch */
    step_to(10);
    test_wait_at_least(&l_step, 11, 0, "step 11");
    frt_blocking_begin(); /* merges main's drop, pushes our batch */
    frt_blocking_end();
    step_to(12);
    frt_thread_detach();
    return NULL;
}

static _Atomic long b_blocked, b_release;
static tobj *b_obj;

static void *blocked_owner(void *arg)
{
    (void)arg;
    CHECK_EQ(frt_thread_attach(), 0);
    b_obj = make();
    frt_blocking_begin();
    atomic_store(&b_blocked, 1);
    /* No frt call in here: the drop below must be merged for us. */
    for (unsigned i = 0; !atomic_load(&b_release); i++)
        test_pause(i);
    frt_blocking_end();
    frt_thread_detach();
    return NULL;
}

static void test_latency(void)
{
    CHECK_EQ(frt_init(config()), 0);
    reset_counts();
    for (int i = 0; i < FEW + FRT_OBJQ_CHUNK; i++)
        l_objs[i] = make();
    atomic_store(&l_step, 0);
    pthread_t d = test_spawn(l_dropper, NULL);
    step_to(1);
    test_wait_at_least(&l_step, 2, 0, "step 2");
    /* FEW drops wait in the dropper's batch: our safepoint finds nothing. */
    frt_safepoint();
    CHECK_EQ(atomic_load(&destroyed), 0);
    step_to(3);
    test_wait_at_least(&l_step, 4, 0, "step 4");
    frt_safepoint(); /* the dropper's safepoint pushed them */
    CHECK_EQ(atomic_load(&destroyed), FEW);
    step_to(5);
    test_wait_at_least(&l_step, 6, 0, "step 6");
    frt_safepoint();
    CHECK_EQ(atomic_load(&destroyed), FEW + FRT_OBJQ_CHUNK);
    /* The dropper makes an object of its own, which we drop, and drops
     * one of ours. */
    l_other = make();
    step_to(7);
    test_wait_at_least(&l_step, 8, 0, "step 8");
    frt_decref(&l_objs[0]->ob); /* the dropper's: into our batch */
    step_to(9);
    test_wait_at_least(&l_step, 10, 0, "step 10");
    /* Our drop goes to the dropper's queue; its drop of l_other waits in
     * its batch. */
    frt_safepoint();
    CHECK_EQ(atomic_load(&destroyed), FEW + FRT_OBJQ_CHUNK);
    step_to(11);
    test_wait_at_least(&l_step, 12, 0, "step 12");
    /* Its blocking section merged our drop (its object is gone) and pushed
     * l_other to us. */
    CHECK_EQ(atomic_load(&destroyed), FEW + FRT_OBJQ_CHUNK + 1);
    frt_safepoint();
    CHECK_EQ(atomic_load(&destroyed), FEW + FRT_OBJQ_CHUNK + 2);
    frt_blocking_begin();
    CHECK_EQ(pthread_join(d, NULL), 0);
    frt_blocking_end();

    /* An owner in a blocking section: our drop is merged for it at once,
     * with no safepoint of ours. */
    atomic_store(&b_blocked, 0);
    atomic_store(&b_release, 0);
    pthread_t o = test_spawn(blocked_owner, NULL);
    test_wait_at_least(&b_blocked, 1, 0, "owner blocked");
    long before = atomic_load(&destroyed);
    frt_decref(&b_obj->ob);
    CHECK_EQ(atomic_load(&destroyed), before + 1);
    atomic_store(&b_release, 1);
    frt_blocking_begin();
    CHECK_EQ(pthread_join(o, NULL), 0);
    frt_blocking_end();
    check_destroyed_once(0, FEW + FRT_OBJQ_CHUNK + 3);
    CHECK_EQ(frt_shutdown(), 0);
}

/* ------------------------------------------------------------------ */
/* 2. A collection while drops wait in a polling thread's batch         */

static tobj *c_objs[FEW];
static const frt_type plain_type = {"plain", 32, NULL, NULL, NULL, NULL};
static _Atomic long c_dropped, c_stop;

static void *c_poller(void *arg)
{
    (void)arg;
    CHECK_EQ(frt_thread_attach(), 0);
    for (int i = 0; i < FEW; i++)
        frt_decref(&c_objs[i]->ob);
    atomic_store(&c_dropped, 1);
    /* Polls only in frt_new: the stop parks us there, with the batch. */
    while (!atomic_load(&c_stop))
        frt_decref(frt_new(&plain_type));
    frt_thread_detach();
    return NULL;
}

static void test_collect(void)
{
    CHECK_EQ(frt_init(config()), 0);
    reset_counts();
    for (int i = 0; i < FEW; i++)
        c_objs[i] = make();
    atomic_store(&c_dropped, 0);
    atomic_store(&c_stop, 0);
    pthread_t t = test_spawn(c_poller, NULL);
    test_wait_at_least(&c_dropped, 1, 0, "drops");
    frt_safepoint();
    CHECK_EQ(atomic_load(&destroyed), 0); /* in the poller's batch */
    frt_gc_collect(-1);
    CHECK_EQ(atomic_load(&destroyed), FEW);
    atomic_store(&c_stop, 1);
    frt_blocking_begin();
    CHECK_EQ(pthread_join(t, NULL), 0);
    frt_blocking_end();
    CHECK_EQ(atomic_load(&bad_destroys), 0);
    CHECK_EQ(frt_shutdown(), 0);
}

/* ------------------------------------------------------------------ */
/* 3. Stress: a ring of owners                                         */

#define S_THREADS 3
#define S_MBOX 128
#define S_PER SCALED(60000L)

typedef struct mbox {
    _Atomic(tobj *) slot[S_MBOX];
} mbox;

static mbox s_box[S_THREADS]; /* s_box[t]: what thread t receives */
static _Atomic long s_finished, s_stop;

static void *s_worker(void *arg)
{
    int t = (int)(intptr_t)arg;
    mbox *out = &s_box[(t + 1) % S_THREADS], *in = &s_box[t];
    CHECK_EQ(frt_thread_attach(), 0);
    unsigned rng = 0x9e3779b9u * (unsigned)(t + 1);
    long sent = 0, got = 0;
    tobj *kept = NULL;
    for (unsigned k = 0; sent < S_PER || got < S_PER; k++) {
        rng = rng * 1103515245u + 12345u;
        if (sent < S_PER) {
            _Atomic(tobj *) *slot = &out->slot[sent % S_MBOX];
            if (!atomic_load_explicit(slot, memory_order_acquire)) {
                tobj *o = make();
                if (rng % 7 == 0) { /* we keep one too: our drop races the receiver's */
                    frt_incref(&o->ob);
                    if (kept)
                        frt_decref(&kept->ob);
                    kept = o;
                }
                atomic_store_explicit(slot, o, memory_order_release);
                sent++;
            }
        }
        if (got < S_PER) {
            _Atomic(tobj *) *slot = &in->slot[got % S_MBOX];
            tobj *o = atomic_load_explicit(slot, memory_order_acquire);
            if (o) {
                atomic_store_explicit(slot, NULL, memory_order_relaxed);
                CHECK_EQ(o->magic, TOBJ_MAGIC);
                frt_decref(&o->ob);
                got++;
            }
        }
        switch (rng >> 28) {
        case 0:
            frt_safepoint();
            break;
        case 1:
            frt_blocking_begin();
            frt_blocking_end();
            break;
        default:
            break;
        }
        if ((k & 255) == 0)
            sched_yield();
    }
    if (kept)
        frt_decref(&kept->ob);
    atomic_fetch_add(&s_finished, 1);
    /* Attached until every thread is done sending: a detach merges for us. */
    test_wait_at_least(&s_finished, S_THREADS, 1, "the others");
    frt_thread_detach();
    return NULL;
}

static void *s_collector(void *arg)
{
    (void)arg;
    CHECK_EQ(frt_thread_attach(), 0);
    for (unsigned i = 0; !atomic_load(&s_stop); i++) {
        frt_gc_collect(i % 3 == 0 ? -1 : 0);
        CHECK_EQ(atomic_load(&bad_destroys), 0);
        frt_blocking_begin();
        sched_yield();
        frt_blocking_end();
    }
    frt_thread_detach();
    return NULL;
}

static void test_stress(void)
{
    CHECK_EQ(frt_init(config()), 0);
    reset_counts();
    memset(s_box, 0, sizeof s_box);
    atomic_store(&s_finished, 0);
    atomic_store(&s_stop, 0);
    pthread_t c = test_spawn(s_collector, NULL);
    pthread_t w[S_THREADS];
    for (int t = 0; t < S_THREADS; t++)
        w[t] = test_spawn(s_worker, (void *)(intptr_t)t);
    frt_blocking_begin();
    for (int t = 0; t < S_THREADS; t++)
        CHECK_EQ(pthread_join(w[t], NULL), 0);
    atomic_store(&s_stop, 1);
    CHECK_EQ(pthread_join(c, NULL), 0);
    frt_blocking_end();
    check_destroyed_once(0, S_THREADS * S_PER);
    CHECK_EQ(frt_shutdown(), 0);
}

int main(void)
{
    test_watchdog("test_drop_batch", 240);
    uint64_t t0 = test_now_ns();
    test_latency();
    test_collect();
    test_stress();
    fprintf(stderr, "test_drop_batch: %.2f s\n", (double)(test_now_ns() - t0) / 1e9);
    TEST_PASS("test_drop_batch");
    return 0;
}
