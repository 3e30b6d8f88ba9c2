/* The concurrent map under the races its single-threaded test cannot
 * show: resizes (growing and shrinking, each building a new array and
 * retiring the old one through QSBR) while readers probe and writers
 * write, and iterations while writers write. Keys of three shapes take the
 * table's three slot paths: 8-byte keys (the slot's word), 3-byte keys
 * (a short key, its length in the word) and 20-byte keys (an entry,
 * retired through QSBR when its key is deleted).
 *
 * Stable keys are set before the threads start and only ever replaced:
 * every get finds them, with a value made for that key. Churn keys are
 * inserted and deleted in waves big enough to grow the table and then
 * shrink it: a get gives NULL or a value made for the key. Every
 * iteration visits each stable key exactly once and shows every key with
 * a value made for it. At the end the map holds exactly the stable keys,
 * and every value made is destroyed once the map goes. Under TSan, a
 * reader that touched an array or entry after its free is a reported race
 * (frees wait for a grace period), and so is one that read the key word of
 * a slot a writer has claimed but not yet filled in (a probe compares the
 * value word's kind bits first, which no marker shares with a key). */
#include <frt/frt.h>

#include "test_util.h"

#define MAGIC 0x3a9f00d5u
#define STABLE 64
#define NWRITERS 2
#define NREADERS 2

typedef struct val {
    frt_object ob;
    _Atomic unsigned magic;
    long id; /* the key it was made for */
} val;

static _Atomic long created, destroyed_n, bad, gets_hit, iterations;
static _Atomic int writers_left;
static frt_map *map;

static void val_destroy(frt_object *self)
{
    val *v = (val *)self;
    if (atomic_exchange(&v->magic, 0) != MAGIC)
        atomic_fetch_add(&bad, 1);
    v->id = -1; /* a plain write: TSan pairs it with readers' reads */
    atomic_fetch_add(&destroyed_n, 1);
}

static const frt_type val_type = {"map_race.val", sizeof(val), NULL, NULL, NULL, val_destroy};

static frt_object *val_new(long id)
{
    val *v = (val *)frt_new(&val_type);
    CHECK(v);
    v->id = id;
    atomic_store(&v->magic, MAGIC);
    atomic_fetch_add(&created, 1);
    return &v->ob;
}

/* Key id's bytes (its shape by id % 3) into buf; the length. */
static size_t key_of(long id, unsigned char *buf)
{
    uint64_t x = (uint64_t)id;
    switch (id % 3) {
    case 0:
        memcpy(buf, &x, 8);
        return 8;
    case 1:
        buf[0] = (unsigned char)x, buf[1] = (unsigned char)(x >> 8), buf[2] = (unsigned char)(x >> 16);
        return 3;
    default:
        memset(buf, 'k', 20);
        memcpy(buf + 6, &x, 8);
        return 20;
    }
}

/* The id a key's bytes stand for (the inverse of key_of). */
static long id_of(const unsigned char *k, size_t len)
{
    uint64_t x = 0;
    if (len == 8)
        memcpy(&x, k, 8);
    else if (len == 3)
        x = (uint64_t)k[0] | (uint64_t)k[1] << 8 | (uint64_t)k[2] << 16;
    else if (len == 20)
        memcpy(&x, k + 6, 8);
    else
        return -1;
    return (long)x;
}

static void check_value(frt_object *o, long id)
{
    val *v = (val *)o;
    if (atomic_load(&v->magic) != MAGIC || v->id != id)
        atomic_fetch_add(&bad, 1);
}

static long churn_keys(void)
{
    return SCALED(6000);
}

