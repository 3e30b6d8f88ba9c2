/* The live progress line: only when stdout is a terminal, rewritten in
 * place (carriage return, clear to end of line), cleared at the end. */
#include "stress_harness.h"

#include <stdio.h>
#include <unistd.h>

int stress_progress_enabled(const stress_options *opt)
{
    return !opt->quiet && isatty(STDOUT_FILENO);
}

void stress_progress_show(const stress_case *c, double elapsed_s, double total_s, uint64_t ops,
                          uint64_t collections, uint64_t stops)
{
    char when[48];
    if (total_s > 0)
        snprintf(when, sizeof when, "%5.1f/%.1f s", elapsed_s, total_s);
    else
        snprintf(when, sizeof when, "%5.1f s, %3.0f%% of --ops", elapsed_s,
                 c->ops_target ? 100.0 * (double)ops / ((double)c->ops_target * c->nthreads) : 0.0);
    printf("\r  %-12s %-6s %4u threads  %s  %10.3f Mops  %9.3f Mops/s  gc %llu  stops %llu%s\033[K",
           c->wl->name, stress_own_rc_name(), c->nthreads, when, (double)ops / 1e6,
           elapsed_s > 0 ? (double)ops / 1e6 / elapsed_s : 0.0, (unsigned long long)collections,
           (unsigned long long)stops, stress_failed(c) ? "  FAILING" : "");
    fflush(stdout);
}

void stress_progress_clear(void)
{
    printf("\r\033[K");
    fflush(stdout);
}
