/* Biased reference counting across threads: exact counts under contention,
 * the queue-to-owner path (merge at a safepoint, at detach, on the spot for
 * a thread that has gone), merging when the owner's local count reaches
 * zero, frt_make_shared, threads that exit holding references, objects
 * handed across threads by a queue, merge queues that wait for a batch at
 * a safepoint poll, and immortal objects through all of it.
 *
 * Every object carries an id; destroy counts per id, so "freed exactly once"
 * is checked object by object, and destroy also checks that the object it is
 * given really had a count of zero (a premature free shows up there). */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <frt/frt.h>

#include "runtime/obj_queue.h" /* FRT_OBJQ_BATCH */
#include "test_util.h"
#define TOBJ_MAX_IDS (1L << 20)
#include "tobj.h"

/* ------------------------------------------------------------------ */
/* Scaffolding                                                        */

/* Biased counting of ordinary objects, whose last decref frees them: the
 * runtime must not make a contended one hot by itself (test_hot_adaptive
 * tests that). */
static const frt_config *brc_config(void)
{
    static frt_config cfg;
    frt_config_default(&cfg);
    cfg.hot_adaptive = FRT_HOT_ADAPTIVE_OFF;
    return &cfg;
}

static void join(pthread_t t)
{
    CHECK_EQ(pthread_join(t, NULL), 0);
}

static intptr_t shared_word(tobj *t)
{
    return atomic_load_explicit(&t->ob.ob_ref_shared, memory_order_relaxed);
}

static tobj *new_immortal(void)
{
    tobj *im = make();
    frt_set_immortal(&im->ob);
    CHECK(frt_is_immortal(&im->ob));
    CHECK_EQ(frt_refcount(&im->ob), FRT_REF_IMMORTAL);
    return im;
}

static void check_immortal_intact(tobj *im)
{
    CHECK(frt_is_immortal(&im->ob));
    CHECK_EQ(frt_refcount(&im->ob), FRT_REF_IMMORTAL);
    CHECK_EQ(im->magic, TOBJ_MAGIC);
    CHECK_EQ(atomic_load(&destroy_by_id[im->id]), 0);
}

/* A single-producer single-consumer ring of object pointers. */
#define RING 256
typedef struct spsc {
    _Atomic unsigned long head, tail;
    frt_object *slot[RING];
} spsc;

static int spsc_push(spsc *r, frt_object *o)
{
    unsigned long t = atomic_load_explicit(&r->tail, memory_order_relaxed);
    if (t - atomic_load_explicit(&r->head, memory_order_acquire) == RING)
        return 0;
    r->slot[t % RING] = o;
    atomic_store_explicit(&r->tail, t + 1, memory_order_release);
    return 1;
}

static frt_object *spsc_pop(spsc *r)
{
    unsigned long h = atomic_load_explicit(&r->head, memory_order_relaxed);
    if (h == atomic_load_explicit(&r->tail, memory_order_acquire))
        return NULL;
    frt_object *o = r->slot[h % RING];
    atomic_store_explicit(&r->head, h + 1, memory_order_release);
    return o;
}

/* ------------------------------------------------------------------ */
/* 1. Millions of pairs from the owner and non-owners on the same objects,
 *    while the owner also hands references to the non-owners (so the shared
 *    counts go negative, get queued and merged in the middle of it).      */

#define P_OBJS 4
#define P_WORKERS 3
static tobj *p_obj[P_OBJS];
static tobj *p_imm;
static spsc p_ring[P_WORKERS];
static _Atomic long p_ready, p_go, p_main_done, p_handed, p_dropped;

static void *pairs_worker(void *arg)
{
    int w = (int)(intptr_t)arg;
    CHECK_EQ(frt_thread_attach(), 0);
    atomic_fetch_add(&p_ready, 1);
    test_wait_at_least(&p_go, 1, 0, "go");
    long n = SCALED(2000000L);
    frt_object *im = &p_imm->ob;
    for (long i = 0; i < n; i++) {
        frt_object *o = &p_obj[i % P_OBJS]->ob;
        frt_incref(o);
        if ((i & 7) == w) {
            frt_incref(o);
            frt_incref(o);
            frt_decref(o);
            frt_decref(o);
            /* unbalanced on purpose: an immortal ignores both */
            frt_decref(im);
            frt_decref(im);
            frt_incref(im);
        }
        frt_decref(o);
        frt_object *h = spsc_pop(&p_ring[w]);
        if (h) {
            frt_decref(h);
            atomic_fetch_add_explicit(&p_dropped, 1, memory_order_relaxed);
        }
        if ((i & 4095) == 0)
            frt_safepoint();
    }
    /* Drain what the owner still hands us, then keep w + 1 references to
     * each object: the final count says whether any operation was lost. */
    for (;;) {
        int done = atomic_load(&p_main_done) != 0;
        frt_object *h = spsc_pop(&p_ring[w]);
        if (h) {
            frt_decref(h);
            atomic_fetch_add_explicit(&p_dropped, 1, memory_order_relaxed);
        } else if (done) {
            break;
        } else {
            sched_yield();
        }
    }
    for (int k = 0; k < P_OBJS; k++)
        for (int j = 0; j <= w; j++)
            frt_incref(&p_obj[k]->ob);
    frt_thread_detach();
    return NULL;
}

