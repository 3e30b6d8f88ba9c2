/* One case: a workload at one thread count, in this process.
 *
 * The phases and who checks what are listed in stress.h (struct
 * stress_workload). The runner's own checks, for every workload:
 *   - nothing reported a corrupt object (a bad tag in a read or a destroy);
 *   - after teardown and a full collection, a second full collection finds
 *     nothing, and every object made was destroyed, kind by kind;
 *   - no destroy ran on a thread the harness does not know;
 *   - after frt_heap_trim no block is in use;
 *   - the collector called FRT_GC_STOP once per collection it counted;
 *   - frt_shutdown() returns 0: nothing alive.
 * Meanwhile the main thread (the monitor) stops the world every
 * --stw-probe ms, timing how long the workers take to reach a safepoint,
 * and runs the workload's check_stopped while they are parked. */
#include "stress_harness.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

typedef struct runner {
    stress_case c;
    pthread_barrier_t barrier;
    stress_place *plan;
    pthread_mutex_t gc_lock;
    double *gc_pause_us;
    size_t ngc, capgc;
    uint64_t gc_collected;
    double *tts_us;
    size_t ntts, captts;
    uint64_t probes;
    uint64_t t0;
} runner;

static int push_sample(double **v, size_t *n, size_t *cap, double x)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 256;
        double *p = realloc(*v, nc * sizeof *p);
        if (!p)
            return -1;
        *v = p;
        *cap = nc;
    }
    (*v)[(*n)++] = x;
    return 0;
}

static void gc_callback(int phase, const frt_gc_info *info, void *ctx)
{
    if (phase != FRT_GC_STOP)
        return;
    runner *R = ctx;
    pthread_mutex_lock(&R->gc_lock);
    push_sample(&R->gc_pause_us, &R->ngc, &R->capgc, (double)info->pause_ns / 1e3);
    R->gc_collected += info->collected;
    pthread_mutex_unlock(&R->gc_lock);
}

static void barrier_wait(runner *R, int attached)
{
    if (attached)
        frt_blocking_begin();
    pthread_barrier_wait(&R->barrier);
    if (attached)
        frt_blocking_end();
}

void stress_fault_now(stress_case *c, stress_worker *w, frt_object *o)
{
    uint64_t at = c->fault_at;
    c->fault_at = 0;
    stress_fault_point(c, w, o);
    c->fault_at = at;
}

static int attach_or_fail(stress_case *c, const char *when)
{
    int rc = frt_thread_attach();
    if (rc != 0) {
        stress_fail(c, "attach", "frt_thread_attach (%s) returned %s", when, frt_strerror(rc));
        return 0;
    }
    return 1;
}

static void *worker_main(void *arg)
{
    stress_worker *w = arg;
    stress_case *c = w->c;
    runner *R = (runner *)c; /* c is the first member */
    const stress_workload *wl = c->wl;
    int self = (wl->flags & STRESS_WL_SELF_ATTACH) != 0;

    stress_set_tls_counters(&w->counters);
    if (c->opt->pin != STRESS_PIN_NONE)
        stress_bind_self(c->topo, w->place, &w->cpubind_rc, &w->membind_rc);
    /* After binding, so the first touch is on the worker's node. */
    w->state = stress_alloc_local(c, w, wl->thread_state, &w->state_local);
    if (!w->state)
        stress_fail(c, "alloc", "no memory for the worker's state");

    int attached = attach_or_fail(c, "worker start");
    if (attached && w->state && wl->thread_init)
        wl->thread_init(c, w);
    if (attached && self) {
        frt_thread_detach();
        attached = 0;
    }
    barrier_wait(R, attached); /* start */
    w->t_start_ns = stress_now_ns();

    if (w->state && !stress_failed(c))
        wl->run(c, w);
    if (c->opt->fault && w->index == 0 && !w->fault_done && wl->fault_target && w->state &&
        !stress_failed(c)) {
        /* The loop ended before its own fault point: strike now. */
        int temp = self && !frt_thread_is_attached() && attach_or_fail(c, "fault injection");
        stress_fault_now(c, w, wl->fault_target(c, w));
        if (temp)
            frt_thread_detach();
    }
    w->t_end_ns = stress_now_ns();
    atomic_fetch_sub(&c->running, 1);
    barrier_wait(R, attached); /* stopped: nobody produces any more */

    if (self && !attached)
        attached = attach_or_fail(c, "quiesce");
    if (attached && w->state && wl->thread_quiesce && !stress_failed(c))
        wl->thread_quiesce(c, w);
    barrier_wait(R, attached); /* quiescent: main checks what is held */
    barrier_wait(R, attached); /* released */

    if (attached) {
        if (w->state && wl->thread_finish)
            wl->thread_finish(c, w);
        stress_drop_holds(w);
    }
    stress_free_local(c, w->state, wl->thread_state, w->state_local);
    w->state = NULL;
    if (attached)
        frt_thread_detach();
    stress_set_tls_counters(NULL);
    return NULL;
}

