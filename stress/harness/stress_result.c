/* The result fields, and the record a case hands back to the sweep. */
#include "stress_result.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S(f, doc) {#f, STRESS_F_STR, offsetof(stress_result, f), sizeof(((stress_result *)0)->f), 0, doc}
#define U(f, doc) {#f, STRESS_F_U64, offsetof(stress_result, f), 0, 0, doc}
#define D(f, doc) {#f, STRESS_F_DBL, offsetof(stress_result, f), 0, 0, doc}
#define DD(f, doc) {#f, STRESS_F_DBL, offsetof(stress_result, f), 0, 1, doc}

const stress_field stress_fields[] = {
    S(workload, "workload name"),
    S(rc, "reference counting: brc (frt-stress) or atomic (frt-stress-atomic)"),
    U(threads, "worker threads"),
    S(pin, "placement policy"),
    U(seed, "random seed"),
    S(status, "ok, FAILED (an invariant), crashed, hung, error"),
    U(ops, "operations done by all workers"),
    D(seconds, "timed stretch, s"),
    D(ops_per_s, "operations per second, all workers"),
    D(cpu_s, "user+system CPU time of the case process, s"),
    D(cpus_busy, "CPU time during the timed stretch / its length: how many CPUs the case got"),
    D(ops_per_cpu_s, "operations per CPU-second of the timed stretch (other load does not lower it)"),
    DD(speedup, "ops_per_s / ops_per_s at the smallest thread count of the sweep"),
    DD(efficiency, "speedup / (min(threads, CPUs) / min(base threads, CPUs))"),
    DD(brc_over_atomic, "ops_per_s(brc) / ops_per_s(atomic), same workload, threads and seed; with"
                        " --seeds N the median over the N seeds"),
    DD(brc_over_atomic_cpu, "ops_per_cpu_s(brc) / ops_per_cpu_s(atomic), median over the seeds:"
                            " the ratio with other load on the machine taken out"),
    {"seeds", STRESS_F_U64, offsetof(stress_result, seeds), 0, 1, "seeds the case ran with (--seeds);"
                        " its other fields are those of the run of median ops_per_s"},
    U(gc_collections, "collections (FRT_GC_STOP callbacks)"),
    U(gc_collected, "objects the collector freed"),
    D(gc_pause_p50_us, "collection pause, median, us"),
    D(gc_pause_p99_us, "collection pause, 99th percentile, us"),
    D(gc_pause_max_us, "collection pause, maximum, us"),
    U(stw_stops, "stops of the world, all (frt_stw_get_stats)"),
    D(stw_pause_mean_us, "stop-the-world pause (request to restart), mean, us"),
    D(stw_pause_max_us, "stop-the-world pause, maximum, us"),
    U(probes, "the harness's own probe stops"),
    D(tts_p50_us, "time to safepoint (request to all parked) of probe stops, median, us"),
    D(tts_p99_us, "time to safepoint, 99th percentile, us"),
    D(tts_max_us, "time to safepoint, maximum, us"),
    D(rss_peak_mb, "peak resident set of the case process (VmHWM), MiB"),
    U(heap_arenas_peak, "frt arenas mapped at most"),
    D(heap_mapped_peak_mb, "frt bytes mapped at most, MiB"),
    D(heap_in_use_mb, "frt bytes in live blocks when quiescent (everything held), MiB"),
    U(heap_blocks_in_use, "frt live blocks when quiescent"),
    U(heap_arenas_returned, "arenas given back to the OS during the case"),
    U(objects, "objects the workload made"),
    U(bind_failures, "threads whose CPU or memory binding failed"),
    U(numa_local_state, "workers whose own state came from hwloc_alloc_membind"),
};
const size_t stress_nfields = sizeof stress_fields / sizeof stress_fields[0];

void stress_result_init(stress_result *r)
{
    memset(r, 0, sizeof *r);
    r->speedup = r->efficiency = r->brc_over_atomic = r->brc_over_atomic_median =
        r->brc_over_atomic_cpu = NAN;
    strcpy(r->status, "error");
}

void stress_field_format(const stress_field *f, const stress_result *r, char *buf, size_t len,
                         int json)
{
    const char *p = (const char *)r + f->offset;
    switch (f->type) {
    case STRESS_F_STR:
        snprintf(buf, len, json ? "\"%s\"" : "%s", p);
        break;
    case STRESS_F_U64:
        snprintf(buf, len, "%llu", (unsigned long long)*(const uint64_t *)p);
        break;
    case STRESS_F_DBL: {
        double v = *(const double *)p;
        if (!isfinite(v))
            snprintf(buf, len, "%s", json ? "null" : "");
        else
            snprintf(buf, len, "%.6g", v);
        break;
    }
    }
}

void stress_result_write_record(int fd, const stress_result *r)
{
    if (fd < 0)
        return;
    char buf[8192];
    size_t n = 0;
    for (size_t i = 0; i < stress_nfields; i++) {
        const stress_field *f = &stress_fields[i];
        if (f->derived)
            continue;
        char v[128];
        if (f->type == STRESS_F_DBL)
            snprintf(v, sizeof v, "%.17g", *(const double *)((const char *)r + f->offset));
        else
            stress_field_format(f, r, v, sizeof v, 0);
        n += (size_t)snprintf(buf + n, sizeof buf - n, "%s=%s\n", f->name, v);
    }
    n += (size_t)snprintf(buf + n, sizeof buf - n, "end\n");
    for (size_t off = 0; off < n;) {
        ssize_t w = write(fd, buf + off, n - off);
        if (w <= 0)
            return;
        off += (size_t)w;
    }
}

int stress_result_parse_record(const char *text, stress_result *r)
{
    int complete = 0;
    const char *s = text;
    while (*s) {
        const char *nl = strchr(s, '\n');
        size_t len = nl ? (size_t)(nl - s) : strlen(s);
        char line[256];
        if (len >= sizeof line)
            len = sizeof line - 1;
        memcpy(line, s, len);
        line[len] = 0;
        s += nl ? len + 1 : len;
        if (strcmp(line, "end") == 0) {
            complete = 1;
            break;
        }
        char *eq = strchr(line, '=');
        if (!eq)
            continue;
        *eq = 0;
        const char *v = eq + 1;
        for (size_t i = 0; i < stress_nfields; i++) {
            const stress_field *f = &stress_fields[i];
            if (strcmp(f->name, line) != 0)
                continue;
            char *p = (char *)r + f->offset;
            if (f->type == STRESS_F_STR)
                snprintf(p, f->size, "%s", v);
            else if (f->type == STRESS_F_U64)
                *(uint64_t *)p = strtoull(v, NULL, 10);
            else
                *(double *)p = strtod(v, NULL);
        }
    }
    return complete ? 0 : -1;
}
