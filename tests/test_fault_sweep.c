/* Fault sweep: one representative workload, run once to count the runtime's
 * own requests of each kind (OS mappings, its own calloc/realloc, BRC queue
 * nodes), then again with the k-th request of a kind failing, for k = 1, 2,
 * ... until a run makes fewer than k requests of that kind (the counts move
 * a little between runs: which thread merges a queue, where a weakref
 * hashes); once, and "sticky" (every request from the k-th on fails until
 * the workload lifts the fault near its end).
 *
 * The workload: main and NW workers; each thread hands leaves, containers
 * (holding a leaf of their creator's) and a large object to every other
 * thread, which drops them, so the BRC queues, helping and merging are
 * used; in the last session main drops some while their owners detach;
 * weakrefs with callbacks and frt_finalizers on what is handed; workers
 * detach holding objects, attach again (adopting orphan heaps), and one
 * exits attached; main registers more gc callbacks than the collector
 * copies on its stack, and makes cyclic garbage (with PEP 442 finalizers,
 * weakrefs and a frt_finalizer in it) for a collection of each generation,
 * one while the workers run, an automatic one, and one with DEBUG_SAVEALL
 * so the garbage list grows; enough weakrefs that the weakref table grows;
 * a trim between the sessions, so arenas are mapped again.
 *
 * Each run checks, whatever failed:
 *   - every public call fails cleanly: NULL with errno ENOMEM, FRT_ENOMEM,
 *     or a documented fallback (a refused queue node: the pusher stops the
 *     world and merges, one stop each, counted exactly; a collection
 *     without work memory: postponed, frt_gc_get_stats says so, nothing is
 *     freed or finalized, gc callbacks still see START and STOP);
 *   - nothing live is freed (every destroy finds its object intact, once);
 *     every finalizer, PEP 442 finalize and weakref callback runs exactly
 *     once by the end; each collection collects at least the fresh garbage
 *     (less only when an allocation fault keeps some) and at most what is
 *     unreachable (in the clean run: exactly that);
 *   - once the fault is lifted, retries work (attach, allocate, weakref,
 *     finalizer, callback, a collection that frees exactly the garbage
 *     left), every object the workload made is destroyed exactly once, the
 *     heap has no block in use and nothing mapped after a trim, frt_shutdown
 *     returns 0 and the runtime holds no block of its own afterwards
 *     (frt_test_sys_live); LSan, in the asan preset, sees no leak.
 * Plus: frt_shutdown with a sticky fault and cyclic garbage left returns
 * exactly that garbage and leaks nothing. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <frt/frt.h>

#include "check.h"
#include "runtime/os.h"
#include "test_util.h"

#define NW 3        /* workers; thread 0 is main */
#define NT (NW + 1)
#define SESSIONS 2  /* each worker attaches, works and detaches twice */
/* Leaves and containers handed per pair of threads and session: 4, and
 * fewer under sanitizers (check.h's TEST_SCALE: 4 under ASan, 10 under
 * TSan). The queue nodes, and so the runs of the node sweep, grow with it. */
#define H (TEST_SCALE >= 10 ? 2 : TEST_SCALE >= 4 ? 3 : 4)
#define SLOTS (2 * H + 1) /* H leaves, H containers, maybe a large object */
#define NCB 20            /* gc callbacks: more than the collector's 16 on the stack */
#define MAXID 8192

/* ---------------------------------------------------------------------- */
/* Objects with a record per id                                           */

#define MAGIC 0x51ee7u
enum { K_NONE, K_LEAF, K_CELL, K_FCELL, K_BIG };

typedef struct obj {
    frt_object ob;
    int id;
    unsigned magic;
    frt_object *ref[2];
} obj;

static _Atomic int d_by[MAXID];   /* destroy */
static _Atomic int f_by[MAXID];   /* PEP 442 finalize */
static _Atomic int fin_by[MAXID]; /* frt_finalizer function, by target id */
static _Atomic int cb_by[MAXID];  /* weakref callback, by target id */
static int kind_of[MAXID], garbage_id[MAXID], fin_expected[MAXID], cb_expected[MAXID];
static _Atomic int next_id, bad;
static _Atomic long failed_calls; /* public calls that returned NULL/ENOMEM */

static int obj_traverse(frt_object *self, frt_visit_fn visit, void *arg)
{
    obj *o = (obj *)self;
    for (int i = 0; i < 2; i++)
        if (o->ref[i] && visit(o->ref[i], arg))
            return 1;
    return 0;
}

static void obj_clear(frt_object *self)
{
    obj *o = (obj *)self;
    for (int i = 0; i < 2; i++) {
        frt_object *r = o->ref[i];
        o->ref[i] = NULL;
        frt_xdecref(r);
    }
}

