/* frt-bench-alloc: small-object allocation + free throughput, frt's
 * per-thread arena pools against glibc malloc, jemalloc and mimalloc, all
 * in one process and one invocation.
 *
 * Patterns (one "op" = one allocation plus one free):
 *   bulk     one thread allocates N objects, then frees all N (same order);
 *   ws10k    a live working set of 10,000 objects: free a random one and
 *            allocate its replacement, M times (indices precomputed, the
 *            same sequence for every allocator);
 *   xthread  a producer thread allocates, a consumer thread frees: objects
 *            go through a lock-free single-producer single-consumer ring;
 *            the figure is wall time / objects, with both threads busy.
 *            The two threads are pinned to two CPUs (--xplace): what the
 *            row measures is then every object's cache lines moving
 *            between two cores, in every repetition (see xplace_choose).
 * Sizes 32, 64, 128 and 256 bytes. An frt object's size includes its
 * 32-byte header (a 32-byte frt object has no payload); the mallocs are
 * asked for the same total size.
 *
 * Fairness: frt_new returns a zeroed object, so the main table compares it
 * with malloc + memset(p, 0, size); the plain (not zeroed) mallocs are in a
 * second table. jemalloc is dlopen'ed with RTLD_LOCAL and called through
 * its own mallocx/dallocx, so glibc's malloc stays glibc's (Debian's
 * libjemalloc exports unprefixed malloc/free and would otherwise replace it
 * process-wide); mimalloc is called as mi_malloc/mi_free (no override).
 *
 * In xthread, the consumer's frt_decref of an object it does not own hands
 * the reference back to the owner (BRC merge queue, in batches of 62 per
 * owner, brc/drop_batch.c); the producer merges at its next frt_new once a
 * batch waits and frees the block itself. The row "xthread+ms" has the
 * producer call frt_make_shared before the hand-off instead, so the
 * consumer's decref frees the block remotely (the pool's cross-thread free
 * list). The timed stretch ends when every object is freed (for frt: after
 * the producer merged the last queued references).
 *
 * Method: bench_common.h and docs/benchmarks.md. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <semaphore.h>
#include <sys/resource.h>

#include <frt/frt.h>

#include "bench_common.h"

/* ------------------------------------------------------------------ */
/* The allocators.                                                    */

enum { A_FRT, A_FRT_MS, A_GLIBC0, A_JE0, A_MI0, A_GLIBC, A_JE, A_MI, A_COUNT };

/* jemalloc and mimalloc are both loaded with dlopen(RTLD_LOCAL) and called
 * through function pointers: Debian's libjemalloc.so.2 and libmimalloc.so.2
 * both export unprefixed malloc/free, so linking either one would replace
 * glibc's malloc in the whole process (checked at startup below). */
typedef void *(*je_mallocx_fn)(size_t, int);
typedef void (*je_dallocx_fn)(void *, int);
typedef int (*je_mallctl_fn)(const char *, void *, size_t *, void *, size_t);
typedef void *(*mi_malloc_fn)(size_t);
typedef void (*mi_free_fn)(void *);
typedef int (*mi_version_fn)(void);
static je_mallocx_fn je_mallocx;
static je_dallocx_fn je_dallocx;
static mi_malloc_fn mi_malloc_p;
static mi_free_fn mi_free_p;
static char je_version[160] = "not loaded";
static char mi_version_s[160] = "not loaded";
static int have_je, have_mi;

#ifndef BENCH_MIMALLOC_LIB
#define BENCH_MIMALLOC_LIB "libmimalloc.so.2"
#endif

/* POSIX: a function pointer may be read out of dlsym's void *. */
static int sym(void *h, const char *name, void *fnptr, size_t size)
{
    void *p = dlsym(h, name);
    if (!p)
        return 0;
    memcpy(fnptr, &p, size);
    return 1;
}

/* jemalloc's static TLS (2.6 KiB) does not fit glibc's default surplus for
 * libraries loaded later ("cannot allocate memory in static TLS block"):
 * the program re-executes itself once with a larger surplus. */
