/* frt-bench-gc-load: full collections while other threads allocate cycles
 * and poll safepoints: the scenario whose ThreadSanitizer cost was
 * pathological (issue 14, item 11). Build it in the release and the tsan
 * preset and compare the two totals (docs/benchmarks.md); it asserts
 * nothing.
 *
 *   frt-bench-gc-load [collections=50] [threads=3] [rings=2000]
 *
 * Between two collections each thread makes `rings` rings of four objects
 * and drops them (cyclic garbage), then only polls safepoints until the
 * next collection, so every run does the same work whatever the build's
 * speed (unbounded, the garbage would grow with the collections' length).
 * A collection starts once half of that is made: it runs while the
 * threads make the other half. The time counted is the collections' only.
 * Prints the wall time of the collections (and how much of it the world
 * was stopped), and the CPU time of the collecting thread in them: on a
 * loaded machine a phase longer than a time slice waits for the CPU, so
 * the wall-clock ratio of two builds says less than the CPU ratio. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <frt/frt.h>

typedef struct cell {
    frt_object ob;
    frt_object *next;
} cell;

static int cell_traverse(frt_object *self, frt_visit_fn visit, void *arg)
{
    frt_object *n = ((cell *)self)->next;
    return n ? visit(n, arg) : 0;
}

static void cell_clear(frt_object *self)
{
    cell *c = (cell *)self;
    frt_object *n = c->next;
    c->next = NULL;
    frt_xdecref(n);
}

static const frt_type cell_type = {"bench.cell", sizeof(cell), cell_traverse, cell_clear, NULL, cell_clear};

static _Atomic int stop;
static _Atomic long made, epoch, made_epoch;
static long rings_per_epoch = 2000;

static void *allocator(void *arg)
{
    (void)arg;
    if (frt_thread_attach() != 0)
        return NULL;
    long n = 0, mine = 0, seen = -1;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        long e = atomic_load_explicit(&epoch, memory_order_relaxed);
        if (e != seen) {
            seen = e;
            mine = 0;
        }
        if (mine >= rings_per_epoch) {
            frt_safepoint();
            continue;
        }
        mine++;
        atomic_fetch_add_explicit(&made_epoch, 1, memory_order_relaxed);
        /* A ring of four, dropped at once: cyclic garbage. */
        cell *first = (cell *)frt_new(&cell_type), *prev = first;
        for (int i = 0; i < 3; i++) {
            cell *c = (cell *)frt_new(&cell_type);
            prev->next = &c->ob;
            prev = c;
        }
        prev->next = &first->ob;
        n += 4;
        frt_safepoint();
    }
    atomic_fetch_add(&made, n);
    frt_thread_detach();
    return NULL;
}

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    int collections = argc > 1 ? atoi(argv[1]) : 50;
    int threads = argc > 2 ? atoi(argv[2]) : 3;
    if (argc > 3)
        rings_per_epoch = atol(argv[3]);
    if (collections < 1 || threads < 0 || threads > 256 || rings_per_epoch < 0) {
        fprintf(stderr, "usage: frt-bench-gc-load [collections=50] [threads=3] [rings=2000]\n");
        return 2;
    }
    frt_config cfg;
    frt_config_default(&cfg);
    cfg.gc_enabled = 0; /* only the main thread's collections: each one counts */
    if (frt_init(&cfg) != 0)
        return 1;
    pthread_t *t = calloc((size_t)threads, sizeof *t);
    for (int i = 0; i < threads; i++)
        pthread_create(&t[i], NULL, allocator, NULL);
    frt_stw_stats s0, s1;
    frt_stw_get_stats(&s0);
    long found = 0;
    double total = 0, cpu = 0;
    for (int i = 0; i < collections; i++) {
        while (atomic_load(&made_epoch) < threads * rings_per_epoch / 2)
            frt_safepoint();
        double t0 = clock_s(CLOCK_MONOTONIC), c0 = clock_s(CLOCK_THREAD_CPUTIME_ID);
        found += frt_gc_collect(2);
        total += clock_s(CLOCK_MONOTONIC) - t0;
        cpu += clock_s(CLOCK_THREAD_CPUTIME_ID) - c0;
        atomic_store(&made_epoch, 0);
        atomic_fetch_add(&epoch, 1);
    }
    frt_stw_get_stats(&s1);
    atomic_store(&stop, 1);
    frt_blocking_begin();
    for (int i = 0; i < threads; i++)
        pthread_join(t[i], NULL);
    frt_blocking_end();
    free(t);
    double stopped = (s1.pause_ns_total - s0.pause_ns_total) * 1e-9;
    printf("frt-bench-gc-load: %d full collections, %d allocating threads: %.3f s "
           "(%.2f ms each; world stopped %.3f s; collecting thread's CPU %.3f s; %ld garbage found, "
           "%ld objects made)\n",
           collections, threads, total, total * 1e3 / collections, stopped, cpu, found, atomic_load(&made));
    frt_gc_collect(2);
    return frt_shutdown() < 0;
}
