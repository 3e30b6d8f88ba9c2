/* One case's results, and the one table of fields that the child's result
 * record, the JSON and the CSV are all written from (stress_result.c). */
#ifndef FRT_STRESS_RESULT_H
#define FRT_STRESS_RESULT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct stress_result {
    char workload[32];
    char rc[8];           /* brc, atomic */
    char pin[16];
    char status[32];      /* ok, FAILED, crashed, hung, error */
    uint64_t threads;
    uint64_t seed;
    uint64_t ops;         /* operations done by all workers */
    double seconds;       /* the timed stretch: start barrier to the last worker's end */
    double ops_per_s;
    double cpu_s;         /* user + system time of the case's process */
    double cpus_busy;     /* CPU time during the timed stretch / its length: CPUs the case got */
    double ops_per_cpu_s; /* ops / CPU time of the timed stretch: immune to other load */
    /* derived by the sweep from several cases; NaN where not defined */
    double speedup;       /* ops/s over ops/s at the sweep's smallest thread count */
    double efficiency;    /* speedup / (min(T, CPUs) / min(T0, CPUs)) */
    double brc_over_atomic; /* ops/s of brc / ops/s of atomic, same workload and threads */
    uint64_t seeds;       /* seeds the case ran with; the record is the median run's */
    double brc_over_atomic_median; /* the median over those seeds of each seed's ratio */
    double brc_over_atomic_cpu; /* the same ratio of ops_per_cpu_s: immune to other load */
    /* collector, from frt_gc_callback_add (FRT_GC_STOP) */
    uint64_t gc_collections;
    uint64_t gc_collected;
    double gc_pause_p50_us, gc_pause_p99_us, gc_pause_max_us;
    /* stop-the-world: every stop (collections and probes) from frt_stw_get_stats */
    uint64_t stw_stops;
    double stw_pause_mean_us, stw_pause_max_us;
    /* the harness's probe stops: time from the request to every thread parked */
    uint64_t probes;
    double tts_p50_us, tts_p99_us, tts_max_us;
    /* memory */
    double rss_peak_mb;   /* VmHWM of the case's process */
    uint64_t heap_arenas_peak;
    double heap_mapped_peak_mb;
    double heap_in_use_mb; /* frt_heap_get_stats at the quiescent point, everything held */
    uint64_t heap_blocks_in_use;
    uint64_t heap_arenas_returned;
    uint64_t objects;     /* objects the workload made */
    uint64_t bind_failures;
    uint64_t numa_local_state; /* workers whose state was allocated with hwloc_alloc_membind */
} stress_result;

typedef enum { STRESS_F_STR, STRESS_F_U64, STRESS_F_DBL } stress_field_type;

typedef struct stress_field {
    const char *name;
    stress_field_type type;
    size_t offset;
    size_t size;      /* of a string field */
    int derived;      /* computed by the sweep, not by the case */
    const char *doc;  /* unit and meaning (docs/stress.md repeats these) */
} stress_field;

extern const stress_field stress_fields[];
extern const size_t stress_nfields;

void stress_result_init(stress_result *r);
/* The case's record: "key=value" lines then "end". */
void stress_result_write_record(int fd, const stress_result *r);
/* Parse a record; 0 if it was complete. */
int stress_result_parse_record(const char *text, stress_result *r);
/* A field's value as text for CSV/JSON; "" (CSV) or null (JSON) for NaN. */
void stress_field_format(const stress_field *f, const stress_result *r, char *buf, size_t len,
                         int json);

#endif
