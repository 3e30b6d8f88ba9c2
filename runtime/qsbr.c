/* Deferred reclamation through liburcu's QSBR flavour (see qsbr.h).
 *
 * ThreadSanitizer cannot see liburcu's synchronisation (inline assembly in
 * an uninstrumented library), so this file states it: a thread releases
 * gp_token before it announces a quiescent state, goes offline or
 * unregisters, and the call_rcu callback acquires it before freeing; a
 * batch is released before call_rcu and acquired by its callback. That is
 * exactly the happens-before a grace period provides, and nothing more:
 * a block freed without going through here is still reported. No
 * suppressions: frt calls nothing of liburcu that hands memory between
 * threads behind TSan's back (see frt__qsbr_barrier). */
#include <stdint.h>
#include <urcu-qsbr.h>
#include <urcu/call-rcu.h>

#include "os.h"
#include "pool.h"
#include "qsbr.h"
#include "debug.h"
#include "fork.h"
#include "futex.h"
#include "runtime.h"

#if FRT_QSBR_TSAN
static char gp_token;
#define TSAN_RELEASE(p) __tsan_release(p)
#define TSAN_ACQUIRE(p) __tsan_acquire(p)
#else
#define TSAN_RELEASE(p) ((void)0)
#define TSAN_ACQUIRE(p) ((void)0)
#endif

/* Blocks per batch: one call_rcu (and one grace period's wait) per this
 * many frees, and the most a thread keeps before handing them over. */
#define BATCH_BLOCKS 256
#define LARGE_TAG ((uintptr_t)1) /* blocks are 16-byte aligned */
#define LATER_TAG ((uintptr_t)2) /* an frt_qsbr_later, not a block */
#define TAGS (LARGE_TAG | LATER_TAG)

typedef struct batch {
    struct rcu_head head;
    unsigned n;
    size_t bytes;
    uintptr_t blocks[BATCH_BLOCKS];
} batch;

static __thread batch *tls_batch;
static __thread int tls_registered;
/* Registered and online. A quiescent state announced while offline would
 * put the thread back online (liburcu stores the grace-period counter), so
 * frt_safepoint inside a blocking section must announce nothing. */
static __thread int tls_online;

static _Atomic size_t waiting_bytes, waiting_blocks, waiting_peak;
static _Atomic(frt_qsbr_later *) ready;
static _Atomic int forked_child; /* frt__qsbr_fork */ /* grace period over; for an attached thread */

void frt__qsbr_register(void)
{
    if (!tls_registered) {
        rcu_register_thread();
        tls_registered = 1;
        tls_online = 1;
    }
}

static void batch_free(struct rcu_head *head)
{
    batch *b = caa_container_of(head, batch, head);
    TSAN_ACQUIRE(&gp_token);
    TSAN_ACQUIRE(b);
    unsigned later = 0;
    for (unsigned i = 0; i < b->n; i++) {
        void *p = (void *)(b->blocks[i] & ~TAGS);
        if (b->blocks[i] & LATER_TAG) {
            frt_qsbr_later *w = p;
            w->next = atomic_load_explicit(&ready, memory_order_relaxed);
            while (!atomic_compare_exchange_weak_explicit(&ready, &w->next, w, memory_order_release,
                                                          memory_order_relaxed)) {
            }
            later++;
        } else if (b->blocks[i] & LARGE_TAG) {
            frt__large_free(p);
        } else {
            frt__block_free(NULL, p);
        }
    }
    atomic_fetch_sub(&waiting_blocks, b->n - later);
    atomic_fetch_sub(&waiting_bytes, b->bytes);
    frt__sys_free(b);
}

static void flush(void)
{
    batch *b = tls_batch;
    if (!b || b->n == 0)
        return;
    tls_batch = NULL;
    TSAN_RELEASE(b);
    call_rcu(&b->head, batch_free);
}

void frt__qsbr_unregister(void)
{
    flush();
    if (tls_registered) {
        TSAN_RELEASE(&gp_token);
        rcu_unregister_thread();
        tls_registered = 0;
        tls_online = 0;
    }
}

void frt__qsbr_quiescent(void)
{
    if (!tls_online)
        return;
    TSAN_RELEASE(&gp_token);
    rcu_quiescent_state();
}

void frt__qsbr_offline(void)
{
    flush();
    if (!tls_online)
        return;
    TSAN_RELEASE(&gp_token);
    rcu_thread_offline();
    tls_online = 0;
}

void frt__qsbr_online(void)
{
    if (!tls_registered || tls_online)
        return;
    rcu_thread_online();
    tls_online = 1;
}

static void defer(uintptr_t entry, size_t bytes, int counted);

void frt__qsbr_defer_free(void *block, size_t bytes, int large)
{
    defer((uintptr_t)block | (large ? LARGE_TAG : 0), bytes, 1);
}

