/* Observers held weakly, like a weakref.WeakSet of listeners: a subject
 * keeps a list of weak references to its observers, so subscribing never
 * keeps an observer alive. Observers die whenever their holders drop them;
 * notify() calls only the live ones (frt_weakref_get gives a strong
 * reference, or NULL for a dead one) and prunes the dead entries.
 *
 * NTHREADS client threads each create and subscribe their own observers,
 * hand every second one to the next thread (so those die by a last decref
 * on a thread that does not own them: through the owner's BRC queue), and
 * then, round after round, drop the observers whose time has come and all
 * call notify() at once. Observer j of a thread dies at the start of round
 * j % (ROUNDS + 1), so it sees exactly NTHREADS notifications per round it
 * lived through. Barriers between the phases make the counts exact. */
#include <frt/frt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define NTHREADS 4
#define PER_THREAD 16
#define ROUNDS 5
#define NOBS (NTHREADS * PER_THREAD)
#define MAGIC 0x0b5e7e42u

typedef struct observer { frt_object ob; unsigned magic; int id; } observer;

static _Atomic long seen[NOBS];        /* notifications each observer received */
static _Atomic int died[NOBS];         /* destroy calls per observer */
static _Atomic long delivered, pruned, bad, late_deaths;

static void observer_destroy(frt_object *self)
{
    observer *o = (observer *)self;
    atomic_fetch_add(&died[o->id], 1);
    o->magic = 0;
}
static const frt_type observer_type = {"observer", sizeof(observer), NULL, NULL, NULL,
                                       observer_destroy};

static void on_event(observer *o, int event)
{
    if (o->magic != MAGIC || event < 0 || event >= ROUNDS) /* a freed observer shows here */
        atomic_fetch_add(&bad, 1);
    atomic_fetch_add(&seen[o->id], 1);
}

/* ---- the subject: weak references under a mutex -------------------- */
static struct { pthread_mutex_t lock; frt_weakref *obs[NOBS]; size_t n; } subject = {
    .lock = PTHREAD_MUTEX_INITIALIZER};

static void subject_lock(void)
{
    frt_blocking_begin(); /* the wait may last: a stop-the-world must not wait for us */
    pthread_mutex_lock(&subject.lock);
    frt_blocking_end();
}

static void subscribe(observer *o)
{
    frt_weakref *wr = frt_weakref_new(&o->ob, NULL, NULL); /* outside the lock: it allocates */
    subject_lock();
    subject.obs[subject.n++] = wr;
    pthread_mutex_unlock(&subject.lock);
}

/* Take strong references to the live observers and unlink the dead
 * entries under the lock; call and release outside it (a handler may be
 * slow, and a decref may run arbitrary destroy code). */
static void notify(int event)
{
    observer *live[NOBS];
    frt_weakref *dead[NOBS];
    size_t nl = 0, nd = 0, keep = 0;
    subject_lock();
    for (size_t i = 0; i < subject.n; i++) {
        frt_object *o = frt_weakref_get(subject.obs[i]);
        if (o) {
            live[nl++] = (observer *)o;
            subject.obs[keep++] = subject.obs[i];
        } else {
            dead[nd++] = subject.obs[i];
        }
    }
    subject.n = keep;
    pthread_mutex_unlock(&subject.lock);
    for (size_t i = 0; i < nl; i++) {
        on_event(live[i], event);
        frt_decref(&live[i]->ob);
    }
    for (size_t i = 0; i < nd; i++)
        frt_decref(frt_weakref_object(dead[i]));
    atomic_fetch_add(&delivered, (long)nl);
    atomic_fetch_add(&pruned, (long)nd);
}

static pthread_barrier_t barrier;
static observer *handoff[NTHREADS][PER_THREAD];

static void wait_all(void)
{
    frt_blocking_begin(); /* a wait, like any other */
    pthread_barrier_wait(&barrier);
    frt_blocking_end();
}

