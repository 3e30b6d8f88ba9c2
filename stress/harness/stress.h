/* frt-stress: the stress suites and the scaling harness.
 *
 * One program, two builds (stress/harness/stress.cmake): frt-stress against
 * frt_static (biased reference counting) and frt-stress-atomic against
 * frt_rc_atomic (the same library sources, every count atomic). The two
 * libraries share their symbol names, so each build runs only its own
 * reference counting; `--rc atomic|both` runs the sibling program.
 *
 * Shape of a run (docs/stress.md):
 *   the sweep (stress_sweep.c) runs every case, that is one workload at one
 *   thread count with one reference-counting build, in a child process of
 *   its own (a crash or a hang loses one case, never the report, and each
 *   case's peak RSS is its own); a case (stress_runner.c) initialises the
 *   runtime, places its workers (stress_topology.c), runs the workload's
 *   loop for --duration or --ops, stops the world now and then to time the
 *   safepoints, then checks the workload's invariants with every worker
 *   quiescent, tears everything down and checks that every object was
 *   destroyed and that frt_shutdown finds nothing alive.
 *
 * This header is the contract between the runner and the workloads
 * (stress_wl_*.c): the workload table is in stress_workloads.c. */
#ifndef FRT_STRESS_H
#define FRT_STRESS_H

#include <sched.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <frt/frt.h>

#ifndef STRESS_RC_ATOMIC
#define STRESS_RC_ATOMIC 0 /* 1 in frt-stress-atomic (linked against frt_rc_atomic) */
#endif

#define STRESS_MAX_THREADS 4096 /* per case */
#define STRESS_MAX_SWEEP 64     /* thread counts in one --threads list */
#define STRESS_MAX_WORKLOADS 16
#define STRESS_MAX_KINDS 6      /* object kinds a workload counts */
#define STRESS_MAX_HOLDS 2

/* ------------------------------------------------------------------ */
/* Options (stress_options.c).                                        */

enum { STRESS_RC_BRC = 1, STRESS_RC_ATOMIC_BIT = 2, STRESS_RC_BOTH = 3 };
typedef enum { STRESS_PIN_NONE, STRESS_PIN_COMPACT, STRESS_PIN_SCATTER, STRESS_PIN_NUMA } stress_pin;
typedef enum { STRESS_FAULT_NONE, STRESS_FAULT_LEAK, STRESS_FAULT_EXTRA_DECREF } stress_fault;

typedef struct stress_workload stress_workload;

typedef struct stress_options {
    const stress_workload *workloads[STRESS_MAX_WORKLOADS];
    unsigned nworkloads;
    unsigned threads[STRESS_MAX_SWEEP];
    unsigned nthreads;
    int threads_given;
    double duration;        /* seconds per case, when ops == 0 */
    uint64_t ops;           /* operations per worker thread; 0: use duration */
    uint64_t seed;
    int seed_given;
    unsigned seeds;         /* each case runs with seed, seed + 1, ..: the median is kept */
    stress_pin pin;
    const char *topology;   /* NULL: this host; else a synthetic description or an XML file */
    int rc;                 /* STRESS_RC_* bits */
    const char *json, *csv, *plot, *report;
    stress_fault fault;
    int hot;                /* --hot: frt_make_hot on the objects every thread counts on */
    int hot_off;            /* --hot-off: no adaptive hot objects */
    double stw_probe_ms;    /* interval of the harness's own stop-the-world probes; 0: none */
    size_t gc_threshold[3];
    double timeout;         /* per case, seconds; 0: automatic */
    int in_process;         /* run this build's cases in this process (debuggers) */
    int plan_only, list, quiet;
    /* internal: one case in this process, its result written to result_fd */
    int case_mode;
    int result_fd;
    int argc;
    char **argv;
} stress_options;

/* Parses argv into opt; prints the usage or an error and exits on bad input. */
void stress_options_parse(stress_options *opt, int argc, char **argv);
const char *stress_pin_name(stress_pin p);
const char *stress_fault_name(stress_fault f);
const char *stress_rc_name(int rc_bit);  /* "brc" or "atomic" */
const char *stress_own_rc_name(void);     /* this build's */
int stress_own_rc(void);                  /* this build's STRESS_RC_* bit */

/* ------------------------------------------------------------------ */
/* Counters, written only by the thread they belong to.               */

