/* frt-bench-stw: stop-the-world latency.
 *
 * The main thread (the stopper) stops and restarts the world S times, with
 * a busy gap between stops, while worker threads run. For every stop it
 * records, from frt_stw_get_stats:
 *   time to safepoint  request -> every other thread parked or suspended
 *                      (last_time_to_stop_ns)
 *   pause              request -> restart, the world stopped
 *                      (last_pause_ns)
 * and, on its own clock, the whole call pair (frt_stop_the_world entry to
 * frt_start_the_world return, including taking the stop locks).
 * The world is stopped and immediately restarted: the pause is the
 * protocol's own cost, what a collection adds on top.
 *
 * Scenarios:
 *   cores       threads = CPUs: the stopper + (CPUs - 1) busy workers
 *   cores+1     the stopper + CPUs busy workers (every CPU has a worker)
 *   64 threads  the stopper + 64 busy workers (oversubscribed)
 *   blocking    the stopper + (CPUs - 1) busy workers + 8 threads that
 *               loop: frt_blocking_begin, sleep 50 us, frt_blocking_end
 * A busy worker loops: ~work-ns of arithmetic, frt_safepoint().
 *
 * Reported: median, p99, max of each, and the workers' safepoints/s (how
 * much work still got done). Compared with CPython's free-threaded
 * stop-the-world (gh-154969): 0.5-2 us median, 16 us tail. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sys/resource.h>

#include <frt/frt.h>

#include "bench_common.h"

static void die(const char *what)
{
    fprintf(stderr, "frt-bench-stw: %s\n", what);
    exit(1);
}

/* ------------------------------------------------------------------ */
/* Work between safepoints.                                           */

static uint64_t work_iters; /* calibrated: iterations per work-ns */

/* A dependent multiply-add chain: ~1 ns per iteration, not vectorisable. */
__attribute__((noinline)) static uint64_t work(uint64_t x, uint64_t iters)
{
    for (uint64_t i = 0; i < iters; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        BENCH_BARRIER();
    }
    return x;
}

static void calibrate_work(double work_ns)
{
    uint64_t n = 1 << 20, best = UINT64_MAX;
    for (int i = 0; i < 5; i++) {
        uint64_t t0 = bench_now_ns();
        bench_escape((void *)(uintptr_t)work(t0, n));
        uint64_t t = bench_now_ns() - t0;
        if (t < best)
            best = t;
    }
    double per = (double)best / (double)n;
    work_iters = (uint64_t)(work_ns / per);
    if (work_iters < 1)
        work_iters = 1;
}

/* ------------------------------------------------------------------ */
/* Workers.                                                           */

enum { W_BUSY, W_BLOCKING };

typedef struct worker {
    pthread_t th;
    int kind;
    unsigned sleep_us;
    _Atomic int *quit;
    bench_barrier *ready;
    _Alignas(64) _Atomic uint64_t safepoints;
    uint64_t sink;
} worker;

static void *worker_main(void *arg)
{
    worker *w = arg;
    if (frt_thread_attach() != 0)
        die("frt_thread_attach failed");
    uint64_t x = (uint64_t)(uintptr_t)w, n = 0;
    bench_barrier_wait(w->ready);
    while (!atomic_load_explicit(w->quit, memory_order_relaxed)) {
        if (w->kind == W_BLOCKING) {
            frt_blocking_begin();
            struct timespec ts = {0, (long)w->sleep_us * 1000};
            nanosleep(&ts, NULL);
            frt_blocking_end();
        }
        x = work(x, work_iters);
        frt_safepoint();
        n++;
        if ((n & 63) == 0)
            atomic_store_explicit(&w->safepoints, n, memory_order_relaxed);
    }
    atomic_store_explicit(&w->safepoints, n, memory_order_relaxed);
    w->sink = x;
    frt_thread_detach();
    return NULL;
}

/* ------------------------------------------------------------------ */
/* One scenario.                                                      */

