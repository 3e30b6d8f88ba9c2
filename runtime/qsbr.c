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
#include <sched.h>
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
    struct batch *child_next; /* in a forked child: child_queue */
    struct batch *prev, *next; /* in_flight */
    unsigned n;
    unsigned counted; /* entries that count as blocks (not LATER ones) */
    size_t bytes;
    uintptr_t blocks[BATCH_BLOCKS];
} batch;

static __thread batch *tls_batch;
static __thread int tls_registered;
/* Registered and online. A quiescent state announced while offline would
 * put the thread back online (liburcu stores the grace-period counter), so
 * frt_safepoint inside a blocking section must announce nothing. */
static __thread int tls_online;

/* What batches handed over hold (a thread's own batch is counted when it
 * hands it over: two threads that each defer a free per map write would
 * otherwise both write these lines every time). */
static _Atomic size_t waiting_bytes, waiting_blocks, waiting_peak;
static _Atomic(frt_qsbr_later *) ready;
/* Set in a forked child (frt__qsbr_fork): liburcu is never called again
 * there, and batches wait in child_queue for frt's own grace period, a
 * stop-the-world (frt__qsbr_world_stopped). */
static _Atomic int forked_child;
static _Atomic(batch *) child_queue;
static __thread batch *tls_stopped; /* taken at our stop, freed at its restart */

/* Batches handed to liburcu whose callback has not started: a forked
 * child, whose copy of liburcu's call_rcu worker never runs, finds them
 * here. Taken once per batch on each side, never with another lock.
 * in_progress counts callbacks that left the list and are freeing: a fork
 * waits for them, so no batch is half-freed in the child. */
static pthread_mutex_t in_flight_lock = PTHREAD_MUTEX_INITIALIZER;
static batch *in_flight;
static _Atomic unsigned in_progress;

#define CHILD() atomic_load_explicit(&forked_child, memory_order_relaxed)

void frt__qsbr_register(void)
{
    if (!tls_registered) {
        if (!CHILD())
            rcu_register_thread();
        tls_registered = 1;
        tls_online = 1;
    }
}

/* The counters go down before the blocks are freed: a batch that a fork
 * catches half-way through (its callback running on liburcu's worker)
 * must not leave the child's counters high forever. */
static void batch_free(batch *b)
{
    atomic_fetch_sub(&waiting_blocks, b->counted);
    atomic_fetch_sub(&waiting_bytes, b->bytes);
    for (unsigned i = 0; i < b->n; i++) {
        void *p = (void *)(b->blocks[i] & ~TAGS);
        if (b->blocks[i] & LATER_TAG) {
            frt_qsbr_later *w = p;
            w->next = atomic_load_explicit(&ready, memory_order_relaxed);
            while (!atomic_compare_exchange_weak_explicit(&ready, &w->next, w, memory_order_release,
                                                          memory_order_relaxed)) {
            }
        } else if (b->blocks[i] & LARGE_TAG) {
            frt__large_free(p);
        } else {
            frt__block_free(NULL, p);
        }
    }
    frt__sys_free(b);
}

/* liburcu's call_rcu worker, after a grace period. */
static void batch_ready(struct rcu_head *head)
{
    batch *b = caa_container_of(head, batch, head);
    TSAN_ACQUIRE(&gp_token);
    TSAN_ACQUIRE(b);
    pthread_mutex_lock(&in_flight_lock);
    if (b->prev)
        b->prev->next = b->next;
    else
        in_flight = b->next;
    if (b->next)
        b->next->prev = b->prev;
    atomic_fetch_add_explicit(&in_progress, 1, memory_order_relaxed);
    pthread_mutex_unlock(&in_flight_lock);
    batch_free(b);
    atomic_fetch_sub_explicit(&in_progress, 1, memory_order_release);
}

static void child_queue_push(batch *b)
{
    b->child_next = atomic_load_explicit(&child_queue, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&child_queue, &b->child_next, b,
                                                  memory_order_release, memory_order_relaxed)) {
    }
}

static void peak_at_least(size_t now)
{
    size_t peak = atomic_load_explicit(&waiting_peak, memory_order_relaxed);
    while (now > peak && !atomic_compare_exchange_weak(&waiting_peak, &peak, now)) {
    }
}

static void flush(void)
{
    batch *b = tls_batch;
    if (!b || b->n == 0)
        return;
    tls_batch = NULL;
    atomic_fetch_add(&waiting_blocks, (size_t)b->counted);
    peak_at_least(atomic_fetch_add(&waiting_bytes, b->bytes) + b->bytes);
    if (CHILD()) {
        child_queue_push(b);
        return;
    }
    pthread_mutex_lock(&in_flight_lock);
    b->prev = NULL;
    b->next = in_flight;
    if (in_flight)
        in_flight->prev = b;
    in_flight = b;
    pthread_mutex_unlock(&in_flight_lock);
    TSAN_RELEASE(b);
    call_rcu(&b->head, batch_ready);
}

void frt__qsbr_flush(void)
{
    flush();
}

