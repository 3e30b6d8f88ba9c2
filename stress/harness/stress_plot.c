/* Plots with gnuplot: throughput and scaling efficiency against threads,
 * and BRC / atomic when both ran, each as PNG (pngcairo) and SVG. The data
 * (stress.dat) and the script (stress.gp) are written first, so a machine
 * without gnuplot can plot them elsewhere: `gnuplot stress.gp`. */
#include "stress_harness.h"

#include <errno.h>
#include <limits.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static int mkdir_p(const char *dir)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", dir);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(buf, 0777) != 0 && errno != EEXIST ? -1 : 0;
}

static int find_in_path(const char *name, char *out, size_t len)
{
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = "/usr/local/bin:/usr/bin:/bin";
    while (*path) {
        const char *colon = strchr(path, ':');
        size_t n = colon ? (size_t)(colon - path) : strlen(path);
        snprintf(out, len, "%.*s/%s", (int)n, n ? path : ".", name);
        if (access(out, X_OK) == 0)
            return 0;
        path += n + (colon ? 1 : 0);
    }
    return -1;
}

typedef struct series {
    const char *workload, *rc;
    int color, block;
} series;

static int ok(const stress_result *r)
{
    return strcmp(r->status, "ok") == 0;
}

static void plot_block(FILE *g, const char *term, const char *ext, const char *name,
                       const char *title, const char *ylabel, int logy, int column, int nseries,
                       const series *s, int ratio)
{
    fprintf(g, "set terminal %s\nset output '%s.%s'\n", term, name, ext);
    fprintf(g, "set title '%s' noenhanced\nset ylabel '%s'\n", title, ylabel);
    fprintf(g, "%s\n", logy ? "set logscale y" : "unset logscale y");
    fprintf(g, "%s\n", logy ? "set yrange [*:*]" : "set yrange [0:*]");
    fprintf(g, "unset arrow\n");
    if (!logy)
        fprintf(g, "set arrow from graph 0, first 1 to graph 1, first 1 nohead dashtype 2 lc rgb 'gray40'\n");
    fprintf(g, "plot");
    int first = 1;
    for (int i = 0; i < nseries; i++) {
        if (ratio && strcmp(s[i].rc, "brc") != 0)
            continue;
        /* one colour per workload; brc solid, atomic dashed */
        int atomic = strcmp(s[i].rc, "atomic") == 0;
        fprintf(g, "%s '%s' index %d using 1:%d with linespoints lw 2 lc %d dt %d pt %d title '%s%s%s'",
                first ? "" : ", \\\n    ", ratio ? "ratio.dat" : "stress.dat",
                ratio ? s[i].block / 2 : i, column, s[i].color, atomic ? 2 : 1, atomic ? 6 : 7,
                s[i].workload, ratio ? "" : " ", ratio ? "" : s[i].rc);
        first = 0;
    }
    fprintf(g, "\nunset output\n");
}

