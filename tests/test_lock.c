/* frt_mutex and critical sections (<frt/lock.h>): exclusion, the
 * suspension scheme that makes nested sections deadlock-free, lock waits
 * that a stop-the-world does not wait for, and the rule that leaving a
 * blocking section (or waiting for a lock) runs no finalizer or destructor:
 * those wait for the next safepoint. */
#define _GNU_SOURCE
#include <stdio.h>

#include <frt/frt.h>

#include "runtime/tstate.h"
#include "test_util.h"

typedef struct counter {
    frt_object ob;
    long n;
} counter;
static const frt_type counter_type = {"lock.counter", sizeof(counter), NULL, NULL, NULL, NULL};

static counter *new_counter(void)
{
    counter *c = (counter *)frt_new(&counter_type);
    CHECK(c != NULL);
    frt_make_shared(&c->ob);
    return c;
}

/* ------------------------------------------------------------------ */
/* 1. The mutex on its own. */

static void test_mutex_api(void)
{
    frt_mutex m = FRT_MUTEX_INIT;
    CHECK(!frt_mutex_is_locked(&m));
    CHECK_EQ(frt_mutex_lock(&m), 0);
    CHECK(frt_mutex_is_locked(&m));
    CHECK_EQ(frt_mutex_trylock(&m), 0);
    CHECK_EQ(frt_mutex_unlock(&m), 0);
    CHECK_EQ(frt_mutex_trylock(&m), 1);
    CHECK_EQ(frt_mutex_unlock(&m), 0);
#if !FRT_DEBUG /* the debug build aborts on these (test_misuse) */
    CHECK_EQ(frt_mutex_lock(NULL), FRT_EINVAL);
    CHECK_EQ(frt_mutex_unlock(&m), FRT_ESTATE);
#endif
    CHECK_EQ(frt_critical_section_begin(NULL, NULL), FRT_EINVAL);
    CHECK_EQ(sizeof(frt_object), 32);
}

#define M_THREADS 4
static frt_mutex m_lock = FRT_MUTEX_INIT;
static long m_count; /* plain: the mutex is all that protects it */
static long m_iters;

static void *mutex_worker(void *arg)
{
    int attach = (int)(intptr_t)arg & 1; /* unattached threads may use a standalone mutex */
    if (attach)
        CHECK_EQ(frt_thread_attach(), 0);
    for (long i = 0; i < m_iters; i++) {
        frt_mutex_lock(&m_lock);
        m_count++;
        frt_mutex_unlock(&m_lock);
        if (attach && (i & 255) == 0)
            frt_safepoint();
    }
    if (attach)
        frt_thread_detach();
    return NULL;
}

static void test_mutex_contended(void)
{
    m_iters = SCALED(200000);
    pthread_t t[M_THREADS];
    for (int i = 0; i < M_THREADS; i++)
        t[i] = test_spawn(mutex_worker, (void *)(intptr_t)i);
    for (int i = 0; i < M_THREADS; i++)
        test_join(t[i]);
    CHECK_EQ(m_count, m_iters * M_THREADS);
}

/* ------------------------------------------------------------------ */
/* 2. Nested sections in opposite orders (A then B, B then A) and pairs:
 * without suspension this deadlocks within a few iterations. */

static counter *ab[2];
static long ab_iters;

static void *abba_worker(void *arg)
{
    int first = (int)(intptr_t)arg;
    CHECK_EQ(frt_thread_attach(), 0);
    for (long i = 0; i < ab_iters; i++) {
        FRT_BEGIN_CRITICAL_SECTION(ab[first]);
        ab[first]->n++;
        FRT_BEGIN_CRITICAL_SECTION(ab[!first]);
        ab[!first]->n++;
        FRT_BEGIN_CRITICAL_SECTION(ab[first]); /* held by an outer section */
        ab[first]->n++;
        FRT_END_CRITICAL_SECTION();
        FRT_END_CRITICAL_SECTION();
        FRT_BEGIN_CRITICAL_SECTION2(ab[0], ab[1]);
        ab[0]->n++;
        ab[1]->n++;
        FRT_BEGIN_CRITICAL_SECTION2(ab[1], ab[1]); /* same object twice: one lock */
        ab[1]->n--;
        FRT_END_CRITICAL_SECTION();
        FRT_END_CRITICAL_SECTION();
        FRT_END_CRITICAL_SECTION();
        if ((i & 63) == 0)
            frt_safepoint();
    }
    frt_thread_detach();
    return NULL;
}

