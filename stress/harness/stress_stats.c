/* Percentiles, peak RSS, CPUs: the measuring helpers of the report. */
#include "stress_harness.h"

#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_common.h"

double stress_percentile(double *v, size_t n, double q)
{
    if (n == 0)
        return 0.0;
    qsort(v, n, sizeof *v, bench_cmp_double);
    return bench_percentile_sorted(v, n, q);
}

double stress_peak_rss_mb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return 0.0;
    char line[256];
    double mb = 0.0;
    while (fgets(line, sizeof line, f)) {
        unsigned long long kb;
        if (sscanf(line, "VmHWM: %llu kB", &kb) == 1) {
            mb = (double)kb / 1024.0;
            break;
        }
    }
    fclose(f);
    return mb;
}

void stress_reset_peak_rss(void)
{
    /* "5" resets VmHWM to the current RSS (Linux 4.0+); harmless elsewhere. */
    int fd = open("/proc/self/clear_refs", O_WRONLY);
    if (fd < 0)
        return;
    if (write(fd, "5", 1) != 1) {
        /* not allowed here: the peak then spans the whole process */
    }
    close(fd);
}

unsigned stress_online_cpus(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0)
            return (unsigned)n;
    }
    return (unsigned)bench_ncpus();
}

void stress_cpu_model(char *buf, size_t len)
{
    bench_cpu_model(buf, len);
}

const char *stress_build_kind(void)
{
    if (bench_sanitized())
        return "sanitizer build (figures are not meaningful)";
#if !defined(__OPTIMIZE__)
    return "NOT optimised (figures are not meaningful)";
#elif FRT_DEBUG
    return "debug checks on (FRT_DEBUG: figures are not meaningful)";
#else
    return "optimised";
#endif
}
