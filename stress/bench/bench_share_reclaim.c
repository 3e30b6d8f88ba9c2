/* frt-bench-share rows for lock-free reads (stress/bench/bench_share.h):
 *   ref_load      frt_ref_load + frt_decref   vs a non-owner incref+decref pair (target <= 2x)
 *   map_mix       frt_map get 90% / set 10% over 1M keys, 1 and 2 threads
 *                 vs a 64-way mutex-sharded map (targets >= 1.0x, >= 1.5x)
 *   map_readers   2 reader threads vs 1 on distinct keys (target >= 1.7x)
 *   reclaim       bytes waiting for a grace period while a thread sits in a
 *                 blocking section, against the documented bound
 * Each row interleaves its variants and takes medians (bench_common.h). */
#include <frt/frt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_common.h"
#include "bench_share.h"

typedef struct bval {
    frt_object ob;
    uint64_t v;
} bval;
static const frt_type bval_type = {"bench.value", sizeof(bval), NULL, NULL, NULL, NULL};

static frt_object *bval_new(uint64_t v)
{
    bval *b = (bval *)frt_new(&bval_type);
    b->v = v;
    return &b->ob;
}

/* ------------------------------------------------------------------ */
/* ref_load                                                           */

static frt_ref ref_slot;
static frt_object *ref_obj;

static void loop_ref_load(void *arg, size_t n)
{
    (void)arg;
    for (size_t i = 0; i < n; i++) {
        frt_object *o = frt_ref_load(&ref_slot);
        bench_escape(o);
        frt_decref(o);
    }
}

static void loop_pair(void *arg, size_t n)
{
    (void)arg;
    for (size_t i = 0; i < n; i++) {
        frt_incref(ref_obj);
        bench_escape(ref_obj);
        frt_decref(ref_obj);
    }
}

static void row_ref_load(const share_ctx *ctx)
{
    /* Made by this thread, then shared: every count is the atomic,
     * non-owner one, as for a field another thread filled. */
    ref_obj = bval_new(1);
    frt_make_shared(ref_obj);
    frt_ref_init(&ref_slot, ref_obj);
    bench_variant v[2] = {{"ref_load+decref", loop_ref_load, NULL, 0, 0, {0}},
                          {"non-owner incref+decref", loop_pair, NULL, 0, 0, {0}}};
    bench_run_variants(v, 2, ctx->reps, ctx->target_ns);
    printf("\n## frt_ref_load + decref vs a non-owner incref+decref pair, one thread (ns per pair)\n");
    bench_share_print(ctx, v, 2, "ref_load+decref / incref+decref", 2.0);
    frt_ref_clear(&ref_slot);
    frt_decref(ref_obj);
}
BENCH_SHARE_ROW(40, row_ref_load)

/* ------------------------------------------------------------------ */
/* The baseline: 64 shards, each a pthread mutex and an open-addressing */
/* table of uint64 keys -> objects, as a user would write it.          */

#define SHARDS 64

typedef struct shard {
    _Alignas(64) pthread_mutex_t mu;
    uint64_t *keys; /* 0: empty (keys are >= 1) */
    frt_object **vals;
    size_t cap;
} shard;

typedef struct sharded {
    shard s[SHARDS];
} sharded;

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x;
}

static void shard_lock(shard *s)
{
    /* Waiting belongs in a blocking section (a stop of the world must not
     * wait for us); the fast path does not pay for it. */
    if (pthread_mutex_trylock(&s->mu) == 0)
        return;
    frt_blocking_begin();
    pthread_mutex_lock(&s->mu);
    frt_blocking_end();
}

static size_t shard_find(shard *s, uint64_t k)
{
    size_t i = (mix64(k) >> 6) & (s->cap - 1);
    while (s->keys[i] && s->keys[i] != k)
        i = (i + 1) & (s->cap - 1);
    return i;
}

static sharded *sharded_new(size_t nkeys)
{
    sharded *m = calloc(1, sizeof *m);
    size_t cap = 1;
    while (cap < 2 * nkeys / SHARDS + 16)
        cap <<= 1;
    for (int i = 0; i < SHARDS; i++) {
        pthread_mutex_init(&m->s[i].mu, NULL);
        m->s[i].cap = cap;
        m->s[i].keys = calloc(cap, sizeof(uint64_t));
        m->s[i].vals = calloc(cap, sizeof(frt_object *));
    }
    return m;
}

static frt_object *sharded_get(sharded *m, uint64_t k)
{
    shard *s = &m->s[mix64(k) & (SHARDS - 1)];
    shard_lock(s);
    frt_object *v = s->vals[shard_find(s, k)];
    if (v)
        frt_incref(v);
    pthread_mutex_unlock(&s->mu);
    return v;
}