static void obj_destroy(frt_object *self)
{
    obj *o = (obj *)self;
    if (o->magic != MAGIC || o->id < 0 || o->id >= MAXID || frt_refcount(self) != 0 ||
        atomic_fetch_add(&d_by[o->id], 1) != 0)
        atomic_fetch_add(&bad, 1);
    obj_clear(self);
    o->magic = 0xdeadu;
}

static void obj_finalize(frt_object *self)
{
    obj *o = (obj *)self;
    if (o->magic != MAGIC || atomic_fetch_add(&f_by[o->id], 1) != 0)
        atomic_fetch_add(&bad, 1);
}

static const frt_type leaf_type = {"leaf", sizeof(obj), NULL, NULL, NULL, obj_destroy};
static const frt_type cell_type = {"cell", sizeof(obj), obj_traverse, obj_clear, NULL, obj_destroy};
static const frt_type fcell_type = {"fcell", sizeof(obj), obj_traverse, obj_clear, obj_finalize,
                                    obj_destroy};

/* NULL (errno ENOMEM: nothing else may fail here) or a recorded object. */
static obj *make(int kind)
{
    const frt_type *t = kind == K_CELL ? &cell_type : kind == K_FCELL ? &fcell_type : &leaf_type;
    errno = 0;
    obj *o = (obj *)frt_new_var(t, kind == K_BIG ? FRT_SMALL_MAX : 0);
    if (!o) {
        CHECK_EQ(errno, ENOMEM);
        atomic_fetch_add(&failed_calls, 1);
        return NULL;
    }
    CHECK(o->ref[0] == NULL && o->ref[1] == NULL);
    int id = atomic_fetch_add(&next_id, 1);
    CHECK(id < MAXID);
    o->id = id;
    o->magic = MAGIC;
    kind_of[id] = kind;
    return o;
}

static void wr_cb(frt_weakref *wr, void *ctx)
{
    int id = (int)(intptr_t)ctx;
    frt_object *t = frt_weakref_get(wr);
    if (t) { /* must read cleared inside its own callback */
        atomic_fetch_add(&bad, 1);
        frt_decref(t);
    }
    if (atomic_fetch_add(&cb_by[id], 1) != 0)
        atomic_fetch_add(&bad, 1);
}

static void fin_fn(void *ctx)
{
    if (atomic_fetch_add(&fin_by[(int)(intptr_t)ctx], 1) != 0)
        atomic_fetch_add(&bad, 1);
}

/* A weakref with a callback to o, or NULL (errno ENOMEM). */
static frt_weakref *weak(obj *o)
{
    errno = 0;
    frt_weakref *wr = frt_weakref_new(&o->ob, wr_cb, (void *)(intptr_t)o->id);
    if (!wr) {
        CHECK_EQ(errno, ENOMEM);
        atomic_fetch_add(&failed_calls, 1);
        return NULL;
    }
    cb_expected[o->id] = 1;
    return wr;
}

/* A finalizer on o whose handle is dropped at once (it stays registered). */
static int finalizer(obj *o)
{
    errno = 0;
    frt_finalizer *f = frt_finalizer_new(&o->ob, fin_fn, (void *)(intptr_t)o->id);
    if (!f) {
        CHECK_EQ(errno, ENOMEM);
        atomic_fetch_add(&failed_calls, 1);
        return 0;
    }
    CHECK(frt_finalizer_alive(f));
    fin_expected[o->id] = 1;
    frt_finalizer_free(f);
    return 1;
}

/* ---------------------------------------------------------------------- */
/* One run                                                                */

typedef struct plan {
    int kind;     /* FRT_FAULT_*, or -1: the clean run */
    long k;       /* the k-th request fails */
    int sticky;   /* ... and every later one, until the lift */
} plan;

typedef struct result {
    long seen_at_lift, seen_total; /* requests of plan.kind (all kinds when clean) */
    long seen_kind[FRT_FAULT_KINDS], lift_kind[FRT_FAULT_KINDS];
    uint64_t stops;               /* stop-the-world count before shutdown */
    long failed_calls, postponed, init_failures;
} result;

static plan P;
static result R;
static pthread_barrier_t bar;

static obj *box[SESSIONS][NT][NT][SLOTS]; /* [session][from][to] */
static frt_weakref *hwr[SESSIONS][NT][NT]; /* creator's weakref to its first container for `to` */
static int hwr_target[SESSIONS][NT][NT], hfin_target[SESSIONS][NT][NT];
static int attached_in[SESSIONS][NT];
static obj *retained[SESSIONS][NT]; /* chains a worker still owns when it detaches */
static struct cbstat {
    _Atomic long start, stop;
    int registered;
} cbs[NCB];

