/* frt-bench-weakref: what a weak reference costs, against plain reference
 * counting on the same object, in one run.
 *
 * Sections (figures are medians over repetitions, variants interleaved;
 * method of bench_common.h):
 *   a  owner thread: frt_weakref_get + frt_decref of what it returned,
 *      against frt_incref + frt_decref on the same object (its owner counts
 *      without atomics; get takes the weakref's shard mutex and a
 *      try-incref). Also get on a cleared weakref (returns NULL).
 *   b  the same two loops on a thread that does not own the object (both
 *      count on the shared atomic word).
 *   c  T threads at once, none the owner: get on ONE shared weakref (all
 *      on one shard mutex and one count word), against incref+decref of
 *      one shared object (the count word only), and get on one weakref per
 *      thread, each to its own object in its own shard (no shared line, no
 *      shared lock: the control). Time-based: each thread runs until told
 *      to stop; ns per op = wall / all threads' ops.
 *   d  frt_weakref_new + frt_decref of the weakref (with and without a
 *      callback), against frt_new + frt_decref of a plain 64-byte object
 *      and of a tracked (collector-visible) one: a weakref is a tracked
 *      object.
 *   e  an object's death (its last decref) when it never had a weakref,
 *      had one that died first, or has 1 or 10 live weakrefs, without or
 *      with callbacks (an empty counter); batches of objects set up
 *      untimed, then their last decrefs timed in one loop.
 * Automatic collection is off (frt_gc_disable): section e keeps hundreds
 * of thousands of weakrefs (tracked objects) alive, and collections would
 * land inside the timings. */
#define _GNU_SOURCE
#include <pthread.h>

#include <frt/frt.h>

#include "bench_common.h"

#define MAX_THREADS 256

static int g_reps;
static double g_target_ns; /* length of one timed repetition */

static const frt_type obj_type = {.name = "bench_obj", .size = 64};

static int no_refs(frt_object *self, frt_visit_fn visit, void *arg)
{
    (void)self;
    (void)visit;
    (void)arg;
    return 0;
}
static const frt_type tracked_type = {.name = "bench_tracked", .size = 64, .traverse = no_refs};

static void die(const char *what)
{
    fprintf(stderr, "frt-bench-weakref: %s\n", what);
    exit(1);
}

static frt_object *new_obj(void)
{
    frt_object *o = frt_new(&obj_type);
    if (!o)
        die("frt_new failed");
    return o;
}

static frt_weakref *new_wr(frt_object *o, frt_weakref_cb cb)
{
    frt_weakref *w = frt_weakref_new(o, cb, NULL);
    if (!w)
        die("frt_weakref_new failed");
    return w;
}

static void attach(void)
{
    if (frt_thread_attach() != 0)
        die("frt_thread_attach failed");
}

static _Atomic unsigned long cb_calls;
static void count_cb(frt_weakref *wr, void *ctx)
{
    (void)wr;
    (void)ctx;
    atomic_fetch_add_explicit(&cb_calls, 1, memory_order_relaxed);
}

/* ------------------------------------------------------------------ */
/* The loops: noinline, one compiler barrier after each operation.    */

typedef struct target { frt_object *obj; frt_weakref *wr; } target;

__attribute__((noinline)) static void loop_pair(void *arg, size_t n)
{
    frt_object *o = ((target *)arg)->obj;
    for (size_t i = 0; i < n; i++) {
        frt_incref(o);
        BENCH_BARRIER();
        frt_decref(o);
        BENCH_BARRIER();
    }
}

__attribute__((noinline)) static void loop_get(void *arg, size_t n)
{
    frt_weakref *w = ((target *)arg)->wr;
    for (size_t i = 0; i < n; i++) {
        frt_object *o = frt_weakref_get(w);
        BENCH_BARRIER();
        if (FRT_UNLIKELY(!o))
            die("a live target's weakref returned NULL");
        frt_decref(o);
        BENCH_BARRIER();
    }
}

