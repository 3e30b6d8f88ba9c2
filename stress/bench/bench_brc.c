/* frt-bench-brc: biased reference counting against plain and atomic
 * counting, in one run.
 *
 * Sections (all figures are medians over repetitions; docs/benchmarks.md):
 *   a  owner-thread incref+decref pair on an frt object, against
 *        - a plain pair: n++ / n-- on a uint32_t field of a struct reached
 *          through a pointer, with a compiler barrier after each operation
 *          (so each operation is a load-modify-store in memory, as a
 *          refcount field is, and the pair cannot be folded away);
 *        - a C11 atomic pair, Arc-like: fetch_add relaxed, fetch_sub release
 *          (+ acquire fence on the last reference), same barriers;
 *        - an frt object after frt_make_shared: the atomic path built from
 *          the same code.
 *      The loops are noinline functions; the same barrier follows every
 *      operation in every variant.
 *   b  non-owner pair: another attached thread counts on an object the
 *      main thread owns (shared atomic count), against the C11 atomic pair
 *      on the same thread.
 *   c  false sharing: the owner's pairs on X while one other thread
 *      hammers X's shared count (non-owner pairs), against the owner alone,
 *      and against the other thread hammering a different object Y (so the
 *      machine's own cost of a second busy thread is visible).
 *   d  1..N threads, each on private objects: throughput and scaling
 *      efficiency = throughput(T) / (min(T, CPUs) * throughput(1)).
 *   f  one hot object touched by all T threads (the object's owner is one
 *      of them), against a C11 atomic count on one cache line, the same
 *      object after frt_make_hot (per-thread counts), and one that no
 *      thread owns (made shared by main) left to adaptive promotion: with
 *      two or more threads counting on it the runtime may make it hot by
 *      itself. The rows say in how many runs the runtime did (adaptive
 *      promotion also reaches the first row's object from 3 threads on:
 *      --adaptive-off runs the whole program with it off). Every row runs
 *      the same loop, the same pairs per thread; the adaptive row polls a
 *      safepoint every 4096 pairs, where promotion can stop the world.
 *   c  also: pairs on an object made hot (frt_make_hot) by the thread that
 *      made it, alone and while another thread counts on it.
 *   e  mix (BRC paper style): each thread allocates objects and counts on
 *      them (8 pairs); 10% are handed to the next thread through an SPSC
 *      ring, which counts on them (4 pairs) and drops the reference; the
 *      rest the owner drops. The same program built against frt_rc_atomic
 *      (frt-bench-brc-atomic: the same library sources with every count
 *      atomic) runs the same workload; frt-bench-brc runs it as a child
 *      process and prints the ratio.
 *
 * Built three times (stress/bench/bench.cmake): frt-bench-brc against frt_static,
 * frt-bench-brc-atomic against frt_rc_atomic with FRT_BENCH_ATOMIC=1, and
 * frt-bench-brc-shared against libfrt.so with FRT_BENCH_SHARED=1, which
 * frt-bench-brc runs for section a to print the owner pair through the
 * shared library beside the static one. */
#define _GNU_SOURCE
#include <libgen.h>
#include <pthread.h>
#include <semaphore.h>

#include <frt/frt.h>

#include "bench_common.h"

#ifndef FRT_BENCH_ATOMIC
#define FRT_BENCH_ATOMIC 0
#endif
#ifndef FRT_BENCH_SHARED
#define FRT_BENCH_SHARED 0
#endif
#if FRT_BENCH_ATOMIC
#define LIB_LABEL "frt_rc_atomic (same sources, FRT_RC_ATOMIC_ONLY=1: every count atomic)"
#elif FRT_BENCH_SHARED
#define LIB_LABEL "libfrt.so (biased reference counting, shared library)"
#else
#define LIB_LABEL "frt (biased reference counting)"
#endif

#define MAX_THREADS 256

static int g_reps;
static double g_target_ns; /* length of one timed repetition */

static frt_type obj_type = {.name = "bench_obj", .size = 64};

static void die(const char *what)
{
    fprintf(stderr, "frt-bench-brc: %s\n", what);
    exit(1);
}

static frt_object *new_obj(void)
{
    frt_object *o = frt_new(&obj_type);
    if (!o)
        die("frt_new failed");
    return o;
}

static void attach(void)
{
    if (frt_thread_attach() != 0)
        die("frt_thread_attach failed");
}

/* ------------------------------------------------------------------ */
/* The counted things and their pair loops.                           */

/* A plain refcount field where an object header would keep it. */
typedef struct plain_obj {
    _Alignas(64) void *type;
    uint32_t n;
} plain_obj;

/* Arc-like: one atomic count. */
typedef struct arc_obj {
    _Alignas(64) _Atomic intptr_t rc;
} arc_obj;

static void *aligned_obj(size_t size)
{
    void *p = aligned_alloc(64, (size + 63) & ~(size_t)63);
    if (!p)
        die("out of memory");
    memset(p, 0, size);
    return p;
}

static plain_obj *new_plain(void)
{
    plain_obj *p = aligned_obj(sizeof *p);
    p->n = 1;
    return p;
}

static arc_obj *new_arc(void)
{
    arc_obj *a = aligned_obj(sizeof *a);
    atomic_init(&a->rc, 1);
    return a;
}

__attribute__((noinline, cold)) static void arc_last_ref(arc_obj *a)
{
    (void)a;
    die("an Arc pair dropped the last reference");
}

static inline void arc_inc(arc_obj *a)
{
    atomic_fetch_add_explicit(&a->rc, 1, memory_order_relaxed);
}

static inline void arc_dec(arc_obj *a)
{
    if (FRT_UNLIKELY(atomic_fetch_sub_explicit(&a->rc, 1, memory_order_release) == 1)) {
        atomic_thread_fence(memory_order_acquire);
        arc_last_ref(a);
    }
}