static void test_pairs(void)
{
    CHECK_EQ(frt_init(brc_config()), 0);
    reset_counts();
    atomic_store(&p_ready, 0);
    atomic_store(&p_go, 0);
    atomic_store(&p_main_done, 0);
    atomic_store(&p_handed, 0);
    atomic_store(&p_dropped, 0);
    memset(p_ring, 0, sizeof p_ring);
    for (int k = 0; k < P_OBJS; k++)
        p_obj[k] = make();
    p_imm = new_immortal();

    pthread_t t[P_WORKERS];
    for (int w = 0; w < P_WORKERS; w++)
        t[w] = test_spawn(pairs_worker, (void *)(intptr_t)w);
    test_wait_at_least(&p_ready, P_WORKERS, 0, "workers attached");
    atomic_store(&p_go, 1);

    long n = SCALED(2000000L);
    for (long i = 0; i < n; i++) {
        frt_object *o = &p_obj[i % P_OBJS]->ob;
        frt_incref(o);
        frt_incref(o);
        frt_decref(o);
        frt_decref(o);
        if ((i & 63) == 0) {
            /* A reference counted on our side, dropped on theirs. */
            int w = (int)((i >> 6) % P_WORKERS);
            frt_incref(o);
            if (spsc_push(&p_ring[w], o))
                atomic_fetch_add_explicit(&p_handed, 1, memory_order_relaxed);
            else
                frt_decref(o);
        }
        if ((i & 1023) == 0)
            frt_safepoint();
    }
    atomic_store(&p_main_done, 1);
    for (int w = 0; w < P_WORKERS; w++)
        join(t[w]);
    frt_safepoint();
    CHECK_EQ(atomic_load(&p_dropped), atomic_load(&p_handed));
    CHECK(atomic_load(&p_handed) > 0);

    long extra = 0;
    for (int w = 0; w < P_WORKERS; w++)
        extra += w + 1;
    for (int k = 0; k < P_OBJS; k++) {
        CHECK_EQ(frt_refcount(&p_obj[k]->ob), 1 + extra);
        CHECK_EQ(p_obj[k]->magic, TOBJ_MAGIC);
    }
    CHECK_EQ(atomic_load(&destroyed), 0);
    check_immortal_intact(p_imm);

    for (int k = 0; k < P_OBJS; k++) {
        for (long j = 0; j < extra; j++)
            frt_decref(&p_obj[k]->ob);
        CHECK_EQ(frt_refcount(&p_obj[k]->ob), 1);
        CHECK_EQ(atomic_load(&destroyed), k);
        frt_decref(&p_obj[k]->ob);
        CHECK_EQ(atomic_load(&destroyed), k + 1);
    }
    check_destroyed_once(0, P_OBJS); /* the immortal is id P_OBJS */
    check_immortal_intact(p_imm);
    CHECK_EQ(frt_shutdown(), 0);
}

/* ------------------------------------------------------------------ */
/* 2. The last reference dropped by a non-owner: queued to the owner, freed
 *    at the owner's safepoint; or at the owner's detach.                 */

static tobj *q_obj;
static _Atomic long q_phase;

static void *drop_three(void *arg)
{
    (void)arg;
    CHECK_EQ(frt_thread_attach(), 0);
    CHECK(!frt_is_owned(&q_obj->ob));
    frt_decref(&q_obj->ob);
    /* The first drop found the shared count at zero: queued, not applied. */
    intptr_t s = shared_word(q_obj);
    CHECK_EQ(FRT_REF_STATE(s), FRT_REF_QUEUED);
    CHECK_EQ(s >> FRT_REF_SHARED_SHIFT, 0);
    frt_decref(&q_obj->ob);
    frt_decref(&q_obj->ob);
    s = shared_word(q_obj);
    CHECK_EQ(FRT_REF_STATE(s), FRT_REF_QUEUED);
    CHECK_EQ(s >> FRT_REF_SHARED_SHIFT, -2); /* negative while the owner counts locally */
    frt_thread_detach();
    return NULL;
}

static void *owner_waits_then_detaches(void *arg)
{
    (void)arg;
    CHECK_EQ(frt_thread_attach(), 0);
    q_obj = make();
    frt_incref(&q_obj->ob); /* local 2: ours and main's */
    frt_decref(&q_obj->ob); /* drop ours: local 1, held by main */
    CHECK_EQ(frt_refcount(&q_obj->ob), 1);
    atomic_store(&q_phase, 1);
    /* Attached and not polling: main's drop must stay queued to us. */
    test_wait_at_least(&q_phase, 2, 0, "main's drop");
    long before = atomic_load(&destroyed);
    frt_thread_detach(); /* merges what was queued: the object goes here */
    CHECK_EQ(atomic_load(&destroyed), before + 1);
    return NULL;
}

