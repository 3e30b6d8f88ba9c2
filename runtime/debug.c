/* One-line misuse reports. */
#include <stdio.h>
#include <stdlib.h>

#include "debug.h"
#include "tstate.h"

static void report(const frt_object *o, const char *what)
{
    const char *attached = frt__tstate() ? "" : "unattached:";
    unsigned long self = (unsigned long)frt__thread_id();
    if (!o) {
        fprintf(stderr, "frt: misuse: %s (thread %s%lu)\n", what, attached, self);
    } else {
        /* Read what a freed block still says: the type slot is NULL there. */
        const frt_type *t = o->ob_type;
        uintptr_t owner = atomic_load_explicit(&((frt_object *)o)->ob_tid, memory_order_relaxed);
        fprintf(stderr, "frt: misuse: %s: object %p type '%s' owner %lu (thread %s%lu)\n", what,
                (const void *)o, t ? (t->name ? t->name : "?") : "<freed>", (unsigned long)owner,
                attached, self);
    }
    fflush(stderr);
}

void frt__misuse(const frt_object *o, const char *what)
{
#if FRT_DEBUG
    report(o, what);
    abort();
#else
    (void)o;
    (void)what;
#endif
}

_Noreturn void frt__fatal(const frt_object *o, const char *what)
{
    report(o, what);
    abort();
}