__attribute__((noinline)) static void loop_get_dead(void *arg, size_t n)
{
    frt_weakref *w = ((target *)arg)->wr;
    for (size_t i = 0; i < n; i++) {
        frt_object *o = frt_weakref_get(w);
        BENCH_BARRIER();
        if (FRT_UNLIKELY(o != NULL))
            die("a dead target's weakref returned an object");
    }
}

__attribute__((noinline)) static void loop_wr_new(void *arg, size_t n)
{
    frt_object *o = ((target *)arg)->obj;
    for (size_t i = 0; i < n; i++) {
        frt_weakref *w = frt_weakref_new(o, NULL, NULL);
        BENCH_BARRIER();
        frt_decref(frt_weakref_object(w));
        BENCH_BARRIER();
    }
}

__attribute__((noinline)) static void loop_wr_new_cb(void *arg, size_t n)
{
    frt_object *o = ((target *)arg)->obj;
    for (size_t i = 0; i < n; i++) {
        frt_weakref *w = frt_weakref_new(o, count_cb, NULL);
        BENCH_BARRIER();
        frt_decref(frt_weakref_object(w));
        BENCH_BARRIER();
    }
}

__attribute__((noinline)) static void loop_new_plain(void *arg, size_t n)
{
    (void)arg;
    for (size_t i = 0; i < n; i++) {
        frt_object *o = frt_new(&obj_type);
        BENCH_BARRIER();
        frt_decref(o);
        BENCH_BARRIER();
    }
}

__attribute__((noinline)) static void loop_new_tracked(void *arg, size_t n)
{
    (void)arg;
    for (size_t i = 0; i < n; i++) {
        frt_object *o = frt_new(&tracked_type);
        BENCH_BARRIER();
        frt_decref(o);
        BENCH_BARRIER();
    }
}

typedef bench_loop_fn loop_fn;

/* The variants of a section are timed interleaved (bench_common.h). */
typedef bench_variant variant;

static void run_variants(variant *v, int nv)
{
    bench_run_variants(v, nv, g_reps, g_target_ns);
}

static void print_variants(const variant *v, int nv)
{
    for (int i = 0; i < nv; i++)
        printf("%-44s %9.2f ns   (min %.2f, max %.2f)\n", v[i].name, v[i].med,
               bench_min(v[i].samples, (size_t)g_reps), bench_max(v[i].samples, (size_t)g_reps));
}

static struct { double a_ratio, b_ratio, c_ratio_max, new_ratio, death10; int c_T; } R;

/* ------------------------------------------------------------------ */
/* a and b: one thread.                                               */

static target ab_live, ab_dead;

static void make_ab(void)
{
    ab_live.obj = new_obj();
    ab_live.wr = new_wr(ab_live.obj, NULL);
    frt_object *d = new_obj();
    ab_dead.wr = new_wr(d, NULL);
    frt_decref(d); /* clears ab_dead.wr */
}

static void section_a(void)
{
    variant v[3] = {
        {.name = "incref + decref (owner, plain stores)", .fn = loop_pair, .arg = &ab_live},
        {.name = "weakref_get + decref (owner)", .fn = loop_get, .arg = &ab_live},
        {.name = "weakref_get of a cleared weakref (NULL)", .fn = loop_get_dead, .arg = &ab_dead},
    };
    run_variants(v, 3);
    printf("\n## a. on the target's owner thread (ns per pair, median of %d)\n", g_reps);
    print_variants(v, 3);
    printf("get+decref / incref+decref                   %9.2fx\n", v[1].med / v[0].med);
    R.a_ratio = v[1].med / v[0].med;
}

static variant b_v[2];

static void *b_thread(void *arg)
{
    (void)arg;
    attach();
    b_v[0] = (variant){.name = "incref + decref (non-owner, atomic)", .fn = loop_pair,
                       .arg = &ab_live};
    b_v[1] = (variant){.name = "weakref_get + decref (non-owner)", .fn = loop_get,
                       .arg = &ab_live};
    run_variants(b_v, 2);
    frt_thread_detach();
    return NULL;
}

