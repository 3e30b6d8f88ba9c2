/* frt_ref_load on some threads while others store into the same slots and
 * drop the last references to what was there: every load returns NULL or a
 * live object with a counted reference, never a destroyed one, and every
 * object is destroyed exactly once. Readers pass through quiescent states
 * (safepoints), offline periods (blocking sections) and stops of the world
 * (collections) while they race; writers replace objects by store,
 * exchange and compare-exchange, owned and shared ones, so the last decref
 * happens on the owner, on a non-owner (queued or merged), and on readers.
 * Every 8th object is large (mapped alone, unmapped when freed): a load
 * that reached freed memory faults. Under TSan a load that handed out
 * reused memory is a reported race. */
#include <frt/frt.h>

#include "test_util.h"

#define MAGIC 0x5107f00du
#define NSLOTS 8
#define NWRITERS 2
#define NREADERS 2

typedef struct node {
    frt_object ob;
    _Atomic unsigned magic;
    long payload;
} node;

static _Atomic long created, destroyed_n, bad, loads_hit;
static _Atomic int writers_left;
static frt_ref slots[NSLOTS];

static void node_destroy(frt_object *self)
{
    node *n = (node *)self;
    if (atomic_exchange(&n->magic, 0) != MAGIC)
        atomic_fetch_add(&bad, 1);
    n->payload = -1; /* a plain write: TSan pairs it with readers' reads */
    atomic_fetch_add(&destroyed_n, 1);
}

static const frt_type node_type = {"race.node", sizeof(node), NULL, NULL, NULL, node_destroy};

/* Every 8th node is large: mapped alone, and unmapped when freed, so a
 * load that touched a freed one without deferred reclamation would fault. */
static frt_object *node_new(long v)
{
    node *n = (node *)frt_new_var(&node_type, v % 8 == 0 ? FRT_SMALL_MAX : 0);
    CHECK(n);
    n->payload = v;
    atomic_store(&n->magic, MAGIC);
    atomic_fetch_add(&created, 1);
    return &n->ob;
}

static void *writer(void *arg)
{
    long id = (long)arg;
    CHECK_EQ(frt_thread_attach(), 0);
    uint64_t x = 0x9e3779b97f4a7c15ull * (uint64_t)(id + 1);
    long rounds = SCALED(200000);
    for (long i = 0; i < rounds; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        frt_ref *r = &slots[x % NSLOTS];
        frt_object *o = node_new(i);
        if ((x >> 8) % 4 == 0)
            frt_make_shared(o);
        switch ((x >> 12) % 4) {
        case 0:
        case 1:
            frt_ref_store(r, o);
            break;
        case 2:
            frt_xdecref(frt_ref_exchange(r, o));
            break;
        default: {
            frt_object *cur = frt_ref_load(r);
            frt_ref_compare_exchange(r, cur, o);
            frt_xdecref(cur);
        }
        }
        frt_decref(o);
        if ((i & 15) == 0)
            frt_safepoint();
        if ((i & 4095) == 0)
            frt_gc_collect(0);
    }
    atomic_fetch_sub(&writers_left, 1);
    frt_thread_detach();
    return NULL;
}

static void *reader(void *arg)
{
    (void)arg;
    CHECK_EQ(frt_thread_attach(), 0);
    frt_object *kept = NULL; /* held across a safepoint: we may be the last holder */
    for (unsigned long i = 0; atomic_load(&writers_left) > 0; i++) {
        frt_object *o = frt_ref_load(&slots[i % NSLOTS]);
        if (o) {
            node *n = (node *)o;
            if (atomic_load(&n->magic) != MAGIC || n->payload < 0)
                atomic_fetch_add(&bad, 1);
            atomic_fetch_add_explicit(&loads_hit, 1, memory_order_relaxed);
            if (i % 7 == 0) {
                frt_xdecref(kept);
                kept = o;
            } else {
                frt_decref(o);
            }
        }
        if ((i & 31) == 0)
            frt_safepoint();
        if ((i & 1023) == 0) {
            frt_blocking_begin();
            sched_yield();
            frt_blocking_end();
        }
    }
    frt_xdecref(kept);
    frt_thread_detach();
    return NULL;
}

int main(void)
{
    test_watchdog("test_ref_race", 280);
    CHECK_EQ(frt_init(NULL), 0);
    for (int i = 0; i < NSLOTS; i++)
        frt_ref_init(&slots[i], NULL);
    atomic_store(&writers_left, NWRITERS);
    pthread_t t[NWRITERS + NREADERS];
    for (long i = 0; i < NWRITERS; i++)
        t[i] = test_spawn(writer, (void *)i);
    for (long i = 0; i < NREADERS; i++)
        t[NWRITERS + i] = test_spawn(reader, NULL);
    for (int i = 0; i < NWRITERS + NREADERS; i++)
        test_join(t[i]);
    for (int i = 0; i < NSLOTS; i++)
        frt_ref_clear(&slots[i]);
    frt_heap_trim();
    frt_heap_stats st;
    frt_heap_get_stats(&st);
    CHECK_EQ(st.reclaim_waiting_blocks, 0);
    CHECK(st.reclaim_waiting_peak > 0);
    CHECK_EQ(frt_shutdown(), 0);
    CHECK_EQ(atomic_load(&bad), 0);
    CHECK_EQ(atomic_load(&destroyed_n), atomic_load(&created));
    CHECK(atomic_load(&loads_hit) > 0);
    fprintf(stderr, "test_ref_race: %ld objects, %ld loads hit\n", atomic_load(&created),
            atomic_load(&loads_hit));
    TEST_PASS("test_ref_race");
    return 0;
}