/* The loops whose assembly docs/benchmarks.md shows: noinline, one barrier
 * after each operation. */
__attribute__((noinline)) static void loop_frt(void *obj, size_t n)
{
    frt_object *o = obj;
    for (size_t i = 0; i < n; i++) {
        frt_incref(o);
        BENCH_BARRIER();
        frt_decref(o);
        BENCH_BARRIER();
    }
}

/* loop_frt with a safepoint poll every 4096 pairs, as an attached thread
 * polls (a load and a branch per 4096 pairs): adaptive promotion stops the
 * world at the poll after two threads nominated the object. */
static void loop_frt_polling(void *obj, size_t n)
{
    for (size_t i = 0; i < n; i += 4096) {
        loop_frt(obj, n - i < 4096 ? n - i : 4096);
        frt_safepoint();
    }
}

__attribute__((noinline)) static void loop_plain(void *obj, size_t n)
{
    plain_obj *p = obj;
    for (size_t i = 0; i < n; i++) {
        p->n++;
        BENCH_BARRIER();
        p->n--;
        BENCH_BARRIER();
    }
}

__attribute__((noinline)) static void loop_arc(void *obj, size_t n)
{
    arc_obj *a = obj;
    for (size_t i = 0; i < n; i++) {
        arc_inc(a);
        BENCH_BARRIER();
        arc_dec(a);
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

/* ------------------------------------------------------------------ */
/* Results kept for the targets summary.                              */

static struct {
    double owner, plain, arc, merged;
    double shared_owner_ratio; /* owner / plain through libfrt.so */
    double nonowner, arc_other;
    double fs_alone, fs_hammer, fs_other_line, hammer_ns;
    double hot_alone, hot_hammer;
    double hot2[3], arc_hot2; /* f: frt made hot at 1 and 2 threads; atomic line at 2 */
    double adaptive2[3];      /* f: the adaptive row at 1 and 2 threads */
    double min_eff;
    int have_a, have_b, have_c, have_d;
    double mix_brc, mix_atomic; /* ns per object */
} R;

#if !FRT_BENCH_ATOMIC && !FRT_BENCH_SHARED
static int run_sibling(const char *name, const char *args, const char *tag, int nkeys,
                       const char *const *keys, double *out);
#endif

/* ------------------------------------------------------------------ */
/* a: owner pair.                                                     */

static void section_a(int raw, int quick)
{
    frt_object *o = new_obj();
    frt_object *m = new_obj();
    int rc = frt_make_shared(m);
    plain_obj *p = new_plain();
    arc_obj *a = new_arc();
    variant v[4] = {
        {.name = "frt owner pair", .fn = loop_frt, .arg = o},
        {.name = "plain pair (n++, n--)", .fn = loop_plain, .arg = p},
        {.name = "C11 atomic pair (Arc-like)", .fn = loop_arc, .arg = a},
        {.name = "frt after frt_make_shared", .fn = loop_frt, .arg = m},
    };
    run_variants(v, 4);
    if (raw) {
        printf("PAIR lib=%s reps=%d owner=%.4f plain=%.4f atomic=%.4f merged=%.4f\n", LIB_LABEL,
               g_reps, v[0].med, v[1].med, v[2].med, v[3].med);
        frt_decref(o);
        frt_decref(m);
        free(p);
        free(a);
        return;
    }
    printf("\n## a. incref+decref pair on the owner thread (ns per pair, median of %d)\n", g_reps);
#if FRT_BENCH_ATOMIC
    printf("# this library counts every object atomically: the 'owner pair' is the atomic path\n");
#endif
    if (rc != 0)
        printf("# frt_make_shared returned %d (%s)\n", rc, frt_strerror(rc));
    for (int i = 0; i < 4; i++)
        printf("%-30s %8.3f ns   (min %.3f, max %.3f, %zu pairs/rep)\n", v[i].name, v[i].med,
               bench_min(v[i].samples, (size_t)g_reps), bench_max(v[i].samples, (size_t)g_reps),
               v[i].n);
    printf("frt owner / plain              %8.3fx   (target <= 1.1x)\n", v[0].med / v[1].med);
    printf("C11 atomic / frt owner         %8.3fx   (target >= 15x)\n", v[2].med / v[0].med);
    printf("frt merged / C11 atomic        %8.3fx\n", v[3].med / v[2].med);
#if !FRT_BENCH_ATOMIC && !FRT_BENCH_SHARED
    /* The program that links libfrt.so runs the same loops in its own
     * process, right after: its owner pair against its own plain pair. */
    const char *qa = quick ? "--only a --quick" : "--only a";
    static const char *const keys[2] = {"owner", "plain"};
    double sv[2];
    if (run_sibling("frt-bench-brc-shared", qa, "PAIR ", 2, keys, sv) == 0) {
        double so = sv[0], sp = sv[1];
        printf("through libfrt.so: frt owner pair %.3f ns, plain pair %.3f ns (frt-bench-brc-shared,"
               " same run)\n", so, sp);
        printf("libfrt.a owner / plain         %8.3fx   (target <= 1.55x)\n", v[0].med / v[1].med);
        printf("libfrt.so owner / plain        %8.3fx   (target <= 1.55x)\n", so / sp);
        printf("libfrt.so / libfrt.a (each / its plain) %.3fx   (target within 5%%)\n",
               (so / sp) / (v[0].med / v[1].med));
        R.shared_owner_ratio = so / sp;
    } else {
        printf("# frt-bench-brc-shared could not be run from the directory of this program\n");
    }
#else
    (void)quick;
#endif
    R.owner = v[0].med;
    R.plain = v[1].med;
    R.arc = v[2].med;
    R.merged = v[3].med;
    R.have_a = 1;
    frt_decref(o);
    frt_decref(m);
    free(p);
    free(a);
}

/* ------------------------------------------------------------------ */
/* b: non-owner pair.                                                 */

static frt_object *b_obj;
static variant b_v[3];

static void *b_thread(void *arg)
{
    (void)arg;
    attach();
    frt_object *m = new_obj();
    frt_make_shared(m);
    arc_obj *a = new_arc();
    b_v[0] = (variant){.name = "frt non-owner pair", .fn = loop_frt, .arg = b_obj};
    b_v[1] = (variant){.name = "C11 atomic pair (Arc-like)", .fn = loop_arc, .arg = a};
    b_v[2] = (variant){.name = "frt after frt_make_shared", .fn = loop_frt, .arg = m};
    run_variants(b_v, 3);
    frt_decref(m);
    free(a);
    frt_thread_detach();
    return NULL;
}

static void section_b(void)
{
    b_obj = new_obj(); /* owned by the main thread */
    pthread_t t;
    if (pthread_create(&t, NULL, b_thread, NULL))
        die("pthread_create");
    frt_blocking_begin();
    pthread_join(t, NULL);
    frt_blocking_end();
    printf("\n## b. incref+decref pair by a thread that does not own the object (ns per pair,"
           " median of %d; the owner is idle)\n",
           g_reps);
    for (int i = 0; i < 3; i++)
        printf("%-30s %8.3f ns   (min %.3f, max %.3f)\n", b_v[i].name, b_v[i].med,
               bench_min(b_v[i].samples, (size_t)g_reps), bench_max(b_v[i].samples, (size_t)g_reps));
    printf("frt non-owner / C11 atomic     %8.3fx   (target <= 1.2x)\n", b_v[0].med / b_v[1].med);
    R.nonowner = b_v[0].med;
    R.arc_other = b_v[1].med;
    R.have_b = 1;
    frt_decref(b_obj);
}

/* ------------------------------------------------------------------ */
/* c: false sharing.                                                  */

static struct {
    sem_t go, done;
    frt_object *_Atomic target;
    _Atomic int running, stop, quit;
    size_t pairs;
    uint64_t ns;
} H;

/* Non-owner pairs on H.target until told to stop; pairs counted in blocks. */
static void *hammer_thread(void *arg)
{
    (void)arg;
    attach();
    for (;;) {
        frt_blocking_begin();
        sem_wait(&H.go);
        frt_blocking_end();
        if (atomic_load(&H.quit))
            break;
        frt_object *o = atomic_load(&H.target);
        size_t pairs = 0;
        uint64_t t0 = bench_now_ns();
        atomic_store(&H.running, 1);
        while (!atomic_load_explicit(&H.stop, memory_order_relaxed)) {
            loop_frt(o, 256);
            pairs += 256;
        }
        H.ns = bench_now_ns() - t0;
        H.pairs = pairs;
        sem_post(&H.done);
    }
    frt_thread_detach();
    return NULL;
}

/* One timed owner run on x, with the hammer on target (NULL: alone). */
static double owner_run(frt_object *x, size_t n, frt_object *target, double *hammer_ns)
{
    if (target) {
        atomic_store(&H.target, target);
        atomic_store(&H.stop, 0);
        atomic_store(&H.running, 0);
        sem_post(&H.go);
        while (!atomic_load(&H.running))
            sched_yield();
    }
    double t = bench_time_loop(loop_frt, x, n) / (double)n;
    if (target) {
        atomic_store(&H.stop, 1);
        frt_blocking_begin();
        sem_wait(&H.done);
        frt_blocking_end();
        if (hammer_ns)
            *hammer_ns = H.pairs ? (double)H.ns / (double)H.pairs : 0.0;
    }
    return t;
}

static void section_c(void)
{
    frt_object *x = new_obj(), *y = new_obj();
    sem_init(&H.go, 0, 0);
    sem_init(&H.done, 0, 0);
    pthread_t t;
    if (pthread_create(&t, NULL, hammer_thread, NULL))
        die("pthread_create");
    frt_object *xh = new_obj();
    int hot_rc = frt_make_hot(xh);
    size_t n = bench_calibrate(loop_frt, x, g_target_ns);
    size_t nh = bench_calibrate(loop_frt, xh, g_target_ns);
    double alone[BENCH_MAX_REPS], same[BENCH_MAX_REPS], other[BENCH_MAX_REPS], ham[BENCH_MAX_REPS], ham_other[BENCH_MAX_REPS];
    double hot_alone[BENCH_MAX_REPS], hot_same[BENCH_MAX_REPS], ham_hot[BENCH_MAX_REPS];
    owner_run(x, n / 4, x, NULL); /* warm-up of the contended case */
    for (int r = 0; r < g_reps; r++) {
        alone[r] = owner_run(x, n, NULL, NULL);
        same[r] = owner_run(x, n, x, &ham[r]);
        other[r] = owner_run(x, n, y, &ham_other[r]);
        hot_alone[r] = owner_run(xh, nh, NULL, NULL);
        hot_same[r] = owner_run(xh, nh, xh, &ham_hot[r]);
    }
    atomic_store(&H.quit, 1);
    sem_post(&H.go);
    frt_blocking_begin();
    pthread_join(t, NULL);
    frt_blocking_end();
    double a = bench_median(alone, (size_t)g_reps), s = bench_median(same, (size_t)g_reps);
    double o = bench_median(other, (size_t)g_reps), h = bench_median(ham, (size_t)g_reps);
    double ho = bench_median(ham_other, (size_t)g_reps);
    printf("\n## c. false sharing: owner pairs on X while another thread counts on an object's"
           " shared count (ns per owner pair, median of %d)\n",
           g_reps);
    printf("# X's header is 32 bytes: ob_ref_local and ob_ref_shared share one cache line, so the"
           " other thread's atomics on X steal the owner's line\n");
    printf("# X at %p (offset %lu in its 64-byte line), Y at %p (%s line)\n", (void *)x,
           (unsigned long)((uintptr_t)x % 64), (void *)y,
           (uintptr_t)x / 64 == (uintptr_t)y / 64 ? "SAME" : "another");
    printf("%-38s %8.3f ns\n", "owner alone", a);
    printf("%-38s %8.3f ns   (other thread: %.2f ns per non-owner pair)\n",
           "owner, other thread on X (same line)", s, h);
    printf("%-38s %8.3f ns   (other thread: %.2f ns per non-owner pair)\n",
           "owner, other thread on Y (control)", o, ho);
    printf("slowdown from sharing X's line     %8.2fx   (target: no slower, 1.0x)\n", s / a);
    printf("slowdown from a busy 2nd thread    %8.2fx   (control: the machine, not the layout)\n",
           o / a);
    double ha = bench_median(hot_alone, (size_t)g_reps), hs = bench_median(hot_same, (size_t)g_reps);
    printf("# X' made hot by this thread (frt_make_hot returned %d): per-thread counts\n", hot_rc);
    printf("%-38s %8.3f ns\n", "hot X', this thread alone", ha);
    printf("%-38s %8.3f ns   (other thread: %.2f ns per pair on X')\n",
           "hot X', other thread on X' too", hs, bench_median(ham_hot, (size_t)g_reps));
    printf("hot: with the other thread / alone %8.2fx   (target: no slower, 1.0x)\n", hs / ha);
    printf("hot alone / owner alone (ordinary) %8.2fx   (the price of per-thread counting)\n",
           ha / a);
    R.hot_alone = ha;
    R.hot_hammer = hs;
    frt_decref(xh);
    frt_gc_collect(0);
    R.fs_alone = a;
    R.fs_hammer = s;
    R.fs_other_line = o;
    R.hammer_ns = h;
    R.have_c = 1;
    frt_decref(x);
    frt_decref(y);
}

/* ------------------------------------------------------------------ */
/* d and f: threads.                                                  */

enum {
    K_FRT_PRIVATE,
    K_PLAIN_PRIVATE,
    K_ARC_PRIVATE,
    K_FRT_HOT,
    K_FRT_MADE_HOT,
    K_FRT_ADAPTIVE,
    K_ARC_HOT,
    K_COUNT
};
static const char *const kind_name[K_COUNT] = {
    "frt private (owner)",     "plain private",          "C11 atomic private",
    "frt hot (1 object)",      "frt_make_hot (1 object)", "frt adaptive (1 object)",
    "C11 atomic hot (1 line)"};
/* Runs of each kind in which the runtime made an object hot by itself. */
static unsigned promoted_runs[K_COUNT], total_runs[K_COUNT];

static uint64_t hot_promoted(void)
{
    frt_heap_stats s;
    frt_heap_get_stats(&s);
    return s.hot_promoted;
}

typedef struct tjob {
    int kind;
    size_t n;
    bench_barrier *start, *end;
    frt_object *_Atomic *hot_frt;
    arc_obj *hot_arc;
    uint64_t t0, t1;
    uint64_t cpu_ns; /* the thread's CPU time over its timed stretch */
    int idx;
} tjob;

static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* CPUs the last scale_run got: its threads' CPU time / its wall time. A
 * 2-thread figure below ~1.9 CPUs measures the machine (another tenant,
 * the host), not the code. */
static double last_cpus;

static void *scale_thread(void *arg)
{
    tjob *j = arg;
    attach();
    void *obj = NULL;
    loop_fn fn = NULL;
    switch (j->kind) {
    case K_FRT_PRIVATE:
        obj = new_obj();
        fn = loop_frt;
        break;
    case K_PLAIN_PRIVATE:
        obj = new_plain();
        fn = loop_plain;
        break;
    case K_ARC_PRIVATE:
        obj = new_arc();
        fn = loop_arc;
        break;
    case K_FRT_HOT:
        if (j->idx == 0)
            atomic_store(j->hot_frt, new_obj()); /* thread 0 owns it */
        fn = loop_frt;
        break;
    case K_FRT_MADE_HOT: /* scale_run made it: a stop here would wait for the other threads */
        fn = loop_frt;
        break;
    case K_FRT_ADAPTIVE:
        fn = loop_frt_polling;
        break;
    case K_ARC_HOT:
        obj = j->hot_arc;
        fn = loop_arc;
        break;
    }
    /* The barriers spin outside frt: in a blocking section, so that a stop
     * of the world (the adaptive row's promotion) never waits for a thread
     * that waits for the stopper at a barrier. */
    frt_blocking_begin();
    bench_barrier_wait(j->start);
    frt_blocking_end();
    if (j->kind == K_FRT_HOT || j->kind == K_FRT_MADE_HOT || j->kind == K_FRT_ADAPTIVE)
        obj = atomic_load(j->hot_frt);
    uint64_t c0 = thread_cpu_ns();
    j->t0 = bench_now_ns();
    fn(obj, j->n);
    j->t1 = bench_now_ns();
    j->cpu_ns = thread_cpu_ns() - c0;
    frt_blocking_begin();
    bench_barrier_wait(j->end); /* nobody drops a hot object still in use */
    frt_blocking_end();
    if (j->kind == K_FRT_PRIVATE || (j->kind == K_FRT_HOT && j->idx == 0))
        frt_decref(obj);
    else if (j->kind == K_PLAIN_PRIVATE || j->kind == K_ARC_PRIVATE)
        free(obj);
    frt_thread_detach();
    return NULL;
}

/* Pairs per second over all threads for one run of T threads, n each. */
static double scale_run(int kind, int T, size_t n)
{
    tjob *jobs = calloc((size_t)T, sizeof *jobs);
    pthread_t *th = calloc((size_t)T, sizeof *th);
    if (!jobs || !th)
        die("out of memory");
    bench_barrier start, end;
    bench_barrier_init(&start, (unsigned)T);
    bench_barrier_init(&end, (unsigned)T);
    frt_object *_Atomic hot = NULL;
    if (kind == K_FRT_MADE_HOT || kind == K_FRT_ADAPTIVE) {
        frt_object *h = new_obj();
        if (kind == K_FRT_MADE_HOT ? frt_make_hot(h) != 0 : frt_make_shared(h) != 0)
            die("frt_make_hot or frt_make_shared failed");
        atomic_store(&hot, h);
    }
    uint64_t promoted0 = hot_promoted();
    arc_obj *hot_arc = kind == K_ARC_HOT ? new_arc() : NULL;
    for (int i = 0; i < T; i++) {
        jobs[i] = (tjob){.kind = kind, .n = n, .start = &start, .end = &end, .hot_frt = &hot,
                         .hot_arc = hot_arc, .idx = i};
        if (pthread_create(&th[i], NULL, scale_thread, &jobs[i]))
            die("pthread_create");
    }
    frt_blocking_begin();
    for (int i = 0; i < T; i++)
        pthread_join(th[i], NULL);
    frt_blocking_end();
    if (kind == K_FRT_MADE_HOT || kind == K_FRT_ADAPTIVE)
        frt_decref(atomic_load(&hot));
    total_runs[kind]++;
    if (hot_promoted() != promoted0)
        promoted_runs[kind]++;
    if (kind == K_FRT_MADE_HOT || hot_promoted() != promoted0)
        frt_gc_collect(0); /* a hot object dies at a collection */
    uint64_t t0 = jobs[0].t0, t1 = jobs[0].t1, cpu = 0;
    for (int i = 0; i < T; i++) {
        if (jobs[i].t0 < t0)
            t0 = jobs[i].t0;
        if (jobs[i].t1 > t1)
            t1 = jobs[i].t1;
        cpu += jobs[i].cpu_ns;
    }
    last_cpus = (double)cpu / (double)(t1 - t0);
    free(jobs);
    free(th);
    free(hot_arc);
    return (double)T * (double)n / ((double)(t1 - t0) / 1e9);
}

static void section_df(const long *threads, size_t nthreads)
{
    long ncpu = bench_ncpus();
    printf("\n## d/f. threads: total incref+decref pairs per second (millions), median of %d;"
           " each thread does the same number of pairs; wall = first start to last end\n",
           g_reps);
    printf("# efficiency = throughput(T) / (min(T, %ld CPUs) x throughput(1)); target >= 0.95 for"
           " private objects\n",
           ncpu);
    printf("# CPUs = the threads' CPU time / wall time, median: below min(T, %ld), the threads did"
           " not run side by side all along (other load), and the row measures the machine\n",
           ncpu);
    /* n per thread: calibrated on one thread for each kind, once. */
    size_t n[K_COUNT];
    for (int k = 0; k < K_COUNT; k++) {
        double t1 = scale_run(k, 1, (size_t)1 << 20); /* pairs/s */
        double want = g_target_ns / 1e9 * t1;
        n[k] = want < 10000 ? 10000 : (size_t)want;
    }
    printf("%-24s", "threads");
    for (size_t i = 0; i < nthreads; i++)
        printf(" %9ld", threads[i]);
    printf("\n");
    R.min_eff = 1e9;
    for (int k = 0; k < K_COUNT; k++) {
        double base = 0;
        double tput[64], cpus[64];
        for (size_t i = 0; i < nthreads && i < 64; i++) {
            double s[BENCH_MAX_REPS], c[BENCH_MAX_REPS];
            scale_run(k, (int)threads[i], n[k] / 4 + 1); /* warm-up */
            for (int r = 0; r < g_reps; r++) {
                s[r] = scale_run(k, (int)threads[i], n[k]);
                c[r] = last_cpus;
            }
            tput[i] = bench_median(s, (size_t)g_reps);
            cpus[i] = bench_median(c, (size_t)g_reps);
            if (threads[i] == 1)
                base = tput[i];
        }
        printf("%-24s", kind_name[k]);
        for (size_t i = 0; i < nthreads && i < 64; i++) {
            printf(" %9.1f", tput[i] / 1e6);
            if (k == K_FRT_MADE_HOT && threads[i] <= 2)
                R.hot2[threads[i]] = tput[i];
            if (k == K_FRT_ADAPTIVE && threads[i] <= 2)
                R.adaptive2[threads[i]] = tput[i];
            if (k == K_ARC_HOT && threads[i] == 2)
                R.arc_hot2 = tput[i];
        }
        printf("  Mpairs/s");
        if (k == K_FRT_HOT || k == K_FRT_ADAPTIVE)
            printf("  (made hot by the runtime in %u of %u runs)", promoted_runs[k], total_runs[k]);
        printf("\n");
        if (base > 0) {
            printf("%-24s", "  efficiency");
            for (size_t i = 0; i < nthreads && i < 64; i++) {
                long ideal = threads[i] < ncpu ? threads[i] : ncpu;
                double eff = tput[i] / ((double)ideal * base);
                printf(" %9.2f", eff);
                if (k == K_FRT_PRIVATE && eff < R.min_eff)
                    R.min_eff = eff;
            }
            printf("\n");
        }
        printf("%-24s", "  CPUs");
        for (size_t i = 0; i < nthreads && i < 64; i++)
            printf(" %9.2f", cpus[i]);
        printf("\n");
    }
    R.have_d = R.min_eff < 1e9;
    if (R.hot2[1] > 0 && R.hot2[2] > 0 && R.arc_hot2 > 0) {
        printf("frt_make_hot: 2 threads / 1 thread       %8.2fx   (target >= 1.8x)\n",
               R.hot2[2] / R.hot2[1]);
        printf("frt_make_hot / C11 atomic line, 2 threads %7.2fx   (target >= 10x)\n",
               R.hot2[2] / R.arc_hot2);
    }
    if (R.adaptive2[1] > 0 && R.adaptive2[2] > 0 && R.arc_hot2 > 0) {
        printf("frt adaptive: 2 threads / 1 thread       %8.2fx\n", R.adaptive2[2] / R.adaptive2[1]);
        printf("frt adaptive / C11 atomic line, 2 threads %7.2fx\n", R.adaptive2[2] / R.arc_hot2);
    }
}

/* ------------------------------------------------------------------ */
/* e: the mixed workload.                                             */

#define MIX_RING 1024
#define MIX_OWNER_PAIRS 8
#define MIX_OTHER_PAIRS 4
#define MIX_HANDOFF_PERCENT 10

typedef struct mix_ring {
    _Alignas(64) _Atomic size_t head;
    _Alignas(64) _Atomic size_t tail;
    _Alignas(64) frt_object *slot[MIX_RING];
} mix_ring;

typedef struct mix_thread {
    int idx, T;
    size_t n;
    mix_ring *inbox, *outbox;
    bench_barrier *start, *drained;
    _Atomic int *producers_done;
    uint64_t t0, t1;
    size_t handed, received;
} mix_thread;

static inline frt_object *mix_pop(mix_ring *r)
{
    size_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
    if (h == atomic_load_explicit(&r->tail, memory_order_acquire))
        return NULL;
    frt_object *o = r->slot[h % MIX_RING];
    atomic_store_explicit(&r->head, h + 1, memory_order_release);
    return o;
}

static inline int mix_push(mix_ring *r, frt_object *o)
{
    size_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
    if (t - atomic_load_explicit(&r->head, memory_order_acquire) == MIX_RING)
        return 0;
    r->slot[t % MIX_RING] = o;
    atomic_store_explicit(&r->tail, t + 1, memory_order_release);
    return 1;
}

/* Count on a received object, then drop the reference it came with. */
static inline size_t mix_drain(mix_ring *r)
{
    size_t k = 0;
    frt_object *o;
    while ((o = mix_pop(r))) {
        for (int i = 0; i < MIX_OTHER_PAIRS; i++) {
            frt_incref(o);
            BENCH_BARRIER();
            frt_decref(o);
            BENCH_BARRIER();
        }
        frt_decref(o);
        k++;
    }
    return k;
}

static void *mix_main(void *arg)
{
    mix_thread *m = arg;
    attach();
    uint64_t rng = 0x243f6a8885a308d3ull * (uint64_t)(m->idx + 1);
    bench_barrier_wait(m->start);
    m->t0 = bench_now_ns();
    for (size_t k = 0; k < m->n; k++) {
        frt_object *o = new_obj();
        for (int i = 0; i < MIX_OWNER_PAIRS; i++) {
            frt_incref(o);
            BENCH_BARRIER();
            frt_decref(o);
            BENCH_BARRIER();
        }
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        if ((rng >> 32) % 100 < MIX_HANDOFF_PERCENT) {
            while (!mix_push(m->outbox, o)) /* full: do our own share meanwhile */
                if (!mix_drain(m->inbox))
                    sched_yield();
            m->handed++;
        } else {
            frt_decref(o);
        }
        if ((k & 15) == 0)
            m->received += mix_drain(m->inbox);
    }
    atomic_fetch_add(m->producers_done, 1);
    for (;;) {
        int all = atomic_load(m->producers_done) == m->T;
        size_t got = mix_drain(m->inbox);
        m->received += got;
        if (all && !got)
            break;
        if (!got)
            sched_yield();
    }
    /* Every reference is dropped; the owners merge what was queued back to
     * them (BRC) and free it. The work is done after that. */
    frt_blocking_begin();
    bench_barrier_wait(m->drained);
    frt_blocking_end();
    frt_safepoint();
    m->t1 = bench_now_ns();
    frt_thread_detach();
    return NULL;
}

/* ns per object (wall / all objects) for one run. */
static double mix_run(int T, size_t n_per_thread)
{
    mix_ring *rings = aligned_alloc(64, sizeof(mix_ring) * (size_t)T);
    mix_thread *mt = calloc((size_t)T, sizeof *mt);
    pthread_t *th = calloc((size_t)T, sizeof *th);
    if (!rings || !mt || !th)
        die("out of memory");
    memset(rings, 0, sizeof(mix_ring) * (size_t)T);
    bench_barrier start, drained;
    bench_barrier_init(&start, (unsigned)T);
    bench_barrier_init(&drained, (unsigned)T);
    _Atomic int producers_done = 0;
    for (int i = 0; i < T; i++) {
        mt[i] = (mix_thread){.idx = i, .T = T, .n = n_per_thread, .inbox = &rings[i],
                             .outbox = &rings[(i + 1) % T], .start = &start,
                             .drained = &drained, .producers_done = &producers_done};
        if (pthread_create(&th[i], NULL, mix_main, &mt[i]))
            die("pthread_create");
    }
    frt_blocking_begin();
    for (int i = 0; i < T; i++)
        pthread_join(th[i], NULL);
    frt_blocking_end();
    frt_safepoint();
    uint64_t t0 = mt[0].t0, t1 = mt[0].t1;
    for (int i = 1; i < T; i++) {
        if (mt[i].t0 < t0)
            t0 = mt[i].t0;
        if (mt[i].t1 > t1)
            t1 = mt[i].t1;
    }
    free(rings);
    free(mt);
    free(th);
    return (double)(t1 - t0) / ((double)T * (double)n_per_thread);
}

static double mix_measure(int T, size_t n, double *samples)
{
    mix_run(T, n / 4 + 1); /* warm-up */
    for (int r = 0; r < g_reps; r++)
        samples[r] = mix_run(T, n);
    double s[BENCH_MAX_REPS];
    memcpy(s, samples, sizeof(double) * (size_t)g_reps);
    return bench_median(s, (size_t)g_reps);
}

#if !FRT_BENCH_ATOMIC && !FRT_BENCH_SHARED
/* Run the sibling program `name` (next to this one) with args; out[i] gets
 * the value of keys[i]= on its line starting with tag. 0, or -1 if it
 * could not be run. */
static int run_sibling(const char *name, const char *args, const char *tag, int nkeys,
                       const char *const *keys, double *out)
{
    char self[4096];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0)
        return -1;
    self[len] = 0;
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s/%s' %s --raw --reps %d", dirname(self), name, args, g_reps);
    fflush(stdout);
    FILE *f = popen(cmd, "r");
    if (!f)
        return -1;
    char line[512], want[64];
    int found = 0;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, tag, strlen(tag)) != 0)
            continue;
        for (int i = 0; i < nkeys; i++) {
            snprintf(want, sizeof want, " %s=", keys[i]);
            const char *p = strstr(line, want);
            if (p) {
                out[i] = strtod(p + strlen(want), NULL);
                found++;
            }
        }
    }
    int st = pclose(f);
    return st == 0 && found == nkeys ? 0 : -1;
}