static void section_b(void)
{
    pthread_t t;
    if (pthread_create(&t, NULL, b_thread, NULL))
        die("pthread_create");
    frt_blocking_begin();
    pthread_join(t, NULL);
    frt_blocking_end();
    printf("\n## b. on a thread that does not own the target; the owner idles (ns per pair,"
           " median of %d)\n", g_reps);
    print_variants(b_v, 2);
    printf("get+decref / incref+decref                   %9.2fx\n", b_v[1].med / b_v[0].med);
    R.b_ratio = b_v[1].med / b_v[0].med;
}

/* ------------------------------------------------------------------ */
/* c: T threads at once.                                              */

enum { C_GET_SHARED, C_PAIR_SHARED, C_GET_PRIVATE, C_KINDS };
static const char *const c_name[C_KINDS] = {"get+decref, 1 shared weakref",
                                            "incref+decref, 1 shared object",
                                            "get+decref, 1 weakref per thread"};

static struct {
    int kind;
    bench_barrier start;
    _Atomic int stop;
    target shared;
    target priv[MAX_THREADS];
    uint64_t ops[MAX_THREADS], end[MAX_THREADS];
} C;

static void *c_thread(void *arg)
{
    int i = (int)(intptr_t)arg;
    attach();
    target *t = C.kind == C_GET_PRIVATE ? &C.priv[i] : &C.shared;
    loop_fn fn = C.kind == C_PAIR_SHARED ? loop_pair : loop_get;
    uint64_t n = 0;
    bench_barrier_wait(&C.start);
    while (!atomic_load_explicit(&C.stop, memory_order_relaxed)) {
        fn(t, 64);
        n += 64;
    }
    C.end[i] = bench_now_ns();
    C.ops[i] = n;
    frt_thread_detach();
    return NULL;
}

/* ns per op over all threads: wall (start to last end) / total ops. */
static double c_run(int kind, int T, double ns)
{
    pthread_t th[MAX_THREADS];
    C.kind = kind;
    atomic_store(&C.stop, 0);
    bench_barrier_init(&C.start, (unsigned)T + 1);
    for (int i = 0; i < T; i++)
        if (pthread_create(&th[i], NULL, c_thread, (void *)(intptr_t)i))
            die("pthread_create");
    bench_barrier_wait(&C.start);
    uint64_t t0 = bench_now_ns();
    frt_blocking_begin();
    struct timespec d = {0, (long)ns};
    nanosleep(&d, NULL);
    atomic_store(&C.stop, 1);
    for (int i = 0; i < T; i++)
        pthread_join(th[i], NULL);
    frt_blocking_end();
    uint64_t t1 = t0, ops = 0;
    for (int i = 0; i < T; i++) {
        ops += C.ops[i];
        if (C.end[i] > t1)
            t1 = C.end[i];
    }
    return ops ? (double)(t1 - t0) / (double)ops : 0.0;
}

/* Mirrors runtime/weakref.c's shard choice (Fibonacci hash, 64 shards), only
 * to give each thread of the control its own shard; if the runtime's hash
 * changes, the control may share shards, which only makes it pessimistic. */
static unsigned shard_guess(const frt_object *o)
{
    return (unsigned)((((uint64_t)(uintptr_t)o * 0x9e3779b97f4a7c15ull) >> 32) % 64);
}

