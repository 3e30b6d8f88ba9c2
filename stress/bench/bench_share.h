/* frt-bench-share: the pieces a file of rows needs. A row is a function
 * that measures one thing against its baseline in the same run (variants
 * interleaved, bench_common.h) and prints its figures and ratio. Each
 * stress/bench/bench_share*.c file registers its rows with BENCH_SHARE_ROW, so a
 * new file adds rows without touching the others; rows run in `order`. */
#ifndef FRT_STRESS_BENCH_SHARE_H
#define FRT_STRESS_BENCH_SHARE_H

#include "bench_common.h"

typedef struct share_ctx {
    int reps;         /* repetitions per figure (median reported) */
    double target_ns; /* length of one timed repetition */
    int quick;
} share_ctx;

typedef struct share_row {
    int order;        /* rows run in increasing order */
    const char *name; /* for --only (a substring) */
    void (*run)(const share_ctx *ctx);
} share_row;

void bench_share_register(const share_row *row);

#define BENCH_SHARE_ROW(order_, fn)                                                                \
    static const share_row fn##_row = {(order_), #fn, fn};                                         \
    __attribute__((constructor)) static void fn##_register(void)                                   \
    {                                                                                              \
        bench_share_register(&fn##_row);                                                           \
    }

/* One figure against its baseline: "name  x ns" lines and the ratio with
 * its target (target <= 0: for information). */
void bench_share_print(const share_ctx *ctx, const bench_variant *v, int nv, const char *ratio,
                       double target);

#endif
