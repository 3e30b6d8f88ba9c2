/* The key space: frt's concurrent map (frt_map, byte keys) from each key
 * to a kv_slot, the key's small mutable record: its value (a kv_str or a
 * kv_list) and its deadline.
 *
 * Why a slot and not the value itself in the map: the map has get, set,
 * delete and get-or-insert but no compare-and-swap, and a read-modify-write
 * (INCR, LPUSH, SET NX, EXPIRE) must replace a key's value only if nobody
 * replaced it meanwhile. A slot stays in the map for as long as its key
 * lives, so "lock the slot, check, write" is that compare-and-swap:
 *
 * - Readers (GET, MGET, STRLEN, EXISTS, TYPE, TTL) take no lock: map get,
 *   then frt_ref_load of the slot's value, both lock-free.
 * - Writers lock the slot (an frt critical section on it, ks_lock) and
 *   change its value and deadline under the section. Every change to a
 *   slot happens under its section, so writers of one key are serialized
 *   and none loses another's update.
 * - A key is removed (DEL, expiry, an emptied list, FLUSHALL) by marking its
 *   slot dead under the section, then deleting it from the map. A writer
 *   that locks a dead slot lets go and looks the key up again, so nothing
 *   is ever written to a slot that has left (or is leaving) the map. An
 *   absent key gets a fresh slot through get-or-insert: of racing
 *   inserters, all get the same slot.
 *
 * A section is suspended (unlocked) whenever its thread would wait or park
 * (a contended lock, a stop-the-world reached in frt_new), so a command
 * that allocates or takes another lock inside its section must check
 * ks_changed afterwards and start over when the key changed meanwhile.
 *
 * Expiry: a slot's deadline is an absolute CLOCK_MONOTONIC time in ms.
 * Readers treat a key past its deadline as absent and have it removed;
 * ks_lock removes it before a writer sees it; ks_sweep (the sweeper thread,
 * every 100 ms) removes the rest. Either way the value is dropped by
 * whichever thread notices, not by the thread that wrote it. */
#ifndef KV_KEYSPACE_H
#define KV_KEYSPACE_H

#include "objects.h"

#include <frt/frt.h>
#include <stddef.h>
#include <stdint.h>

typedef struct kv_slot {
    frt_object ob;
    frt_ref val;                /* kv_str or kv_list; NULL: no value yet, or being removed */
    _Atomic int64_t expire_ms;  /* 0: never; written under the section */
    int dead;                   /* left (or is leaving) the map; under the section */
} kv_slot;

int64_t kv_now_ms(void);

int ks_init(void);    /* 0, or -1 when out of memory */
void ks_destroy(void); /* drop every key and the map */

/* Lock-free: a new reference to key's value, or NULL when the key is absent
 * or past its deadline; *expire_ms (when not NULL) gets the deadline. */
frt_object *ks_get(const char *key, size_t len, int64_t *expire_ms);

/* A key locked for a read-modify-write. */
typedef struct ks_op {
    const char *key;
    size_t len;
    kv_slot *slot; /* locked and alive; NULL when the key is absent */
    frt_critical_section cs;
    frt_object *old; /* the value a store replaced, dropped after the unlock */
    int killed;      /* this op marked the slot dead: it deletes it from the map */
} ks_op;

/* Lock key's slot and return it (op->slot), or NULL when the key is
 * absent. create: an absent key gets a new slot with no value (NULL only
 * when out of memory); if the command stores none, ks_unlock removes it. */
kv_slot *ks_lock(ks_op *op, const char *key, size_t len, int create);
/* The value (borrowed, valid until the unlock), NULL when there is none. */
frt_object *ks_value(const ks_op *op);
/* Replace the value (the slot takes its own reference; NULL removes the
 * key at the unlock). The deadline is kept; ks_set_expire changes it. */
void ks_store(ks_op *op, frt_object *val);
void ks_set_expire(ks_op *op, int64_t expire_ms);
int64_t ks_expire(const ks_op *op);
/* After a call that may have suspended the section: nonzero when the key
 * is no longer the one locked with value expect (start over then). The
 * caller holds a reference to expect, so its address was not reused. */
int ks_changed(const ks_op *op, const frt_object *expect);
/* End the section; remove the key if it has no value; drop op->old. */
void ks_unlock(ks_op *op);

/* Remove keys past their deadline; returns how many. */
size_t ks_sweep(void);
/* Remove every key; returns how many there were. */
size_t ks_flush(void);
void ks_counts(size_t *keys, size_t *expires);
uint64_t ks_expired_total(void);

#endif