static void section_c(const long *threads, size_t nthreads)
{
    C.shared.obj = new_obj(); /* owned by the main thread, which only sleeps */
    C.shared.wr = new_wr(C.shared.obj, NULL);
    long maxT = 0;
    for (size_t i = 0; i < nthreads; i++)
        maxT = threads[i] > maxT ? threads[i] : maxT;
    frt_object *spare[4096];
    size_t nspare = 0;
    uint64_t used = 0; /* shards taken, while there are shards left */
    for (long i = 0; i < maxT; i++) {
        frt_object *o = new_obj();
        while (i < 64 && (used >> shard_guess(o) & 1) && nspare < 4096) {
            spare[nspare++] = o;
            o = new_obj();
        }
        if (i < 64)
            used |= 1ull << shard_guess(o);
        C.priv[i].obj = o;
        C.priv[i].wr = new_wr(o, NULL);
    }
    for (size_t i = 0; i < nspare; i++)
        frt_decref(spare[i]);

    printf("\n## c. T threads at once, none the owner (ns per op over all threads = wall / total"
           " ops, median of %d runs of ~%.0f ms)\n", g_reps, g_target_ns / 1e6);
    printf("# threads beyond %ld CPUs time-share: a shard-mutex holder can be preempted\n",
           bench_ncpus());
    printf("%-34s", "threads");
    for (size_t i = 0; i < nthreads; i++)
        printf(" %9ld", threads[i]);
    printf("\n");
    double med[C_KINDS][64];
    for (size_t ti = 0; ti < nthreads && ti < 64; ti++) {
        int T = (int)threads[ti];
        double s[C_KINDS][BENCH_MAX_REPS];
        for (int k = 0; k < C_KINDS; k++)
            c_run(k, T, g_target_ns / 4); /* warm-up */
        for (int r = 0; r < g_reps; r++)
            for (int k = 0; k < C_KINDS; k++)
                s[k][r] = c_run(k, T, g_target_ns);
        for (int k = 0; k < C_KINDS; k++)
            med[k][ti] = bench_median(s[k], (size_t)g_reps);
    }
    for (int k = 0; k < C_KINDS; k++) {
        printf("%-34s", c_name[k]);
        for (size_t i = 0; i < nthreads && i < 64; i++)
            printf(" %9.2f", med[k][i]);
        printf("  ns/op\n");
    }
    printf("%-34s", "shared get / shared incref");
    R.c_ratio_max = 0;
    for (size_t i = 0; i < nthreads && i < 64; i++) {
        double r = med[C_GET_SHARED][i] / med[C_PAIR_SHARED][i];
        printf(" %8.2fx", r);
        if (r > R.c_ratio_max) {
            R.c_ratio_max = r;
            R.c_T = (int)threads[i];
        }
    }
    printf("\n%-34s", "shared get / per-thread get");
    for (size_t i = 0; i < nthreads && i < 64; i++)
        printf(" %8.2fx", med[C_GET_SHARED][i] / med[C_GET_PRIVATE][i]);
    printf("\n");
    for (long i = 0; i < maxT; i++) {
        frt_decref(frt_weakref_object(C.priv[i].wr));
        frt_decref(C.priv[i].obj);
    }
    frt_decref(frt_weakref_object(C.shared.wr));
    frt_decref(C.shared.obj);
}

/* ------------------------------------------------------------------ */
/* d: creating and dropping weakrefs.                                 */

static void section_d(void)
{
    target t = {.obj = new_obj()};
    variant v[4] = {
        {.name = "frt_new + decref, plain object (64 B)", .fn = loop_new_plain, .arg = &t},
        {.name = "frt_new + decref, tracked object (64 B)", .fn = loop_new_tracked, .arg = &t},
        {.name = "weakref_new + decref, no callback", .fn = loop_wr_new, .arg = &t},
        {.name = "weakref_new + decref, with callback", .fn = loop_wr_new_cb, .arg = &t},
    };
    run_variants(v, 4);
    printf("\n## d. making and dropping a weakref to a live object (ns per pair, median of %d)\n",
           g_reps);
    print_variants(v, 4);
    printf("weakref new+drop / plain object new+drop     %9.2fx\n", v[2].med / v[0].med);
    printf("weakref new+drop / tracked object new+drop   %9.2fx\n", v[2].med / v[1].med);
    R.new_ratio = v[2].med / v[0].med;
    if (atomic_load(&cb_calls) != 0)
        printf("# unexpected: %lu callbacks ran (the target never died)\n", atomic_load(&cb_calls));
    frt_decref(t.obj);
}

/* ------------------------------------------------------------------ */
/* e: deaths.                                                         */