static void gc_cb(int phase, const frt_gc_info *info, void *ctx)
{
    struct cbstat *s = ctx;
    if (info->generation < 0 || info->generation > 2)
        atomic_fetch_add(&bad, 1);
    if (phase == FRT_GC_START) {
        if (atomic_fetch_add(&s->start, 1) != atomic_load(&s->stop))
            atomic_fetch_add(&bad, 1); /* a START without the last STOP */
    } else {
        atomic_fetch_add(&s->stop, 1);
    }
}

static void sync_all(void)
{
    int att = frt_thread_is_attached();
    if (att)
        frt_blocking_begin();
    int rc = pthread_barrier_wait(&bar);
    CHECK(rc == 0 || rc == PTHREAD_BARRIER_SERIAL_THREAD);
    if (att)
        frt_blocking_end();
}

/* Lift the plan's fault (sticky runs only: a one-shot fault stays armed
 * until it fires, wherever that is). */
static void lift(void)
{
    if (P.kind >= 0 && P.sticky)
        frt_test_fault_set(P.kind, 0, 0);
}

/* Attach; a refused attach leaves the thread as it was and may be retried.
 * A one-shot fault is spent after one refusal, so the retry must work. */
static int attach_retry(void)
{
    for (int t = 0; t < 2; t++) {
        int rc = frt_thread_attach();
        if (rc == 0)
            return 1;
        CHECK_EQ(rc, FRT_ENOMEM);
        CHECK(!frt_thread_is_attached());
        atomic_fetch_add(&failed_calls, 1);
        CHECK(P.kind == FRT_FAULT_ALLOC);
        if (!P.sticky)
            CHECK_EQ(t, 0);
    }
    return 0;
}

/* Thread t's objects for every other thread, session s. */
static void handoff_make(int t, int s)
{
    for (int u = 0; u < NT; u++) {
        if (u == t)
            continue;
        obj **b = box[s][t][u];
        for (int i = 0; i < H; i++)
            b[i] = make(K_LEAF);
        for (int i = 0; i < H; i++) {
            obj *c = make(K_CELL);
            if (c) {
                obj *l = make(K_LEAF); /* ours, held by what we hand over */
                c->ref[0] = l ? &l->ob : NULL;
            }
            b[H + i] = c;
        }
        b[2 * H] = u == (t + 1) % NT ? make(K_BIG) : NULL;
        hwr_target[s][t][u] = hfin_target[s][t][u] = -1;
        if (b[H]) {
            hwr[s][t][u] = weak(b[H]);
            if (hwr[s][t][u])
                hwr_target[s][t][u] = b[H]->id;
        }
        if (b[0] && finalizer(b[0]))
            hfin_target[s][t][u] = b[0]->id;
    }
}

/* Drop what the others handed to u, slots [from, to). */
static void handoff_take(int u, int s, int from, int to)
{
    for (int t = 0; t < NT; t++) {
        if (t == u)
            continue;
        for (int i = from; i < to; i++) {
            obj *o = box[s][t][u][i];
            if (!o)
                continue;
            CHECK_EQ(o->magic, MAGIC);
            box[s][t][u][i] = NULL;
            frt_decref(&o->ob);
        }
    }
}

/* What t handed in session s is dead, its callbacks and finalizers ran
 * once, wherever it died (the receiver, a helper, the owner's merge). */
static void handoff_check(int t, int s)
{
    for (int u = 0; u < NT; u++) {
        if (u == t || !attached_in[s][u])
            continue;
        if (s == SESSIONS - 1 && u == 0)
            continue; /* main drops these late (run()); the end checks them */
        if (hwr[s][t][u]) {
            CHECK(frt_weakref_get(hwr[s][t][u]) == NULL);
            CHECK_EQ(atomic_load(&cb_by[hwr_target[s][t][u]]), 1);
            frt_decref(frt_weakref_object(hwr[s][t][u]));
            hwr[s][t][u] = NULL;
        }
        if (hfin_target[s][t][u] >= 0)
            CHECK_EQ(atomic_load(&fin_by[hfin_target[s][t][u]]), 1);
    }
}

/* A chain of n containers, owned by the caller, head returned. */
static obj *chain(int n)
{
    obj *head = NULL;
    for (int i = 0; i < n; i++) {
        obj *c = make(K_CELL);
        if (!c)
            continue;
        c->ref[0] = head ? &head->ob : NULL;
        head = c;
    }
    return head;
}

static void *worker(void *arg)
{
    int w = (int)(intptr_t)arg;
    for (int s = 0; s < SESSIONS; s++) {
        int att = attach_retry();
        attached_in[s][w] = att;
        sync_all(); /* B1 */
        if (att)
            handoff_make(w, s);
        sync_all(); /* B2 */
        if (att)
            handoff_take(w, s, 0, SLOTS);
        sync_all(); /* B3 */
        if (att) {
            handoff_check(w, s);
            retained[s][w] = chain(3);
            /* Worker 1 ends its last session by exiting attached: the exit
             * hook detaches it. */
            if (!(s == SESSIONS - 1 && w == 1))
                frt_thread_detach();
        }
        sync_all(); /* B4 */
        if (s == 0)
            sync_all(); /* B5: main's collections */
    }
    return NULL;
}

