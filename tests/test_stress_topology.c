/* The placement policies of frt-stress (stress/harness/stress_topology.c), checked
 * exactly on synthetic hwloc topologies, against formulas computed here
 * independently of the implementation:
 *   - "pack:2 numa:2 core:16 pu:2": 2 packages, 4 NUMA nodes, 64 cores, 128 PUs
 *   - "pack:4 numa:2 core:8 pu:4":  4 packages, 8 NUMA nodes, 64 cores, 256 PUs
 *   - "core:2 pu:1":                this machine's shape (2 PUs, 1 node)
 *   - an asymmetric one (PUs removed with hwloc_topology_restrict)
 *   - the first one again, exported to XML and loaded from the file.
 * Then the real host: a compact plan binds this thread to exactly its PU. */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "stress/harness/stress_topology.h"

static stress_place plan[1024];

static void load(stress_topo *tp, const char *spec)
{
    char err[512];
    if (stress_topo_load(tp, spec, err, sizeof err) != 0) {
        fprintf(stderr, "load %s: %s\n", spec, err);
        exit(1);
    }
}

static void make_plan(stress_topo *tp, stress_pin pin, unsigned n)
{
    CHECK(n <= sizeof plan / sizeof plan[0]);
    CHECK_EQ(stress_plan(tp->t, pin, n, plan), 0);
}

/* Symmetric tree with arities a[0..levels) from the top (package, NUMA
 * node, core, PU): scatter puts thread i at the mixed-radix digit reversal
 * of i, compact at PU i. Returns the logical PU index. */
static int scatter_formula(unsigned i, const unsigned *a, unsigned levels)
{
    unsigned total = 1;
    for (unsigned l = 0; l < levels; l++)
        total *= a[l];
    i %= total;
    unsigned pu = 0, below = total, rest = i;
    for (unsigned l = 0; l < levels; l++) {
        below /= a[l];
        pu += (rest % a[l]) * below;
        rest /= a[l];
    }
    return (int)pu;
}

/* Checks for a symmetric pack:P numa:N core:C pu:U topology. */
static void check_symmetric(const char *spec, unsigned P, unsigned N, unsigned C, unsigned U)
{
    stress_topo tp;
    load(&tp, spec);
    unsigned npu = P * N * C * U, nnuma = P * N;
    CHECK_EQ(tp.npu, npu);
    CHECK_EQ(tp.nnuma, nnuma);
    CHECK_EQ(tp.npackage, P);
    CHECK_EQ(tp.ncore, P * N * C);
    CHECK_EQ(tp.this_system, 0);
    unsigned n = npu + 3; /* wrap around too */
    unsigned pu_per_numa = C * U, pu_per_pack = N * C * U;

    make_plan(&tp, STRESS_PIN_COMPACT, n);
    for (unsigned i = 0; i < n; i++) {
        unsigned pu = i % npu;
        CHECK_EQ(plan[i].pu, pu);
        CHECK_EQ(plan[i].os_pu, pu); /* synthetic: OS index = logical index */
        CHECK_EQ(plan[i].core, pu / U);
        CHECK_EQ(plan[i].package, pu / pu_per_pack);
        CHECK_EQ(plan[i].numa, pu / pu_per_numa);
        CHECK_EQ(hwloc_bitmap_weight(plan[i].cpuset), 1);
        CHECK(hwloc_bitmap_isset(plan[i].cpuset, pu));
        CHECK_EQ(hwloc_bitmap_weight(plan[i].nodeset), 1);
        CHECK(hwloc_bitmap_isset(plan[i].nodeset, pu / pu_per_numa));
        CHECK_EQ(plan[i].sharing, (i % npu) < 3 ? 2 : 1);
    }
    stress_plan_free(plan, n);

    unsigned a[4] = {P, N, C, U};
    make_plan(&tp, STRESS_PIN_SCATTER, n);
    for (unsigned i = 0; i < n; i++) {
        int pu = scatter_formula(i, a, 4);
        CHECK_EQ(plan[i].pu, pu);
        CHECK_EQ(plan[i].core, pu / (int)U);
        CHECK_EQ(plan[i].package, pu / (int)pu_per_pack);
        CHECK_EQ(plan[i].numa, pu / (int)pu_per_numa);
        CHECK(hwloc_bitmap_isset(plan[i].cpuset, (unsigned)pu));
    }
    /* What scatter is for: consecutive threads alternate packages; the
     * first P*N threads cover every NUMA node; the first cores-many threads
     * use distinct cores; an SMT sibling is used only after every core. */
    for (unsigned i = 0; i + 1 < P * N * C; i++)
        CHECK(P == 1 || plan[i].package != plan[i + 1].package);
    for (unsigned i = 0; i < nnuma; i++)
        for (unsigned j = 0; j < i; j++)
            CHECK(plan[i].numa != plan[j].numa);
    unsigned char *core_used = calloc(P * N * C, 1);
    CHECK(core_used);
    for (unsigned i = 0; i < P * N * C; i++) {
        CHECK(!core_used[plan[i].core]);
        core_used[plan[i].core] = 1;
    }
    free(core_used);
    stress_plan_free(plan, n);

    n = nnuma * 2 + 1;
    make_plan(&tp, STRESS_PIN_NUMA, n);
    for (unsigned i = 0; i < n; i++) {
        unsigned node = i % nnuma;
        CHECK_EQ(plan[i].numa, node);
        CHECK_EQ(plan[i].pu, -1);
        CHECK_EQ(plan[i].core, -1);
        CHECK_EQ(plan[i].package, node / N);
        CHECK_EQ(hwloc_bitmap_weight(plan[i].cpuset), pu_per_numa);
        CHECK_EQ(hwloc_bitmap_first(plan[i].cpuset), node * pu_per_numa);
        CHECK_EQ(hwloc_bitmap_last(plan[i].cpuset), node * pu_per_numa + pu_per_numa - 1);
        CHECK(hwloc_bitmap_isset(plan[i].nodeset, node));
        CHECK_EQ(plan[i].sharing, node == 0 ? 3 : 2);
    }
    stress_plan_free(plan, n);

    /* A thread's place does not depend on how many threads the plan has. */
    stress_place small[5];
    CHECK_EQ(stress_plan(tp.t, STRESS_PIN_SCATTER, 5, small), 0);
    make_plan(&tp, STRESS_PIN_SCATTER, 200);
    for (unsigned i = 0; i < 5; i++) {
        CHECK_EQ(small[i].pu, plan[i].pu);
        CHECK(hwloc_bitmap_isequal(small[i].cpuset, plan[i].cpuset));
    }
    stress_plan_free(small, 5);
    stress_plan_free(plan, 200);

    /* none: nothing bound. */
    make_plan(&tp, STRESS_PIN_NONE, 4);
    for (unsigned i = 0; i < 4; i++) {
        CHECK(plan[i].cpuset == NULL && plan[i].nodeset == NULL);
        CHECK_EQ(plan[i].pu, -1);
        CHECK_EQ(plan[i].numa, -1);
    }
    stress_plan_free(plan, 4);

    /* On a topology that is not this host, binding succeeds and does nothing. */
    make_plan(&tp, STRESS_PIN_COMPACT, 2);
    int cpu_rc = -1, mem_rc = -1;
    stress_bind_self(&tp, &plan[1], &cpu_rc, &mem_rc);
    CHECK_EQ(cpu_rc, 0);
    CHECK_EQ(mem_rc, 0);
    stress_plan_free(plan, 2);
    stress_topo_free(&tp);
    fprintf(stderr, "  %s: compact, scatter, numa, none exact\n", spec);
}