static void test_queue_to_owner(void)
{
    CHECK_EQ(frt_init(brc_config()), 0);
    reset_counts();

    /* Owner drops its own reference first; the non-owner's drops queue. */
    q_obj = make();
    for (int i = 0; i < 3; i++)
        frt_incref(&q_obj->ob);
    frt_decref(&q_obj->ob); /* ours: local 3, all three held by the thread */
    CHECK_EQ(frt_refcount(&q_obj->ob), 3);
    join(test_spawn(drop_three, NULL));
    CHECK_EQ(atomic_load(&destroyed), 0);
    CHECK(frt_is_owned(&q_obj->ob));
    frt_safepoint(); /* the merge: 3 local - 2 shared - 1 queued = 0 */
    CHECK_EQ(atomic_load(&destroyed), 1);

    /* Owner still holds one: the merge leaves it alive, merged, exact. */
    q_obj = make();
    for (int i = 0; i < 3; i++)
        frt_incref(&q_obj->ob);
    join(test_spawn(drop_three, NULL));
    CHECK_EQ(atomic_load(&destroyed), 1);
    frt_safepoint();
    CHECK_EQ(atomic_load(&destroyed), 1);
    CHECK(!frt_is_owned(&q_obj->ob));
    CHECK_EQ(FRT_REF_STATE(shared_word(q_obj)), FRT_REF_MERGED);
    CHECK_EQ(frt_refcount(&q_obj->ob), 1);
    frt_incref(&q_obj->ob);
    CHECK_EQ(frt_refcount(&q_obj->ob), 2);
    frt_decref(&q_obj->ob);
    frt_decref(&q_obj->ob);
    CHECK_EQ(atomic_load(&destroyed), 2);

    /* The owner never polls, then detaches: detach merges and frees. */
    atomic_store(&q_phase, 0);
    pthread_t t = test_spawn(owner_waits_then_detaches, NULL);
    test_wait_at_least(&q_phase, 1, 0, "owner ready");
    CHECK(!frt_is_owned(&q_obj->ob));
    frt_decref(&q_obj->ob);
    CHECK_EQ(FRT_REF_STATE(shared_word(q_obj)), FRT_REF_QUEUED);
    frt_safepoint(); /* our safepoint is not the owner's */
    CHECK_EQ(atomic_load(&destroyed), 2);
    atomic_store(&q_phase, 2);
    join(t);
    CHECK_EQ(atomic_load(&destroyed), 3);
    check_destroyed_once(0, 3);
    CHECK_EQ(frt_shutdown(), 0);
}

/* ------------------------------------------------------------------ */
/* 3. The owner's local count reaches zero while others hold shared
 *    references: the object becomes merged, and the last non-owner decref
 *    frees it on the spot. Then the same as a race, many times.          */

#define Z_WORKERS 3
static tobj *_Atomic z_obj;
static _Atomic long z_round, z_increfed, z_finished, z_checked;

static void *zero_local_worker(void *arg)
{
    (void)arg;
    CHECK_EQ(frt_thread_attach(), 0);
    test_wait_at_least(&z_round, 1, 0, "object");
    tobj *o = atomic_load(&z_obj);
    frt_incref(&o->ob);
    atomic_fetch_add(&z_increfed, 1);
    test_wait_at_least(&z_round, 2, 0, "owner's drop");
    frt_decref(&o->ob);
    atomic_fetch_add(&z_finished, 1);
    /* No safepoint, no detach until main has looked. */
    test_wait_at_least(&z_checked, 1, 0, "main's check");
    frt_thread_detach();
    return NULL;
}

static void *zero_local_racer(void *arg)
{
    (void)arg;
    CHECK_EQ(frt_thread_attach(), 0);
    long rounds = SCALED(20000L);
    for (long r = 1; r <= rounds; r++) {
        test_wait_at_least(&z_round, r, 0, "round");
        tobj *o = atomic_load(&z_obj);
        frt_incref(&o->ob);
        atomic_fetch_add(&z_increfed, 1);
        for (int i = 0; i < (int)(r & 15); i++) {
            frt_incref(&o->ob);
            frt_decref(&o->ob);
        }
        frt_decref(&o->ob); /* races the owner's last decref */
        atomic_fetch_add(&z_finished, 1);
    }
    frt_thread_detach();
    return NULL;
}

static void test_merge_zero_local(void)
{
    CHECK_EQ(frt_init(brc_config()), 0);
    reset_counts();
    atomic_store(&z_round, 0);
    atomic_store(&z_increfed, 0);
    atomic_store(&z_finished, 0);
    atomic_store(&z_checked, 0);

    pthread_t t[Z_WORKERS];
    for (int i = 0; i < Z_WORKERS; i++)
        t[i] = test_spawn(zero_local_worker, NULL);
    tobj *o = make();
    atomic_store(&z_obj, o);
    atomic_store(&z_round, 1);
    test_wait_at_least(&z_increfed, Z_WORKERS, 0, "increfs");
    CHECK_EQ(frt_refcount(&o->ob), 1 + Z_WORKERS);
    frt_decref(&o->ob); /* local 0, shared 3: merged, alive */
    CHECK(!frt_is_owned(&o->ob));
    CHECK_EQ(shared_word(o), (intptr_t)Z_WORKERS * FRT_REF_SHARED_ONE | FRT_REF_MERGED);
    CHECK_EQ(frt_refcount(&o->ob), Z_WORKERS);
    CHECK_EQ(atomic_load(&destroyed), 0);
    atomic_store(&z_round, 2);
    test_wait_at_least(&z_finished, Z_WORKERS, 0, "worker drops");
    CHECK_EQ(atomic_load(&destroyed), 1); /* before any safepoint or detach */
    atomic_store(&z_checked, 1);
    for (int i = 0; i < Z_WORKERS; i++)
        join(t[i]);
    check_destroyed_once(0, 1);

    /* The race: the owner's last decref against the non-owners' pairs and
     * their last decrefs, a fresh object each round. */
    reset_counts();
    atomic_store(&z_round, 0);
    atomic_store(&z_increfed, 0);
    atomic_store(&z_finished, 0);
    for (int i = 0; i < Z_WORKERS; i++)
        t[i] = test_spawn(zero_local_racer, NULL);
    long rounds = SCALED(20000L);
    for (long r = 1; r <= rounds; r++) {
        o = make();
        atomic_store(&z_obj, o);
        atomic_store(&z_round, r);
        /* keep ours until every worker holds one of its own */
        test_wait_at_least(&z_increfed, r * Z_WORKERS, 0, "round increfs");
        if (r & 1) {
            frt_incref(&o->ob);
            frt_decref(&o->ob);
        }
        frt_decref(&o->ob);
        test_wait_at_least(&z_finished, r * Z_WORKERS, 0, "round drops");
        if (atomic_load(&destroyed) != r) {
            fprintf(stderr, "test_brc: round %ld: %ld destroyed\n", r, atomic_load(&destroyed));
            exit(1);
        }
    }
    for (int i = 0; i < Z_WORKERS; i++)
        join(t[i]);
    check_destroyed_once(0, rounds);
    CHECK_EQ(frt_shutdown(), 0);
}