/* --- main's collections ------------------------------------------------ */

/* Cyclic garbage: a ring of n containers (the first nf with a finalize);
 * returns how many made it. weakrefs: weakrefs with callbacks to the first
 * and the last member, kept in wrs (NULL where none). */
static int ring(int n, int nf, frt_weakref **wrs, int with_finalizer)
{
    obj *first = NULL, *prev = NULL;
    int m = 0;
    for (int i = 0; i < n; i++) {
        obj *c = make(i < nf ? K_FCELL : K_CELL);
        if (!c)
            continue;
        garbage_id[c->id] = 1;
        m++;
        if (prev)
            prev->ref[0] = &c->ob; /* takes our reference */
        else
            first = c;
        prev = c;
    }
    if (!first)
        return 0;
    prev->ref[0] = frt_newref(&first->ob);
    if (wrs) {
        wrs[0] = weak(first);
        wrs[1] = prev != first ? weak(prev) : NULL;
    }
    if (with_finalizer)
        finalizer(prev);
    frt_decref(&first->ob);
    return m;
}

/* Garbage made and not destroyed yet, less what the garbage list holds. */
static long unreachable_left(void)
{
    long n = 0;
    int top = atomic_load(&next_id);
    for (int i = 0; i < top; i++)
        if (garbage_id[i] && !atomic_load(&d_by[i]))
            n++;
    return n - (long)frt_gc_garbage_count();
}

static long garbage_destroyed(void)
{
    long n = 0;
    int top = atomic_load(&next_id);
    for (int i = 0; i < top; i++)
        n += garbage_id[i] && atomic_load(&d_by[i]);
    return n;
}

static long attempts(void)
{
    frt_gc_stats st[3];
    frt_gc_get_stats(st);
    long n = 0;
    for (int g = 0; g < 3; g++)
        n += (long)(st[g].collections + st[g].postponed);
    return n;
}

static void check_callbacks(void)
{
    long n = attempts();
    for (int i = 0; i < NCB; i++) {
        CHECK_EQ(atomic_load(&cbs[i].start), cbs[i].registered ? n : 0);
        CHECK_EQ(atomic_load(&cbs[i].stop), cbs[i].registered ? n : 0);
    }
}

static long count_fin(void)
{
    long n = 0;
    int top = atomic_load(&next_id);
    for (int i = 0; i < top; i++)
        n += atomic_load(&f_by[i]);
    return n;
}

/* One explicit collection: postponed (nothing happened), or it found at
 * least the fresh garbage and at most all that is unreachable. Returns
 * what it found, or -1 if postponed. */
static long collect(int gen, long fresh, int saveall)
{
    frt_gc_stats s0[3], s1[3];
    frt_gc_get_stats(s0);
    long left = unreachable_left(), d0 = garbage_destroyed(), f0 = count_fin();
    long list0 = (long)frt_gc_garbage_count();
    long r = frt_gc_collect(gen);
    frt_gc_get_stats(s1);
    long post = (long)(s1[gen].postponed - s0[gen].postponed);
    long ran = (long)(s1[gen].collections - s0[gen].collections);
    CHECK(r >= 0);
    CHECK_EQ(post + ran, 1);
    check_callbacks();
    CHECK_EQ(atomic_load(&bad), 0);
    long destroyed = garbage_destroyed() - d0;
    long listed = (long)frt_gc_garbage_count() - list0;
    if (post) {
        CHECK(P.kind == FRT_FAULT_ALLOC);
        CHECK_EQ(r, 0);
        CHECK_EQ(destroyed, 0);
        CHECK_EQ(count_fin(), f0);
        CHECK_EQ(listed, 0);
        R.postponed++;
        return -1;
    }
    /* It returns what it freed or listed: at least the fresh garbage,
     * unless an allocation fault kept some (no memory for the resurrection
     * check keeps it all; none for the garbage list keeps what missed it). */
    CHECK(r >= fresh || P.kind == FRT_FAULT_ALLOC);
    CHECK(r <= left);
    CHECK_EQ((long)(s1[gen].uncollectable - s0[gen].uncollectable), listed);
    if (saveall) {
        CHECK_EQ(destroyed, 0);
        CHECK_EQ(listed, r);
    } else {
        CHECK_EQ(listed, 0);
        CHECK_EQ(destroyed, r);
        CHECK_EQ((long)(s1[gen].collected - s0[gen].collected), destroyed);
    }
    if (P.kind < 0) /* the clean run: exactly the garbage, all of it */
        CHECK_EQ(r, left);
    return r;
}

static frt_weakref *c0wr[2];

/* Enough weakrefs that every shard of the weakref table outgrows its first
 * bucket array (64 shards of 16): a larger array that cannot be had leaves
 * longer chains, which must work as well. */
