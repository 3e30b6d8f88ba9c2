/* A set of a key the map already holds takes no lock: it swaps the slot's
 * value by compare-and-swap. A resize copies the live slots into a new
 * array with every stripe locked, which does not stop such a set, so it
 * freezes each slot before copying it, and a set that meets a frozen slot
 * waits for the new array. This test races exactly that: replacers swap
 * the values of stable keys (each key has one replacer, which numbers its
 * values) while a resizer grows and shrinks the table over and over with
 * keys of its own, and readers check that no key's number ever goes
 * backwards. A replacement that landed in an array after its copy would
 * be lost: a reader would see the key's number fall back once the new
 * array is published, the key would end with a value older than its
 * replacer's last, and the lost value's reference would never be dropped
 * (made and destroyed counts differ at the end). Under TSan, a set that
 * swapped a value without the acquire and release a get relies on is a
 * reported race.
 *
 * First, a value set by a thread that is busy (attached, never at a
 * safepoint) and replaced by another thread must die at once: the map made
 * it shared as it went in, so the replacing thread frees it instead of
 * queueing it back to an owner that will not merge for a long time. */
#include <frt/frt.h>

#include "test_util.h"

#define STABLE 32
#define NREPLACERS 2
#define NREADERS 1

typedef struct val {
    frt_object ob;
    long key, seq;
} val;

static _Atomic long created, destroyed_n, bad, resizes_done;
static _Atomic int running;
static frt_map *map;
static long last_seq[STABLE]; /* each written by its key's replacer only, read after the joins */

static void val_destroy(frt_object *self)
{
    (void)self;
    atomic_fetch_add(&destroyed_n, 1);
}

static const frt_type val_type = {"map_replace_race.val", sizeof(val), NULL, NULL, NULL,
                                  val_destroy};

static frt_object *val_new(long key, long seq)
{
    val *v = (val *)frt_new(&val_type);
    CHECK(v);
    v->key = key;
    v->seq = seq;
    atomic_fetch_add(&created, 1);
    return &v->ob;
}

static void set_key(uint64_t key, frt_object *v)
{
    CHECK_EQ(frt_map_set(map, &key, sizeof key, v), 0);
}

/* Replacer r owns the stable keys with key % NREPLACERS == r. */
static void *replacer(void *arg)
{
    long r = (long)arg;
    CHECK_EQ(frt_thread_attach(), 0);
    for (long seq = 1; atomic_load(&running); seq++) {
        for (long key = r; key < STABLE; key += NREPLACERS) {
            frt_object *v = val_new(key, seq);
            set_key((uint64_t)key, v);
            frt_decref(v);
            last_seq[key] = seq;
        }
        frt_safepoint();
    }
    frt_thread_detach();
    return NULL;
}

static void *reader(void *arg)
{
    (void)arg;
    CHECK_EQ(frt_thread_attach(), 0);
    long seen[STABLE] = {0};
    for (long i = 0; atomic_load(&running); i++) {
        uint64_t key = (uint64_t)(i % STABLE);
        val *v = (val *)frt_map_get(map, &key, sizeof key);
        if (!v || v->key != (long)key || v->seq < seen[key])
            atomic_fetch_add(&bad, 1); /* absent, another key's, or gone back */
        if (v) {
            seen[key] = v->seq;
            frt_decref(&v->ob);
        }
        if (i % 64 == 0)
            frt_safepoint();
    }
    frt_thread_detach();
    return NULL;
}

/* Grow the table from its smallest past a few doublings and back, again
 * and again: every doubling and every shrink is a resize. */
static void *resizer(void *arg)
{
    (void)arg;
    CHECK_EQ(frt_thread_attach(), 0);
    long churn = SCALED(1500) + 200, rounds = SCALED(60) + 4;
    for (long round = 0; round < rounds; round++) {
        for (long k = 0; k < churn; k++) {
            frt_object *v = val_new(-1, 0);
            set_key((uint64_t)(1000000 + k), v);
            frt_decref(v);
        }
        for (long k = 0; k < churn; k++) {
            uint64_t key = (uint64_t)(1000000 + k);
            CHECK_EQ(frt_map_delete(map, &key, sizeof key), 1);
        }
        atomic_fetch_add(&resizes_done, 1);
        frt_safepoint();
    }
    atomic_store(&running, 0);
    frt_thread_detach();
    return NULL;
}

#define HANDED_KEY 4242
static _Atomic int owner_phase;

static void *busy_owner(void *arg)
{
    (void)arg;
    CHECK_EQ(frt_thread_attach(), 0);
    frt_object *v = val_new(HANDED_KEY, 0);
    set_key(HANDED_KEY, v);
    frt_decref(v);
    atomic_store(&owner_phase, 1);
    while (atomic_load(&owner_phase) != 2) {
        /* busy: no safepoint, so nothing queued to us would be merged */
    }
    frt_thread_detach();
    return NULL;
}

static void test_replaced_by_another_thread(void)
{
    frt_gc_disable(); /* no stop of the world while the owner is busy */
    pthread_t t = test_spawn(busy_owner, NULL);
    while (atomic_load(&owner_phase) != 1) {
    }
    long before = atomic_load(&destroyed_n);
    frt_object *v = val_new(HANDED_KEY, 1);
    set_key(HANDED_KEY, v);
    frt_decref(v);
    CHECK_EQ(atomic_load(&destroyed_n), before + 1); /* freed by this thread, now */
    atomic_store(&owner_phase, 2);
    test_join(t);
    uint64_t key = HANDED_KEY;
    CHECK_EQ(frt_map_delete(map, &key, sizeof key), 1);
    frt_gc_enable();
}

int main(void)
{
    test_watchdog("test_map_replace_race", 250);
    CHECK_EQ(frt_init(NULL), 0);
    map = frt_map_new(0, NULL);
    CHECK(map);
    test_replaced_by_another_thread();
    for (long key = 0; key < STABLE; key++) {
        frt_object *v = val_new(key, 0);
        set_key((uint64_t)key, v);
        frt_decref(v);
    }
    atomic_store(&running, 1);
    pthread_t t[NREPLACERS + NREADERS + 1];
    int n = 0;
    for (long i = 0; i < NREPLACERS; i++)
        t[n++] = test_spawn(replacer, (void *)i);
    for (long i = 0; i < NREADERS; i++)
        t[n++] = test_spawn(reader, NULL);
    t[n++] = test_spawn(resizer, NULL);
    for (int i = 0; i < n; i++)
        test_join(t[i]);

    CHECK_EQ(atomic_load(&bad), 0);
    CHECK_EQ(frt_map_len(map), STABLE);
    for (uint64_t key = 0; key < STABLE; key++) {
        val *v = (val *)frt_map_get(map, &key, sizeof key);
        CHECK(v);
        CHECK_EQ(v->seq, last_seq[key]); /* the replacer's last set is the value */
        frt_decref(&v->ob);
    }
    frt_decref((frt_object *)map);
    CHECK_EQ(frt_shutdown(), 0);
    CHECK_EQ(atomic_load(&destroyed_n), atomic_load(&created)); /* no value lost in an old array */
    TEST_PASS("test_map_replace_race");
    return 0;
}
