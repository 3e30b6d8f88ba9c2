/* Biased reference counting: the slow paths behind the inline fast paths in
 * <frt/object.h>, the merge queues, and the hooks the runtime calls at
 * safepoints and detach. docs/design.md has every state transition. */
#ifndef FRT_BRC_BRC_H
#define FRT_BRC_BRC_H

#include <frt/object.h>

#include "../runtime/runtime.h"

void frt__brc_install(frt_hooks *hooks);

/* Fold the local count into the shared one and give up the owner: returns
 * the total count after adding extra. The caller must be the owner, or the
 * owner must be unable to touch the local count (gone, blocked and helped,
 * suspended). */
intptr_t frt__brc_merge(frt_object *o, intptr_t extra);

/* The caller's decref was not applied to the shared count: the queue holds
 * that reference until the owner (or someone acting for it) merges. */
void frt__brc_queue(frt_object *o);

void frt__brc_merge_queue(frt_tstate *ts);
/* For the collector, world stopped: merge ts's queue but do not free; the
 * objects whose count reached zero are chained onto *dead (through their
 * ob_tid) for frt__brc_free_dead once the world runs again. */
void frt__brc_take_queue(frt_tstate *ts, frt_object **dead);
void frt__brc_free_dead(frt_object *dead);
void frt__brc_close_queue(frt_tstate *ts);

#endif
