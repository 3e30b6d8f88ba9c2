/* Thread states: who is attached, what each thread owes (pending work), and
 * the one word that stop-the-world, blocking sections and BRC helpers all
 * change with compare-and-swap.
 *
 * ts->word layout (32 bits):
 *   bits 0-1   state: DETACHED, ATTACHED, BLOCKED, SUSPENDED
 *   bits 4-7   pending work: STOP, MERGE, TRIM, GC (the safepoint's business)
 *   bit  11    pending work: HOT (adaptive promotions to make)
 *   bit  8     ATTACH_WAITING: a SUSPENDED thread waits in blocking_end
 *   bit  9     RESUME_ATTACHED: a SUSPENDED thread parked at a safepoint
 *   bit  10    SLEEPING: the thread sleeps on the futex; wake it
 *   bits 16-31 helpers: threads merging this BLOCKED thread's queue for it
 * One word, so "park only while a stop is requested" and "re-attach only
 * when nobody is suspending or helping us" are single atomic decisions. */
#ifndef FRT_RUNTIME_TSTATE_H
#define FRT_RUNTIME_TSTATE_H

#include <stdatomic.h>
#include <stdint.h>

#include <frt/object.h>

#include "mpsc.h"
#include "obj_queue.h"
#include "pool.h"

enum {
    FRT_TS_DETACHED = 0,
    FRT_TS_ATTACHED = 1,
    FRT_TS_BLOCKED = 2,
    FRT_TS_SUSPENDED = 3,
    FRT_TS_STATE = 3u,
    FRT_TS_STOP = 1u << 4,
    FRT_TS_MERGE = 1u << 5,
    FRT_TS_TRIM = 1u << 6,
    FRT_TS_GC = 1u << 7,
    FRT_TS_HOT = 1u << 11, /* adaptive promotions to make (brc/hot_adaptive.c) */
    FRT_TS_PENDING = FRT_TS_STOP | FRT_TS_MERGE | FRT_TS_TRIM | FRT_TS_GC | FRT_TS_HOT,
    FRT_TS_ATTACH_WAITING = 1u << 8,
    FRT_TS_RESUME_ATTACHED = 1u << 9,
    FRT_TS_SLEEPING = 1u << 10,
    FRT_TS_HELPER = 1u << 16,
    FRT_TS_HELPERS = 0xffffu << 16
};

/* Thread ids are thread pointers (frt__thread_id in <frt/object.h>): an
 * open-addressed table, twice the most threads, finds a thread by its id. */
#define FRT_MAX_THREADS (1u << 16)
#define FRT_TID_TABLE_BITS 17
#define FRT_TID_TABLE_SIZE (1u << FRT_TID_TABLE_BITS)


typedef struct frt_tstate {
    _Atomic uint32_t word;
    _Atomic uintptr_t tid;  /* current id; 0 while the state is unused */
    uintptr_t owner_id;     /* ob_tid of the objects we create: tid, 0 once detaching */
    frt_objq brc_queue;     /* objects other threads queued for us to merge */
    frt_heap *heap;
    uint32_t tid_index;     /* our entry in the id table */
    unsigned blocking_depth;
    unsigned stw_depth;      /* stops this thread holds */
    unsigned in_dealloc;     /* dealloc loop running on this thread */
    unsigned freed;          /* objects that loop freed: it polls for stops every 64 */
    frt_object *dealloc_pending; /* objects waiting for that loop */
    struct frt_tstate *next, *prev; /* registry list (attached and blocked) */
    struct frt_tstate *next_free;
    uint64_t safepoint_polls; /* slow-path safepoints taken */
    long gc_delta;            /* tracked allocations minus frees, not yet added to the collector's count */
    unsigned in_gc_callback;  /* running a finalizer or callback for the collector */
    frt_critical_section *cs_top; /* innermost critical section (critical_section.c) */
    /* Hot objects (brc/hot.c): our counts, by object index (frt__hot_slot
     * in <frt/object.h>: written only by this thread, with relaxed loads
     * and stores; read by others under the hot lock or with the world
     * stopped, and zeroed then); hot_cap is 0 until the first hot
     * operation, and again once detach folded them. The thread's
     * frt__hot_tls mirrors both for the inline paths. hot_open says whether
     * a hot operation may (re)grow the array. */
    _Atomic(frt__hot_slot *) hot;
    _Atomic uint32_t hot_cap;
    int hot_open;
    void *hot_mem;            /* the allocation hot points into (cache-line aligned) */
    struct frt_tstate *hot_next, *hot_prev; /* states with an array (hot lock) */
    /* Adaptive promotion (brc/hot_adaptive.c): the object sampled last,
     * and how many samples in a row found it. */
    frt_object *hot_seen;
    uint32_t hot_streak;
    /* Our last references to objects another thread owns, in a chunk that
     * goes to that owner's queue whole (brc/drop_batch.c): read and written
     * by this thread only (by fork's take-over, for a vanished one). */
    frt_objq_chunk *drops;
    uintptr_t drops_owner;
    struct frt_tstate *drops_to; /* drops_owner's state when the batch began; NULL: gone */
} frt_tstate;

