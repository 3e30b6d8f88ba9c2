/* The server's two value types, as frt objects.
 *
 *   kv_str   an immutable byte string (keys, string values, list elements).
 *            Not a container: it holds no references, has no traverse, and
 *            the collector never tracks it. Immutable, so any thread may
 *            read it while holding a reference, without a lock.
 *   kv_list  a deque of kv_str references (LPUSH/RPUSH/LPOP/RPOP/LRANGE). A
 *            container: traverse visits each element, clear drops them, so
 *            the collector sees what a list holds. Its fields change only
 *            under the critical section of the key slot that holds it
 *            (keyspace.h). */
#ifndef KV_OBJECTS_H
#define KV_OBJECTS_H

#include <frt/frt.h>
#include <stddef.h>

typedef struct kv_str {
    frt_object ob;
    size_t len;
    char data[]; /* len bytes, then a NUL (handy for strtoll and printing) */
} kv_str;

typedef struct kv_list {
    frt_object ob;
    frt_object **items; /* a ring: items[(head + i) % cap] for i < len */
    size_t head, len, cap;
} kv_list;

extern const frt_type kv_str_type;
extern const frt_type kv_list_type;

/* New references, or NULL when out of memory. */
kv_str *kv_str_new(const void *data, size_t len);
kv_str *kv_str_from_ll(long long v);
kv_list *kv_list_new(void);

static inline int kv_is_str(const frt_object *o) { return frt_typeof(o) == &kv_str_type; }
static inline int kv_is_list(const frt_object *o) { return frt_typeof(o) == &kv_list_type; }

/* List operations; the caller holds its key's critical section. push steals the
 * reference to item; pop hands its reference to the caller. */
int kv_list_push(kv_list *l, frt_object *item, int left); /* 0, or -1 out of memory */
frt_object *kv_list_pop(kv_list *l, int left);            /* NULL when empty */
frt_object *kv_list_at(const kv_list *l, size_t i);        /* borrowed */

#endif
