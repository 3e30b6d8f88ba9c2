/* A program outside the frt tree: found through the installed package. */
#include <frt/frt.h>
#include <stdio.h>

static const frt_type t = {"consumer.obj", sizeof(frt_object), NULL, NULL, NULL, NULL};

int main(void)
{
    if (frt_init(NULL) != 0)
        return 1;
    frt_object *o = frt_new(&t);
    int ok = o && frt_refcount(o) == 1;
    frt_decref(o);
    printf("frt %s: %s\n", FRT_VERSION, ok ? "ok" : "FAILED");
    return ok && frt_shutdown() == 0 ? 0 : 1;
}
