/* frt-bench-gc: the cycle collector against CPython's gc and the Boehm GC,
 * in one run.
 *
 * The graph (the same in all three, node for node): N containers with two
 * references each, `next` and `cross`, in rings of 10 (each member's next
 * is the following member, the last points back to the first), and one
 * cross link per node to the node at index lcg() % N, lcg being the 64-bit
 * LCG x = x * 6364136223846793005 + 1442695040888963407, seeded from
 * --seed. "Live": one external reference per ring (its first member);
 * "garbage": none. frt's node is its 32-byte header plus the two pointers
 * (48 bytes); CPython's a two-slot class (__slots__); Boehm's the bare
 * two-pointer struct (16 bytes), GC_MALLOC'd.
 *
 * Sections (docs/benchmarks.md has the method and the latest figures):
 *   1  full collection, ns per object, graph live and graph garbage:
 *      frt_gc_collect(2); CPython gc.collect() (the interpreter's own
 *      objects frozen first, so only the graph is examined); Boehm
 *      GC_gcollect() with one marker and with two. The graph is built with
 *      automatic collection off; live: built once, one untimed collection
 *      (Boehm: nine, until its mark stack has grown to fit the graph), then
 *      --reps timed ones; garbage: rebuilt and dropped before each, one
 *      untimed round first. Repetitions interleave frt, CPython, Boehm.
 *      Median (min, max) per object.
 *   2  generation-0 collection of --young young objects (rings of 10, each
 *      node's cross link to a random old object; every other ring held
 *      from outside, the rest garbage) beside --old-small and --old-large
 *      old objects (the same graph shape, live, moved to the oldest
 *      generation by a full collection first). Each run: build the young
 *      rings, time frt_gc_collect(0) / gc.collect(0), then drop the held
 *      rings and run an untimed generation-1 collection, so every run starts
 *      from an empty young generation. Median and p99 over --young-runs
 *      runs, in batches that alternate frt and CPython.
 *   3  pauses of automatic collections (thresholds 700, 10, 10) while
 *      --pause-threads threads allocate for --pause-seconds: rings of 3..8
 *      nodes dropped at once (short-lived cycles, one cross link into the
 *      long-lived set) and, every 32nd iteration, a 2-node ring that
 *      replaces a random one of 2048 long-lived rings per thread. The pause
 *      is the world-stopped time of each collection (frt_gc_callback_add,
 *      STOP info.pause_ns): median, p99 and max per generation.
 *
 * CPython is the system python3 running stress/bench/bench_gc_cpython.py; Boehm
 * is frt-bench-gc-boehm next to this program. Both are child processes
 * that build their own graphs and answer one line per command over pipes.
 * Time is CLOCK_MONOTONIC (perf_counter_ns in Python) around the collection
 * call alone. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <sys/wait.h>

#include <frt/frt.h>

#include "bench_common.h"

#ifndef BENCH_GC_PY
#define BENCH_GC_PY "bench_gc_cpython.py"
#endif
#ifndef BENCH_GC_HAVE_BOEHM
#define BENCH_GC_HAVE_BOEHM 0
#endif

#define RING 10
#define MAX_REPS 64

extern char **environ;

static void die(const char *what)
{
    fprintf(stderr, "frt-bench-gc: %s\n", what);
    exit(1);
}

/* ------------------------------------------------------------------ */
/* The frt graph.                                                     */

typedef struct node {
    frt_object ob;
    frt_object *next;
    frt_object *cross;
} node;

static int node_traverse(frt_object *self, frt_visit_fn visit, void *arg)
{
    node *n = (node *)self;
    int r;
    if (n->next && (r = visit(n->next, arg)) != 0)
        return r;
    if (n->cross && (r = visit(n->cross, arg)) != 0)
        return r;
    return 0;
}

static void node_clear(frt_object *self)
{
    node *n = (node *)self;
    frt_object *t = n->next;
    n->next = NULL;
    frt_xdecref(t);
    t = n->cross;
    n->cross = NULL;
    frt_xdecref(t);
}

static void node_destroy(frt_object *self)
{
    node *n = (node *)self;
    frt_xdecref(n->next);
    frt_xdecref(n->cross);
}

static const frt_type node_type = {
    .name = "bench_gc_node",
    .size = sizeof(node),
    .traverse = node_traverse,
    .clear = node_clear,
    .destroy = node_destroy,
};

static inline uint64_t lcg(uint64_t x)
{
    return x * 6364136223846793005u + 1442695040888963407u;
}

static node *new_node(void)
{
    node *n = (node *)frt_new(&node_type);
    if (!n)
        die("frt_new failed");
    return n;
}

/* n nodes in rings of RING, one cross link each into pool[0..npool) (the new
 * nodes themselves when pool is NULL). The creation reference of the first
 * member of ring r is kept in held[] when keep(r) says so, and dropped
 * otherwise; every other creation reference is dropped. nodes_out, when
 * given, receives the node pointers (borrowed). Returns the number held. */