#if defined(__GNUC__)
extern __thread frt_tstate *frt__tls_state __attribute__((tls_model("initial-exec")));
#else
extern _Thread_local frt_tstate *frt__tls_state;
#endif

static inline frt_tstate *frt__tstate(void)
{
    return frt__tls_state;
}

static inline uint32_t frt_ts_state(uint32_t w)
{
    return w & FRT_TS_STATE;
}

/* Drops waiting in ts's batch (brc/drop_batch.c): they must reach their
 * owner's queue before ts stops being ATTACHED (parked, blocked, detached),
 * so that a stopped world hides none. */
static inline int frt__tstate_has_drops(const frt_tstate *ts)
{
    return ts->drops && ts->drops->n;
}

/* The thread state that owns tid, or NULL if that thread has gone. */
frt_tstate *frt__tstate_of_tid(uintptr_t tid);

/* Set pending work bits on another thread (MERGE, TRIM, GC). */
static inline void frt__tstate_request(frt_tstate *ts, uint32_t bits)
{
    atomic_fetch_or_explicit(&ts->word, bits, memory_order_seq_cst);
}

void frt__safepoint_slow(frt_tstate *ts);
/* Park while a stop is requested (critical sections suspended meanwhile),
 * and do nothing else: for long runs of work that must not take on a
 * safepoint's other business (a chain of frees in the middle of a dealloc
 * loop, re-attaching after a wait), but must not hold a stop up. */
void frt__safepoint_park(frt_tstate *ts);
static inline void frt__safepoint_park_poll(frt_tstate *ts)
{
    if (FRT_UNLIKELY(atomic_load_explicit(&ts->word, memory_order_relaxed) & FRT_TS_STOP))
        frt__safepoint_park(ts);
}
void frt__leave_blocked(frt_tstate *ts);
void frt__enter_blocked(frt_tstate *ts); /* ATTACHED -> BLOCKED, queue merged first */
static inline void frt__safepoint_poll(frt_tstate *ts)
{
    if (FRT_UNLIKELY(atomic_load_explicit(&ts->word, memory_order_relaxed) & FRT_TS_PENDING))
        frt__safepoint_slow(ts);
}

/* A wait inside the runtime (a contended frt_mutex): the thread counts as
 * blocked and its critical sections are suspended, with none of
 * frt_blocking_begin's other business (no merge, no destructor runs).
 * ts may be NULL (a thread that is not attached). Pass the token that
 * wait_begin returned to wait_end. */
int frt__wait_begin(frt_tstate *ts);
void frt__wait_end(frt_tstate *ts, int token);

/* Critical sections (critical_section.c): unlock every active one (1 if
 * there was one), and re-lock the innermost one if it is suspended. */
int frt__cs_suspend_all(frt_tstate *ts);
void frt__cs_resume(frt_tstate *ts);

/* Helpers (brc/merge_queue.c): become one for a BLOCKED owner, or fail. */
int frt__tstate_help_begin(frt_tstate *owner);
void frt__tstate_help_end(frt_tstate *owner);

/* Registry lifecycle (runtime/tstate.c). */
int frt__tstate_init(void);
void frt__tstate_fini(void);
int frt__tstate_attach(void);
void frt__tstate_detach(void);

/* Wake a thread that may sleep on its word. */
void frt__tstate_wake(frt_tstate *ts);

/* Iterate registered thread states; only while holding the threads lock
 * (frt_stop_the_world holds it for the whole stop). */
frt_tstate *frt__tstate_first(void);

#endif