static void sharded_set(sharded *m, uint64_t k, frt_object *v)
{
    shard *s = &m->s[mix64(k) & (SHARDS - 1)];
    frt_incref(v);
    shard_lock(s);
    size_t i = shard_find(s, k);
    frt_object *old = s->vals[i];
    s->keys[i] = k;
    s->vals[i] = v;
    pthread_mutex_unlock(&s->mu);
    if (old)
        frt_decref(old); /* after unlocking: a destroy must not run under the lock */
}

static void sharded_free(sharded *m)
{
    for (int i = 0; i < SHARDS; i++) {
        for (size_t j = 0; j < m->s[i].cap; j++)
            if (m->s[i].vals[j])
                frt_decref(m->s[i].vals[j]);
        free(m->s[i].keys);
        free(m->s[i].vals);
        pthread_mutex_destroy(&m->s[i].mu);
    }
    free(m);
}

/* ------------------------------------------------------------------ */
/* Threads running a mix for a fixed time.                             */

typedef struct mix_run {
    frt_map *map;     /* one of the two */
    sharded *sh;
    uint64_t nkeys;
    unsigned write_pct;
    unsigned threads;
    int distinct;     /* readers on disjoint key ranges */
    double seconds;
    bench_barrier start;
    _Atomic int stop;
    _Atomic uint64_t ops;
    _Atomic uint64_t cpu_ns; /* CPU time of the threads while timed */
} mix_run;

static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

typedef struct mix_arg {
    mix_run *r;
    unsigned index;
} mix_arg;

/* n operations of r's mix on keys base+1 .. base+span. A set stores a new
 * value (the old one dies: the map's through QSBR, the baseline's at once),
 * so every key keeps a value of its own: what a get touches does not
 * depend on how many sets either side managed before (a value shared by
 * the keys set so far would make the faster side's later gets cheaper). */
static void mix_ops(const mix_run *r, uint64_t *xp, uint64_t base, uint64_t span, long n)
{
    uint64_t x = *xp;
    for (long i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        uint64_t k = 1 + base + x % span;
        if ((x >> 40) % 100 < r->write_pct) {
            frt_object *v = bval_new(k);
            if (r->map)
                frt_map_set(r->map, &k, sizeof k, v);
            else
                sharded_set(r->sh, k, v);
            frt_decref(v);
        } else {
            frt_object *v = r->map ? frt_map_get(r->map, &k, sizeof k) : sharded_get(r->sh, k);
            bench_escape(v);
            frt_xdecref(v);
        }
    }
    *xp = x;
}

static void *mix_thread(void *p)
{
    mix_arg *a = p;
    mix_run *r = a->r;
    frt_thread_attach();
    uint64_t x = 0x9e3779b97f4a7c15ull * (a->index + 1), n = 0;
    uint64_t span = r->distinct ? r->nkeys / r->threads : r->nkeys;
    uint64_t base = r->distinct ? span * a->index : 0;
    bench_barrier_wait(&r->start);
    uint64_t cpu0 = thread_cpu_ns();
    while (!atomic_load_explicit(&r->stop, memory_order_relaxed)) {
        mix_ops(r, &x, base, span, 64);
        n += 64;
        frt_safepoint();
    }
    atomic_fetch_add(&r->cpu_ns, thread_cpu_ns() - cpu0);
    atomic_fetch_add(&r->ops, n);
    frt_blocking_begin(); /* main joins us meanwhile */
    frt_blocking_end();
    frt_thread_detach();
    return NULL;
}

/* Mops/s of all threads together (wall clock); *per_cpu: Mops per
 * CPU-second of the threads, which other load on the machine lowers less. */
static double mix_mops(mix_run *r, double *per_cpu)
{
    pthread_t t[8];
    mix_arg a[8];
    atomic_store(&r->stop, 0);
    atomic_store(&r->ops, 0);
    atomic_store(&r->cpu_ns, 0);
    bench_barrier_init(&r->start, r->threads + 1);
    for (unsigned i = 0; i < r->threads; i++) {
        a[i] = (mix_arg){r, i};
        pthread_create(&t[i], NULL, mix_thread, &a[i]);
    }
    frt_blocking_begin();
    bench_barrier_wait(&r->start);
    uint64_t t0 = bench_now_ns();
    usleep((useconds_t)(r->seconds * 1e6)); /* off the CPUs the threads measure on */
    atomic_store(&r->stop, 1);
    uint64_t t1 = bench_now_ns();
    for (unsigned i = 0; i < r->threads; i++)
        pthread_join(t[i], NULL);
    frt_blocking_end();
    double ops = (double)atomic_load(&r->ops);
    *per_cpu = ops / ((double)atomic_load(&r->cpu_ns) / 1e3);
    return ops / ((double)(t1 - t0) / 1e3);
}

