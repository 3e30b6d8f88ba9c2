/* gc.get_objects, get_referrers, get_referents, freeze and unfreeze. The
 * walks run with the world stopped; the references they hand out are taken
 * while it is. */
#include "gc_internal.h"
#include "../runtime/genmap.h"

typedef struct {
    frt_object **out;
    size_t cap, total;
    int gen;              /* -1: 0..2 */
    frt_object *target;   /* get_referrers */
    int hit;
} walk_ctx;

static void keep(walk_ctx *c, frt_object *o)
{
    if (c->total < c->cap) {
        frt_incref(o);
        c->out[c->total] = o;
    }
    c->total++;
}

static int tracked_in(frt_object *o, int gen)
{
    /* Garbage that a collection is about to clear is not handed out: the
     * caller would see it with its references gone. */
    if (!(o->ob_gc_bits & FRT_GC_TRACKED) || (o->ob_gc_bits & FRT_GC_UNREACHABLE) ||
        frt__gc_refcount(o) <= 0)
        return 0;
    return gen < 0 ? o->ob_gen <= 2 : o->ob_gen == gen;
}

/* A walk that hands out or counts objects stops the world and merges every
 * queue first, as a collection does: frt__gc_refcount is exact only then.
 * An object whose last reference waits in its owner's queue (a short queue
 * waits for a batch, and a stop parks its owner before it merges) is dead:
 * handing it out would bring it back, and freezing it would leave the
 * freeze count stale once its owner frees it. What the merge finds dead is
 * freed here once the world runs. */
static int stop_merged(frt_object **dead)
{
    *dead = NULL;
    if (frt_stop_the_world() != 0)
        return -1;
    frt__gc_merge_all_queues(dead);
    return 0;
}

static void start_and_free(frt_object *dead)
{
    frt_start_the_world();
    frt__brc_free_dead(dead);
}

static void objects_visit(void *block, size_t size, void *arg)
{
    (void)size;
    walk_ctx *c = arg;
    if (tracked_in(block, c->gen))
        keep(c, block);
}

size_t frt_gc_get_objects(int generation, frt_object **out, size_t cap)
{
    if (generation < -1 || generation > 2 || (cap && !out) || !frt__tstate())
        return 0;
    walk_ctx c = {out, cap, 0, generation, NULL, 0};
    frt_object *dead;
    if (stop_merged(&dead) != 0)
        return 0;
    frt__heaps_walk_objects(objects_visit, &c);
    start_and_free(dead);
    return c.total;
}

static int visit_is_target(frt_object *ref, void *arg)
{
    walk_ctx *c = arg;
    if (ref == c->target)
        c->hit = 1;
    return 0;
}

static void referrers_visit(void *block, size_t size, void *arg)
{
    (void)size;
    walk_ctx *c = arg;
    frt_object *o = block;
    if (!tracked_in(o, -1))
        return;
    c->hit = 0;
    o->ob_type->traverse(o, visit_is_target, c);
    if (c->hit)
        keep(c, o);
}

size_t frt_gc_get_referrers(frt_object *target, frt_object **out, size_t cap)
{
    if (!target || (cap && !out) || !frt__tstate())
        return 0;
    walk_ctx c = {out, cap, 0, -1, target, 0};
    frt_object *dead;
    if (stop_merged(&dead) != 0)
        return 0;
    frt__heaps_walk_objects(referrers_visit, &c);
    start_and_free(dead);
    return c.total;
}

static int visit_keep(frt_object *ref, void *arg)
{
    if (ref)
        keep(arg, ref);
    return 0;
}

size_t frt_gc_get_referents(frt_object *o, frt_object **out, size_t cap)
{
    if (!o || (cap && !out) || !o->ob_type || !o->ob_type->traverse)
        return 0;
    walk_ctx c = {out, cap, 0, -1, NULL, 0};
    o->ob_type->traverse(o, visit_keep, &c);
    return c.total;
}

static void freeze_visit(void *block, size_t size, void *arg)
{
    (void)size;
    frt_object *o = block;
    if (!(o->ob_gc_bits & FRT_GC_TRACKED) || o->ob_gen > 2)
        return;
    if (frt__gc_refcount(o) > 0) {
        o->ob_gen = FRT_GEN_PERMANENT;
        ++*(long *)arg;
    } else {
        /* Dying (the merge's dead, or a parked thread's free loop): not
         * frozen. Its young bit is forgotten below, so should a finalizer
         * resurrect it, it lives on in the oldest generation, as after a
         * full collection (enumerate.c). */
        o->ob_gen = 2;
    }
}

void frt_gc_freeze(void)
{
    frt_object *dead;
    if (stop_merged(&dead) != 0)
        return;
    long n = 0;
    frt__heaps_walk_objects(freeze_visit, &n);
    frt__gc_forget_young();
    atomic_fetch_add(&frt__gc.freeze_count, n);
    pthread_mutex_lock(&frt__gc.lock);
    atomic_store(&frt__gc.young_count, 0);
    for (int i = 0; i < 3; i++)
        frt__gc.gen_count[i] = frt__gc.gen_size[i] = 0;
    pthread_mutex_unlock(&frt__gc.lock);
    start_and_free(dead);
}

static void unfreeze_visit(void *block, size_t size, void *arg)
{
    (void)size;
    frt_object *o = block;
    if ((o->ob_gc_bits & FRT_GC_TRACKED) && o->ob_gen == FRT_GEN_PERMANENT) {
        o->ob_gen = 2;
        ++*(long *)arg;
    }
}

void frt_gc_unfreeze(void)
{
    if (frt_stop_the_world() != 0)
        return;
    long n = 0;
    frt__heaps_walk_objects(unfreeze_visit, &n);
    atomic_store(&frt__gc.freeze_count, 0);
    pthread_mutex_lock(&frt__gc.lock);
    frt__gc.gen_size[2] += (size_t)n;
    pthread_mutex_unlock(&frt__gc.lock);
    frt_start_the_world();
}

size_t frt_gc_get_freeze_count(void)
{
    long n = atomic_load(&frt__gc.freeze_count);
    return n > 0 ? (size_t)n : 0;
}
