/* JSON and CSV, both written from the field table of stress_result.c. */
#include "stress_harness.h"

#include <errno.h>
#include <string.h>
#include <sys/utsname.h>

static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

static FILE *open_out(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        fprintf(stderr, "frt-stress: cannot write %s: %s\n", path, strerror(errno));
    return f;
}

static int close_out(FILE *f, const char *path)
{
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        fprintf(stderr, "frt-stress: error writing %s\n", path);
        return -1;
    }
    return 0;
}

int stress_write_json(const char *path, const stress_options *opt, const stress_topo *topo,
                      const stress_place *plan, unsigned nplan, const stress_result *r, size_t n,
                      unsigned cpus)
{
    FILE *f = open_out(path);
    if (!f)
        return -1;
    char cpu[256], desc[160];
    stress_cpu_model(cpu, sizeof cpu);
    stress_topo_describe(topo, desc, sizeof desc);
    struct utsname u;
    if (uname(&u) != 0)
        strcpy(u.release, "?");
    fprintf(f, "{\n  \"program\": \"frt-stress\",\n  \"frt_version\": ");
    json_string(f, FRT_VERSION);
    fprintf(f, ",\n  \"command\": ");
    char cmd[4096] = "";
    size_t len = 0;
    for (int i = 0; i < opt->argc && len < sizeof cmd - 1; i++)
        len += (size_t)snprintf(cmd + len, sizeof cmd - len, "%s%s", i ? " " : "", opt->argv[i]);
    json_string(f, cmd);
    fprintf(f, ",\n  \"host\": {\"cpus\": %u, \"cpu_model\": ", cpus);
    json_string(f, cpu);
    fprintf(f, ", \"kernel\": ");
    json_string(f, u.release);
    fprintf(f, ", \"build\": ");
    json_string(f, stress_build_kind());
    fprintf(f, "},\n  \"topology\": {\"source\": ");
    json_string(f, topo->source);
    fprintf(f, ", \"this_system\": %s, \"packages\": %u, \"numa_nodes\": %u, \"cores\": %u, "
               "\"pus\": %u},\n",
            topo->this_system ? "true" : "false", topo->npackage, topo->nnuma, topo->ncore, topo->npu);
    fprintf(f, "  \"options\": {\"workloads\": [");
    for (unsigned i = 0; i < opt->nworkloads; i++) {
        fprintf(f, "%s", i ? ", " : "");
        json_string(f, opt->workloads[i]->name);
    }
    fprintf(f, "], \"threads\": [");
    for (unsigned i = 0; i < opt->nthreads; i++)
        fprintf(f, "%s%u", i ? ", " : "", opt->threads[i]);
    fprintf(f, "], \"duration_s\": %g, \"ops_per_thread\": %llu, \"seed\": %llu, \"pin\": \"%s\", "
               "\"rc\": \"%s\", \"stw_probe_ms\": %g, \"gc_threshold\": [%zu, %zu, %zu], "
               "\"inject_fault\": \"%s\"},\n",
            opt->ops ? 0.0 : opt->duration, (unsigned long long)opt->ops,
            (unsigned long long)opt->seed, stress_pin_name(opt->pin),
            opt->rc == STRESS_RC_BOTH ? "both" : stress_rc_name(opt->rc), opt->stw_probe_ms,
            opt->gc_threshold[0], opt->gc_threshold[1], opt->gc_threshold[2],
            stress_fault_name(opt->fault));
    fprintf(f, "  \"placement\": [");
    for (unsigned i = 0; i < nplan; i++) {
        char cs[256] = "";
        if (plan[i].cpuset)
            hwloc_bitmap_list_snprintf(cs, sizeof cs, plan[i].cpuset);
        fprintf(f, "%s\n    {\"thread\": %u, \"pu\": %d, \"os_pu\": %d, \"core\": %d, \"package\": %d, "
                   "\"numa\": %d, \"cpuset\": ",
                i ? "," : "", i, plan[i].pu, plan[i].os_pu, plan[i].core, plan[i].package,
                plan[i].numa);
        json_string(f, cs);
        fprintf(f, ", \"sharing\": %u}", plan[i].sharing);
    }
    fprintf(f, "%s],\n  \"fields\": {", nplan ? "\n  " : "");
    for (size_t k = 0; k < stress_nfields; k++) {
        fprintf(f, "%s\n    ", k ? "," : "");
        json_string(f, stress_fields[k].name);
        fprintf(f, ": ");
        json_string(f, stress_fields[k].doc);
    }
    fprintf(f, "\n  },\n  \"results\": [");
    for (size_t i = 0; i < n; i++) {
        fprintf(f, "%s\n    {", i ? "," : "");
        for (size_t k = 0; k < stress_nfields; k++) {
            char v[128];
            stress_field_format(&stress_fields[k], &r[i], v, sizeof v, 1);
            fprintf(f, "%s\"%s\": %s", k ? ", " : "", stress_fields[k].name, v);
        }
        fprintf(f, "}");
    }
    fprintf(f, "%s]\n}\n", n ? "\n  " : "");
    return close_out(f, path);
}

int stress_write_csv(const char *path, const stress_result *r, size_t n)
{
    FILE *f = open_out(path);
    if (!f)
        return -1;
    for (size_t k = 0; k < stress_nfields; k++)
        fprintf(f, "%s%s", k ? "," : "", stress_fields[k].name);
    fprintf(f, "\n");
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < stress_nfields; k++) {
            char v[128];
            stress_field_format(&stress_fields[k], &r[i], v, sizeof v, 0);
            fprintf(f, "%s%s", k ? "," : "", v);
        }
        fprintf(f, "\n");
    }
    return close_out(f, path);
}
