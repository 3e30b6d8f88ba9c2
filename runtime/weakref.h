/* Weak references inside the runtime: the object layout, and what object
 * deallocation, finalizers and the collector need from the weakref tables.
 *
 * A target keeps no list pointer of its own (the header has no room): its
 * weak references sit in a hash table keyed by the target's address,
 * split into shards with a mutex each. An object that never had a weakref
 * pays one flag test when it dies (FRT_OF_MAYBE_WEAKREF). No safepoint is
 * ever reached with a shard lock held, so a stopped world never waits for
 * one and the collector may take them while the world is stopped. */
#ifndef FRT_RUNTIME_WEAKREF_H
#define FRT_RUNTIME_WEAKREF_H

#include <frt/frt.h>

struct frt_weakref {
    frt_object ob;
    _Atomic(frt_object *) target; /* NULL once cleared (or not yet registered) */
    frt_weakref_cb cb;
    void *ctx;
    struct frt_weakref *link; /* its shard's bucket chain; a callback list once cleared */
    uint32_t shard;
};

extern const frt_type frt__weakref_type;

/* Register wr (allocated by the caller, of frt__weakref_type or a type
 * built on it) as a weak reference to target. 0 or FRT_ENOMEM. */
int frt__weakref_register(frt_weakref *wr, frt_object *target, frt_weakref_cb cb, void *ctx);
/* Take wr off its target's list if it is still on it (no callback). */
void frt__weakref_unregister(frt_weakref *wr);
/* traverse and destroy for weakref types: a weakref holds no strong
 * reference, and leaves its target's list when it dies. */
int frt__weakref_traverse(frt_object *self, frt_visit_fn visit, void *arg);
void frt__weakref_destroy(frt_object *self);
int frt__is_weakref(const frt_object *o);

/* o's count reached zero and it was not resurrected: clear every weakref
 * to it, then run their callbacks (each weakref held meanwhile). */
void frt__weakrefs_on_dealloc(frt_object *o);

/* For the collector, world stopped. Clear the weakrefs with a callback to
 * o; those for which keep(wr) says the callback should run are chained on
 * *calls with a reference taken. */
void frt__weakrefs_take_callbacks(frt_object *o, int (*keep)(frt_weakref *wr, void *arg), void *arg,
                                  frt_weakref **calls);
/* Clear every remaining weakref to o, without callbacks. */
void frt__weakrefs_clear_silently(frt_object *o);
/* Run and release a chain made by frt__weakrefs_take_callbacks. */
void frt__weakrefs_run_callbacks(frt_weakref *calls);

/* Finalizers (runtime/finalizer.c) */
void frt__finalizers_run_all(void); /* frt_shutdown: those still registered */

void frt__weakref_tables_reset(void); /* frt_init */
void frt__weakref_tables_free(void);  /* frt_shutdown */

#endif
