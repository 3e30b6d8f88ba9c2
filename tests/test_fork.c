/* fork() while other threads are attached and busy (runtime/fork.c).
 *
 * Three workers grow rings of objects, hand rings to each other through
 * mailboxes (so counts go through other owners' merge queues), drop them
 * as cyclic garbage, collect, and sit in blocking sections, while the main
 * thread forks again and again: attached, from inside a blocking section,
 * and from a thread that is not attached. Each child is left with one
 * thread and must:
 *   - collect (before the fix its first collection waited forever for the
 *     threads that did not come along: the watchdog fails it);
 *   - allocate, free and collect cycles; run weakref callbacks, also on
 *     objects a vanished thread owned;
 *   - find the hot object's count exact: the vanished workers' per-thread
 *     counts were folded into it (a thread of the child that attaches in
 *     a vanished worker's state counts on it too);
 *   - drop every reference the workers kept, after which every object
 *     ever made (before and after the fork) was destroyed exactly once:
 *     what the vanished threads owned, had queued or were freeing was
 *     taken over, nothing leaked;
 *   - (without TSan, which cannot start threads after such a fork) attach
 *     a new thread, which adopts a vanished thread's heap;
 *   - shut down with frt_shutdown() == 0, keeping no block of its own
 *     (batches that liburcu's call_rcu worker had not freed at the fork
 *     are the child's to free).
 * The workers keep every reference they hold in global slots, never only on
 * their stack across an frt call (where they may be parked at the fork), so
 * "nothing left" is exact. The parent then goes on, and ends the same way. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#include <frt/frt.h>

#include "check.h"
#include "runtime/os.h"
#include "test_util.h"

typedef struct ring_node {
    frt_object ob;
    frt_object *next;
} ring_node;

static _Atomic long created, destroyed;

static int ring_traverse(frt_object *self, frt_visit_fn visit, void *arg)
{
    frt_object *n = ((ring_node *)self)->next;
    return n ? visit(n, arg) : 0;
}

static void ring_clear(frt_object *self)
{
    ring_node *r = (ring_node *)self;
    frt_object *n = r->next;
    r->next = NULL;
    frt_xdecref(n);
}

static void ring_destroy(frt_object *self)
{
    ring_clear(self);
    atomic_fetch_add(&destroyed, 1);
}

static const frt_type ring_type = {"ring_node", sizeof(ring_node), ring_traverse, ring_clear,
                                   NULL, ring_destroy};

/* No frt call between frt_new returning and the count: a fork never finds
 * an object made and not counted. */
static ring_node *new_node(void)
{
    ring_node *n = (ring_node *)frt_new(&ring_type);
    CHECK(n != NULL);
    atomic_fetch_add(&created, 1);
    return n;
}

#define WORKERS 3
#define SLOTS 64
static frt_object *roots[WORKERS][SLOTS]; /* worker w's references: only w writes them */
static _Atomic(frt_object *) mailbox[WORKERS];
static _Atomic int stop_workers;
static frt_ref published[WORKERS];
static frt_object *publishing[WORKERS]; /* the new value during a store */
static _Atomic long worker_ops;
/* One hot object (frt_make_hot) every worker counts on: worker w holds
 * hot_held[w] references (only w writes it, with no frt call between a
 * count and the frt_incref or frt_decref it stands for). */
static frt_object *hot_obj;
static long hot_held[WORKERS];
#define HOT_HELD_MAX 8

static uint64_t next_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Grow root i's ring by one, or start a ring there. The new node's one
 * reference goes straight into the ring, with no frt call in between. */
static void grow(frt_object **slot)
{
    ring_node *n = new_node();
    ring_node *r = (ring_node *)*slot;
    if (!r) {
        n->next = frt_newref(&n->ob);
        *slot = &n->ob;
    } else {
        n->next = r->next;
        r->next = &n->ob;
    }
}

static void drop(frt_object **slot)
{
    frt_object *x = *slot;
    *slot = NULL;
    frt_xdecref(x);
}

