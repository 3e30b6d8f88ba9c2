/* The garbage list (Python's gc.garbage): unreachable objects kept by
 * DEBUG_SAVEALL, each holding one reference of the list's. */
#include "gc_internal.h"
#include "../runtime/os.h"

int frt__gc_garbage_append(frt_object *o)
{
    pthread_mutex_lock(&frt__gc.lock);
    if (frt__gc.ngarbage == frt__gc.garbage_cap) {
        size_t cap = frt__gc.garbage_cap ? frt__gc.garbage_cap * 2 : 64;
        frt_object **g = frt__sys_realloc(frt__gc.garbage, cap * sizeof *g);
        if (!g) {
            pthread_mutex_unlock(&frt__gc.lock);
            frt_decref(o); /* cannot keep it: it stays a cycle, found again next time */
            return FRT_ENOMEM;
        }
        frt__gc.garbage = g;
        frt__gc.garbage_cap = cap;
    }
    frt__gc.garbage[frt__gc.ngarbage++] = o;
    pthread_mutex_unlock(&frt__gc.lock);
    return 0;
}

size_t frt_gc_garbage_count(void)
{
    pthread_mutex_lock(&frt__gc.lock);
    size_t n = frt__gc.ngarbage;
    pthread_mutex_unlock(&frt__gc.lock);
    return n;
}

frt_object *frt_gc_garbage_get(size_t i)
{
    frt_object *o = NULL;
    pthread_mutex_lock(&frt__gc.lock);
    if (i < frt__gc.ngarbage) {
        o = frt__gc.garbage[i];
        frt_incref(o);
    }
    pthread_mutex_unlock(&frt__gc.lock);
    return o;
}

void frt_gc_garbage_clear(void)
{
    pthread_mutex_lock(&frt__gc.lock);
    frt_object **g = frt__gc.garbage;
    size_t n = frt__gc.ngarbage;
    frt__gc.garbage = NULL;
    frt__gc.ngarbage = frt__gc.garbage_cap = 0;
    pthread_mutex_unlock(&frt__gc.lock);
    /* Outside the lock: dropping references runs destroy callbacks. */
    for (size_t i = 0; i < n; i++)
        frt_decref(g[i]);
    frt__sys_free(g);
}