#define NWT 300
#define WPER 4
static void many_weakrefs(void)
{
    static obj *targets[NWT];
    static frt_weakref *wrs[NWT][WPER];
    for (int i = 0; i < NWT; i++) {
        targets[i] = make(K_LEAF);
        for (int j = 0; j < WPER; j++) {
            wrs[i][j] = NULL;
            if (!targets[i])
                continue;
            if (j == 0) {
                wrs[i][j] = weak(targets[i]);
                continue;
            }
            errno = 0;
            wrs[i][j] = frt_weakref_new(&targets[i]->ob, NULL, NULL);
            if (!wrs[i][j]) {
                CHECK_EQ(errno, ENOMEM);
                atomic_fetch_add(&failed_calls, 1);
            }
        }
    }
    for (int i = 0; i < NWT; i++) {
        if (!targets[i])
            continue;
        size_t n = 0;
        for (int j = 0; j < WPER; j++) {
            if (!wrs[i][j])
                continue;
            n++;
            CHECK(frt_weakref_get(wrs[i][j]) == &targets[i]->ob);
            frt_decref(&targets[i]->ob);
        }
        CHECK_EQ(frt_weakref_count(&targets[i]->ob), n);
    }
    for (int i = 0; i < NWT; i++) {
        if (!targets[i])
            continue;
        int id = targets[i]->id;
        frt_decref(&targets[i]->ob);
        CHECK_EQ(atomic_load(&d_by[id]), 1);
        CHECK_EQ(atomic_load(&cb_by[id]), cb_expected[id]);
        for (int j = 0; j < WPER; j++) {
            if (wrs[i][j]) {
                CHECK(frt_weakref_get(wrs[i][j]) == NULL);
                frt_decref(frt_weakref_object(wrs[i][j]));
            }
        }
    }
}

static void main_collections(void)
{
    /* Generation 0: PEP 442 finalizers, weakrefs with callbacks held from
     * outside, and a frt_finalizer in the garbage (a second stop runs). */
    long m = ring(24, 4, c0wr, 1);
    collect(0, m, 0);
    m = ring(16, 0, NULL, 0);
    collect(1, m, 0);
    /* Generation 2 with DEBUG_SAVEALL: the garbage list grows past 64. */
    frt_gc_set_debug(FRT_GC_DEBUG_SAVEALL);
    m = ring(70, 0, NULL, 0);
    collect(2, m, 1);
    frt_gc_set_debug(0);
    long listed = (long)frt_gc_garbage_count();
    for (long i = 0; i < listed; i++) {
        obj *o = (obj *)frt_gc_garbage_get((size_t)i);
        CHECK(o && o->magic == MAGIC && garbage_id[o->id]);
        frt_decref(&o->ob);
    }
    CHECK(frt_gc_garbage_get((size_t)listed) == NULL);
    frt_gc_garbage_clear();
    CHECK_EQ(frt_gc_garbage_count(), 0);
    collect(2, listed, 0); /* the cleared list's cycles, and anything postponed */
    /* Automatic: 100 tracked allocations over threshold 0 = 50 collect at
     * the poll after the count is published (batches of 32: at 64); a
     * postponed run is asked for again at the next batch (96). */
    frt_gc_stats s0[3], s1[3];
    frt_gc_get_stats(s0);
    long a0 = attempts();
    frt_gc_set_threshold(50, 10, 10);
    for (int i = 0; i < 5; i++)
        ring(20, 0, NULL, 0);
    frt_gc_set_threshold(0, 10, 10);
    check_callbacks();
    frt_gc_get_stats(s1);
    long tries = attempts() - a0, post = (long)(s1[0].postponed - s0[0].postponed);
    CHECK_EQ(tries, (long)(s1[0].collections - s0[0].collections) + post);
    /* A run resets the count, so the next can come two batches later at
     * the earliest (a count left over by postponed runs can make one come
     * at the first batch); a postponed one asks again at the next batch. */
    CHECK(tries - post <= 2);
    CHECK(tries <= 3);
    if (P.kind != FRT_FAULT_MAP) /* every allocation worked */
        CHECK(tries >= 1);
    if (P.kind < 0)
        CHECK_EQ(tries, 1);
}

/* --- the end: retries with the fault lifted ---------------------------- */

static obj *_Atomic retry_obj;

static void *retry_thread(void *arg)
{
    (void)arg;
    if (!attach_retry())
        CHECK(0); /* the fault is lifted (or spent) */
    obj *o = make(K_LEAF);
    if (!o)
        o = make(K_LEAF);
    CHECK(o);
    atomic_store(&retry_obj, o);
    frt_thread_detach();
    return NULL;
}