enum { KEEP_NONE, KEEP_ALL, KEEP_EVEN };

static size_t build(size_t n, uint64_t seed, node **pool, size_t npool, int keep, frt_object **held,
                    node **nodes_out)
{
    node **nodes = nodes_out ? nodes_out : malloc(n * sizeof *nodes);
    if (!nodes)
        die("out of memory");
    for (size_t i = 0; i < n; i++)
        nodes[i] = new_node();
    for (size_t r = 0; r < n; r += RING) {
        size_t end = r + RING < n ? r + RING : n;
        for (size_t i = r; i + 1 < end; i++)
            nodes[i]->next = frt_newref(&nodes[i + 1]->ob);
        nodes[end - 1]->next = frt_newref(&nodes[r]->ob);
    }
    if (!pool) {
        pool = nodes;
        npool = n;
    }
    uint64_t x = seed;
    for (size_t i = 0; i < n; i++) {
        x = lcg(x);
        nodes[i]->cross = npool ? frt_newref(&pool[(x >> 33) % npool]->ob) : NULL;
    }
    size_t nheld = 0;
    for (size_t i = 0; i < n; i++) {
        size_t ring = i / RING;
        int k = i % RING == 0 && (keep == KEEP_ALL || (keep == KEEP_EVEN && ring % 2 == 0));
        if (k)
            held[nheld++] = &nodes[i]->ob;
        else
            frt_decref(&nodes[i]->ob);
    }
    if (!nodes_out)
        free(nodes);
    return nheld;
}

static void drop_all(frt_object **held, size_t n)
{
    for (size_t i = 0; i < n; i++)
        frt_decref(held[i]);
}

static double collect_ns(int gen, long *found)
{
    uint64_t t0 = bench_now_ns();
    long f = frt_gc_collect(gen);
    uint64_t t1 = bench_now_ns();
    if (found)
        *found = f;
    return (double)(t1 - t0);
}

/* ------------------------------------------------------------------ */
/* Child processes answering one line per command (the baselines).     */

typedef struct peer {
    const char *label; /* short name for the table */
    char desc[160];    /* what it said to "hello" */
    pid_t pid;
    FILE *to, *from;
    int alive;
    char *line;
    size_t line_cap;
} peer;

static int peer_start(peer *p, const char *label, char *const argv[])
{
    memset(p, 0, sizeof *p);
    p->label = label;
    int to[2], from[2];
    if (pipe2(to, O_CLOEXEC) || pipe2(from, O_CLOEXEC))
        return -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, to[0], 0);
    posix_spawn_file_actions_adddup2(&fa, from[1], 1);
    int rc = posix_spawnp(&p->pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(to[0]);
    close(from[1]);
    if (rc != 0) {
        close(to[1]);
        close(from[0]);
        snprintf(p->desc, sizeof p->desc, "could not start %s: %s", argv[0], strerror(rc));
        return -1;
    }
    p->to = fdopen(to[1], "w");
    p->from = fdopen(from[0], "r");
    p->alive = p->to && p->from;
    return p->alive ? 0 : -1;
}

/* Send one command; on success the reply (after "ok ") is in p->line. */
static int peer_cmd(peer *p, const char *fmt, ...)
{
    if (!p->alive)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(p->to, fmt, ap);
    va_end(ap);
    fputc('\n', p->to);
    if (fflush(p->to) != 0 || getline(&p->line, &p->line_cap, p->from) < 0) {
        fprintf(stderr, "frt-bench-gc: %s stopped answering\n", p->label);
        p->alive = 0;
        return -1;
    }
    p->line[strcspn(p->line, "\n")] = 0;
    if (strncmp(p->line, "ok", 2) != 0) {
        fprintf(stderr, "frt-bench-gc: %s: %s\n", p->label, p->line);
        return -1;
    }
    memmove(p->line, p->line + (p->line[2] ? 3 : 2), strlen(p->line + (p->line[2] ? 3 : 2)) + 1);
    return 0;
}

static void peer_stop(peer *p)
{
    if (p->to) {
        fputs("quit\n", p->to);
        fclose(p->to);
    }
    if (p->from)
        fclose(p->from);
    if (p->pid > 0)
        waitpid(p->pid, NULL, 0);
    free(p->line);
    p->to = p->from = NULL;
    p->alive = 0;
}

