#include <frt/errors.h>

const char *frt_strerror(int code)
{
    switch (code) {
    case FRT_OK:
        return "FRT_OK: success";
    case FRT_ENOMEM:
        return "FRT_ENOMEM: out of memory";
    case FRT_EINVAL:
        return "FRT_EINVAL: invalid argument";
    case FRT_ESTATE:
        return "FRT_ESTATE: not allowed in the current state";
    case FRT_EALREADY:
        return "FRT_EALREADY: already done";
    case FRT_EBUSY:
        return "FRT_EBUSY: resource busy";
    default:
        return code > 0 ? "frt: not an error code (a count?)" : "frt: unknown error code";
    }
}