static void reexec_for_static_tls(char **argv)
{
    if (getenv("FRT_BENCH_REEXEC"))
        return;
    const char *old = getenv("GLIBC_TUNABLES");
    char buf[1024];
    snprintf(buf, sizeof buf, "%s%sglibc.rtld.optional_static_tls=65536", old ? old : "", old ? ":" : "");
    setenv("GLIBC_TUNABLES", buf, 1);
    setenv("FRT_BENCH_REEXEC", "1", 1);
    fflush(stdout);
    execv("/proc/self/exe", argv);
}

static void load_jemalloc(char **argv)
{
    if (bench_sanitized()) {
        snprintf(je_version, sizeof je_version, "skipped under a sanitizer");
        return;
    }
    void *h = dlopen("libjemalloc.so.2", RTLD_NOW | RTLD_LOCAL);
    if (!h && strstr(dlerror(), "static TLS")) {
        reexec_for_static_tls(argv);
        h = dlopen("libjemalloc.so.2", RTLD_NOW | RTLD_LOCAL);
    }
    if (!h) {
        snprintf(je_version, sizeof je_version, "not loaded (%s)", dlerror());
        return;
    }
    if (!sym(h, "mallocx", &je_mallocx, sizeof je_mallocx) ||
        !sym(h, "dallocx", &je_dallocx, sizeof je_dallocx)) {
        snprintf(je_version, sizeof je_version, "libjemalloc.so.2 has no mallocx/dallocx");
        return;
    }
    snprintf(je_version, sizeof je_version, "jemalloc (version unknown)");
    je_mallctl_fn ctl;
    if (sym(h, "mallctl", &ctl, sizeof ctl)) {
        const char *v = NULL;
        size_t len = sizeof v;
        if (ctl("version", &v, &len, NULL, 0) == 0 && v)
            snprintf(je_version, sizeof je_version, "jemalloc %s", v);
    }
    have_je = 1;
}

static void load_mimalloc(void)
{
    if (bench_sanitized()) {
        snprintf(mi_version_s, sizeof mi_version_s, "skipped under a sanitizer");
        return;
    }
    void *h = dlopen(BENCH_MIMALLOC_LIB, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(mi_version_s, sizeof mi_version_s, "not loaded (%s)", dlerror());
        return;
    }
    mi_version_fn ver;
    if (!sym(h, "mi_malloc", &mi_malloc_p, sizeof mi_malloc_p) ||
        !sym(h, "mi_free", &mi_free_p, sizeof mi_free_p)) {
        snprintf(mi_version_s, sizeof mi_version_s, "%s has no mi_malloc/mi_free", BENCH_MIMALLOC_LIB);
        return;
    }
    int v = sym(h, "mi_version", &ver, sizeof ver) ? ver() : 0;
    snprintf(mi_version_s, sizeof mi_version_s, "mimalloc %d.%d.%d", v / 100, v / 10 % 10, v % 10);
    have_mi = 1;
}

/* The point of RTLD_LOCAL: malloc in this process must still be glibc's. */
static void check_malloc_is_glibc(void)
{
    Dl_info di;
    void *m = dlsym(RTLD_DEFAULT, "malloc");
    if (!m || !dladdr(m, &di) || !di.dli_fname || !strstr(di.dli_fname, "libc.so")) {
        if (bench_sanitized())
            return; /* the sanitizer's own malloc */
        fprintf(stderr, "malloc does not come from glibc (%s): refusing to label it glibc\n",
                m && dladdr(m, &di) && di.dli_fname ? di.dli_fname : "?");
        exit(1);
    }
}

typedef struct cfg {
    size_t size;
    const frt_type *type;
} cfg;

static frt_type obj_type[4] = {
    {.name = "bench32", .size = 32},
    {.name = "bench64", .size = 64},
    {.name = "bench128", .size = 128},
    {.name = "bench256", .size = 256},
};
static const size_t sizes[4] = {32, 64, 128, 256};

static void oom(void)
{
    fprintf(stderr, "allocation failed\n");
    exit(1);
}

static inline void *zeroed(void *p, size_t n)
{
    bench_escape(p); /* keeps malloc + memset from becoming calloc */
    if (!p)
        oom();
    memset(p, 0, n);
    return p;
}

