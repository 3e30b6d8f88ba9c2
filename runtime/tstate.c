/* Attaching and detaching threads, and finding a thread by id.
 *
 * A thread's id is its thread pointer (frt__thread_id), which the OS hands
 * to a later thread once this one exits: detach therefore merges every
 * object the thread still owns (brc/merge_queue.c), so an id found in an
 * object always names the attached thread that owns it.
 *
 * Finding a thread by id: an open-addressed table with linear probing,
 * written under threads_lock and read without a lock. An entry goes from
 * empty to a state, from a state to GONE (detach) and from GONE to a state,
 * never back to empty, so a reader's probe from an id's home slot always
 * reaches that id's entry. Thread states are pooled, never freed before
 * shutdown, so a reader may dereference any entry it loaded; the state's
 * tid, read after, tells whether it is still the thread it wanted. */
#include <errno.h>
#include <stdlib.h>

#include "debug.h"
#include "fork.h"
#include "object_internal.h"
#include "os.h"
#include "qsbr.h"
#include "runtime.h"

#if !(defined(__GNUC__) && (defined(__x86_64__) || defined(__aarch64__)))
_Thread_local char frt__tls_anchor;
#endif
__thread frt_tstate *frt__tls_state __attribute__((tls_model("initial-exec")));

#define TID_GONE ((frt_tstate *)1)
#define TID_MASK (FRT_TID_TABLE_SIZE - 1)

static uint32_t tid_home(uintptr_t tid)
{
    /* Thread pointers are at least 16-byte aligned and often page-spaced:
     * Fibonacci hashing spreads them. */
    return (uint32_t)(((uint64_t)tid * UINT64_C(0x9e3779b97f4a7c15)) >> (64 - FRT_TID_TABLE_BITS));
}

frt_tstate *frt__tstate_of_tid(uintptr_t tid)
{
    uint32_t i = tid_home(tid);
    for (uint32_t probes = 0; probes < FRT_TID_TABLE_SIZE; probes++, i = (i + 1) & TID_MASK) {
        frt_tstate *ts = atomic_load_explicit(&frt__rt.by_tid[i], memory_order_acquire);
        if (!ts)
            return NULL;
        if (ts != TID_GONE && atomic_load_explicit(&ts->tid, memory_order_acquire) == tid)
            return ts;
    }
    return NULL;
}

/* Under threads_lock. The table has twice as many entries as threads can
 * be attached, so a free (empty or GONE) entry always exists. */
static void tid_insert(frt_tstate *ts, uintptr_t tid)
{
    uint32_t i = tid_home(tid);
    for (;;) {
        frt_tstate *e = atomic_load_explicit(&frt__rt.by_tid[i], memory_order_relaxed);
        if (!e || e == TID_GONE)
            break;
        i = (i + 1) & TID_MASK;
    }
    ts->tid_index = i;
    atomic_store_explicit(&frt__rt.by_tid[i], ts, memory_order_release);
}

frt_tstate *frt__tstate_first(void)
{
    return frt__rt.threads;
}

static void registry_insert(frt_tstate *ts)
{
    ts->prev = NULL;
    ts->next = frt__rt.threads;
    if (frt__rt.threads)
        frt__rt.threads->prev = ts;
    frt__rt.threads = ts;
    frt__rt.nthreads++;
    atomic_store_explicit(&frt__rt.nthreads_hint, frt__rt.nthreads, memory_order_relaxed);
}

static void registry_remove(frt_tstate *ts)
{
    if (ts->prev)
        ts->prev->next = ts->next;
    else
        frt__rt.threads = ts->next;
    if (ts->next)
        ts->next->prev = ts->prev;
    ts->next = ts->prev = NULL;
    frt__rt.nthreads--;
    atomic_store_explicit(&frt__rt.nthreads_hint, frt__rt.nthreads, memory_order_relaxed);
}

/* A pooled state, or a new one. Under threads_lock. */
static frt_tstate *state_get(void)
{
    frt_tstate *ts = frt__rt.free_states;
    if (ts) {
        frt__rt.free_states = ts->next_free;
        return ts;
    }
    if (frt__rt.nstates >= FRT_MAX_THREADS)
        return NULL;
    ts = frt__sys_calloc(1, sizeof *ts);
    if (ts)
        frt__rt.nstates++;
    return ts;
}

