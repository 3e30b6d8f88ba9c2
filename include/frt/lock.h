/* Runtime-aware locks: a one-byte mutex and per-object critical sections.
 *
 * frt_mutex is one byte (a locked bit and a has-parked bit), so every object
 * header carries one (ob_mutex). An uncontended lock or unlock is one
 * compare-and-swap. A contended lock spins briefly, then parks the thread
 * in a parking lot keyed by the mutex's address; while parked the thread
 * counts as blocked, so a stop-the-world never waits for it. Taking a lock
 * never runs destructors, finalizers or callbacks.
 *
 * A critical section locks the mutex of one object (or of two) for the
 * calling thread. Each thread keeps a stack of its active sections: when
 * the thread would block (a contended lock, frt_blocking_begin, parking for
 * a stop-the-world) every active section is suspended (its mutexes
 * unlocked), and when it runs again the innermost one is re-locked (an
 * outer one when the inner ends). So nested sections on any objects in any
 * order cannot deadlock, and a section may be held across calls that take
 * other locks or block; the price is that an outer section's lock may be
 * released while an inner one waits (as in CPython's
 * Py_BEGIN_CRITICAL_SECTION). docs/api.md shows the patterns. */
#ifndef FRT_LOCK_H
#define FRT_LOCK_H

#include <frt/config.h>
#include <frt/errors.h>
#include <stdatomic.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct frt_object frt_object;

typedef struct frt_mutex {
    _Atomic uint8_t v; /* FRT_MUTEX_LOCKED | FRT_MUTEX_PARKED */
} frt_mutex;

#define FRT_MUTEX_INIT {0}
enum { FRT_MUTEX_LOCKED = 1u, FRT_MUTEX_PARKED = 2u };

/* Slow paths (runtime/mutex.c). */
FRT_API void frt__mutex_lock_slow(frt_mutex *m);
FRT_API int frt__mutex_unlock_slow(frt_mutex *m);
FRT_API int frt__mutex_lock_checked(frt_mutex *m);
FRT_API int frt__mutex_unlock_checked(frt_mutex *m);
FRT_API int frt__mutex_trylock_checked(frt_mutex *m);

static inline int frt__mutex_trylock_fast(frt_mutex *m)
{
    uint8_t v = 0;
    return atomic_compare_exchange_strong_explicit(&m->v, &v, FRT_MUTEX_LOCKED,
                                                   memory_order_acquire, memory_order_relaxed);
}

static inline void frt__mutex_lock_fast(frt_mutex *m)
{
    if (FRT_UNLIKELY(!frt__mutex_trylock_fast(m)))
        frt__mutex_lock_slow(m);
}

/* 0, or FRT_ESTATE when m was not locked. */
static inline int frt__mutex_unlock_fast(frt_mutex *m)
{
    uint8_t v = FRT_MUTEX_LOCKED;
    if (FRT_LIKELY(atomic_compare_exchange_strong_explicit(&m->v, &v, 0, memory_order_release,
                                                           memory_order_relaxed)))
        return 0;
    return frt__mutex_unlock_slow(m);
}

/* Lock m; 0, or FRT_EINVAL for NULL. Not recursive: a thread that locks a
 * mutex it holds directly waits for ever (one it holds through a critical
 * section is released by the wait, see above). Any thread may use a
 * standalone frt_mutex, attached or not. */
static inline int frt_mutex_lock(frt_mutex *m)
{
#if FRT_DEBUG
    return frt__mutex_lock_checked(m);
#else
    if (FRT_UNLIKELY(!m))
        return FRT_EINVAL;
    frt__mutex_lock_fast(m);
    return 0;
#endif
}

/* Unlock m; 0, FRT_EINVAL for NULL, FRT_ESTATE if m was not locked. The
 * debug build aborts when the calling thread does not hold m. */
static inline int frt_mutex_unlock(frt_mutex *m)
{
#if FRT_DEBUG
    return frt__mutex_unlock_checked(m);
#else
    if (FRT_UNLIKELY(!m))
        return FRT_EINVAL;
    return frt__mutex_unlock_fast(m);
#endif
}

/* 1 if this call locked m, 0 if it was locked already, FRT_EINVAL for NULL. */
static inline int frt_mutex_trylock(frt_mutex *m)
{
#if FRT_DEBUG
    return frt__mutex_trylock_checked(m);
#else
    if (FRT_UNLIKELY(!m))
        return FRT_EINVAL;
    return frt__mutex_trylock_fast(m);
#endif
}

/* 1 while some thread holds m (a snapshot, for assertions). */
static inline int frt_mutex_is_locked(const frt_mutex *m)
{
    return m && (atomic_load_explicit(&((frt_mutex *)m)->v, memory_order_relaxed) & FRT_MUTEX_LOCKED);
}

/* A critical section lives on the caller's stack between begin and end;
 * its fields are the runtime's. */
typedef struct frt_critical_section {
    struct frt_critical_section *prev; /* next outer section of this thread */
    frt_object *obj[2];                /* locked while active; NULL while being (re)locked */
    uint8_t active;                    /* obj[] locked (not suspended) */
    uint8_t pushed;                    /* on the thread's stack (0: nothing to end) */
} frt_critical_section;

/* Lock o's mutex for this thread until frt_critical_section_end(cs). If
 * the innermost active section already holds o, nothing is locked again.
 * 0, FRT_EINVAL (NULL), FRT_ESTATE (thread not attached; end is then a
 * no-op). The caller keeps o alive (holds a reference) until the end. */
FRT_API int frt_critical_section_begin(frt_critical_section *cs, frt_object *o);
/* Both objects' mutexes, locked in address order; a == b locks one. */
FRT_API int frt_critical_section_begin2(frt_critical_section *cs, frt_object *a, frt_object *b);
/* End the innermost section (debug build: abort on any other), and
 * re-lock the next outer one if a wait suspended it. */
FRT_API void frt_critical_section_end(frt_critical_section *cs);

/* FRT_BEGIN_CRITICAL_SECTION(o) ... FRT_END_CRITICAL_SECTION() open and close
 * a block; they nest. Leave the block only through the END (no return,
 * break or goto out of it). */
#if defined(__GNUC__)
#define FRT__CS_DECL                                                                               \
    _Pragma("GCC diagnostic push") _Pragma("GCC diagnostic ignored \"-Wshadow\"")                   \
        frt_critical_section frt__cs_;                                                             \
    _Pragma("GCC diagnostic pop")
#else
#define FRT__CS_DECL frt_critical_section frt__cs_;
#endif
#define FRT_BEGIN_CRITICAL_SECTION(o)                                                              \
    {                                                                                              \
        FRT__CS_DECL                                                                               \
        frt_critical_section_begin(&frt__cs_, (frt_object *)(o));
#define FRT_BEGIN_CRITICAL_SECTION2(a, b)                                                          \
    {                                                                                              \
        FRT__CS_DECL                                                                               \
        frt_critical_section_begin2(&frt__cs_, (frt_object *)(a), (frt_object *)(b));
#define FRT_END_CRITICAL_SECTION()                                                                 \
    frt_critical_section_end(&frt__cs_);                                                           \
    }

#ifdef __cplusplus
}
#endif
#endif