static inline void *touched(void *p)
{
    bench_escape(p); /* keeps a malloc/free pair from being elided */
    if (!p)
        oom();
    return p;
}

static inline void *frt_alloc_shared(const cfg *c)
{
    frt_object *o = frt_new(c->type);
    if (!o)
        oom();
    frt_make_shared(o);
    return o;
}

static inline void *frt_alloc(const cfg *c)
{
    frt_object *o = frt_new(c->type);
    if (!o)
        oom();
    return o;
}

#define ALLOC_FRT(c) frt_alloc(c)
#define FREE_FRT(p, c) frt_decref((frt_object *)(p))
#define ALLOC_FRT_MS(c) frt_alloc_shared(c)
#define FREE_FRT_MS(p, c) frt_decref((frt_object *)(p))
#define ALLOC_GLIBC0(c) zeroed(malloc((c)->size), (c)->size)
#define FREE_GLIBC0(p, c) free(p)
#define ALLOC_JE0(c) zeroed(je_mallocx((c)->size, 0), (c)->size)
#define FREE_JE0(p, c) je_dallocx((p), 0)
#define ALLOC_MI0(c) zeroed(mi_malloc_p((c)->size), (c)->size)
#define FREE_MI0(p, c) mi_free_p(p)
#define ALLOC_GLIBC(c) touched(malloc((c)->size))
#define FREE_GLIBC(p, c) free(p)
#define ALLOC_JE(c) touched(je_mallocx((c)->size, 0))
#define FREE_JE(p, c) je_dallocx((p), 0)
#define ALLOC_MI(c) touched(mi_malloc_p((c)->size))
#define FREE_MI(p, c) mi_free_p(p)

/* ------------------------------------------------------------------ */
/* Single-thread patterns, one copy per allocator (direct calls).     */

#define LIVE_SET 10000

typedef struct st_job {
    const cfg *c;
    void **slots;
    size_t n;            /* bulk: objects; ws: replacements */
    const uint32_t *idx; /* ws: the replacement sequence */
} st_job;

#define DEFINE_ST(ID)                                                                    \
    static double bulk_##ID(const st_job *j)                                             \
    {                                                                                    \
        const cfg *c = j->c;                                                             \
        void **s = j->slots;                                                             \
        uint64_t t0 = bench_now_ns();                                                    \
        for (size_t i = 0; i < j->n; i++)                                                \
            s[i] = ALLOC_##ID(c);                                                        \
        for (size_t i = 0; i < j->n; i++)                                                \
            FREE_##ID(s[i], c);                                                          \
        return (double)(bench_now_ns() - t0) / (double)j->n;                             \
    }                                                                                    \
    static double ws_##ID(const st_job *j)                                               \
    {                                                                                    \
        const cfg *c = j->c;                                                             \
        void **s = j->slots;                                                             \
        for (size_t i = 0; i < LIVE_SET; i++)                                            \
            s[i] = ALLOC_##ID(c);                                                        \
        uint64_t t0 = bench_now_ns();                                                    \
        for (size_t i = 0; i < j->n; i++) {                                              \
            uint32_t k = j->idx[i];                                                      \
            FREE_##ID(s[k], c);                                                          \
            s[k] = ALLOC_##ID(c);                                                        \
        }                                                                                \
        double ns = (double)(bench_now_ns() - t0) / (double)j->n;                        \
        for (size_t i = 0; i < LIVE_SET; i++)                                            \
            FREE_##ID(s[i], c);                                                          \
        return ns;                                                                       \
    }

DEFINE_ST(FRT)
DEFINE_ST(GLIBC0)
DEFINE_ST(JE0)
DEFINE_ST(MI0)
DEFINE_ST(GLIBC)
DEFINE_ST(JE)
DEFINE_ST(MI)

typedef double (*st_fn)(const st_job *);
static const st_fn bulk_fn[A_COUNT] = {bulk_FRT, NULL, bulk_GLIBC0, bulk_JE0, bulk_MI0,
                                       bulk_GLIBC, bulk_JE, bulk_MI};
static const st_fn ws_fn[A_COUNT] = {ws_FRT, NULL, ws_GLIBC0, ws_JE0, ws_MI0, ws_GLIBC, ws_JE, ws_MI};