typedef struct death_kind { const char *name; int k, had, cb; } death_kind;
static const death_kind deaths[] = {
    {"never weakly referenced", 0, 0, 0},
    {"had a weakref, it died first", 0, 1, 0},
    {"1 weakref, no callback", 1, 0, 0},
    {"1 weakref, with callback", 1, 0, 1},
    {"10 weakrefs, no callbacks", 10, 0, 0},
    {"10 weakrefs, with callbacks", 10, 0, 1},
};
#define NDEATHS (int)(sizeof deaths / sizeof deaths[0])

static frt_object **d_obj;
static frt_weakref **d_wr;

__attribute__((noinline)) static void loop_deaths(frt_object **objs, size_t m)
{
    for (size_t i = 0; i < m; i++) {
        frt_decref(objs[i]);
        BENCH_BARRIER();
    }
}

/* ns per death for one batch of m objects. */
static double death_run(const death_kind *dk, size_t m)
{
    for (size_t i = 0; i < m; i++) {
        frt_object *o = d_obj[i] = new_obj();
        if (dk->had)
            frt_decref(frt_weakref_object(new_wr(o, NULL)));
        for (int j = 0; j < dk->k; j++)
            d_wr[i * 10 + (size_t)j] = new_wr(o, dk->cb ? count_cb : NULL);
    }
    uint64_t t0 = bench_now_ns();
    loop_deaths(d_obj, m);
    double t = (double)(bench_now_ns() - t0);
    for (size_t i = 0; i < m; i++)
        for (int j = 0; j < dk->k; j++)
            frt_decref(frt_weakref_object(d_wr[i * 10 + (size_t)j]));
    return t / (double)m;
}

static void section_e(size_t m)
{
    d_obj = calloc(m, sizeof *d_obj);
    d_wr = calloc(m * 10, sizeof *d_wr);
    if (!d_obj || !d_wr)
        die("out of memory");
    double s[NDEATHS][BENCH_MAX_REPS], med[NDEATHS];
    unsigned long want_cb = 0;
    atomic_store(&cb_calls, 0);
    for (int i = 0; i < NDEATHS; i++) { /* warm-up */
        death_run(&deaths[i], m);
        want_cb += deaths[i].cb ? (unsigned long)deaths[i].k * m : 0;
    }
    for (int r = 0; r < g_reps; r++)
        for (int i = 0; i < NDEATHS; i++)
            s[i][r] = death_run(&deaths[i], m);
    want_cb *= (unsigned long)g_reps + 1;
    printf("\n## e. an object's death (its last decref, on its owner), batches of %zu objects"
           " (ns per death, median of %d)\n", m, g_reps);
    for (int i = 0; i < NDEATHS; i++) {
        med[i] = bench_median(s[i], (size_t)g_reps);
        printf("%-44s %9.2f ns   (min %.2f, max %.2f)   %6.2fx", deaths[i].name, med[i],
               bench_min(s[i], (size_t)g_reps), bench_max(s[i], (size_t)g_reps), med[i] / med[0]);
        if (deaths[i].k)
            printf("   %.2f ns per weakref", (med[i] - med[0]) / deaths[i].k);
        printf("\n");
    }
    printf("# ratios against 'never weakly referenced'; callbacks run %lu (expected %lu)\n",
           atomic_load(&cb_calls), want_cb);
    R.death10 = med[NDEATHS - 1] / med[0];
    free(d_obj);
    free(d_wr);
}

/* ------------------------------------------------------------------ */

static const char usage[] =
    "usage: frt-bench-weakref [--quick] [--reps N] [--threads 1,2,4] [--only abcde]"
    " [--deaths M]\n"
    "  --quick      short run: 5 repetitions of ~10 ms (default 11 of ~40 ms)\n"
    "  --threads L  thread counts for section c (default 1,2,..,2 x CPUs)\n"
    "  --only S     run only these sections (letters a-e)\n"
    "  --deaths M   objects per batch in section e (default 20000)\n";

