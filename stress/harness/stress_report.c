/* The text report: a header that says what ran where, a throughput table
 * (scaling, and BRC against atomic counting when both ran), and a table of
 * pauses and memory per case. */
#include "stress_harness.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

static int ok(const stress_result *r)
{
    return strcmp(r->status, "ok") == 0;
}

static unsigned umin(unsigned a, unsigned b)
{
    return a < b ? a : b;
}

void stress_derive(stress_result *r, size_t n, unsigned cpus)
{
    for (size_t i = 0; i < n; i++) {
        r[i].speedup = r[i].efficiency = r[i].brc_over_atomic = NAN;
        if (!ok(&r[i]) || r[i].ops_per_s <= 0)
            continue;
        const stress_result *base = NULL;
        for (size_t j = 0; j < n; j++)
            if (ok(&r[j]) && r[j].ops_per_s > 0 && strcmp(r[j].workload, r[i].workload) == 0 &&
                strcmp(r[j].rc, r[i].rc) == 0 && (!base || r[j].threads < base->threads))
                base = &r[j];
        if (base) {
            r[i].speedup = r[i].ops_per_s / base->ops_per_s;
            double ideal = (double)umin((unsigned)r[i].threads, cpus) /
                           (double)umin((unsigned)base->threads, cpus);
            r[i].efficiency = r[i].speedup / ideal;
        }
        for (size_t j = 0; j < n; j++)
            if (j != i && ok(&r[j]) && r[j].ops_per_s > 0 &&
                strcmp(r[j].workload, r[i].workload) == 0 && r[j].threads == r[i].threads &&
                strcmp(r[j].rc, r[i].rc) != 0) {
                const stress_result *b = strcmp(r[i].rc, "brc") == 0 ? &r[i] : &r[j];
                const stress_result *a = b == &r[i] ? &r[j] : &r[i];
                r[i].brc_over_atomic = b->ops_per_s / a->ops_per_s;
            }
        if (isfinite(r[i].brc_over_atomic_median)) /* --seeds: per-seed ratios, median */
            r[i].brc_over_atomic = r[i].brc_over_atomic_median;
    }
}

void stress_report_header(FILE *f, const stress_options *opt, const stress_topo *topo, unsigned cpus)
{
    char cpu[256], desc[160];
    stress_cpu_model(cpu, sizeof cpu);
    stress_topo_describe(topo, desc, sizeof desc);
    struct utsname u;
    if (uname(&u) != 0)
        strcpy(u.release, "?");
    fprintf(f, "# frt-stress (frt %s): stress workloads and scaling sweep\n", FRT_VERSION);
    double load[3] = {-1, -1, -1};
    if (getloadavg(load, 3) < 0)
        load[0] = load[1] = load[2] = -1;
    fprintf(f, "# machine: %u CPUs available to this process, %s, Linux %s; load average before "
               "the sweep %.2f %.2f %.2f\n", cpus, cpu, u.release, load[0], load[1], load[2]);
#if defined(__clang__)
    fprintf(f, "# build: clang %d.%d, %s\n", __clang_major__, __clang_minor__, stress_build_kind());
#elif defined(__GNUC__)
    fprintf(f, "# build: gcc %d.%d, %s\n", __GNUC__, __GNUC_MINOR__, stress_build_kind());
#endif
    fprintf(f, "# topology: %s (%s)\n", topo->source, desc);
    fprintf(f, "# workloads:");
    for (unsigned i = 0; i < opt->nworkloads; i++)
        fprintf(f, " %s", opt->workloads[i]->name);
    fprintf(f, "\n# threads:");
    for (unsigned i = 0; i < opt->nthreads; i++)
        fprintf(f, "%s%u", i ? "," : " ", opt->threads[i]);
    if (opt->ops)
        fprintf(f, "; %llu operations per thread", (unsigned long long)opt->ops);
    else
        fprintf(f, "; %g s per case", opt->duration);
    fprintf(f, "; --rc %s; --pin %s; seed %llu; stop-the-world probe every %g ms; gc thresholds "
               "%zu,%zu,%zu%s%s\n",
            opt->rc == STRESS_RC_BOTH ? "both" : stress_rc_name(opt->rc), stress_pin_name(opt->pin),
            (unsigned long long)opt->seed, opt->stw_probe_ms, opt->gc_threshold[0],
            opt->gc_threshold[1], opt->gc_threshold[2], opt->fault ? "; --inject-fault " : "",
            opt->fault ? stress_fault_name(opt->fault) : "");
}

static const stress_result *find(const stress_result *r, size_t n, const char *wl, uint64_t t,
                                 const char *rc)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(r[i].workload, wl) == 0 && r[i].threads == t && strcmp(r[i].rc, rc) == 0)
            return &r[i];
    return NULL;
}

static void fmt_num(char *buf, size_t len, double v, const char *fmt)
{
    if (isfinite(v))
        snprintf(buf, len, fmt, v);
    else
        snprintf(buf, len, "-");
}