/* This machine's shape: 2 PUs, one node. */
static void check_small(void)
{
    stress_topo tp;
    load(&tp, "core:2 pu:1");
    CHECK_EQ(tp.npu, 2);
    CHECK_EQ(tp.nnuma, 1);
    make_plan(&tp, STRESS_PIN_COMPACT, 3);
    CHECK_EQ(plan[0].pu, 0);
    CHECK_EQ(plan[1].pu, 1);
    CHECK_EQ(plan[2].pu, 0);
    CHECK_EQ(plan[0].sharing, 2);
    CHECK_EQ(plan[1].sharing, 1);
    stress_plan_free(plan, 3);
    make_plan(&tp, STRESS_PIN_SCATTER, 2);
    CHECK_EQ(plan[0].pu, 0);
    CHECK_EQ(plan[1].pu, 1);
    CHECK_EQ(plan[0].numa, 0);
    CHECK_EQ(plan[1].numa, 0);
    stress_plan_free(plan, 2);
    make_plan(&tp, STRESS_PIN_NUMA, 2);
    for (unsigned i = 0; i < 2; i++) {
        CHECK_EQ(plan[i].numa, 0);
        CHECK_EQ(hwloc_bitmap_weight(plan[i].cpuset), 2);
        CHECK_EQ(plan[i].sharing, 2);
    }
    stress_plan_free(plan, 2);
    stress_topo_free(&tp);
    fprintf(stderr, "  core:2 pu:1: exact\n");
}

/* An asymmetric machine: package 0 loses core 1 (PUs 2, 3) and package 1
 * PU 13. Scatter must still use every PU once before any twice, alternate
 * packages while both have unused cores, and use all cores before SMT
 * siblings; compact is the logical order. */
