/* The program around the workloads: running a case, the sweep of cases in
 * child processes, the progress line, the report, JSON/CSV and plots.
 * Workloads need only stress.h. */
#ifndef FRT_STRESS_HARNESS_H
#define FRT_STRESS_HARNESS_H

#include <stdio.h>

#include "stress.h"
#include "stress_result.h"
#include "stress_topology.h"

/* stress_runner.c: one case in this process. */
enum {
    STRESS_CASE_OK = 0,
    STRESS_CASE_FAILED = 1,    /* an invariant failed; the runtime was shut down */
    STRESS_CASE_ABANDONED = 2, /* an invariant failed while objects were held: the runtime's
                                  state is unknown, so it was not torn down; exit the process */
    STRESS_CASE_ERROR = 3      /* could not run (frt_init, threads, memory) */
};
int stress_run_case(const stress_options *opt, const stress_workload *wl, unsigned nthreads,
                    stress_topo *topo, stress_result *r);
/* The injection itself (stress_fault_point without its conditions). */
void stress_fault_now(stress_case *c, stress_worker *w, frt_object *o);

/* stress_progress.c: the live line, on a terminal only. */
int stress_progress_enabled(const stress_options *opt);
void stress_progress_show(const stress_case *c, double elapsed_s, double total_s, uint64_t ops,
                          uint64_t collections, uint64_t stops);
void stress_progress_clear(void);

/* stress_sweep.c */
/* Every case of the options, each in a child (or here with --in-process);
 * results in *out (malloc'd). Returns the number of cases that failed. */
int stress_sweep(const stress_options *opt, stress_topo *topo, stress_result **out, size_t *n);
/* --case: run the one case and write its record; returns the exit status. */
int stress_case_main(const stress_options *opt, stress_topo *topo);

/* stress_report.c */
void stress_derive(stress_result *r, size_t n, unsigned cpus);
void stress_report_header(FILE *f, const stress_options *opt, const stress_topo *topo, unsigned cpus);
void stress_report_tables(FILE *f, const stress_options *opt, const stress_result *r, size_t n,
                          unsigned cpus);

/* stress_output.c */
int stress_write_json(const char *path, const stress_options *opt, const stress_topo *topo,
                      const stress_place *plan, unsigned nplan, const stress_result *r, size_t n,
                      unsigned cpus);
int stress_write_csv(const char *path, const stress_result *r, size_t n);

/* stress_plot.c: 0 plotted, 1 gnuplot missing (data and script written), -1 error. */
int stress_plot(const char *dir, const stress_options *opt, const stress_result *r, size_t n);

/* stress_stats.c */
double stress_percentile(double *v, size_t n, double q); /* sorts v; nearest rank; 0 if n == 0 */
double stress_peak_rss_mb(void);                          /* VmHWM */
void stress_reset_peak_rss(void);                         /* clear_refs 5, where allowed */
unsigned stress_online_cpus(void);                        /* CPUs this process may run on */
void stress_cpu_model(char *buf, size_t len);
const char *stress_build_kind(void);                      /* "optimised", "sanitizer", ... */

#endif
