/* The executor of the property test and the fuzzer: runs a program of the
 * operation language (property_ops.h) against the runtime, step by step,
 * with the reference model (property_model.h) planning each step and
 * checking the runtime after it.
 *
 * Threads. Test thread 0 is the calling thread (it calls frt_init and
 * frt_shutdown); threads 1..N-1 are started here. A round runs each
 * thread's operations of the round, either all at once (concurrent) or one
 * thread after the other while the rest wait in blocking sections
 * (serial: deterministic, as the fuzzer needs). Between rounds every test
 * thread waits in a blocking section and thread 0 does the barrier's work:
 * it hands over references, runs global operations (collections, freeze,
 * thresholds) and checks the runtime against the model, at a point where
 * no thread counts references, so every count is exact.
 *
 * A failed check calls prop_fail (property_model.h), which does not return. */
#ifndef FRT_TESTS_PROPERTY_EXEC_H
#define FRT_TESTS_PROPERTY_EXEC_H

#include <stddef.h>
#include <stdio.h>

#include "property_ops.h"

typedef struct prop_cfg {
    int serial;        /* threads of a round take turns */
    size_t round_max;  /* thread operations per round before an implied barrier (0: 64) */
    FILE *trace;       /* non-NULL: print every step as it is checked */
} prop_cfg;

typedef struct prop_result {
    size_t steps, rounds, ops_run;
    size_t objects, weakrefs, finalizers, max_alive;
    size_t collections;          /* every collection that ran, automatic ones included */
    size_t collections_checked;  /* barrier collections predicted exactly */
    size_t unreachable;          /* objects those found unreachable */
    size_t destroyed, finalized, resurrected, callbacks, fn_ran; /* events seen and checked */
    size_t gets_ok, gets_null, learned_cleared, steps_with_collections;
    size_t ops_overlapped;       /* operations run while another test thread ran its own */
} prop_result;

/* The fields of prop_result by name (all size_t), for printing and summing. */
typedef struct prop_field {
    const char *name;
    size_t offset;
} prop_field;
extern const prop_field prop_result_fields[];
extern const size_t prop_result_nfields;

/* Run prog from frt_init to frt_shutdown. Returns only if every check held. */
void prop_run(const prop_prog *prog, const prop_cfg *cfg, prop_result *res);

#endif
