/* frt-bench-share: the cost of sharing mutable objects between threads,
 * each figure against its baseline in the same run: frt_mutex and critical
 * sections against a pthread mutex (the lock rows in this file), and the
 * rows of the other stress/bench/bench_share*.c files. Method: bench_common.h;
 * latest figures and the command: docs/benchmarks.md.
 *
 *   frt-bench-share [--quick] [--reps N] [--only SUBSTRING] */
#define _GNU_SOURCE
#include <pthread.h>

#include <frt/frt.h>

#include "bench_share.h"

#define MAX_ROWS 32
static const share_row *rows[MAX_ROWS];
static int nrows;

void bench_share_register(const share_row *row)
{
    if (nrows < MAX_ROWS)
        rows[nrows++] = row;
}

void bench_share_print(const share_ctx *ctx, const bench_variant *v, int nv, const char *ratio,
                       double target)
{
    for (int i = 0; i < nv; i++)
        printf("  %-40s %8.3f ns   (min %.3f, max %.3f)\n", v[i].name, v[i].med,
               bench_min(v[i].samples, (size_t)ctx->reps), bench_max(v[i].samples, (size_t)ctx->reps));
    /* The ratio is the median of the per-repetition ratios: the two
     * samples of a repetition ran back to back, so a burst of load from
     * another process mostly hits both. The ratio of the minima (each
     * variant's least disturbed repetition) is printed beside it. */
    double r[BENCH_MAX_REPS];
    for (int i = 0; i < ctx->reps; i++)
        r[i] = v[0].samples[i] / v[1].samples[i];
    double paired = bench_median(r, (size_t)ctx->reps);
    double rmin = bench_min(v[0].samples, (size_t)ctx->reps) / bench_min(v[1].samples, (size_t)ctx->reps);
    if (target > 0)
        printf("  %-40s %8.3fx   (of minima %.3fx; target <= %.1fx)\n", ratio, paired, rmin, target);
    else
        printf("  %-40s %8.3fx   (of minima %.3fx; for information)\n", ratio, paired, rmin);
}

/* ------------------------------------------------------------------ */
/* Lock rows.                                                         */

typedef struct locked_obj {
    frt_object ob;
    long n;
} locked_obj;
static const frt_type locked_type = {"bench.locked", sizeof(locked_obj), NULL, NULL, NULL, NULL};

typedef struct pthread_box {
    pthread_mutex_t mu;
    long n;
} pthread_box;

typedef struct frt_box {
    frt_mutex mu;
    long n;
} frt_box;

__attribute__((noinline)) static void loop_frt_mutex(void *arg, size_t n)
{
    frt_box *b = arg;
    for (size_t i = 0; i < n; i++) {
        frt_mutex_lock(&b->mu);
        b->n++;
        frt_mutex_unlock(&b->mu);
        BENCH_BARRIER();
    }
}

__attribute__((noinline)) static void loop_pthread(void *arg, size_t n)
{
    pthread_box *b = arg;
    for (size_t i = 0; i < n; i++) {
        pthread_mutex_lock(&b->mu);
        b->n++;
        pthread_mutex_unlock(&b->mu);
        BENCH_BARRIER();
    }
}

__attribute__((noinline)) static void loop_section(void *arg, size_t n)
{
    locked_obj *o = arg;
    for (size_t i = 0; i < n; i++) {
        FRT_BEGIN_CRITICAL_SECTION(o);
        o->n++;
        FRT_END_CRITICAL_SECTION();
        BENCH_BARRIER();
    }
}

static void row_mutex(const share_ctx *ctx)
{
    frt_box f = {FRT_MUTEX_INIT, 0};
    pthread_box p = {PTHREAD_MUTEX_INITIALIZER, 0};
    bench_variant v[2] = {{.name = "frt_mutex lock+unlock", .fn = loop_frt_mutex, .arg = &f},
                          {.name = "pthread_mutex lock+unlock", .fn = loop_pthread, .arg = &p}};
    bench_run_variants(v, 2, ctx->reps, ctx->target_ns);
    printf("\n## uncontended lock+unlock pair, one thread (ns per pair)\n");
    bench_share_print(ctx, v, 2, "frt_mutex / pthread_mutex", 1.0);
}
BENCH_SHARE_ROW(10, row_mutex)

static void row_section(const share_ctx *ctx)
{
    locked_obj *o = (locked_obj *)frt_new(&locked_type);
    frt_make_shared(&o->ob); /* as an object other threads use */
    pthread_box p = {PTHREAD_MUTEX_INITIALIZER, 0};
    bench_variant v[2] = {{.name = "critical section on one object", .fn = loop_section, .arg = o},
                          {.name = "pthread_mutex lock+unlock", .fn = loop_pthread, .arg = &p}};
    bench_run_variants(v, 2, ctx->reps, ctx->target_ns);
    printf("\n## critical section begin+end on one object, one thread (ns per section)\n");
    bench_share_print(ctx, v, 2, "critical section / pthread_mutex", 1.2);
    frt_decref(&o->ob);
}
BENCH_SHARE_ROW(20, row_section)

