/* frt-stress: main. Options, the topology, then either one case (--case,
 * as the sweep's child) or the whole sweep with its report and files. */
#include "stress_harness.h"

#include <stdlib.h>
#include <string.h>

static void list_workloads(void)
{
    for (unsigned i = 0; stress_workloads[i]; i++)
        printf("%-12s %s\n%-12s   (one operation: %s)\n", stress_workloads[i]->name,
               stress_workloads[i]->what, "", stress_workloads[i]->op);
}

static void default_threads(stress_options *opt, unsigned npu)
{
    opt->nthreads = 0;
    for (unsigned t = 1; t <= npu && opt->nthreads < STRESS_MAX_SWEEP; t *= 2)
        opt->threads[opt->nthreads++] = t;
    if (opt->threads[opt->nthreads - 1] != npu && opt->nthreads < STRESS_MAX_SWEEP)
        opt->threads[opt->nthreads++] = npu;
}

int main(int argc, char **argv)
{
    stress_options opt;
    stress_options_parse(&opt, argc, argv);
    if (opt.list) {
        list_workloads();
        return 0;
    }
    stress_topo topo;
    char err[512];
    if (stress_topo_load(&topo, opt.topology, err, sizeof err) != 0) {
        fprintf(stderr, "frt-stress: %s\n", err);
        return 2;
    }
    if (!opt.threads_given)
        default_threads(&opt, topo.npu ? topo.npu : 1);
    if (opt.case_mode) {
        int rc = stress_case_main(&opt, &topo);
        stress_topo_free(&topo);
        return rc;
    }

    unsigned cpus = stress_online_cpus();
    unsigned maxt = 0;
    for (unsigned i = 0; i < opt.nthreads; i++)
        maxt = opt.threads[i] > maxt ? opt.threads[i] : maxt;
    stress_place *plan = calloc(maxt, sizeof *plan);
    if (!plan || stress_plan(topo.t, opt.pin, maxt, plan) != 0) {
        fprintf(stderr, "frt-stress: cannot compute a placement for %u threads\n", maxt);
        return 3;
    }
    stress_report_header(stdout, &opt, &topo, cpus);
    stress_plan_print(stdout, &topo, opt.pin, plan, maxt);
    if (opt.plan_only) {
        stress_plan_free(plan, maxt);
        free(plan);
        stress_topo_free(&topo);
        return 0;
    }
    fflush(stdout);

    stress_result *res = NULL;
    size_t n = 0;
    int failed = stress_sweep(&opt, &topo, &res, &n);
    stress_derive(res, n, cpus);
    stress_report_tables(stdout, &opt, res, n, cpus);
    int bad_output = 0;
    if (opt.report) {
        FILE *f = fopen(opt.report, "w");
        if (f) {
            stress_report_header(f, &opt, &topo, cpus);
            stress_plan_print(f, &topo, opt.pin, plan, maxt);
            stress_report_tables(f, &opt, res, n, cpus);
            bad_output |= fclose(f) != 0;
        } else {
            fprintf(stderr, "frt-stress: cannot write %s\n", opt.report);
            bad_output = 1;
        }
    }
    if (opt.json)
        bad_output |= stress_write_json(opt.json, &opt, &topo, plan, maxt, res, n, cpus) != 0;
    if (opt.csv)
        bad_output |= stress_write_csv(opt.csv, res, n) != 0;
    if (opt.plot)
        bad_output |= stress_plot(opt.plot, &opt, res, n) < 0;
    if (opt.json || opt.csv || opt.report)
        printf("written:%s%s%s%s%s%s\n", opt.report ? " " : "", opt.report ? opt.report : "",
               opt.json ? " " : "", opt.json ? opt.json : "", opt.csv ? " " : "",
               opt.csv ? opt.csv : "");
    stress_plan_free(plan, maxt);
    free(plan);
    free(res);
    stress_topo_free(&topo);
    return failed ? 1 : bad_output ? 3 : 0;
}
