/* frt-stress command line. */
#include "stress.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

static const char usage[] =
    "usage: frt-stress [options]\n"
    "Stress workloads for the frt runtime, each checking its own invariants, and a\n"
    "scaling sweep over thread counts with throughput, pauses and memory.\n"
    "\n"
    "  --workload NAME[,NAME..]|all   workloads to run (--list names them); default all\n"
    "  --threads N[,N..]              thread counts to sweep, e.g. 1,2,4,8; default 1,2,4..\n"
    "                                 up to the PUs of the topology\n"
    "  --duration SECONDS             length of each case (default 2)\n"
    "  --ops N                        instead: operations per worker thread\n"
    "  --seed N                       random seed (default: from the clock, printed)\n"
    "  --seeds N                      run every case with seeds seed..seed+N-1 and report the\n"
    "                                 median run and the median brc/atomic (default 1)\n"
    "  --pin none|compact|scatter|numa   thread placement (default none)\n"
    "  --topology host|DESC|FILE.xml  the host (default), an hwloc synthetic description\n"
    "                                 such as \"pack:2 numa:4 core:16 pu:2\", or an XML file;\n"
    "                                 on anything but the host the plan is printed, not applied\n"
    "  --rc brc|atomic|both           biased counting (this program), atomic-only counting\n"
    "                                 (frt-stress-atomic, run from this program's directory),\n"
    "                                 or both, case by case (default: this build's)\n"
    "  --json FILE  --csv FILE        write the results\n"
    "  --plot DIR                     write gnuplot data and script, and PNG + SVG plots\n"
    "  --report FILE                  write the summary tables to FILE too\n"
    "  --stw-probe MS                 stop the world every MS milliseconds during a case to\n"
    "                                 time safepoints (default 10; 0: never)\n"
    "  --gc-threshold T0,T1,T2        collector thresholds (default 700,10,10)\n"
    "  --hot                          make shared-read's object hot (frt_make_hot)\n"
    "  --hot-off                      no adaptive hot objects (frt_config.hot_adaptive)\n"
    "  --timeout SECONDS              kill a case that runs longer (default 60 + 20 x duration)\n"
    "  --plan                         print the placement for the largest thread count; exit\n"
    "  --list                         list the workloads; exit\n"
    "  --in-process                   run this build's cases in this process, not in a child\n"
    "                                 each (for a debugger; the first failure ends the run)\n"
    "  --quiet                        no per-case lines, only the tables\n"
    "  --inject-fault leak|extra-decref   TEST AID: one reference too many or too few, once,\n"
    "                                 in each case; its checks must then fail\n"
    "  --help\n"
    "A failed invariant prints 'INVARIANT FAILED' with the seed and the command that\n"
    "reproduces it; the exit status is then 1. docs/stress.md describes every workload.\n";

const char *stress_fault_name(stress_fault f)
{
    static const char *const n[] = {"none", "leak", "extra-decref"};
    return n[f];
}

const char *stress_rc_name(int rc_bit)
{
    return rc_bit == STRESS_RC_ATOMIC_BIT ? "atomic" : "brc";
}

int stress_own_rc(void)
{
    return STRESS_RC_ATOMIC ? STRESS_RC_ATOMIC_BIT : STRESS_RC_BRC;
}

const char *stress_own_rc_name(void)
{
    return stress_rc_name(stress_own_rc());
}

static void die(const char *fmt, const char *arg)
{
    fprintf(stderr, "frt-stress: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n(frt-stress --help for the options)\n");
    exit(2);
}

static double parse_double(const char *name, const char *v, double lo, double hi)
{
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end || !(x >= lo && x <= hi))
        die("bad value for %s", name);
    return x;
}

static uint64_t parse_u64(const char *name, const char *v)
{
    char *end;
    errno = 0;
    if (*v == '-')
        die("bad value for %s", name);
    unsigned long long x = strtoull(v, &end, 0);
    if (errno || end == v || *end)
        die("bad value for %s", name);
    return x;
}

