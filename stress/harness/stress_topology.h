/* Topology and thread placement for frt-stress, with hwloc.
 *
 * The topology is this host (the default), an hwloc synthetic description
 * ("pack:2 numa:4 core:16 pu:2") or an XML file exported by hwloc/lstopo.
 * stress_plan() is the placement policy as a pure function of the topology
 * (tests/test_stress_topology.c checks it exactly on synthetic topologies);
 * stress_bind_self() applies one thread's placement. On a topology that is
 * not this host, hwloc's binding calls succeed and do nothing: the plan is
 * computed and printed, and nothing is bound.
 *
 * Policies (docs/stress.md):
 *   none     no binding; the OS places threads.
 *   compact  thread i on PU i, in hwloc's logical order (the PUs of one
 *            core, then the next core, ...: neighbours share caches).
 *   scatter  as far apart as possible: PUs ordered by their place in the
 *            tree read from the bottom (rank among the core's PUs, then the
 *            core's rank in its parent, ... up to the package), so
 *            consecutive threads go to different packages, then NUMA
 *            groups, then cores, and SMT siblings come after every core. On
 *            a symmetric tree this is the mixed-radix digit reversal of i.
 *   numa     thread i bound to the whole cpuset of NUMA node (i mod N),
 *            over the N nodes that have CPUs; the OS schedules it within
 *            that node.
 *   More threads than PUs (or nodes) wrap around: the plan says how many
 *   threads share each place.
 * Every policy but none also binds the thread's memory policy to its NUMA
 * node (hwloc_set_membind, HWLOC_MEMBIND_THREAD): the runtime maps its
 * arenas in runtime/os.c without a node, and the pages are placed when the
 * owning thread first touches them, so they land on the thread's node. */
#ifndef FRT_STRESS_TOPOLOGY_H
#define FRT_STRESS_TOPOLOGY_H

#include <hwloc.h>
#include <stdio.h>

#include "stress.h"

struct stress_topo {
    hwloc_topology_t t;
    int this_system;      /* 1: the host; binding is real */
    char source[512];     /* "host", "synthetic \"...\"", "xml FILE" */
    unsigned npu, ncore, npackage, nnuma;
};

struct stress_place {
    int pu;               /* logical index of the one PU the thread is bound to, or -1 */
    int os_pu;            /* its OS index, or -1 */
    int core, package;    /* logical indexes, or -1 */
    int numa;             /* logical index of the NUMA node for its memory, or -1 */
    hwloc_bitmap_t cpuset;  /* what hwloc_set_cpubind gets; NULL: not bound */
    hwloc_bitmap_t nodeset; /* what hwloc_set_membind gets; NULL: not bound */
    unsigned sharing;     /* threads of the plan with this same place (1: alone); more
                             than the place's PUs means oversubscribed */
};

/* Load spec (NULL or "host": this host). 0, or -1 with a message in err. */
int stress_topo_load(stress_topo *tp, const char *spec, char *err, size_t errlen);
void stress_topo_free(stress_topo *tp);
/* "2 packages, 4 NUMA nodes, 32 cores, 64 PUs" */
void stress_topo_describe(const stress_topo *tp, char *buf, size_t len);

/* The placement of threads 0..n-1 under pin: pure (no binding, the topology
 * is only read). Thread i's place does not depend on n. Returns 0, or -1
 * (out of memory, or a topology without PUs). Free with stress_plan_free. */
int stress_plan(hwloc_topology_t t, stress_pin pin, unsigned n, stress_place *out);
void stress_plan_free(stress_place *p, unsigned n);

/* Bind the calling thread as p says. *cpu_rc and *mem_rc get 0 or an
 * errno (ENOSYS where the OS cannot bind memory). */
void stress_bind_self(const stress_topo *tp, const stress_place *p, int *cpu_rc, int *mem_rc);

/* Print the plan: one line per thread up to 32 threads, then packed. */
void stress_plan_print(FILE *f, const stress_topo *tp, stress_pin pin, const stress_place *p,
                       unsigned n);

#endif