/* ------------------------------------------------------------------ */
/* 4. frt_make_shared: the owner gives its bias up; from then on every
 *    count is atomic and the last decref, anywhere, frees at once.       */

static tobj *s_obj;
static tobj *s_imm;
static _Atomic long s_go, s_done;

static void *shared_worker(void *arg)
{
    (void)arg;
    CHECK_EQ(frt_thread_attach(), 0);
    CHECK_EQ(frt_make_shared(&s_obj->ob), FRT_EALREADY);
    CHECK_EQ(frt_make_shared(&s_imm->ob), FRT_EALREADY);
    test_wait_at_least(&s_go, 1, 0, "go");
    long n = SCALED(1000000L);
    for (long i = 0; i < n; i++) {
        frt_incref(&s_obj->ob);
        frt_decref(&s_obj->ob);
    }
    frt_incref(&s_obj->ob);
    atomic_fetch_add(&s_done, 1);
    test_wait_at_least(&s_go, 2, 0, "drop");
    frt_decref(&s_obj->ob);
    frt_decref(&s_obj->ob);
    atomic_fetch_add(&s_done, 1);
    test_wait_at_least(&s_go, 3, 0, "leave");
    frt_thread_detach();
    return NULL;
}

static void *not_owner_make_shared(void *arg)
{
    (void)arg;
    CHECK_EQ(frt_thread_attach(), 0);
    CHECK_EQ(frt_make_shared(&s_obj->ob), FRT_ESTATE);
    CHECK(frt_is_owned(&s_obj->ob) == 0);
    frt_thread_detach();
    return NULL;
}

static void test_make_shared(void)
{
    CHECK_EQ(frt_init(brc_config()), 0);
    reset_counts();
    atomic_store(&s_go, 0);
    atomic_store(&s_done, 0);
    s_imm = new_immortal();
    s_obj = make();
    join(test_spawn(not_owner_make_shared, NULL));
    CHECK(frt_is_owned(&s_obj->ob));
    frt_incref(&s_obj->ob);
    frt_incref(&s_obj->ob);
    CHECK_EQ(frt_make_shared(&s_obj->ob), 0);
    CHECK(!frt_is_owned(&s_obj->ob));
    CHECK_EQ(shared_word(s_obj), 3 * FRT_REF_SHARED_ONE | FRT_REF_MERGED);
    CHECK_EQ(frt_refcount(&s_obj->ob), 3);
    CHECK_EQ(frt_make_shared(&s_obj->ob), FRT_EALREADY);
    CHECK_EQ(frt_make_shared(NULL), FRT_EINVAL);
    CHECK_EQ(frt_make_shared(&s_imm->ob), FRT_EALREADY);

    /* Two of the three references are the workers' to drop. */
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        t[i] = test_spawn(shared_worker, NULL);
    atomic_store(&s_go, 1);
    long n = SCALED(1000000L);
    for (long i = 0; i < n; i++) {
        frt_incref(&s_obj->ob);
        frt_decref(&s_obj->ob);
    }
    test_wait_at_least(&s_done, 2, 0, "workers' pairs");
    CHECK_EQ(frt_refcount(&s_obj->ob), 5);
    frt_decref(&s_obj->ob); /* ours: the workers hold the rest */
    CHECK_EQ(frt_refcount(&s_obj->ob), 4);
    atomic_store(&s_go, 2);
    test_wait_at_least(&s_done, 4, 0, "workers' drops");
    CHECK_EQ(atomic_load(&destroyed), 1); /* no safepoint anywhere */
    atomic_store(&s_go, 3);
    for (int i = 0; i < 2; i++)
        join(t[i]);
    check_destroyed_once(1, 1); /* s_obj; the immortal is id 0 */
    check_immortal_intact(s_imm);
    CHECK_EQ(frt_shutdown(), 0);
}

/* ------------------------------------------------------------------ */
/* 5. Threads that end attached, without frt_thread_detach (the thread-exit
 *    hook detaches them), with references they created still held by
 *    others: the objects stay alive, and the drops by others free them on
 *    the spot (the owner is gone, so nobody else would ever merge).      */

#define X_PER 2000
#define X_DROPPERS 2
static tobj *x_objs[2][X_PER];
static tobj *x_imm;

static void *exits_attached(void *arg)
{
    int which = (int)(intptr_t)arg;
    CHECK_EQ(frt_thread_attach(), 0);
    for (int i = 0; i < X_PER; i++) {
        tobj *o = make();
        frt_incref(&o->ob); /* two references, both handed to others */
        if (i & 1) {
            frt_incref(&o->ob); /* and one more, dropped again below */
            frt_decref(&o->ob);
        }
        x_objs[which][i] = o;
    }
    for (int i = 0; i < 5; i++)
        frt_incref(&x_imm->ob);
    if (which == 1)
        frt_blocking_begin(); /* ends inside a blocking section too */
    return NULL;
}

static _Atomic long x_go;

static void *x_dropper(void *arg)
{
    int d = (int)(intptr_t)arg;
    CHECK_EQ(frt_thread_attach(), 0);
    test_wait_at_least(&x_go, 1, 0, "go");
    for (int w = 0; w < 2; w++)
        for (int i = d; i < X_PER; i += X_DROPPERS)
            frt_decref(&x_objs[w][i]->ob);
    frt_decref(&x_imm->ob);
    frt_thread_detach();
    return NULL;
}