static void thread_exit_hook(void *arg)
{
    (void)arg;
    /* A thread that ends attached is detached for it: its objects stay
     * alive and a stop-the-world never waits for a thread that is gone. */
    frt_tstate *ts = frt__tstate();
    if (!ts)
        return;
    while (ts->stw_depth)
        frt_start_the_world();
    while (ts->blocking_depth)
        frt_blocking_end();
    frt_thread_detach();
}

/* The one place that says which thread state the calling thread has: set
 * at attach, cleared at the very end of detach. The id (the thread
 * pointer) needs no setting, and the state's owner_id stays the id until
 * detach has closed the queue, so no code ever runs on a thread that has
 * a state but owns by no id (a finalizer it ran would publish its object
 * as shared, where another thread's weakref_get could take it). */
static void tls_set(frt_tstate *ts)
{
    frt__tls_state = ts;
    pthread_setspecific(frt__rt.exit_key, ts);
}

int frt__tstate_attach(void)
{
    if (frt__tstate())
        return FRT_EALREADY;
    frt_ticket_lock_acquire(&frt__rt.threads_lock); /* waits out a stop */
    if (atomic_load(&frt__rt.initialized) != 1) { /* init or shutdown under way */
        frt_ticket_lock_release(&frt__rt.threads_lock);
        return FRT_ESTATE;
    }
    frt_tstate *ts = state_get();
    if (!ts) {
        frt_ticket_lock_release(&frt__rt.threads_lock);
        return frt__rt.nstates >= FRT_MAX_THREADS ? FRT_ESTATE : FRT_ENOMEM;
    }
    frt_heap *heap = frt__heap_adopt();
    if (!heap) {
        ts->next_free = frt__rt.free_states;
        frt__rt.free_states = ts;
        frt_ticket_lock_release(&frt__rt.threads_lock);
        return FRT_ENOMEM;
    }
    uintptr_t tid = frt__thread_id();
    ts->heap = heap;
    ts->owner_id = tid;
    ts->blocking_depth = ts->stw_depth = ts->in_dealloc = 0;
    ts->dealloc_pending = NULL;
    ts->hot_open = 1; /* detach closed it */
    ts->cs_top = NULL;
    frt_objq_open(&ts->brc_queue); /* reopen: the last owner closed it */
    atomic_store_explicit(&ts->word, FRT_TS_ATTACHED, memory_order_relaxed);
    atomic_store_explicit(&ts->tid, tid, memory_order_release);
    tid_insert(ts, tid);
    registry_insert(ts);
    frt_ticket_lock_release(&frt__rt.threads_lock);

    tls_set(ts);
    frt__qsbr_register();
    return 0;
}

void frt__tstate_detach(void)
{
    frt_tstate *ts = frt__tstate();
    if (!ts) {
        FRT_MISUSE(NULL, "frt_thread_detach from a thread that is not attached");
        return;
    }
    if (ts->blocking_depth) {
        FRT_MISUSE(NULL, "frt_thread_detach inside a blocking section");
        return;
    }
    if (ts->stw_depth) {
        FRT_MISUSE(NULL, "frt_thread_detach while holding a stop-the-world");
        return;
    }
    /* A finalizer, destroy or callback runs inside a dealloc loop or a
     * collection that goes on after it returns, on this thread's state:
     * detaching under it would drop the loop's pending objects, or hand the
     * state to another thread while this one still uses it. */
    if (ts->in_dealloc || ts->in_gc_callback) {
        FRT_MISUSE(NULL, "frt_thread_detach from a finalizer, destroy or callback");
        return;
    }
    if (ts->cs_top) {
        FRT_MISUSE(ts->cs_top->obj[0], "frt_thread_detach inside a critical section");
        frt__cs_suspend_all(ts); /* release build: let the locks go */
        ts->cs_top = NULL;
    }
    /* Merge and free what others queued for us, and give up every object
     * we own, until the queue closes empty (brc/merge_queue.c), all as the
     * owner: the finalize and destroy code this runs counts, allocates and
     * resurrects as this thread. Once the queue is closed a thread that
     * would queue to us merges on the spot and no object carries our id
     * (the next thread given our thread pointer must own nothing it did
     * not create); from there to the end nothing here touches an object,
     * and owner_id 0 would make anything that did shared, never ours. */
    frt__safepoint_poll(ts);
    if (frt__rt.hooks.close_queue)
        frt__rt.hooks.close_queue(ts);
    ts->owner_id = 0;
    frt__heap_abandon(ts->heap);
    /* After the last frees this thread may run: they are handed over, and
     * grace periods stop waiting for us. */
    frt__qsbr_unregister();

    /* DETACHED satisfies a stop in progress; the word keeps no pending bits. */
    uint32_t w = atomic_load(&ts->word);
    while (!atomic_compare_exchange_weak(&ts->word, &w, FRT_TS_DETACHED)) {
    }
    tls_set(NULL);

    frt_ticket_lock_acquire(&frt__rt.threads_lock);
    registry_remove(ts);
    atomic_store_explicit(&frt__rt.by_tid[ts->tid_index], TID_GONE, memory_order_release);
    atomic_store_explicit(&ts->tid, 0, memory_order_release);
    ts->heap = NULL;
    ts->next_free = frt__rt.free_states;
    frt__rt.free_states = ts;
    frt_ticket_lock_release(&frt__rt.threads_lock);
}