static void parse_threads(stress_options *opt, const char *v)
{
    opt->nthreads = 0;
    const char *s = v;
    while (*s) {
        char *end;
        errno = 0;
        long x = strtol(s, &end, 10);
        if (errno || end == s || x < 1 || x > STRESS_MAX_THREADS)
            die("--threads: each count must be 1..4096: %s", v);
        if (opt->nthreads == STRESS_MAX_SWEEP)
            die("--threads: at most 64 counts: %s", v);
        opt->threads[opt->nthreads++] = (unsigned)x;
        if (*end == ',')
            end++;
        else if (*end)
            die("--threads: a comma-separated list of counts: %s", v);
        s = end;
    }
    if (!opt->nthreads)
        die("--threads: empty list%s", "");
    opt->threads_given = 1;
}

static void parse_workloads(stress_options *opt, const char *v)
{
    opt->nworkloads = 0;
    if (strcmp(v, "all") == 0) {
        for (unsigned i = 0; stress_workloads[i] && i < STRESS_MAX_WORKLOADS; i++)
            opt->workloads[opt->nworkloads++] = stress_workloads[i];
        return;
    }
    char buf[512];
    snprintf(buf, sizeof buf, "%s", v);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        const stress_workload *w = stress_workload_find(tok);
        if (!w)
            die("unknown workload '%s' (frt-stress --list)", tok);
        if (opt->nworkloads == STRESS_MAX_WORKLOADS)
            die("too many workloads: %s", v);
        opt->workloads[opt->nworkloads++] = w;
    }
    if (!opt->nworkloads)
        die("--workload: empty list%s", "");
}

static uint64_t clock_seed(void)
{
    uint64_t s = 0;
    if (getrandom(&s, sizeof s, GRND_NONBLOCK) != (ssize_t)sizeof s) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        s = (uint64_t)ts.tv_sec * 1000000007u ^ (uint64_t)ts.tv_nsec ^ (uint64_t)getpid() << 32;
    }
    return s % 1000000000000ull; /* short enough to type */
}