void frt__qsbr_defer_call(frt_qsbr_later *w, void (*fn)(frt_qsbr_later *w))
{
    w->fn = fn;
    defer((uintptr_t)w | LATER_TAG, 0, 0);
}

void frt__qsbr_run_ready(void)
{
    if (!atomic_load_explicit(&ready, memory_order_relaxed))
        return;
    frt_qsbr_later *w = atomic_exchange_explicit(&ready, NULL, memory_order_acquire);
    while (w) {
        frt_qsbr_later *next = w->next;
        w->fn(w);
        w = next;
    }
}

static void defer(uintptr_t entry, size_t bytes, int counted)
{
    batch *b = tls_batch;
    if (!b) {
        b = frt__sys_calloc(1, sizeof *b);
        if (!b)
            return; /* out of memory: the block stays allocated, which is safe */
        tls_batch = b;
    }
    b->blocks[b->n++] = entry;
    b->bytes += bytes;
    atomic_fetch_add(&waiting_blocks, (size_t)counted);
    size_t now = atomic_fetch_add(&waiting_bytes, bytes) + bytes;
    size_t peak = atomic_load(&waiting_peak);
    while (now > peak && !atomic_compare_exchange_weak(&waiting_peak, &peak, now)) {
    }
    /* A thread that is not registered (a misuse, or detaching) must not
     * keep a batch that no later flush would find. */
    if (b->n == BATCH_BLOCKS || !tls_registered)
        flush();
}

int frt__qsbr_over_limit(void)
{
    return !atomic_load_explicit(&forked_child, memory_order_relaxed) &&
           atomic_load_explicit(&waiting_bytes, memory_order_relaxed) > frt__rt.config.reclaim_limit;
}

/* Our own barrier rather than liburcu's rcu_barrier: that one hands a
 * malloc'd completion between threads through synchronisation TSan cannot
 * see, and programs linked with the shared libfrt never get this file's
 * suppressions (TSan reads the hook from the executable). Every batch goes
 * to liburcu's default call_rcu worker, which runs callbacks in the order
 * they were queued, so a marker queued after our flush runs after every
 * batch queued before it, and says so through C11 atomics TSan sees. (A
 * program that gives liburcu per-CPU workers, create_all_cpu_call_rcu_data,
 * breaks that order; frt documents that it must not.) */
typedef struct barrier_marker {
    struct rcu_head head;
    _Atomic uint32_t done;
} barrier_marker;

static _Atomic uint32_t barrier_word; /* bumped by each marker: the futex */

static void barrier_reached(struct rcu_head *head)
{
    barrier_marker *m = caa_container_of(head, barrier_marker, head);
    TSAN_ACQUIRE(m);
    atomic_store_explicit(&m->done, 1, memory_order_release); /* m is gone after this */
    atomic_fetch_add_explicit(&barrier_word, 1, memory_order_release);
    frt_futex_wake_all(&barrier_word);
}

void frt__qsbr_barrier(void)
{
    flush();
    if (atomic_load_explicit(&forked_child, memory_order_relaxed))
        return;
    barrier_marker m = {.done = 0};
    TSAN_RELEASE(&m);
    call_rcu(&m.head, barrier_reached);
    for (;;) {
        uint32_t seen = atomic_load_explicit(&barrier_word, memory_order_acquire);
        if (atomic_load_explicit(&m.done, memory_order_acquire))
            break;
        frt_futex_wait(&barrier_word, seen);
    }
}

/* fork (runtime/fork.c). liburcu 0.13 has no way to take its registry
 * and grace-period locks across fork (its before/after-fork functions for
 * the QSBR flavour are not exported), and pausing its call_rcu thread with
 * the world stopped hung or crashed the child in test_fork. So the child
 * gives up waiting: blocks deferred before or after the fork are freed only
 * if liburcu's call_rcu thread runs there, and nothing in the child ever
 * waits for a grace period (frt_heap_trim, frt_shutdown and the
 * reclaim_limit stop waiting). The memory may leak in the child; it is
 * never reused early. */
void frt__qsbr_fork(int phase)
{
    if (phase == FRT_FORK_CHILD)
        atomic_store(&forked_child, 1);
}

void frt__qsbr_drain(void)
{
    frt_tstate *ts = frt__tstate();
    if (!ts || ts->blocking_depth || ts->stw_depth || ts->in_dealloc || ts->in_gc_callback)
        return;
    frt_blocking_begin();
    frt__qsbr_barrier();
    frt_blocking_end();
    frt__qsbr_run_ready();
}

void frt__qsbr_stats(size_t *bytes, size_t *blocks, size_t *peak)
{
    *bytes = atomic_load(&waiting_bytes);
    *blocks = atomic_load(&waiting_blocks);
    *peak = atomic_load(&waiting_peak);
}
