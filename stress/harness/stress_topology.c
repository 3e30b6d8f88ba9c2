/* Topology discovery, the placement policies, and binding (hwloc). */
#include "stress_topology.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char *stress_pin_name(stress_pin p)
{
    static const char *const n[] = {"none", "compact", "scatter", "numa"};
    return n[p];
}

int stress_topo_load(stress_topo *tp, const char *spec, char *err, size_t errlen)
{
    memset(tp, 0, sizeof *tp);
    if (hwloc_topology_init(&tp->t) != 0) {
        snprintf(err, errlen, "hwloc_topology_init failed: %s", strerror(errno));
        return -1;
    }
    struct stat st;
    if (!spec || !*spec || strcmp(spec, "host") == 0) {
        snprintf(tp->source, sizeof tp->source, "host");
    } else if (stat(spec, &st) == 0 && S_ISREG(st.st_mode)) {
        if (hwloc_topology_set_xml(tp->t, spec) != 0) {
            snprintf(err, errlen, "%s: hwloc cannot read this XML topology: %s", spec, strerror(errno));
            goto fail;
        }
        snprintf(tp->source, sizeof tp->source, "xml %s", spec);
    } else {
        if (hwloc_topology_set_synthetic(tp->t, spec) != 0) {
            snprintf(err, errlen,
                     "--topology '%s': neither a readable XML file nor an hwloc synthetic "
                     "description (e.g. \"pack:2 numa:2 core:16 pu:2\")", spec);
            goto fail;
        }
        snprintf(tp->source, sizeof tp->source, "synthetic \"%s\"", spec);
    }
    if (hwloc_topology_load(tp->t) != 0) {
        snprintf(err, errlen, "hwloc_topology_load (%s) failed: %s", tp->source, strerror(errno));
        goto fail;
    }
    tp->this_system = hwloc_topology_is_thissystem(tp->t);
    int n;
    n = hwloc_get_nbobjs_by_type(tp->t, HWLOC_OBJ_PU);
    tp->npu = n > 0 ? (unsigned)n : 0;
    n = hwloc_get_nbobjs_by_type(tp->t, HWLOC_OBJ_CORE);
    tp->ncore = n > 0 ? (unsigned)n : 0;
    n = hwloc_get_nbobjs_by_type(tp->t, HWLOC_OBJ_PACKAGE);
    tp->npackage = n > 0 ? (unsigned)n : 0;
    n = hwloc_get_nbobjs_by_type(tp->t, HWLOC_OBJ_NUMANODE);
    tp->nnuma = n > 0 ? (unsigned)n : 0;
    if (!tp->npu) {
        snprintf(err, errlen, "%s: the topology has no PU", tp->source);
        goto fail;
    }
    return 0;
fail:
    hwloc_topology_destroy(tp->t);
    tp->t = NULL;
    return -1;
}

void stress_topo_free(stress_topo *tp)
{
    if (tp->t)
        hwloc_topology_destroy(tp->t);
    tp->t = NULL;
}

void stress_topo_describe(const stress_topo *tp, char *buf, size_t len)
{
    snprintf(buf, len, "%u package%s, %u NUMA node%s, %u cores, %u PUs", tp->npackage,
             tp->npackage == 1 ? "" : "s", tp->nnuma, tp->nnuma == 1 ? "" : "s", tp->ncore, tp->npu);
}

/* ------------------------------------------------------------------ */
/* The pure part.                                                     */

/* The first NUMA node whose cpuset holds this PU (a node may be CPU-less:
 * those never match). */
static hwloc_obj_t numa_of_pu(hwloc_topology_t t, hwloc_obj_t pu)
{
    hwloc_obj_t node = NULL;
    while ((node = hwloc_get_next_obj_by_type(t, HWLOC_OBJ_NUMANODE, node)))
        if (node->cpuset && hwloc_bitmap_isset(node->cpuset, pu->os_index))
            return node;
    return NULL;
}

static int logical_or(hwloc_obj_t o)
{
    return o ? (int)o->logical_index : -1;
}