/* The sibling built against frt_rc_atomic: its median ns/object. */
static double run_atomic_sibling(int T, size_t n, int quick)
{
    char args[256];
    snprintf(args, sizeof args, "--mix --mix-threads %d --mix-objects %zu%s", T, n,
             quick ? " --quick" : "");
    static const char *const key[1] = {"ns_per_object"};
    double ns;
    return run_sibling("frt-bench-brc-atomic", args, "MIX ", 1, key, &ns) == 0 ? ns : -1;
}
#endif

static void section_e(int T, size_t n, int raw, int quick)
{
    double samples[BENCH_MAX_REPS];
    double ns = mix_measure(T, n, samples);
    if (raw) {
        printf("MIX lib=%s threads=%d objects_per_thread=%zu reps=%d ns_per_object=%.4f min=%.4f"
               " max=%.4f\n",
               FRT_BENCH_ATOMIC ? "rc_atomic" : "brc", T, n, g_reps, ns,
               bench_min(samples, (size_t)g_reps), bench_max(samples, (size_t)g_reps));
        return;
    }
    printf("\n## e. mixed workload (BRC paper style), %d threads, %zu objects per thread, median of"
           " %d\n",
           T, n, g_reps);
    printf("# per object: frt_new, %d owner pairs; %d%% handed to the next thread (SPSC ring),"
           " which does %d pairs and drops it; the rest dropped by the owner\n",
           MIX_OWNER_PAIRS, MIX_HANDOFF_PERCENT, MIX_OTHER_PAIRS);
    printf("%-34s %8.2f ns per object  (%.2f Mobjects/s, min %.2f, max %.2f ns)\n", LIB_LABEL, ns,
           1e3 / ns, bench_min(samples, (size_t)g_reps), bench_max(samples, (size_t)g_reps));
    R.mix_brc = ns;
#if !FRT_BENCH_ATOMIC && !FRT_BENCH_SHARED
    double at = run_atomic_sibling(T, n, quick);
    if (at > 0) {
        printf("%-34s %8.2f ns per object  (%.2f Mobjects/s; frt-bench-brc-atomic, same run)\n",
               "frt_rc_atomic (every count atomic)", at, 1e3 / at);
        printf("BRC throughput / atomic throughput %8.2fx\n", at / ns);
        R.mix_atomic = at;
    } else {
        printf("# frt-bench-brc-atomic could not be run from the directory of this program;"
               " run it by hand: frt-bench-brc-atomic --mix\n");
    }
#else
    (void)quick;
#endif
}