typedef struct dist {
    double p50, p99, max, mean;
} dist;

static dist summarise(double *v, size_t n)
{
    dist d = {0, 0, 0, 0};
    if (!n)
        return d;
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += v[i];
    bench_median(v, n); /* sorts */
    d.p50 = bench_percentile_sorted(v, n, 50);
    d.p99 = bench_percentile_sorted(v, n, 99);
    d.max = v[n - 1];
    d.mean = sum / (double)n;
    return d;
}

typedef struct result {
    const char *name;
    int busy, blocking;
    size_t stops;
    dist ttsp, pause, call, stopcall, startcall;
    double safepoints_per_s;
    long vcsw, ivcsw; /* the stopper's context switches during the counted stops */
    int ok;
} result;

static result scenario(const char *name, int busy, int blocking, size_t stops, size_t warmup,
                       double gap_ns)
{
    result res = {.name = name, .busy = busy, .blocking = blocking, .stops = stops};
    int n = busy + blocking;
    worker *ws = calloc((size_t)(n ? n : 1), sizeof *ws);
    double *ttsp = calloc(stops, sizeof *ttsp), *pause = calloc(stops, sizeof *pause),
           *call = calloc(stops, sizeof *call), *stopcall = calloc(stops, sizeof *stopcall),
           *startcall = calloc(stops, sizeof *startcall);
    if (!ws || !ttsp || !pause || !call || !stopcall || !startcall)
        die("out of memory");
    _Atomic int quit = 0;
    bench_barrier ready;
    bench_barrier_init(&ready, (unsigned)n + 1);
    for (int i = 0; i < n; i++) {
        ws[i].kind = i < busy ? W_BUSY : W_BLOCKING;
        ws[i].sleep_us = 50;
        ws[i].quit = &quit;
        ws[i].ready = &ready;
        if (pthread_create(&ws[i].th, NULL, worker_main, &ws[i]))
            die("pthread_create failed");
    }
    bench_barrier_wait(&ready);
    bench_spin_ns(2000000); /* let every worker get going */

    frt_stw_stats before, st;
    frt_stw_get_stats(&before);
    uint64_t sp0 = 0, t_begin = 0;
    size_t got = 0;
    struct rusage ru0, ru1;
    memset(&ru0, 0, sizeof ru0);
    res.ok = 1;
    for (size_t s = 0; s < warmup + stops; s++) {
        if (s == warmup) {
            for (int i = 0; i < n; i++)
                sp0 += atomic_load(&ws[i].safepoints);
            getrusage(RUSAGE_THREAD, &ru0);
            t_begin = bench_now_ns();
        }
        /* The gap: the stopper is busy too, and polls like any thread. */
        uint64_t end = bench_now_ns() + (uint64_t)gap_ns;
        while (bench_now_ns() < end)
            frt_safepoint();
        uint64_t t0 = bench_now_ns();
        if (frt_stop_the_world() != 0) {
            res.ok = 0;
            break;
        }
        uint64_t tm = bench_now_ns();
        frt_start_the_world();
        uint64_t t1 = bench_now_ns();
        frt_stw_get_stats(&st);
        if (s >= warmup) {
            ttsp[got] = (double)st.last_time_to_stop_ns;
            pause[got] = (double)st.last_pause_ns;
            call[got] = (double)(t1 - t0);
            stopcall[got] = (double)(tm - t0);
            startcall[got] = (double)(t1 - tm);
            got++;
        }
    }
    double secs = (double)(bench_now_ns() - t_begin) / 1e9;
    getrusage(RUSAGE_THREAD, &ru1);
    res.vcsw = ru1.ru_nvcsw - ru0.ru_nvcsw;
    res.ivcsw = ru1.ru_nivcsw - ru0.ru_nivcsw;
    uint64_t sp1 = 0;
    for (int i = 0; i < n; i++)
        sp1 += atomic_load(&ws[i].safepoints);
    if (st.stops - before.stops != warmup + stops)
        res.ok = 0;
    atomic_store(&quit, 1);
    frt_blocking_begin();
    for (int i = 0; i < n; i++)
        pthread_join(ws[i].th, NULL);
    frt_blocking_end();

    res.stops = got;
    res.ttsp = summarise(ttsp, got);
    res.pause = summarise(pause, got);
    res.call = summarise(call, got);
    res.stopcall = summarise(stopcall, got);
    res.startcall = summarise(startcall, got);
    res.safepoints_per_s = secs > 0 ? (double)(sp1 - sp0) / secs : 0;
    free(ws);
    free(ttsp);
    free(pause);
    free(call);
    free(stopcall);
    free(startcall);
    return res;
}

