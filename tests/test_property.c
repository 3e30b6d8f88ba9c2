/* Model-based property test: random programs of allocations, links,
 * hand-offs across threads, inc/decrefs from owners and non-owners,
 * detach/attach, weak references, finalizers, freeze and collections of
 * every generation, run against the runtime and checked step by step
 * against a reference model of reachability (property_model.h): no live
 * object is ever freed; after a full collection every unreachable object
 * is gone, destroyed exactly once; finalizers and weakref callbacks run
 * exactly as the semantics say; refcounts are exact at every barrier.
 *
 *   test_property [--seed N] [--sequences N | --duration SECONDS] [--ops N]
 *                 [--threads N] [--mode serial|concurrent|mixed] [--round N]
 *                 [--replay FILE [--repeat N]] [--trace] [--no-shrink] [--shrink-time S]
 *                 [--print-program] [--emit-corpus DIR]
 *
 * --repeat N runs a replayed program up to N times, until one fails: the
 * programs in tests/property_repro/ reproduce timing-dependent failures
 * that way (each has its ctest).
 *
 * --emit-corpus DIR writes generated programs as fuzzer inputs
 * (tests/fuzz); with --replay FILE it writes that program to the file DIR.
 *
 * Each sequence runs in a child process. Sequence i uses seed N+i; the
 * line printed for a failure says how to replay it. A failing program is
 * shrunk (property_shrink.h) and printed as a program (replayable with
 * --replay) and as the resolved operations it ran. docs/reliability.md
 * has the long-run commands. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "property_exec.h"
#include "property_ops.h"
#include "property_shrink.h"

typedef struct opts {
    uint64_t seed;
    int seed_given;
    size_t sequences, ops;
    double duration;
    unsigned threads; /* 0: vary */
    int mode;         /* 0 mixed, 1 serial, 2 concurrent */
    size_t round;     /* 0: default */
    const char *replay, *emit_corpus;
    size_t repeat; /* --replay: runs of the program (a timing-dependent failure) */
    int trace, shrink, print_program;
    double shrink_time;
    unsigned timeout_s;
} opts;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void usage(void)
{
    fprintf(stderr, "usage: test_property [--seed N] [--sequences N | --duration S] [--ops N] "
                    "[--threads N] [--mode serial|concurrent|mixed] [--round N] [--replay FILE [--repeat N]] "
                    "[--trace] [--no-shrink] [--shrink-time S] [--print-program] "
                    "[--emit-corpus DIR]\n");
    exit(2);
}

static const char *mode_name(int serial)
{
    return serial ? "serial" : "concurrent";
}

/* The shape of sequence i. */
static void sequence_cfg(const opts *o, size_t i, unsigned *threads, prop_cfg *cfg)
{
    *threads = o->threads ? o->threads : (unsigned)(1 + i % 4);
    memset(cfg, 0, sizeof *cfg);
    cfg->serial = o->mode == 1 || (o->mode == 0 && (i / 4) % 2 == 0) || *threads == 1;
    cfg->round_max = o->round ? o->round : *threads == 1 ? 1 : 48;
}

/* Run p in a child; with --trace its output is shown, and a failure is run
 * again quietly to read its signature. */
static void run_one(const opts *o, const prop_prog *p, prop_cfg *cfg, prop_child *c)
{
    if (!o->trace) {
        prop_run_child(p, cfg, o->timeout_s, 1, c);
        return;
    }
    cfg->trace = stderr;
    prop_run_child(p, cfg, o->timeout_s, 0, c);
    cfg->trace = NULL;
    if (c->failed) {
        prop_run_child(p, cfg, o->timeout_s, 1, c);
        if (!c->failed)
            snprintf(c->sig, sizeof c->sig, "not reproduced");
        c->failed = 1;
    }
}

