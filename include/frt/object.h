/* Objects, types and biased reference counting.
 *
 * The fast paths are inline: the owner thread of an object counts on
 * ob_ref_local with plain loads and stores (relaxed atomics compile to plain
 * moves, and keep ThreadSanitizer informed); every other thread counts on
 * ob_ref_shared with atomic read-modify-writes. The slow paths live in brc/.
 * docs/design.md describes the header and every state transition. */
#ifndef FRT_OBJECT_H
#define FRT_OBJECT_H

#include <frt/config.h>
#include <frt/lock.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct frt_object frt_object;
typedef struct frt_type frt_type;

/* The object header: 32 bytes, the size of CPython's free-threaded header.
 * User structs embed it first. Fields are documented for debuggers and for
 * the inline fast paths below; programs must not write them directly. */
struct frt_object {
    _Atomic uintptr_t ob_tid;       /* owner thread id; 0 once merged (no owner); FRT_TID_HOT */
    _Atomic uint32_t ob_ref_local;  /* owner's count; FRT_REF_HOT + index; UINT32_MAX immortal */
    _Atomic uint8_t ob_flags;       /* FRT_OF_* below */
    frt_mutex ob_mutex;             /* critical sections on this object (<frt/lock.h>) */
    uint8_t ob_gc_bits;             /* collector-private */
    uint8_t ob_gen;                 /* collector generation */
    _Atomic intptr_t ob_ref_shared; /* (count << 2) | state (FRT_REF_*) */
    const frt_type *ob_type;        /* NULL in a free block */
};

/* ob_ref_shared: the low two bits are the BRC state, the rest a signed count
 * that may go negative while the owner still holds local references. The
 * states are CPython's (Include/internal/pycore_object.h): one value each,
 * never combined, so compare the masked bits with ==, never test a bit. */
#define FRT_REF_SHARED_SHIFT 2
#define FRT_REF_SHARED_ONE ((intptr_t)1 << FRT_REF_SHARED_SHIFT)
#define FRT_REF_MAYBE_WEAKREF ((intptr_t)1) /* owned; a weakref may try to incref it */
#define FRT_REF_QUEUED ((intptr_t)2)        /* owned; on the owner's merge queue */
#define FRT_REF_MERGED ((intptr_t)3)        /* no owner: the shared count is the count */
#define FRT_REF_FLAG_MASK ((intptr_t)3)
#define FRT_REF_STATE(shared) ((shared) & FRT_REF_FLAG_MASK)
#define FRT_REF_IMMORTAL UINT32_MAX

/* Hot objects (frt_make_hot) are counted per thread: ob_tid is FRT_TID_HOT,
 * which no thread pointer equals, so the owner test fails at no extra cost;
 * ob_ref_local is FRT_REF_HOT + the object's index in every thread's array
 * of counts; ob_ref_shared (MERGED) holds what is not in those arrays. The
 * non-owner paths below already compare ob_ref_local with a constant (to
 * skip immortal objects): comparing with FRT_REF_HOT instead sends both
 * immortal and hot objects off the ordinary path with the same one test.
 * An owner's count stays below FRT_REF_HOT (reaching it makes the object
 * immortal), so an owned object never looks hot. */
#define FRT_REF_HOT ((uint32_t)1 << 31)
#define FRT_TID_HOT ((uintptr_t)1)
/* ob_flags */
enum {
    FRT_OF_FINALIZED = 1u << 0,     /* type->finalize has run (PEP 442: at most once) */
    FRT_OF_MAYBE_WEAKREF = 1u << 1, /* a weak reference may exist */
    FRT_OF_LARGE = 1u << 2,         /* block mapped from the OS on its own */
    FRT_OF_HAS_FINALIZER = 1u << 3, /* an frt_finalizer is registered */
    FRT_OF_DEFER_FREE = 1u << 4,    /* stored in an frt_ref: its block is freed after a grace period */
    FRT_OF_HOT_AUTO = 1u << 5       /* made hot by the runtime, which may demote it */
};

typedef int (*frt_visit_fn)(frt_object *ref, void *arg); /* nonzero stops traversal */

struct frt_type {
    const char *name;
    size_t size; /* whole object, header included; at least sizeof(frt_object) */
    int (*traverse)(frt_object *self, frt_visit_fn visit, void *arg);
    void (*clear)(frt_object *self);
    void (*finalize)(frt_object *self);
    void (*destroy)(frt_object *self);
};

