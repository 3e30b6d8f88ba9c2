/* The concurrent map, single-threaded semantics: byte and object keys, set
 * replacing, delete, get_or_insert, len, iteration, weak values vanishing
 * with their value, a cycle through a map collected, growth to many keys,
 * keys that differ only in length.
 * The concurrent behaviour is the `map` workload of frt-stress. */
#include <stdio.h>
#include <string.h>

#include <frt/frt.h>

#include "test_util.h"

typedef struct val {
    frt_object ob;
    long v;
} val;

static _Atomic int destroyed;
static void val_destroy(frt_object *self)
{
    (void)self;
    atomic_fetch_add(&destroyed, 1);
}
static const frt_type val_type = {"map.val", sizeof(val), NULL, NULL, NULL, val_destroy};

static frt_object *val_new(long v)
{
    val *x = (val *)frt_new(&val_type);
    x->v = v;
    return &x->ob;
}

static long val_of(frt_object *o)
{
    return o ? ((val *)o)->v : -1;
}

/* Object keys: a val compared by its number. */
static uint64_t key_hash(const frt_object *k)
{
    return (uint64_t)((const val *)k)->v * 0x9e3779b97f4a7c15ull;
}
static int key_eq(const frt_object *a, const frt_object *b)
{
    return ((const val *)a)->v == ((const val *)b)->v;
}
static const frt_map_key_ops val_keys = {key_hash, key_eq};

static int sum_visit(const void *key, size_t len, frt_object *key_obj, frt_object *value, void *arg)
{
    (void)key_obj;
    CHECK(key && len > 0);
    *(long *)arg += val_of(value);
    return 0;
}

static void test_bytes(void)
{
    frt_map *m = frt_map_new(0, NULL);
    CHECK(m);
    frt_object *a = val_new(1), *b = val_new(2);
    CHECK(frt_map_get(m, "k", 1) == NULL);
    CHECK_EQ(frt_map_set(m, "k", 1, a), 0);
    CHECK_EQ(frt_refcount(a), 2);
    frt_object *g = frt_map_get(m, "k", 1);
    CHECK(g == a);
    frt_decref(g);
    CHECK_EQ(frt_map_set(m, "k", 1, b), 0); /* replaces */
    CHECK_EQ(frt_refcount(a), 1);
    CHECK_EQ(frt_map_len(m), 1);
    g = frt_map_get_or_insert(m, "k", 1, a);
    CHECK(g == b);
    frt_decref(g);
    g = frt_map_get_or_insert(m, "j", 1, a);
    CHECK(g == a);
    frt_decref(g);
    CHECK_EQ(frt_map_len(m), 2);
    long sum = 0;
    CHECK_EQ(frt_map_foreach(m, sum_visit, &sum), 0);
    CHECK_EQ(sum, 3);
    CHECK_EQ(frt_map_delete(m, "k", 1), 1);
    CHECK_EQ(frt_map_delete(m, "k", 1), 0);
    CHECK(frt_map_get(m, "k", 1) == NULL);
    CHECK_EQ(frt_map_len(m), 1);
    /* wrong key kind, bad arguments */
    CHECK(frt_map_get_obj(m, a) == NULL);
    CHECK_EQ(frt_map_set(m, "x", 1, NULL), FRT_EINVAL);
    CHECK(frt_map_new(0x100, NULL) == NULL);

    /* Many keys: the table grows while it is used. */
    char kb[32];
    for (long i = 0; i < SCALED(100000); i++) {
        int n = snprintf(kb, sizeof kb, "key-%ld", i);
        frt_object *v = val_new(i);
        CHECK_EQ(frt_map_set(m, kb, (size_t)n, v), 0);
        frt_decref(v);
    }
    for (long i = 0; i < SCALED(100000); i += 7) {
        int n = snprintf(kb, sizeof kb, "key-%ld", i);
        g = frt_map_get(m, kb, (size_t)n);
        CHECK_EQ(val_of(g), i);
        frt_decref(g);
    }
    CHECK_EQ(frt_map_len(m), SCALED(100000) + 1);
    frt_decref(a);
    frt_decref(b);
    int before = atomic_load(&destroyed);
    frt_decref((frt_object *)m); /* the map frees its entries */
    CHECK_EQ(atomic_load(&destroyed), before + SCALED(100000) + 1); /* and a */
}

static void test_objects(void)
{
    frt_map *m = frt_map_new(0, &val_keys);
    frt_object *k1 = val_new(7), *k1b = val_new(7), *v = val_new(70);
    CHECK_EQ(frt_map_set_obj(m, k1, v), 0);
    frt_object *g = frt_map_get_obj(m, k1b); /* equal, not identical */
    CHECK(g == v);
    frt_decref(g);
    CHECK_EQ(frt_refcount(k1), 2); /* the map holds its key */
    CHECK_EQ(frt_map_set(m, "b", 1, v), FRT_EINVAL);
    CHECK_EQ(frt_map_delete_obj(m, k1b), 1);
    frt_decref(k1);
    frt_decref(k1b);
    frt_decref(v);
    frt_decref((frt_object *)m);
}

