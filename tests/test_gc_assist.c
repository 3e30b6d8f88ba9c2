/* A collection's sweep shared with a thread that allocates meanwhile
 * (collector/sweep.c). The main thread collects a large set of garbage
 * cycles; as its collection starts, another thread begins to allocate
 * cycles of its own, and once its count runs FRT_GC_BACKLOG thresholds
 * ahead it joins the sweep. Every garbage object is destroyed exactly
 * once, never while referenced (the destroy checks its count), the
 * explicit collection returns with all of its garbage destroyed, and the
 * allocating thread did destroy some of it (on a machine with two CPUs,
 * where the two threads run side by side). Run under TSan by the tsan
 * preset: clear() and the holds' drops race between the two threads. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include <frt/frt.h>

#include "runtime/os.h" /* frt_test_sys_live */
#include "test_util.h"
#include "gc_nodes.h"

#define RINGS SCALED(20000L)
#define RING 8
#define ROUNDS 20
#define PER_ROUND 50000L /* objects the allocator makes per round, at most */

static __thread int on_allocator;
static long main_nodes;                /* ids below this are the collector's garbage */
static _Atomic long assisted;          /* of those, destroyed on the allocating thread */
static _Atomic int phase;              /* 0 wait, 1 allocate, 2 round over, 3 leave */
static _Atomic long allocated;

static void counted_destroy(frt_object *self)
{
    if (on_allocator && ((node *)self)->id < main_nodes)
        atomic_fetch_add(&assisted, 1);
    node_destroy(self);
}

static const frt_type assist_type = {"assist_node", sizeof(node), node_traverse, node_clear, NULL,
                                     counted_destroy};

/* Main's round: it arms the callback, and its collection's first callback,
 * before the world stops, lets the allocator go. */
static _Atomic int armed, round_no, ack;

static void on_start(int ph, const frt_gc_info *info, void *ctx)
{
    (void)info, (void)ctx;
    if (ph == FRT_GC_START && atomic_exchange(&armed, 0))
        atomic_store(&phase, 1);
}

/* Between rounds the allocator sits in a blocking section, where it runs
 * no collection of its own, and acknowledges the end of each round there. */
static void *allocator(void *arg)
{
    (void)arg;
    CHECK_EQ(frt_thread_attach(), 0);
    on_allocator = 1;
    for (;;) {
        int ph;
        frt_blocking_begin();
        while ((ph = atomic_load(&phase)) != 1 && ph != 3) {
            if (ph == 2)
                atomic_store(&ack, atomic_load(&round_no));
            sched_yield();
        }
        frt_blocking_end();
        if (ph == 3)
            break;
        for (long budget = PER_ROUND; atomic_load(&phase) == 1;) {
            if (budget <= 0) { /* the ids are finite: wait for the round to end */
                frt_safepoint();
                sched_yield();
                continue;
            }
            budget -= 2;
            node *a = make_of(&assist_type), *b = make_of(&assist_type);
            link_to(a, 0, b);
            link_to(b, 0, a);
            frt_decref(&a->ob);
            frt_decref(&b->ob); /* a garbage cycle: the count only grows */
            atomic_fetch_add_explicit(&allocated, 2, memory_order_relaxed);
        }
    }
    frt_thread_detach();
    return NULL;
}

/* The allocator idle again after round r (its own collections done). */
static void wait_ack(int r)
{
    while (atomic_load(&ack) != r) {
        frt_safepoint(); /* its collections may stop the world */
        sched_yield();
    }
}

static void garbage_rings(void)
{
    for (long r = 0; r < RINGS; r++) {
        node *first = make_of(&assist_type), *prev = first;
        for (int i = 1; i < RING; i++) {
            node *n = make_of(&assist_type);
            link_to(prev, 0, n);
            frt_decref(&n->ob);
            prev = n;
        }
        link_to(prev, 0, first);
        frt_decref(&first->ob);
    }
}

int main(void)
{
    test_watchdog("test_gc_assist", 280);
    gc_setup(1);
    cpu_set_t cpus;
    CHECK_EQ(sched_getaffinity(0, sizeof cpus, &cpus), 0);
    int two_cpus = CPU_COUNT(&cpus) >= 2;
    atomic_store(&phase, 0);
    pthread_t t = test_spawn(allocator, NULL);
    CHECK_EQ(frt_gc_callback_add(on_start, NULL), 0);
    int round = 0;
    do {
        /* Everything of the rounds before is gone: the ids start again. */
        frt_gc_collect(2);
        CHECK_EQ(atomic_load(&destroyed), atomic_load(&next_id));
        CHECK_EQ(atomic_load(&bad_destroys), 0);
        reset_counts();
        /* Made with collections off and the allocator idle, so that no
         * other run can take them: the run below is ours. */
        frt_gc_disable();
        long first = atomic_load(&next_id);
        garbage_rings();
        main_nodes = atomic_load(&next_id);
        frt_gc_enable();
        atomic_store(&phase, 0); /* no acknowledgement until this round ends */
        atomic_store(&round_no, round + 1);
        atomic_store(&armed, 1);
        long got = frt_gc_collect(2);
        atomic_store(&phase, 2);
        CHECK(got >= RINGS * RING);
        /* Returned with every object of ours destroyed, once. */
        for (long id = first; id < main_nodes; id++)
            CHECK_EQ(atomic_load(&destroy_by_id[id]), 1);
        CHECK_EQ(atomic_load(&bad_destroys), 0);
        round++;
        wait_ack(round);
    } while (two_cpus && atomic_load(&assisted) == 0 && round < ROUNDS);
    fprintf(stderr, "test_gc_assist: %d round(s), %ld objects destroyed by the allocating thread, "
                    "%ld allocated by it\n",
            round, atomic_load(&assisted), atomic_load(&allocated));
    if (two_cpus)
        CHECK(atomic_load(&assisted) > 0);
    atomic_store(&phase, 3);
    test_join(t);
    frt_gc_callback_remove(on_start, NULL);
    frt_gc_collect(2);
    CHECK_EQ(atomic_load(&destroyed), atomic_load(&next_id));
    gc_teardown();
    CHECK_EQ(frt_test_sys_live(), 0);
    TEST_PASS("test_gc_assist");
    return 0;
}