static void *worker(void *arg)
{
    int w = (int)(intptr_t)arg;
    uint64_t seed = 0x9e3779b97f4a7c15ull * (uint64_t)(w + 1);
    CHECK_EQ(frt_thread_attach(), 0);
    frt_object **mine = roots[w];
    while (!atomic_load(&stop_workers)) {
        uint64_t r = next_rand(&seed);
        frt_object **slot = &mine[(r >> 8) % SLOTS];
        unsigned op = (unsigned)(r % 100);
        if (op < 50) {
            grow(slot);
        } else if (op < 65) {
            drop(slot); /* a ring: cyclic garbage for the collector */
        } else if (op < 75) {
            /* Hand a ring to another worker: it will count on objects we own. */
            frt_object *expected = NULL;
            int to = (w + 1 + (int)((r >> 20) % (WORKERS - 1))) % WORKERS;
            if (*slot && atomic_compare_exchange_strong(&mailbox[to], &expected, *slot))
                *slot = NULL;
        } else if (op < 85) {
            frt_object *got = atomic_exchange(&mailbox[w], NULL);
            if (got) {
                frt_object *old = *slot;
                *slot = got;
                frt_xdecref(old);
            }
        } else if (op < 88) {
            frt_gc_collect((int)((r >> 24) % 3));
        } else if (op < 90) {
            /* Published: when it dies its block waits for a grace period,
             * which a forked child must never wait for (runtime/qsbr.c). */
            ring_node *n = new_node();
            /* Our reference sits in a global across the store: a worker
             * parked inside it (a lock wait while the old value dies)
             * would take one held only on its stack to a child, where
             * nothing could drop it (created - destroyed == 1 there). */
            publishing[w] = &n->ob;
            frt_ref_store(&published[w], &n->ob);
            drop(&publishing[w]);
        } else if (op < 92) {
            frt_blocking_begin();
            sched_yield();
            frt_blocking_end();
        } else if (op < 96) {
            if (hot_held[w] < HOT_HELD_MAX && (r >> 32) % 2) {
                frt_incref(hot_obj);
                hot_held[w]++;
            } else if (hot_held[w] > 0) {
                hot_held[w]--;
                frt_decref(hot_obj);
            }
        } else {
            frt_safepoint();
        }
        atomic_fetch_add(&worker_ops, 1);
    }
    frt_thread_detach();
    return NULL;
}

/* Drop every reference the workers (and the mailboxes) hold. */
static void drop_all_roots(void)
{
    for (int w = 0; w < WORKERS; w++) {
        for (; hot_held[w] > 0; hot_held[w]--)
            frt_decref(hot_obj);
        for (int i = 0; i < SLOTS; i++)
            drop(&roots[w][i]);
        frt_xdecref(atomic_exchange(&mailbox[w], NULL));
        frt_ref_clear(&published[w]);
        drop(&publishing[w]);
    }
}

static _Atomic int callbacks;
static void on_dead(frt_weakref *wr, void *ctx)
{
    (void)wr;
    (void)ctx;
    atomic_fetch_add(&callbacks, 1);
}

/* Deferred frees in the child. liburcu is never called there (a lock a
 * vanished thread held, readers listed online forever): a stop-the-world is
 * the grace period. Before the fix nothing deferred in a child was ever
 * freed and the reclaim_limit did nothing there: the waiting bytes grew
 * with every store. Now the limit bounds them, as in the parent, and a trim
 * frees them all. */