static void report_failure(const opts *o, prop_prog *p, prop_cfg *cfg, const prop_child *c,
                           const char *replay_hint)
{
    fprintf(stderr, "\n=== property test FAILED: %s\n", c->sig);
    if (c->output)
        fputs(c->output, stderr);
    fprintf(stderr, "=== replay: %s\n", replay_hint);
    if (!o->shrink || !strcmp(c->sig, "not reproduced"))
        return;
    unsigned tries = cfg->serial ? 1 : 3;
    /* A concurrent failure that also shows when the threads take turns
     * shrinks deterministically. */
    if (!cfg->serial) {
        prop_cfg s = *cfg;
        s.serial = 1;
        prop_child sc;
        prop_run_child(p, &s, o->timeout_s, 1, &sc);
        if (sc.failed && strcmp(sc.sig, c->sig) == 0) {
            *cfg = s;
            tries = 1;
            fprintf(stderr, "=== it fails in serial mode too: shrinking with the threads taking turns\n");
        }
        free(sc.output);
    }
    size_t before = p->n;
    double t0 = now_s();
    size_t runs = prop_shrink(p, cfg, c->sig, tries, o->timeout_s, o->shrink_time);
    fprintf(stderr, "=== shrunk from %zu to %zu operations in %.1f s (%zu runs)\n", before, p->n,
            now_s() - t0, runs);
    fprintf(stderr, "=== reproducer (save it and run: test_property --replay FILE --mode %s --round "
                    "%zu --trace):\n", mode_name(cfg->serial), cfg->round_max);
    prop_print(stderr, p);
    fprintf(stderr, "=== the reproducer's steps as the model resolved them:\n");
    prop_cfg tc = *cfg;
    tc.trace = stderr;
    prop_child rc;
    prop_run_child(p, &tc, o->timeout_s, 0, &rc);
    fprintf(stderr, "=== (%s)\n", rc.failed ? rc.sig : "it passed this time: the failure is timing-dependent");
    free(rc.output);
}

