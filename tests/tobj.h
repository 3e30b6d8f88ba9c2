/* The counting tests' object (test_brc, test_drop_batch,
 * test_blocked_owner, test_hot_adaptive): each carries an id and a magic
 * word, and its destroy counts per id and checks that the object was
 * intact and had a count of zero, so "freed exactly once, never early" is
 * checked object by object. Header-only, like gc_nodes.h: each test
 * program has its own counters. A test may define TOBJ_MAX_IDS first. */
#ifndef FRT_TESTS_TOBJ_H
#define FRT_TESTS_TOBJ_H

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include <frt/frt.h>

#include "test_util.h"

#ifndef TOBJ_MAX_IDS
#define TOBJ_MAX_IDS (1L << 18)
#endif
#define TOBJ_MAGIC 0x7e57b0c5u

typedef struct tobj {
    frt_object ob;
    long id;
    unsigned magic;
} tobj;

static _Atomic int destroy_by_id[TOBJ_MAX_IDS];
static _Atomic long destroyed, next_id;
static _Atomic long bad_destroys; /* destroyed twice, garbage, or count not zero */

static inline void tobj_destroy(frt_object *self)
{
    tobj *t = (tobj *)self;
    if (t->magic != TOBJ_MAGIC || frt_refcount(self) != 0 || t->id < 0 || t->id >= TOBJ_MAX_IDS ||
        atomic_fetch_add(&destroy_by_id[t->id], 1) != 0)
        atomic_fetch_add(&bad_destroys, 1);
    t->magic = 0;
    atomic_fetch_add(&destroyed, 1);
}

static const frt_type tobj_type = {"tobj", sizeof(tobj), NULL, NULL, NULL, tobj_destroy};

static inline tobj *make(void)
{
    tobj *t = (tobj *)frt_new(&tobj_type);
    CHECK(t != NULL);
    t->id = atomic_fetch_add(&next_id, 1);
    CHECK(t->id < TOBJ_MAX_IDS);
    t->magic = TOBJ_MAGIC;
    return t;
}

static inline void reset_counts(void)
{
    for (long i = 0; i < TOBJ_MAX_IDS; i++)
        atomic_store_explicit(&destroy_by_id[i], 0, memory_order_relaxed);
    atomic_store(&destroyed, 0);
    atomic_store(&bad_destroys, 0);
    atomic_store(&next_id, 0);
}

/* Ids first..first+n-1 destroyed exactly once, nothing else destroyed. */
static inline void check_destroyed_once(long first, long n)
{
    CHECK_EQ(atomic_load(&bad_destroys), 0);
    CHECK_EQ(atomic_load(&destroyed), n);
    for (long i = first; i < first + n; i++)
        if (atomic_load_explicit(&destroy_by_id[i], memory_order_relaxed) != 1) {
            fprintf(stderr, "object %ld destroyed %d times\n", i, atomic_load(&destroy_by_id[i]));
            exit(1);
        }
}

#endif