#define RECLAIM_LIMIT (16 * 1024)
#define RECLAIM_SLACK (256 * 64) /* our one unflushed batch of small blocks */
static void child_reclaim(void)
{
    frt_map *m = frt_map_new(0, NULL);
    CHECK(m != NULL);
    frt_ref slot = FRT_REF_INIT;
    size_t most = 0;
    for (int i = 0; i < 20000; i++) {
        ring_node *n = new_node();
        int key = i % 32;
        CHECK_EQ(frt_map_set(m, &key, sizeof key, &n->ob), 0); /* the old value dies */
        CHECK_EQ(frt_ref_store(&slot, &n->ob), 0);
        frt_decref(&n->ob);
        frt_safepoint();
        frt_heap_stats st;
        frt_heap_get_stats(&st);
        if (st.reclaim_waiting_bytes > most)
            most = st.reclaim_waiting_bytes;
    }
    CHECK(most > 0);
    CHECK(most <= RECLAIM_LIMIT + RECLAIM_SLACK);
    frt_ref_clear(&slot);
    frt_decref((frt_object *)m);
    /* Map nodes drop their values a grace period after the map: a second
     * round of frees follows the first. */
    frt_heap_stats st;
    for (int round = 0; round < 4; round++) {
        frt_heap_trim();
        frt_heap_get_stats(&st);
        if (st.reclaim_waiting_bytes == 0)
            break;
    }
    CHECK_EQ(st.reclaim_waiting_bytes, 0);
    CHECK_EQ(st.reclaim_waiting_blocks, 0);
}

#ifndef FRT_TEST_TSAN
static void *child_thread(void *arg)
{
    (void)arg;
    CHECK_EQ(frt_thread_attach(), 0);
    frt_object *ring = NULL;
    for (int i = 0; i < 1000; i++)
        grow(&ring);
    /* Deferred frees from a thread that attached in the child: registered
     * without liburcu, and its reclaim_limit drains stop the world. */
    frt_ref slot = FRT_REF_INIT;
    for (int i = 0; i < 5000; i++) {
        ring_node *n = new_node();
        CHECK_EQ(frt_ref_store(&slot, &n->ob), 0);
        frt_decref(&n->ob);
        frt_safepoint();
    }
    frt_ref_clear(&slot);
    for (int i = 0; i < 3; i++)
        frt_incref(hot_obj);
    for (int i = 0; i < 3; i++)
        frt_decref(hot_obj);
    frt_thread_detach(); /* the ring stays, shared, for the main thread */
    return ring;
}
#endif

/* Exact with no other thread counting: main's reference and the workers'. */
static void check_hot_count(void)
{
    CHECK(frt_is_hot(hot_obj));
    size_t want = 1;
    for (int w = 0; w < WORKERS; w++)
        want += (size_t)hot_held[w];
    CHECK_EQ(frt_refcount(hot_obj), want);
}

/* Everything a child does; returns to _exit(0) only if all of it held. */
static void child_run(int attach_first)
{
    test_watchdog("test_fork (child)", 60);
    if (attach_first) /* forked by a thread that is not attached */
        CHECK_EQ(frt_thread_attach(), 0);
    CHECK(frt_thread_is_attached());
    /* Ids are thread pointers, and the child's next threads get the
     * vanished workers' ones: none of their objects still names them. */
    for (int w = 0; w < WORKERS; w++)
        for (int i = 0; i < SLOTS; i++)
            if (roots[w][i]) {
                uintptr_t tid = atomic_load_explicit(&roots[w][i]->ob_tid, memory_order_relaxed);
                CHECK(tid == 0 || tid == frt__thread_id());
            }
    /* Before the fix: waits forever for the threads that stayed behind. */
    CHECK(frt_gc_collect(2) >= 0);
    check_hot_count();

    /* A weakref to an object a vanished worker owned, and one to ours. */
    frt_weakref *theirs = NULL;
    for (int w = 0; w < WORKERS && !theirs; w++)
        for (int i = 0; i < SLOTS && !theirs; i++)
            if (roots[w][i])
                theirs = frt_weakref_new(roots[w][i], on_dead, NULL);
    ring_node *mine = new_node();
    frt_weakref *ours = frt_weakref_new(&mine->ob, on_dead, NULL);
    CHECK(ours != NULL);
    atomic_store(&callbacks, 0);
    frt_decref(&mine->ob);
    CHECK_EQ(atomic_load(&callbacks), 1);
    CHECK(frt_weakref_get(ours) == NULL);

    /* Cycles made and collected here. */
    frt_object *ring = NULL;
    for (int i = 0; i < 5000; i++)
        grow(&ring);
    drop(&ring);
    CHECK(frt_gc_collect(2) >= 5000);

    child_reclaim();

#ifndef FRT_TEST_TSAN
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, child_thread, NULL), 0);
    frt_blocking_begin();
    void *got;
    CHECK_EQ(pthread_join(t, &got), 0);
    frt_blocking_end();
    frt_object *shared = got;
    drop(&shared);
