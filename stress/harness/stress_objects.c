/* What every workload uses: counted objects, failure reports, the fault
 * injection, thread-local counters, NUMA-local memory, blocking sleeps. */
#include "stress.h"
#include "stress_topology.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static __thread stress_counters *tls_counters;
/* Destroys on a thread the harness did not set up: none are expected (the
 * runner checks this stays 0), but they must still be counted. */
static stress_counters stray_counters;
static _Atomic uint64_t stray_destroys;

stress_counters *stress_tls_counters(void)
{
    return tls_counters;
}

void stress_set_tls_counters(stress_counters *c)
{
    tls_counters = c;
}

uint64_t stress_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t stress_mix(uint64_t a, uint64_t b)
{
    uint64_t z = a + 0x9e3779b97f4a7c15ull * (b + 1);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return z ? z : 0x2545f4914f6cdd1dull; /* xorshift must not start at 0 */
}

/* ------------------------------------------------------------------ */
/* Failures.                                                          */

static pthread_mutex_t fail_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned fail_lines;

void stress_fail(stress_case *c, const char *check, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&fail_lock);
    int first = !atomic_exchange(&c->failed, 1);
    if (fail_lines < 8) {
        fprintf(stderr, "frt-stress: INVARIANT FAILED [%s/%s, %s, %u threads, seed %llu]: %s\n",
                c->wl->name, check, stress_own_rc_name(), c->nthreads,
                (unsigned long long)c->seed, msg);
        if (first) {
            const stress_options *o = c->opt;
            char run[64];
            if (o->ops)
                snprintf(run, sizeof run, "--ops %llu", (unsigned long long)o->ops);
            else
                snprintf(run, sizeof run, "--duration %g", o->duration);
            fprintf(stderr,
                    "frt-stress: reproduce: frt-stress --workload %s --threads %u --seed %llu %s "
                    "--rc %s --pin %s%s%s%s%s%s\n",
                    c->wl->name, c->nthreads, (unsigned long long)c->seed, run,
                    stress_own_rc_name(), stress_pin_name(o->pin), o->topology ? " --topology '" : "",
                    o->topology ? o->topology : "", o->topology ? "'" : "",
                    o->fault ? " --inject-fault " : "", o->fault ? stress_fault_name(o->fault) : "");
        }
    } else if (fail_lines == 8) {
        fprintf(stderr, "frt-stress: (more failures not shown)\n");
    }
    fail_lines++;
    pthread_mutex_unlock(&fail_lock);
}

/* ------------------------------------------------------------------ */
/* Objects.                                                           */

static stress_obj *obj_init(stress_case *c, stress_obj *o, const frt_type *t, unsigned kind,
                            unsigned nref, uint32_t creator, uint64_t id)
{
    if (!o) {
        stress_fail(c, "alloc", "frt_new_var(%s) returned NULL: %s", t->name, strerror(errno));
        return NULL;
    }
    o->id = id;
    o->kind = (uint16_t)kind;
    o->nref = (uint16_t)nref;
    o->creator = creator;
    o->tag = stress_tag(id, kind);
    stress_counters *k = tls_counters;
    if (k)
        stress_count(&k->created[kind], 1);
    return o;
}

stress_obj *stress_obj_new(stress_case *c, const frt_type *t, unsigned kind, unsigned nref,
                           size_t extra, uint32_t creator, uint64_t id)
{
    return obj_init(c, (stress_obj *)frt_new_var(t, nref * sizeof(frt_object *) + extra), t, kind,
                    nref, creator, id);
}

stress_obj *stress_obj_new_shared(stress_case *c, const frt_type *t, unsigned kind, unsigned nref,
                                  size_t extra, uint32_t creator, uint64_t id)
{
    return obj_init(c, (stress_obj *)frt_new_shared_var(t, nref * sizeof(frt_object *) + extra), t,
                    kind, nref, creator, id);
}

void stress_obj_destroyed(stress_obj *o)
{
    unsigned kind = o->kind < STRESS_MAX_KINDS ? o->kind : 0;
    stress_counters *k = tls_counters;
    if (!k) {
        k = &stray_counters;
        atomic_fetch_add(&stray_destroys, 1);
        atomic_fetch_add(&k->destroyed[kind], 1);
        if (!stress_obj_ok(o, kind))
            atomic_fetch_add(&k->corrupt, 1);
    } else {
        stress_count(&k->destroyed[kind], 1);
        if (!stress_obj_ok(o, kind))
            stress_count(&k->corrupt, 1);
    }
    o->tag = ~o->tag; /* a second destroy, or a read after free, fails the tag */
}

static int visit_checked(frt_object *r, frt_visit_fn visit, void *arg)
{
    return r ? visit(r, arg) : 0;
}

int stress_obj_traverse(frt_object *self, frt_visit_fn visit, void *arg)
{
    stress_obj *o = (stress_obj *)self;
    for (unsigned i = 0; i < o->nref; i++) {
        int rc = visit_checked(o->ref[i], visit, arg);
        if (rc)
            return rc;
    }
    return 0;
}

void stress_obj_clear(frt_object *self)
{
    stress_obj *o = (stress_obj *)self;
    for (unsigned i = 0; i < o->nref; i++) {
        frt_object *r = o->ref[i];
        o->ref[i] = NULL;
        frt_xdecref(r);
    }
}

void stress_obj_destroy(frt_object *self)
{
    stress_obj_clear(self);
    stress_obj_destroyed((stress_obj *)self);
}

