/* The leak report at frt_shutdown, after LeakSanitizer's summary: every
 * block still allocated (tracked by the collector or not), grouped by type
 * name, the largest groups first, with a few addresses to look up in a
 * debugger. It walks the heaps as frt_gc_get_objects does and allocates
 * nothing: the groups live on the stack, and types beyond the first
 * LEAK_GROUPS seen are summed on one line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leak_report.h"
#include "pool.h"
#include "runtime.h"

#define LEAK_GROUPS 32
#define LEAK_ADDRS 3

typedef struct leak_group {
    const frt_type *type;
    size_t count, bytes;
    const void *addr[LEAK_ADDRS];
} leak_group;

typedef struct leak_census {
    int by_type;
    size_t alive, bytes;
    size_t ngroups;
    leak_group group[LEAK_GROUPS];
    size_t other_count, other_bytes; /* types that found no free group */
} leak_census;

static int report_wanted(void)
{
    const char *v = getenv("FRT_LEAKS");
    if (v && *v)
        return strcmp(v, "0") != 0;
    return FRT_DEBUG;
}

static void census_visit(void *block, size_t size, void *arg)
{
    leak_census *c = arg;
    frt_object *o = block;
    if (atomic_load_explicit(&o->ob_ref_local, memory_order_relaxed) == FRT_REF_IMMORTAL)
        return; /* lives for the process by design: no leak */
    c->alive++;
    if (!c->by_type)
        return;
    c->bytes += size;
    leak_group *g = c->group;
    leak_group *end = c->group + c->ngroups;
    while (g < end && g->type != o->ob_type)
        g++;
    if (g == end) {
        if (c->ngroups == LEAK_GROUPS) {
            c->other_count++;
            c->other_bytes += size;
            return;
        }
        c->ngroups++;
        g->type = o->ob_type;
    }
    if (g->count < LEAK_ADDRS)
        g->addr[g->count] = block;
    g->count++;
    g->bytes += size;
}

static int by_count_desc(const void *a, const void *b)
{
    const leak_group *x = a, *y = b;
    return (x->count < y->count) - (x->count > y->count);
}

static void print_census(leak_census *c)
{
    qsort(c->group, c->ngroups, sizeof c->group[0], by_count_desc);
    fprintf(stderr, "frt: %zu objects still alive at shutdown (%zu bytes in blocks), by type:\n",
            c->alive, c->bytes);
    for (size_t i = 0; i < c->ngroups; i++) {
        const leak_group *g = &c->group[i];
        const char *name = g->type && g->type->name ? g->type->name : "?";
        fprintf(stderr, "frt:   %zu x '%s' (%zu bytes), at", g->count, name, g->bytes);
        for (size_t k = 0; k < g->count && k < LEAK_ADDRS; k++)
            fprintf(stderr, " %p", g->addr[k]);
        fprintf(stderr, "%s\n", g->count > LEAK_ADDRS ? " ..." : "");
    }
    if (c->other_count)
        fprintf(stderr, "frt:   %zu more of other types (%zu bytes)\n", c->other_count, c->other_bytes);
    fprintf(stderr, "frt: (FRT_LEAKS=0 silences this report)\n");
    fflush(stderr);
}

size_t frt__leaks_report(void)
{
    leak_census c = {.by_type = report_wanted()};
    frt__heaps_walk_objects(census_visit, &c);
    if (c.by_type && c.alive)
        print_census(&c);
    return c.alive;
}
