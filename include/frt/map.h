/* A concurrent hash map from keys (bytes, or objects) to objects.
 *
 * get is lock-free and returns a new strong reference; set, delete and
 * get_or_insert are linearizable (writers of one key take one of the map's
 * lock stripes; writers of other stripes go on); the table grows and
 * shrinks without blocking readers (the writer that crosses a size
 * threshold rebuilds it while other writers wait); iteration is safe while
 * other threads write (they wait while it takes its references). With
 * FRT_MAP_WEAK_VALUES the map holds its values weakly (Python's
 * WeakValueDictionary): an entry disappears when its value dies, with no
 * user callback. An open-addressing table whose old arrays and deleted
 * entries are freed through frt's deferred reclamation; docs/design.md has
 * how.
 *
 * The map is an frt object (frt_decref drops it). It is tracked by the
 * collector: its traverse reports every value it holds strongly and every
 * key object, so cycles through a map are collected. Every call needs an
 * attached thread outside a blocking section. */
#ifndef FRT_MAP_H
#define FRT_MAP_H

#include <frt/config.h>
#include <frt/object.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct frt_map frt_map;

/* For maps keyed by objects: a hash and an equality that agree (equal keys
 * hash alike). They run while the map is being searched: they must only
 * read the two keys (no frt calls, no locks), and must not change their
 * answer for a key while it is in the map. */
typedef struct frt_map_key_ops {
    uint64_t (*hash)(const frt_object *key);
    int (*eq)(const frt_object *a, const frt_object *b); /* nonzero when equal */
} frt_map_key_ops;

enum {
    FRT_MAP_WEAK_VALUES = 1u << 0 /* values held weakly: entries vanish when values die */
};

/* A new map (a new reference), or NULL (bad flags, unattached thread, out
 * of memory). key_ops NULL: keys are byte strings (the _obj functions
 * refuse); else keys are objects compared with key_ops (the byte functions
 * refuse), and key_ops must outlive the map. */
FRT_API frt_map *frt_map_new(unsigned flags, const frt_map_key_ops *key_ops);

/* Byte-string keys (copied into the map). */
FRT_API frt_object *frt_map_get(frt_map *m, const void *key, size_t len);
FRT_API int frt_map_set(frt_map *m, const void *key, size_t len, frt_object *value);
FRT_API int frt_map_delete(frt_map *m, const void *key, size_t len);
FRT_API frt_object *frt_map_get_or_insert(frt_map *m, const void *key, size_t len,
                                          frt_object *value);

/* Object keys (the map keeps a reference to each key it holds). */
FRT_API frt_object *frt_map_get_obj(frt_map *m, frt_object *key);
FRT_API int frt_map_set_obj(frt_map *m, frt_object *key, frt_object *value);
FRT_API int frt_map_delete_obj(frt_map *m, frt_object *key);
FRT_API frt_object *frt_map_get_or_insert_obj(frt_map *m, frt_object *key, frt_object *value);

/* get: a new reference to the value, or NULL (absent, or bad arguments).
 * set: 0, the map takes its own reference to value (weak maps: a weak
 *      reference); FRT_EINVAL (NULL value, wrong key kind), FRT_ENOMEM.
 * delete: 1 if an entry was removed, 0 if there was none, or FRT_EINVAL.
 * get_or_insert: a new reference to the value now in the map, which is
 *      value if the key was absent; NULL on bad arguments or no memory. */

/* Entries in the map. A weak map counts an entry whose value died until
 * an operation on that key, or an iteration, removes it. */
FRT_API size_t frt_map_len(frt_map *m);

/* Call fn for every entry present from the start of the call to its end,
 * once each (an entry set or deleted meanwhile may or may not be seen).
 * fn gets the key (bytes, or key_obj for object keys; the other is NULL/0)
 * and the value, both valid for the call; it may use the map and any frt
 * function. A nonzero return stops the iteration and is returned. */
typedef int (*frt_map_visit_fn)(const void *key, size_t len, frt_object *key_obj,
                                 frt_object *value, void *arg);
FRT_API int frt_map_foreach(frt_map *m, frt_map_visit_fn fn, void *arg);

#ifdef __cplusplus
}
#endif
#endif