/* ------------------------------------------------------------------ */
/* Producer -> consumer through an SPSC ring.                         */

#define RING_CAP 4096 /* power of two */

typedef struct ring {
    _Alignas(64) _Atomic size_t head; /* written by the consumer */
    _Alignas(64) _Atomic size_t tail; /* written by the producer */
    _Alignas(64) void *slot[RING_CAP];
} ring;

static inline void backoff(unsigned *spin)
{
    if (++*spin < 64)
        bench_cpu_relax();
    else
        sched_yield(); /* 2 CPUs shared with other work: do not spin long */
}

typedef struct xjob {
    int alloc;
    const cfg *c;
    size_t n;
} xjob;

static struct {
    ring q;
    xjob job;
    sem_t go_producer, go_consumer, done;
    bench_barrier start;
    _Atomic int consumer_done;
    _Atomic int quit;
    int cpu[2]; /* producer's, consumer's; -1: not pinned (--xplace) */
    uint64_t t0, t_consumer, t_producer;
} X;

#define DEFINE_XT(ID)                                                                    \
    static void produce_##ID(const cfg *c, size_t n)                                     \
    {                                                                                    \
        size_t tail = 0, head_seen = 0;                                                  \
        for (size_t i = 0; i < n; i++) {                                                 \
            void *p = ALLOC_##ID(c);                                                     \
            unsigned spin = 0;                                                           \
            while (tail - head_seen == RING_CAP) {                                       \
                head_seen = atomic_load_explicit(&X.q.head, memory_order_acquire);       \
                if (tail - head_seen == RING_CAP)                                        \
                    backoff(&spin);                                                      \
            }                                                                            \
            X.q.slot[tail % RING_CAP] = p;                                               \
            atomic_store_explicit(&X.q.tail, ++tail, memory_order_release);              \
        }                                                                                \
    }                                                                                    \
    static void consume_##ID(const cfg *c, size_t n)                                     \
    {                                                                                    \
        size_t head = 0, tail_seen = 0;                                                  \
        for (size_t i = 0; i < n; i++) {                                                 \
            unsigned spin = 0;                                                           \
            while (head == tail_seen) {                                                  \
                tail_seen = atomic_load_explicit(&X.q.tail, memory_order_acquire);       \
                if (head == tail_seen)                                                   \
                    backoff(&spin);                                                      \
            }                                                                            \
            void *p = X.q.slot[head % RING_CAP];                                         \
            atomic_store_explicit(&X.q.head, ++head, memory_order_release);              \
            FREE_##ID(p, c);                                                             \
        }                                                                                \
    }

DEFINE_XT(FRT)
DEFINE_XT(FRT_MS)
DEFINE_XT(GLIBC0)
DEFINE_XT(JE0)
DEFINE_XT(MI0)
DEFINE_XT(GLIBC)
DEFINE_XT(JE)
DEFINE_XT(MI)

typedef void (*xt_fn)(const cfg *, size_t);
static const xt_fn produce_fn[A_COUNT] = {produce_FRT, produce_FRT_MS, produce_GLIBC0, produce_JE0,
                                          produce_MI0, produce_GLIBC, produce_JE, produce_MI};
static const xt_fn consume_fn[A_COUNT] = {consume_FRT, consume_FRT_MS, consume_GLIBC0, consume_JE0,
                                          consume_MI0, consume_GLIBC, consume_JE, consume_MI};

/* Where the two threads run decides what xthread measures: on two CPUs
 * every object's lines cross between cores (100-300 ns an object on a
 * 2-vCPU VM); on one CPU the threads take turns, the ring fills and
 * drains, and no line moves (20-35 ns). Left to the scheduler, a thread
 * woken for the next job lands on either, so each repetition picked one
 * regime at random and a median mixed them (mimalloc's 64-byte row read
 * 25 ns in one run and 155 ns in another). --xplace fixes it: apart
 * (default: the first two CPUs the process may use), same (both on the
 * first), free (the scheduler's choice, as before). */
enum { XPLACE_APART, XPLACE_SAME, XPLACE_FREE };
static const char *const xplace_name[] = {"apart", "same", "free"};

