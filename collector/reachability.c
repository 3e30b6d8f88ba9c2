/* Trial deletion (Bacon and Rajan; CPython's update_refs / subtract_refs /
 * move_unreachable) over a work set, with the world stopped.
 *
 * Each member starts with its true count; every reference from another
 * member is subtracted; what is left is references from outside the set
 * (other generations, thread stacks, globals). Members with some outside
 * reference are reachable, and so is everything they reach; the rest is
 * garbage. References from older generations count as outside, so no write
 * barrier is needed. */
#include "gc_internal.h"
#include "../runtime/debug.h"
#include "../runtime/os.h"

#include <string.h>

static int grow(void **p, size_t elem, size_t cap)
{
    void *q = frt__sys_realloc(*p, elem * cap);
    if (!q)
        return -1;
    *p = q;
    return 0;
}

static inline size_t index_of(frt_object *o)
{
    return (size_t)atomic_load_explicit(&o->ob_tid, memory_order_relaxed);
}

int frt__gc_work_add(gc_work *w, frt_object *o)
{
    if (w->failed)
        return -1;
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 1024;
        if (grow((void **)&w->obj, sizeof *w->obj, cap) || grow((void **)&w->refs, sizeof *w->refs, cap) ||
            grow((void **)&w->tid, sizeof *w->tid, cap) || grow((void **)&w->state, 1, cap)) {
            w->failed = 1;
            return -1;
        }
        w->cap = cap;
    }
    size_t i = w->n++;
    w->obj[i] = o;
    w->refs[i] = frt__gc_refcount(o) + w->extra;
    w->tid[i] = atomic_load_explicit(&o->ob_tid, memory_order_relaxed);
    w->state[i] = 0;
    atomic_store_explicit(&o->ob_tid, (uintptr_t)i, memory_order_relaxed);
    o->ob_gc_bits |= FRT_GC_COLLECTING;
    return 0;
}

void frt__gc_work_restore(gc_work *w)
{
    for (size_t i = 0; i < w->n; i++) {
        frt_object *o = w->obj[i];
        atomic_store_explicit(&o->ob_tid, w->tid[i], memory_order_relaxed);
        o->ob_gc_bits &= (uint8_t)~FRT_GC_COLLECTING;
    }
}

void frt__gc_work_free(gc_work *w)
{
    frt__sys_free(w->obj);
    frt__sys_free(w->refs);
    frt__sys_free(w->tid);
    frt__sys_free(w->state);
    frt__sys_free(w->stack);
    memset(w, 0, sizeof *w);
}

static int visit_subtract(frt_object *ref, void *arg)
{
    if (ref && (ref->ob_gc_bits & FRT_GC_COLLECTING))
        ((gc_work *)arg)->refs[index_of(ref)]--;
    return 0;
}

static int push(gc_work *w, size_t i)
{
    if (w->sp == w->stack_cap) {
        size_t cap = w->stack_cap ? w->stack_cap * 2 : 1024;
        if (grow((void **)&w->stack, sizeof *w->stack, cap))
            return -1;
        w->stack_cap = cap;
    }
    w->stack[w->sp++] = i;
    return 0;
}

static int visit_mark(frt_object *ref, void *arg)
{
    gc_work *w = arg;
    if (ref && (ref->ob_gc_bits & FRT_GC_COLLECTING)) {
        size_t j = index_of(ref);
        if (!w->state[j]) {
            w->state[j] = 1;
            if (push(w, j))
                w->failed = 1;
        }
    }
    return 0;
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
    for (size_t i = 0; i < w->n; i++) {
        frt_object *o = w->obj[i];
#if FRT_DEBUG
        check_traverse(o);
#endif
        o->ob_type->traverse(o, visit_subtract, w);
    }
    w->sp = 0;
    for (size_t i = 0; i < w->n; i++) {
        if (w->refs[i] < 0)
            frt__misuse(w->obj[i], "traverse reported more references than the object's count");
        if (w->refs[i] > 0 && !w->state[i]) {
            w->state[i] = 1;
            if (push(w, i))
                return -1;
        }
        while (w->sp) {
            frt_object *o = w->obj[w->stack[--w->sp]];
            o->ob_type->traverse(o, visit_mark, w);
            if (w->failed)
                return -1;
        }
    }
    return 0;
}