static void final_phase(void)
{
    /* Whatever is left from the sessions (receivers that never attached,
     * chains of detached owners). */
    for (int s = 0; s < SESSIONS; s++) {
        for (int t = 0; t < NT; t++) {
            for (int u = 0; u < NT; u++) {
                for (int i = 0; i < SLOTS; i++) {
                    obj *o = box[s][t][u][i];
                    if (o) {
                        CHECK_EQ(o->magic, MAGIC);
                        box[s][t][u][i] = NULL;
                        frt_decref(&o->ob);
                    }
                }
                if (hwr[s][t][u]) {
                    CHECK(frt_weakref_get(hwr[s][t][u]) == NULL);
                    frt_decref(frt_weakref_object(hwr[s][t][u]));
                    hwr[s][t][u] = NULL;
                }
            }
            if (retained[s][t]) {
                frt_decref(&retained[s][t]->ob);
                retained[s][t] = NULL;
            }
        }
    }
    CHECK_EQ(atomic_load(&bad), 0);

    lift();
    R.seen_at_lift = P.kind >= 0 ? frt_test_fault_count(P.kind) : 0;
    for (int k = 0; k < FRT_FAULT_KINDS; k++)
        R.lift_kind[k] = frt_test_fault_count(k);

    /* A thread attaches, allocates and leaves its object to us. */
    atomic_store(&retry_obj, NULL);
    pthread_t t = test_spawn(retry_thread, NULL);
    test_join(t);
    obj *o = atomic_load(&retry_obj);
    CHECK(o && o->magic == MAGIC);
    int id = o->id;
    frt_decref(&o->ob);
    CHECK_EQ(atomic_load(&d_by[id]), 1);

    /* Allocation, a weakref with callback, a finalizer, a gc callback. */
    obj *l = make(K_LEAF);
    if (!l)
        l = make(K_LEAF);
    CHECK(l);
    frt_weakref *wr = weak(l);
    if (!wr)
        wr = weak(l);
    CHECK(wr);
    int fin = finalizer(l);
    if (!fin)
        fin = finalizer(l);
    CHECK(fin);
    id = l->id;
    frt_decref(&l->ob);
    CHECK_EQ(atomic_load(&cb_by[id]), 1);
    CHECK_EQ(atomic_load(&fin_by[id]), 1);
    CHECK(frt_weakref_get(wr) == NULL);
    frt_decref(frt_weakref_object(wr));
    static struct cbstat extra;
    int rc = frt_gc_callback_add(gc_cb, &extra);
    if (rc == FRT_ENOMEM)
        rc = frt_gc_callback_add(gc_cb, &extra);
    CHECK_EQ(rc, 0);
    CHECK_EQ(frt_gc_callback_remove(gc_cb, &extra), 0);

    /* A full collection frees exactly the garbage still unreachable:
     * postponed or all kept at most once more (a one-shot fault). */
    int tries = 0;
    for (;;) {
        long left = unreachable_left(), d0 = garbage_destroyed();
        long r = collect(2, left, 0);
        tries++;
        if (r >= 0 && garbage_destroyed() - d0 == left) {
            CHECK_EQ(r, left);
            break;
        }
        CHECK(tries < 2);
    }
    CHECK_EQ(unreachable_left(), 0);
    CHECK_EQ(frt_gc_collect(2) >= 0, 1);
    check_callbacks();

    /* Every object the workload made was destroyed exactly once; every
     * finalize, finalizer and callback ran exactly once. */
    int top = atomic_load(&next_id);
    for (int i = 0; i < top; i++) {
        CHECK_EQ(atomic_load(&d_by[i]), 1);
        CHECK_EQ(atomic_load(&f_by[i]), kind_of[i] == K_FCELL);
        CHECK_EQ(atomic_load(&fin_by[i]), fin_expected[i]);
        CHECK_EQ(atomic_load(&cb_by[i]), cb_expected[i]);
    }
    for (int i = 0; i < 2; i++) {
        if (c0wr[i]) {
            CHECK(frt_weakref_get(c0wr[i]) == NULL);
            frt_decref(frt_weakref_object(c0wr[i]));
            c0wr[i] = NULL;
        }
    }
    for (int i = 0; i < NCB; i++)
        if (cbs[i].registered)
            CHECK_EQ(frt_gc_callback_remove(gc_cb, &cbs[i]), 0);
    CHECK_EQ(atomic_load(&bad), 0);

    /* Nothing in use, nothing mapped once trimmed. */
    frt_heap_trim();
    frt_heap_stats st;
    frt_heap_get_stats(&st);
    CHECK_EQ(st.blocks_in_use, 0);
    CHECK_EQ(st.large_objects, 0);
    CHECK_EQ(st.arenas, 0);
    CHECK_EQ(st.bytes_mapped, 0);
    frt_stw_stats sw;
    frt_stw_get_stats(&sw);
    R.stops = sw.stops;
}

