/* Trial deletion (Bacon and Rajan; CPython's update_refs / subtract_refs /
 * move_unreachable) over a work set, with the world stopped.
 *
 * Each member starts with its true count; every reference from another
 * member is subtracted; what is left is references from outside the set
 * (other generations, thread stacks, globals). Members with some outside
 * reference are reachable, and so is everything they reach; the rest is
 * garbage. References from older generations count as outside, so no write
 * barrier is needed.
 *
 * Speed: a member's trial state lives in its own ob_tid (gc_internal.h), so
 * a visit costs one access to the referent's header. On a heap larger than
 * the caches that access is a miss to a random address, and the two passes
 * that visit referents (subtract, mark) would wait for one miss at a time:
 * instead each visit prefetches the referent and parks it in a small ring,
 * and is done with the referent that was parked RING_DEPTH visits earlier,
 * whose line has arrived meanwhile. Neither pass depends on the order in
 * which referents are handled (subtracting commutes; marking is a work
 * list), so the delay changes nothing but the number of misses in flight. */
#include "gc_internal.h"
#include "../runtime/debug.h"
#include "../runtime/os.h"

#include <string.h>

/* Misses in flight per pass. Deep enough to cover a DRAM miss at a few ns
 * of work per visit, small enough to stay in L1. A power of two. */
#define RING_DEPTH 32
/* Below this many members the set and what it touches mostly sit in the
 * caches, the ring's bookkeeping costs more than it hides (a young run
 * measured 10-20% slower with it), and visits are handled at once. */
#define RING_MIN_MEMBERS 16384
/* How far ahead of the sequential passes the member headers are fetched. */
#define AHEAD 8

static int grow(void **p, size_t elem, size_t cap)
{
    void *q = frt__sys_realloc(*p, elem * cap);
    if (!q)
        return -1;
    *p = q;
    return 0;
}

int frt__gc_work_reserve(gc_work *w, size_t k)
{
    if (w->failed)
        return -1;
    if (w->cap - w->n >= k)
        return 0;
    if (k > FRT_GCW_MAX_MEMBERS - w->n) {
        w->failed = 1;
        return -1;
    }
    size_t cap = w->cap ? w->cap : 1024;
    while (cap - w->n < k)
        cap *= 2;
    if (cap > FRT_GCW_MAX_MEMBERS)
        cap = FRT_GCW_MAX_MEMBERS;
    /* The arrays only ever grow together, so a failure part-way leaves the
     * grown ones larger than cap, which is harmless. */
    if (grow((void **)&w->obj, sizeof *w->obj, cap) || grow((void **)&w->tid, sizeof *w->tid, cap) ||
        grow((void **)&w->state, 1, cap) || (w->big && grow((void **)&w->big, sizeof *w->big, cap))) {
        w->failed = 1;
        return -1;
    }
    w->cap = cap;
    return 0;
}

/* A count that does not fit in ob_tid's field (an immortal object, or more
 * than 2^29 references): it is kept exactly in big[], found by the index. */
void frt__gc_work_add_pinned(gc_work *w, frt_object *o, intptr_t refs)
{
    if (!w->big) {
        if (grow((void **)&w->big, sizeof *w->big, w->cap)) {
            w->failed = 1;
            return;
        }
    }
    size_t i = w->n++;
    w->obj[i] = o;
    w->tid[i] = atomic_load_explicit(&o->ob_tid, memory_order_relaxed);
    w->big[i] = refs;
    atomic_store_explicit(&o->ob_tid, FRT_GCW_PINNED | (uintptr_t)i, memory_order_relaxed);
    o->ob_gc_bits |= FRT_GC_COLLECTING;
}

int frt__gc_work_add(gc_work *w, frt_object *o)
{
    if (frt__gc_work_reserve(w, 1))
        return -1;
    frt__gc_work_add_reserved(w, o, frt__gc_refcount(o));
    return w->failed ? -1 : 0;
}