/* The calling thread's id as objects record it: the thread pointer, which
 * the OS gives every live thread uniquely (as CPython's _Py_ThreadId). One
 * register read, no TLS lookup, so the owner test costs the same through
 * libfrt.so as through libfrt.a. An exited thread's pointer goes to a later
 * thread, so detaching merges every object the thread still owns: no
 * object ever carries the id of a thread that is not attached as its owner,
 * and a thread that is not attached (or is detaching) takes the shared path
 * on every object. Not volatile: the compiler may keep it in a register
 * across a loop. Other targets use the address of a thread-local byte,
 * unique among live threads in the same way. */
#if defined(__GNUC__) && defined(__x86_64__)
static inline uintptr_t frt__thread_id(void)
{
    uintptr_t tid;
    __asm__("movq %%fs:0, %0" : "=r"(tid));
    return tid;
}
#elif defined(__GNUC__) && defined(__aarch64__)
static inline uintptr_t frt__thread_id(void)
{
    uintptr_t tid;
    __asm__("mrs %0, tpidr_el0" : "=r"(tid));
    return tid;
}
#else
FRT_API extern _Thread_local char frt__tls_anchor;
static inline uintptr_t frt__thread_id(void)
{
    return (uintptr_t)&frt__tls_anchor;
}
#endif

/* Allocation. Both return a zeroed object with refcount 1 owned by the
 * caller, or NULL (bad type, unattached thread, or out of memory). */
FRT_API frt_object *frt_new(const frt_type *type);
FRT_API frt_object *frt_new_var(const frt_type *type, size_t extra);
/* The same, but shared from birth: no owner, every count atomic, as after
 * frt_make_shared. For objects made to be handed to another thread, which
 * then drops them without queueing them back to their creator. */
FRT_API frt_object *frt_new_shared(const frt_type *type);
FRT_API frt_object *frt_new_shared_var(const frt_type *type, size_t extra);
FRT_API const frt_type *frt_typeof(const frt_object *o);

/* Hot objects' per-thread counts (brc/hot.c), reached by the inline paths
 * below in one thread-local access: the calling thread's array of counts,
 * indexed by a hot object's index, as the address its count for
 * ob_ref_local = 0 would have (base: the array's address less FRT_REF_HOT
 * counts) and the first ob_ref_local past its end (end: FRT_REF_HOT + its
 * length; 0 while the thread has no array, is not attached, or is
 * detaching: then the out-of-line call decides). So a hot object's
 * ob_ref_local is compared and scaled as it is, with no subtraction. A
 * slot counts the thread's increfs and its decrefs apart (the net count
 * is their difference, modulo 2^64): an operation is one load, one add of
 * 1 and one store on memory only this thread writes, an incref never
 * waits for the store of the decref before it, and a slot that is not
 * zero says the thread counted on the object since the last collection
 * (which folds the slots into the object's own count and zeroes them),
 * which is all adaptive demotion needs. Initial-exec TLS: one
 * %fs-relative load through libfrt.a, one more (the offset, from the GOT)
 * through libfrt.so. */
typedef struct frt__hot_slot {
    _Atomic uint64_t inc, dec;
} frt__hot_slot;
typedef struct frt__hot_counts {
    uintptr_t base;
    uint32_t end;
} frt__hot_counts;
#if defined(__GNUC__)
#define FRT__HOT_INLINE 1
FRT_API extern __thread frt__hot_counts frt__hot_tls __attribute__((tls_model("initial-exec")));
#else
#define FRT__HOT_INLINE 0
#endif

/* Slow paths of the inline functions below (brc/). */
FRT_API void frt__decref_shared(frt_object *o);
FRT_API void frt__decref_sampled(frt_object *o);
FRT_API void frt__decref_contended(frt_object *o);
FRT_API void frt__decref_merged_last(frt_object *o, intptr_t prev);
FRT_API void frt__merge_zero_local(frt_object *o);
FRT_API void frt__incref_checked(frt_object *o);
FRT_API void frt__decref_checked(frt_object *o);
FRT_API void frt__incref_overflow(frt_object *o);
FRT_API void frt__incref_hot(frt_object *o, uint32_t local);
FRT_API void frt__decref_hot(frt_object *o, uint32_t local);