void frt__qsbr_unregister(void)
{
    flush();
    if (tls_registered) {
        TSAN_RELEASE(&gp_token);
        if (!CHILD())
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
    if (!CHILD())
        rcu_quiescent_state();
}

void frt__qsbr_offline(void)
{
    flush();
    if (!tls_online)
        return;
    TSAN_RELEASE(&gp_token);
    if (!CHILD())
        rcu_thread_offline();
    tls_online = 0;
}

void frt__qsbr_online(void)
{
    if (!tls_registered || tls_online)
        return;
    if (!CHILD())
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
    b->counted += (unsigned)counted;
    /* A thread that is not registered (a misuse, or detaching) must not
     * keep a batch that no later flush would find. */
    if (b->n == BATCH_BLOCKS || !tls_registered)
        flush();
}

int frt__qsbr_over_limit(void)
{
    size_t mine = tls_batch ? tls_batch->bytes : 0;
    return atomic_load_explicit(&waiting_bytes, memory_order_relaxed) + mine >
           frt__rt.config.reclaim_limit;
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
    if (CHILD()) {
        /* Only frt_shutdown calls this in a child (frt__qsbr_drain stops the
         * world instead), after the last thread detached, with attaching
         * refused: nobody is left to read a slot, so the grace period is
         * over already. */
        frt__qsbr_world_stopped();
        frt__qsbr_world_started();
        return;
    }
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
 * the world stopped hung or crashed the child in test_fork. A thread that
 * did not survive the fork may hold one of those locks (the call_rcu
 * worker holds the registry lock through synchronize_rcu), and the
 * registry still lists the vanished threads as online readers, so in the
 * child any register, unregister, grace period or first call_rcu may wait
 * forever. So the child never calls liburcu again: registration, online
 * and offline are this file's bookkeeping only, and batches wait in
 * child_queue for frt's own grace period, a stop-the-world.
 *
 * The batches liburcu held at the fork (queued to its call_rcu worker,
 * which did not come along) are on in_flight, which the fork took locked
 * once no callback was half-way through one: the child moves them to
 * child_queue, to be freed at its first stop like its own. Nothing in
 * them can still be read: the threads that could have read them are gone,
 * and the forking thread forks from a clean point. (The wait is short and
 * cannot deadlock: a callback takes no lock but the large-block lock,
 * which the fork takes later, and no parked thread holds.) The forking
 * thread's own batch is the child's and is freed. (The other threads'
 * batches are empty: a thread hands its batch over before it parks for a
 * stop or goes blocked, frt__qsbr_flush.) */
void frt__qsbr_fork(int phase)
{
    /* A child's child keeps all it has: nothing of it was liburcu's, and
     * what the fork's stop took (tls_stopped) is freed at the restart. */
    if (CHILD())
        return;
    if (phase == FRT_FORK_CHILD) {
        atomic_store(&forked_child, 1);
        for (batch *b = in_flight, *next; b; b = next) {
            next = b->next;
            child_queue_push(b);
        }
        in_flight = NULL;
    }
    frt__fork_mutex(&in_flight_lock, phase);
    if (phase == FRT_FORK_LOCK)
        while (atomic_load_explicit(&in_progress, memory_order_acquire))
            sched_yield();
}

/* A stop-the-world is a grace period (forked child only). When the world
 * is stopped every other attached thread is parked at a safepoint or
 * offline in a blocking section (or waiting on a lock), which are exactly
 * the quiescent states of QSBR here: none of them holds a pointer it read
 * from a slot. A block in child_queue, or in the stopper's batch, now was
 * unlinked before it was deferred, so any thread that could have read it
 * read it before that, and has since reached the quiescent state it sits
 * in; no thread can read it from now on, and a thread that attaches later
 * never saw it. The stopper itself stops from a clean point (a collection,
 * frt_heap_trim, frt_shutdown, the reclaim drain at a safepoint: never
 * between reading a slot and taking its reference). So what is taken here
 * may be freed at any later time; it is freed at the restart, once the
 * stop's locks are released and the world runs. Batches queued after the take
 * wait for the next stop. */
void frt__qsbr_world_stopped(void)
{
    if (!CHILD())
        return;
    flush();
    tls_stopped = atomic_exchange_explicit(&child_queue, NULL, memory_order_acquire);
}

void frt__qsbr_world_started(void)
{
    batch *b = tls_stopped;
    tls_stopped = NULL;
    while (b) {
        batch *next = b->child_next;
        batch_free(b);
        b = next;
    }
}

void frt__qsbr_drain(void)
{
    frt_tstate *ts = frt__tstate();
    if (!ts || ts->blocking_depth || ts->stw_depth || ts->in_dealloc || ts->in_gc_callback)
        return;
    if (CHILD()) {
        /* Our grace period: a stop (frt__qsbr_world_stopped). */
        if (frt_stop_the_world() == 0)
            frt_start_the_world();
    } else {
        frt_blocking_begin();
        frt__qsbr_barrier();
        frt_blocking_end();
    }
    frt__qsbr_run_ready();
}

void frt__qsbr_stats(size_t *bytes, size_t *blocks, size_t *peak)
{
    /* Other threads' batches count once handed over; the caller's own now. */
    batch *b = tls_batch;
    *bytes = atomic_load(&waiting_bytes) + (b ? b->bytes : 0);
    *blocks = atomic_load(&waiting_blocks) + (b ? b->counted : 0);
    peak_at_least(*bytes);
    *peak = atomic_load(&waiting_peak);
}