void frt__gc_work_restore(gc_work *w)
{
    if (w->restored)
        return;
    for (size_t i = 0; i < w->n; i++) {
        frt_object *o = w->obj[i];
        atomic_store_explicit(&o->ob_tid, w->tid[i], memory_order_relaxed);
        o->ob_gc_bits &= (uint8_t)~FRT_GC_COLLECTING;
    }
    w->restored = 1;
}

void frt__gc_work_free(gc_work *w)
{
    frt__sys_free(w->obj);
    frt__sys_free(w->tid);
    frt__sys_free(w->state);
    frt__sys_free(w->big);
    frt__sys_free(w->stack);
    memset(w, 0, sizeof *w);
}

/* One pass's visitor state: the work set and a FIFO of parked referents,
 * ring[tail..head) (indices wrap), at most RING_DEPTH of them. */
typedef struct scan {
    gc_work *w;
    unsigned head, tail;
    frt_object *ring[RING_DEPTH];
} scan;

static inline uintptr_t tid_of(frt_object *o)
{
    return atomic_load_explicit(&o->ob_tid, memory_order_relaxed);
}

static inline void set_tid(frt_object *o, uintptr_t t)
{
    atomic_store_explicit(&o->ob_tid, t, memory_order_relaxed);
}

static inline intptr_t refs_of(const gc_work *w, uintptr_t t)
{
    if (FRT_UNLIKELY(t & FRT_GCW_PINNED))
        return w->big[t & FRT_GCW_INDEX_MASK];
    return (intptr_t)t >> FRT_GCW_REFS_SHIFT;
}

/* Park ref; once the ring is full, hand back the oldest parked referent
 * (whose header has had RING_DEPTH visits' time to arrive), else NULL.
 * whole: the referent may be traversed next (marking), so fetch the line
 * holding the end of its header and its first fields too; ob_gc_bits and
 * ob_tid share the first 16 bytes, ob_type may sit on the next line. */
static inline frt_object *park(scan *s, frt_object *ref, int whole)
{
    __builtin_prefetch(ref, 1, 3);
    if (whole)
        __builtin_prefetch((char *)ref + sizeof(frt_object), 0, 3);
    frt_object *old = NULL;
    if (s->head - s->tail == RING_DEPTH)
        old = s->ring[s->tail++ & (RING_DEPTH - 1)];
    s->ring[s->head++ & (RING_DEPTH - 1)] = ref;
    return old;
}

static inline frt_object *unpark(scan *s)
{
    return s->tail == s->head ? NULL : s->ring[s->tail++ & (RING_DEPTH - 1)];
}

static inline void subtract_one(gc_work *w, frt_object *o)
{
    if (!(o->ob_gc_bits & FRT_GC_COLLECTING))
        return;
    uintptr_t t = tid_of(o);
    if (FRT_LIKELY(!(t & FRT_GCW_PINNED)))
        set_tid(o, t - FRT_GCW_REF_ONE);
    else
        w->big[t & FRT_GCW_INDEX_MASK]--;
}

static int visit_subtract(frt_object *ref, void *arg)
{
    if (ref) {
        scan *s = arg;
        frt_object *old = park(s, ref, 0);
        if (old)
            subtract_one(s->w, old);
    }
    return 0;
}

static int visit_subtract_now(frt_object *ref, void *arg)
{
    if (ref)
        subtract_one(arg, ref);
    return 0;
}

static inline int push(gc_work *w, frt_object *o)
{
    if (FRT_UNLIKELY(w->sp == w->stack_cap)) {
        size_t cap = w->stack_cap ? w->stack_cap * 2 : 1024;
        if (grow((void **)&w->stack, sizeof *w->stack, cap)) {
            w->failed = 1;
            return -1;
        }
        w->stack_cap = cap;
    }
    w->stack[w->sp++] = o;
    return 0;
}

static inline void mark_one(gc_work *w, frt_object *o)
{
    if (!(o->ob_gc_bits & FRT_GC_COLLECTING))
        return;
    uintptr_t t = tid_of(o);
    if (!(t & FRT_GCW_REACHABLE)) {
        set_tid(o, t | FRT_GCW_REACHABLE);
        push(w, o);
    }
}