static void fill(frt_map *m, sharded *sh, uint64_t nkeys)
{
    for (uint64_t k = 1; k <= nkeys; k++) {
        frt_object *v = bval_new(k);
        if (m)
            frt_map_set(m, &k, sizeof k, v);
        else
            sharded_set(sh, k, v);
        frt_decref(v);
        if ((k & 1023) == 0)
            frt_safepoint();
    }
}

/* KiB of this process's memory on transparent huge pages (the map asks
 * for them for its array, the baseline's arrays are plain allocations):
 * printed, since a run where the kernel had none to give differs. */
static long huge_kib(void)
{
    FILE *f = fopen("/proc/self/smaps_rollup", "r");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "AnonHugePages: %ld kB", &kib) == 1)
            break;
    if (f)
        fclose(f);
    return kib;
}

/* reps runs of a and b, the order alternating (a first in even reps, b in
 * odd ones: neither side always starts after the other filled the caches),
 * each run as long as the other. Medians of each side, and the median of
 * the per-repetition ratios a/b (a burst of outside load mostly hits both
 * runs of one repetition). */
typedef struct paired {
    double a, b, ratio;          /* Mops/s */
    double a_cpu, b_cpu, r_cpu;  /* Mops per CPU-second */
} paired;

static paired run_paired(mix_run *ra, mix_run *rb, int reps)
{
    double a[16], b[16], ac[16], bc[16], r[16], rc[16];
    for (int i = 0; i < reps; i++) {
        if (i % 2 == 0) {
            a[i] = mix_mops(ra, &ac[i]);
            b[i] = mix_mops(rb, &bc[i]);
        } else {
            b[i] = mix_mops(rb, &bc[i]);
            a[i] = mix_mops(ra, &ac[i]);
        }
        r[i] = a[i] / b[i];
        rc[i] = ac[i] / bc[i];
    }
    size_t n = (size_t)reps;
    return (paired){bench_median(a, n),  bench_median(b, n),  bench_median(r, n),
                    bench_median(ac, n), bench_median(bc, n), bench_median(rc, n)};
}

#define MIX_REPS 9

static void row_map_mix(const share_ctx *ctx)
{
    int quick = ctx->quick;
    printf("\n## frt_map 90%% get / 10%% set vs a 64-way mutex-sharded map (Mops/s)\n");
    uint64_t nkeys = quick ? 20000 : 1000000;
    frt_map *m = frt_map_new(0, NULL);
    sharded *sh = sharded_new(nkeys);
    fill(m, NULL, nkeys);
    fill(NULL, sh, nkeys);
    int reps = quick ? 1 : MIX_REPS;
    printf("# %d repetitions of %.1f s per side, order alternating; ratio: median of the "
           "per-repetition ratios; %ld KiB on huge pages\n",
           reps, quick ? 0.1 : 0.3, huge_kib());
    for (unsigned th = 1; th <= 2; th++) {
        mix_run rm = {.map = m, .nkeys = nkeys, .write_pct = 10, .threads = th, .seconds = quick ? 0.1 : 0.3};
        mix_run rs = {.sh = sh, .nkeys = nkeys, .write_pct = 10, .threads = th, .seconds = quick ? 0.1 : 0.3};
        paired p = run_paired(&rm, &rs, reps);
        printf("map_mix      %u thread%s, %llu keys, 90%% get/10%% set: frt_map %.2f Mops/s   64-way "
               "mutex-sharded %.2f Mops/s   ratio %.2fx (target >= %s)\n",
               th, th > 1 ? "s" : "", (unsigned long long)nkeys, p.a, p.b, p.ratio,
               th == 1 ? "1.0x" : "1.5x");
        printf("             per CPU-second of the threads: frt_map %.2f Mops   mutex-sharded %.2f Mops"
               "   ratio %.2fx\n", p.a_cpu, p.b_cpu, p.r_cpu);
    }
    frt_decref((frt_object *)m);
    sharded_free(sh);
}
BENCH_SHARE_ROW(50, row_map_mix)

/* map_ops: the mix on one thread, a fixed number of operations on each
 * map, in functions an instruction counter can single out:
 *   valgrind --tool=callgrind --cache-sim=yes --LL=33554432,16,64 --collect-atstart=no \
 *     --toggle-collect='ops_*' build/release/stress/frt-bench-share --only map_ops
 * then callgrind_annotate: each function's count over MAP_OPS. */
#define MAP_OPS 300000L

__attribute__((noinline)) static void mix_ops_fixed(const mix_run *r)
{
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (long done = 0; done < MAP_OPS; done += 64) {
        mix_ops(r, &x, 0, r->nkeys, 64);
        frt_safepoint();
    }
}

/* One name per map for the counter (the nop keeps the two apart). */
__attribute__((noinline)) static void ops_frt_map(const mix_run *r)
{
    mix_ops_fixed(r);
}

__attribute__((noinline)) static void ops_sharded(const mix_run *r)
{
    __asm__ volatile("nop");
    mix_ops_fixed(r);
}