static void test_thread_exit(void)
{
    CHECK_EQ(frt_init(brc_config()), 0);
    reset_counts();
    atomic_store(&x_go, 0);
    x_imm = new_immortal();
    join(test_spawn(exits_attached, (void *)(intptr_t)0));
    join(test_spawn(exits_attached, (void *)(intptr_t)1));
    CHECK_EQ(atomic_load(&destroyed), 0);
    for (int w = 0; w < 2; w++)
        for (int i = 0; i < X_PER; i++) {
            tobj *o = x_objs[w][i];
            CHECK_EQ(o->magic, TOBJ_MAGIC);
            CHECK(!frt_is_owned(&o->ob));
            CHECK_EQ(frt_refcount(&o->ob), 2);
        }
    check_immortal_intact(x_imm);

    /* Each object: one reference dropped by a dropper, one by us, racing. */
    pthread_t t[X_DROPPERS];
    for (int d = 0; d < X_DROPPERS; d++)
        t[d] = test_spawn(x_dropper, (void *)(intptr_t)d);
    atomic_store(&x_go, 1);
    for (int w = 0; w < 2; w++)
        for (int i = X_PER; i-- > 0;)
            frt_decref(&x_objs[w][i]->ob);
    for (int d = 0; d < X_DROPPERS; d++)
        join(t[d]);
    check_destroyed_once(1, 2 * X_PER); /* the immortal is id 0 */
    check_immortal_intact(x_imm);
    CHECK_EQ(frt_shutdown(), 0);
}

/* ------------------------------------------------------------------ */
/* 6. Objects through a queue (mutex + condition variable) from producers
 *    to consumers, who drop them: the owners merge at their safepoints,
 *    while blocked on a full queue (someone merges for them), or at their
 *    detach; every object freed exactly once.                            */

#define PC_PRODUCERS 2
#define PC_CONSUMERS 2
#define PC_CAP 64
static struct {
    pthread_mutex_t mu;
    pthread_cond_t not_full, not_empty;
    frt_object *items[PC_CAP];
    size_t head, count;
    int producers_left;
} pc = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER, {0}, 0, 0, 0};
static tobj *pc_imm;
static _Atomic long pc_made, pc_consumed;

static void pc_put(frt_object *o)
{
    frt_blocking_begin(); /* waiting on a user lock: never hold up a stop */
    pthread_mutex_lock(&pc.mu);
    while (pc.count == PC_CAP)
        pthread_cond_wait(&pc.not_full, &pc.mu);
    pc.items[(pc.head + pc.count++) % PC_CAP] = o;
    pthread_cond_signal(&pc.not_empty);
    pthread_mutex_unlock(&pc.mu);
    frt_blocking_end();
}

static frt_object *pc_get(void)
{
    frt_object *o = NULL;
    frt_blocking_begin();
    pthread_mutex_lock(&pc.mu);
    while (pc.count == 0 && pc.producers_left > 0)
        pthread_cond_wait(&pc.not_empty, &pc.mu);
    if (pc.count) {
        o = pc.items[pc.head];
        pc.head = (pc.head + 1) % PC_CAP;
        pc.count--;
        pthread_cond_signal(&pc.not_full);
    }
    pthread_mutex_unlock(&pc.mu);
    frt_blocking_end();
    return o;
}

static void *producer(void *arg)
{
    (void)arg;
    CHECK_EQ(frt_thread_attach(), 0);
    long n = SCALED(100000L);
    tobj *kept[16] = {0};
    for (long i = 0; i < n; i++) {
        tobj *o = make();
        atomic_fetch_add(&pc_made, 1);
        switch (i & 3) {
        case 0: /* handed over as is */
            break;
        case 1: /* we keep one too, and drop it a little later: it races the consumer */
            frt_incref(&o->ob);
            if (kept[i & 15])
                frt_decref(&kept[i & 15]->ob);
            kept[i & 15] = o;
            break;
        case 2: /* unbiased before it travels */
            CHECK_EQ(frt_make_shared(&o->ob), 0);
            break;
        case 3: /* an immortal rides along and is dropped as if it were counted */
            pc_put(&pc_imm->ob);
            break;
        }
        pc_put(&o->ob);
    }
    for (int k = 0; k < 16; k++)
        frt_xdecref(kept[k] ? &kept[k]->ob : NULL);
    pthread_mutex_lock(&pc.mu);
    pc.producers_left--;
    pthread_cond_broadcast(&pc.not_empty);
    pthread_mutex_unlock(&pc.mu);
    frt_thread_detach();
    return NULL;
}

static void *consumer(void *arg)
{
    (void)arg;
    CHECK_EQ(frt_thread_attach(), 0);
    frt_object *o;
    while ((o = pc_get()) != NULL) {
        frt_incref(o);
        frt_decref(o);
        frt_decref(o);
        atomic_fetch_add(&pc_consumed, 1);
    }
    frt_thread_detach();
    return NULL;
}

