/* What the layers above need to know about objects' lifetimes. */
#ifndef FRT_RUNTIME_OBJECT_INTERNAL_H
#define FRT_RUNTIME_OBJECT_INTERNAL_H

#include <frt/object.h>

#ifndef FRT_RC_ATOMIC_ONLY
#define FRT_RC_ATOMIC_ONLY 0
#endif

/* The count reached zero: finalize (once), destroy, free the block. */
void frt__dealloc(frt_object *o);
/* The same, but only if o runs no code when freed (no finalize or destroy,
 * untracked, no flags): 1 when o was freed, 0 (o untouched) otherwise and
 * in debug builds, which free every object through frt__dealloc. */
int frt__dealloc_trivial(frt_object *o);
/* The same for a chain of such objects linked through their ob_tid. */
void frt__dealloc_chain(frt_object *chain);

/* Take a reference to o for a shared slot (frt_ref, a map entry) and mark
 * it published: try-increfable by any thread, its block freed after a
 * grace period (runtime/ref.c). */
void frt__ref_publish(frt_object *o);

#endif
