/* frt_init and frt_shutdown. This is also the composition root: the one
 * file that knows the layers above the runtime and plugs their hooks in. */
#include <string.h>

#include "../brc/brc.h"
#include "../collector/gc_internal.h"
#include "debug.h"
#include "fork.h"
#include "leak_report.h"
#include "os.h"
#include "qsbr.h"
#include "runtime.h"
#include "weakref.h"

frt_runtime frt__rt = {
    .stw_mutex = PTHREAD_MUTEX_INITIALIZER,
    .stw_stats_lock = PTHREAD_MUTEX_INITIALIZER,
};

void frt_config_default(frt_config *cfg)
{
    if (!cfg)
        return;
    memset(cfg, 0, sizeof *cfg);
    cfg->gc_threshold[0] = 700;
    cfg->gc_threshold[1] = 10;
    cfg->gc_threshold[2] = 10;
    cfg->gc_enabled = 1;
    cfg->gc_debug = 0;
    cfg->arena_cache = 4;
    cfg->version = FRT_CONFIG_VERSION;
    cfg->reclaim_limit = (size_t)8 << 20;
}

int frt_is_initialized(void)
{
    return atomic_load(&frt__rt.initialized) == 1;
}

int frt_init(const frt_config *cfg)
{
    if (cfg && cfg->version != FRT_CONFIG_VERSION) {
        FRT_MISUSE(NULL, "frt_init with a config not filled by frt_config_default (zeroed by hand?)");
        return FRT_EINVAL;
    }
    int expected = 0;
    if (!atomic_compare_exchange_strong(&frt__rt.initialized, &expected, 2))
        return FRT_EALREADY;
    frt_config c;
    frt_config_default(&c);
    if (cfg)
        c = *cfg;
    if (c.reclaim_limit == 0)
        c.reclaim_limit = (size_t)8 << 20;
    frt__rt.config = c;
    frt__rt.threads = NULL;
    frt__rt.nthreads = 0;
    atomic_store(&frt__rt.stw_active, 0);
    atomic_store(&frt__rt.shutting_down, 0);
    memset(&frt__rt.stw, 0, sizeof frt__rt.stw);
    frt__fault_new_run(); /* a fault armed before frt_init stays armed */
    atomic_store(&frt__arena_counters.peak, atomic_load(&frt__arena_counters.mapped));
    atomic_store(&frt__arena_counters.bytes_peak, atomic_load(&frt__arena_counters.bytes));
    atomic_store(&frt__arena_counters.returned, 0);

    frt__weakref_tables_reset();
    frt__hot_reset();
    memset(&frt__rt.hooks, 0, sizeof frt__rt.hooks);
    frt__brc_install(&frt__rt.hooks);
    frt__gc_install(&frt__rt.hooks, &c);

    int rc = frt__tstate_init();
    if (rc == 0) {
        atomic_store(&frt__rt.initialized, 1);
        rc = frt__tstate_attach();
        if (rc != 0) {
            atomic_store(&frt__rt.initialized, 2);
            frt__tstate_fini();
        }
    }
    if (rc != 0) {
        frt__heaps_release_all();
        atomic_store(&frt__rt.initialized, 0);
        return rc;
    }
    frt__rt.init_thread = pthread_self();
    frt__fork_register();
    return 0;
}

int frt_shutdown(void)
{
    /* First: while a shutdown runs, `initialized` already says no, and a
     * finalizer or callback that calls us again must hear that it did. */
    if (atomic_load(&frt__rt.shutting_down)) {
        FRT_MISUSE(NULL, "frt_shutdown called again while shutting down (from a finalizer, callback or destroy)");
        return FRT_ESTATE;
    }
    if (atomic_load(&frt__rt.initialized) != 1)
        return FRT_ESTATE;
    frt_tstate *ts = frt__tstate();
    if (!ts || !pthread_equal(pthread_self(), frt__rt.init_thread)) {
        FRT_MISUSE(NULL, "frt_shutdown from a thread other than the one that called frt_init");
        return FRT_ESTATE;
    }
    if (ts->blocking_depth || ts->stw_depth || ts->in_dealloc || ts->in_gc_callback) {
        FRT_MISUSE(NULL, "frt_shutdown from a blocking section, a stop or a finalizer");
        return FRT_ESTATE;
    }
    int expected = 0;
    if (!atomic_compare_exchange_strong(&frt__rt.shutting_down, &expected, 1)) {
        FRT_MISUSE(NULL, "frt_shutdown called again while shutting down");
        return FRT_ESTATE;
    }
    frt_ticket_lock_acquire(&frt__rt.threads_lock);
    size_t others = frt__rt.nthreads - 1;
    if (!others)
        atomic_store(&frt__rt.initialized, 2); /* no thread may attach from here on */
    frt_ticket_lock_release(&frt__rt.threads_lock);
    if (others) {
        atomic_store(&frt__rt.shutting_down, 0);
        return FRT_EBUSY;
    }
    /* Finalizers of targets still alive run first (Python runs
     * weakref.finalize at exit), then the collector's last collection. */
    frt__finalizers_run_all();
    if (frt__rt.hooks.shutdown)
        frt__rt.hooks.shutdown();

    /* Leave as any thread leaves (merging what is queued to us), then count
     * (and report) what is still alive, then give every arena back. Objects
     * still alive are not destroyed: their memory goes with the arenas. */
    frt__qsbr_drain(); /* deferred work that drops references, while attached */
    frt__tstate_detach();
    frt__qsbr_barrier(); /* deferred frees land before the arenas go */
    frt__qsbr_run_ready();
    size_t alive = frt__leaks_report();
    frt__heaps_release_all();
    frt__weakref_tables_free();
    frt__hot_reset();
    frt__tstate_fini();
    frt__fault_reset(); /* no fault outlives the run that armed it */
    atomic_store(&frt__rt.shutting_down, 0);
    atomic_store(&frt__rt.initialized, 0);
    return alive > (size_t)INT32_MAX ? INT32_MAX : (int)alive;
}