static void test_weak(void)
{
    frt_map *m = frt_map_new(FRT_MAP_WEAK_VALUES, NULL);
    frt_object *v = val_new(5);
    CHECK_EQ(frt_map_set(m, "w", 1, v), 0);
    CHECK_EQ(frt_refcount(v), 1); /* held weakly */
    frt_object *g = frt_map_get(m, "w", 1);
    CHECK(g == v);
    frt_decref(g);
    frt_decref(v); /* the value dies: the entry is gone */
    CHECK(frt_map_get(m, "w", 1) == NULL);
    CHECK_EQ(frt_map_len(m), 0);
    /* get_or_insert over a dead entry inserts */
    v = val_new(6);
    frt_object *v2 = val_new(8);
    CHECK_EQ(frt_map_set(m, "x", 1, v), 0);
    frt_decref(v);
    g = frt_map_get_or_insert(m, "x", 1, v2);
    CHECK(g == v2);
    frt_decref(g);
    long sum = 0;
    frt_map_foreach(m, sum_visit, &sum);
    CHECK_EQ(sum, 8);
    frt_decref(v2);
    CHECK_EQ(frt_map_delete(m, "x", 1), 0); /* value died: no entry */
    frt_decref((frt_object *)m);
}

/* value -> map -> value: a cycle the collector frees. */
typedef struct holder {
    frt_object ob;
    frt_ref map;
} holder;
static int holder_traverse(frt_object *self, frt_visit_fn visit, void *arg)
{
    return frt_ref_visit(&((holder *)self)->map, visit, arg);
}
static void holder_clear(frt_object *self)
{
    frt_ref_clear(&((holder *)self)->map);
}
static const frt_type holder_type = {"map.holder", sizeof(holder), holder_traverse, holder_clear,
                                     NULL, holder_clear};

static void test_cycle(void)
{
    frt_map *m = frt_map_new(0, NULL);
    holder *h = (holder *)frt_new(&holder_type);
    frt_ref_store(&h->map, (frt_object *)m);
    frt_map_set(m, "self", 4, &h->ob);
    frt_decref((frt_object *)m);
    frt_decref(&h->ob);
    CHECK_EQ(frt_gc_collect(-1), 2);
}

/* Keys of every length a slot's word can hold and beyond (1 to 12 bytes),
 * all zero bytes or all 0xff, so that two of a kind differ only in length: each is found, each
 * comes back from foreach with its own bytes and length, and a deleted
 * one (whose slot keeps its word) is not found until it is set again. */
#define WORD_KEYS 12
static unsigned char zero_bytes[WORD_KEYS], one_bytes[WORD_KEYS];

/* Key v (0 <= v < 2 * WORD_KEYS): its bytes, and its length in *len. */
static const unsigned char *word_key(long v, size_t *len)
{
    *len = (size_t)(v % WORD_KEYS) + 1;
    return v < WORD_KEYS ? zero_bytes : one_bytes;
}

static int words_visit(const void *key, size_t len, frt_object *key_obj, frt_object *value, void *arg)
{
    int *seen = arg;
    long v = val_of(value);
    CHECK(!key_obj && key && v >= 0 && v < 2 * WORD_KEYS);
    size_t want_len;
    const unsigned char *want = word_key(v, &want_len);
    CHECK_EQ(len, want_len);
    CHECK(memcmp(key, want, len) == 0);
    seen[v]++;
    return 0;
}

static void test_key_words(void)
{
    frt_map *m = frt_map_new(0, NULL);
    memset(one_bytes, 0xff, sizeof one_bytes);
    size_t len;
    for (int round = 0; round < 2; round++) {
        for (long v = 0; v < 2 * WORD_KEYS; v++) {
            frt_object *o = val_new(v);
            const unsigned char *k = word_key(v, &len);
            CHECK_EQ(frt_map_set(m, k, len, o), 0);
            frt_decref(o);
        }
        CHECK_EQ(frt_map_len(m), 2 * WORD_KEYS);
        int seen[2 * WORD_KEYS] = {0};
        CHECK_EQ(frt_map_foreach(m, words_visit, seen), 0);
        for (int v = 0; v < 2 * WORD_KEYS; v++) {
            CHECK_EQ(seen[v], 1);
            const unsigned char *k = word_key(v, &len);
            frt_object *g = frt_map_get(m, k, len);
            CHECK_EQ(val_of(g), v);
            frt_decref(g);
        }
        for (long v = 0; v < 2 * WORD_KEYS; v += 2) { /* every other key goes */
            const unsigned char *k = word_key(v, &len);
            CHECK_EQ(frt_map_delete(m, k, len), 1);
            CHECK(frt_map_get(m, k, len) == NULL);
        }
        CHECK_EQ(frt_map_len(m), WORD_KEYS);
    }
    frt_decref((frt_object *)m);
}

int main(void)
{
    test_watchdog("test_map", 200);
    CHECK_EQ(frt_init(NULL), 0);
    test_bytes();
    test_key_words();
    test_objects();
    test_weak();
    test_cycle();
    frt_heap_trim();
    CHECK_EQ(frt_shutdown(), 0);
    TEST_PASS("test_map");
    return 0;
}