/* Two threads on one lock: each does n lock; n++; unlock. ns per pair,
 * all pairs of both threads together. */
typedef struct contended {
    bench_loop_fn fn;
    void *arg;
    size_t n;
    bench_barrier start;
} contended;

static void *contended_thread(void *arg)
{
    contended *c = arg;
    frt_thread_attach();
    bench_barrier_wait(&c->start);
    c->fn(c->arg, c->n);
    frt_thread_detach();
    return NULL;
}

static double time_contended(bench_loop_fn fn, void *arg, size_t n)
{
    contended c = {fn, arg, n, {0}};
    bench_barrier_init(&c.start, 2);
    pthread_t t;
    pthread_create(&t, NULL, contended_thread, &c);
    frt_blocking_begin(); /* this thread is not one of the two */
    uint64_t t0 = bench_now_ns();
    pthread_t u;
    pthread_create(&u, NULL, contended_thread, &c);
    pthread_join(t, NULL);
    pthread_join(u, NULL);
    uint64_t dt = bench_now_ns() - t0;
    frt_blocking_end();
    return (double)dt / (double)(2 * n);
}

static void row_contended(const share_ctx *ctx)
{
    frt_box f = {FRT_MUTEX_INIT, 0};
    pthread_box p = {PTHREAD_MUTEX_INITIALIZER, 0};
    size_t n = ctx->quick ? 200000 : 1000000;
    bench_variant v[2] = {{.name = "frt_mutex, 2 threads", .fn = loop_frt_mutex, .arg = &f},
                          {.name = "pthread_mutex, 2 threads", .fn = loop_pthread, .arg = &p}};
    for (int i = 0; i < 2; i++)
        time_contended(v[i].fn, v[i].arg, n / 10); /* warm-up */
    for (int r = 0; r < ctx->reps; r++)
        for (int i = 0; i < 2; i++)
            v[i].samples[r] = time_contended(v[i].fn, v[i].arg, n);
    for (int i = 0; i < 2; i++)
        v[i].med = bench_median(v[i].samples, (size_t)ctx->reps);
    printf("\n## contended: 2 threads, lock; n++; unlock (ns per pair, both threads together)\n");
    bench_share_print(ctx, v, 2, "frt_mutex / pthread_mutex (contended)", 0);
    if (f.n != p.n)
        printf("  # counts differ: frt %ld, pthread %ld (a lock failed to exclude)\n", f.n, p.n);
}
BENCH_SHARE_ROW(30, row_contended)

/* ------------------------------------------------------------------ */

static void *idle_thread(void *arg)
{
    return arg;
}

static int by_order(const void *a, const void *b)
{
    const share_row *x = *(const share_row *const *)a, *y = *(const share_row *const *)b;
    return (x->order > y->order) - (x->order < y->order);
}

int main(int argc, char **argv)
{
    static const char *const flags[] = {"--quick", "--help", "-h", NULL};
    static const char *const valued[] = {"--reps", "--only", NULL};
    bench_check_args(argc, argv, flags, valued,
                     "usage: frt-bench-share [--quick] [--reps N] [--only SUBSTRING]\n");
    share_ctx ctx = {.quick = bench_flag(argc, argv, "--quick")};
    ctx.reps = (int)bench_opt_long(argc, argv, "--reps", ctx.quick ? 5 : 63);
    if (ctx.reps < 1 || ctx.reps > BENCH_MAX_REPS) {
        fprintf(stderr, "--reps must be 1..%d\n", BENCH_MAX_REPS);
        return 2;
    }
    ctx.target_ns = ctx.quick ? 2e6 : 4e6;
    const char *only = bench_opt(argc, argv, "--only");
    /* glibc locks a mutex without atomic instructions while the process
     * has one thread (and flips for good at the first pthread_create): a
     * program that shares objects has threads, so the baseline must too. */
    pthread_t idle;
    pthread_create(&idle, NULL, idle_thread, NULL);
    pthread_join(idle, NULL);
    if (frt_init(NULL) != 0) {
        fprintf(stderr, "frt-bench-share: frt_init failed\n");
        return 1;
    }
    bench_print_machine("frt-bench-share: sharing mutable objects (locks, critical sections, ...)");
    printf("# method: per figure, a calibrated loop of ~%.0f ms, one warm-up, median of %d"
           " repetitions (variants interleaved; ratio: median of the per-repetition ratios);"
           " wall clock (CLOCK_MONOTONIC)\n",
           ctx.target_ns / 1e6, ctx.reps);
    printf("# the process has had a second thread before any figure (glibc's single-thread lock"
           " shortcut is off, as in any program that shares objects)\n");
    qsort(rows, (size_t)nrows, sizeof rows[0], by_order);
    for (int i = 0; i < nrows; i++) {
        if (only && !strstr(rows[i]->name, only))
            continue;
        rows[i]->run(&ctx);
        fflush(stdout);
    }
    int alive = frt_shutdown();
    if (alive != 0)
        fprintf(stderr, "frt_shutdown: %d objects still alive\n", alive);
    return alive == 0 ? 0 : 1;
}