static void test_abba(void)
{
    ab_iters = SCALED(100000);
    ab[0] = new_counter();
    ab[1] = new_counter();
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        t[i] = test_spawn(abba_worker, (void *)(intptr_t)(i & 1));
    for (int i = 0; i < 4; i++)
        test_join(t[i]);
    /* per iteration: first +2, second +1, pair +1/+1, then -1 on ab[1] */
    CHECK_EQ(ab[0]->n + ab[1]->n, 4 * 4 * ab_iters);
    CHECK(!frt_mutex_is_locked(&ab[0]->ob.ob_mutex));
    CHECK(!frt_mutex_is_locked(&ab[1]->ob.ob_mutex));
    frt_decref(&ab[0]->ob);
    frt_decref(&ab[1]->ob);
}

/* ------------------------------------------------------------------ */
/* 3. A blocking section inside a critical section releases the object:
 * the holder waits (blocked) for another thread that needs the object. */

static counter *bl_obj;
static _Atomic long bl_stage;

static void *bl_other(void *arg)
{
    (void)arg;
    CHECK_EQ(frt_thread_attach(), 0);
    test_wait_at_least(&bl_stage, 1, 1, "holder inside its blocking section");
    FRT_BEGIN_CRITICAL_SECTION(bl_obj);
    bl_obj->n++;
    FRT_END_CRITICAL_SECTION();
    atomic_store(&bl_stage, 2);
    frt_thread_detach();
    return NULL;
}

static void test_blocking_suspends(void)
{
    bl_obj = new_counter();
    pthread_t t = test_spawn(bl_other, NULL);
    FRT_BEGIN_CRITICAL_SECTION(bl_obj);
    bl_obj->n = 10;
    frt_blocking_begin();
    atomic_store(&bl_stage, 1);
    test_wait_at_least(&bl_stage, 2, 0, "the other thread's section");
    frt_blocking_end();
    CHECK_EQ(bl_obj->n, 11); /* re-locked: the other thread's update is ours to see */
    CHECK(frt_mutex_is_locked(&bl_obj->ob.ob_mutex));
    FRT_END_CRITICAL_SECTION();
    CHECK(!frt_mutex_is_locked(&bl_obj->ob.ob_mutex));
    test_join(t);
    frt_decref(&bl_obj->ob);
}

/* ------------------------------------------------------------------ */
/* 4. A stop-the-world does not wait for a thread waiting for a lock, nor
 * for the lock's holder to leave its section. */

static frt_mutex sw_lock = FRT_MUTEX_INIT;
static _Atomic long sw_stage;

static void *sw_waiter(void *arg)
{
    (void)arg;
    CHECK_EQ(frt_thread_attach(), 0);
    atomic_store(&sw_stage, 1);
    frt_mutex_lock(&sw_lock); /* parks: the main thread holds it */
    frt_mutex_unlock(&sw_lock);
    atomic_store(&sw_stage, 2);
    frt_thread_detach();
    return NULL;
}

static void test_stw_while_waiting(void)
{
    frt_mutex_lock(&sw_lock);
    pthread_t t = test_spawn(sw_waiter, NULL);
    test_wait_at_least(&sw_stage, 1, 1, "waiter attached");
    for (int i = 0; i < 20; i++) {
        CHECK_EQ(frt_stop_the_world(), 0); /* would hang if the waiter counted as running */
        frt_start_the_world();
        CHECK(frt_gc_collect(0) >= 0);
    }
    frt_mutex_unlock(&sw_lock);
    test_wait_at_least(&sw_stage, 2, 1, "waiter done");
    test_join(t);
}

