/* Deferred reclamation stays bounded while a thread sits in a blocking
 * section for a long time: the blocked thread is offline, so grace periods
 * never wait for it, and the memory waiting for one stays under
 * reclaim_limit plus one unflushed batch per thread (docs/design.md,
 * "Deferred reclamation"). A third thread stays attached and online,
 * passing safepoints, as a busy thread would. If the blocked thread held
 * grace periods back (also after it calls frt_safepoint inside its section),
 * the writer would wait at its first frt_safepoint over the limit for ever
 * (the watchdog fails the test). The writer also holds a mutex that a
 * fourth thread waits for the whole time: a lock wait is offline too, or
 * the writer would wait for a grace period that waits for the waiter,
 * which waits for the writer. */
#include <frt/frt.h>

#include "test_util.h"

#define OBJ_SIZE 256
#define LIMIT ((size_t)256 << 10)
#define BATCH_BLOCKS 256 /* runtime/qsbr.c */

typedef struct blob {
    frt_object ob;
    char body[OBJ_SIZE - sizeof(frt_object)];
} blob;

static const frt_type blob_type = {"bound.blob", sizeof(blob), NULL, NULL, NULL, NULL};
static _Atomic int done, parked, waiting;
static frt_mutex held = FRT_MUTEX_INIT;

static void *sleeper(void *arg)
{
    (void)arg;
    CHECK_EQ(frt_thread_attach(), 0);
    frt_blocking_begin();
    /* A safepoint inside the section must not bring the thread back
     * online (liburcu's quiescent state would). */
    frt_safepoint();
    atomic_store(&parked, 1);
    while (!atomic_load(&done))
        test_sleep_us(1000);
    frt_blocking_end();
    frt_thread_detach();
    return NULL;
}

static void *poller(void *arg)
{
    (void)arg;
    CHECK_EQ(frt_thread_attach(), 0);
    while (!atomic_load(&done)) {
        frt_safepoint();
        sched_yield();
    }
    frt_thread_detach();
    return NULL;
}

static void *lock_waiter(void *arg)
{
    (void)arg;
    CHECK_EQ(frt_thread_attach(), 0);
    atomic_store(&waiting, 1);
    CHECK_EQ(frt_mutex_lock(&held), 0); /* contended until the writer is done */
    CHECK_EQ(frt_mutex_unlock(&held), 0);
    frt_thread_detach();
    return NULL;
}

int main(void)
{
    test_watchdog("test_reclaim_bound", 240);
    frt_config cfg;
    frt_config_default(&cfg);
    cfg.reclaim_limit = LIMIT;
    CHECK_EQ(frt_init(&cfg), 0);
    pthread_t s = test_spawn(sleeper, NULL);
    pthread_t p = test_spawn(poller, NULL);
    while (!atomic_load(&parked))
        test_sleep_us(100);
    CHECK_EQ(frt_mutex_lock(&held), 0);
    pthread_t w = test_spawn(lock_waiter, NULL);
    while (!atomic_load(&waiting))
        test_sleep_us(100);
    test_sleep_us(20000); /* past its spinning, parked on the lock */

    frt_ref slot = FRT_REF_INIT;
    size_t most = 0;
    long rounds = (long)(16 * LIMIT / OBJ_SIZE); /* 16 times the limit goes through */
    for (long i = 0; i < rounds; i++) {
        frt_object *o = frt_new(&blob_type);
        CHECK(o);
        frt_ref_store(&slot, o); /* the previous one dies: deferred */
        frt_decref(o);
        frt_safepoint();
        frt_heap_stats st;
        frt_heap_get_stats(&st);
        if (st.reclaim_waiting_bytes > most)
            most = st.reclaim_waiting_bytes;
    }
    /* The writer's own batch and the poller's (empty) one. */
    size_t bound = LIMIT + 2 * BATCH_BLOCKS * OBJ_SIZE;
    fprintf(stderr, "test_reclaim_bound: %ld frees, at most %zu bytes waiting (bound %zu)\n", rounds,
            most, bound);
    CHECK(most > 0);
    CHECK(most <= bound);

    frt_ref_clear(&slot);
    CHECK_EQ(frt_mutex_unlock(&held), 0);
    test_join(w);
    atomic_store(&done, 1);
    test_join(s);
    test_join(p);
    frt_heap_trim();
    frt_heap_stats st;
    frt_heap_get_stats(&st);
    CHECK_EQ(st.reclaim_waiting_bytes, 0);
    CHECK_EQ(frt_shutdown(), 0);
    TEST_PASS("test_reclaim_bound");
    return 0;
}
