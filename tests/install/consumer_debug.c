/* Linked against the installed frt_debug variant: counting on an object
 * from a thread that has detached must abort with frt's one-line misuse
 * report (its <frt/config.h> turns on the checked inline paths in this
 * program too; the plain library would carry on). */
#include <frt/frt.h>

static const frt_type t = {"consumer.obj", sizeof(frt_object), NULL, NULL, NULL, NULL};

int main(void)
{
    if (frt_init(NULL) != 0)
        return 1;
    frt_object *o = frt_new(&t);
    frt_thread_detach();
    frt_incref(o); /* not attached any more: the debug build aborts here */
    return 0;
}