/* Scatter: PUs sorted by their path in the tree read from the bottom: the
 * PU's rank among its core's PUs first, then the core's rank among its
 * parent's children, and so on up to the package. So every core's first PU
 * comes before any second PU, the first cores of every cache group and
 * every package before any second core, and consecutive threads change
 * package, then NUMA group, then core. On a symmetric tree this is the
 * mixed-radix digit reversal; on an uneven one it still uses every core
 * before any SMT sibling. */
#define MAX_DEPTH 32
typedef struct scatter_key {
    hwloc_obj_t pu;
    unsigned depth;
    unsigned rank[MAX_DEPTH]; /* rank[0]: the PU's; rank[1]: its parent's; ... */
} scatter_key;

static int scatter_cmp(const void *a, const void *b)
{
    const scatter_key *x = a, *y = b;
    unsigned d = x->depth > y->depth ? x->depth : y->depth;
    for (unsigned i = 0; i < d; i++) {
        unsigned rx = i < x->depth ? x->rank[i] : 0, ry = i < y->depth ? y->rank[i] : 0;
        if (rx != ry)
            return rx < ry ? -1 : 1;
    }
    return x->pu->logical_index < y->pu->logical_index ? -1 : x->pu->logical_index > y->pu->logical_index;
}

static unsigned scatter_order(hwloc_topology_t t, hwloc_obj_t *out, unsigned npu)
{
    scatter_key *k = calloc(npu, sizeof *k);
    if (!k)
        return 0;
    for (unsigned i = 0; i < npu; i++) {
        hwloc_obj_t o = hwloc_get_obj_by_type(t, HWLOC_OBJ_PU, i);
        k[i].pu = o;
        for (; o && o->parent && k[i].depth < MAX_DEPTH; o = o->parent)
            k[i].rank[k[i].depth++] = o->sibling_rank;
    }
    qsort(k, npu, sizeof *k, scatter_cmp);
    for (unsigned i = 0; i < npu; i++)
        out[i] = k[i].pu;
    free(k);
    return npu;
}

int stress_plan(hwloc_topology_t t, stress_pin pin, unsigned n, stress_place *out)
{
    memset(out, 0, n * sizeof *out);
    for (unsigned i = 0; i < n; i++) {
        out[i].pu = out[i].os_pu = out[i].core = out[i].package = out[i].numa = -1;
        out[i].sharing = n;
    }
    if (pin == STRESS_PIN_NONE || n == 0)
        return 0;
    int npu = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_PU);
    if (npu <= 0)
        return -1;
    hwloc_obj_t *order = calloc((size_t)npu, sizeof *order);
    unsigned *uses = calloc((size_t)npu, sizeof *uses);
    if (!order || !uses) {
        free(order);
        free(uses);
        return -1;
    }
    unsigned norder = 0;
    int rc = 0;
    if (pin == STRESS_PIN_COMPACT) {
        for (int i = 0; i < npu; i++)
            order[norder++] = hwloc_get_obj_by_type(t, HWLOC_OBJ_PU, (unsigned)i);
    } else if (pin == STRESS_PIN_SCATTER) {
        norder = scatter_order(t, order, (unsigned)npu);
    } else { /* numa: the nodes that have CPUs, in logical order */
        hwloc_obj_t node = NULL;
        while ((node = hwloc_get_next_obj_by_type(t, HWLOC_OBJ_NUMANODE, node)))
            if (node->cpuset && !hwloc_bitmap_iszero(node->cpuset) && norder < (unsigned)npu)
                order[norder++] = node;
    }
    if (norder == 0) {
        rc = -1;
        goto done;
    }
    for (unsigned i = 0; i < n; i++) {
        unsigned slot = i % norder;
        hwloc_obj_t o = order[slot];
        stress_place *p = &out[i];
        uses[slot]++;
        hwloc_obj_t node;
        if (pin == STRESS_PIN_NUMA) {
            node = o;
        } else {
            node = numa_of_pu(t, o);
            p->pu = (int)o->logical_index;
            p->os_pu = (int)o->os_index;
            p->core = logical_or(hwloc_get_ancestor_obj_by_type(t, HWLOC_OBJ_CORE, o));
        }
        p->package = logical_or(hwloc_get_ancestor_obj_by_type(t, HWLOC_OBJ_PACKAGE, o));
        p->numa = logical_or(node);
        p->cpuset = hwloc_bitmap_dup(o->cpuset);
        p->nodeset = node ? hwloc_bitmap_dup(node->nodeset) : NULL;
        if (!p->cpuset || (node && !p->nodeset)) {
            rc = -1;
            goto done;
        }
    }
    for (unsigned i = 0; i < n; i++)
        out[i].sharing = uses[i % norder];