static void xplace_choose(int mode)
{
    X.cpu[0] = X.cpu[1] = -1;
    cpu_set_t set;
    if (mode == XPLACE_FREE || sched_getaffinity(0, sizeof set, &set) != 0)
        return;
    int found = 0;
    for (int c = 0; c < CPU_SETSIZE && found < 2; c++)
        if (CPU_ISSET(c, &set))
            X.cpu[found++] = c;
    if (found < 2) /* one CPU: both threads share it whatever we ask */
        X.cpu[0] = X.cpu[1] = -1;
    else if (mode == XPLACE_SAME)
        X.cpu[1] = X.cpu[0];
}

static void xplace_pin(int which)
{
    if (X.cpu[which] < 0)
        return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(X.cpu[which], &set);
    if (pthread_setaffinity_np(pthread_self(), sizeof set, &set) != 0) {
        fprintf(stderr, "cannot pin the xthread %s to CPU %d\n", which ? "consumer" : "producer",
                X.cpu[which]);
        exit(1);
    }
}

static void attach_or_die(void)
{
    if (frt_thread_attach() != 0) {
        fprintf(stderr, "frt_thread_attach failed\n");
        exit(1);
    }
}

/* Both threads live for the whole run (allocators in steady state, as in a
 * server), attached to frt, and sleep on a semaphore between jobs. */
static void *producer_main(void *arg)
{
    (void)arg;
    xplace_pin(0);
    attach_or_die();
    for (;;) {
        frt_blocking_begin();
        sem_wait(&X.go_producer);
        frt_blocking_end();
        if (atomic_load(&X.quit))
            break;
        xjob j = X.job;
        bench_barrier_wait(&X.start);
        X.t0 = bench_now_ns();
        produce_fn[j.alloc](j.c, j.n);
        if (j.alloc == A_FRT || j.alloc == A_FRT_MS) {
            /* The work is done when every object is freed: merge what the
             * consumer queued back to us after our last frt_new. */
            unsigned spin = 0;
            while (!atomic_load_explicit(&X.consumer_done, memory_order_acquire)) {
                frt_safepoint();
                backoff(&spin);
            }
            frt_safepoint();
        }
        X.t_producer = bench_now_ns();
        sem_post(&X.done);
    }
    frt_thread_detach();
    return NULL;
}

static void *consumer_main(void *arg)
{
    (void)arg;
    xplace_pin(1);
    attach_or_die();
    for (;;) {
        frt_blocking_begin();
        sem_wait(&X.go_consumer);
        frt_blocking_end();
        if (atomic_load(&X.quit))
            break;
        xjob j = X.job;
        bench_barrier_wait(&X.start);
        consume_fn[j.alloc](j.c, j.n);
        X.t_consumer = bench_now_ns();
        atomic_store_explicit(&X.consumer_done, 1, memory_order_release);
        frt_safepoint(); /* take back the queue nodes the producer freed */
        sem_post(&X.done);
    }
    frt_thread_detach();
    return NULL;
}

static double run_xthread(int alloc, const cfg *c, size_t n)
{
    X.job = (xjob){.alloc = alloc, .c = c, .n = n};
    atomic_store(&X.q.head, 0);
    atomic_store(&X.q.tail, 0);
    atomic_store(&X.consumer_done, 0);
    sem_post(&X.go_producer);
    sem_post(&X.go_consumer);
    frt_blocking_begin();
    sem_wait(&X.done);
    sem_wait(&X.done);
    frt_blocking_end();
    uint64_t end = X.t_consumer > X.t_producer ? X.t_consumer : X.t_producer;
    return (double)(end - X.t0) / (double)n;
}

/* ------------------------------------------------------------------ */
/* Driver.                                                            */

enum { P_BULK, P_WS, P_X, P_COUNT };
static const char *const pattern_name[P_COUNT] = {"bulk", "ws10k", "xthread"};

static int alloc_enabled(int a, int pattern)
{
    if ((a == A_JE0 || a == A_JE) && !have_je)
        return 0;
    if ((a == A_MI0 || a == A_MI) && !have_mi)
        return 0;
    if (a == A_FRT_MS)
        return pattern == P_X;
    return 1;
}

