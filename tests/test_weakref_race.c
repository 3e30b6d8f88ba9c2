/* frt_weakref_get on some threads while the last strong reference goes on
 * another: every get returns NULL or a live object with a counted
 * reference, never a freed object and never one whose finalizer is
 * running. Each round makes a batch of targets with weakrefs (callbacks
 * count per target), getters hammer the weakrefs while the targets die,
 * and the round checks: each target destroyed exactly once, each callback
 * run exactly once, every weakref cleared. The last reference goes in four
 * ways, round by round:
 *   0  merged targets, dropped by a non-owner (freed by its CAS);
 *   1  biased targets dropped by a non-owner: queued to the owner, freed
 *      when the owner merges at its safepoint;
 *   2  the owner drops them itself (merge_zero_local, a CAS against the
 *      getters' CAS);
 *   3  their owner has detached; a non-owner drops them (merged on the
 *      spot).
 * A getter that wins keeps the object a moment, so it is often the last
 * holder and frees it itself. At least 10^6 gets race a drop, in every
 * preset (TSan included). */
#include <frt/frt.h>

#include "test_util.h"

#define MAGIC 0xfeedf00du
#define BATCH 256
#define NGETTERS 2

typedef struct target {
    frt_object ob;
    _Atomic unsigned magic;
    _Atomic int in_finalizer;
    int index;
} target;

static _Atomic int destroyed[BATCH], callbacks[BATCH];
static _Atomic int quit, round_mode, alive_left;
static _Atomic long bad;        /* a get returned a dead or finalizing object */
static _Atomic long gets_total, gets_won;

static void target_finalize(frt_object *self)
{
    target *t = (target *)self;
    atomic_store(&t->in_finalizer, 1);
    for (int i = 0; i < 64; i++) /* widen the window a getter must not see */
        atomic_signal_fence(memory_order_seq_cst);
    atomic_store(&t->in_finalizer, 0);
}

static void target_destroy(frt_object *self)
{
    target *t = (target *)self;
    if (atomic_load(&t->magic) != MAGIC)
        atomic_fetch_add(&bad, 1);
    atomic_fetch_add(&destroyed[t->index], 1);
    atomic_store(&t->magic, 0);
    atomic_fetch_sub(&alive_left, 1);
}

static const frt_type target_type = {"race.target", sizeof(target), NULL, NULL, target_finalize,
                                     target_destroy};

static void count_cb(frt_weakref *wr, void *ctx)
{
    if (frt_weakref_get(wr) != NULL) /* cleared before the callback */
        atomic_fetch_add(&bad, 1);
    atomic_fetch_add(&callbacks[(intptr_t)ctx], 1);
}

static target *targets[BATCH];
static frt_weakref *wrs[BATCH];
static pthread_barrier_t go, done;

static void make_batch(void)
{
    for (int i = 0; i < BATCH; i++) {
        target *t = (target *)frt_new(&target_type);
        CHECK(t != NULL);
        t->index = i;
        atomic_store(&t->magic, MAGIC);
        wrs[i] = frt_weakref_new(&t->ob, count_cb, (void *)(intptr_t)i);
        CHECK(wrs[i] != NULL);
        if (atomic_load(&round_mode) == 0)
            CHECK_EQ(frt_make_shared(&t->ob), 0);
        targets[i] = t;
    }
}

static void *detached_maker(void *arg)
{
    (void)arg;
    CHECK_EQ(frt_thread_attach(), 0);
    make_batch();
    frt_thread_detach(); /* the targets' owner is gone */
    return NULL;
}

static void wait_barrier(pthread_barrier_t *b)
{
    frt_blocking_begin();
    pthread_barrier_wait(b);
    frt_blocking_end();
}

static void *getter(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    CHECK_EQ(frt_thread_attach(), 0);
    for (;;) {
        wait_barrier(&go);
        if (atomic_load(&quit))
            break;
        long n = 0, won = 0;
        while (atomic_load_explicit(&alive_left, memory_order_relaxed) > 0) {
            seed = seed * 1103515245u + 12345u;
            int i = (int)(seed >> 8) % BATCH;
            /* Counted only if the target was alive when the get began:
             * every counted get overlaps that target's dying round. */
            n += atomic_load_explicit(&destroyed[i], memory_order_relaxed) == 0;
            frt_object *o = frt_weakref_get(wrs[i]);
            if (o) {
                target *t = (target *)o;
                if (atomic_load(&t->magic) != MAGIC || atomic_load(&t->in_finalizer))
                    atomic_fetch_add(&bad, 1);
                won++;
                if ((seed & 7) == 0)
                    sched_yield(); /* hold it: often the last holder then */
                frt_decref(o);
            }
            if ((seed & 255) == 0)
                frt_safepoint();
        }
        atomic_fetch_add(&gets_total, n);
        atomic_fetch_add(&gets_won, won);
        wait_barrier(&done);
    }
    frt_thread_detach();
    return NULL;
}

