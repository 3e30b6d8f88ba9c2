/* Error codes. Functions that can fail return 0 or a negative FRT_E* code;
 * allocating functions return NULL. */
#ifndef FRT_ERRORS_H
#define FRT_ERRORS_H

#include <frt/config.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
    FRT_OK = 0,
    FRT_ENOMEM = -1,   /* the OS refused memory (or a fault was injected) */
    FRT_EINVAL = -2,   /* a bad argument: NULL, out of range, wrong type */
    FRT_ESTATE = -3,   /* the call is not allowed in the current state */
    FRT_EALREADY = -4, /* already done: a second init, attach, ... */
    FRT_EBUSY = -5     /* the resource is in use (e.g. threads still attached) */
};

/* A short, static description of code ("FRT_ENOMEM: out of memory"). */
FRT_API const char *frt_strerror(int code);

#ifdef __cplusplus
}
#endif
#endif
