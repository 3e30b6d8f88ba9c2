/* frt-bench-instructions: fixed loops for an instruction counter, so that
 * the cost of the fast paths can be compared exactly, whatever the load on
 * the machine (wall-clock benchmarks are the other programs here):
 *
 *   valgrind --tool=callgrind --cache-sim=yes build/release/stress/frt-bench-instructions
 *   callgrind_annotate --inclusive=yes callgrind.out.<pid>
 *
 * then divide each function's inclusive count by its operations (printed).
 * Built against libfrt.a and, as frt-bench-instructions-shared, against
 * libfrt.so: the owner pair must cost the same through both. The argument
 * "adaptive-off" runs with frt_config.hot_adaptive off: the ordinary paths
 * must cost the same either way. */
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <frt/frt.h>

#define PAIRS 1000000L
#define BULK 200000L
#define ROUNDS 5
#define LIVE_SET 10000 /* frt-bench-alloc's ws10k */
#define WS_REPLACE 1000000L

static const frt_type t32 = {"t32", 32, NULL, NULL, NULL, NULL};
static const frt_type t256 = {"t256", 256, NULL, NULL, NULL, NULL};

#define BARRIER() __asm__ volatile("" ::: "memory")

/* The same loop as frt-bench-brc's: an op, a barrier, an op, a barrier.
 * Each caller below is a function of its own, so that callgrind counts it
 * apart (the nops, one instruction per call, keep the compiler from
 * folding the callers together). */
__attribute__((always_inline)) static inline void pairs(frt_object *o, long n)
{
    for (long i = 0; i < n; i++) {
        frt_incref(o);
        BARRIER();
        frt_decref(o);
        BARRIER();
    }
}

/* An object this thread owns. */
__attribute__((noinline)) static void owner_pairs(frt_object *o, long n)
{
    pairs(o, n);
}

/* A merged object: the non-owner's path, from one thread. */
__attribute__((noinline)) static void merged_pairs(frt_object *o, long n)
{
    __asm__ volatile("nop");
    pairs(o, n);
}

/* A hot object (frt_make_hot): per-thread counts, inline. */
__attribute__((noinline)) static void hot_pairs(frt_object *o, long n)
{
    __asm__ volatile("nop; nop; nop");
    pairs(o, n);
}

/* An object the main thread owns, counted by another thread: the
 * non-owner path on an owned object (frt-bench-brc section b). */
__attribute__((noinline)) static void nonowner_pairs(frt_object *o, long n)
{
    __asm__ volatile("nop; nop");
    pairs(o, n);
}

/* Hand-offs: objects the main thread made, dropped by another thread
 * (each queued back to the main thread), then merged and freed by the
 * main thread at its safepoint (queue_merge). */
__attribute__((noinline)) static void queue_drops(frt_object **v, long n)
{
    for (long i = 0; i < n; i++)
        frt_decref(v[i]);
}

__attribute__((noinline)) static void queue_merge(void)
{
    frt_safepoint();
}

/* Hand-offs in lockstep, as a producer and a consumer run: the main
 * thread makes an object (frt_new polls its safepoint, which merges what
 * was queued), the other thread drops it (queued to the main thread). */
#define HANDOFFS 100000L

static struct {
    frt_object *owned;
    frt_object **v;
    long n;
    _Atomic(frt_object *) slot;
    _Atomic int done;
} other;

__attribute__((noinline)) static void handoff_drop(frt_object *o)
{
    frt_decref(o);
}

__attribute__((noinline)) static frt_object *handoff_make(void)
{
    return frt_new(&t32);
}

static void handoff_consumer(void)
{
    for (long i = 0; i < HANDOFFS; i++) {
        frt_object *o;
        while (!(o = atomic_load(&other.slot)))
            sched_yield();
        atomic_store(&other.slot, NULL);
        handoff_drop(o);
    }
}

static void handoff_producer(void)
{
    for (long i = 0; i < HANDOFFS; i++) {
        frt_object *o = handoff_make();
        if (!o)
            abort();
        atomic_store(&other.slot, o);
        while (atomic_load(&other.slot))
            sched_yield();
    }
}

