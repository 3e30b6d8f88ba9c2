/* Objects that other threads drop while their owner detaches (issue 14,
 * item 1).
 *
 * Each round a thread T makes K objects O_k with a finalizer and a weakref
 * each, and K holders D_k with the only reference to O_k; it hands every
 * D_k to the main thread and detaches at once, while the main thread drops
 * them. Each drop is queued to T; the queue merges of T's detach free some
 * D_k (and so finalize O_k on T), later drops are merged by the main thread
 * itself. Wherever a finalizer runs, a third thread G tries
 * frt_weakref_get on O_k's weakref while it runs: that must return NULL
 * (docs/api.md), and what the finalizer allocates must belong to the
 * thread that runs it (its thread pointer), never to nobody.
 *
 * Before the fix, T dropped its id before its last merge, and an O_k
 * finalized by that merge came back shared, where G's get took it. */
#include <frt/frt.h>

#include "check.h"
#include "test_util.h"

#define K 32

typedef struct holder {
    frt_object ob;
    frt_object *ref;
} holder;

static const frt_type plain_type = {"detach.plain", sizeof(frt_object), NULL, NULL, NULL, NULL};

/* The probe: a finalizer posts its weakref, G answers. */
static frt_weakref *_Atomic probe;
static pthread_mutex_t probe_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic long answers, quit;
static _Atomic long got_while_finalizing, made_unowned, finalized, destroyed;

static frt_weakref *wrs[K];
static frt_object *_Atomic handed[K];
static _Atomic int go;
static _Atomic unsigned jitter;

static void holder_destroy(frt_object *self)
{
    frt_decref(((holder *)self)->ref);
    atomic_fetch_add(&destroyed, 1);
}

static void target_finalize(frt_object *self)
{
    frt_weakref *wr = (frt_weakref *)(uintptr_t)((holder *)self)->ref;
    pthread_mutex_lock(&probe_lock); /* one probe at a time, whatever thread finalizes */
    long before = atomic_load(&answers);
    atomic_store(&probe, wr);
    for (unsigned i = 0; atomic_load(&answers) == before; i++)
        test_pause(i); /* no safepoint: it would merge T's queue early */
    pthread_mutex_unlock(&probe_lock);
    frt_object *made = frt_new(&plain_type);
    CHECK(made != NULL);
    if (atomic_load_explicit(&made->ob_tid, memory_order_relaxed) != frt__thread_id())
        atomic_fetch_add(&made_unowned, 1);
    frt_decref(made);
    atomic_fetch_add(&finalized, 1);
}

static void target_destroy(frt_object *self)
{
    (void)self;
    atomic_fetch_add(&destroyed, 1);
}

static const frt_type holder_type = {"detach.holder", sizeof(holder), NULL, NULL, NULL, holder_destroy};
/* A target's ref slot holds its own weakref (not a reference: no decref). */
static const frt_type target_type = {"detach.target", sizeof(holder), NULL, NULL, target_finalize,
                                     target_destroy};

static void *getter(void *arg)
{
    (void)arg;
    CHECK_EQ(frt_thread_attach(), 0);
    for (unsigned i = 0; !atomic_load(&quit); i++) {
        frt_weakref *wr = atomic_exchange(&probe, NULL);
        if (!wr) {
            frt_safepoint();
            if (i % 64 == 0)
                sched_yield();
            continue;
        }
        frt_object *got = frt_weakref_get(wr);
        if (got) {
            atomic_fetch_add(&got_while_finalizing, 1);
            frt_decref(got);
        }
        atomic_fetch_add(&answers, 1);
    }
    frt_thread_detach();
    return NULL;
}

static void *owner(void *arg)
{
    (void)arg;
    CHECK_EQ(frt_thread_attach(), 0);
    for (int k = 0; k < K; k++) {
        holder *o = (holder *)frt_new(&target_type);
        wrs[k] = frt_weakref_new(&o->ob, NULL, NULL);
        CHECK(wrs[k] != NULL);
        o->ref = (frt_object *)(uintptr_t)wrs[k];
        holder *d = (holder *)frt_new(&holder_type);
        d->ref = &o->ob; /* O_k's only reference */
        atomic_store(&handed[k], &d->ob);
    }
    atomic_store(&go, 1);
    /* Detach a little before, during or after the drops. */
    for (volatile unsigned i = atomic_load(&jitter); i; i--) {
    }
    frt_thread_detach();
    return NULL;
}

int main(void)
{
    test_watchdog("test_detach_finalize", 240);
    long rounds = SCALED(4000);
    CHECK_EQ(frt_init(NULL), 0);
    pthread_t g = test_spawn(getter, NULL);
    unsigned seed = 12345;
    long round;
    for (round = 0; round < rounds; round++) {
        atomic_store(&finalized, 0);
        atomic_store(&destroyed, 0);
        atomic_store(&go, 0);
        seed = seed * 1103515245u + 12345u;
        atomic_store(&jitter, (seed >> 16) % 4000);
        pthread_t t = test_spawn(owner, NULL);
        for (unsigned i = 0; !atomic_load(&go); i++)
            test_pause(i);
        for (int k = 0; k < K; k++) {
            frt_decref(atomic_load(&handed[k]));
            for (volatile unsigned i = (seed >> (k % 16)) % 2048; i; i--) {
            }
        }
        test_join(t);
        CHECK_EQ(atomic_load(&finalized), K);
        CHECK_EQ(atomic_load(&destroyed), 2 * K);
        for (int k = 0; k < K; k++) {
            CHECK(!frt_weakref_alive(wrs[k]));
            frt_decref(frt_weakref_object(wrs[k]));
        }
        if (atomic_load(&got_while_finalizing) || atomic_load(&made_unowned))
            break;
    }
    atomic_store(&quit, 1);
    test_join(g);
    fprintf(stderr,
            "test_detach_finalize: %ld rounds: weakref_get during finalize: %ld, objects made with the "
            "wrong owner: %ld\n",
            round, atomic_load(&got_while_finalizing), atomic_load(&made_unowned));
    CHECK_EQ(atomic_load(&got_while_finalizing), 0);
    CHECK_EQ(atomic_load(&made_unowned), 0);
    CHECK_EQ(frt_shutdown(), 0);
    TEST_PASS("test_detach_finalize");
    return 0;
}