static int visit_mark(frt_object *ref, void *arg)
{
    if (ref) {
        scan *s = arg;
        frt_object *old = park(s, ref, 1);
        if (old)
            mark_one(s->w, old);
    }
    return 0;
}

static int visit_mark_now(frt_object *ref, void *arg)
{
    if (ref)
        mark_one(arg, ref);
    return 0;
}

/* Traverse what is on the stack and all it reaches, until the stack and the
 * ring are both empty. Parked referents are taken one at a time when the
 * stack runs dry, so the ring stays full while there is work. */
static int mark_all(scan *s, int deep)
{
    gc_work *w = s->w;
    frt_visit_fn visit = deep ? visit_mark : visit_mark_now;
    void *arg = deep ? (void *)s : (void *)w;
    for (;;) {
        while (w->sp) {
            frt_object *o = w->stack[--w->sp];
            o->ob_type->traverse(o, visit, arg);
        }
        if (FRT_UNLIKELY(w->failed))
            return -1;
        frt_object *o = unpark(s);
        if (!o)
            return 0;
        mark_one(w, o);
    }
}

#if FRT_DEBUG
/* A traverse must report the same references every time it is called in
 * one collection; a debug build checks by traversing twice. */
typedef struct {
    uintptr_t sum, n;
} visit_sig;

static int visit_sign(frt_object *ref, void *arg)
{
    visit_sig *s = arg;
    s->sum += (uintptr_t)ref * 0x9e3779b97f4a7c15u;
    s->n++;
    return 0;
}

static void check_traverse(frt_object *o)
{
    visit_sig a = {0, 0}, b = {0, 0};
    o->ob_type->traverse(o, visit_sign, &a);
    o->ob_type->traverse(o, visit_sign, &b);
    if (a.sum != b.sum || a.n != b.n)
        frt__misuse(o, "traverse reported different references on two calls");
}
#endif

int frt__gc_find_reachable(gc_work *w)
{
    size_t n = w->n;
    frt_object **obj = w->obj;
    scan s;
    memset(&s, 0, sizeof s);
    s.w = w;
    int deep = n >= RING_MIN_MEMBERS;
    frt_visit_fn visit = deep ? visit_subtract : visit_subtract_now;
    void *arg = deep ? (void *)&s : (void *)w;

    /* Subtract the references members hold to each other. */
    for (size_t i = 0; i < n; i++) {
        frt_object *o = obj[i];
        if (deep && i + AHEAD < n)
            __builtin_prefetch(obj[i + AHEAD], 0, 3);
#if FRT_DEBUG
        check_traverse(o);
#endif
        o->ob_type->traverse(o, visit, arg);
    }
    for (frt_object *o; (o = unpark(&s)) != NULL;)
        subtract_one(w, o);

    /* Members still counted from outside are reachable, with all they reach. */
    w->sp = 0;
    for (size_t i = 0; i < n; i++) {
        frt_object *o = obj[i];
        if (deep && i + AHEAD < n)
            __builtin_prefetch(obj[i + AHEAD], 1, 3);
        uintptr_t t = tid_of(o);
        intptr_t refs = refs_of(w, t);
        if (FRT_UNLIKELY(refs < 0))
            frt__misuse(o, "traverse reported more references than the object's count");
        if (refs > 0 && !(t & FRT_GCW_REACHABLE)) {
            set_tid(o, t | FRT_GCW_REACHABLE);
            if (push(w, o) || mark_all(&s, deep))
                return -1;
        }
    }

    /* Read the verdicts and put every member back as it was. */
    uint8_t *state = w->state;
    uintptr_t *tid = w->tid;
    for (size_t i = 0; i < n; i++) {
        frt_object *o = obj[i];
        if (deep && i + AHEAD < n)
            __builtin_prefetch(obj[i + AHEAD], 1, 3);
        state[i] = (tid_of(o) & FRT_GCW_REACHABLE) != 0;
        set_tid(o, tid[i]);
        o->ob_gc_bits &= (uint8_t)~FRT_GC_COLLECTING;
    }
    w->restored = 1;
    return 0;
}