static void *other_main(void *arg)
{
    (void)arg;
    if (frt_thread_attach() != 0)
        abort();
    nonowner_pairs(other.owned, PAIRS);
    queue_drops(other.v, other.n);
    /* The main thread stays attached and polls nothing meanwhile, so every
     * drop above queued; it merges once we say so. */
    atomic_store(&other.done, 1);
    handoff_consumer();
    frt_thread_detach();
    return NULL;
}

/* The main thread makes the objects and waits, attached, without a
 * safepoint (a poll would merge as the drops come). */
static void cross_thread(frt_object **v, long n)
{
    for (long i = 0; i < n; i++)
        if (!(v[i] = frt_new(&t32)))
            abort();
    other.owned = frt_new(&t32);
    other.v = v;
    other.n = n;
    pthread_t t;
    if (!other.owned || pthread_create(&t, NULL, other_main, NULL))
        abort();
    while (!atomic_load(&other.done))
        sched_yield();
    queue_merge();
    handoff_producer();
    frt_safepoint(); /* the last hand-offs */
    frt_blocking_begin();
    pthread_join(t, NULL);
    frt_blocking_end();
    frt_decref(other.owned);
}

__attribute__((noinline)) static void bulk(const frt_type *t, frt_object **v, long n)
{
    for (long i = 0; i < n; i++)
        if (!(v[i] = frt_new(t)))
            abort();
    for (long i = 0; i < n; i++)
        frt_decref(v[i]);
}

__attribute__((noinline)) static void bulk32(frt_object **v, long n)
{
    bulk(&t32, v, n);
}

__attribute__((noinline)) static void bulk256(frt_object **v, long n)
{
    bulk(&t256, v, n);
}

/* frt-bench-alloc's ws10k: a live set of LIVE_SET objects, a random one
 * freed and replaced each step (the same xorshift sequence). */
__attribute__((noinline)) static void ws(const frt_type *t, frt_object **v, long n)
{
    for (long i = 0; i < LIVE_SET; i++)
        if (!(v[i] = frt_new(t)))
            abort();
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    for (long i = 0; i < n; i++) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        uint32_t k = (uint32_t)(((rng >> 32) * (uint64_t)LIVE_SET) >> 32);
        frt_decref(v[k]);
        if (!(v[k] = frt_new(t)))
            abort();
    }
    for (long i = 0; i < LIVE_SET; i++)
        frt_decref(v[i]);
}

__attribute__((noinline)) static void ws32(frt_object **v, long n)
{
    ws(&t32, v, n);
}

__attribute__((noinline)) static void ws256(frt_object **v, long n)
{
    ws(&t256, v, n);
}

int main(int argc, char **argv)
{
    frt_config cfg;
    frt_config_default(&cfg);
    if (argc > 1 && strcmp(argv[1], "adaptive-off") == 0)
        cfg.hot_adaptive = FRT_HOT_ADAPTIVE_OFF;
    if (frt_init(&cfg) != 0)
        return 1;
    frt_object *o = frt_new(&t32);
    frt_object **v = malloc(BULK * sizeof *v);
    if (!o || !v)
        return 1;
    owner_pairs(o, PAIRS);
    frt_make_shared(o);
    merged_pairs(o, PAIRS);
    frt_decref(o);
    frt_object *h = frt_new(&t32);
    if (!h || frt_make_hot(h) != 0)
        return 1;
    hot_pairs(h, PAIRS);
    frt_decref(h);
    for (int r = 0; r < ROUNDS; r++)
        bulk32(v, BULK);
    for (int r = 0; r < ROUNDS; r++)
        bulk256(v, BULK);
    ws32(v, WS_REPLACE);
    ws256(v, WS_REPLACE);
    cross_thread(v, BULK);
    free(v);
    printf("owner_pairs, merged_pairs, hot_pairs: %ld pairs each; bulk32, bulk256: %ld frt_new + "
           "frt_decref each; ws32, ws256: %ld replacements in a live set of %d (plus %d setup pairs); "
           "nonowner_pairs (another thread, an owned object): %ld pairs; "
           "queue_drops (decrefs that queue to the owner), queue_merge (the owner's merge "
           "and free): %ld objects; handoff_make (frt_new, whose poll merges), handoff_drop "
           "(another thread's last decref), in lockstep: %ld hand-offs\n",
           PAIRS, (long)ROUNDS * BULK, WS_REPLACE, LIVE_SET, LIVE_SET, PAIRS, BULK, HANDOFFS);
    return frt_shutdown() == 0 ? 0 : 1;
}