/* 4b. A thread parked for a stop holds none of its sections' locks: with
 * the world stopped, the object it is in a section on is free. */

static counter *pk_obj;
static _Atomic long pk_stage;

static void *pk_holder(void *arg)
{
    (void)arg;
    CHECK_EQ(frt_thread_attach(), 0);
    FRT_BEGIN_CRITICAL_SECTION(pk_obj);
    atomic_store(&pk_stage, 1);
    while (atomic_load(&pk_stage) < 2)
        frt_safepoint(); /* parks here while main holds the world */
    CHECK(frt_mutex_is_locked(&pk_obj->ob.ob_mutex)); /* resumed */
    FRT_END_CRITICAL_SECTION();
    frt_thread_detach();
    return NULL;
}

static void test_parked_holds_nothing(void)
{
    pk_obj = new_counter();
    pthread_t t = test_spawn(pk_holder, NULL);
    test_wait_at_least(&pk_stage, 1, 1, "holder in its section");
    for (int i = 0; i < 10; i++) {
        CHECK_EQ(frt_stop_the_world(), 0);
        CHECK_EQ(frt_mutex_trylock(&pk_obj->ob.ob_mutex), 1);
        CHECK_EQ(frt_mutex_unlock(&pk_obj->ob.ob_mutex), 0);
        frt_start_the_world();
    }
    atomic_store(&pk_stage, 2);
    test_join(t);
    frt_decref(&pk_obj->ob);
}

/* ------------------------------------------------------------------ */
/* 5. Leaving a blocking section runs no finalizer: a collection requested
 * while the thread was blocked runs at its next safepoint instead. */

typedef struct fnode {
    frt_object ob;
    frt_object *peer;
} fnode;
static _Atomic int phase, finalized_in_phase = -1;
static int fnode_traverse(frt_object *self, frt_visit_fn visit, void *arg)
{
    fnode *n = (fnode *)self;
    return n->peer ? visit(n->peer, arg) : 0;
}
static void fnode_clear(frt_object *self)
{
    fnode *n = (fnode *)self;
    frt_object *p = n->peer;
    n->peer = NULL;
    frt_xdecref(p);
}
static void fnode_finalize(frt_object *self)
{
    (void)self;
    int expected = -1;
    atomic_compare_exchange_strong(&finalized_in_phase, &expected, atomic_load(&phase));
}
static const frt_type fnode_type = {"lock.fnode", sizeof(fnode), fnode_traverse, fnode_clear,
                                    fnode_finalize, fnode_clear};

static void test_blocking_end_runs_nothing(void)
{
    frt_gc_collect(2);
    size_t saved[3];
    frt_gc_get_threshold(saved);
    fnode *a = (fnode *)frt_new(&fnode_type), *b = (fnode *)frt_new(&fnode_type);
    a->peer = frt_newref(&b->ob);
    b->peer = frt_newref(&a->ob);
    frt_decref(&a->ob);
    frt_decref(&b->ob);
    frt_gc_set_threshold(1, 10, 10);
    atomic_store(&phase, 1);
    frt_blocking_begin();
    /* What a collection request that arrives meanwhile leaves behind. */
    atomic_fetch_or(&frt__tstate()->word, FRT_TS_GC);
    frt_blocking_end();
    atomic_store(&phase, 2);
    CHECK(atomic_load(&finalized_in_phase) != 1);
    frt_safepoint();
    CHECK_EQ(atomic_load(&finalized_in_phase), 2);
    frt_gc_set_threshold(saved[0], saved[1], saved[2]);
}

int main(void)
{
    test_watchdog("test_lock", 240);
    CHECK_EQ(frt_init(NULL), 0);
    test_mutex_api();
    test_mutex_contended();
    test_abba();
    test_blocking_suspends();
    test_stw_while_waiting();
    test_parked_holds_nothing();
    test_blocking_end_runs_nothing();
    CHECK(frt_shutdown() >= 0);
    TEST_PASS("test_lock");
    return 0;
}
