/* The reference model of the property test and the fuzzer.
 *
 * It knows every object the test made (by a dense id), every reference to
 * it (handles held by the test threads, container slots, the resurrection
 * table that finalizers store into) and every weak reference and
 * finalizer, and so exactly which objects are reachable. Per step it
 *   1. resolves the step's operations (selectors -> handle slots, object
 *      ids), refusing what would make threads race on one container;
 *   2. after the executor ran them, applies them with their results;
 *   3. reconciles what the runtime reported (destroy, finalize, callback
 *      and finalizer logs, collections run meanwhile) with what the
 *      semantics allow, and checks the runtime's state (refcounts, weakref
 *      targets, slots, finalizers alive, the resurrection table) against
 *      its own.
 * A collection at a barrier is predicted exactly before it runs (which
 * objects are unreachable, finalized, resurrected, destroyed, which
 * callbacks run). Where the runtime may legitimately decide (an automatic
 * collection in the middle of a round, a weakref get racing the last
 * decref on another thread) the model checks that what happened is one of
 * the allowed outcomes and learns it.
 *
 * The model never calls frt: it reads the runtime through prop_observer,
 * which the executor (property_exec.c) implements. */
#ifndef FRT_TESTS_PROPERTY_MODEL_H
#define FRT_TESTS_PROPERTY_MODEL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "property_ops.h"

#define PROP_HCAP 32  /* handles per thread */
#define PROP_FCAP 8   /* finalizer handles per thread */
#define PROP_SLOTS 4  /* slots per container, at most */
#define PROP_MBCAP 16 /* references one thread hands another per round */

enum prop_kind { MK_LEAF, MK_CONT, MK_FCONT, MK_WREF, MK_CHILD };
enum prop_fmode { FM_PLAIN, FM_RESURRECT, FM_ALLOC }; /* what a finalizing container's finalize does */
#define PROP_GEN_FROZEN 3
#define PROP_GEN_NONE (-1) /* untracked */

typedef struct prop_mobj {
    uint8_t exists; /* created (an id may be planned and never made) */
    uint8_t kind, nslots, fmode;
    uint8_t alive;     /* not destroyed */
    uint8_t finalized; /* type finalize ran */
    int8_t gen;        /* 0..2, PROP_GEN_FROZEN, PROP_GEN_NONE */
    uint8_t hot;       /* frt_make_hot: dies only in a collection */
    int slot[PROP_SLOTS];
    /* weak references */
    int target;
    uint8_t has_cb, cleared, called;
    uint8_t cleared0; /* at the start of the step */
    /* per step */
    uint8_t pinned;   /* reachable all through the step: must not die, be finalized, be cleared */
    uint8_t alive0;   /* alive at the start of the step */
    uint8_t died;     /* died in this step */
    uint8_t fin_new;  /* finalized in this step */
    uint8_t modmask;  /* slots written in this step */
    int nref;         /* references, computed */
    int mark;
    int claim;        /* thread + 1 that may use its slots in this round */
    int pslot[PROP_SLOTS]; /* the slots as the plan sees them */
    uint8_t pslot_maybe;   /* bit s: pslot[s] may turn out empty */
} prop_mobj;

typedef struct prop_mfin {
    uint8_t exists;
    int target, thread;
    uint8_t alive;    /* registered: not run, not detached */
    uint8_t handle;   /* the test still holds its handle */
    uint8_t ran, detached;
    uint8_t alive0;
    int8_t c1, d1, any0; /* this step: a call returned 1, a detach returned 1, one returned 0 */
} prop_mfin;

/* A resolved operation: what the executor runs. */
typedef struct prop_rop {
    uint8_t kind, thread;
    int8_t h, h2, out, slot; /* handle slots of the thread, container slot; -1: none */
    uint8_t to;              /* receiving thread */
    uint8_t mk, ns, fm, gen, cb;
    int8_t mb;               /* index in the mailbox to `to` */
    uint32_t pad;            /* new: bytes beyond the slots (spreads objects over pages, size
                                classes and the large-object path) */
    int id, id2, fin;        /* object ids, finalizer id */
    long result;             /* written by the executor */
    size_t pidx;             /* the program operation it came from */
} prop_rop;

/* A reference handed over at the barrier: mbox[from][to][k] goes to slot
 * `slot` of thread `to`, or is dropped by the barrier thread (slot -1). */
typedef struct prop_delivery {
    uint8_t from, to, k;
    int8_t slot;
} prop_delivery;

/* What a collection at a barrier must do, predicted before it runs. */
typedef struct prop_expect {
    long ret;            /* frt_gc_collect's result: unreachable objects found */
    uint8_t *destroyed;  /* by id */
    uint8_t *finalized;
    uint8_t *cb;         /* 0, 1, or 2: may or may not (the weakref dies in the same cascade) */
    uint8_t *cleared;    /* the weakrefs cleared afterwards */
    int8_t *gen;
    uint8_t *fn;         /* by finalizer id */
    size_t n_unreachable, n_resurrected;
} prop_expect;