static void fmt3(char *buf, size_t len, double a, double b, double c, uint64_t n)
{
    if (!n)
        snprintf(buf, len, "-");
    else
        snprintf(buf, len, "%.1f/%.1f/%.1f", a, b, c);
}

/* Hot objects (issue 13's targets): shared-read's efficiency at 2
 * threads against 1, for each of its variants that ran both. The same
 * workload code runs in all three; only how the object is counted differs. */
static void report_hot(FILE *f, const stress_result *r, size_t n)
{
    static const struct {
        const char *wl, *how, *target;
    } rows[] = {
        {"shared-read", "adaptive promotion alone", ">= 0.8"},
        {"shared-hot", "frt_make_hot", ">= 0.9"},
        {"shared-nohot", "adaptive off (the atomic line)", "none: the baseline"},
    };
    int header = 0;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const stress_result *one = find(r, n, rows[i].wl, 1, "brc");
        const stress_result *two = find(r, n, rows[i].wl, 2, "brc");
        if (!one || !two || !ok(one) || !ok(two) || one->ops_per_s <= 0)
            continue;
        if (!header)
            fprintf(f, "hot objects: shared-read efficiency at 2 threads (2-thread / 1-thread "
                       "Mops/s, brc):\n");
        header = 1;
        fprintf(f, "  %-12s %-31s %5.2f (%.1f vs %.1f)  target %s\n", rows[i].wl, rows[i].how,
                two->efficiency, two->ops_per_s / 1e6, one->ops_per_s / 1e6, rows[i].target);
    }
}

/* Why a row is below 1, from the figures themselves first: a case that
 * did not get its CPUs, or a loss that per CPU-second is none, is other
 * load (on a busy machine most rows below 1 are this); then the
 * workload's own reason (stress_workload's brc_note). */
static void below_one_reason(FILE *f, const stress_workload *wl, const stress_result *x,
                             const stress_result *a, unsigned threads, unsigned cpus)
{
    double want = 0.9 * (threads < cpus ? threads : cpus);
    int starved = x->cpus_busy < want || (a && a->cpus_busy < want);
    if (x->brc_over_atomic_cpu >= 1.0)
        fprintf(f, "per CPU-second brc is not behind (%.2fx), so the loss is CPU time the brc "
                   "runs did not get: other load",
                x->brc_over_atomic_cpu);
    else if (wl->brc_note)
        fprintf(f, "%s%s", wl->brc_note, starved ? "; other load as well (see the CPUs column)" : "");
    else if (starved)
        fprintf(f, "no known cause but other load: the cases got %.2f (brc) and %.2f (atomic) of "
                   "the %u CPUs they asked for",
                x->cpus_busy, a ? a->cpus_busy : NAN, threads < cpus ? threads : cpus);
    else
        fprintf(f, "no known cause");
}

/* Each brc/atomic below 1, with its reason: the report explains its own
 * losses. */
static void report_below_one(FILE *f, const stress_options *opt, const stress_result *r, size_t n,
                             unsigned cpus)
{
    unsigned seeds = opt->seeds ? opt->seeds : 1;
    fprintf(f, "brc/atomic: ops/s of brc over atomic; per CPU-s: the same with ops per CPU-second of "
               "each case's process, which other load on the machine does not lower\n");
    if (seeds > 1)
        fprintf(f, "for each seed brc and atomic ran back to back; both ratios are the median over "
                   "%u seeds (%llu..%llu) of that seed's ratio, and each Mops/s is the run of "
                   "median throughput\n",
                seeds, (unsigned long long)opt->seed, (unsigned long long)(opt->seed + seeds - 1));
    int any = 0;
    for (unsigned wi = 0; wi < opt->nworkloads; wi++) {
        const stress_workload *wl = opt->workloads[wi];
        for (unsigned ti = 0; ti < opt->nthreads; ti++) {
            const stress_result *x = find(r, n, wl->name, opt->threads[ti], "brc");
            if (!x || !isfinite(x->brc_over_atomic) || x->brc_over_atomic >= 1.0)
                continue;
            if (!any)
                fprintf(f, "below 1.0x (biased counting slower than atomic counting here):\n");
            any = 1;
            fprintf(f, "  %-12s %3u threads %.2fx (%.2fx per CPU-s): ", wl->name, opt->threads[ti],
                    x->brc_over_atomic, x->brc_over_atomic_cpu);
            below_one_reason(f, wl, x, find(r, n, wl->name, opt->threads[ti], "atomic"),
                             opt->threads[ti], cpus);
            fprintf(f, "\n");
        }
    }
}