static void print_result(const result *r)
{
    printf("%-11s %4d+%-2d %5zu | %7.2f %7.2f %8.1f | %7.2f %7.2f %8.1f | %7.2f %7.2f %8.1f | %8.2f\n",
           r->name, r->busy, r->blocking, r->stops, r->ttsp.p50 / 1e3, r->ttsp.p99 / 1e3,
           r->ttsp.max / 1e3, r->pause.p50 / 1e3, r->pause.p99 / 1e3, r->pause.max / 1e3,
           r->call.p50 / 1e3, r->call.p99 / 1e3, r->call.max / 1e3, r->safepoints_per_s / 1e6);
    if (!r->ok)
        printf("# %s: a stop failed or the stop count did not match\n", r->name);
}

static void print_breakdown(const result *r)
{
    printf("%-11s | %8.2f %8.2f %9.1f | %8.2f %8.2f %9.1f | %8ld %8ld\n", r->name,
           r->stopcall.p50 / 1e3, r->stopcall.p99 / 1e3, r->stopcall.max / 1e3,
           r->startcall.p50 / 1e3, r->startcall.p99 / 1e3, r->startcall.max / 1e3, r->vcsw,
           r->ivcsw);
}

static const char usage[] =
    "usage: frt-bench-stw [--quick] [--stops N] [--work-ns NS] [--gap-us US]\n"
    "                     [--oversub T] [--only LIST]\n"
    "  --quick       200 stops per scenario, 50 with 64 threads (default 1000 / 200)\n"
    "  --work-ns     work between a busy worker's safepoints (default 200 ns)\n"
    "  --gap-us      busy gap between two stops (default 100 us)\n"
    "  --oversub     workers in the oversubscribed scenario (default 64)\n"
    "  --only LIST   scenarios to run, comma-separated: cores,cores+1,oversub,blocking\n";

