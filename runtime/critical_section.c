/* Per-object critical sections (<frt/lock.h>): a stack of sections per
 * thread, suspended whenever the thread waits and resumed innermost first.
 *
 * Invariant: the active sections are the innermost ones, a prefix of the
 * stack (a wait suspends them all, a resume re-locks only the innermost,
 * and ending a section resumes the next). While the thread runs user code
 * its innermost section is active. A section being locked has obj[] NULL,
 * so a wait in the middle of locking it unlocks nothing of it; what it has
 * locked so far stays held, which cannot deadlock because a two-object
 * section locks in address order and every other lock a waiting thread
 * held through a section is released. docs/design.md has the argument. */
#include "debug.h"
#include "runtime.h"

static frt_mutex *mutex_of(frt_object *o)
{
    return &o->ob_mutex;
}

static void unlock_objs(frt_object *a, frt_object *b)
{
    if (b)
        frt__mutex_unlock_fast(mutex_of(b));
    if (a)
        frt__mutex_unlock_fast(mutex_of(a));
}

/* Lock a then b (a < b, b may be NULL) into cs, which is on top of the
 * stack with obj[] NULL; a_held: the caller locked a already. */
static void lock_into(frt_critical_section *cs, frt_object *a, frt_object *b, int a_held)
{
    if (!a_held)
        frt__mutex_lock_fast(mutex_of(a));
    if (b)
        frt__mutex_lock_fast(mutex_of(b));
    cs->obj[0] = a;
    cs->obj[1] = b;
    cs->active = 1;
}

int frt__cs_suspend_all(frt_tstate *ts)
{
    int any = 0;
    for (frt_critical_section *cs = ts ? ts->cs_top : NULL; cs && cs->active; cs = cs->prev) {
        unlock_objs(cs->obj[0], cs->obj[1]);
        cs->active = 0;
        any = 1;
    }
    return any;
}

void frt__cs_resume(frt_tstate *ts)
{
    frt_critical_section *cs = ts ? ts->cs_top : NULL;
    if (!cs || cs->active)
        return;
    frt_object *a = cs->obj[0], *b = cs->obj[1];
    /* A wait while re-locking finds nothing of cs to unlock; a resume
     * nested in that wait finds nothing to lock and just marks it active. */
    cs->obj[0] = cs->obj[1] = NULL;
    if (a)
        lock_into(cs, a, b, 0);
    else
        cs->active = 1;
}

static int held_by_top(frt_tstate *ts, frt_object *a, frt_object *b)
{
    frt_critical_section *top = ts->cs_top;
    if (!top || !top->active)
        return 0;
    int has_a = top->obj[0] == a || top->obj[1] == a;
    int has_b = !b || top->obj[0] == b || top->obj[1] == b;
    return has_a && has_b;
}

static int begin(frt_critical_section *cs, frt_object *a, frt_object *b)
{
    cs->pushed = 0;
    frt_tstate *ts = frt__tstate();
    if (FRT_UNLIKELY(!a || !ts)) {
        FRT_MISUSE(a, a ? "critical section begun by a thread that is not attached"
                        : "critical section on NULL");
        return a ? FRT_ESTATE : FRT_EINVAL;
    }
    FRT_CHECK_LIVE(a, "critical section");
    FRT_CHECK_LIVE(b, "critical section");
    if (FRT_DEBUG && frt_ts_state(atomic_load_explicit(&ts->word, memory_order_relaxed)) != FRT_TS_ATTACHED)
        frt__misuse(a, "critical section begun inside frt_blocking_begin/end");
    if (b == a)
        b = NULL;
    if (b && (uintptr_t)b < (uintptr_t)a) {
        frt_object *t = a;
        a = b;
        b = t;
    }
    if (held_by_top(ts, a, b))
        return 0; /* nothing to lock, nothing to end */
    cs->prev = ts->cs_top;
    cs->pushed = 1;
    int a_held = frt__mutex_trylock_fast(mutex_of(a));
    if (FRT_LIKELY(a_held && (!b || frt__mutex_trylock_fast(mutex_of(b))))) {
        cs->obj[0] = a;
        cs->obj[1] = b;
        cs->active = 1;
        ts->cs_top = cs;
        return 0;
    }
    /* Contended: on the stack first, so the wait suspends the outer
     * sections (one of which may hold what we want). */
    cs->obj[0] = cs->obj[1] = NULL;
    cs->active = 1;
    ts->cs_top = cs;
    lock_into(cs, a, b, a_held);
    return 0;
}

int frt_critical_section_begin(frt_critical_section *cs, frt_object *o)
{
    if (!cs)
        return FRT_EINVAL;
    return begin(cs, o, NULL);
}

int frt_critical_section_begin2(frt_critical_section *cs, frt_object *a, frt_object *b)
{
    if (!cs)
        return FRT_EINVAL;
    if (!b) {
        cs->pushed = 0;
        FRT_MISUSE(a, "critical section on NULL");
        return FRT_EINVAL;
    }
    return begin(cs, a, b);
}

void frt_critical_section_end(frt_critical_section *cs)
{
    if (!cs || !cs->pushed)
        return;
    frt_tstate *ts = frt__tstate();
    if (FRT_UNLIKELY(!ts || ts->cs_top != cs)) {
        frt__misuse(cs->obj[0], ts ? "critical sections ended out of order"
                                   : "critical section ended by a thread that is not attached");
        return;
    }
    unlock_objs(cs->obj[0], cs->obj[1]);
    cs->pushed = 0;
    ts->cs_top = cs->prev;
    if (FRT_UNLIKELY(cs->prev && !cs->prev->active))
        frt__cs_resume(ts);
}