static void row_map_ops(const share_ctx *ctx)
{
    uint64_t nkeys = ctx->quick ? 20000 : 1000000;
    printf("\n## frt_map vs 64-way mutex-sharded map, 90%% get / 10%% set, one thread, %ld ops each "
           "(for an instruction counter)\n", MAP_OPS);
    frt_map *m = frt_map_new(0, NULL);
    sharded *sh = sharded_new(nkeys);
    fill(m, NULL, nkeys);
    fill(NULL, sh, nkeys);
    mix_run rm = {.map = m, .nkeys = nkeys, .write_pct = 10};
    mix_run rs = {.sh = sh, .nkeys = nkeys, .write_pct = 10};
    uint64_t t0 = bench_now_ns();
    ops_frt_map(&rm);
    uint64_t t1 = bench_now_ns();
    ops_sharded(&rs);
    uint64_t t2 = bench_now_ns();
    printf("map_ops      frt_map %.1f ns/op   mutex-sharded %.1f ns/op (wall clock, one pass: for "
           "information)\n", (double)(t1 - t0) / MAP_OPS, (double)(t2 - t1) / MAP_OPS);
    frt_decref((frt_object *)m);
    sharded_free(sh);
}
BENCH_SHARE_ROW(55, row_map_ops)

static void row_map_readers(const share_ctx *ctx)
{
    int quick = ctx->quick;
    printf("\n## frt_map get only, 2 readers vs 1 on distinct keys (Mops/s)\n");
    uint64_t nkeys = quick ? 20000 : 1000000;
    frt_map *m = frt_map_new(0, NULL);
    fill(m, NULL, nkeys);
    mix_run r2 = {.map = m, .nkeys = nkeys, .threads = 2, .distinct = 1, .seconds = quick ? 0.1 : 0.3};
    mix_run r1 = {.map = m, .nkeys = nkeys, .threads = 1, .distinct = 1, .seconds = quick ? 0.1 : 0.3};
    paired p = run_paired(&r2, &r1, quick ? 1 : MIX_REPS);
    printf("map_readers  get only, distinct keys: 1 reader %.2f Mops/s   2 readers %.2f Mops/s   "
           "ratio %.2fx (target >= 1.7x; %ld CPUs)\n", p.b, p.a, p.ratio, bench_ncpus());
    /* Readers that share nothing keep their per-CPU speed: 2 readers on 2
     * idle CPUs then give twice the throughput of one. */
    printf("             per CPU-second: 1 reader %.2f Mops   2 readers %.2f Mops   ratio %.2fx (1.0x: "
           "no slowdown from sharing)\n", p.b_cpu, p.a_cpu, p.r_cpu);
    frt_decref((frt_object *)m);
}
BENCH_SHARE_ROW(60, row_map_readers)

/* ------------------------------------------------------------------ */
/* reclaim                                                             */

static _Atomic int sleeper_done;

static void *sleeper(void *arg)
{
    (void)arg;
    frt_thread_attach();
    frt_blocking_begin();
    while (!atomic_load(&sleeper_done))
        usleep(1000);
    frt_blocking_end();
    frt_thread_detach();
    return NULL;
}

static void row_reclaim(const share_ctx *ctx)
{
    int quick = ctx->quick;
    printf("\n## memory waiting for a grace period while a thread is blocked\n");
    frt_heap_trim(); /* what earlier rows left waiting is not this row's */
    pthread_t t;
    atomic_store(&sleeper_done, 0);
    pthread_create(&t, NULL, sleeper, NULL);
    frt_ref slot = FRT_REF_INIT;
    size_t most = 0;
    uint64_t frees = 0, t0 = bench_now_ns(), dur = quick ? 200000000ull : 3000000000ull;
    while (bench_now_ns() - t0 < dur) {
        for (int i = 0; i < 256; i++, frees++) {
            frt_object *o = bval_new(frees);
            frt_ref_store(&slot, o);
            frt_decref(o);
            frt_safepoint();
        }
        frt_heap_stats st;
        frt_heap_get_stats(&st);
        if (st.reclaim_waiting_bytes > most)
            most = st.reclaim_waiting_bytes;
    }
    atomic_store(&sleeper_done, 1);
    frt_blocking_begin();
    pthread_join(t, NULL);
    frt_blocking_end();
    frt_ref_clear(&slot);
    printf("reclaim      one thread blocked for %.1f s while %llu published objects died (one per "
           "safepoint): at most %zu KiB waited for a grace period; bound: reclaim_limit %d KiB + 256 "
           "blocks per thread (+%zu KiB)\n", (double)dur / 1e9, (unsigned long long)frees,
           most >> 10, 8192, (size_t)256 * 32 * 2 >> 10);
}
BENCH_SHARE_ROW(70, row_reclaim)