/* How the model reads the runtime. */
typedef struct prop_observer {
    void *ctx;
    int (*destroyed)(void *ctx, int id); /* cumulative counts */
    int (*finalized)(void *ctx, int id);
    int (*called)(void *ctx, int id);
    int (*fn_ran)(void *ctx, int fin);
    long (*collections)(void *ctx);
    long (*refcount)(void *ctx, int id);
    int (*wr_get)(void *ctx, int id, int target); /* 1: its target, 0: NULL */
    long (*wr_count)(void *ctx, int id);
    int (*fin_alive)(void *ctx, int fin);         /* -1 when the handle is gone */
    int (*res_present)(void *ctx, int id);
    /* the object is whole (magic, id, kind) and its slots hold these ids */
    void (*check_object)(void *ctx, int id, const prop_mobj *m);
    /* generations of the tracked objects ids[0..n) (-1: not found, 3: not
     * in 0..2); returns 0, or -1 if they cannot be read */
    int (*gens)(void *ctx, const int *ids, size_t n, int8_t *out);
    long (*freeze_count)(void *ctx);
    int (*is_hot)(void *ctx, int id); /* frt_is_hot of a live object */
} prop_observer;

typedef struct prop_model {
    unsigned threads;
    size_t nids;    /* ids 0..nids-1: planned objects, then children at child_base + id */
    size_t child_base;
    size_t next_id;
    prop_mobj *obj;
    size_t nfins, next_fin;
    prop_mfin *fin;
    uint8_t *res;   /* by id: the resurrection table holds a reference */
    uint8_t *res_claim;
    int h[PROP_MAX_THREADS][PROP_HCAP];  /* object ids, -1 empty */
    size_t hage[PROP_MAX_THREADS][PROP_HCAP]; /* when the handle was made: selectors prefer recent ones */
    int fh[PROP_MAX_THREADS][PROP_FCAP]; /* finalizer ids, -1 empty */
    /* plan state of the current round */
    int ph[PROP_MAX_THREADS][PROP_HCAP];
    uint8_t pmaybe[PROP_MAX_THREADS][PROP_HCAP];
    uint8_t porig[PROP_MAX_THREADS][PROP_HCAP]; /* still the handle the round started with */
    size_t page[PROP_MAX_THREADS][PROP_HCAP];
    int pfh[PROP_MAX_THREADS][PROP_FCAP];
    int nmb[PROP_MAX_THREADS][PROP_MAX_THREADS];
    int mbox[PROP_MAX_THREADS][PROP_MAX_THREADS][PROP_MBCAP]; /* ids after apply */
    size_t mbox_age[PROP_MAX_THREADS][PROP_MAX_THREADS][PROP_MBCAP];
    int *claimed;
    size_t nclaimed;
    prop_delivery deliv[PROP_MAX_THREADS * PROP_MAX_THREADS * PROP_MBCAP];
    size_t ndeliv;
    int gens_exact;
    int frozen_any;
    int step_concurrent; /* the step being reconciled ran its threads at once */
    /* events already accounted for */
    int *acc_destroyed, *acc_finalized, *acc_cb, *acc_fn;
    long acc_collections;
    /* figures */
    size_t objects_made, weakrefs_made, finalizers_made, collections_predicted;
    size_t max_alive;
    size_t ev_destroyed, ev_finalized, ev_resurrected, ev_callbacks, ev_fn;
    size_t unreachable_found, gets_ok, gets_null, learned_cleared, steps_with_collections;
    int trace;
    FILE *trace_out;
} prop_model;

/* Failures: print one line with the check's name and what was seen, then
 * call prop_fail_hook (default: exit(1)). prop_fail_where is printed with
 * it (the step being checked). */
extern void (*prop_fail_hook)(void);
extern char prop_fail_where[160];
__attribute__((noreturn, format(printf, 2, 3))) void prop_fail(const char *check, const char *fmt, ...);

/* prog_ops: the number of operations of the program (a bound on ids). */
void prop_model_init(prop_model *m, unsigned threads, size_t prog_ops);
void prop_model_free(prop_model *m);

/* Resolve the thread operations ops[0..n) into one round: out gets every
 * thread's operations, in program order, thread by thread; counts[t] says
 * how many are thread t's (they follow each other in out). Returns the
 * number written (at most n). */
size_t prop_model_plan_round(prop_model *m, const prop_op *ops, size_t n, size_t pidx0,
                             prop_rop *out, size_t counts[PROP_MAX_THREADS]);
/* Resolve one global operation (0: nothing to do). */
int prop_model_plan_global(prop_model *m, const prop_op *op, size_t pidx, prop_rop *out);

/* After the executor ran rops[0..n): apply them with their results, and
 * decide the deliveries (m->deliv) the executor then carries out. */
void prop_model_apply(prop_model *m, const prop_rop *rops, size_t n);

/* Predict a collection of generation gen (world quiescent); gens must be
 * exact (prop_model_learn_gens). Returns the expectation in e (allocated
 * here, freed by prop_expect_free). */
void prop_model_predict_collect(prop_model *m, int gen, prop_expect *e);
void prop_expect_free(prop_expect *e);
/* Read the generations from the runtime; if the model believes it knows
 * them, they must agree. */
void prop_model_learn_gens(prop_model *m, const prop_observer *obs);

/* Check and learn what happened in the step just applied. e: the
 * prediction of a barrier collection, or NULL. */
void prop_model_reconcile(prop_model *m, const prop_observer *obs, const prop_expect *e,
                          const prop_rop *rops, size_t n);

/* Everything is dead, every finalizer ran or was detached, every object
 * was destroyed exactly once. */
void prop_model_check_final(prop_model *m, const prop_observer *obs);

size_t prop_model_alive(const prop_model *m);
size_t prop_model_res_count(const prop_model *m);
size_t prop_model_handles(const prop_model *m, unsigned t);
size_t prop_model_fin_handles(const prop_model *m, unsigned t);

void prop_rop_print(FILE *f, const prop_model *m, const prop_rop *r);

#endif