typedef struct params {
    size_t bulk_n, ws_n, x_n;
    int reps;
} params;

/* Minor page faults of the calling thread so far: a pattern that maps
 * memory back in every run pays the kernel for it, which the ns/op hide. */
static double thread_minflt(void)
{
    struct rusage ru;
    return getrusage(RUSAGE_THREAD, &ru) == 0 ? (double)ru.ru_minflt : 0.0;
}

/* Median ns/op for every allocator of one (pattern, size): one warm-up run
 * each, then reps rounds, each round running every allocator once. The
 * single-thread patterns also give the median minor faults per run
 * (faults, counted outside the timed stretch). */
static void measure(int pattern, const cfg *c, const params *pp, void **slots, const uint32_t *idx,
                    double out[A_COUNT], double faults[A_COUNT])
{
    double samples[A_COUNT][64], fsamples[A_COUNT][64];
    int reps = pp->reps > 64 ? 64 : pp->reps;
    for (int round = -1; round < reps; round++) {
        for (int a = 0; a < A_COUNT; a++) {
            if (!alloc_enabled(a, pattern))
                continue;
            double ns;
            if (pattern == P_X) {
                ns = run_xthread(a, c, pp->x_n);
            } else {
                st_job j = {.c = c, .slots = slots, .idx = idx,
                            .n = pattern == P_BULK ? pp->bulk_n : pp->ws_n};
                double f0 = thread_minflt();
                ns = (pattern == P_BULK ? bulk_fn : ws_fn)[a](&j);
                if (round >= 0)
                    fsamples[a][round] = thread_minflt() - f0;
            }
            if (round >= 0)
                samples[a][round] = ns;
        }
    }
    for (int a = 0; a < A_COUNT; a++) {
        int on = alloc_enabled(a, pattern);
        out[a] = on ? bench_median(samples[a], (size_t)reps) : -1.0;
        faults[a] = on && pattern != P_X ? bench_median(fsamples[a], (size_t)reps) : -1.0;
    }
}

static void print_ns(double ns)
{
    if (ns < 0)
        printf(" %9s", "-");
    else
        printf(" %9.2f", ns);
}

static void print_ratio(double frt_ns, double other_ns)
{
    if (frt_ns <= 0 || other_ns <= 0)
        printf(" %8s", "-");
    else
        printf(" %7.2fx", other_ns / frt_ns);
}

static const char usage[] =
    "usage: frt-bench-alloc [--quick] [--reps N] [--only bulk|ws10k|xthread]"
    " [--xplace apart|same|free]\n"
    "  --quick   short run (< 5 s): fewer objects and 3 repetitions\n"
    "  default   fuller run (< 60 s on 2 CPUs): 7 repetitions\n"
    "  --only    one pattern's rows (the others print as -)\n"
    "  --xplace  xthread's producer and consumer pinned to two CPUs (apart, the\n"
    "            default), both to one (same), or left to the scheduler (free)\n";

