/* Helpers shared by the benchmark programs (frt-bench-alloc, frt-bench-brc,
 * frt-bench-stw): wall-clock timing, medians and percentiles, compiler
 * barriers, a start barrier for threads, and command-line parsing.
 *
 * Method, common to all three programs (docs/benchmarks.md):
 *   - time is wall clock, clock_gettime(CLOCK_MONOTONIC), read once before
 *     and once after a timed stretch that lasts milliseconds, so the cost of
 *     reading the clock (~20 ns) is noise;
 *   - every measurement runs once untimed first (warm-up: page faults, the
 *     allocator's first pages, branch predictors, frequency ramp);
 *   - then it runs several times ("repetitions") and the median is
 *     reported; where a figure is compared with a baseline, the repetitions
 *     of the candidates are interleaved (A B C A B C ...) so that a burst of
 *     load from another process lands on all of them alike.
 * Everything here is static inline: a header, not a library. */
#ifndef FRT_STRESS_BENCH_COMMON_H
#define FRT_STRESS_BENCH_COMMON_H

#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <stdatomic.h>

/* ------------------------------------------------------------------ */
/* Time.                                                              */

static inline uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Busy-wait (no syscall) for about ns nanoseconds. */
static inline void bench_spin_ns(uint64_t ns)
{
    uint64_t end = bench_now_ns() + ns;
    while (bench_now_ns() < end) {
    }
}

/* ------------------------------------------------------------------ */
/* Keeping the compiler honest.                                       */

/* The compiler must assume every memory location may be read or written
 * here: values are stored before and reloaded after. No instruction. */
#define BENCH_BARRIER() __asm__ __volatile__("" ::: "memory")

/* p "escapes": the compiler must assume it is used (so an allocation is not
 * elided, a malloc + memset is not fused into calloc). No instruction. */
static inline void bench_escape(void *p)
{
    __asm__ __volatile__("" : : "g"(p) : "memory");
}

static inline void bench_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __asm__ __volatile__("pause");
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* ------------------------------------------------------------------ */
/* Statistics.                                                        */

static inline int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Sorts v in place. */
static inline double bench_median(double *v, size_t n)
{
    if (n == 0)
        return 0.0;
    qsort(v, n, sizeof *v, bench_cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

/* Nearest-rank percentile (q in [0, 100]) of sorted v. */
static inline double bench_percentile_sorted(const double *v, size_t n, double q)
{
    if (n == 0)
        return 0.0;
    double rank = q / 100.0 * (double)n;
    size_t k = (size_t)rank;
    if ((double)k < rank)
        k++;
    if (k == 0)
        k = 1;
    if (k > n)
        k = n;
    return v[k - 1];
}

static inline double bench_min(const double *v, size_t n)
{
    double m = n ? v[0] : 0.0;
    for (size_t i = 1; i < n; i++)
        if (v[i] < m)
            m = v[i];
    return m;
}

static inline double bench_max(const double *v, size_t n)
{
    double m = n ? v[0] : 0.0;
    for (size_t i = 1; i < n; i++)
        if (v[i] > m)
            m = v[i];
    return m;
}

/* ------------------------------------------------------------------ */
/* A reusable spinning start barrier for benchmark threads.           */

typedef struct bench_barrier {
    _Atomic unsigned arrived;
    _Atomic unsigned phase;
    unsigned n;
} bench_barrier;

static inline void bench_barrier_init(bench_barrier *b, unsigned n)
{
    atomic_init(&b->arrived, 0);
    atomic_init(&b->phase, 0);
    b->n = n;
}

/* Spins a little, then yields: on an oversubscribed machine a spinning
 * waiter must not keep the thread it waits for off the CPU. */
static inline void bench_barrier_wait(bench_barrier *b)
{
    unsigned phase = atomic_load_explicit(&b->phase, memory_order_acquire);
    if (atomic_fetch_add_explicit(&b->arrived, 1, memory_order_acq_rel) + 1 == b->n) {
        atomic_store_explicit(&b->arrived, 0, memory_order_relaxed);
        atomic_fetch_add_explicit(&b->phase, 1, memory_order_acq_rel);
        return;
    }
    for (unsigned spin = 0; atomic_load_explicit(&b->phase, memory_order_acquire) == phase; spin++) {
        if (spin < 1000)
            bench_cpu_relax();
        else
            sched_yield();
    }
}

/* ------------------------------------------------------------------ */
/* Command line.                                                      */

static inline int bench_flag(int argc, char **argv, const char *name)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return 1;
    return 0;
}

/* The value of "--name VALUE" or "--name=VALUE", or NULL. */
static inline const char *bench_opt(int argc, char **argv, const char *name)
{
    size_t len = strlen(name);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], name) == 0)
            return i + 1 < argc ? argv[i + 1] : NULL;
        if (strncmp(argv[i], name, len) == 0 && argv[i][len] == '=')
            return argv[i] + len + 1;
    }
    return NULL;
}

static inline long bench_opt_long(int argc, char **argv, const char *name, long dflt)
{
    const char *v = bench_opt(argc, argv, name);
    if (!v)
        return dflt;
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end) {
        fprintf(stderr, "%s: not a number: %s\n", name, v);
        exit(2);
    }
    return x;
}

/* Parse "1,2,4" into out (at most cap values, each >= 1); returns the count,
 * 0 on a malformed list. */