static void test_producer_consumer(void)
{
    CHECK_EQ(frt_init(brc_config()), 0);
    reset_counts();
    pc_imm = new_immortal();
    atomic_store(&pc_made, 0);
    atomic_store(&pc_consumed, 0);
    pc.head = pc.count = 0;
    pc.producers_left = PC_PRODUCERS;
    pthread_t p[PC_PRODUCERS], c[PC_CONSUMERS];
    for (int i = 0; i < PC_CONSUMERS; i++)
        c[i] = test_spawn(consumer, NULL);
    for (int i = 0; i < PC_PRODUCERS; i++)
        p[i] = test_spawn(producer, NULL);
    for (int i = 0; i < PC_PRODUCERS; i++)
        join(p[i]);
    for (int i = 0; i < PC_CONSUMERS; i++)
        join(c[i]);
    long made = atomic_load(&pc_made);
    CHECK_EQ(made, PC_PRODUCERS * SCALED(100000L));
    CHECK_EQ(atomic_load(&pc_consumed), made + made / 4);
    /* Every producer has detached, so nothing can still be queued. The
     * immortal is id 0, the produced objects 1..made. */
    CHECK_EQ(atomic_load(&bad_destroys), 0);
    CHECK_EQ(atomic_load(&destroyed), made);
    for (long i = 1; i <= made; i++)
        CHECK_EQ(atomic_load(&destroy_by_id[i]), 1);
    check_immortal_intact(pc_imm);
    CHECK_EQ(frt_shutdown(), 0);
}

/* ------------------------------------------------------------------ */
/* 7. frt_set_immortal by a thread that does not own the object: it stops
 *    the world, because the owner writes its local count without atomics.
 *    The owner is busy counting on it, or blocked, when that happens.    */

static tobj *i_obj;
static _Atomic long i_iters, i_stop, i_phase;

static void *busy_owner(void *arg)
{
    (void)arg;
    CHECK_EQ(frt_thread_attach(), 0);
    i_obj = make();
    atomic_store(&i_phase, 1);
    while (!atomic_load_explicit(&i_stop, memory_order_relaxed)) {
        frt_incref(&i_obj->ob);
        frt_incref(&i_obj->ob);
        frt_decref(&i_obj->ob);
        frt_decref(&i_obj->ob);
        frt_safepoint();
        atomic_fetch_add_explicit(&i_iters, 1, memory_order_relaxed);
    }
    frt_decref(&i_obj->ob); /* its own: a no-op now */
    frt_decref(&i_obj->ob); /* and an extra one: immortals ignore it */
    frt_thread_detach();
    return NULL;
}

static void *blocked_owner(void *arg)
{
    (void)arg;
    CHECK_EQ(frt_thread_attach(), 0);
    i_obj = make();
    frt_incref(&i_obj->ob);
    frt_blocking_begin();
    atomic_store(&i_phase, 1);
    test_wait_at_least(&i_phase, 2, 0, "immortal");
    frt_blocking_end();
    CHECK(frt_is_immortal(&i_obj->ob));
    for (int i = 0; i < 3; i++)
        frt_decref(&i_obj->ob);
    frt_safepoint();
    frt_thread_detach();
    return NULL;
}

static void test_set_immortal_non_owner(void)
{
    CHECK_EQ(frt_init(brc_config()), 0);
    reset_counts();
    atomic_store(&i_iters, 0);
    atomic_store(&i_stop, 0);
    atomic_store(&i_phase, 0);
    frt_stw_stats st0, st1;

    pthread_t t = test_spawn(busy_owner, NULL);
    test_wait_at_least(&i_phase, 1, 0, "owner");
    test_wait_at_least(&i_iters, 1000, 0, "owner iterations");
    frt_incref(&i_obj->ob); /* a shared reference of ours */
    CHECK(!frt_is_owned(&i_obj->ob));
    frt_stw_get_stats(&st0);
    frt_set_immortal(&i_obj->ob);
    frt_stw_get_stats(&st1);
    CHECK_EQ(st1.stops, st0.stops + 1);
    CHECK(frt_is_immortal(&i_obj->ob));
    CHECK_EQ(frt_refcount(&i_obj->ob), FRT_REF_IMMORTAL);
    long seen = atomic_load(&i_iters);
    test_wait_at_least(&i_iters, seen + 1000, 0, "owner iterations after");
    frt_decref(&i_obj->ob);
    frt_decref(&i_obj->ob);
    atomic_store(&i_stop, 1);
    join(t);
    CHECK(frt_is_immortal(&i_obj->ob));
    CHECK_EQ(frt_refcount(&i_obj->ob), FRT_REF_IMMORTAL);
    CHECK_EQ(i_obj->magic, TOBJ_MAGIC);
    frt_set_immortal(&i_obj->ob); /* again: nothing to do, no stop */
    frt_stw_get_stats(&st0);
    CHECK_EQ(st0.stops, st1.stops);

    /* The owner is in a blocking section: suspended by the stop. */
    atomic_store(&i_phase, 0);
    t = test_spawn(blocked_owner, NULL);
    test_wait_at_least(&i_phase, 1, 0, "blocked owner");
    frt_stw_get_stats(&st0);
    frt_set_immortal(&i_obj->ob);
    frt_stw_get_stats(&st1);
    CHECK_EQ(st1.stops, st0.stops + 1);
    atomic_store(&i_phase, 2);
    join(t);
    CHECK(frt_is_immortal(&i_obj->ob));
    CHECK_EQ(i_obj->magic, TOBJ_MAGIC);

    /* A merged object (no owner): made immortal without a stop. */
    tobj *m = make();
    CHECK_EQ(frt_make_shared(&m->ob), 0);
    frt_stw_get_stats(&st0);
    frt_set_immortal(&m->ob);
    frt_stw_get_stats(&st1);
    CHECK_EQ(st1.stops, st0.stops);
    CHECK(frt_is_immortal(&m->ob));
    frt_decref(&m->ob);
    frt_decref(&m->ob);
    CHECK_EQ(atomic_load(&destroyed), 0);
    CHECK_EQ(atomic_load(&bad_destroys), 0);
    /* Immortals are not leaks; a mortal left alive is. */
    make();
    CHECK_EQ(frt_shutdown(), 1);
    CHECK_EQ(atomic_load(&destroyed), 0);
}

