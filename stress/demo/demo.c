/* frt-demo: a few seconds of objects allocated and freed across threads.
 *
 * Four workers allocate objects of mixed sizes (a few from the large-object
 * path), keep some, drop some at once and hand the rest to their neighbour
 * through a queue; the neighbour checks and drops what it gets. Half of the
 * handed objects keep their owner's bias, so the neighbour's decref queues
 * them back to the owner (BRC merge queue); the other half are made shared
 * first, so the neighbour frees them itself and the block travels back to
 * the owner's pool as a remote free. Every eighth object holds a reference
 * to one hub object owned by the main thread, so the hub's shared count sees
 * traffic from every thread (the runtime soon counts it per thread: a hot
 * object, freed by a collection at the end). Meanwhile the main thread stops the world a
 * few times and checks the counters while everyone is parked.
 *
 * Then one worker hands its kept objects to the main thread and detaches
 * while they are alive; the others drop theirs and detach; the main thread
 * drops the orphans, trims the heap and shuts down. Heap statistics are
 * printed at each phase. Any broken invariant (an object corrupted or
 * freed too early, destroys != creations, blocks left in use, a non-zero
 * frt_shutdown) makes the exit status 1.
 *
 * Usage: frt-demo [seconds]   (length of the exchange phase, default 2) */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <frt/frt.h>

#define NWORKERS 4
#define LEAVER (NWORKERS - 1) /* the worker that detaches first */
#define KEEP_MAX 2048         /* objects each worker keeps at most */
#define BATCH 64
#define NSTOPS 5
#define MAGIC 0x9e3779b97f4a7c15ull

typedef struct item {
    frt_object ob;
    struct item *qnext; /* inbox link, owned by whoever holds the item */
    uint64_t id;
    uint64_t check;     /* id ^ MAGIC: a freed or overwritten item fails it */
    frt_object *hub;    /* a strong reference, or NULL */
    uint32_t extra;     /* payload bytes after the struct */
    uint32_t origin;    /* worker that made it */
    unsigned char payload[];
} item;

typedef struct inbox {
    pthread_mutex_t mu;
    item *head;
} inbox;

typedef struct worker {
    pthread_t thread;
    unsigned index;
    uint64_t rng;
    item *keep[KEEP_MAX];
    size_t nkeep;
    uint64_t made, sent_biased, sent_shared, received, dropped;
} worker;

static atomic_uint_fast64_t created, destroyed, corrupt;
static atomic_int stop_producing;
static frt_object *hub;
static inbox inboxes[NWORKERS];
static worker workers[NWORKERS];
static pthread_barrier_t phase_barrier; /* workers + main */
static pthread_barrier_t stay_barrier;  /* the workers that stay + main */
static item *handed[KEEP_MAX];          /* the leaver's objects, held by main */
static size_t nhanded;
static int failures;

/* Extra payload sizes: small classes, a page-sized one, and the large path
 * (above FRT_SMALL_MAX), which is rare. */
static const uint32_t extras[] = {0, 8, 24, 56, 120, 200, 456, 968, 2000, 4000};

static void fail(const char *what)
{
    fprintf(stderr, "frt-demo: INVARIANT FAILED: %s\n", what);
    failures++;
}

