/* The sweep: every (workload, threads, rc) case, each in a child process.
 *
 * A child is this program (or, for the other reference counting, its
 * sibling frt-stress-atomic / frt-stress from the same directory) run with
 * --case and the case's options; it writes its result record to a pipe
 * (--result-fd) and exits 0 (ok), 1 (an invariant failed) or 3 (could not
 * run). A case that crashes or outlives --timeout is reported as such with
 * the command that reproduces it, and the sweep goes on. Cases run one at a
 * time, brc and atomic interleaved at each thread count, so that a burst of
 * load from another process falls on both alike. */
#include "stress_harness.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

int stress_case_main(const stress_options *opt, stress_topo *topo)
{
    stress_result r;
    int rc = stress_run_case(opt, opt->workloads[0], opt->threads[0], topo, &r);
    stress_result_write_record(opt->result_fd, &r);
    fflush(stdout);
    fflush(stderr);
    if (rc == STRESS_CASE_ABANDONED)
        _exit(1);
    return rc == STRESS_CASE_OK ? 0 : rc == STRESS_CASE_FAILED ? 1 : 3;
}

static int self_dir(char *buf, size_t len)
{
    ssize_t n = readlink("/proc/self/exe", buf, len - 1);
    if (n <= 0)
        return -1;
    buf[n] = 0;
    char *slash = strrchr(buf, '/');
    if (!slash)
        return -1;
    *slash = 0;
    return 0;
}

/* The program that runs cases with reference counting rc_bit. */
static int program_for(int rc_bit, char *buf, size_t len)
{
    char dir[PATH_MAX];
    if (self_dir(dir, sizeof dir) != 0)
        return -1;
    const char *name = rc_bit == STRESS_RC_ATOMIC_BIT ? "frt-stress-atomic" : "frt-stress";
    if (rc_bit == stress_own_rc()) {
        ssize_t n = readlink("/proc/self/exe", buf, len - 1);
        if (n <= 0)
            return -1;
        buf[n] = 0;
        return 0;
    }
    size_t dl = strlen(dir), nl = strlen(name);
    if (dl + nl + 2 > len)
        return -1;
    memcpy(buf, dir, dl);
    buf[dl] = '/';
    memcpy(buf + dl + 1, name, nl + 1);
    return access(buf, X_OK) == 0 ? 0 : -1;
}

static double case_timeout(const stress_options *opt)
{
    if (opt->timeout > 0)
        return opt->timeout;
    return opt->ops ? 900 : 60 + 20 * opt->duration;
}

static void reproduce_line(char *buf, size_t len, const stress_options *opt, const char *wl,
                           unsigned threads, int rc_bit)
{
    char run[64];
    if (opt->ops)
        snprintf(run, sizeof run, "--ops %llu", (unsigned long long)opt->ops);
    else
        snprintf(run, sizeof run, "--duration %g", opt->duration);
    snprintf(buf, len, "frt-stress --workload %s --threads %u --seed %llu %s --rc %s --pin %s%s%s%s%s%s",
             wl, threads, (unsigned long long)opt->seed, run, stress_rc_name(rc_bit),
             stress_pin_name(opt->pin), opt->topology ? " --topology '" : "",
             opt->topology ? opt->topology : "", opt->topology ? "'" : "",
             opt->fault ? " --inject-fault " : "", opt->fault ? stress_fault_name(opt->fault) : "");
}