static void *writer(void *arg)
{
    long w = (long)arg;
    CHECK_EQ(frt_thread_attach(), 0);
    long churn = churn_keys(), waves = SCALED(1200) / 100 + 2;
    unsigned char k[20];
    for (long wave = 0; wave < waves; wave++) {
        /* Grow: each writer inserts its half of the churn keys. */
        for (long id = STABLE + w; id < STABLE + churn; id += NWRITERS) {
            frt_object *v = val_new(id);
            CHECK_EQ(frt_map_set(map, k, key_of(id, k), v), 0);
            frt_decref(v);
            if (id % 16 == 0) { /* replace a stable key's value meanwhile */
                long s = id % STABLE;
                frt_object *sv = val_new(s);
                CHECK_EQ(frt_map_set(map, k, key_of(s, k), sv), 0);
                frt_decref(sv);
            }
            if (id % 64 == 0)
                frt_safepoint();
        }
        /* Shrink: and deletes them all again (get_or_insert on some first). */
        for (long id = STABLE + w; id < STABLE + churn; id += NWRITERS) {
            size_t len = key_of(id, k);
            if (id % 5 == 0) {
                frt_object *v = val_new(id);
                frt_object *got = frt_map_get_or_insert(map, k, len, v);
                CHECK(got);
                check_value(got, id);
                frt_decref(got);
                frt_decref(v);
            }
            CHECK(frt_map_delete(map, k, len) >= 0);
            if (id % 64 == 0)
                frt_safepoint();
        }
    }
    atomic_fetch_sub(&writers_left, 1);
    frt_thread_detach();
    return NULL;
}

static void *reader(void *arg)
{
    CHECK_EQ(frt_thread_attach(), 0);
    uint64_t x = 0x9e3779b97f4a7c15ull * ((uint64_t)(long)arg + 1);
    long churn = churn_keys();
    unsigned char k[20];
    for (long i = 0; atomic_load(&writers_left) > 0; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        long id = (i & 1) ? (long)(x % STABLE) : STABLE + (long)(x % (uint64_t)churn);
        frt_object *o = frt_map_get(map, k, key_of(id, k));
        if (o) {
            check_value(o, id);
            atomic_fetch_add(&gets_hit, 1);
            frt_decref(o);
        } else if (id < STABLE) {
            atomic_fetch_add(&bad, 1); /* a stable key is never absent */
        }
        if (i % 32 == 0)
            frt_safepoint();
    }
    frt_thread_detach();
    return NULL;
}

typedef struct walk {
    unsigned char seen[STABLE];
    long entries;
} walk;

static int visit(const void *key, size_t len, frt_object *key_obj, frt_object *value, void *arg)
{
    walk *w = arg;
    long id = id_of(key, len);
    if (key_obj || id < 0)
        atomic_fetch_add(&bad, 1);
    else
        check_value(value, id);
    if (id >= 0 && id < STABLE)
        w->seen[id]++;
    w->entries++;
    return 0;
}

static void *iterator(void *arg)
{
    (void)arg;
    CHECK_EQ(frt_thread_attach(), 0);
    while (atomic_load(&writers_left) > 0) {
        walk w = {{0}, 0};
        CHECK_EQ(frt_map_foreach(map, visit, &w), 0);
        for (int i = 0; i < STABLE; i++)
            if (w.seen[i] != 1)
                atomic_fetch_add(&bad, 1); /* present throughout: seen once */
        atomic_fetch_add(&iterations, 1);
        frt_safepoint();
    }
    frt_thread_detach();
    return NULL;
}

int main(void)
{
    test_watchdog("test_map_race", 250);
    CHECK_EQ(frt_init(NULL), 0);
    map = frt_map_new(0, NULL);
    CHECK(map);
    unsigned char k[20];
    for (long id = 0; id < STABLE; id++) {
        frt_object *v = val_new(id);
        CHECK_EQ(frt_map_set(map, k, key_of(id, k), v), 0);
        frt_decref(v);
    }
    atomic_store(&writers_left, NWRITERS);
    pthread_t t[NWRITERS + NREADERS + 1];
    int n = 0;
    for (long i = 0; i < NWRITERS; i++)
        t[n++] = test_spawn(writer, (void *)i);
    for (long i = 0; i < NREADERS; i++)
        t[n++] = test_spawn(reader, (void *)i);
    t[n++] = test_spawn(iterator, NULL);
    for (int i = 0; i < n; i++)
        test_join(t[i]);

    CHECK_EQ(atomic_load(&bad), 0);
    CHECK(atomic_load(&gets_hit) > 0);
    CHECK(atomic_load(&iterations) > 0);
    CHECK_EQ(frt_map_len(map), STABLE);
    walk w = {{0}, 0};
    CHECK_EQ(frt_map_foreach(map, visit, &w), 0);
    CHECK_EQ(w.entries, STABLE);
    frt_decref((frt_object *)map);
    CHECK_EQ(frt_shutdown(), 0);
    CHECK_EQ(atomic_load(&destroyed_n), atomic_load(&created));
    CHECK_EQ(atomic_load(&bad), 0);
    TEST_PASS("test_map_race");
    return 0;
}