/* A hot object's incref (dec 0) or decref (dec 1) on this thread. Only a
 * missing or too small array (or a non-GNU compiler) calls out. */
static inline void frt__hot_add(frt_object *o, uint32_t local, int dec)
{
#if FRT__HOT_INLINE
    if (FRT_LIKELY(local < frt__hot_tls.end)) {
        frt__hot_slot *s =
            (frt__hot_slot *)(frt__hot_tls.base + (uintptr_t)local * sizeof(frt__hot_slot));
        _Atomic uint64_t *c = dec ? &s->dec : &s->inc;
        atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
                              memory_order_relaxed);
        return;
    }
#endif
    if (dec)
        frt__decref_hot(o, local);
    else
        frt__incref_hot(o, local);
}

/* Adaptive promotion (brc/hot_adaptive.c) looks at every 256th non-owner
 * decref of a merged object on this thread: a countdown of the thread's own, one decrement of
 * a %fs-relative word (initial-exec: libfrt is loaded with the program). */
#if defined(__GNUC__)
FRT_API extern __thread int frt__hot_countdown __attribute__((tls_model("initial-exec")));
#else
FRT_API extern _Thread_local int frt__hot_countdown;
#endif

/* Ask for the cache line at p in the state a write needs (exclusive).
 * GCC and clang emit PREFETCHW for __builtin_prefetch(p, 1) on x86-64 only
 * with -mprfchw, and a plain read prefetch otherwise, so it is written out
 * there; x86-64 processors that predate the instruction run it as a NOP
 * (Windows has required it on x86-64 since 8.1). */
static inline void frt__prefetch_for_write(const void *p)
{
#if defined(__GNUC__) && defined(__x86_64__)
    __asm__("prefetchw %0" ::"m"(*(const char *)p));
#elif defined(__GNUC__)
    __builtin_prefetch(p, 1);
#else
    (void)p;
#endif
}

/* A non-owner's decref of an ordinary object (docs/design.md, BRC
 * transition 3): a merged object takes one fetch_sub, an owned one whose
 * shared count is positive one CAS, both inline; the last reference, a
 * count that must queue to the owner, a lost CAS and the sampled decref go
 * out of line. Adaptive promotion looks for contention where it is cheap
 * to see: a lost CAS is one, and a merged object, whose fetch_sub cannot
 * lose, is sampled every 256th decref instead (the countdown).
 *
 * The header line usually comes from the core of the thread that wrote it
 * last (the owner that made the object, handed it over and went on).
 * The ownership test's load brings it in shared, and the atomic below then
 * waits a second trip between the cores for the line in exclusive state:
 * the locked instruction stalls the thread for both, one object after
 * another. Asking for it exclusive as soon as the path is known to write
 * overlaps the two (frt-bench-alloc xthread, 32 and 64 bytes: about half
 * the time per object, docs/benchmarks.md); where the line is here
 * already, the prefetch costs one instruction. */
static inline void frt__decref_nonowner(frt_object *o)
{
    frt__prefetch_for_write(o);
    intptr_t shared = atomic_load_explicit(&o->ob_ref_shared, memory_order_relaxed);
    if (FRT_LIKELY(FRT_REF_STATE(shared) == FRT_REF_MERGED)) {
        if (FRT_UNLIKELY(--frt__hot_countdown < 0)) {
            frt__decref_sampled(o);
            return;
        }
        /* Merged is final while anyone holds a reference: no state to
         * keep, so no CAS. */
        intptr_t prev = atomic_fetch_sub_explicit(&o->ob_ref_shared, FRT_REF_SHARED_ONE,
                                                  memory_order_acq_rel);
        if (FRT_UNLIKELY(prev <= (FRT_REF_SHARED_ONE | FRT_REF_MERGED)))
            frt__decref_merged_last(o, prev);
    } else if (FRT_UNLIKELY(shared < FRT_REF_SHARED_ONE)) {
        frt__decref_shared(o);
    } else if (FRT_UNLIKELY(!atomic_compare_exchange_strong_explicit(
                   &o->ob_ref_shared, &shared, shared - FRT_REF_SHARED_ONE, memory_order_acq_rel,
                   memory_order_relaxed))) {
        frt__decref_contended(o);
    }
}