#endif

    check_hot_count();
    /* What the workers held goes, and with it everything ever made. */
    drop_all_roots();
    drop(&hot_obj);
    frt_gc_collect(2);
    if (theirs) {
        CHECK_EQ(atomic_load(&callbacks), 2);
        CHECK(frt_weakref_get(theirs) == NULL);
        frt_decref(frt_weakref_object(theirs));
    }
    frt_decref(frt_weakref_object(ours));
    CHECK_EQ(atomic_load(&created) - atomic_load(&destroyed), 0);
    frt_heap_trim(); /* waits for no grace period in the child */
    CHECK_EQ(frt_shutdown(), 0);
    /* Not one block of the runtime's own kept: what liburcu held for the
     * vanished call_rcu worker was freed too. */
    CHECK_EQ(frt_test_sys_live(), 0);
    _exit(0);
}

static void check_child(pid_t pid)
{
    CHECK(pid > 0);
    int status = 0;
    frt_blocking_begin(); /* the workers' collections must not wait for us */
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    frt_blocking_end();
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fprintf(stderr, "test_fork: child failed (status 0x%x)\n", status);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void *unattached_forker(void *arg)
{
    (void)arg;
    pid_t pid = fork();
    if (pid == 0)
        child_run(1);
    return (void *)(intptr_t)pid;
}

int main(void)
{
    test_watchdog("test_fork", 240);
    frt_config cfg;
    frt_config_default(&cfg);
    cfg.reclaim_limit = RECLAIM_LIMIT; /* the child passes it many times over */
    CHECK_EQ(frt_init(&cfg), 0);
    hot_obj = &new_node()->ob;
    CHECK_EQ(frt_make_hot(hot_obj), 0);
    pthread_t t[WORKERS];
    for (int w = 0; w < WORKERS; w++)
        t[w] = test_spawn(worker, (void *)(intptr_t)w);

    int forks = SCALED(60) < 12 ? 12 : SCALED(60);
    for (int f = 0; f < forks; f++) {
        /* Let the load build up between forks. */
        long until = atomic_load(&worker_ops) + 2000;
        test_wait_at_least(&worker_ops, until, 1, "worker progress");
        pid_t pid;
        switch (f % 3) {
        case 0:
            pid = fork();
            if (pid == 0)
                child_run(0);
            break;
        case 1: /* fork is a system call: it may sit in a blocking section */
            frt_blocking_begin();
            pid = fork();
            frt_blocking_end();
            if (pid == 0)
                child_run(0);
            break;
        default: {
            pthread_t u;
            frt_blocking_begin();
            CHECK_EQ(pthread_create(&u, NULL, unattached_forker, NULL), 0);
            void *ret;
            CHECK_EQ(pthread_join(u, &ret), 0);
            frt_blocking_end();
            pid = (pid_t)(intptr_t)ret;
            break;
        }
        }
        check_child(pid);
    }

    /* The parent went on all along: it ends exactly as cleanly. */
    long until = atomic_load(&worker_ops) + 2000;
    test_wait_at_least(&worker_ops, until, 1, "worker progress after the forks");
    atomic_store(&stop_workers, 1);
    frt_blocking_begin();
    for (int w = 0; w < WORKERS; w++)
        CHECK_EQ(pthread_join(t[w], NULL), 0);
    frt_blocking_end();
    check_hot_count();
    drop_all_roots();
    drop(&hot_obj);
    frt_gc_collect(2);
    CHECK_EQ(atomic_load(&created) - atomic_load(&destroyed), 0);
    CHECK_EQ(frt_shutdown(), 0);
    fprintf(stderr, "test_fork: %d forks under load, %ld objects: ok\n", forks, atomic_load(&created));
    return 0;
}