static void check_asymmetric(void)
{
    stress_topo tp;
    load(&tp, "pack:2 core:4 pu:2");
    hwloc_bitmap_t keep = hwloc_bitmap_alloc();
    hwloc_bitmap_set_range(keep, 0, 15);
    hwloc_bitmap_clr(keep, 2);
    hwloc_bitmap_clr(keep, 3);
    hwloc_bitmap_clr(keep, 13);
    CHECK_EQ(hwloc_topology_restrict(tp.t, keep, 0), 0);
    hwloc_bitmap_free(keep);
    int npu = hwloc_get_nbobjs_by_type(tp.t, HWLOC_OBJ_PU);
    int ncore = hwloc_get_nbobjs_by_type(tp.t, HWLOC_OBJ_CORE);
    CHECK_EQ(npu, 13);
    CHECK_EQ(ncore, 7);
    make_plan(&tp, STRESS_PIN_SCATTER, (unsigned)npu);
    unsigned seen[16] = {0};
    unsigned char core_seen[8] = {0};
    for (int i = 0; i < npu; i++) {
        CHECK(plan[i].pu >= 0 && plan[i].pu < npu);
        CHECK(!seen[plan[i].pu]);
        seen[plan[i].pu] = 1;
        if (i < ncore) { /* one PU per core first */
            CHECK(!core_seen[plan[i].core]);
            core_seen[plan[i].core] = 1;
        }
        if (i + 1 < 6) /* package 0 has 3 cores, package 1 has 4: they alternate for 6 */
            CHECK(plan[i].package != plan[i + 1].package);
    }
    stress_plan_free(plan, (unsigned)npu);
    make_plan(&tp, STRESS_PIN_COMPACT, (unsigned)npu);
    for (int i = 0; i < npu; i++)
        CHECK_EQ(plan[i].pu, i);
    /* PU 2 of the restricted topology is the original PU 4. */
    CHECK_EQ(plan[2].os_pu, 4);
    stress_plan_free(plan, (unsigned)npu);
    stress_topo_free(&tp);
    fprintf(stderr, "  asymmetric (13 PUs, 7 cores): scatter covers every PU, cores first\n");
}

static void check_xml(void)
{
    stress_topo tp;
    load(&tp, "pack:2 numa:2 core:16 pu:2");
    char path[] = "/tmp/frt-test-topology-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    CHECK_EQ(hwloc_topology_export_xml(tp.t, path, 0), 0);
    stress_place a[16], b[16];
    CHECK_EQ(stress_plan(tp.t, STRESS_PIN_SCATTER, 16, a), 0);
    stress_topo tx;
    load(&tx, path);
    CHECK(strncmp(tx.source, "xml ", 4) == 0);
    CHECK_EQ(tx.npu, 128);
    CHECK_EQ(tx.nnuma, 4);
    CHECK_EQ(stress_plan(tx.t, STRESS_PIN_SCATTER, 16, b), 0);
    for (unsigned i = 0; i < 16; i++) {
        CHECK_EQ(a[i].pu, b[i].pu);
        CHECK_EQ(a[i].numa, b[i].numa);
    }
    stress_plan_free(a, 16);
    stress_plan_free(b, 16);
    stress_topo_free(&tx);
    stress_topo_free(&tp);
    unlink(path);
    char err[512];
    stress_topo bad;
    CHECK(stress_topo_load(&bad, "pack:two", err, sizeof err) != 0);
    CHECK(strstr(err, "synthetic") != NULL);
    fprintf(stderr, "  XML export/import: same plan; a bad description is refused\n");
}

/* The host: compact binds the calling thread to exactly its PU. */
static void check_host(void)
{
    stress_topo tp;
    load(&tp, NULL);
    CHECK_EQ(tp.this_system, 1);
    CHECK(tp.npu >= 1);
    cpu_set_t saved;
    CHECK_EQ(sched_getaffinity(0, sizeof saved, &saved), 0);
    unsigned n = tp.npu;
    make_plan(&tp, STRESS_PIN_COMPACT, n);
    stress_place *p = &plan[n - 1];
    int cpu_rc, mem_rc;
    stress_bind_self(&tp, p, &cpu_rc, &mem_rc);
    CHECK_EQ(cpu_rc, 0);
    cpu_set_t now;
    CHECK_EQ(sched_getaffinity(0, sizeof now, &now), 0);
    CHECK_EQ(CPU_COUNT(&now), 1);
    CHECK(CPU_ISSET(p->os_pu, &now));
    fprintf(stderr, "  host: bound to PU P#%d (membind: %s)\n", p->os_pu,
            mem_rc ? strerror(mem_rc) : "ok");
    stress_plan_free(plan, n);
    CHECK_EQ(sched_setaffinity(0, sizeof saved, &saved), 0);
    stress_topo_free(&tp);
}

int main(void)
{
    check_symmetric("pack:2 numa:2 core:16 pu:2", 2, 2, 16, 2);
    check_symmetric("pack:4 numa:2 core:8 pu:4", 4, 2, 8, 4);
    check_small();
    check_asymmetric();
    check_xml();
    check_host();
    TEST_PASS("test_stress_topology");
    return 0;
}