/* The fast paths proper; frt_incref/frt_decref add the misuse checks of a
 * debug build in front of them. */
/* Ownership is tested first: an immortal object has no owner (ob_tid 0),
 * so the owner's path needs no immortal test, and the shared path makes it.
 * An owner's count that reaches FRT_REF_HOT makes the object immortal
 * (no owner) at once, so an owned object never holds that value. */
static inline void frt__incref_fast(frt_object *o)
{
    if (FRT_LIKELY(atomic_load_explicit(&o->ob_tid, memory_order_relaxed) == frt__thread_id())) {
        uint32_t local = atomic_load_explicit(&o->ob_ref_local, memory_order_relaxed) + 1;
        atomic_store_explicit(&o->ob_ref_local, local, memory_order_relaxed);
        if (FRT_UNLIKELY(local == FRT_REF_HOT))
            frt__incref_overflow(o);
    } else {
        uint32_t local = atomic_load_explicit(&o->ob_ref_local, memory_order_relaxed);
        if (FRT_LIKELY(local < FRT_REF_HOT))
            atomic_fetch_add_explicit(&o->ob_ref_shared, FRT_REF_SHARED_ONE, memory_order_relaxed);
        else if (local != FRT_REF_IMMORTAL)
            frt__hot_add(o, local, 0);
    }
}

static inline void frt__decref_fast(frt_object *o)
{
    if (FRT_LIKELY(atomic_load_explicit(&o->ob_tid, memory_order_relaxed) == frt__thread_id())) {
        uint32_t local = atomic_load_explicit(&o->ob_ref_local, memory_order_relaxed) - 1;
        atomic_store_explicit(&o->ob_ref_local, local, memory_order_relaxed);
        if (FRT_UNLIKELY(local == 0))
            frt__merge_zero_local(o);
    } else {
        uint32_t local = atomic_load_explicit(&o->ob_ref_local, memory_order_relaxed);
        if (FRT_LIKELY(local < FRT_REF_HOT))
            frt__decref_nonowner(o);
        else if (local != FRT_REF_IMMORTAL)
            frt__hot_add(o, local, 1);
    }
}

static inline void frt_incref(frt_object *o)
{
#if FRT_DEBUG
    frt__incref_checked(o);
#else
    frt__incref_fast(o);
#endif
}

static inline void frt_decref(frt_object *o)
{
#if FRT_DEBUG
    frt__decref_checked(o);
#else
    frt__decref_fast(o);
#endif
}

static inline void frt_xincref(frt_object *o)
{
    if (o)
        frt_incref(o);
}

static inline void frt_xdecref(frt_object *o)
{
    if (o)
        frt_decref(o);
}

static inline frt_object *frt_newref(frt_object *o)
{
    frt_incref(o);
    return o;
}

/* Local + shared, like Py_REFCNT: exact when no other thread is counting. */
FRT_API size_t frt_refcount(const frt_object *o);

/* Immortal objects are never freed and ignore inc/decref on every thread. */
FRT_API void frt_set_immortal(frt_object *o);
FRT_API int frt_is_immortal(const frt_object *o);

/* Give up the owner's bias on o: its counts merge into the shared count and
 * every later inc/decref, on any thread, is atomic. Useful before handing an
 * object to another thread for good. FRT_ESTATE unless the caller owns o
 * (an object already shared returns FRT_EALREADY). */
FRT_API int frt_make_shared(frt_object *o);

/* Count o per thread from now on: every thread's incref and decref touch
 * only that thread's own counter (no atomic, no shared cache line), and o
 * is freed by the collector once the counts sum to zero: at the next
 * collection (automatic or frt_gc_collect), never later than the next full
 * one. For objects that every thread counts on. Stops the world once.
 * 0; FRT_EALREADY if o is hot or immortal; FRT_EINVAL for NULL; FRT_ESTATE
 * from a thread that is not attached; FRT_ENOMEM. docs/api.md has the rest. */
FRT_API int frt_make_hot(frt_object *o);
FRT_API int frt_is_hot(const frt_object *o);

/* 1 when the calling thread owns o (counts it without atomics). */
static inline int frt_is_owned(const frt_object *o)
{
    return atomic_load_explicit(&((frt_object *)o)->ob_tid, memory_order_relaxed) ==
           frt__thread_id();
}

#ifdef __cplusplus
}
#endif
#endif