done:
    free(order);
    free(uses);
    if (rc)
        stress_plan_free(out, n);
    return rc;
}

void stress_plan_free(stress_place *p, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        if (p[i].cpuset)
            hwloc_bitmap_free(p[i].cpuset);
        if (p[i].nodeset)
            hwloc_bitmap_free(p[i].nodeset);
        p[i].cpuset = p[i].nodeset = NULL;
    }
}

/* ------------------------------------------------------------------ */
/* Side effects.                                                      */

void stress_bind_self(const stress_topo *tp, const stress_place *p, int *cpu_rc, int *mem_rc)
{
    *cpu_rc = *mem_rc = 0;
    if (p->cpuset && hwloc_set_cpubind(tp->t, p->cpuset, HWLOC_CPUBIND_THREAD) != 0)
        *cpu_rc = errno ? errno : EINVAL;
    if (p->nodeset &&
        hwloc_set_membind(tp->t, p->nodeset, HWLOC_MEMBIND_BIND,
                          HWLOC_MEMBIND_THREAD | HWLOC_MEMBIND_BYNODESET) != 0)
        *mem_rc = errno ? errno : EINVAL;
}

void stress_plan_print(FILE *f, const stress_topo *tp, stress_pin pin, const stress_place *p,
                       unsigned n)
{
    char desc[160];
    stress_topo_describe(tp, desc, sizeof desc);
    fprintf(f, "# placement: --pin %s on %s (%s)%s\n", stress_pin_name(pin), tp->source, desc,
            pin == STRESS_PIN_NONE ? ": threads are not bound"
            : tp->this_system    ? ": threads and their memory policy are bound"
                                 : ": plan only (not this host: binding succeeds and does nothing)");
    if (pin == STRESS_PIN_NONE)
        return;
    /* Oversubscribed: more threads on a place than it has PUs. */
    unsigned shared = 0;
    unsigned char *over = calloc(n ? n : 1, 1);
    for (unsigned i = 0; i < n; i++) {
        int w = p[i].cpuset ? hwloc_bitmap_weight(p[i].cpuset) : 0;
        if (over && w > 0 && p[i].sharing > (unsigned)w) {
            over[i] = 1;
            shared++;
        }
    }
    if (n <= 32) {
        fprintf(f, "#   thread   PU (L#/P#)  core  package  NUMA  cpuset\n");
        for (unsigned i = 0; i < n; i++) {
            char cs[128] = "-";
            if (p[i].cpuset)
                hwloc_bitmap_list_snprintf(cs, sizeof cs, p[i].cpuset);
            char pu[24] = "-";
            if (p[i].pu >= 0)
                snprintf(pu, sizeof pu, "%d/%d", p[i].pu, p[i].os_pu);
            fprintf(f, "#   %6u  %10s  %4d  %7d  %4d  %s%s\n", i, pu, p[i].core, p[i].package,
                    p[i].numa, cs, over && over[i] ? "  (oversubscribed)" : "");
        }
    } else {
        fprintf(f, "#   thread:%s/NUMA\n#  ", pin == STRESS_PIN_NUMA ? "node" : "PU(L#)");
        for (unsigned i = 0; i < n; i++) {
            if (pin == STRESS_PIN_NUMA)
                fprintf(f, " %u:n%d", i, p[i].numa);
            else
                fprintf(f, " %u:%d/%d", i, p[i].pu, p[i].numa);
            if (i % 12 == 11 && i + 1 < n)
                fprintf(f, "\n#  ");
        }
        fprintf(f, "\n");
    }
    if (shared)
        fprintf(f, "# %u of %u threads are oversubscribed (more threads than PUs in their place)\n",
                shared, n);
    free(over);
}