static void run(plan p)
{
    P = p;
    memset(&R, 0, sizeof R);
    memset(d_by, 0, sizeof d_by);
    memset(f_by, 0, sizeof f_by);
    memset(fin_by, 0, sizeof fin_by);
    memset(cb_by, 0, sizeof cb_by);
    memset(kind_of, 0, sizeof kind_of);
    memset(garbage_id, 0, sizeof garbage_id);
    memset(fin_expected, 0, sizeof fin_expected);
    memset(cb_expected, 0, sizeof cb_expected);
    memset(box, 0, sizeof box);
    memset(hwr, 0, sizeof hwr);
    memset(retained, 0, sizeof retained);
    memset(attached_in, 0, sizeof attached_in);
    memset(cbs, 0, sizeof cbs);
    atomic_store(&next_id, 0);
    atomic_store(&bad, 0);
    atomic_store(&failed_calls, 0);

    /* Queue nodes are counted once named; a fault may be armed before
     * frt_init, whose own requests then count. */
    frt_test_fault_set(FRT_FAULT_NODE, 0, 0);
    if (p.kind >= 0)
        frt_test_fault_set(p.kind, p.k, p.sticky);

    frt_config cfg;
    frt_config_default(&cfg);
    cfg.gc_threshold[0] = 0; /* automatic runs only where main asks for them */
    cfg.arena_cache = 0;     /* every arena request is a mapping */
    int rc = frt_init(&cfg);
    if (rc != 0) {
        CHECK_EQ(rc, FRT_ENOMEM);
        CHECK(P.kind == FRT_FAULT_ALLOC);
        CHECK(!frt_is_initialized() && !frt_thread_is_attached());
        R.init_failures++;
        lift();
        rc = frt_init(&cfg);
        CHECK_EQ(rc, 0);
    }
    for (int i = 0; i < NCB; i++) {
        int r = frt_gc_callback_add(gc_cb, &cbs[i]);
        if (r == 0) {
            cbs[i].registered = 1;
        } else {
            CHECK_EQ(r, FRT_ENOMEM);
            atomic_fetch_add(&failed_calls, 1);
        }
    }
    CHECK_EQ(pthread_barrier_init(&bar, NULL, NT), 0);
    pthread_t th[NT];
    for (int w = 1; w < NT; w++)
        th[w] = test_spawn(worker, (void *)(intptr_t)w);
    for (int s = 0; s < SESSIONS; s++) {
        attached_in[s][0] = 1;
        sync_all(); /* B1 */
        handoff_make(0, s);
        sync_all(); /* B2 */
        handoff_take(0, s, 0, s == SESSIONS - 1 ? H : SLOTS);
        if (s == 1) {
            /* A collection while the workers drop what they were handed:
             * it stops them at their next poll and merges their queues. */
            long m = ring(12, 2, NULL, 0);
            collect(1, m, 0);
        }
        sync_all(); /* B3 */
        /* In the last session main drops the workers' containers and large
         * objects only now, while they detach: each decref finds the owner
         * attached (a queue node), closing its queue, or gone. */
        if (s == SESSIONS - 1)
            handoff_take(0, s, H, SLOTS);
        handoff_check(0, s);
        sync_all(); /* B4: the workers have detached */
        if (s == 0) {
            for (int w = 1; w < NT; w++) { /* chains of detached owners */
                if (retained[0][w]) {
                    frt_decref(&retained[0][w]->ob);
                    retained[0][w] = NULL;
                }
            }
            many_weakrefs();
            main_collections();
            /* The orphaned heaps give their arenas back: the workers map
             * new ones when they come back. */
            frt_heap_trim();
            sync_all(); /* B5 */
        }
    }
    for (int w = 1; w < NT; w++)
        test_join(th[w]);
    CHECK_EQ(pthread_barrier_destroy(&bar), 0);
    final_phase();
    R.failed_calls = atomic_load(&failed_calls);
    CHECK_EQ(frt_shutdown(), 0);
    frt_heap_stats st;
    frt_heap_get_stats(&st);
    CHECK_EQ(st.arenas, 0);
    CHECK_EQ(st.bytes_mapped, 0);
    CHECK_EQ(frt_test_sys_live(), 0); /* the runtime keeps nothing of its own */
    for (int k = 0; k < FRT_FAULT_KINDS; k++)
        R.seen_kind[k] = frt_test_fault_count(k);
    R.seen_total = p.kind >= 0 ? R.seen_kind[p.kind] : 0;
}

/* ---------------------------------------------------------------------- */
/* Shutdown with a sticky fault and garbage left                          */