int main(int argc, char **argv)
{
    opts o = {0};
    o.sequences = 0;
    o.ops = 300;
    o.shrink = 1;
    o.shrink_time = 120;
    o.timeout_s = 120;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--seed") && v) {
            o.seed = strtoull(v, NULL, 0);
            o.seed_given = 1;
            i++;
        } else if (!strcmp(a, "--sequences") && v) {
            o.sequences = strtoull(v, NULL, 0);
            i++;
        } else if (!strcmp(a, "--ops") && v) {
            o.ops = strtoull(v, NULL, 0);
            i++;
        } else if (!strcmp(a, "--threads") && v) {
            o.threads = (unsigned)strtoul(v, NULL, 0);
            if (o.threads < 1 || o.threads > PROP_MAX_THREADS)
                usage();
            i++;
        } else if (!strcmp(a, "--duration") && v) {
            o.duration = strtod(v, NULL);
            i++;
        } else if (!strcmp(a, "--mode") && v) {
            o.mode = !strcmp(v, "serial") ? 1 : !strcmp(v, "concurrent") ? 2 : !strcmp(v, "mixed") ? 0 : -1;
            if (o.mode < 0)
                usage();
            i++;
        } else if (!strcmp(a, "--round") && v) {
            o.round = strtoull(v, NULL, 0);
            i++;
        } else if (!strcmp(a, "--replay") && v) {
            o.replay = v;
            i++;
        } else if (!strcmp(a, "--repeat") && v) {
            o.repeat = strtoull(v, NULL, 0);
            i++;
        } else if (!strcmp(a, "--emit-corpus") && v) {
            o.emit_corpus = v;
            i++;
        } else if (!strcmp(a, "--shrink-time") && v) {
            o.shrink_time = strtod(v, NULL);
            i++;
        } else if (!strcmp(a, "--trace")) {
            o.trace = 1;
        } else if (!strcmp(a, "--no-shrink")) {
            o.shrink = 0;
        } else if (!strcmp(a, "--print-program")) {
            o.print_program = 1;
        } else {
            usage();
        }
    }

    if (o.replay) {
        FILE *f = fopen(o.replay, "r");
        if (!f) {
            fprintf(stderr, "test_property: %s: %s\n", o.replay, strerror(errno));
            return 2;
        }
        prop_prog p;
        if (prop_parse(&p, f) != 0)
            return 2;
        fclose(f);
        if (o.emit_corpus) {
            /* the program in the fuzzer's byte form */
            size_t cap = 1 + 4 * p.n, len;
            uint8_t *buf = malloc(cap);
            len = prop_encode(&p, buf, cap);
            FILE *out = fopen(o.emit_corpus, "wb");
            if (!out || fwrite(buf, 1, len, out) != len || fclose(out) != 0) {
                fprintf(stderr, "test_property: %s: %s\n", o.emit_corpus, strerror(errno));
                return 2;
            }
            free(buf);
            return 0;
        }
        prop_cfg cfg;
        unsigned threads;
        sequence_cfg(&o, 0, &threads, &cfg);
        cfg.serial = o.mode != 2 || p.threads == 1;
        cfg.round_max = o.round ? o.round : p.threads == 1 ? 1 : 48;
        prop_child c;
        size_t runs = o.repeat ? o.repeat : 1, run = 0;
        do {
            if (run)
                free(c.output);
            run_one(&o, &p, &cfg, &c);
        } while (!c.failed && ++run < runs);
        int failed = c.failed;
        if (!failed) {
            fprintf(stderr, "test_property: replay of %s (%zu operations, %u threads, %s), %zu runs: ok\n",
                    o.replay, p.n, p.threads, mode_name(cfg.serial), runs);
        } else {
            char hint[512];
            snprintf(hint, sizeof hint, "test_property --replay %s --mode %s", o.replay,
                     mode_name(cfg.serial));
            report_failure(&o, &p, &cfg, &c, hint);
        }
        free(c.output);
        prop_prog_free(&p);
        return failed;
    }

    if (o.emit_corpus) {
        /* Seed inputs for tests/fuzz: generated programs in its byte form. */
        size_t n = o.sequences ? o.sequences : 8;
        for (size_t i = 0; i < n; i++) {
            prop_prog p;
            prop_generate(&p, o.seed + i, o.ops, (unsigned)(1 + i % 3));
            size_t cap = 1 + 4 * p.n;
            uint8_t *buf = malloc(cap);
            size_t len = prop_encode(&p, buf, cap);
            char path[4096];
            snprintf(path, sizeof path, "%s/generated-%llu", o.emit_corpus,
                     (unsigned long long)(o.seed + i));
            FILE *f = fopen(path, "wb");
            if (!f || fwrite(buf, 1, len, f) != len || fclose(f) != 0) {
                fprintf(stderr, "test_property: %s: %s\n", path, strerror(errno));
                return 2;
            }
            free(buf);
            prop_prog_free(&p);
        }
        return 0;
    }
    if (!o.seed_given)
        o.seed = (uint64_t)time(NULL) * 1000003u ^ (uint64_t)getpid();
    if (!o.sequences && o.duration <= 0)
        o.sequences = SCALED(1200);
    if (!o.sequences)
        o.sequences = SIZE_MAX;
    fprintf(stderr, "test_property: base seed %llu, %zu operations per sequence, %s\n",
            (unsigned long long)o.seed, o.ops,
            o.duration > 0 ? "until the duration is up" : "bounded run");
    double t0 = now_s();
    size_t done = 0;
    prop_result total = {0};
    size_t by_threads[PROP_MAX_THREADS + 1] = {0};
    for (size_t i = 0; i < o.sequences; i++) {
        if (o.duration > 0 && now_s() - t0 >= o.duration)
            break;
        uint64_t seed = o.seed + i;
        unsigned threads;
        prop_cfg cfg;
        sequence_cfg(&o, i, &threads, &cfg);
        prop_prog p;
        prop_generate(&p, seed, o.ops, threads);
        if (o.print_program)
            prop_print(stderr, &p);
        prop_child c;
        run_one(&o, &p, &cfg, &c);
        if (c.failed) {
            char hint[512];
            snprintf(hint, sizeof hint,
                     "test_property --seed %llu --sequences 1 --ops %zu --threads %u --mode %s "
                     "--round %zu", (unsigned long long)seed, o.ops, threads, mode_name(cfg.serial),
                     cfg.round_max);
            fprintf(stderr, "test_property: sequence %zu (seed %llu, %u threads, %s) failed after "
                    "%zu sequences passed, %.2f s into the run\n", i, (unsigned long long)seed,
                    threads, mode_name(cfg.serial), done, now_s() - t0);
            report_failure(&o, &p, &cfg, &c, hint);
            prop_prog_free(&p);
            return 1;
        }
        free(c.output);
        prop_prog_free(&p);
        done++;
        by_threads[threads]++;
        for (size_t f = 0; f < prop_result_nfields; f++) {
            size_t *dst = (size_t *)((char *)&total + prop_result_fields[f].offset);
            size_t v = *(const size_t *)((const char *)&c.res + prop_result_fields[f].offset);
            if (!strcmp(prop_result_fields[f].name, "max_alive"))
                *dst = v > *dst ? v : *dst;
            else
                *dst += v;
        }
        if (o.duration > 0 && done % 1000 == 0)
            fprintf(stderr, "test_property: %zu sequences, %.0f s\n", done, now_s() - t0);
    }
    double dt = now_s() - t0;
    fprintf(stderr, "test_property: %zu sequences passed in %.1f s (1/2/3/4 threads: %zu/%zu/%zu/%zu)\n",
            done, dt, by_threads[1], by_threads[2], by_threads[3], by_threads[4]);
    fprintf(stderr, "test_property: totals:");
    for (size_t f = 0; f < prop_result_nfields; f++)
        fprintf(stderr, " %s=%zu", prop_result_fields[f].name,
                *(const size_t *)((const char *)&total + prop_result_fields[f].offset));
    fputc('\n', stderr);
    if (!done) {
        fprintf(stderr, "test_property: no sequence ran\n");
        return 1;
    }
    TEST_PASS("test_property");
    return 0;
}
