/* libFuzzer target over the property test's operation language.
 *
 * The input's bytes decode into a program (property_ops.h, prop_decode:
 * the first byte picks 1 to 3 threads, then 4 bytes per operation), which
 * runs against the runtime with the same model and checks as
 * tests/test_property.c. The threads take turns (serial mode), so a run is
 * deterministic: the same input does the same thing every time, as
 * libFuzzer needs. A failed check prints one line and aborts, which
 * libFuzzer reports as a crash and saves the input.
 *
 * To see what an input does:
 *   FUZZ_OPS_PRINT=1 ./fuzz_ops crash-...    the program, as test_property --replay reads it
 *                                            (it shrinks there, too)
 *   FUZZ_OPS_TRACE=1 ./fuzz_ops crash-...    every step as the model resolved it */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "property_exec.h"
#include "property_model.h"
#include "property_ops.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void on_fail(void)
{
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    prop_fail_hook = on_fail;
    prop_prog p;
    prop_decode(&p, data, size, 3, 400);
    prop_cfg cfg = {0};
    cfg.serial = 1;
    cfg.round_max = p.threads == 1 ? 1 : 8;
    if (getenv("FUZZ_OPS_PRINT")) {
        fprintf(stderr, "# replay: test_property --replay FILE --mode serial --round %zu\n",
                cfg.round_max);
        prop_print(stderr, &p);
    }
    if (getenv("FUZZ_OPS_TRACE"))
        cfg.trace = stderr;
    prop_result r;
    prop_run(&p, &cfg, &r);
    prop_prog_free(&p);
    return 0;
}