/* ------------------------------------------------------------------ */

static void summary(void)
{
    printf("\n## targets (docs/benchmarks.md)\n");
    if (R.have_a) {
        double r1 = R.owner / R.plain, r2 = R.arc / R.owner;
        printf("owner pair within 1.1x of plain     %6.2fx  %s\n", r1, r1 <= 1.1 ? "MET" : "MISSED");
        printf("owner pair >= 15x faster than atomic %5.2fx  %s\n", r2, r2 >= 15 ? "MET" : "MISSED");
        if (R.shared_owner_ratio > 0) {
            double rs = R.shared_owner_ratio, d = rs / r1;
            printf("libfrt.so owner pair <= 1.55x plain %6.2fx  %s\n", rs, rs <= 1.55 ? "MET" : "MISSED");
            printf("libfrt.so within 5%% of libfrt.a     %6.2fx  %s\n", d,
                   d <= 1.05 && d >= 0.95 ? "MET" : "MISSED");
        }
    }
    if (R.have_b) {
        double r = R.nonowner / R.arc_other;
        printf("non-owner pair <= 1.2x atomic       %6.2fx  %s\n", r, r <= 1.2 ? "MET" : "MISSED");
        printf("non-owner pair <= 1.0x atomic (issue 12) %.2fx  %s\n", r, r <= 1.0 ? "MET" : "MISSED");
    }
    if (R.have_c) {
        double r = R.fs_hammer / R.fs_alone;
        printf("owner no slower beside shared-count traffic %.2fx  %s\n", r,
               r <= 1.05 ? "MET" : "MISSED");
    }
    if (R.have_d)
        printf("private objects scaling efficiency >= 0.95: worst %.2f  %s\n", R.min_eff,
               R.min_eff >= 0.95 ? "MET" : "MISSED");
    if (R.have_c && R.hot_alone > 0) {
        double r = R.hot_hammer / R.hot_alone;
        printf("hot: owner no slower beside another thread's pairs %.2fx  %s\n", r,
               r <= 1.05 ? "MET" : "MISSED");
    }
    if (R.hot2[1] > 0 && R.hot2[2] > 0 && R.arc_hot2 > 0) {
        double s = R.hot2[2] / R.hot2[1], a = R.hot2[2] / R.arc_hot2;
        printf("hot: 2 threads >= 1.8x 1 thread     %6.2fx  %s\n", s, s >= 1.8 ? "MET" : "MISSED");
        printf("hot: >= 10x the atomic line at 2    %6.2fx  %s\n", a, a >= 10 ? "MET" : "MISSED");
    }
    if (R.mix_brc > 0 && R.mix_atomic > 0)
        printf("mix: BRC %.2fx the atomic build's throughput\n", R.mix_atomic / R.mix_brc);
}