static uint64_t next_rand(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static int item_ok(const item *it)
{
    if (it->check != (it->id ^ MAGIC))
        return 0;
    if (it->extra) {
        unsigned char tag = (unsigned char)it->id;
        if (it->payload[0] != tag || it->payload[it->extra - 1] != tag)
            return 0;
    }
    return 1;
}

static void item_destroy(frt_object *self)
{
    item *it = (item *)self;
    if (!item_ok(it))
        atomic_fetch_add(&corrupt, 1);
    frt_xdecref(it->hub);
    atomic_fetch_add(&destroyed, 1);
}

static void hub_destroy(frt_object *self)
{
    (void)self;
    atomic_fetch_add(&destroyed, 1);
}

static const frt_type item_type = {"demo.item", sizeof(item), NULL, NULL, NULL, item_destroy};
static const frt_type hub_type = {"demo.hub", sizeof(frt_object), NULL, NULL, NULL, hub_destroy};

static item *make_item(worker *w)
{
    uint64_t r = next_rand(&w->rng);
    uint32_t extra = (r & 1023) == 0 ? 20000 + (uint32_t)(r >> 20 & 4095) /* large */
                                     : extras[(r >> 10) % (sizeof extras / sizeof extras[0])];
    item *it = (item *)frt_new_var(&item_type, extra);
    if (!it)
        return NULL;
    atomic_fetch_add(&created, 1);
    it->id = (uint64_t)w->index << 48 | w->made++;
    it->check = it->id ^ MAGIC;
    it->extra = extra;
    it->origin = w->index;
    if (extra)
        memset(it->payload, (unsigned char)it->id, extra);
    if ((r >> 32) % 8 == 0)
        it->hub = frt_newref(hub);
    return it;
}

static void inbox_push(inbox *b, item *it)
{
    /* No frt call happens while the mutex is held, so a holder never parks
     * at a safepoint and a waiter here is never blocked by a stopped thread
     * (gh-118332): the wait is short and needs no blocking section. */
    pthread_mutex_lock(&b->mu);
    it->qnext = b->head;
    b->head = it;
    pthread_mutex_unlock(&b->mu);
}

static size_t inbox_drain(worker *w)
{
    inbox *b = &inboxes[w->index];
    pthread_mutex_lock(&b->mu);
    item *it = b->head;
    b->head = NULL;
    pthread_mutex_unlock(&b->mu);
    size_t n = 0;
    while (it) {
        item *next = it->qnext;
        if (!item_ok(it))
            atomic_fetch_add(&corrupt, 1);
        frt_decref(&it->ob);
        it = next;
        n++;
    }
    w->received += n;
    return n;
}

/* A barrier wait is a blocking section: a stop-the-world does not wait for
 * a thread sitting here, and objects queued to it are merged by others. */
static void barrier_wait_on(pthread_barrier_t *b)
{
    frt_blocking_begin();
    pthread_barrier_wait(b);
    frt_blocking_end();
}

static void barrier_wait(void)
{
    barrier_wait_on(&phase_barrier);
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    if (frt_thread_attach() != 0) {
        fail("frt_thread_attach");
        return NULL;
    }
    inbox *next = &inboxes[(w->index + 1) % NWORKERS];
    while (!atomic_load_explicit(&stop_producing, memory_order_relaxed)) {
        for (int i = 0; i < BATCH; i++) {
            item *it = make_item(w);
            if (!it) {
                fail("frt_new_var returned NULL");
                break;
            }
            switch (next_rand(&w->rng) % 8) {
            case 0:
            case 1: /* keep it; when full, drop a random older one */
                if (w->nkeep < KEEP_MAX) {
                    w->keep[w->nkeep++] = it;
                } else {
                    size_t k = next_rand(&w->rng) % KEEP_MAX;
                    frt_decref(&w->keep[k]->ob);
                    w->keep[k] = it;
                }
                break;
            case 2:
            case 3: /* hand over biased: the receiver's decref queues it to us */
                inbox_push(next, it);
                w->sent_biased++;
                break;
            case 4:
            case 5: /* hand over shared: the receiver frees it, a remote free */
                frt_make_shared(&it->ob);
                inbox_push(next, it);
                w->sent_shared++;
                break;
            default:
                frt_decref(&it->ob);
                w->dropped++;
            }
        }
        inbox_drain(w);
        frt_safepoint();
    }
    /* Everyone has stopped sending once past the first barrier. */
    barrier_wait();
    inbox_drain(w);
    barrier_wait(); /* main prints the "exchanged" phase */

    if (w->index == LEAVER) {
        /* Detach while main still holds everything this thread made. */
        memcpy(handed, w->keep, w->nkeep * sizeof w->keep[0]);
        nhanded = w->nkeep;
        w->nkeep = 0;
        frt_thread_detach();
        return NULL;
    }
    barrier_wait_on(&stay_barrier); /* main has checked the leaver's objects */
    for (size_t i = 0; i < w->nkeep; i++)
        frt_decref(&w->keep[i]->ob);
    w->nkeep = 0;
    frt_thread_detach();
    return NULL;
}

static void join_blocking(pthread_t t)
{
    frt_blocking_begin();
    pthread_join(t, NULL);
    frt_blocking_end();
}

static void print_phase(const char *phase)
{
    frt_heap_stats st;
    frt_heap_get_stats(&st);
    uint64_t c = atomic_load(&created), d = atomic_load(&destroyed);
    printf("%-26s %6zu %6zu %9.2f %9.2f %8zu %5zu %8" PRIu64 " %9" PRIu64 " %9" PRIu64 "\n", phase,
           st.arenas, st.arenas_peak, st.bytes_mapped / 1048576.0, st.bytes_in_use / 1048576.0,
           st.blocks_in_use, st.large_objects, st.arenas_returned, c, d);
}

static void sleep_blocking(double seconds)
{
    struct timespec ts = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
    frt_blocking_begin();
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
    frt_blocking_end();
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 2.0;
    if (!(seconds > 0 && seconds < 3600)) {
        fprintf(stderr, "usage: frt-demo [seconds]\n");
        return 2;
    }
    double t_start = now_s();
    int rc = frt_init(NULL);
    if (rc != 0) {
        fprintf(stderr, "frt_init: %s\n", frt_strerror(rc));
        return 1;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("frt %s demo: %d worker threads, %.1f s of exchange, %d stops of the world\n\n",
           FRT_VERSION, NWORKERS, seconds, NSTOPS);
    printf("%-26s %6s %6s %9s %9s %8s %5s %8s %9s %9s\n", "phase", "arenas", "peak", "mapped MB",
           "in use MB", "blocks", "large", "returned", "created", "destroyed");

    hub = frt_new(&hub_type);
    if (!hub)
        return 1;
    atomic_fetch_add(&created, 1);
    print_phase("start");

    pthread_barrier_init(&phase_barrier, NULL, NWORKERS + 1);
    pthread_barrier_init(&stay_barrier, NULL, NWORKERS); /* the leaver is gone by then */
    for (unsigned i = 0; i < NWORKERS; i++) /* all before any worker: each uses its neighbour's */
        pthread_mutex_init(&inboxes[i].mu, NULL);
    for (unsigned i = 0; i < NWORKERS; i++) {
        workers[i].index = i;
        workers[i].rng = 0x2545f4914f6cdd1dull * (i + 1);
        pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]);
    }

    /* Stop the world a few times while the workers run flat out, and check
     * the counters while every worker is parked. */
    uint64_t stop_ns[NSTOPS];
    for (int k = 0; k < NSTOPS; k++) {
        sleep_blocking(seconds / NSTOPS);
        if (frt_stop_the_world() != 0) {
            fail("frt_stop_the_world");
            continue;
        }
        uint64_t c = atomic_load(&created), d = atomic_load(&destroyed);
        if (d > c)
            fail("more destroys than creations");
        frt_start_the_world();
        frt_stw_stats s;
        frt_stw_get_stats(&s);
        stop_ns[k] = s.last_time_to_stop_ns;
        char label[32];
        snprintf(label, sizeof label, "stop %d (world stopped)", k + 1);
        print_phase(label);
    }
    atomic_store(&stop_producing, 1);
    barrier_wait(); /* workers stopped sending */
    barrier_wait(); /* workers drained their inboxes */
    print_phase("exchanged, inboxes empty");

    /* The leaver detaches with its objects alive in our hands. */
    join_blocking(workers[LEAVER].thread);
    print_phase("one thread detached");
    size_t bad = 0;
    for (size_t i = 0; i < nhanded; i++)
        bad += !item_ok(handed[i]) || frt_refcount(&handed[i]->ob) != 1;
    if (bad)
        fail("an object of the detached thread was freed or damaged while still held");
    barrier_wait_on(&stay_barrier); /* the other workers drop theirs and leave */
    for (unsigned i = 0; i < NWORKERS; i++)
        if (i != LEAVER)
            join_blocking(workers[i].thread);
    print_phase("all workers detached");

    for (size_t i = 0; i < nhanded; i++)
        frt_decref(&handed[i]->ob);
    /* Every worker counted on the hub: the runtime has likely made it hot
     * (per-thread counts), and then the collector frees it. */
    int hub_hot = frt_is_hot(hub);
    frt_decref(hub);
    if (hub_hot)
        frt_gc_collect(0);
    print_phase(hub_hot ? "everything dropped (the hot hub by a collection)" : "everything dropped");
    if (atomic_load(&created) != atomic_load(&destroyed))
        fail("destroys != creations");

    size_t trimmed = frt_heap_trim();
    print_phase("after frt_heap_trim");
    frt_heap_stats st;
    frt_heap_get_stats(&st);
    if (st.blocks_in_use != 0 || st.bytes_in_use != 0)
        fail("blocks still in use after everything was freed and trimmed");
    if (st.arenas != 0)
        fail("arenas still mapped after everything was freed and trimmed");

    frt_stw_stats s;
    frt_stw_get_stats(&s);
    /* Ours, and the runtime's own: adaptive hot promotion and collections
     * stop the world too. */
    if (s.stops < NSTOPS)
        fail("frt_stw_get_stats: wrong number of stops");

    uint64_t made = 0, sent_b = 0, sent_s = 0, recv = 0, dropped = 0;
    for (unsigned i = 0; i < NWORKERS; i++) {
        made += workers[i].made;
        sent_b += workers[i].sent_biased;
        sent_s += workers[i].sent_shared;
        recv += workers[i].received;
        dropped += workers[i].dropped;
    }
    if (recv != sent_b + sent_s)
        fail("an object handed to a neighbour went missing");
    printf("\nobjects: %" PRIu64 " created, %" PRIu64 " destroyed, %" PRIu64 " corrupt\n",
           (uint64_t)atomic_load(&created), (uint64_t)atomic_load(&destroyed),
           (uint64_t)atomic_load(&corrupt));
    printf("handed to a neighbour: %" PRIu64 " biased (freed via the owner's merge queue), %" PRIu64
           " shared (freed by the receiver); %" PRIu64 " dropped at once; %zu held by main"
           " across a detach\n",
           sent_b, sent_s, dropped, nhanded);
    printf("stop-the-world: %" PRIu64 " stops, pause mean %.1f us, max %.1f us; time to stop:",
           s.stops, s.stops ? s.pause_ns_total / 1e3 / (double)s.stops : 0.0, s.pause_ns_max / 1e3);
    for (int k = 0; k < NSTOPS; k++)
        printf(" %.1f", stop_ns[k] / 1e3);
    printf(" us\n");
    printf("frt_heap_trim returned %zu bytes (%.1f MiB); %" PRIu64 " arenas returned to the OS in all\n",
           trimmed, trimmed / 1048576.0, st.arenas_returned);
    if (atomic_load(&corrupt))
        fail("an object was corrupted or freed while still referenced");

    int alive = frt_shutdown();
    printf("frt_shutdown: %d objects still alive\n", alive);
    if (alive != 0)
        fail("frt_shutdown did not return 0");
    pthread_barrier_destroy(&phase_barrier);
    pthread_barrier_destroy(&stay_barrier);
    printf("%s in %.2f s (%" PRIu64 " objects made by workers)\n",
           failures ? "FAILED" : "ok", now_s() - t_start, made);
    return failures ? 1 : 0;
}