int main(int argc, char **argv)
{
    static const char *const flags[] = {"--quick", "--help", "-h", NULL};
    static const char *const valued[] = {"--reps", "--threads", "--only", "--deaths", NULL};
    bench_check_args(argc, argv, flags, valued, usage);
    int quick = bench_flag(argc, argv, "--quick");
    g_reps = (int)bench_opt_long(argc, argv, "--reps", quick ? 5 : 11);
    g_target_ns = bench_sanitized() ? 2e6 : quick ? 10e6 : 40e6;
    if (g_reps < 1 || g_reps > BENCH_MAX_REPS) {
        fprintf(stderr, "--reps must be 1..%d\n", BENCH_MAX_REPS);
        return 2;
    }
    long ncpu = bench_ncpus(), threads[64];
    size_t nthreads = 0;
    const char *tl = bench_opt(argc, argv, "--threads");
    if (tl) {
        nthreads = bench_parse_list(tl, threads, 64);
        for (size_t i = 0; i < nthreads; i++)
            if (threads[i] > MAX_THREADS)
                nthreads = 0;
        if (!nthreads) {
            fprintf(stderr, "--threads: expected a list like 1,2,4 (each at most %d)\n",
                    MAX_THREADS);
            return 2;
        }
    } else {
        for (long t = 1; t < 2 * ncpu && nthreads < 63; t *= 2)
            threads[nthreads++] = t;
        threads[nthreads++] = 2 * ncpu > MAX_THREADS ? MAX_THREADS : 2 * ncpu;
    }
    long m = bench_opt_long(argc, argv, "--deaths", bench_sanitized() ? 2000 : 20000);
    if (m < 1 || m > 10000000) {
        fprintf(stderr, "--deaths must be 1..10000000\n");
        return 2;
    }
    const char *only = bench_opt(argc, argv, "--only");
    if (!only)
        only = "abcde";

    if (frt_init(NULL) != 0)
        die("frt_init failed");
    frt_gc_disable();
    bench_print_machine("frt-bench-weakref: weak references against plain reference counting");
    printf("# method: per figure, a calibrated loop (or run) of ~%.0f ms, one warm-up, median of"
           " %d repetitions, variants interleaved; wall clock (CLOCK_MONOTONIC)\n",
           g_target_ns / 1e6, g_reps);
    printf("# loops: op; compiler barrier; op; compiler barrier (noinline); automatic collection"
           " off (frt_gc_disable)\n");
    fflush(stdout);
    make_ab();
    for (const char *c = only; *c; c++) {
        switch (*c) {
        case 'a': section_a(); break;
        case 'b': section_b(); break;
        case 'c': section_c(threads, nthreads); break;
        case 'd': section_d(); break;
        case 'e': section_e((size_t)m); break;
        default:
            fprintf(stderr, "--only: unknown section '%c'\n", *c);
            return 2;
        }
        fflush(stdout);
    }
    printf("\n## summary\n");
    if (R.a_ratio > 0)
        printf("owner:      weakref_get+decref costs %.1fx an incref+decref\n", R.a_ratio);
    if (R.b_ratio > 0)
        printf("non-owner:  weakref_get+decref costs %.1fx an incref+decref\n", R.b_ratio);
    if (R.c_ratio_max > 0)
        printf("contended:  one shared weakref is at worst %.1fx one shared object (at %d"
               " thread%s)\n", R.c_ratio_max, R.c_T, R.c_T == 1 ? "" : "s");
    if (R.new_ratio > 0)
        printf("creation:   weakref new+drop costs %.1fx a plain object's new+drop\n", R.new_ratio);
    if (R.death10 > 0)
        printf("death:      10 weakrefs with callbacks make a death %.1fx a plain one\n", R.death10);
    frt_decref(frt_weakref_object(ab_live.wr));
    frt_decref(ab_live.obj);
    frt_decref(frt_weakref_object(ab_dead.wr));
    int alive = frt_shutdown();
    if (alive != 0)
        fprintf(stderr, "frt_shutdown: %d objects still alive\n", alive);
    return alive == 0 ? 0 : 1;
}