static const char usage[] =
    "usage: frt-bench-brc [--quick] [--reps N] [--threads 1,2,4] [--only abcdef]\n"
    "                     [--mix] [--raw] [--mix-threads T] [--mix-objects N] [--adaptive-off]\n"
    "  --quick        short run: 5 repetitions of ~10 ms (default 11 of ~40 ms)\n"
    "  --threads L    thread counts for sections d and f (default 1,2,..,2 x CPUs)\n"
    "  --only S       run only these sections (letters a-f)\n"
    "  --mix          only the mixed workload (section e)\n"
    "  --adaptive-off frt_config.hot_adaptive off: no object is made hot unless asked\n"
    "  --raw          with --mix or --only a: one machine-readable line (used between the builds)\n";

int main(int argc, char **argv)
{
    static const char *const flags[] = {"--quick", "--mix", "--raw", "--adaptive-off", "--help",
                                        "-h",      NULL};
    static const char *const valued[] = {"--reps", "--threads", "--only", "--mix-threads",
                                         "--mix-objects", NULL};
    bench_check_args(argc, argv, flags, valued, usage);
    int quick = bench_flag(argc, argv, "--quick");
    int raw = bench_flag(argc, argv, "--raw");
    g_reps = (int)bench_opt_long(argc, argv, "--reps", quick ? 5 : 11);
    g_target_ns = quick ? 10e6 : 40e6;
    if (bench_sanitized())
        g_target_ns = 2e6;
    if (g_reps < 1 || g_reps > BENCH_MAX_REPS) {
        fprintf(stderr, "--reps must be 1..%d\n", BENCH_MAX_REPS);
        return 2;
    }
    long ncpu = bench_ncpus();
    long threads[64];
    size_t nthreads = 0;
    const char *tl = bench_opt(argc, argv, "--threads");
    if (tl) {
        nthreads = bench_parse_list(tl, threads, 64);
        if (!nthreads) {
            fprintf(stderr, "--threads: expected a list like 1,2,4\n");
            return 2;
        }
        for (size_t i = 0; i < nthreads; i++)
            if (threads[i] > MAX_THREADS) {
                fprintf(stderr, "--threads: at most %d\n", MAX_THREADS);
                return 2;
            }
    } else {
        for (long t = 1; t < 2 * ncpu && nthreads < 63; t *= 2)
            threads[nthreads++] = t;
        threads[nthreads++] = 2 * ncpu;
    }
    int mix_threads = (int)bench_opt_long(argc, argv, "--mix-threads", ncpu < 2 ? 2 : ncpu);
    if (mix_threads < 2 || mix_threads > MAX_THREADS) {
        fprintf(stderr, "--mix-threads must be 2..%d\n", MAX_THREADS);
        return 2;
    }
    size_t mix_objects = (size_t)bench_opt_long(argc, argv, "--mix-objects",
                                                bench_sanitized() ? 20000 : quick ? 100000 : 400000);
    const char *only = bench_opt(argc, argv, "--only");
    if (bench_flag(argc, argv, "--mix"))
        only = "e";
    if (!only)
        only = "abcdfe";

    frt_config cfg;
    frt_config_default(&cfg);
    if (bench_flag(argc, argv, "--adaptive-off"))
        cfg.hot_adaptive = FRT_HOT_ADAPTIVE_OFF;
    if (frt_init(&cfg) != 0)
        die("frt_init failed");
    if (!raw) {
        bench_print_machine("frt-bench-brc: biased reference counting vs plain and atomic counting");
        printf("# library: %s\n", LIB_LABEL);
        printf("# method: per figure, a calibrated loop of ~%.0f ms, one warm-up, median of %d"
               " repetitions (variants interleaved); wall clock (CLOCK_MONOTONIC)\n",
               g_target_ns / 1e6, g_reps);
        printf("# every loop: op; compiler barrier; op; compiler barrier (noinline loop functions)\n");
        fflush(stdout);
    }
    int df_done = 0;
    for (const char *c = only; *c; c++) {
        switch (*c) {
        case 'a':
            section_a(raw, quick);
            break;
        case 'b':
            section_b();
            break;
        case 'c':
            section_c();
            break;
        case 'd':
        case 'f': /* one table holds both */
            if (!df_done)
                section_df(threads, nthreads);
            df_done = 1;
            break;
        case 'e':
            section_e(mix_threads, mix_objects, raw, quick);
            break;
        default:
            fprintf(stderr, "--only: unknown section '%c'\n", *c);
            return 2;
        }
        fflush(stdout);
    }
    if (!raw)
        summary();
    int alive = frt_shutdown();
    if (alive != 0)
        fprintf(stderr, "frt_shutdown: %d objects still alive\n", alive);
    return alive == 0 ? 0 : 1;
}