static void run_child(const stress_options *opt, const stress_workload *wl, unsigned threads,
                      int rc_bit, stress_result *r)
{
    stress_result_init(r);
    snprintf(r->workload, sizeof r->workload, "%s", wl->name);
    snprintf(r->rc, sizeof r->rc, "%s", stress_rc_name(rc_bit));
    snprintf(r->pin, sizeof r->pin, "%s", stress_pin_name(opt->pin));
    r->threads = threads;
    r->seed = opt->seed;

    char prog[PATH_MAX];
    if (program_for(rc_bit, prog, sizeof prog) != 0) {
        snprintf(r->status, sizeof r->status, "missing");
        fprintf(stderr, "frt-stress: cannot find the %s build of this program next to it (%s)\n",
                stress_rc_name(rc_bit), rc_bit == STRESS_RC_ATOMIC_BIT ? "frt-stress-atomic" : "frt-stress");
        return;
    }
    int fds[2];
    if (pipe(fds) != 0) {
        fprintf(stderr, "frt-stress: pipe: %s\n", strerror(errno));
        return;
    }
    fcntl(fds[0], F_SETFD, FD_CLOEXEC);
    char a_threads[16], a_run[32], a_seed[32], a_probe[32], a_gc[96], a_fd[16];
    snprintf(a_threads, sizeof a_threads, "%u", threads);
    if (opt->ops)
        snprintf(a_run, sizeof a_run, "%llu", (unsigned long long)opt->ops);
    else
        snprintf(a_run, sizeof a_run, "%.17g", opt->duration);
    snprintf(a_seed, sizeof a_seed, "%llu", (unsigned long long)opt->seed);
    snprintf(a_probe, sizeof a_probe, "%.17g", opt->stw_probe_ms);
    snprintf(a_gc, sizeof a_gc, "%zu,%zu,%zu", opt->gc_threshold[0], opt->gc_threshold[1],
             opt->gc_threshold[2]);
    snprintf(a_fd, sizeof a_fd, "%d", fds[1]);
    const char *argv[32];
    int k = 0;
    argv[k++] = prog;
    argv[k++] = "--case";
    argv[k++] = "--workload";
    argv[k++] = wl->name;
    argv[k++] = "--threads";
    argv[k++] = a_threads;
    argv[k++] = opt->ops ? "--ops" : "--duration";
    argv[k++] = a_run;
    argv[k++] = "--seed";
    argv[k++] = a_seed;
    argv[k++] = "--pin";
    argv[k++] = stress_pin_name(opt->pin);
    if (opt->topology) {
        argv[k++] = "--topology";
        argv[k++] = opt->topology;
    }
    argv[k++] = "--stw-probe";
    argv[k++] = a_probe;
    argv[k++] = "--gc-threshold";
    argv[k++] = a_gc;
    if (opt->fault) {
        argv[k++] = "--inject-fault";
        argv[k++] = stress_fault_name(opt->fault);
    }
    if (opt->quiet)
        argv[k++] = "--quiet";
    if (opt->hot)
        argv[k++] = "--hot";
    if (opt->hot_off)
        argv[k++] = "--hot-off";
    argv[k++] = "--result-fd";
    argv[k++] = a_fd;
    argv[k] = NULL;

    fflush(stdout);
    fflush(stderr);
    pid_t pid;
    int e = posix_spawn(&pid, prog, NULL, NULL, (char *const *)argv, environ);
    close(fds[1]);
    if (e != 0) {
        fprintf(stderr, "frt-stress: cannot run %s: %s\n", prog, strerror(e));
        close(fds[0]);
        return;
    }
    char buf[16384];
    size_t len = 0;
    uint64_t deadline = stress_now_ns() + (uint64_t)(case_timeout(opt) * 1e9);
    int hung = 0;
    for (;;) {
        struct pollfd p = {fds[0], POLLIN, 0};
        int pr = poll(&p, 1, 200);
        if (pr > 0) {
            ssize_t n = read(fds[0], buf + len, sizeof buf - 1 - len);
            if (n > 0) {
                len += (size_t)n;
                if (len < sizeof buf - 1)
                    continue;
            }
            if (n == 0 || len >= sizeof buf - 1)
                break;
            if (n < 0 && errno != EINTR)
                break;
        } else if (pr < 0 && errno != EINTR) {
            break;
        }
        if (stress_now_ns() > deadline) {
            hung = 1;
            kill(pid, SIGKILL);
            break;
        }
    }
    buf[len] = 0;
    close(fds[0]);
    int st = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    while (wait4(pid, &st, 0, &ru) < 0 && errno == EINTR) {
    }
    int complete = stress_result_parse_record(buf, r) == 0;
    /* The record may name another build's rc; the sweep's view wins. */
    snprintf(r->rc, sizeof r->rc, "%s", stress_rc_name(rc_bit));
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                 (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    if (r->cpu_s <= 0)
        r->cpu_s = cpu;
    if (r->rss_peak_mb <= 0)
        r->rss_peak_mb = (double)ru.ru_maxrss / 1024.0;
    char why[sizeof r->status] = "";
    if (hung)
        snprintf(why, sizeof why, "hung");
    else if (WIFSIGNALED(st))
        snprintf(why, sizeof why, "crashed (signal %d)", WTERMSIG(st));
    else if (WIFEXITED(st) && WEXITSTATUS(st) != 0 && WEXITSTATUS(st) != 1 && WEXITSTATUS(st) != 3)
        snprintf(why, sizeof why, "exit %d", WEXITSTATUS(st));
    else if (!complete)
        snprintf(why, sizeof why, "no result");
    else if (WIFEXITED(st) && WEXITSTATUS(st) == 1 && strcmp(r->status, "ok") == 0)
        snprintf(why, sizeof why, "FAILED");
    if (*why) {
        snprintf(r->status, sizeof r->status, "%s", why);
        char rep[1024];
        reproduce_line(rep, sizeof rep, opt, wl->name, threads, rc_bit);
        fprintf(stderr, "frt-stress: case %s %s %u threads %s%s; reproduce: %s\n", wl->name,
                stress_rc_name(rc_bit), threads, why,
                hung ? " (killed after --timeout)" : "", rep);
    }
}

static int case_failed(const stress_result *r)
{
    return strcmp(r->status, "ok") != 0;
}

static void print_case_line(const stress_options *opt, const stress_result *r)
{
    if (opt->quiet)
        return;
    printf("  %-12s %-6s %4llu threads %12.4f Mops/s  %7.2f s  %s\n", r->workload, r->rc,
           (unsigned long long)r->threads, r->ops_per_s / 1e6, r->seconds, r->status);
    fflush(stdout);
}

/* One case with one seed, in this process or a child. */
static void run_one(const stress_options *opt, const stress_workload *wl, unsigned threads,
                    int rc_bit, stress_topo *topo, stress_result *r)
{
    if (rc_bit == stress_own_rc() && opt->in_process) {
        int rc = stress_run_case(opt, wl, threads, topo, r);
        if (rc == STRESS_CASE_ABANDONED) {
            fprintf(stderr, "frt-stress: --in-process: stopping at the first failed "
                            "case (its objects are still held)\n");
            fflush(NULL);
            _exit(1);
        }
    } else {
        run_child(opt, wl, threads, rc_bit, r);
    }
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* runs[k] for seed k: the run of median throughput (a failed run wins, so
 * that the report shows the failure). */
static stress_result pick_median(stress_result *runs, unsigned k)
{
    double v[100];
    for (unsigned i = 0; i < k; i++) {
        if (case_failed(&runs[i]))
            return runs[i];
        v[i] = runs[i].ops_per_s;
    }
    qsort(v, k, sizeof v[0], by_value);
    for (unsigned i = 0; i < k; i++)
        if (runs[i].ops_per_s == v[(k - 1) / 2])
            return runs[i];
    return runs[0];
}

int stress_sweep(const stress_options *opt, stress_topo *topo, stress_result **out, size_t *nout)
{
    int rcs[2], nrc = 0;
    if (opt->rc & STRESS_RC_BRC)
        rcs[nrc++] = STRESS_RC_BRC;
    if (opt->rc & STRESS_RC_ATOMIC_BIT)
        rcs[nrc++] = STRESS_RC_ATOMIC_BIT;
    unsigned seeds = opt->seeds ? opt->seeds : 1;
    size_t total = (size_t)opt->nworkloads * opt->nthreads * (size_t)nrc;
    stress_result *res = calloc(total ? total : 1, sizeof *res);
    stress_result *runs = calloc((size_t)seeds * 2, sizeof *runs);
    if (!res || !runs) {
        fprintf(stderr, "frt-stress: out of memory\n");
        exit(3);
    }
    size_t n = 0;
    int failed = 0;
    for (unsigned wi = 0; wi < opt->nworkloads; wi++) {
        for (unsigned ti = 0; ti < opt->nthreads; ti++) {
            /* Seed by seed, brc and atomic back to back: a burst of other
             * load hits both sides of that seed's ratio. */
            double ratio[100], ratio_cpu[100];
            unsigned nratio = 0;
            for (unsigned k = 0; k < seeds; k++) {
                stress_options o = *opt;
                o.seed = opt->seed + k;
                for (int ri = 0; ri < nrc; ri++) {
                    stress_result *r = &runs[(size_t)ri * seeds + k];
                    run_one(&o, opt->workloads[wi], opt->threads[ti], rcs[ri], topo, r);
                    print_case_line(opt, r);
                }
                stress_result *b = &runs[k], *a = &runs[seeds + k];
                if (nrc == 2 && !case_failed(a) && !case_failed(b) && a->ops_per_s > 0 &&
                    a->ops_per_cpu_s > 0) {
                    ratio[nratio] = b->ops_per_s / a->ops_per_s;
                    ratio_cpu[nratio++] = b->ops_per_cpu_s / a->ops_per_cpu_s;
                }
            }
            qsort(ratio, nratio, sizeof ratio[0], by_value);
            qsort(ratio_cpu, nratio, sizeof ratio_cpu[0], by_value);
            for (int ri = 0; ri < nrc; ri++) {
                stress_result *r = &res[n++];
                *r = pick_median(&runs[(size_t)ri * seeds], seeds);
                r->seeds = seeds;
                r->brc_over_atomic_median = nratio ? ratio[(nratio - 1) / 2] : NAN;
                r->brc_over_atomic_cpu = nratio ? ratio_cpu[(nratio - 1) / 2] : NAN;
                failed += case_failed(r);
            }
        }
    }
    free(runs);
    *out = res;
    *nout = n;
    return failed;
}