/* The dropper: drops every target's last reference (modes 0, 1, 3). */
static void *dropper(void *arg)
{
    (void)arg;
    CHECK_EQ(frt_thread_attach(), 0);
    for (;;) {
        wait_barrier(&go);
        if (atomic_load(&quit))
            break;
        int mode = atomic_load(&round_mode);
        if (mode != 2)
            for (int i = 0; i < BATCH; i++) {
                frt_decref(&targets[i]->ob);
                if ((i & 15) == 0)
                    sched_yield();
            }
        wait_barrier(&done);
    }
    frt_thread_detach();
    return NULL;
}

int main(void)
{
    test_watchdog("test_weakref_race", 280);
    /* Ordinary objects' last decrefs racing gets: the getters' traffic
     * would make the targets hot (adaptive), whose frees wait for a
     * collection; test_hot covers gets on hot objects. */
    frt_config cfg;
    frt_config_default(&cfg);
    cfg.hot_adaptive = FRT_HOT_ADAPTIVE_OFF;
    CHECK_EQ(frt_init(&cfg), 0);
    const long want_gets = 1000000;
    pthread_barrier_init(&go, NULL, NGETTERS + 2);
    pthread_barrier_init(&done, NULL, NGETTERS + 2);
    pthread_t g[NGETTERS], d;
    for (int i = 0; i < NGETTERS; i++)
        g[i] = test_spawn(getter, (void *)(uintptr_t)(i * 7919 + 1));
    d = test_spawn(dropper, NULL);

    long rounds = 0, mode_rounds[4] = {0};
    uint64_t t0 = test_now_ns();
    while (atomic_load(&gets_total) < want_gets || rounds < SCALED(200L)) {
        int mode = (int)(rounds % 4);
        atomic_store(&round_mode, mode);
        for (int i = 0; i < BATCH; i++) {
            atomic_store(&destroyed[i], 0);
            atomic_store(&callbacks[i], 0);
        }
        if (mode == 3)
            test_join(test_spawn(detached_maker, NULL));
        else
            make_batch();
        atomic_store(&alive_left, BATCH);
        wait_barrier(&go);
        if (mode == 2)
            for (int i = 0; i < BATCH; i++) {
                frt_decref(&targets[i]->ob); /* the owner's own last decref */
                if ((i & 15) == 0)
                    sched_yield();
            }
        /* Mode 1 frees at our safepoints: poll until all are gone (the
         * last holder may also be a getter, which frees it after its get). */
        uint64_t deadline = test_now_ns() + 60ull * 1000000000u;
        while (atomic_load(&alive_left) > 0) {
            frt_safepoint();
            sched_yield();
            CHECK(test_now_ns() < deadline);
        }
        wait_barrier(&done);
        for (int i = 0; i < BATCH; i++) {
            CHECK_EQ(atomic_load(&destroyed[i]), 1);
            CHECK_EQ(atomic_load(&callbacks[i]), 1);
            CHECK(frt_weakref_get(wrs[i]) == NULL);
            CHECK(!frt_weakref_alive(wrs[i]));
            frt_decref(frt_weakref_object(wrs[i]));
        }
        CHECK_EQ(atomic_load(&bad), 0);
        mode_rounds[mode]++;
        rounds++;
    }
    atomic_store(&quit, 1);
    wait_barrier(&go);
    for (int i = 0; i < NGETTERS; i++)
        test_join(g[i]);
    test_join(d);
    CHECK_EQ(atomic_load(&bad), 0);
    fprintf(stderr,
            "test_weakref_race: %ld rounds of %d targets (%ld/%ld/%ld/%ld by mode), %ld gets began while "
            "their target was alive, %ld won, in %.2f s\n",
            rounds, BATCH, mode_rounds[0], mode_rounds[1], mode_rounds[2], mode_rounds[3],
            atomic_load(&gets_total), atomic_load(&gets_won), (double)(test_now_ns() - t0) / 1e9);
    CHECK(atomic_load(&gets_total) >= want_gets);
    pthread_barrier_destroy(&go);
    pthread_barrier_destroy(&done);
    CHECK_EQ(frt_shutdown(), 0);
    TEST_PASS("test_weakref_race");
    return 0;
}
