/* frt-bench-share: sharing objects between threads. Each row is a
 * function that measures one thing against its baseline in the same run
 * and prints one line (what, figures, ratio, target). The lock rows and the
 * reference/map/reclamation rows live in their own files; the program runs
 * every row of every list. Method and figures: docs/benchmarks.md. */
#ifndef FRT_STRESS_BENCH_SHARE_H
#define FRT_STRESS_BENCH_SHARE_H

typedef struct bench_share_row {
    const char *name;
    void (*run)(int quick); /* quick: smaller sizes (sanitizer builds, smoke tests) */
} bench_share_row;

/* stress/bench_share_reclaim.c: frt_ref loads, the map, deferred reclamation. */
extern const bench_share_row bench_share_reclaim_rows[]; /* NULL-name terminated */

#endif
