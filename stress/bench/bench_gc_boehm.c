/* frt-bench-gc-boehm: the Boehm-Demers-Weiser GC baseline for frt-bench-gc.
 *
 * A separate program because libgc scans the stacks and static data of its
 * whole process and stops the threads it knows with signals: next to frt's
 * own threads and stop-the-world that would measure neither fairly.
 * frt-bench-gc starts it (once per marker count) and drives it over
 * stdin/stdout with the same line protocol as stress/bench/bench_gc_cpython.py,
 * so the repetitions interleave with frt's.
 *
 * The graph is the one frt-bench-gc and the Python script build, node for
 * node (rings of 10, one cross link per node from the same 64-bit LCG), out
 * of the struct a C programmer would write for Boehm: two pointers, 16
 * bytes, GC_MALLOC'd (scanned conservatively; frt's node is its 32-byte
 * header plus the same two pointers). "Live" keeps the ring heads in a
 * GC_MALLOC'd array reachable from a static root; "garbage" drops it.
 *
 * Commands: hello | live N SEED | collect | drop | garbage N SEED | quit.
 * "live" also runs eight untimed collections (see there).
 * collect and garbage reply "ok <ns of GC_gcollect()> <objects reclaimed,
 * from the heap's bytes in use before and after>". */
#define GC_THREADS
#include <gc/gc.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RING 10

struct bnode {
    struct bnode *next, *cross;
};

/* The only root of a live graph. volatile: a static that is only ever
 * written would be optimised away, and the graph kept (or not) by whatever
 * stale pointers the stack happens to hold. */
static struct bnode **volatile g_heads;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The node pointers are kept in malloc'd memory, which libgc does not scan,
 * so after this returns only what the caller roots keeps the graph. */
static __attribute__((noinline)) struct bnode **build(size_t n, uint64_t seed)
{
    struct bnode **nodes = malloc(n * sizeof *nodes);
    size_t nheads = (n + RING - 1) / RING;
    struct bnode **heads = GC_MALLOC(nheads * sizeof *heads);
    if (!nodes || !heads) {
        fprintf(stderr, "frt-bench-gc-boehm: out of memory\n");
        exit(1);
    }
    GC_disable();
    for (size_t i = 0; i < n; i++) {
        nodes[i] = GC_MALLOC(sizeof(struct bnode));
        if (!nodes[i]) {
            fprintf(stderr, "frt-bench-gc-boehm: GC_MALLOC failed\n");
            exit(1);
        }
    }
    for (size_t r = 0; r < n; r += RING) {
        size_t end = r + RING < n ? r + RING : n;
        for (size_t i = r; i + 1 < end; i++)
            nodes[i]->next = nodes[i + 1];
        nodes[end - 1]->next = nodes[r];
        heads[r / RING] = nodes[r];
    }
    uint64_t x = seed;
    for (size_t i = 0; i < n; i++) {
        x = x * 6364136223846793005u + 1442695040888963407u;
        nodes[i]->cross = nodes[(x >> 33) % n];
    }
    GC_enable();
    memset(nodes, 0, n * sizeof *nodes);
    free(nodes);
    return heads;
}

/* Overwrite the stack below us, so stale pointers left by build() do not
 * keep a dropped graph alive (the collector is conservative). */
static __attribute__((noinline)) void scrub_stack(void)
{
    volatile char buf[16384];
    memset((char *)buf, 0, sizeof buf);
}

static void timed_collect(char *out, size_t cap)
{
    size_t before = GC_get_memory_use();
    uint64_t t0 = now_ns();
    GC_gcollect();
    uint64_t t1 = now_ns();
    size_t after = GC_get_memory_use();
    size_t freed = before > after ? before - after : 0;
    snprintf(out, cap, "ok %llu %zu", (unsigned long long)(t1 - t0), freed);
}

int main(int argc, char **argv)
{
    unsigned markers = 1;
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], "--markers") == 0)
            markers = (unsigned)atoi(argv[i + 1]);
    GC_set_markers_count(markers);
    GC_INIT();
    if (markers > 1)
        GC_start_mark_threads();
    GC_gcollect();

    char line[256], reply[256];
    while (fgets(line, sizeof line, stdin)) {
        char cmd[32] = "";
        unsigned long long n = 0, seed = 0;
        sscanf(line, "%31s %llu %llu", cmd, &n, &seed);
        if (strcmp(cmd, "quit") == 0)
            break;
        if (strcmp(cmd, "hello") == 0) {
            unsigned v = GC_get_version();
            snprintf(reply, sizeof reply, "ok Boehm GC %u.%u.%u, %d marker%s", v >> 16, (v >> 8) & 0xff,
                     v & 0xff, GC_get_parallel() + 1, GC_get_parallel() ? "s" : "");
        } else if (strcmp(cmd, "live") == 0 && n) {
            g_heads = NULL;
            GC_gcollect();
            uint64_t t0 = now_ns();
            g_heads = build((size_t)n, seed);
            uint64_t t1 = now_ns();
            /* libgc doubles its mark stack after each collection that
             * overflowed it (from 4096 entries): warm up until it holds the
             * graph, so the timed runs measure marking, not overflow
             * recovery. 2^8 doublings cover a million entries. */
            for (int i = 0; i < 8; i++)
                GC_gcollect();
            snprintf(reply, sizeof reply, "ok %llu", (unsigned long long)(t1 - t0));
        } else if (strcmp(cmd, "collect") == 0) {
            timed_collect(reply, sizeof reply);
        } else if (strcmp(cmd, "drop") == 0) {
            g_heads = NULL;
            scrub_stack();
            GC_gcollect();
            snprintf(reply, sizeof reply, "ok");
        } else if (strcmp(cmd, "garbage") == 0 && n) {
            g_heads = build((size_t)n, seed);
            g_heads = NULL;
            scrub_stack();
            timed_collect(reply, sizeof reply);
        } else {
            snprintf(reply, sizeof reply, "err unknown command");
        }
        printf("%s\n", reply);
        fflush(stdout);
    }
    return 0;
}
