/* frt_ref slots, single-threaded: what each operation does to counts, what
 * a slot in a container means to the collector, and deferred reclamation:
 * a published object's block waits (header-shaped, refusing try-incref)
 * until a grace period, and frt_heap_trim brings it back. */
#include <frt/frt.h>

#include "test_util.h"

static _Atomic int destroyed;

static void leaf_destroy(frt_object *self)
{
    (void)self;
    atomic_fetch_add(&destroyed, 1);
}

static const frt_type leaf_type = {"ref.leaf", 64, NULL, NULL, NULL, leaf_destroy};

/* A container whose one field is a slot. */
typedef struct holder {
    frt_object ob;
    frt_ref field;
} holder;

static int holder_traverse(frt_object *self, frt_visit_fn visit, void *arg)
{
    return frt_ref_visit(&((holder *)self)->field, visit, arg);
}

static void holder_clear(frt_object *self)
{
    frt_ref_clear(&((holder *)self)->field);
}

static const frt_type holder_type = {"ref.holder", sizeof(holder), holder_traverse, holder_clear,
                                     NULL, holder_clear};

static void test_operations(void)
{
    frt_object *a = frt_new(&leaf_type), *b = frt_new(&leaf_type);
    frt_ref r;
    CHECK_EQ(frt_ref_init(&r, a), 0);
    CHECK_EQ(frt_refcount(a), 2);
    frt_object *got = frt_ref_load(&r);
    CHECK(got == a);
    CHECK_EQ(frt_refcount(a), 3);
    frt_decref(got);

    CHECK_EQ(frt_ref_store(&r, b), 0);
    CHECK_EQ(frt_refcount(a), 1);
    CHECK_EQ(frt_refcount(b), 2);

    CHECK_EQ(frt_ref_compare_exchange(&r, a, NULL), 0); /* holds b, not a */
    CHECK(frt_ref_peek(&r) == b);
    CHECK_EQ(frt_refcount(a), 1);
    CHECK_EQ(frt_ref_compare_exchange(&r, b, a), 1);
    CHECK_EQ(frt_refcount(b), 1);
    CHECK_EQ(frt_refcount(a), 2);

    frt_object *old = frt_ref_exchange(&r, NULL);
    CHECK(old == a);
    CHECK(frt_ref_load(&r) == NULL);
    frt_decref(old);
    frt_ref_clear(&r);

    CHECK_EQ(frt_ref_store(NULL, a), FRT_EINVAL);
    CHECK(frt_ref_load(NULL) == NULL);
    CHECK_EQ(frt_try_incref(NULL), 0);
    CHECK_EQ(frt_try_incref(a), 1);
    CHECK_EQ(frt_refcount(a), 2);
    frt_decref(a);
    frt_decref(a);
    frt_decref(b);
}

/* A published object, once dead, waits for a grace period: its block is
 * counted as waiting, its header refuses try-incref, and frt_heap_trim
 * brings it back. */
static void test_deferred(void)
{
    frt_heap_stats st;
    frt_heap_trim();
    frt_heap_get_stats(&st);
    CHECK_EQ(st.reclaim_waiting_blocks, 0);
    int before = atomic_load(&destroyed);

    frt_object *o = frt_new(&leaf_type);
    frt_ref r = FRT_REF_INIT;
    frt_ref_store(&r, o);
    frt_decref(o);
    frt_ref_clear(&r); /* the last reference: destroyed now, freed later */
    CHECK_EQ(atomic_load(&destroyed), before + 1);
    frt_heap_get_stats(&st);
    CHECK_EQ(st.reclaim_waiting_blocks, 1);
    CHECK(st.reclaim_waiting_bytes >= 64);
    CHECK(st.reclaim_waiting_peak >= st.reclaim_waiting_bytes);
    /* What a racing reader may do with the pointer it read: refused. */
    CHECK_EQ(frt_try_incref(o), 0);

    frt_heap_trim();
    frt_heap_get_stats(&st);
    CHECK_EQ(st.reclaim_waiting_blocks, 0);
    CHECK_EQ(st.reclaim_waiting_bytes, 0);

    /* A large object is unmapped when freed: a reader's try-incref on a
     * dead published one must still find its header (no fault). */
    o = frt_new_var(&leaf_type, FRT_SMALL_MAX);
    frt_ref_store(&r, o);
    frt_decref(o);
    frt_ref_clear(&r);
    CHECK_EQ(frt_try_incref(o), 0);
    frt_heap_trim();

    /* An object never stored in a slot is freed at once, as before. */
    frt_decref(frt_new(&leaf_type));
    frt_heap_get_stats(&st);
    CHECK_EQ(st.reclaim_waiting_blocks, 0);
}

/* A cycle through slots: the collector sees the slots (traverse) and
 * frees the cycle; a slot reached from outside keeps it. */
static void test_collector(void)
{
    int before = atomic_load(&destroyed);
    holder *h1 = (holder *)frt_new(&holder_type);
    holder *h2 = (holder *)frt_new(&holder_type);
    frt_object *leaf = frt_new(&leaf_type);
    frt_ref_store(&h1->field, &h2->ob);
    frt_ref_store(&h2->field, &h1->ob);
    frt_decref(leaf);
    frt_ref root = FRT_REF_INIT;
    frt_ref_store(&root, &h1->ob);
    frt_decref(&h1->ob);
    frt_decref(&h2->ob);
    CHECK_EQ(frt_gc_collect(-1), 0);
    frt_ref_clear(&root);
    CHECK_EQ(frt_gc_collect(-1), 2);
    CHECK_EQ(atomic_load(&destroyed), before + 1);
    frt_heap_trim();
}

int main(void)
{
    test_watchdog("test_ref", 120);
    CHECK_EQ(frt_init(NULL), 0);
    test_operations();
    test_deferred();
    test_collector();
    CHECK_EQ(frt_shutdown(), 0);
    TEST_PASS("test_ref");
    return 0;
}
