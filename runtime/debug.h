/* Misuse reports. A debug build (-DFRT_DEBUG=ON) aborts on a detected misuse
 * with one line on stderr naming the object, its type, its owner and what
 * was wrong; a release build returns an error code where it can and
 * otherwise carries on (docs/api.md lists what it cannot catch). */
#ifndef FRT_RUNTIME_DEBUG_H
#define FRT_RUNTIME_DEBUG_H

#include <frt/object.h>

#if defined(__GNUC__)
#define FRT_COLD __attribute__((cold, noinline))
#else
#define FRT_COLD
#endif

/* Prints "frt: misuse: <what>: object 0x.. type '..' owner .." and aborts
 * in a debug build; does nothing in a release build. */
FRT_COLD void frt__misuse(const frt_object *o, const char *what);

/* Same, but always aborts: for states from which no build can continue. */
FRT_COLD _Noreturn void frt__fatal(const frt_object *o, const char *what);

#define FRT_MISUSE(o, what) frt__misuse((o), (what))

/* At an API entry that takes an object: a debug build reports a freed one
 * (its block's type slot is NULL until the block is reused). */
#if FRT_DEBUG
#define FRT_CHECK_LIVE(o, fn)                                                                      \
    do {                                                                                           \
        if ((o) && !((const frt_object *)(o))->ob_type)                                            \
            frt__misuse((const frt_object *)(o), fn " of a freed object");                         \
    } while (0)
#else
#define FRT_CHECK_LIVE(o, fn) ((void)0)
#endif

#endif
