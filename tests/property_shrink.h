/* Running programs in child processes, and shrinking a failing one.
 *
 * Every program runs in a fork()ed child, so a crash, an abort (a debug
 * build's misuse report, a sanitizer's report) or a hang fails that child
 * only; the parent reads the child's stderr and names the failure by its
 * signature: the name of the check that failed ("refcount",
 * "destroyed-while-referenced", ...), "signal N", "exit N" or "timeout".
 *
 * prop_shrink is delta debugging (ddmin) over the operation list: it
 * removes chunks of operations, halving the chunk size when nothing can go,
 * and keeps a candidate when it still fails with the same signature; then
 * it tries every single operation, and fewer threads. Because operands are
 * selectors (property_ops.h), every candidate is a valid program. */
#ifndef FRT_TESTS_PROPERTY_SHRINK_H
#define FRT_TESTS_PROPERTY_SHRINK_H

#include <stddef.h>

#include "property_exec.h"
#include "property_ops.h"

typedef struct prop_child {
    int failed;          /* 0: every check held */
    char sig[64];        /* the failure's signature */
    char *output;        /* the child's stderr (captured), NUL-terminated; free() it */
    prop_result res;     /* figures of a passing run */
} prop_child;

/* Run p in a child. capture: collect its stderr into out->output (else it
 * goes to ours). timeout_s: the child is killed after that long. */
void prop_run_child(const prop_prog *p, const prop_cfg *cfg, unsigned timeout_s, int capture,
                    prop_child *out);

/* Shrink *p (replaced by the smallest program found) while it fails with
 * signature sig; each candidate runs up to tries times (a concurrent
 * failure may not show every time). Stops after max_seconds. Returns the
 * number of child runs. */
size_t prop_shrink(prop_prog *p, prop_cfg *cfg, const char *sig, unsigned tries, unsigned timeout_s,
                   double max_seconds);

#endif