int stress_plot(const char *dir, const stress_options *opt, const stress_result *r, size_t n)
{
    if (mkdir_p(dir) != 0) {
        fprintf(stderr, "frt-stress: --plot: cannot create %s: %s\n", dir, strerror(errno));
        return -1;
    }
    char abs[PATH_MAX];
    if (!realpath(dir, abs)) {
        fprintf(stderr, "frt-stress: --plot: %s: %s\n", dir, strerror(errno));
        return -1;
    }
    char path[PATH_MAX + 32];
    series s[2 * STRESS_MAX_WORKLOADS];
    int ns = 0;
    int both = opt->rc == STRESS_RC_BOTH;
    const char *rcs[2] = {"brc", "atomic"};

    snprintf(path, sizeof path, "%s/stress.dat", abs);
    FILE *d = fopen(path, "w");
    if (!d) {
        fprintf(stderr, "frt-stress: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    fprintf(d, "# frt-stress: one block per workload and rc (gnuplot 'index')\n"
               "# threads  Mops/s  efficiency  speedup\n");
    for (unsigned wi = 0; wi < opt->nworkloads; wi++)
        for (int k = 0; k < 2; k++) {
            if (!(opt->rc & (k ? STRESS_RC_ATOMIC_BIT : STRESS_RC_BRC)))
                continue;
            fprintf(d, "%s# %s %s\n", ns ? "\n\n" : "", opt->workloads[wi]->name, rcs[k]);
            s[ns] = (series){opt->workloads[wi]->name, rcs[k], (int)wi + 1, ns};
            ns++;
            int rows = 0;
            for (size_t i = 0; i < n; i++)
                if (ok(&r[i]) && strcmp(r[i].workload, opt->workloads[wi]->name) == 0 &&
                    strcmp(r[i].rc, rcs[k]) == 0) {
                    fprintf(d, "%llu %.6g %.6g %.6g\n", (unsigned long long)r[i].threads,
                            r[i].ops_per_s / 1e6, r[i].efficiency, r[i].speedup);
                    rows++;
                }
            if (!rows) /* gnuplot stops at an empty block: keep one that plots nothing */
                fprintf(d, "%u NaN NaN NaN\n", opt->threads[0]);
        }
    fclose(d);
    if (both) {
        snprintf(path, sizeof path, "%s/ratio.dat", abs);
        d = fopen(path, "w");
        if (!d)
            return -1;
        fprintf(d, "# threads  brc/atomic (ops/s ratio), one block per workload\n");
        for (unsigned wi = 0; wi < opt->nworkloads; wi++) {
            fprintf(d, "%s# %s\n", wi ? "\n\n" : "", opt->workloads[wi]->name);
            int rows = 0;
            for (size_t i = 0; i < n; i++)
                if (ok(&r[i]) && strcmp(r[i].rc, "brc") == 0 &&
                    strcmp(r[i].workload, opt->workloads[wi]->name) == 0 &&
                    r[i].brc_over_atomic == r[i].brc_over_atomic) {
                    fprintf(d, "%llu %.6g\n", (unsigned long long)r[i].threads, r[i].brc_over_atomic);
                    rows++;
                }
            if (!rows)
                fprintf(d, "%u NaN\n", opt->threads[0]);
        }
        fclose(d);
    }

    snprintf(path, sizeof path, "%s/stress.gp", abs);
    FILE *g = fopen(path, "w");
    if (!g) {
        fprintf(stderr, "frt-stress: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    fprintf(g, "# frt-stress plots: run `gnuplot stress.gp` in this directory.\n");
    fprintf(g, "cd '%s'\nset grid\nset key outside right top noenhanced\nset xlabel 'threads'\n"
               "set logscale x 2\nset xtics (",
            abs);
    for (unsigned i = 0; i < opt->nthreads; i++)
        fprintf(g, "%s%u", i ? ", " : "", opt->threads[i]);
    unsigned lo = opt->threads[0], hi = opt->threads[0];
    for (unsigned i = 0; i < opt->nthreads; i++) {
        lo = opt->threads[i] < lo ? opt->threads[i] : lo;
        hi = opt->threads[i] > hi ? opt->threads[i] : hi;
    }
    fprintf(g, ")\nset xrange [%g:%g]\n", lo / 1.3, hi * 1.3);
    const char *terms[2][2] = {{"pngcairo size 1100,650 font 'sans,10'", "png"},
                               {"svg size 1100,650 dynamic font 'sans,10'", "svg"}};
    for (int t = 0; t < 2; t++) {
        plot_block(g, terms[t][0], terms[t][1], "throughput", "frt-stress: throughput, all threads",
                   "Mops/s (log scale)", 1, 2, ns, s, 0);
        plot_block(g, terms[t][0], terms[t][1], "efficiency",
                   "frt-stress: scaling efficiency (1 = linear up to the CPUs available)",
                   "efficiency", 0, 3, ns, s, 0);
        if (both)
            plot_block(g, terms[t][0], terms[t][1], "brc_over_atomic",
                       "frt-stress: biased / atomic-only reference counting (ops/s ratio)",
                       "brc / atomic", 0, 2, ns, s, 1);
    }
    fclose(g);

    char gnuplot[PATH_MAX];
    if (find_in_path("gnuplot", gnuplot, sizeof gnuplot) != 0) {
        printf("gnuplot is not installed: plots skipped (data and script are in %s; "
               "apt-get install gnuplot-nox, then gnuplot %s/stress.gp)\n", abs, abs);
        return 1;
    }
    fflush(stdout);
    pid_t pid;
    char *argv[] = {gnuplot, path, NULL};
    int e = posix_spawn(&pid, gnuplot, NULL, NULL, argv, environ);
    if (e != 0) {
        fprintf(stderr, "frt-stress: cannot run gnuplot: %s\n", strerror(e));
        return -1;
    }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "frt-stress: gnuplot %s failed\n", path);
        return -1;
    }
    printf("plots: %s/{throughput,efficiency%s}.{png,svg}\n", abs, both ? ",brc_over_atomic" : "");
    return 0;
}