static void shutdown_under_fault(void)
{
    memset(d_by, 0, sizeof d_by);
    atomic_store(&next_id, 0);
    atomic_store(&bad, 0);
    P = (plan){FRT_FAULT_ALLOC, 1, 1};
    CHECK_EQ(frt_init(NULL), 0);
    long m = 0;
    for (int i = 0; i < 3; i++)
        m += ring(30, 2, NULL, 0);
    CHECK_EQ(m, 90);
    frt_test_fault_set(FRT_FAULT_ALLOC, 1, 1);
    /* The last collections have no memory and are postponed: the cycles
     * survive, are counted, and go with the arenas (not destroyed, their
     * PEP 442 finalizers not run). */
    CHECK_EQ(frt_shutdown(), 90);
    CHECK_EQ(atomic_load(&bad), 0);
    frt_heap_stats st;
    frt_heap_get_stats(&st);
    CHECK_EQ(st.arenas, 0);
    CHECK_EQ(st.bytes_mapped, 0);
    CHECK_EQ(frt_test_sys_live(), 0);
    /* frt_shutdown disarmed the fault. */
    CHECK_EQ(frt_init(NULL), 0);
    obj *o = make(K_LEAF);
    CHECK(o);
    frt_decref(&o->ob);
    CHECK_EQ(frt_gc_collect(2), 0);
    CHECK_EQ(frt_shutdown(), 0);
}

/* ---------------------------------------------------------------------- */

static const char *kind_name[FRT_FAULT_KINDS] = {"map", "alloc", "node"};
static int finished;

/* A failed CHECK exits: say which run it was. */
static void report_plan(void)
{
    if (!finished)
        fprintf(stderr, "test_fault_sweep: failed in the run with %s fault k=%ld%s\n",
                P.kind >= 0 ? kind_name[P.kind] : "no", P.k, P.sticky ? " (sticky)" : "");
}

int main(void)
{
    test_watchdog("test_fault_sweep", 280);
    atexit(report_plan);
    uint64_t t0 = test_now_ns();

    run((plan){-1, 0, 0});
    result clean = R;
    fprintf(stderr,
            "clean run: %ld mappings, %ld allocations, %ld queue nodes (%ld, %ld, %ld before the "
            "lift); %ld objects; %llu stops\n",
            clean.seen_kind[0], clean.seen_kind[1], clean.seen_kind[2], clean.lift_kind[0],
            clean.lift_kind[1], clean.lift_kind[2], (long)atomic_load(&next_id),
            (unsigned long long)clean.stops);
    CHECK(clean.seen_kind[FRT_FAULT_MAP] >= NT);
    CHECK(clean.seen_kind[FRT_FAULT_ALLOC] >= 2 * NT);
    CHECK(clean.seen_kind[FRT_FAULT_NODE] >= NT * NW * H);
    CHECK_EQ(clean.failed_calls, 0);

    for (int kind = 0; kind < FRT_FAULT_KINDS; kind++) {
        long runs = 0, fired = 0, failed = 0, postponed = 0, init_f = 0;
        uint64_t t1 = test_now_ns();
        for (int sticky = 0; sticky <= 1; sticky++) {
            /* Every k the run reaches (the counts move a little from run
             * to run: which thread merges a queue, where weakrefs hash),
             * ending with one past it: a fault that never comes. */
            for (long k = 1;; k++) {
                CHECK(k < 4 * (clean.seen_kind[kind] + 10));
                run((plan){kind, k, sticky});
                runs++;
                /* The k-th request came, then it failed: once, or every
                 * time until the lift. */
                long until = sticky ? R.seen_at_lift : R.seen_total;
                long nfail = k > until ? 0 : sticky ? until - k + 1 : 1;
                fired += nfail > 0;
                failed += R.failed_calls;
                postponed += R.postponed;
                init_f += R.init_failures;
                if (kind != FRT_FAULT_ALLOC) {
                    CHECK_EQ(R.postponed, 0);
                    CHECK_EQ(R.init_failures, 0);
                }
                /* A refused node is a stop of the world, one each: the
                 * collections stop as often as in the clean run. */
                if (kind == FRT_FAULT_NODE) {
                    CHECK_EQ(R.failed_calls, 0);
                    CHECK_EQ(R.stops, clean.stops + (uint64_t)nfail);
                }
                if (nfail == 0) { /* nothing failed, nothing was postponed */
                    CHECK_EQ(R.failed_calls, 0);
                    CHECK_EQ(R.postponed, 0);
                    break;
                }
            }
        }
        fprintf(stderr,
                "%s: %ld runs, %ld with the fault injected, %ld calls failed cleanly, %ld "
                "collections postponed, %ld frt_init refused; %.2f s\n",
                kind_name[kind], runs, fired, failed, postponed, init_f,
                (double)(test_now_ns() - t1) / 1e9);
        CHECK(fired >= runs - 3);
    }
    shutdown_under_fault();
    fprintf(stderr, "test_fault_sweep: %.2f s\n", (double)(test_now_ns() - t0) / 1e9);
    finished = 1;
    TEST_PASS("test_fault_sweep");
    return 0;
}