/* Every object a workload makes is counted when it is made and when its
 * destroy runs, by kind, in the counters of the thread doing it (no shared
 * atomic on the measured path). Sums are taken with every worker quiescent. */
typedef struct stress_counters {
    _Atomic uint64_t created[STRESS_MAX_KINDS];
    _Atomic uint64_t destroyed[STRESS_MAX_KINDS];
    _Atomic uint64_t corrupt; /* an object whose tag was wrong when read or destroyed */
} stress_counters;

/* Single-writer increment: a relaxed load and store, no read-modify-write. */
static inline void stress_count(_Atomic uint64_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n, memory_order_relaxed);
}

/* ------------------------------------------------------------------ */
/* Topology and placement (stress_topology.h has the details).        */

typedef struct stress_topo stress_topo;
typedef struct stress_place stress_place;

/* ------------------------------------------------------------------ */
/* Cases, workers and workloads.                                      */

/* Written only by their worker; atomic because checks on other threads
 * may look at them while it runs. */
typedef struct stress_hold {
    _Atomic(frt_object *) o;
    _Atomic unsigned n;
} stress_hold;

typedef struct stress_case stress_case;

typedef struct stress_worker {
    _Alignas(64) stress_counters counters;
    _Atomic uint64_t ops;     /* operations done; the worker stores, the monitor loads */
    uint64_t rng;
    unsigned index;
    stress_case *c;
    pthread_t thread;
    const stress_place *place;
    int cpubind_rc, membind_rc; /* 0, or the errno of a binding that failed */
    uint64_t t_start_ns, t_end_ns; /* its timed stretch */
    stress_hold holds[STRESS_MAX_HOLDS]; /* references taken by --inject-fault */
    _Atomic unsigned nholds;
    int fault_done;
    void *state;              /* the workload's per-thread state (thread_state bytes) */
    int state_local;          /* 1 if state was allocated NUMA-locally */
} stress_worker;

/* A workload: what each worker thread does, and the invariants checked
 * afterwards. Adding one is one file (stress_wl_NAME.c defining a
 * `const stress_workload stress_wl_NAME`) and one line in the table of
 * stress_workloads.c. Every hook but run may be NULL.
 *
 * Order, in one case (main = the thread that called frt_init):
 *   main     setup                      attached, before any worker starts
 *   worker   thread_init                attached (see SELF_ATTACH), state zeroed
 *   -------- start barrier; the timed stretch begins
 *   worker   run                        loop while stress_continue(w)
 *   main     check_stopped              now and then, with the world stopped
 *   -------- every worker left run (nobody produces any more)
 *   worker   thread_quiesce             drain what is in flight, own checks
 *   -------- every worker quiescent, still holding its objects
 *   main     verify_held                exact counts of everything still held
 *   -------- release
 *   worker   thread_finish              drop everything; then it detaches
 *   main     teardown                   drop what setup made
 *   main     (runner) full collection, trim, then: every object made was
 *            destroyed, no block in use, frt_shutdown() == 0. */
enum {
    /* The workload attaches and detaches its threads itself inside run
     * (churn). The runner attaches the worker only around thread_init,
     * thread_quiesce and thread_finish. */
    STRESS_WL_SELF_ATTACH = 1,
    /* Hot objects (shared-read's variants): the workload makes its shared
     * object hot itself, as --hot does; the case runs with adaptive hot
     * objects off, as --hot-off does. */
    STRESS_WL_MAKE_HOT = 2,
    STRESS_WL_NO_ADAPTIVE = 4
};

struct stress_workload {
    const char *name;
    const char *what;      /* one line for --list and the docs */
    const char *op;        /* what one counted operation is (ops/s are of these) */
    /* Why biased counting can lose to atomic counting here (the report
     * prints it beside a brc/atomic below 1); NULL: no known reason. */
    const char *brc_note;
    /* Names of the kinds it counts, NULL-terminated: every object of a named
     * kind must be destroyed by the end; a kind left unnamed (an immortal
     * object's) is never destroyed. */
    const char *kinds[STRESS_MAX_KINDS];
    unsigned flags;
    size_t thread_state;   /* bytes of per-thread state, allocated near the worker's NUMA node */
    int (*setup)(stress_case *c);
    void (*thread_init)(stress_case *c, stress_worker *w);
    void (*run)(stress_case *c, stress_worker *w);
    void (*check_stopped)(stress_case *c);
    void (*thread_quiesce)(stress_case *c, stress_worker *w);
    void (*verify_held)(stress_case *c);
    void (*thread_finish)(stress_case *c, stress_worker *w);
    void (*teardown)(stress_case *c);
    /* An object this worker holds, that lives until verify_held and whose
     * exact count verify_held (or thread_quiesce) checks: where
     * --inject-fault strikes if the workload's loop has not called
     * stress_fault_point by the end of run. */
    frt_object *(*fault_target)(stress_case *c, stress_worker *w);
};