/* "ok <ns> <found>" -> ns and found. */
static int peer_timed(peer *p, double *ns, long *found, const char *fmt, ...)
{
    char cmd[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    if (peer_cmd(p, "%s", cmd))
        return -1;
    long long t = 0, f = 0;
    if (sscanf(p->line, "%lld %lld", &t, &f) < 1)
        return -1;
    *ns = (double)t;
    if (found)
        *found = (long)f;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Options and results.                                               */

static size_t g_objects = 1000000, g_old_small = 10000, g_old_large = 1000000, g_young = 700;
static int g_reps = 5, g_young_runs = 400, g_pause_threads = 2;
static double g_pause_seconds = 3.0;
static uint64_t g_seed = 20240611;
static int g_use_cpython = 1, g_use_boehm = 1;
static const char *g_python, *g_script = BENCH_GC_PY;
static const char *g_only = "123";
static int g_gc_debug;

enum { P_CPY, P_BOEHM1, P_BOEHM2, NPEERS };
static peer g_peer[NPEERS];
static int g_have[NPEERS];

typedef struct stat3 {
    double med, min, max;
    int ok;
} stat3;

static stat3 summarise(double *v, int n, double per)
{
    stat3 s = {0, 0, 0, n > 0};
    if (n <= 0)
        return s;
    for (int i = 0; i < n; i++)
        v[i] /= per;
    s.min = bench_min(v, (size_t)n);
    s.max = bench_max(v, (size_t)n);
    s.med = bench_median(v, (size_t)n);
    return s;
}

static struct {
    stat3 live[1 + NPEERS], garbage[1 + NPEERS];
    double young_med[2][2], young_p99[2][2]; /* [small/large][frt/cpython] */
    int young_ok[2][2];
    int sec1, sec2;
} R;

/* ------------------------------------------------------------------ */
/* 1. Full collections.                                               */

static void print_row(const char *name, stat3 live, stat3 garb, long live_found, long garb_found, int bytes)
{
    printf("%-26s", name);
    if (live.ok)
        printf(" %9.1f (%6.1f..%6.1f)", live.med, live.min, live.max);
    else
        printf(" %28s", "-");
    if (garb.ok)
        printf(" %9.1f (%6.1f..%6.1f)", garb.med, garb.min, garb.max);
    else
        printf(" %28s", "-");
    if (bytes)
        printf("   freed %.1f / %.1f MiB\n", live_found / 1048576.0, garb_found / 1048576.0);
    else
        printf("   found %ld / %ld\n", live_found, garb_found);
}

static void section_full(void)
{
    size_t n = g_objects, nrings = (n + RING - 1) / RING;
    frt_object **held = malloc(nrings * sizeof *held);
    if (!held)
        die("out of memory");
    double live[1 + NPEERS][MAX_REPS], garb[1 + NPEERS][MAX_REPS];
    int nlive[1 + NPEERS] = {0}, ngarb[1 + NPEERS] = {0};
    long live_found[1 + NPEERS] = {0}, garb_found[1 + NPEERS] = {0};
    double build_ns[1 + NPEERS] = {0};

    /* Live graph: built once in each, one untimed collection, then reps. */
    uint64_t t0 = bench_now_ns();
    size_t nheld = build(n, g_seed, NULL, 0, KEEP_ALL, held, NULL);
    build_ns[0] = (double)(bench_now_ns() - t0);
    collect_ns(2, NULL);
    for (int k = 0; k < NPEERS; k++) {
        if (!g_have[k])
            continue;
        double ns;
        if (peer_timed(&g_peer[k], &ns, NULL, "live %zu %llu", n, (unsigned long long)g_seed) == 0)
            build_ns[1 + k] = ns;
        peer_timed(&g_peer[k], &ns, NULL, "collect");
    }
    for (int r = 0; r < g_reps; r++) {
        live[0][nlive[0]++] = collect_ns(2, &live_found[0]);
        for (int k = 0; k < NPEERS; k++) {
            double ns;
            if (g_have[k] && peer_timed(&g_peer[k], &ns, &live_found[1 + k], "collect") == 0)
                live[1 + k][nlive[1 + k]++] = ns;
        }
    }
    drop_all(held, nheld);
    collect_ns(2, NULL);
    for (int k = 0; k < NPEERS; k++)
        if (g_have[k])
            peer_cmd(&g_peer[k], "drop");

    /* Garbage: rebuilt and dropped before each; round 0 is the warm-up. */
    for (int r = 0; r <= g_reps; r++) {
        build(n, g_seed + (uint64_t)r, NULL, 0, KEEP_NONE, held, NULL);
        double ns = collect_ns(2, &garb_found[0]);
        if (r)
            garb[0][ngarb[0]++] = ns;
        for (int k = 0; k < NPEERS; k++) {
            long f;
            if (g_have[k] &&
                peer_timed(&g_peer[k], &ns, &f, "garbage %zu %llu", n, (unsigned long long)(g_seed + r)) == 0 &&
                r) {
                garb[1 + k][ngarb[1 + k]++] = ns;
                garb_found[1 + k] = f;
            }
        }
    }
    free(held);

    for (int k = 0; k <= NPEERS; k++) {
        R.live[k] = summarise(live[k], nlive[k], (double)n);
        R.garbage[k] = summarise(garb[k], ngarb[k], (double)n);
    }
    R.sec1 = 1;

    printf("\n## 1. full collection of %zu objects (rings of %d + one random cross link each),"
           " ns per object, median (min..max) of %d\n",
           n, RING, g_reps);
    printf("# build (untimed for the figures): frt %.0f ns/object", build_ns[0] / (double)n);
    for (int k = 0; k < NPEERS; k++)
        if (g_have[k] && build_ns[1 + k] > 0)
            printf(", %s %.0f", g_peer[k].label, build_ns[1 + k] / (double)n);
    printf("\n# found: objects the collection reported unreachable; Boehm: heap bytes freed"
           " (GC_get_memory_use;\n# a node takes 32 bytes there, plus the heads array)\n");
    printf("%-26s %28s %28s\n", "collector", "all live", "all garbage");
    print_row("frt", R.live[0], R.garbage[0], live_found[0], garb_found[0], 0);
    for (int k = 0; k < NPEERS; k++)
        if (g_have[k])
            print_row(g_peer[k].label, R.live[1 + k], R.garbage[1 + k], live_found[1 + k],
                      garb_found[1 + k], k != P_CPY);
    for (int k = 0; k < NPEERS; k++) {
        if (!g_have[k] || !R.live[1 + k].ok)
            continue;
        printf("frt / %-20s live %6.2fx", g_peer[k].label, R.live[0].med / R.live[1 + k].med);
        if (R.garbage[1 + k].ok)
            printf("   garbage %7.2fx", R.garbage[0].med / R.garbage[1 + k].med);
        printf("\n");
    }
    if (g_have[P_BOEHM1] && R.garbage[1 + P_BOEHM1].ok)
        printf("# Boehm's 'garbage' is one mark of nothing plus freeing whole empty blocks (%.2f ns/object);"
               "\n# frt frees object by object (clear(), then each decref frees a block): %.1fx Boehm's cost"
               " per garbage object.\n",
               R.garbage[1 + P_BOEHM1].med, R.garbage[0].med / R.garbage[1 + P_BOEHM1].med);
}

/* ------------------------------------------------------------------ */
/* 2. Young collections.                                              */

static int cmp_double(const void *a, const void *b)
{
    return bench_cmp_double(a, b);
}

static void section_young(void)
{
    size_t olds[2] = {g_old_small, g_old_large};
    int batches = g_young_runs >= 100 ? 4 : 1;
    int per = (g_young_runs + batches - 1) / batches;
    int total = per * batches;
    double *fv = malloc((size_t)total * sizeof *fv), *cv = malloc((size_t)total * sizeof *cv);
    size_t ny = g_young, nyrings = (ny + RING - 1) / RING;
    frt_object **yheld = malloc(nyrings * sizeof *yheld);
    if (!fv || !cv || !yheld)
        die("out of memory");
    double found_frt[2] = {0, 0};
    printf("\n## 2. generation-0 collection of %zu young objects beside old ones"
           " (median and p99 of %d runs, us)\n",
           ny, total);
    printf("# young: rings of %d, each node's cross link to a random old object, every other ring"
           " held from outside;\n# old: the section-1 shape, live, in the oldest generation."
           " Wall time: a run during which the OS\n# ran another process instead shows as a"
           " multi-ms outlier in p99/max (see the load average)\n",
           RING);
    printf("%-12s %-20s %10s %10s %10s %12s\n", "old objects", "collector", "median", "p99", "max",
           "found/run");
    for (int s = 0; s < 2; s++) {
        size_t nold = olds[s], norings = (nold + RING - 1) / RING;
        frt_object **oheld = malloc(norings * sizeof *oheld);
        node **onodes = malloc(nold * sizeof *onodes);
        if (!oheld || !onodes)
            die("out of memory");
        size_t noheld = build(nold, g_seed, NULL, 0, KEEP_ALL, oheld, onodes);
        collect_ns(2, NULL);
        int cpy = g_have[P_CPY] &&
                  peer_cmd(&g_peer[P_CPY], "old %zu %llu", nold, (unsigned long long)g_seed) == 0;
        int nf = 0, nc = 0;
        long found_sum = 0;
        /* Batch -1 is the untimed warm-up, for both. */
        for (int b = -1; b < batches; b++) {
            for (int k = 0; k < per; k++) {
                uint64_t seed = g_seed + 1000003u * (uint64_t)(b + 1) + (uint64_t)k;
                size_t nh = build(ny, seed, onodes, nold, KEEP_EVEN, yheld, NULL);
                long found;
                double ns = collect_ns(0, &found);
                if (b >= 0) {
                    fv[nf++] = ns;
                    found_sum += found;
                }
                drop_all(yheld, nh);
                frt_gc_collect(1);
            }
            if (cpy) {
                uint64_t seed = g_seed + 1000003u * (uint64_t)(b + 1);
                if (peer_cmd(&g_peer[P_CPY], "young %zu %llu %d", ny, (unsigned long long)seed, per) == 0) {
                    if (b >= 0) {
                        char *p = g_peer[P_CPY].line, *end;
                        for (int k = 0; k < per && nc < total; k++) {
                            double v = strtod(p, &end);
                            if (end == p)
                                break;
                            cv[nc++] = v;
                            p = end;
                        }
                    }
                } else {
                    cpy = 0;
                }
            }
        }
        drop_all(oheld, noheld);
        collect_ns(2, NULL);
        free(oheld);
        free(onodes);
        if (g_have[P_CPY])
            peer_cmd(&g_peer[P_CPY], "dropold");
        found_frt[s] = nf ? (double)found_sum / nf : 0;

        double *vs[2] = {fv, cv};
        int ns_[2] = {nf, nc};
        for (int c = 0; c < 2; c++) {
            if (!ns_[c])
                continue;
            for (int i = 0; i < ns_[c]; i++)
                vs[c][i] /= 1e3;
            qsort(vs[c], (size_t)ns_[c], sizeof(double), cmp_double);
            double med = ns_[c] % 2 ? vs[c][ns_[c] / 2] : (vs[c][ns_[c] / 2 - 1] + vs[c][ns_[c] / 2]) / 2;
            double p99 = bench_percentile_sorted(vs[c], (size_t)ns_[c], 99);
            R.young_med[s][c] = med;
            R.young_p99[s][c] = p99;
            R.young_ok[s][c] = 1;
            char fbuf[32] = "";
            if (c == 0)
                snprintf(fbuf, sizeof fbuf, "%.0f", found_frt[s]);
            printf("%-12zu %-20s %10.1f %10.1f %10.1f %12s\n", nold,
                   c == 0 ? "frt" : g_peer[P_CPY].label, med, p99, vs[c][ns_[c] - 1], fbuf);
        }
        if (R.young_ok[s][0] && R.young_ok[s][1])
            printf("%-12s frt / CPython          median %.2fx, p99 %.2fx\n", "",
                   R.young_med[s][0] / R.young_med[s][1], R.young_p99[s][0] / R.young_p99[s][1]);
    }
    for (int c = 0; c < 2; c++)
        if (R.young_ok[0][c] && R.young_ok[1][c])
            printf("growth from %zu to %zu old: %-8s median %.2fx, p99 %.2fx\n", g_old_small, g_old_large,
                   c == 0 ? "frt" : "CPython", R.young_med[1][c] / R.young_med[0][c],
                   R.young_p99[1][c] / R.young_p99[0][c]);
    R.sec2 = 1;
    free(fv);
    free(cv);
    free(yheld);
}

/* ------------------------------------------------------------------ */
/* 3. Pauses of automatic collections.                                */

#define LONG_LIVED 2048
#define MAX_PAUSES (1u << 20)

typedef struct pause_rec {
    uint32_t gen;
    uint64_t ns;
} pause_rec;

static pause_rec *g_pauses;
static _Atomic size_t g_npauses;
static _Atomic int g_stop;
static _Atomic uint64_t g_allocs;

static void pause_cb(int phase, const frt_gc_info *info, void *ctx)
{
    (void)ctx;
    if (phase != FRT_GC_STOP)
        return;
    size_t i = atomic_fetch_add_explicit(&g_npauses, 1, memory_order_relaxed);
    if (i < MAX_PAUSES) {
        g_pauses[i].gen = (uint32_t)info->generation;
        g_pauses[i].ns = info->pause_ns;
    }
}

static frt_object *new_ring(size_t k, frt_object *cross)
{
    node *first = new_node(), *prev = first;
    for (size_t i = 1; i < k; i++) {
        node *n = new_node();
        prev->next = &n->ob; /* the creation reference moves into the ring */
        prev = n;
    }
    prev->next = frt_newref(&first->ob);
    first->cross = cross ? frt_newref(cross) : NULL;
    return &first->ob;
}

static void *pause_worker(void *arg)
{
    uint64_t x = g_seed ^ (uintptr_t)arg;
    if (frt_thread_attach() != 0)
        die("frt_thread_attach failed");
    frt_object **keep = calloc(LONG_LIVED, sizeof *keep);
    if (!keep)
        die("out of memory");
    for (size_t i = 0; i < LONG_LIVED; i++)
        keep[i] = new_ring(2, NULL);
    uint64_t allocs = 2 * LONG_LIVED;
    for (uint64_t it = 0; !atomic_load_explicit(&g_stop, memory_order_relaxed); it++) {
        x = lcg(x);
        size_t k = 3 + (size_t)((x >> 33) % 6);
        frt_object *ring = new_ring(k, keep[(x >> 40) % LONG_LIVED]);
        frt_decref(ring); /* a garbage cycle now */
        allocs += k;
        if (it % 32 == 31) {
            x = lcg(x);
            size_t slot = (size_t)((x >> 33) % LONG_LIVED);
            frt_object *old = keep[slot];
            keep[slot] = new_ring(2, NULL);
            frt_decref(old);
            allocs += 2;
        }
    }
    for (size_t i = 0; i < LONG_LIVED; i++)
        frt_decref(keep[i]);
    free(keep);
    atomic_fetch_add(&g_allocs, allocs);
    frt_thread_detach();
    return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void section_pauses(void)
{
    g_pauses = malloc(MAX_PAUSES * sizeof *g_pauses);
    uint64_t *v = malloc(MAX_PAUSES * sizeof *v);
    if (!g_pauses || !v)
        die("out of memory");
    frt_gc_collect(2);
    frt_gc_stats before[3], after[3];
    frt_gc_get_stats(before);
    frt_gc_set_threshold(700, 10, 10);
    if (g_gc_debug)
        frt_gc_set_debug(FRT_GC_DEBUG_STATS);
    frt_gc_enable();
    if (frt_gc_callback_add(pause_cb, NULL) != 0)
        die("frt_gc_callback_add failed");
    atomic_store(&g_stop, 0);
    atomic_store(&g_npauses, 0);
    atomic_store(&g_allocs, 0);
    pthread_t th[64];
    int nt = g_pause_threads;
    uint64_t t0 = bench_now_ns();
    for (int i = 0; i < nt; i++)
        if (pthread_create(&th[i], NULL, pause_worker, (void *)(uintptr_t)((uint64_t)(i + 1) * 0x9e3779b97f4a7c15u)))
            die("pthread_create failed");
    /* This thread holds no objects while it waits: a blocking section, so
     * the workers' collections do not wait for it. */
    frt_blocking_begin();
    struct timespec ts = {(time_t)g_pause_seconds,
                          (long)((g_pause_seconds - (double)(time_t)g_pause_seconds) * 1e9)};
    nanosleep(&ts, NULL);
    atomic_store(&g_stop, 1);
    for (int i = 0; i < nt; i++)
        pthread_join(th[i], NULL);
    frt_blocking_end();
    double secs = (double)(bench_now_ns() - t0) / 1e9;
    frt_gc_callback_remove(pause_cb, NULL);
    frt_gc_disable();
    frt_gc_set_debug(0);
    frt_gc_get_stats(after);
    size_t np = atomic_load(&g_npauses);
    if (np > MAX_PAUSES)
        np = MAX_PAUSES;

    printf("\n## 3. pauses of automatic collections (thresholds 700,10,10): %d threads allocating for %.1f s\n",
           nt, secs);
    printf("# per thread: rings of 3..8 nodes dropped at once (one cross link into the long-lived set);"
           "\n# every 32nd iteration a 2-node ring replaces one of %d long-lived rings."
           " Pause = world stopped (info.pause_ns).\n",
           LONG_LIVED);
    printf("# %.1f M objects allocated (%.1f M/s)\n", (double)atomic_load(&g_allocs) / 1e6,
           (double)atomic_load(&g_allocs) / 1e6 / secs);
    printf("%-12s %10s %10s %10s %10s %10s %14s %10s\n", "generation", "runs", "median us", "p99 us",
           "max us", "runs/s", "collected", "freed/run");
    for (int g = -1; g < 3; g++) {
        size_t k = 0;
        for (size_t i = 0; i < np; i++)
            if (g < 0 || (int)g_pauses[i].gen == g)
                v[k++] = g_pauses[i].ns;
        uint64_t coll = 0;
        for (int j = 0; j < 3; j++)
            if (g < 0 || g == j)
                coll += after[j].collected - before[j].collected;
        char name[16];
        snprintf(name, sizeof name, g < 0 ? "all" : "%d", g);
        if (!k) {
            printf("%-12s %10s\n", name, "0");
            continue;
        }
        qsort(v, k, sizeof *v, cmp_u64);
        double dv[3] = {(double)v[(k - 1) / 2], 0, (double)v[k - 1]};
        double *dd = malloc(k * sizeof *dd);
        if (!dd)
            die("out of memory");
        for (size_t i = 0; i < k; i++)
            dd[i] = (double)v[i];
        dv[1] = bench_percentile_sorted(dd, k, 99);
        free(dd);
        printf("%-12s %10zu %10.1f %10.1f %10.1f %10.1f %14llu %10.0f\n", name, k, dv[0] / 1e3, dv[1] / 1e3,
               dv[2] / 1e3, (double)k / secs, (unsigned long long)coll, (double)coll / (double)k);
    }
    uint64_t runs = 0, total = 0, post = 0;
    for (int j = 0; j < 3; j++) {
        runs += after[j].collections - before[j].collections;
        total += after[j].pause_ns_total - before[j].pause_ns_total;
        post += after[j].postponed - before[j].postponed;
    }
    printf("# frt_gc_get_stats over the section: %llu runs, mean pause %.1f us, %llu postponed for lack"
           " of work memory\n",
           (unsigned long long)runs, runs ? (double)total / (double)runs / 1e3 : 0.0, (unsigned long long)post);
    printf("# freed/run near threshold 0 (700) means runs come when they should; far above it, runs\n"
           "# came late and each inherited the allocations of a whole previous run\n");
    free(g_pauses);
    free(v);
}

/* ------------------------------------------------------------------ */

static void print_targets(void)
{
    printf("\n## targets (docs/benchmarks.md)\n");
    if (R.sec1 && g_have[P_CPY] && R.live[1 + P_CPY].ok) {
        double rl = R.live[0].med / R.live[1 + P_CPY].med, rg = R.garbage[0].med / R.garbage[1 + P_CPY].med;
        printf("full collection, live:    frt at most 0.5x CPython's ns/object     %6.2fx  %s\n", rl,
               rl <= 0.5 ? "MET" : "MISSED");
        printf("full collection, garbage: frt at most 0.5x CPython's ns/object     %6.2fx  %s\n", rg,
               rg <= 0.5 ? "MET" : "MISSED");
    } else if (R.sec1) {
        printf("full collection vs CPython: not measured (no CPython baseline)\n");
    }
    if (R.sec1 && g_have[P_BOEHM1] && R.live[1 + P_BOEHM1].ok) {
        double r = R.live[0].med / R.live[1 + P_BOEHM1].med;
        printf("live marking faster than Boehm's single marker (frt / Boehm)      %6.2fx  %s\n", r,
               r < 1.0 ? "MET" : "MISSED");
    } else if (R.sec1) {
        printf("live marking vs Boehm: not measured (%s)\n",
               BENCH_GC_HAVE_BOEHM ? "frt-bench-gc-boehm did not run" : "built without libgc");
    }
    if (R.sec2) {
        for (int s = 0; s < 2; s++) {
            if (R.young_ok[s][0] && R.young_ok[s][1]) {
                double r = R.young_med[s][0] / R.young_med[s][1];
                printf("gen-0 beside %8zu old: faster than CPython (median frt/CPython) %5.2fx  %s\n",
                       s ? g_old_large : g_old_small, r, r < 1.0 ? "MET" : "MISSED");
            }
        }
        if (R.young_ok[0][0] && R.young_ok[1][0]) {
            double g = R.young_med[1][0] / R.young_med[0][0];
            printf("gen-0 growth from %zu to %zu old at most 1.5x (frt, median)   %5.2fx  %s\n", g_old_small,
                   g_old_large, g, g <= 1.5 ? "MET" : "MISSED");
        }
    }
    printf("# design anchors (CPython 3.11 measured earlier on this machine type): full 143 / 221"
           " ns/object\n# live / garbage, gen-0 16 / 43 us; Boehm one marker 65-78 ns/object. The ratios"
           " above use the\n# baselines measured in this run.\n");
}

static const char usage[] =
    "usage: frt-bench-gc [options]\n"
    "  --objects N        objects in section 1's graph (default 1000000)\n"
    "  --reps R           timed repetitions per full-collection figure (default 5)\n"
    "  --young N          young objects per generation-0 run (default 700)\n"
    "  --old-small N      old objects beside them, small heap (default 10000)\n"
    "  --old-large N      old objects beside them, large heap (default --objects)\n"
    "  --young-runs N     generation-0 runs per heap size (default 400)\n"
    "  --pause-threads T  allocating threads in section 3 (default: online CPUs, at least 2)\n"
    "  --pause-seconds S  length of section 3 (default 3)\n"
    "  --seed S           graph seed (default 20240611)\n"
    "  --only LIST        sections to run, e.g. 12 (default 123)\n"
    "  --quick            a tiny run for tests: 20000 objects, 3 reps, 60 young runs, 0.3 s\n"
    "  --python PATH      interpreter for the CPython baseline (default /usr/bin/python3)\n"
    "  --script PATH      the CPython script (default the source tree's)\n"
    "  --no-cpython, --no-boehm   skip a baseline\n"
    "  --gc-debug         FRT_GC_DEBUG_STATS during section 3 (one line per collection on stderr)\n";

int main(int argc, char **argv)
{
    static const char *const flags[] = {"--quick", "--no-cpython", "--no-boehm", "--gc-debug", "--help", "-h", NULL};
    static const char *const valued[] = {"--objects",       "--reps",          "--young", "--old-small",
                                         "--old-large",     "--young-runs",    "--seed",  "--only",
                                         "--pause-threads", "--pause-seconds", "--python", "--script",
                                         NULL};
    bench_check_args(argc, argv, flags, valued, usage);
    int quick = bench_flag(argc, argv, "--quick");
    if (quick) {
        g_objects = 20000;
        g_reps = 3;
        g_young_runs = 60;
        g_pause_seconds = 0.3;
    }
    g_objects = (size_t)bench_opt_long(argc, argv, "--objects", (long)g_objects);
    g_reps = (int)bench_opt_long(argc, argv, "--reps", g_reps);
    g_young = (size_t)bench_opt_long(argc, argv, "--young", (long)g_young);
    g_old_small = (size_t)bench_opt_long(argc, argv, "--old-small", (long)(quick ? 2000 : g_old_small));
    g_old_large = (size_t)bench_opt_long(argc, argv, "--old-large", (long)g_objects);
    g_young_runs = (int)bench_opt_long(argc, argv, "--young-runs", g_young_runs);
    g_seed = (uint64_t)bench_opt_long(argc, argv, "--seed", (long)g_seed);
    g_pause_threads = (int)bench_opt_long(argc, argv, "--pause-threads", bench_ncpus() < 2 ? 2 : bench_ncpus());
    const char *ps = bench_opt(argc, argv, "--pause-seconds");
    if (ps)
        g_pause_seconds = atof(ps);
    if (bench_opt(argc, argv, "--only"))
        g_only = bench_opt(argc, argv, "--only");
    if (bench_opt(argc, argv, "--script"))
        g_script = bench_opt(argc, argv, "--script");
    g_python = bench_opt(argc, argv, "--python");
    if (!g_python)
        g_python = access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
    g_use_cpython = !bench_flag(argc, argv, "--no-cpython");
    g_use_boehm = !bench_flag(argc, argv, "--no-boehm");
    g_gc_debug = bench_flag(argc, argv, "--gc-debug");
    if (g_objects < RING || g_reps < 1 || g_reps > MAX_REPS || g_young < RING || g_young_runs < 1 ||
        g_old_small < 1 || g_old_large < 1 || g_pause_threads < 1 || g_pause_threads > 64 ||
        g_pause_seconds <= 0)
        die("an option is out of range (see --help)");
    signal(SIGPIPE, SIG_IGN);

    /* The baselines start first: an idle child costs nothing, and spawning
     * before frt's heap is large keeps the fork cheap. */
    if (g_use_cpython) {
        char *av[] = {(char *)g_python, (char *)g_script, NULL};
        if (peer_start(&g_peer[P_CPY], "CPython", av) == 0 && peer_cmd(&g_peer[P_CPY], "hello") == 0) {
            snprintf(g_peer[P_CPY].desc, sizeof g_peer[P_CPY].desc, "%s (%s %s)", g_peer[P_CPY].line,
                     g_python, g_script);
            static char lbl[64];
            snprintf(lbl, sizeof lbl, "%.40s", g_peer[P_CPY].line);
            g_peer[P_CPY].label = lbl;
            g_have[P_CPY] = 1;
        }
    }
    char boehm_path[4096] = "";
    if (g_use_boehm && BENCH_GC_HAVE_BOEHM) {
        char self[4096];
        ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
        if (len > 0) {
            self[len] = 0;
            snprintf(boehm_path, sizeof boehm_path, "%s/frt-bench-gc-boehm", dirname(self));
        }
        static const char *const markers[2] = {"1", "2"};
        static char lbls[2][64];
        for (int m = 0; m < 2; m++) {
            char *av[] = {boehm_path, "--markers", (char *)markers[m], NULL};
            peer *p = &g_peer[P_BOEHM1 + m];
            if (boehm_path[0] && peer_start(p, m ? "Boehm, 2 markers" : "Boehm, 1 marker", av) == 0 &&
                peer_cmd(p, "hello") == 0) {
                snprintf(p->desc, sizeof p->desc, "%s", p->line);
                const char *comma = strchr(p->line, ',');
                snprintf(lbls[m], sizeof lbls[m], "Boehm%s", comma ? comma : "");
                p->label = lbls[m];
                g_have[P_BOEHM1 + m] = 1;
            }
        }
    }

    frt_config cfg;
    frt_config_default(&cfg);
    cfg.gc_enabled = 0; /* sections 1 and 2 collect explicitly; 3 turns it on */
    if (frt_init(&cfg) != 0)
        die("frt_init failed");

    bench_print_machine("frt-bench-gc: cycle collection against CPython's gc and the Boehm GC");
    printf("# frt node: %zu bytes (32-byte header + next + cross); seed %llu\n", sizeof(node),
           (unsigned long long)g_seed);
    for (int k = 0; k < NPEERS; k++) {
        if (g_have[k])
            printf("# baseline %s: %s\n", g_peer[k].label, g_peer[k].desc);
        else if (k == P_CPY)
            printf("# baseline CPython: %s\n", g_use_cpython ? "could not be started (see stderr)" : "skipped (--no-cpython)");
        else if (k == P_BOEHM1)
            printf("# baseline Boehm: %s\n",
                   !g_use_boehm ? "skipped (--no-boehm)"
                   : BENCH_GC_HAVE_BOEHM ? "frt-bench-gc-boehm could not be started"
                                         : "not built (libgc / pkg-config bdw-gc missing at configure time)");
    }
    printf("# method: repetitions interleave frt and the baselines; time is around the collection"
           " call only\n");
    if (bench_sanitized())
        printf("# sanitizer build: the figures are meaningless\n");
    fflush(stdout);

    if (strchr(g_only, '1')) {
        section_full();
        fflush(stdout);
    }
    if (strchr(g_only, '2')) {
        section_young();
        fflush(stdout);
    }
    for (int k = 0; k < NPEERS; k++)
        if (g_have[k])
            peer_stop(&g_peer[k]);
    if (strchr(g_only, '3')) {
        section_pauses();
        fflush(stdout);
    }
    print_targets();
    int alive = frt_shutdown();
    if (alive != 0) {
        fprintf(stderr, "frt_shutdown: %d objects still alive\n", alive);
        return 1;
    }
    return 0;
}
