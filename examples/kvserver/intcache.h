/* A small cache of parsed integer values, keyed by string object and held
 * through weak references (the weakref path of frt, as Python's
 * WeakKeyDictionary would do it).
 *
 * INCR reads a value, parses it, and writes a new string. The new string's
 * integer is known when it is made, so INCR puts it here; the next INCR of
 * that key (often on another worker) finds the current value object in the
 * cache and skips the parse. The cache never keeps a value alive: each slot
 * holds a weak reference to its string, and when the string dies (replaced,
 * deleted, expired: on whichever thread drops it last) the weakref's
 * callback empties the slot.
 *
 * Locking: one mutex per stripe of slots, taken inside a blocking section
 * when it is contended. Nothing that can free an object or reach a
 * safepoint (frt_decref, frt_new, frt_weakref_new) runs while a stripe lock
 * is held: a free may run this cache's weakref callback, which takes the
 * stripe lock itself. INCR calls in here inside a key's critical section;
 * a contended stripe lock suspends that section (frt_blocking_begin), so
 * there is no lock order to keep, and INCR checks its key afterwards. */
#ifndef KV_INTCACHE_H
#define KV_INTCACHE_H

#include "objects.h"

#include <stdint.h>

void intcache_init(void);
/* Drop every slot (at shutdown, before frt_shutdown). */
void intcache_clear(void);

/* 1 and *out when s is cached; 0 otherwise. */
int intcache_get(kv_str *s, long long *out);
/* Remember that s holds v. */
void intcache_put(kv_str *s, long long v);

typedef struct intcache_stats {
    uint64_t hits, misses, puts, evicted_by_callback, slots_used;
} intcache_stats;
void intcache_get_stats(intcache_stats *out);

#endif