/* ------------------------------------------------------------------ */
/* 8. Thread ids are thread pointers, which the OS gives a later thread
 *    once one exits: detach gives every owned object up (small, large and
 *    resurrected ones), so a thread that gets a dead thread's pointer owns
 *    nothing of the dead thread's, attached or not; and a finalizer run
 *    on another heap's object does not leave it owned outside its heap.  */

#define R_OBJS 3
static tobj *r_objs[R_OBJS];
static uintptr_t r_tid[2];
static _Atomic long r_pass;

static void *r_creator(void *arg)
{
    (void)arg;
    CHECK_EQ(frt_thread_attach(), 0);
    r_tid[0] = frt__thread_id();
    r_objs[0] = make();
    tobj *big = (tobj *)frt_new_var(&tobj_type, FRT_SMALL_MAX); /* mapped alone */
    CHECK(big);
    big->id = atomic_fetch_add(&next_id, 1);
    big->magic = TOBJ_MAGIC;
    r_objs[1] = big;
    r_objs[2] = make();
    for (int i = 0; i < R_OBJS; i++) {
        frt_incref(&r_objs[i]->ob);
        frt_incref(&r_objs[i]->ob);
        frt_decref(&r_objs[i]->ob); /* two references, counted on our side */
        CHECK(frt_is_owned(&r_objs[i]->ob));
    }
    if (arg)
        return NULL; /* exits attached: the exit hook detaches */
    frt_thread_detach();
    return NULL;
}

static void *r_reuser(void *arg)
{
    (void)arg;
    r_tid[1] = frt__thread_id();
    for (int i = 0; i < R_OBJS; i++)
        CHECK(!frt_is_owned(&r_objs[i]->ob)); /* not attached: nothing is ours */
    CHECK_EQ(frt_thread_attach(), 0);
    for (int i = 0; i < R_OBJS; i++) {
        CHECK(!frt_is_owned(&r_objs[i]->ob));
        frt_incref(&r_objs[i]->ob);
        frt_decref(&r_objs[i]->ob);
        frt_decref(&r_objs[i]->ob); /* one of the two: shared path, atomic */
    }
    frt_thread_detach();
    return NULL;
}

static tobj *_Atomic f_kept;
static void resurrect_finalize(frt_object *self)
{
    atomic_store(&f_kept, (tobj *)frt_newref(self));
}
static const frt_type resurrect_type = {"resurrect", sizeof(tobj), NULL, NULL, resurrect_finalize,
                                        tobj_destroy};

static void *f_maker(void *arg)
{
    (void)arg;
    CHECK_EQ(frt_thread_attach(), 0);
    tobj *t = (tobj *)frt_new(&resurrect_type);
    CHECK(t);
    t->id = atomic_fetch_add(&next_id, 1);
    t->magic = TOBJ_MAGIC;
    CHECK_EQ(frt_make_shared(&t->ob), 0);
    atomic_store(&f_kept, t);
    frt_blocking_begin(); /* stays attached while the main thread finalizes */
    test_wait_at_least(&r_pass, 1, 0, "finalized");
    frt_blocking_end();
    frt_thread_detach();
    return NULL;
}

static void test_thread_pointer_reuse(void)
{
    CHECK_EQ(frt_init(brc_config()), 0);
    reset_counts();
    int reused = 0;
    for (int exit_attached = 0; exit_attached < 2; exit_attached++) {
        join(test_spawn(r_creator, (void *)(intptr_t)exit_attached));
        for (int i = 0; i < R_OBJS; i++) {
            CHECK_EQ(atomic_load_explicit(&r_objs[i]->ob.ob_tid, memory_order_relaxed), (uintptr_t)0);
            CHECK_EQ(frt_refcount(&r_objs[i]->ob), 2);
        }
        join(test_spawn(r_reuser, NULL)); /* glibc usually hands it the same pointer */
        reused += r_tid[0] == r_tid[1];
        for (int i = 0; i < R_OBJS; i++) {
            CHECK_EQ(frt_refcount(&r_objs[i]->ob), 1);
            frt_decref(&r_objs[i]->ob);
        }
    }
    check_destroyed_once(0, 2 * R_OBJS);

    /* We free an object of another thread's heap; its finalizer keeps it. */
    pthread_t t = test_spawn(f_maker, NULL);
    tobj *f;
    while (!(f = atomic_load(&f_kept)))
        sched_yield();
    atomic_store(&f_kept, NULL);
    frt_decref(&f->ob); /* last reference: finalize, resurrected */
    CHECK(atomic_load(&f_kept) == f);
    CHECK(!frt_is_owned(&f->ob));
    CHECK_EQ(atomic_load_explicit(&f->ob.ob_tid, memory_order_relaxed), (uintptr_t)0);
    CHECK_EQ(frt_refcount(&f->ob), 1);
    atomic_store(&r_pass, 1);
    join(t);
    frt_decref(&f->ob);
    check_destroyed_once(0, 2 * R_OBJS + 1);

    /* Shared from birth: no owner, the same counts. */
    tobj *sh = (tobj *)frt_new_shared(&tobj_type);
    CHECK(sh);
    sh->id = atomic_fetch_add(&next_id, 1);
    sh->magic = TOBJ_MAGIC;
    CHECK(!frt_is_owned(&sh->ob));
    CHECK_EQ(frt_make_shared(&sh->ob), FRT_EALREADY);
    CHECK_EQ(frt_refcount(&sh->ob), 1);
    frt_incref(&sh->ob);
    CHECK_EQ(frt_refcount(&sh->ob), 2);
    frt_decref(&sh->ob);
    frt_decref(&sh->ob);
    check_destroyed_once(0, 2 * R_OBJS + 2);
    fprintf(stderr, "test_brc: thread pointer reused in %d of 2 rounds\n", reused);
    CHECK_EQ(frt_shutdown(), 0);
}