void stress_corrupt(stress_case *c, const char *check, const stress_obj *o, unsigned kind)
{
    stress_fail(c, check,
                "object %p (%s) has a bad tag: kind %u id %llu tag %016llx, expected kind %u: "
                "freed while still referenced, or overwritten",
                (const void *)o, o->ob.ob_type ? o->ob.ob_type->name : "<freed block>", o->kind,
                (unsigned long long)o->id, (unsigned long long)o->tag, kind);
}

static uint64_t sum_of(const stress_case *c, unsigned kind, int destroyed)
{
    const stress_counters *m = &c->main_counters;
    uint64_t s = atomic_load(destroyed ? &m->destroyed[kind] : &m->created[kind]);
    for (unsigned i = 0; i < c->nthreads; i++) {
        const stress_counters *k = &c->w[i].counters;
        s += atomic_load(destroyed ? &k->destroyed[kind] : &k->created[kind]);
    }
    if (destroyed)
        s += atomic_load(&stray_counters.destroyed[kind]);
    return s;
}

uint64_t stress_stray_destroys(void)
{
    return atomic_load(&stray_destroys);
}

uint64_t stress_sum_created(const stress_case *c, unsigned kind)
{
    return sum_of(c, kind, 0);
}

uint64_t stress_sum_destroyed(const stress_case *c, unsigned kind)
{
    return sum_of(c, kind, 1);
}

/* ------------------------------------------------------------------ */
/* Fault injection.                                                   */

static void hold_add(stress_worker *w, frt_object *o)
{
    unsigned n = atomic_load_explicit(&w->nholds, memory_order_relaxed);
    for (unsigned i = 0; i < n; i++)
        if (atomic_load_explicit(&w->holds[i].o, memory_order_relaxed) == o) {
            frt_incref(o);
            atomic_fetch_add_explicit(&w->holds[i].n, 1, memory_order_relaxed);
            return;
        }
    if (n == STRESS_MAX_HOLDS)
        return;
    frt_incref(o);
    atomic_store_explicit(&w->holds[n].o, o, memory_order_relaxed);
    atomic_store_explicit(&w->holds[n].n, 1, memory_order_relaxed);
    atomic_store_explicit(&w->nholds, n + 1, memory_order_release);
}

void stress_fault_point(stress_case *c, stress_worker *w, frt_object *o)
{
    if (c->opt->fault == STRESS_FAULT_NONE || w->index != 0 || w->fault_done || !o)
        return;
    if (atomic_load_explicit(&w->ops, memory_order_relaxed) < c->fault_at)
        return;
    w->fault_done = 1;
    if (c->opt->fault == STRESS_FAULT_LEAK) {
        frt_incref(o);
        fprintf(stderr, "frt-stress: --inject-fault leak: one uncounted reference to %s %p\n",
                o->ob_type->name, (void *)o);
    } else {
        hold_add(w, o);
        hold_add(w, o);
        frt_decref(o);
        fprintf(stderr, "frt-stress: --inject-fault extra-decref: one reference too few on %s %p\n",
                o->ob_type->name, (void *)o);
    }
}

unsigned stress_worker_holds(const stress_worker *w, const frt_object *o)
{
    unsigned n = 0, k = atomic_load_explicit(&((stress_worker *)w)->nholds, memory_order_acquire);
    for (unsigned i = 0; i < k; i++)
        if (atomic_load_explicit(&((stress_worker *)w)->holds[i].o, memory_order_relaxed) == o)
            n += atomic_load_explicit(&((stress_worker *)w)->holds[i].n, memory_order_relaxed);
    return n;
}

unsigned stress_holds_of(const stress_case *c, const frt_object *o)
{
    unsigned n = 0;
    for (unsigned i = 0; i < c->nthreads; i++)
        n += stress_worker_holds(&c->w[i], o);
    return n;
}

void stress_drop_holds(stress_worker *w)
{
    unsigned k = atomic_load_explicit(&w->nholds, memory_order_relaxed);
    for (unsigned i = 0; i < k; i++) {
        frt_object *o = atomic_load_explicit(&w->holds[i].o, memory_order_relaxed);
        for (unsigned n = atomic_load_explicit(&w->holds[i].n, memory_order_relaxed); n; n--)
            frt_decref(o);
        atomic_store_explicit(&w->holds[i].n, 0, memory_order_relaxed);
    }
    atomic_store_explicit(&w->nholds, 0, memory_order_relaxed);
}

/* ------------------------------------------------------------------ */
/* Memory and waiting.                                                */

void *stress_alloc_local(stress_case *c, stress_worker *w, size_t size, int *local)
{
    *local = 0;
    if (size == 0)
        size = 1;
    if (c->topo && c->topo->this_system && w && w->place && w->place->nodeset) {
        void *p = hwloc_alloc_membind(c->topo->t, size, w->place->nodeset, HWLOC_MEMBIND_BIND,
                                      HWLOC_MEMBIND_BYNODESET);
        if (p) {
            memset(p, 0, size);
            *local = 1;
            return p;
        }
    }
    size_t line = 128, rounded = (size + line - 1) & ~(line - 1);
    void *p = aligned_alloc(line, rounded);
    if (p)
        memset(p, 0, rounded);
    return p;
}

void stress_free_local(stress_case *c, void *p, size_t size, int local)
{
    if (!p)
        return;
    if (local)
        hwloc_free(c->topo->t, p, size ? size : 1);
    else
        free(p);
}

void stress_sleep_blocking(double seconds)
{
    if (seconds <= 0)
        return;
    struct timespec ts = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
    frt_blocking_begin();
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
    frt_blocking_end();
}