frt_tstate *frt__tstate_fork_child(frt_tstate *me)
{
    frt_tstate *gone = NULL, *next;
    for (frt_tstate *ts = frt__rt.threads; ts; ts = next) {
        next = ts->next;
        if (ts == me)
            continue;
        registry_remove(ts);
        /* Out of the id table first: from here a thread that would queue
         * to it merges on the spot, as for any thread that has left. Its
         * id stays in ts->tid until take_over has given up its objects
         * (the walk looks for that id; the OS gives the pointer to the
         * child's next thread). */
        atomic_store_explicit(&frt__rt.by_tid[ts->tid_index], TID_GONE, memory_order_release);
        atomic_store_explicit(&ts->word, FRT_TS_DETACHED, memory_order_relaxed);
        ts->next_free = gone;
        gone = ts;
    }
    /* Threads that queued for the threads lock took tickets that nobody
     * will ever serve: we hold the lock, so ours is the last one. */
    atomic_store(&frt__rt.threads_lock.next, atomic_load(&frt__rt.threads_lock.serving) + 1);
    return gone;
}

void frt__tstate_take_over(frt_tstate *ts)
{
    /* Its queue holds references others handed it: merge them (the owner
     * cannot be writing local counts any more), give up every object it
     * owned, as its detach would have, and close the queue. */
    ts->owner_id = 0;
    if (frt__rt.hooks.close_queue)
        frt__rt.hooks.close_queue(ts);
    atomic_store_explicit(&ts->tid, 0, memory_order_release);
    /* Its heap becomes an orphan like a detached thread's: its objects stay
     * where heap walks find them, the next attaching thread adopts it. A
     * thread that vanished in the middle of detaching left it so already. */
    if (ts->heap && !ts->heap->orphan)
        frt__heap_abandon(ts->heap);
    /* Objects it was freeing (count 0, chained through ob_tid). */
    frt_object *pending = ts->dealloc_pending;
    ts->dealloc_pending = NULL;
    ts->heap = NULL;
    ts->in_dealloc = ts->blocking_depth = ts->stw_depth = ts->in_gc_callback = 0;
    frt__dealloc_chain(pending);
    frt_ticket_lock_acquire(&frt__rt.threads_lock);
    ts->next_free = frt__rt.free_states;
    frt__rt.free_states = ts;
    frt_ticket_lock_release(&frt__rt.threads_lock);
}

int frt__tstate_init(void)
{
    if (frt__sys_key_create(&frt__rt.exit_key, thread_exit_hook) != 0)
        return FRT_ENOMEM;
    return 0;
}

void frt__tstate_fini(void)
{
    frt_tstate *ts = frt__rt.free_states;
    while (ts) {
        frt_tstate *next = ts->next_free;
        frt_objq_destroy(&ts->brc_queue);
        frt__sys_free(ts->drops);
        frt__sys_free(ts);
        ts = next;
    }
    frt__rt.free_states = NULL;
    frt__rt.nstates = 0;
    for (uint32_t i = 0; i < FRT_TID_TABLE_SIZE; i++)
        atomic_store_explicit(&frt__rt.by_tid[i], NULL, memory_order_relaxed);
    pthread_key_delete(frt__rt.exit_key);
}

int frt_thread_attach(void)
{
    if (!atomic_load(&frt__rt.initialized))
        return FRT_ESTATE;
    return frt__tstate_attach();
}

void frt_thread_detach(void)
{
    frt__tstate_detach();
}

int frt_thread_is_attached(void)
{
    return frt__tstate() != NULL;
}