int main(int argc, char **argv)
{
    static const char *const flags[] = {"--quick", "--help", "-h", NULL};
    static const char *const valued[] = {"--stops", "--work-ns", "--gap-us", "--oversub", "--only",
                                         NULL};
    bench_check_args(argc, argv, flags, valued, usage);
    int quick = bench_flag(argc, argv, "--quick");
    long stops = bench_opt_long(argc, argv, "--stops", quick ? 200 : 1000);
    long stops_over = bench_opt(argc, argv, "--stops") ? stops : quick ? 50 : 200;
    if (bench_sanitized()) {
        stops = stops > 100 ? 100 : stops;
        stops_over = stops_over > 20 ? 20 : stops_over;
    }
    long work_ns = bench_opt_long(argc, argv, "--work-ns", 200);
    long gap_us = bench_opt_long(argc, argv, "--gap-us", 100);
    long oversub = bench_opt_long(argc, argv, "--oversub", 64);
    const char *only = bench_opt(argc, argv, "--only");
    if (stops < 1 || work_ns < 1 || gap_us < 0 || oversub < 1 || oversub > 4096) {
        fprintf(stderr, "bad option value\n%s", usage);
        return 2;
    }
    long ncpu = bench_ncpus();
    int cores_busy = ncpu > 1 ? (int)ncpu - 1 : 1;

    if (frt_init(NULL) != 0)
        die("frt_init failed");
    calibrate_work((double)work_ns);
    bench_print_machine("frt-bench-stw: stop-the-world time to safepoint and pause");
    printf("# busy workers: %lu iterations of a multiply-add chain (~%ld ns) then frt_safepoint(),"
           " in a loop\n",
           (unsigned long)work_iters, work_ns);
    printf("# the stopper: busy gap of %ld us (polling frt_safepoint), then frt_stop_the_world +"
           " frt_start_the_world; 20 warm-up stops not counted\n",
           gap_us);
    printf("# ttsp = request -> all parked, pause = request -> restart (frt_stw_get_stats);"
           " call = the stopper's own clock around both calls (includes taking the stop locks)\n");
    printf("# all times in microseconds; workers = busy + blocking-section threads (the stopper is"
           " one more thread)\n\n");
    printf("%-11s %7s %5s | %-24s | %-24s | %-24s | %8s\n", "", "workers", "", "time to safepoint",
           "pause (request->restart)", "stopper's clock", "worker");
    printf("%-11s %7s %5s | %7s %7s %8s | %7s %7s %8s | %7s %7s %8s | %8s\n", "scenario", "busy+blk",
           "stops", "p50", "p99", "max", "p50", "p99", "max", "p50", "p99", "max", "Msafept/s");
    fflush(stdout);

    struct {
        const char *name, *key;
        int busy, blocking;
        long stops;
    } sc[4] = {
        {"cores", "cores", cores_busy, 0, stops},
        {"cores+1", "cores+1", (int)ncpu, 0, stops},
        {"oversub", "oversub", (int)oversub, 0, stops_over},
        {"blocking", "blocking", cores_busy, 8, stops},
    };
    result first = {0}, all[4];
    int have_first = 0, nall = 0;
    for (int i = 0; i < 4; i++) {
        if (only) {
            /* match whole comma-separated words */
            const char *p = only;
            int found = 0;
            size_t len = strlen(sc[i].key);
            while (p && *p && !found) {
                found = strncmp(p, sc[i].key, len) == 0 && (p[len] == ',' || p[len] == 0);
                p = strchr(p, ',');
                if (p)
                    p++;
            }
            if (!found)
                continue;
        }
        result r = scenario(sc[i].name, sc[i].busy, sc[i].blocking, (size_t)sc[i].stops, 20,
                            (double)gap_us * 1e3);
        print_result(&r);
        fflush(stdout);
        all[nall++] = r;
        if (i == 0) {
            first = r;
            have_first = 1;
        }
    }

    printf("\n# where the stopper's time goes (us): inside frt_stop_the_world, inside"
           " frt_start_the_world; and the stopper's voluntary / involuntary context switches\n");
    printf("%-11s | %-28s | %-28s | %17s\n", "", "frt_stop_the_world call", "frt_start_the_world call",
           "context switches");
    printf("%-11s | %8s %8s %9s | %8s %8s %9s | %8s %8s\n", "scenario", "p50", "p99", "max", "p50",
           "p99", "max", "vol", "invol");
    for (int i = 0; i < nall; i++)
        print_breakdown(&all[i]);

    printf("\n# CPython free-threaded stop-the-world (gh-154969): 0.5-2 us median, 16 us tail\n");
    if (have_first) {
        printf("## target (threads = cores, all busy): pause median <= 2 us: %.2f us %s;"
               " p99 <= 16 us: %.2f us %s\n",
               first.pause.p50 / 1e3, first.pause.p50 <= 2000 ? "MET" : "MISSED",
               first.pause.p99 / 1e3, first.pause.p99 <= 16000 ? "MET" : "MISSED");
    }
    int alive = frt_shutdown();
    if (alive != 0)
        fprintf(stderr, "frt_shutdown: %d objects still alive\n", alive);
    return 0;
}
