/* The operation language of the property test and the fuzzer: what a
 * program is, how one is generated from a seed or decoded from fuzzer
 * bytes, and how it is printed and read back.
 *
 * A program is a flat list of operations. Thread operations carry the test
 * thread that runs them; their operands are *selectors*, small numbers that
 * the model (property_model.c) resolves against its state when the op runs
 * ("the a-th handle of this thread that holds a container"). Any list of
 * operations is therefore a valid program, which is what lets the shrinker
 * delete operations freely and the fuzzer feed arbitrary bytes. Global
 * operations (collect, freeze, thresholds, ...) run at a barrier, with
 * every test thread stopped in a blocking section. */
#ifndef FRT_TESTS_PROPERTY_OPS_H
#define FRT_TESTS_PROPERTY_OPS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define PROP_MAX_THREADS 8

enum prop_op_kind {
    /* Thread operations. a, b, c are selectors (see property_model.c). */
    P_NEW,         /* a: kind (leaf, container, finalizing container), b: slots, c: finalizer mode */
    P_DUP,         /* a: handle. incref into a new handle */
    P_DROP,        /* a: handle. decref */
    P_LINK,        /* a: container handle, b: value handle, c: slot. slot = newref(value) */
    P_UNLINK,      /* a: container handle, c: slot */
    P_LOAD,        /* a: container handle, c: slot. new handle = newref(slot) */
    P_HANDOFF,     /* a: handle, b: thread. the reference moves to that thread (at the barrier) */
    P_SHARE,       /* a: handle, b: thread. a new reference goes to that thread */
    P_MAKE_SHARED, /* a: handle */
    P_WR_NEW,      /* a: target handle, b: odd = with a callback */
    P_WR_GET,      /* a: weakref handle. new handle = get (or nothing) */
    P_FIN_NEW,     /* a: target handle */
    P_FIN_CALL,    /* a: finalizer handle */
    P_FIN_DETACH,  /* a: finalizer handle */
    P_FIN_FREE,    /* a: finalizer handle */
    P_ADOPT,       /* a: resurrected object. take the resurrection table's reference */
    P_DETACH,      /* frt_thread_detach + frt_thread_attach */
    P_BLOCK,       /* a short blocking section */
    P_SAFEPOINT,
    P_COLLECT,     /* a: generation. frt_gc_collect while the other threads run */
    P_MAKE_HOT,    /* a: handle. frt_make_hot (weakref objects are skipped) */
    /* Global operations, at a barrier. */
    P_BARRIER,     /* only ends the round */
    P_G_COLLECT,   /* a: generation (0, 1, 2) */
    P_G_FREEZE,
    P_G_UNFREEZE,
    P_G_THRESH,    /* a, b, c: threshold choices */
    P_G_ENABLE,
    P_G_DISABLE,
    P_G_RELEASE,   /* a: resurrected object. the barrier drops the table's reference */
    P_NKINDS
};

typedef struct prop_op {
    uint8_t kind, thread, a, b, c;
} prop_op;

typedef struct prop_prog {
    prop_op *ops;
    size_t n, cap;
    unsigned threads; /* 1..PROP_MAX_THREADS */
} prop_prog;

/* Threshold choices of P_G_THRESH: t0 = thresh_t0[a % n], ... */
extern const size_t prop_thresh_t0[6];
extern const size_t prop_thresh_t12[3];

int prop_op_is_global(const prop_op *op);
const char *prop_op_name(unsigned kind);

void prop_prog_init(prop_prog *p, unsigned threads);
void prop_prog_free(prop_prog *p);
void prop_prog_push(prop_prog *p, prop_op op);
void prop_prog_copy(prop_prog *dst, const prop_prog *src);

/* splitmix64: the generator's random numbers. */
typedef struct prop_rng {
    uint64_t s;
} prop_rng;
uint64_t prop_rng_next(prop_rng *r);
unsigned prop_rng_below(prop_rng *r, unsigned n);

/* A random program of nops operations over threads threads. */
void prop_generate(prop_prog *p, uint64_t seed, size_t nops, unsigned threads);

/* A program from fuzzer bytes: the first byte picks the thread count (1 to
 * max_threads), then every 4 bytes make one operation. At most max_ops. */
void prop_decode(prop_prog *p, const uint8_t *data, size_t size, unsigned max_threads,
                 size_t max_ops);

/* The inverse of prop_decode (for seed corpora): at most cap bytes;
 * returns the number written. */
size_t prop_encode(const prop_prog *p, uint8_t *out, size_t cap);

/* The textual form: "threads N" then one operation per line
 * ("t1 link 3 0 2", "collect 2"). prop_parse reads it back; it returns 0,
 * or -1 with a message on stderr. */
void prop_print_op(FILE *f, const prop_op *op);
void prop_print(FILE *f, const prop_prog *p);
int prop_parse(prop_prog *p, FILE *f);

#endif