static void probe(runner *R)
{
    stress_case *c = &R->c;
    frt_stw_stats before, after;
    frt_stw_get_stats(&before);
    if (frt_stop_the_world() != 0) {
        stress_fail(c, "stw", "frt_stop_the_world failed on the monitor thread");
        return;
    }
    if (c->wl->check_stopped && !stress_failed(c))
        c->wl->check_stopped(c);
    frt_start_the_world();
    frt_stw_get_stats(&after);
    R->probes++;
    /* Only when no other stop (a collection) ran in between, so that
     * last_time_to_stop_ns is ours. */
    if (after.stops == before.stops + 1)
        push_sample(&R->tts_us, &R->ntts, &R->captts, (double)after.last_time_to_stop_ns / 1e3);
}

static uint64_t ops_done(const stress_case *c)
{
    uint64_t s = 0;
    for (unsigned i = 0; i < c->nthreads; i++)
        s += atomic_load_explicit(&c->w[i].ops, memory_order_relaxed);
    return s;
}

static void monitor(runner *R)
{
    stress_case *c = &R->c;
    const stress_options *opt = c->opt;
    const uint64_t ms = 1000000;
    uint64_t dur = opt->ops ? 0 : (uint64_t)(opt->duration * 1e9);
    uint64_t probe_ns = (uint64_t)(opt->stw_probe_ms * 1e6);
    int tty = stress_progress_enabled(opt);
    uint64_t next_probe = R->t0 + probe_ns, next_show = R->t0 + 200 * ms;
    for (;;) {
        uint64_t now = stress_now_ns();
        if (!atomic_load(&c->stop) && ((dur && now - R->t0 >= dur) || stress_failed(c)))
            atomic_store(&c->stop, 1);
        if (atomic_load(&c->running) == 0)
            break;
        if (probe_ns && now >= next_probe) {
            probe(R);
            now = stress_now_ns();
            next_probe = now + probe_ns;
        }
        if (tty && now >= next_show) {
            frt_stw_stats s;
            frt_stw_get_stats(&s);
            pthread_mutex_lock(&R->gc_lock);
            uint64_t ngc = R->ngc;
            pthread_mutex_unlock(&R->gc_lock);
            stress_progress_show(c, (double)(now - R->t0) / 1e9, dur ? (double)dur / 1e9 : 0,
                                 ops_done(c), ngc, s.stops);
            next_show = now + 200 * ms;
        }
        uint64_t wake = now + 5 * ms;
        if (probe_ns && next_probe < wake)
            wake = next_probe;
        if (dur && !atomic_load(&c->stop) && R->t0 + dur < wake)
            wake = R->t0 + dur;
        if (wake > now)
            stress_sleep_blocking((double)(wake - now) / 1e9);
    }
    if (tty)
        stress_progress_clear();
}