static int dies_in(int j) { return j % (ROUNDS + 1); }

/* A drop by a thread that does not own the observer queues it to its owner
 * (BRC), and the owner frees it when it merges: at its next poll, which
 * wait_all() is, or at once by the dropping thread if the owner is already
 * waiting there. So after the barrier every observer due to die is gone. */
static void check_deaths(int r)
{
    long want = 0, got = 0;
    for (int i = 0; i < NOBS; i++) {
        want += dies_in(i % PER_THREAD) <= r;
        got += atomic_load(&died[i]);
    }
    if (got != want)
        atomic_fetch_add(&late_deaths, 1);
}

static void *client(void *arg)
{
    int t = (int)(intptr_t)arg;
    observer *mine[PER_THREAD] = {0};
    frt_thread_attach();
    for (int j = 0; j < PER_THREAD; j++) {
        observer *o = (observer *)frt_new(&observer_type);
        o->magic = MAGIC;
        o->id = t * PER_THREAD + j;
        subscribe(o);
        if (j % 2)
            handoff[t][j] = o; /* our reference goes to the next thread */
        else
            mine[j] = o;
    }
    wait_all();
    for (int j = 1; j < PER_THREAD; j += 2)
        mine[j] = handoff[(t + NTHREADS - 1) % NTHREADS][j];
    for (int r = 0; r <= ROUNDS; r++) {
        for (int j = 0; j < PER_THREAD; j++)
            if (dies_in(j) == r) {
                frt_decref(&mine[j]->ob); /* the last reference */
                mine[j] = NULL;
            }
        wait_all(); /* every drop of this round is done, and freed: see below */
        if (t == 0)
            check_deaths(r);
        if (r < ROUNDS)
            notify(r);
        wait_all();
    }
    frt_thread_detach();
    return NULL;
}

int main(void)
{
    frt_init(NULL);
    pthread_barrier_init(&barrier, NULL, NTHREADS);
    pthread_t th[NTHREADS];
    for (int t = 0; t < NTHREADS; t++)
        pthread_create(&th[t], NULL, client, (void *)(intptr_t)t);
    frt_blocking_begin();
    for (int t = 0; t < NTHREADS; t++)
        pthread_join(th[t], NULL);
    frt_blocking_end();
    size_t left_before = subject.n;
    notify(ROUNDS); /* everyone is dead now: delivers nothing, prunes the rest */

    long want_seen = 0, wrong = 0, not_once = 0;
    for (int i = 0; i < NOBS; i++) {
        long want = (long)NTHREADS * dies_in(i % PER_THREAD);
        want_seen += want;
        wrong += atomic_load(&seen[i]) != want;
        not_once += atomic_load(&died[i]) != 1;
    }
    printf("%d observers, %d threads, %d rounds: notifications delivered %ld (expected %ld),"
           " observers with a wrong count %ld\n",
           NOBS, NTHREADS, ROUNDS, atomic_load(&delivered), want_seen, wrong);
    printf("destroyed exactly once: %ld of %d (rounds with a death missing at the barrier: %ld);"
           " dead entries pruned %ld; entries left %zu (before the last notify %zu);"
           " freed observers notified %ld\n",
           NOBS - not_once, NOBS, atomic_load(&late_deaths), atomic_load(&pruned), subject.n,
           left_before, atomic_load(&bad));
    pthread_barrier_destroy(&barrier);
    int alive = frt_shutdown();
    printf("objects alive at shutdown: %d\n", alive);
    int ok = atomic_load(&delivered) == want_seen && wrong == 0 && not_once == 0 &&
             atomic_load(&late_deaths) == 0 &&
             atomic_load(&pruned) == NOBS && subject.n == 0 && atomic_load(&bad) == 0 &&
             alive == 0;
    puts(ok ? "observers: OK" : "observers: FAILED");
    return ok ? 0 : 1;
}