void stress_options_parse(stress_options *opt, int argc, char **argv)
{
    memset(opt, 0, sizeof *opt);
    opt->duration = 2.0;
    opt->seeds = 1;
    opt->pin = STRESS_PIN_NONE;
    opt->rc = stress_own_rc();
    opt->stw_probe_ms = 20;
    opt->gc_threshold[0] = 700;
    opt->gc_threshold[1] = 10;
    opt->gc_threshold[2] = 10;
    opt->result_fd = -1;
    opt->argc = argc;
    opt->argv = argv;
    parse_workloads(opt, "all");

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        char name[64];
        const char *val = NULL;
        const char *eq = strchr(a, '=');
        if (strncmp(a, "--", 2) == 0 && eq && (size_t)(eq - a) < sizeof name) {
            memcpy(name, a, (size_t)(eq - a));
            name[eq - a] = 0;
            val = eq + 1;
        } else {
            snprintf(name, sizeof name, "%s", a);
        }
#define FLAG(s) (strcmp(name, s) == 0)
#define VALUE()                                                                                    \
    (val ? val : (i + 1 < argc ? argv[++i] : (die("%s needs a value", name), (const char *)NULL)))
        if (FLAG("--help") || FLAG("-h")) {
            fputs(usage, stdout);
            exit(0);
        } else if (FLAG("--workload") || FLAG("--workloads")) {
            parse_workloads(opt, VALUE());
        } else if (FLAG("--threads")) {
            parse_threads(opt, VALUE());
        } else if (FLAG("--duration")) {
            opt->duration = parse_double(name, VALUE(), 0.001, 86400);
            opt->ops = 0;
        } else if (FLAG("--ops")) {
            opt->ops = parse_u64(name, VALUE());
            if (!opt->ops)
                die("--ops must be at least 1%s", "");
        } else if (FLAG("--seed")) {
            opt->seed = parse_u64(name, VALUE());
            opt->seed_given = 1;
        } else if (FLAG("--seeds")) {
            uint64_t k = parse_u64(name, VALUE());
            if (k < 1 || k > 99)
                die("--seeds must be 1..99%s", "");
            opt->seeds = (unsigned)k;
        } else if (FLAG("--pin")) {
            const char *v = VALUE();
            if (strcmp(v, "none") == 0)
                opt->pin = STRESS_PIN_NONE;
            else if (strcmp(v, "compact") == 0)
                opt->pin = STRESS_PIN_COMPACT;
            else if (strcmp(v, "scatter") == 0)
                opt->pin = STRESS_PIN_SCATTER;
            else if (strcmp(v, "numa") == 0)
                opt->pin = STRESS_PIN_NUMA;
            else
                die("--pin: none, compact, scatter or numa, not '%s'", v);
        } else if (FLAG("--topology")) {
            opt->topology = VALUE();
        } else if (FLAG("--rc")) {
            const char *v = VALUE();
            if (strcmp(v, "brc") == 0)
                opt->rc = STRESS_RC_BRC;
            else if (strcmp(v, "atomic") == 0)
                opt->rc = STRESS_RC_ATOMIC_BIT;
            else if (strcmp(v, "both") == 0)
                opt->rc = STRESS_RC_BOTH;
            else
                die("--rc: brc, atomic or both, not '%s'", v);
        } else if (FLAG("--json")) {
            opt->json = VALUE();
        } else if (FLAG("--csv")) {
            opt->csv = VALUE();
        } else if (FLAG("--plot")) {
            opt->plot = VALUE();
        } else if (FLAG("--report")) {
            opt->report = VALUE();
        } else if (FLAG("--stw-probe")) {
            opt->stw_probe_ms = parse_double(name, VALUE(), 0, 60000);
        } else if (FLAG("--gc-threshold")) {
            const char *v = VALUE();
            unsigned long long t[3];
            if (sscanf(v, "%llu,%llu,%llu", &t[0], &t[1], &t[2]) != 3)
                die("--gc-threshold: T0,T1,T2, not '%s'", v);
            for (int k = 0; k < 3; k++)
                opt->gc_threshold[k] = (size_t)t[k];
        } else if (FLAG("--hot")) {
            opt->hot = 1;
        } else if (FLAG("--hot-off")) {
            opt->hot_off = 1;
        } else if (FLAG("--timeout")) {
            opt->timeout = parse_double(name, VALUE(), 0, 86400 * 7);
        } else if (FLAG("--inject-fault")) {
            const char *v = VALUE();
            if (strcmp(v, "leak") == 0)
                opt->fault = STRESS_FAULT_LEAK;
            else if (strcmp(v, "extra-decref") == 0)
                opt->fault = STRESS_FAULT_EXTRA_DECREF;
            else if (strcmp(v, "none") == 0)
                opt->fault = STRESS_FAULT_NONE;
            else
                die("--inject-fault: leak or extra-decref, not '%s'", v);
        } else if (FLAG("--plan")) {
            opt->plan_only = 1;
        } else if (FLAG("--list")) {
            opt->list = 1;
        } else if (FLAG("--in-process")) {
            opt->in_process = 1;
        } else if (FLAG("--quiet")) {
            opt->quiet = 1;
        } else if (FLAG("--case")) { /* internal: run one case (the sweep's child) */
            opt->case_mode = 1;
        } else if (FLAG("--result-fd")) { /* internal */
            opt->result_fd = (int)parse_u64(name, VALUE());
        } else {
            die("unknown option '%s'", a);
        }
#undef FLAG
#undef VALUE
    }
    if (!opt->seed_given)
        opt->seed = clock_seed();
    if (opt->case_mode && (opt->nworkloads != 1 || opt->nthreads != 1))
        die("--case runs one workload at one thread count%s", "");
}