extern const stress_workload *const stress_workloads[]; /* NULL-terminated */
const stress_workload *stress_workload_find(const char *name);

struct stress_case {
    const stress_options *opt;
    const stress_workload *wl;
    unsigned nthreads;
    uint64_t seed;
    stress_worker *w;           /* nthreads of them */
    stress_counters main_counters;
    _Atomic int stop;           /* set by the monitor: leave run */
    _Atomic int failed;         /* an invariant failed */
    _Atomic unsigned running;   /* workers still in run */
    uint64_t ops_target;        /* per worker, 0: until stop */
    uint64_t fault_at;          /* --inject-fault strikes once worker 0 has done this many ops */
    stress_topo *topo;
    void *shared;               /* the workload's own, made by setup */
};

/* ------------------------------------------------------------------ */
/* Helpers for workloads (stress_objects.c).                          */

/* The current thread's counters (a worker's, or main's). */
stress_counters *stress_tls_counters(void);
void stress_set_tls_counters(stress_counters *c);

/* 1 while the worker should go on: no stop, no failure, fewer than
 * --ops operations. */
static inline int stress_continue(stress_case *c, stress_worker *w)
{
    if (atomic_load_explicit(&c->stop, memory_order_relaxed) ||
        atomic_load_explicit(&c->failed, memory_order_relaxed))
        return 0;
    return !c->ops_target || atomic_load_explicit(&w->ops, memory_order_relaxed) < c->ops_target;
}

static inline void stress_ops_add(stress_worker *w, uint64_t n)
{
    stress_count(&w->ops, n);
}

/* xorshift64*: fast, good enough, and reproducible from --seed. */
static inline uint64_t stress_rand(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545f4914f6cdd1dull;
}

static inline uint32_t stress_below(uint64_t *s, uint32_t n)
{
    return (uint32_t)(((stress_rand(s) >> 32) * (uint64_t)n) >> 32);
}

uint64_t stress_mix(uint64_t a, uint64_t b); /* splitmix64 of a and b */

/* Report a failed invariant: one line on stderr with the workload, the
 * check, the details and how to reproduce the case; marks the case failed
 * (workers leave run, the case ends after the current phase). */