/* ------------------------------------------------------------------ */
/* 9. Batched merges: a safepoint poll (frt_new's) merges the owner's
 *    queue only once FRT_OBJQ_BATCH objects wait; frt_safepoint, blocking
 *    and detach merge whatever waits. First in lockstep, then as a race
 *    of a producer that only polls through frt_new against a dropper.   */

static tobj *b_objs[FRT_OBJQ_BATCH];
static _Atomic long b_dropped;

static void *drop_batch(void *arg)
{
    (void)arg;
    CHECK_EQ(frt_thread_attach(), 0);
    frt_decref(&b_objs[0]->ob);
    atomic_store(&b_dropped, 1);
    test_wait_at_least(&b_dropped, 2, 0, "the owner's first poll");
    for (int i = 1; i < FRT_OBJQ_BATCH; i++)
        frt_decref(&b_objs[i]->ob);
    atomic_store(&b_dropped, 3);
    frt_thread_detach();
    return NULL;
}

#define BR_ITEMS 4096
#define BR_RING 64

static struct {
    _Atomic(tobj *) slot[BR_RING];
    _Atomic long made, dropped;
} br;

/* The producer polls only in frt_new; what the dropper queued back waits
 * for a batch or for the producer's explicit safepoint at the end. */
static void *batch_producer(void *arg)
{
    (void)arg;
    CHECK_EQ(frt_thread_attach(), 0);
    tobj *kept = NULL;
    for (long i = 0; i < BR_ITEMS; i++) {
        tobj *o = make();
        if (i % 8 == 0) { /* we keep one too and drop it later: it races the dropper */
            frt_incref(&o->ob);
            frt_xdecref(kept ? &kept->ob : NULL);
            kept = o;
        }
        _Atomic(tobj *) *slot = &br.slot[i % BR_RING];
        for (unsigned k = 0; atomic_load_explicit(slot, memory_order_acquire); k++)
            test_pause(k);
        atomic_store_explicit(slot, o, memory_order_release);
        atomic_fetch_add(&br.made, 1);
    }
    frt_xdecref(kept ? &kept->ob : NULL);
    test_wait_at_least(&br.dropped, BR_ITEMS, 0, "the dropper");
    frt_safepoint(); /* whatever waits, fewer than a batch included */
    CHECK_EQ(atomic_load(&destroyed), BR_ITEMS);
    frt_thread_detach();
    return NULL;
}

static void *batch_dropper(void *arg)
{
    (void)arg;
    CHECK_EQ(frt_thread_attach(), 0);
    for (long i = 0; i < BR_ITEMS; i++) {
        _Atomic(tobj *) *slot = &br.slot[i % BR_RING];
        tobj *o;
        for (unsigned k = 0; !(o = atomic_load_explicit(slot, memory_order_acquire)); k++)
            test_pause(k);
        atomic_store_explicit(slot, NULL, memory_order_release);
        CHECK(o->magic == TOBJ_MAGIC);
        frt_decref(&o->ob);
        if (i + 1 < BR_ITEMS)
            atomic_fetch_add(&br.dropped, 1);
    }
    frt_safepoint(); /* our last drops wait in our batch until here */
    atomic_fetch_add(&br.dropped, 1);
    frt_thread_detach();
    return NULL;
}

static void test_batched_merge(void)
{
    CHECK_EQ(frt_init(brc_config()), 0);
    reset_counts();
    for (int i = 0; i < FRT_OBJQ_BATCH; i++)
        b_objs[i] = make();
    atomic_store(&b_dropped, 0);
    pthread_t t = test_spawn(drop_batch, NULL);
    test_wait_at_least(&b_dropped, 1, 0, "the first drop");
    /* One object queued: frt_new's poll leaves it for later. */
    tobj *extra = make();
    CHECK_EQ(atomic_load(&destroyed), 0);
    CHECK_EQ(FRT_REF_STATE(shared_word(b_objs[0])), FRT_REF_QUEUED);
    atomic_store(&b_dropped, 2);
    test_wait_at_least(&b_dropped, 3, 0, "the batch");
    /* A full batch queued: the next poll merges and frees all of it. */
    tobj *extra2 = make();
    CHECK_EQ(atomic_load(&destroyed), FRT_OBJQ_BATCH);
    join(t);
    frt_decref(&extra->ob);
    frt_decref(&extra2->ob);
    check_destroyed_once(0, FRT_OBJQ_BATCH + 2);

    /* The same as a race; the producer's explicit safepoint at the end
     * must leave nothing queued. */
    reset_counts();
    memset(&br, 0, sizeof br);
    pthread_t p = test_spawn(batch_producer, NULL), d = test_spawn(batch_dropper, NULL);
    join(p);
    join(d);
    check_destroyed_once(0, BR_ITEMS);
    CHECK_EQ(frt_shutdown(), 0);
}

int main(void)
{
    test_watchdog("test_brc", 240);
    uint64_t t0 = test_now_ns();
    test_pairs();
    test_queue_to_owner();
    test_merge_zero_local();
    test_make_shared();
    test_thread_exit();
    test_producer_consumer();
    test_set_immortal_non_owner();
    test_thread_pointer_reuse();
    test_batched_merge();
    fprintf(stderr, "test_brc: %.2f s\n", (double)(test_now_ns() - t0) / 1e9);
    TEST_PASS("test_brc");
    return 0;
}