static inline size_t bench_parse_list(const char *s, long *out, size_t cap)
{
    size_t n = 0;
    while (s && *s && n < cap) {
        char *end;
        errno = 0;
        long x = strtol(s, &end, 10);
        if (errno || end == s || x < 1)
            return 0;
        out[n++] = x;
        if (*end == ',')
            end++;
        else if (*end)
            return 0;
        s = end;
    }
    return n;
}

/* Reject options this program does not know (each takes a value or not). */
static inline void bench_check_args(int argc, char **argv, const char *const *flags,
                                    const char *const *valued, const char *usage)
{
    for (int i = 1; i < argc; i++) {
        int ok = 0;
        for (const char *const *f = flags; *f && !ok; f++)
            ok = strcmp(argv[i], *f) == 0;
        for (const char *const *f = valued; *f && !ok; f++) {
            size_t len = strlen(*f);
            if (strcmp(argv[i], *f) == 0 && i + 1 < argc) {
                ok = 1;
                i++;
            } else if (strncmp(argv[i], *f, len) == 0 && argv[i][len] == '=') {
                ok = 1;
            }
        }
        if (!ok || strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fprintf(ok ? stdout : stderr, "%s", usage);
            exit(ok ? 0 : 2);
        }
    }
}

/* ------------------------------------------------------------------ */
/* The machine, printed at the top of every report.                   */

/* ------------------------------------------------------------------ */
/* Variants: loops that are calibrated to about target_ns each, then    */
/* timed in interleaved repetitions (so a slow moment of the machine    */
/* hits every variant alike); the figure is the median, ns per op.      */

#define BENCH_MAX_REPS 64
typedef void (*bench_loop_fn)(void *arg, size_t n);

typedef struct bench_variant {
    const char *name;
    bench_loop_fn fn;
    void *arg;
    size_t n;   /* iterations per repetition, from calibration */
    double med; /* ns per iteration */
    double samples[BENCH_MAX_REPS];
} bench_variant;

static inline double bench_time_loop(bench_loop_fn fn, void *arg, size_t n)
{
    uint64_t t0 = bench_now_ns();
    fn(arg, n);
    return (double)(bench_now_ns() - t0);
}

/* Iterations for one repetition of about target_ns; also the warm-up. */
static inline size_t bench_calibrate(bench_loop_fn fn, void *arg, double target_ns)
{
    size_t n = 1 << 12;
    for (;;) {
        double t = bench_time_loop(fn, arg, n);
        if (t > 2e6 || n > ((size_t)1 << 40)) {
            double m = (double)n * target_ns / (t > 1 ? t : 1);
            return m < 1000 ? 1000 : (size_t)m;
        }
        n *= 2;
    }
}

static inline void bench_run_variants(bench_variant *v, int nv, int reps, double target_ns)
{
    for (int i = 0; i < nv; i++)
        v[i].n = bench_calibrate(v[i].fn, v[i].arg, target_ns);
    for (int r = 0; r < reps; r++)
        for (int i = 0; i < nv; i++)
            v[i].samples[r] = bench_time_loop(v[i].fn, v[i].arg, v[i].n) / (double)v[i].n;
    for (int i = 0; i < nv; i++)
        v[i].med = bench_median(v[i].samples, (size_t)reps);
}

static inline long bench_ncpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? n : 1;
}

static inline void bench_cpu_model(char *buf, size_t cap)
{
    snprintf(buf, cap, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) == 0) {
            char *c = strchr(line, ':');
            if (c) {
                c++;
                while (*c == ' ' || *c == '\t')
                    c++;
                c[strcspn(c, "\n")] = 0;
                snprintf(buf, cap, "%s", c);
            }
            break;
        }
    }
    fclose(f);
}

static inline void bench_print_machine(const char *program)
{
    char cpu[256];
    bench_cpu_model(cpu, sizeof cpu);
    struct utsname u;
    double load[3] = {0, 0, 0};
    if (uname(&u) != 0)
        snprintf(u.release, sizeof u.release, "?");
    if (getloadavg(load, 3) < 0)
        load[0] = load[1] = load[2] = -1;
    printf("# %s\n# machine: %ld online CPUs, %s, Linux %s\n"
           "# load average before the run: %.2f %.2f %.2f (other processes share these CPUs)\n",
           program, bench_ncpus(), cpu, u.release, load[0], load[1], load[2]);
#if defined(__clang__)
    printf("# compiler: clang %d.%d.%d", __clang_major__, __clang_minor__, __clang_patchlevel__);
#elif defined(__GNUC__)
    printf("# compiler: gcc %d.%d.%d", __GNUC__, __GNUC_MINOR__, __GNUC_PATCHLEVEL__);
#else
    printf("# compiler: unknown");
#endif
#if defined(__OPTIMIZE__)
    printf(", optimised");
#else
    printf(", NOT optimised (figures are meaningless)");
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    printf(", SANITIZER build (figures are meaningless)");
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
    printf(", SANITIZER build (figures are meaningless)");
#endif
#endif
    printf("\n");
}

/* 1 under AddressSanitizer or ThreadSanitizer (they change what is timed,
 * and a dlopen'ed second malloc confuses them). */
static inline int bench_sanitized(void)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    return 1;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
    return 1;
#else
    return 0;
#endif
#else
    return 0;
#endif
}

#endif