void stress_fail(stress_case *c, const char *check, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static inline int stress_failed(const stress_case *c)
{
    return atomic_load_explicit(&c->failed, memory_order_relaxed);
}
#define STRESS_CHECK(c, cond, check, ...)                                                          \
    do {                                                                                           \
        if (!(cond))                                                                               \
            stress_fail((c), (check), __VA_ARGS__);                                                \
    } while (0)

/* The objects every workload uses: a tag that a freed or overwritten
 * object fails, the kind it is counted as, and reference slots that the
 * generic traverse/clear/destroy below visit. */
typedef struct stress_obj {
    frt_object ob;
    uint64_t tag;        /* stress_tag(id, kind); poisoned by destroy */
    uint64_t id;
    uint16_t kind;
    uint16_t nref;       /* slots in ref[] */
    uint32_t creator;    /* worker index, or STRESS_MAIN */
    frt_object *ref[];   /* strong references, NULL or an frt object */
} stress_obj;
#define STRESS_MAIN 0xffffffffu

static inline uint64_t stress_tag(uint64_t id, unsigned kind)
{
    return (id * 0x9e3779b97f4a7c15ull) ^ (0xa5a5000000000000ull | kind);
}

static inline int stress_obj_ok(const stress_obj *o, unsigned kind)
{
    return o->kind == kind && o->tag == stress_tag(o->id, kind);
}

/* frt_refcount(o), read again (yielding) while it differs from want, a
 * bounded number of times. For checks made while the world runs: the
 * count is exact only while no other thread counts o, and o's owner may be
 * merging it (its local count zeroed, the sum not yet published), as in
 * CPython's free-threaded build. A count that stays wrong is still caught. */
static inline size_t stress_refcount_settled(const frt_object *o, size_t want)
{
    size_t rc = frt_refcount(o);
    for (int i = 0; rc != want && i < 100; i++) {
        sched_yield();
        rc = frt_refcount(o);
    }
    return rc;
}

/* Make an object of type t (size includes nref slots and extra bytes),
 * count it as kind in the caller's counters, fill the header fields. NULL
 * means frt_new failed: the case has failed. */
stress_obj *stress_obj_new(stress_case *c, const frt_type *t, unsigned kind, unsigned nref,
                           size_t extra, uint32_t creator, uint64_t id);
/* The same, made with frt_new_shared_var: for an object made to be handed
 * to another thread, as docs/tuning.md advises. */
stress_obj *stress_obj_new_shared(stress_case *c, const frt_type *t, unsigned kind, unsigned nref,
                                  size_t extra, uint32_t creator, uint64_t id);
/* For a type's destroy: check the tag, poison it, count the destroy. */
void stress_obj_destroyed(stress_obj *o);
/* Generic type hooks for stress_obj with ref[] slots. */
int stress_obj_traverse(frt_object *self, frt_visit_fn visit, void *arg);
void stress_obj_clear(frt_object *self);
void stress_obj_destroy(frt_object *self);
/* Count a corrupt object seen by a reader. */
void stress_corrupt(stress_case *c, const char *check, const stress_obj *o, unsigned kind);

/* Sums over main and every worker (workers quiescent or joined). */
uint64_t stress_sum_created(const stress_case *c, unsigned kind);
uint64_t stress_sum_destroyed(const stress_case *c, unsigned kind);
/* Destroys that ran on a thread with no counters of the harness (expected: 0). */
uint64_t stress_stray_destroys(void);

/* --inject-fault: at this point the worker holds a reference to o that
 * lives until the workload's final checks, which count o's references
 * exactly. Once per case, on worker 0 once it has done fault_at ops:
 *   leak          one frt_incref(o) that nothing accounts for;
 *   extra-decref  two counted references are taken (holds: they keep o
 *                 alive whatever the workload does), then one
 *                 frt_decref(o) too many.
 * Checks then see o one reference high or low. A test aid. */
void stress_fault_point(stress_case *c, stress_worker *w, frt_object *o);
/* References the harness holds on o for --inject-fault (verify_held adds
 * them to what it expects). */
unsigned stress_holds_of(const stress_case *c, const frt_object *o);
unsigned stress_worker_holds(const stress_worker *w, const frt_object *o); /* this worker's */
void stress_drop_holds(stress_worker *w);

/* Memory near the worker's NUMA node (hwloc_alloc_membind) when the
 * topology is this host and the worker has a node; else from malloc, on
 * cache lines of its own (128 bytes: a line and its prefetched neighbour),
 * so that two workers' states never share one. Zeroed. */
void *stress_alloc_local(stress_case *c, stress_worker *w, size_t size, int *local);
void stress_free_local(stress_case *c, void *p, size_t size, int local);

/* A blocking section around a wait (a barrier, a join, a sleep): a
 * stop-the-world does not wait for the thread, others merge its queue. */
void stress_sleep_blocking(double seconds);

uint64_t stress_now_ns(void);

/* An intrusive lock-free MPSC stack (push: CAS release; pop_all: exchange
 * acquire; ABA-free because the consumer always takes everything). Used by
 * the workloads that hand objects from thread to thread. */
typedef struct stress_link {
    struct stress_link *next;
} stress_link;
typedef struct stress_inbox {
    _Alignas(64) _Atomic(stress_link *) head;
    _Atomic long len;
} stress_inbox;

static inline void stress_inbox_push(stress_inbox *b, stress_link *l)
{
    stress_link *h = atomic_load_explicit(&b->head, memory_order_relaxed);
    do {
        l->next = h;
    } while (!atomic_compare_exchange_weak_explicit(&b->head, &h, l, memory_order_release,
                                                    memory_order_relaxed));
    atomic_fetch_add_explicit(&b->len, 1, memory_order_relaxed);
}

static inline stress_link *stress_inbox_take(stress_inbox *b)
{
    if (!atomic_load_explicit(&b->head, memory_order_relaxed))
        return NULL;
    return atomic_exchange_explicit(&b->head, NULL, memory_order_acquire);
}

#endif