static double cpu_seconds(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static uint64_t gc_collections_total(void)
{
    frt_gc_stats st[3];
    frt_gc_get_stats(st);
    return st[0].collections + st[1].collections + st[2].collections;
}

/* The checks every workload gets after its teardown. */
static void final_checks(runner *R)
{
    stress_case *c = &R->c;
    long found = frt_gc_collect(2);
    long again = frt_gc_collect(2);
    STRESS_CHECK(c, found >= 0, "gc", "frt_gc_collect(2) returned %ld", found);
    STRESS_CHECK(c, again == 0, "gc",
                 "a second full collection right after the first found %ld unreachable objects",
                 again);
    for (unsigned k = 0; k < STRESS_MAX_KINDS && c->wl->kinds[k]; k++) {
        uint64_t made = stress_sum_created(c, k), gone = stress_sum_destroyed(c, k);
        STRESS_CHECK(c, made == gone, "destroyed",
                     "%s: %llu made, %llu destroyed after everything was dropped and collected "
                     "(%lld still alive)",
                     c->wl->kinds[k], (unsigned long long)made, (unsigned long long)gone,
                     (long long)(made - gone));
    }
    uint64_t corrupt = atomic_load(&c->main_counters.corrupt);
    for (unsigned i = 0; i < c->nthreads; i++)
        corrupt += atomic_load(&c->w[i].counters.corrupt);
    STRESS_CHECK(c, corrupt == 0, "tags", "%llu objects had a bad tag when destroyed",
                 (unsigned long long)corrupt);
    STRESS_CHECK(c, stress_stray_destroys() == 0, "destroyed",
                 "%llu destroys ran on a thread that is neither a worker nor main",
                 (unsigned long long)stress_stray_destroys());
    /* Objects of a kind the workload does not name are never destroyed
     * (an immortal one): their blocks stay in use until frt_shutdown. */
    uint64_t kept = 0;
    for (unsigned k = 0; k < STRESS_MAX_KINDS; k++)
        kept += stress_sum_created(c, k) - stress_sum_destroyed(c, k);
    frt_heap_trim();
    frt_heap_stats hs;
    frt_heap_get_stats(&hs);
    STRESS_CHECK(c, hs.blocks_in_use == kept && (kept || hs.bytes_in_use == 0), "heap",
                 "after everything was freed and trimmed, %zu blocks (%zu bytes) are still in use, "
                 "expected %llu (immortal objects)",
                 hs.blocks_in_use, hs.bytes_in_use, (unsigned long long)kept);
}

static void fill_stats(runner *R, stress_result *r, uint64_t gc_before)
{
    stress_case *c = &R->c;
    pthread_mutex_lock(&R->gc_lock);
    r->gc_collections = R->ngc;
    r->gc_collected = R->gc_collected;
    r->gc_pause_p50_us = stress_percentile(R->gc_pause_us, R->ngc, 50);
    r->gc_pause_p99_us = stress_percentile(R->gc_pause_us, R->ngc, 99);
    r->gc_pause_max_us = R->ngc ? R->gc_pause_us[R->ngc - 1] : 0;
    size_t ngc = R->ngc;
    pthread_mutex_unlock(&R->gc_lock);
    uint64_t counted = gc_collections_total() - gc_before;
    STRESS_CHECK(c, counted == ngc, "gc",
                 "frt_gc_get_stats counts %llu collections, FRT_GC_STOP callbacks ran %zu times",
                 (unsigned long long)counted, ngc);
    frt_stw_stats s;
    frt_stw_get_stats(&s);
    r->stw_stops = s.stops;
    r->stw_pause_mean_us = s.stops ? (double)s.pause_ns_total / 1e3 / (double)s.stops : 0;
    r->stw_pause_max_us = (double)s.pause_ns_max / 1e3;
    STRESS_CHECK(c, s.stops >= R->probes, "stw", "%llu probe stops but frt_stw_get_stats counts %llu",
                 (unsigned long long)R->probes, (unsigned long long)s.stops);
    r->probes = R->probes;
    r->tts_p50_us = stress_percentile(R->tts_us, R->ntts, 50);
    r->tts_p99_us = stress_percentile(R->tts_us, R->ntts, 99);
    r->tts_max_us = R->ntts ? R->tts_us[R->ntts - 1] : 0;
    frt_heap_stats hs;
    frt_heap_get_stats(&hs);
    r->heap_arenas_peak = hs.arenas_peak;
    r->heap_mapped_peak_mb = (double)hs.bytes_mapped_peak / 1048576.0;
    r->heap_arenas_returned = hs.arenas_returned;
}

int stress_run_case(const stress_options *opt, const stress_workload *wl, unsigned n,
                    stress_topo *topo, stress_result *r)
{
    stress_result_init(r);
    snprintf(r->workload, sizeof r->workload, "%s", wl->name);
    snprintf(r->rc, sizeof r->rc, "%s", stress_own_rc_name());
    snprintf(r->pin, sizeof r->pin, "%s", stress_pin_name(opt->pin));
    r->threads = n;
    r->seed = opt->seed;

    runner *R = calloc(1, sizeof *R);
    stress_place *plan = calloc(n, sizeof *plan);
    stress_worker *w = aligned_alloc(64, ((n * sizeof *w) + 63) & ~(size_t)63);
    if (!R || !plan || !w) {
        fprintf(stderr, "frt-stress: out of memory for %u workers\n", n);
        free(R);
        free(plan);
        free(w);
        return STRESS_CASE_ERROR;
    }
    memset(w, 0, n * sizeof *w);
    if (stress_plan(topo->t, opt->pin, n, plan) != 0) {
        fprintf(stderr, "frt-stress: no placement for %u threads on %s\n", n, topo->source);
        free(R);
        free(plan);
        free(w);
        return STRESS_CASE_ERROR;
    }
    stress_case *c = &R->c;
    c->opt = opt;
    c->wl = wl;
    c->nthreads = n;
    c->seed = opt->seed;
    c->w = w;
    c->topo = topo;
    c->ops_target = opt->ops;
    c->fault_at = opt->ops ? (opt->ops / 2 < 100 ? opt->ops / 2 : 100) : 100;
    pthread_mutex_init(&R->gc_lock, NULL);
    uint64_t name_hash = 1469598103934665603ull;
    for (const char *p = wl->name; *p; p++)
        name_hash = (name_hash ^ (unsigned char)*p) * 1099511628211ull;
    for (unsigned i = 0; i < n; i++) {
        w[i].index = i;
        w[i].c = c;
        w[i].place = &plan[i];
        w[i].rng = stress_mix(opt->seed ^ name_hash, i);
    }

    if (opt->in_process)
        stress_reset_peak_rss();
    double cpu0 = cpu_seconds();
    frt_config cfg;
    frt_config_default(&cfg);
    for (int k = 0; k < 3; k++)
        cfg.gc_threshold[k] = opt->gc_threshold[k];
    if (opt->hot_off || (wl->flags & STRESS_WL_NO_ADAPTIVE))
        cfg.hot_adaptive = FRT_HOT_ADAPTIVE_OFF;
    int rc = frt_init(&cfg);
    if (rc != 0) {
        fprintf(stderr, "frt-stress: frt_init: %s\n", frt_strerror(rc));
        stress_plan_free(plan, n);
        free(R);
        free(plan);
        free(w);
        return STRESS_CASE_ERROR;
    }
    stress_set_tls_counters(&c->main_counters);
    uint64_t gc_before = gc_collections_total();
    frt_gc_callback_add(gc_callback, R);
    int result = STRESS_CASE_OK;

    if (wl->setup && wl->setup(c) != 0) {
        stress_fail(c, "setup", "the workload's setup failed");
        result = STRESS_CASE_ABANDONED;
        goto out;
    }
    pthread_barrier_init(&R->barrier, NULL, n + 1);
    atomic_store(&c->running, n);
    for (unsigned i = 0; i < n; i++) {
        int e = pthread_create(&w[i].thread, NULL, worker_main, &w[i]);
        if (e != 0) {
            /* The threads already started wait at the start barrier for
             * good: nothing can be undone cleanly. */
            fprintf(stderr, "frt-stress: pthread_create (thread %u of %u): %s\n", i, n, strerror(e));
            result = STRESS_CASE_ABANDONED;
            goto out;
        }
    }
    barrier_wait(R, 1); /* start */
    R->t0 = stress_now_ns();
    double cpu_run = cpu_seconds();
    monitor(R);
    cpu_run = cpu_seconds() - cpu_run;
    barrier_wait(R, 1); /* stopped */
    /* From the first worker's start to the last one's end: with --ops a
     * worker may be done before main even reads the clock. */
    uint64_t t_start = R->t0, t_end = 0;
    for (unsigned i = 0; i < n; i++) {
        if (w[i].t_start_ns && w[i].t_start_ns < t_start)
            t_start = w[i].t_start_ns;
        if (w[i].t_end_ns > t_end)
            t_end = w[i].t_end_ns;
    }
    r->seconds = t_end > t_start ? (double)(t_end - t_start) / 1e9 : 0;
    r->ops = ops_done(c);
    r->ops_per_s = r->seconds > 0 ? (double)r->ops / r->seconds : 0;
    r->cpus_busy = r->seconds > 0 ? cpu_run / r->seconds : 0;
    r->ops_per_cpu_s = cpu_run > 0 ? (double)r->ops / cpu_run : 0;
    barrier_wait(R, 1); /* quiescent */

    frt_safepoint(); /* merge what was queued to main */
    frt_heap_stats hs;
    frt_heap_get_stats(&hs);
    r->heap_in_use_mb = (double)hs.bytes_in_use / 1048576.0;
    r->heap_blocks_in_use = hs.blocks_in_use;
    for (unsigned i = 0; i < n; i++) {
        r->bind_failures += w[i].cpubind_rc != 0 || w[i].membind_rc != 0;
        r->numa_local_state += w[i].state_local != 0;
    }
    if (r->bind_failures) {
        for (unsigned i = 0; i < n; i++)
            if (w[i].cpubind_rc || w[i].membind_rc) {
                fprintf(stderr, "frt-stress: thread %u: binding failed (cpubind: %s, membind: %s)%s\n",
                        i, w[i].cpubind_rc ? strerror(w[i].cpubind_rc) : "ok",
                        w[i].membind_rc ? strerror(w[i].membind_rc) : "ok",
                        r->bind_failures > 1 ? " (and others)" : "");
                break;
            }
    }
    if (!stress_failed(c) && wl->verify_held)
        wl->verify_held(c);
    if (stress_failed(c)) {
        /* Objects are still held and their counts are not what the model
         * says: dropping them now could free live memory. Give up here. */
        result = STRESS_CASE_ABANDONED;
        goto out;
    }
    barrier_wait(R, 1); /* released */
    frt_blocking_begin();
    for (unsigned i = 0; i < n; i++)
        pthread_join(w[i].thread, NULL);
    frt_blocking_end();
    frt_safepoint();
    if (wl->teardown)
        wl->teardown(c);
    for (unsigned k = 0; k < STRESS_MAX_KINDS && wl->kinds[k]; k++)
        r->objects += stress_sum_created(c, k);
    final_checks(R);
    fill_stats(R, r, gc_before);
    frt_gc_callback_remove(gc_callback, R);
    stress_set_tls_counters(NULL);
    int alive = frt_shutdown();
    STRESS_CHECK(c, alive == 0, "shutdown", "frt_shutdown() returned %d (%s)", alive,
                 alive > 0 ? "objects still alive" : frt_strerror(alive));
    result = stress_failed(c) ? STRESS_CASE_FAILED : STRESS_CASE_OK;
    pthread_barrier_destroy(&R->barrier);

out:
    r->cpu_s = cpu_seconds() - cpu0;
    r->rss_peak_mb = stress_peak_rss_mb();
    if (result == STRESS_CASE_OK)
        strcpy(r->status, "ok");
    else if (result == STRESS_CASE_FAILED || stress_failed(c))
        strcpy(r->status, "FAILED");
    else
        strcpy(r->status, "error");
    if (result == STRESS_CASE_ABANDONED)
        return result; /* the process must exit: threads are parked, objects held */
    stress_plan_free(plan, n);
    free(R->gc_pause_us);
    free(R->tts_us);
    pthread_mutex_destroy(&R->gc_lock);
    free(R);
    free(plan);
    free(w);
    return result;
}