void stress_report_tables(FILE *f, const stress_options *opt, const stress_result *r, size_t n,
                          unsigned cpus)
{
    int both = opt->rc == STRESS_RC_BOTH;
    const char *rcs[2] = {"brc", "atomic"};
    int first = (opt->rc & STRESS_RC_BRC) ? 0 : 1, last = (opt->rc & STRESS_RC_ATOMIC_BIT) ? 1 : 0;

    fprintf(f, "\nthroughput (Mops/s of all threads; speedup against the smallest thread count; "
               "eff = speedup / ideal, ideal counting at most %u CPUs)\n", cpus);
    fprintf(f, "%-12s %7s", "workload", "threads");
    for (int k = first; k <= last; k++)
        fprintf(f, "  %9s Mops/s %7s %5s %5s", rcs[k], "speedup", "eff", "CPUs");
    if (both)
        fprintf(f, "  %10s %9s", "brc/atomic", "per CPU-s");
    fprintf(f, "  status\n");
    for (unsigned wi = 0; wi < opt->nworkloads; wi++) {
        const char *wl = opt->workloads[wi]->name;
        for (unsigned ti = 0; ti < opt->nthreads; ti++) {
            uint64_t t = opt->threads[ti];
            fprintf(f, "%-12s %7llu", wl, (unsigned long long)t);
            char status[96] = "";
            double ratio = NAN, ratio_cpu = NAN;
            for (int k = first; k <= last; k++) {
                const stress_result *x = find(r, n, wl, t, rcs[k]);
                char a[32], b[32], c[32], d[32];
                fmt_num(a, sizeof a, x && ok(x) ? x->ops_per_s / 1e6 : NAN, "%.3f");
                fmt_num(b, sizeof b, x ? x->speedup : NAN, "%.2f");
                fmt_num(c, sizeof c, x ? x->efficiency : NAN, "%.2f");
                fmt_num(d, sizeof d, x && ok(x) ? x->cpus_busy : NAN, "%.2f");
                fprintf(f, "  %16s %7s %5s %5s", a, b, c, d);
                if (x && isfinite(x->brc_over_atomic))
                    ratio = x->brc_over_atomic;
                if (x && isfinite(x->brc_over_atomic_cpu))
                    ratio_cpu = x->brc_over_atomic_cpu;
                if (x && !ok(x)) {
                    size_t l = strlen(status);
                    snprintf(status + l, sizeof status - l, "%s%s: %s", l ? ", " : "", rcs[k], x->status);
                }
            }
            if (both) {
                char a[32], b[32];
                fmt_num(a, sizeof a, ratio, "%.2fx");
                fmt_num(b, sizeof b, ratio_cpu, "%.2fx");
                fprintf(f, "  %10s %9s", a, b);
            }
            fprintf(f, "  %s\n", *status ? status : "ok");
        }
    }
    fprintf(f, "CPUs: CPU time of the case's process during its timed stretch / the stretch: below "
               "min(threads, %u), the case did not get the CPUs it asked for (other load)\n", cpus);
    if (both)
        report_below_one(f, opt, r, n, cpus);
    report_hot(f, r, n);
    fprintf(f, "operations:");
    for (unsigned wi = 0; wi < opt->nworkloads; wi++)
        fprintf(f, "%s %s = %s", wi ? ";" : "", opt->workloads[wi]->name, opt->workloads[wi]->op);
    fprintf(f, "\n");

    fprintf(f, "\npauses and memory (us: p50/p99/max; tts = time from a stop request until every "
               "thread is parked, from the harness's probe stops)\n");
    fprintf(f, "%-12s %-6s %7s %7s %22s %7s %22s %10s %9s %7s %9s %9s %9s\n", "workload", "rc",
            "threads", "gc runs", "gc pause us", "stops", "tts us", "stw max us", "RSS MB",
            "arenas", "mapped MB", "in use MB", "objects");
    for (size_t i = 0; i < n; i++) {
        const stress_result *x = &r[i];
        char gc[64], tts[64];
        fmt3(gc, sizeof gc, x->gc_pause_p50_us, x->gc_pause_p99_us, x->gc_pause_max_us,
             x->gc_collections);
        fmt3(tts, sizeof tts, x->tts_p50_us, x->tts_p99_us, x->tts_max_us, x->probes ? 1 : 0);
        fprintf(f, "%-12s %-6s %7llu %7llu %22s %7llu %22s %10.1f %9.1f %7llu %9.1f %9.2f %9llu%s%s\n",
                x->workload, x->rc, (unsigned long long)x->threads,
                (unsigned long long)x->gc_collections, gc, (unsigned long long)x->stw_stops, tts,
                x->stw_pause_max_us, x->rss_peak_mb, (unsigned long long)x->heap_arenas_peak,
                x->heap_mapped_peak_mb, x->heap_in_use_mb, (unsigned long long)x->objects,
                ok(x) ? "" : "  ", ok(x) ? "" : x->status);
    }
    fprintf(f, "arenas and mapped MB: the most mapped during the case; in use MB: live blocks when "
               "every worker was quiescent, holding its objects\n");

    size_t failed = 0, binds = 0;
    for (size_t i = 0; i < n; i++) {
        failed += !ok(&r[i]);
        binds += r[i].bind_failures;
    }
    if (binds)
        fprintf(f, "note: %zu thread bindings failed (see the messages above)\n", binds);
    fprintf(f, "\n%zu cases, %zu failed%s\n", n, failed,
            failed ? " (each failure above names its seed and the command that reproduces it)" : "");
}