int main(int argc, char **argv)
{
    static const char *const flags[] = {"--quick", "--help", "-h", NULL};
    static const char *const valued[] = {"--reps", "--only", "--xplace", NULL};
    bench_check_args(argc, argv, flags, valued, usage);
    int quick = bench_flag(argc, argv, "--quick");
    params pp = quick ? (params){.bulk_n = 20000, .ws_n = 200000, .x_n = 50000, .reps = 3}
                      : (params){.bulk_n = 200000, .ws_n = 1000000, .x_n = 300000, .reps = 7};
    pp.reps = (int)bench_opt_long(argc, argv, "--reps", pp.reps);
    const char *only = bench_opt(argc, argv, "--only");
    int only_p = -1;
    for (int p = 0; only && p < P_COUNT; p++)
        if (strcmp(only, pattern_name[p]) == 0)
            only_p = p;
    if (only && only_p < 0) {
        fprintf(stderr, "--only must be bulk, ws10k or xthread\n");
        return 2;
    }
    if (pp.reps < 1 || pp.reps > 64) {
        fprintf(stderr, "--reps must be 1..64\n");
        return 2;
    }
    const char *xplace = bench_opt(argc, argv, "--xplace");
    int xplace_mode = xplace ? -1 : XPLACE_APART;
    for (int m = 0; xplace && m < 3; m++)
        if (strcmp(xplace, xplace_name[m]) == 0)
            xplace_mode = m;
    if (xplace_mode < 0) {
        fprintf(stderr, "--xplace must be apart, same or free\n");
        return 2;
    }
    xplace_choose(xplace_mode);
    if (bench_sanitized()) { /* keep sanitizer runs short */
        pp.bulk_n /= 10;
        pp.ws_n /= 10;
        pp.x_n /= 10;
    }

    load_jemalloc(argv);
    load_mimalloc();
    check_malloc_is_glibc();
    if (frt_init(NULL) != 0) {
        fprintf(stderr, "frt_init failed\n");
        return 1;
    }
    bench_print_machine("frt-bench-alloc: small-object alloc+free, frt vs glibc, jemalloc, mimalloc");
    printf("# glibc malloc (the process's malloc, checked), %s (dlopen RTLD_LOCAL, mallocx/dallocx),"
           " %s (dlopen RTLD_LOCAL, mi_malloc/mi_free)\n",
           je_version, mi_version_s);
    printf("# method: median of %d repetitions after one warm-up run, allocators interleaved per"
           " repetition; wall clock (CLOCK_MONOTONIC)\n",
           pp.reps);
    printf("# bulk: %zu allocs then %zu frees; ws10k: %zu random replacements in a live set of %d;"
           " xthread: %zu objects producer -> SPSC ring (%d) -> consumer\n",
           pp.bulk_n, pp.bulk_n, pp.ws_n, LIVE_SET, pp.x_n, RING_CAP);
    printf("# sizes include frt's 32-byte object header (frt objects are >= 32 bytes; a 32-byte"
           " frt object has no payload); mallocs get the same total size\n");
    printf("# frt_new zeroes the object: it is compared with malloc + memset(0); plain mallocs in"
           " the second table\n");
    printf("# ns/op = ns per allocation+free pair (xthread: wall time / objects, 2 threads)\n");
    if (X.cpu[0] < 0)
        printf("# xthread placement: %s (threads not pinned)\n",
               xplace_mode == XPLACE_FREE ? "free" : "one CPU available");
    else
        printf("# xthread placement: %s (producer on CPU %d, consumer on CPU %d)\n",
               xplace_name[xplace_mode], X.cpu[0], X.cpu[1]);
    fflush(stdout);

    sem_init(&X.go_producer, 0, 0);
    sem_init(&X.go_consumer, 0, 0);
    sem_init(&X.done, 0, 0);
    bench_barrier_init(&X.start, 2);
    pthread_t prod, cons;
    if (pthread_create(&prod, NULL, producer_main, NULL) || pthread_create(&cons, NULL, consumer_main, NULL)) {
        fprintf(stderr, "pthread_create failed\n");
        return 1;
    }

    size_t nslots = pp.bulk_n > LIVE_SET ? pp.bulk_n : LIVE_SET;
    void **slots = malloc(nslots * sizeof *slots);
    uint32_t *idx = malloc(pp.ws_n * sizeof *idx);
    if (!slots || !idx)
        oom();
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < pp.ws_n; i++) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        idx[i] = (uint32_t)(((rng >> 32) * (uint64_t)LIVE_SET) >> 32);
    }

    double res[P_COUNT][4][A_COUNT], faults[P_COUNT][4][A_COUNT];
    uint64_t t_start = bench_now_ns();
    for (int p = 0; p < P_COUNT; p++) {
        for (int s = 0; s < 4; s++) {
            cfg c = {.size = sizes[s], .type = &obj_type[s]};
            if (only_p < 0 || only_p == p)
                measure(p, &c, &pp, slots, idx, res[p][s], faults[p][s]);
            else
                for (int a = 0; a < A_COUNT; a++)
                    res[p][s][a] = faults[p][s][a] = -1.0;
        }
    }
    double elapsed = (double)(bench_now_ns() - t_start) / 1e9;

    printf("\n## zeroed objects: ns/op (lower is better); ratio = other ns / frt ns"
           " = frt throughput / other (> 1: frt faster)\n");
    printf("%-10s %5s %9s %9s %9s %9s | %8s %8s %8s\n", "pattern", "size", "frt", "glibc0",
           "jemalloc0", "mimalloc0", "vs glibc", "vs je", "vs mi");
    for (int p = 0; p < P_COUNT; p++) {
        for (int s = 0; s < 4; s++) {
            double *r = res[p][s];
            for (int v = 0; v < (p == P_X ? 2 : 1); v++) {
                double f = r[v == 0 ? A_FRT : A_FRT_MS];
                printf("%-10s %5zu", v == 0 ? pattern_name[p] : "xthread+ms", sizes[s]);
                print_ns(f);
                print_ns(r[A_GLIBC0]);
                print_ns(r[A_JE0]);
                print_ns(r[A_MI0]);
                printf(" |");
                print_ratio(f, r[A_GLIBC0]);
                print_ratio(f, r[A_JE0]);
                print_ratio(f, r[A_MI0]);
                printf("\n");
            }
        }
    }
    printf("\n## plain malloc (not zeroed): ns/op; ratio = other ns / frt (zeroed) ns\n");
    printf("%-10s %5s %9s %9s %9s %9s | %8s %8s %8s\n", "pattern", "size", "frt", "glibc",
           "jemalloc", "mimalloc", "vs glibc", "vs je", "vs mi");
    for (int p = 0; p < P_COUNT; p++) {
        for (int s = 0; s < 4; s++) {
            double *r = res[p][s];
            printf("%-10s %5zu", pattern_name[p], sizes[s]);
            print_ns(r[A_FRT]);
            print_ns(r[A_GLIBC]);
            print_ns(r[A_JE]);
            print_ns(r[A_MI]);
            printf(" |");
            print_ratio(r[A_FRT], r[A_GLIBC]);
            print_ratio(r[A_FRT], r[A_JE]);
            print_ratio(r[A_FRT], r[A_MI]);
            printf("\n");
        }
    }

    printf("\n## minor page faults per run (median; a run is one timed loop of the pattern)\n");
    printf("%-10s %5s %9s %9s %9s %9s\n", "pattern", "size", "frt", "glibc0", "jemalloc0", "mimalloc0");
    for (int p = 0; p < P_X; p++) {
        for (int s = 0; s < 4; s++) {
            double *f = faults[p][s];
            printf("%-10s %5zu", pattern_name[p], sizes[s]);
            for (int a = A_FRT; a <= A_MI0; a++)
                if (a != A_FRT_MS && f[a] < 0)
                    printf(" %9s", "-");
                else if (a != A_FRT_MS)
                    printf(" %9.0f", f[a]);
            printf("\n");
        }
    }

    /* Target (docs/DESIGN): at least mimalloc's throughput in each pattern. */
    printf("\n## target: frt at least mimalloc's throughput (zeroed vs zeroed)\n");
    for (int p = 0; p < P_COUNT && !have_mi; p++)
        printf("%-10s mimalloc not loaded: no comparison\n", pattern_name[p]);
    for (int p = 0; p < P_COUNT && have_mi; p++) {
        if (only_p >= 0 && only_p != p)
            continue;
        int met = 0;
        double worst = 1e9;
        for (int s = 0; s < 4; s++) {
            double ratio = res[p][s][A_MI0] / res[p][s][A_FRT];
            met += ratio >= 1.0;
            if (ratio < worst)
                worst = ratio;
        }
        printf("%-10s %d of 4 sizes met; worst frt/mimalloc throughput %.2fx\n", pattern_name[p], met,
               worst);
    }
    printf("# total run time %.1f s\n", elapsed);

    atomic_store(&X.quit, 1);
    sem_post(&X.go_producer);
    sem_post(&X.go_consumer);
    pthread_join(prod, NULL);
    pthread_join(cons, NULL);
    free(slots);
    free(idx);
    int alive = frt_shutdown();
    if (alive != 0)
        fprintf(stderr, "frt_shutdown: %d objects still alive\n", alive);
    return alive == 0 ? 0 : 1;
}
