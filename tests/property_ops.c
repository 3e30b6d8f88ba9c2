/* The operation language: generator, fuzzer decoder, printer and parser.
 * property_ops.h describes the language. */
#include "property_ops.h"

#include <stdlib.h>
#include <string.h>

const size_t prop_thresh_t0[6] = {0, 1, 3, 10, 50, 700};
const size_t prop_thresh_t12[3] = {1, 2, 10};

static const char *const names[P_NKINDS] = {
    [P_NEW] = "new",           [P_DUP] = "dup",
    [P_DROP] = "drop",         [P_LINK] = "link",
    [P_UNLINK] = "unlink",     [P_LOAD] = "load",
    [P_HANDOFF] = "handoff",   [P_SHARE] = "share",
    [P_MAKE_SHARED] = "make_shared", [P_WR_NEW] = "wr_new",
    [P_WR_GET] = "wr_get",     [P_FIN_NEW] = "fin_new",
    [P_FIN_CALL] = "fin_call", [P_FIN_DETACH] = "fin_detach",
    [P_FIN_FREE] = "fin_free", [P_ADOPT] = "adopt",
    [P_DETACH] = "detach",     [P_BLOCK] = "block",
    [P_SAFEPOINT] = "safepoint", [P_COLLECT] = "collect_now",
    [P_MAKE_HOT] = "make_hot",
    [P_BARRIER] = "barrier",   [P_G_COLLECT] = "collect",
    [P_G_FREEZE] = "freeze",   [P_G_UNFREEZE] = "unfreeze",
    [P_G_THRESH] = "threshold", [P_G_ENABLE] = "enable",
    [P_G_DISABLE] = "disable", [P_G_RELEASE] = "release",
};

/* Relative weights of the thread operations and of the global ones. */
static const unsigned thread_weight[P_BARRIER] = {
    [P_NEW] = 19,    [P_DUP] = 5,        [P_DROP] = 14,      [P_LINK] = 17,
    [P_UNLINK] = 3,  [P_LOAD] = 6,       [P_HANDOFF] = 4,    [P_SHARE] = 4,
    [P_MAKE_SHARED] = 2, [P_WR_NEW] = 7, [P_WR_GET] = 7,     [P_FIN_NEW] = 2,
    [P_FIN_CALL] = 1, [P_FIN_DETACH] = 1, [P_FIN_FREE] = 1,  [P_ADOPT] = 3,
    [P_DETACH] = 1,  [P_BLOCK] = 1,      [P_SAFEPOINT] = 1,  [P_COLLECT] = 1,
    [P_MAKE_HOT] = 2,
};
static const unsigned global_weight[P_NKINDS] = {
    [P_BARRIER] = 25, [P_G_COLLECT] = 40, [P_G_FREEZE] = 4, [P_G_UNFREEZE] = 6,
    [P_G_THRESH] = 10, [P_G_ENABLE] = 4, [P_G_DISABLE] = 4, [P_G_RELEASE] = 7,
};

int prop_op_is_global(const prop_op *op)
{
    return op->kind >= P_BARRIER;
}

const char *prop_op_name(unsigned kind)
{
    return kind < P_NKINDS ? names[kind] : "?";
}

void prop_prog_init(prop_prog *p, unsigned threads)
{
    memset(p, 0, sizeof *p);
    p->threads = threads < 1 ? 1 : threads > PROP_MAX_THREADS ? PROP_MAX_THREADS : threads;
}

void prop_prog_free(prop_prog *p)
{
    free(p->ops);
    p->ops = NULL;
    p->n = p->cap = 0;
}

void prop_prog_push(prop_prog *p, prop_op op)
{
    if (p->n == p->cap) {
        p->cap = p->cap ? 2 * p->cap : 64;
        p->ops = realloc(p->ops, p->cap * sizeof *p->ops);
        if (!p->ops) {
            perror("property: realloc");
            abort();
        }
    }
    if (op.kind >= P_NKINDS)
        op.kind = P_SAFEPOINT;
    if (prop_op_is_global(&op))
        op.thread = 0;
    else
        op.thread = (uint8_t)(op.thread % p->threads);
    p->ops[p->n++] = op;
}

void prop_prog_copy(prop_prog *dst, const prop_prog *src)
{
    prop_prog_init(dst, src->threads);
    for (size_t i = 0; i < src->n; i++)
        prop_prog_push(dst, src->ops[i]);
}

uint64_t prop_rng_next(prop_rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

unsigned prop_rng_below(prop_rng *r, unsigned n)
{
    return n ? (unsigned)(prop_rng_next(r) % n) : 0;
}

static unsigned pick(prop_rng *r, const unsigned *weight, unsigned lo, unsigned hi)
{
    unsigned total = 0;
    for (unsigned k = lo; k < hi; k++)
        total += weight[k];
    unsigned x = prop_rng_below(r, total);
    for (unsigned k = lo; k < hi; k++) {
        if (x < weight[k])
            return k;
        x -= weight[k];
    }
    return lo;
}

static uint8_t recent(prop_rng *r)
{
    unsigned x = prop_rng_below(r, 100);
    return (uint8_t)(x < 55 ? prop_rng_below(r, 2) : x < 85 ? prop_rng_below(r, 6) : prop_rng_next(r));
}

void prop_generate(prop_prog *p, uint64_t seed, size_t nops, unsigned threads)
{
    prop_prog_init(p, threads);
    prop_rng r = {seed};
    /* A profile per program: how often global operations come, and whether
     * automatic collections are on from the start (small thresholds). */
    unsigned global_per_mille = 30 + prop_rng_below(&r, 60);
    unsigned profile = prop_rng_below(&r, 4);
    /* Object sizes (bits 2-4 of new's b, see property_model.c): small ones
     * only, a mix, or mostly a few per 64 KiB page so that one size class
     * spans many pages of a heap (and some objects are large). */
    unsigned sizes = prop_rng_below(&r, 3);
    if (profile == 1) {
        prop_prog_push(p, (prop_op){P_G_THRESH, 0, (uint8_t)(1 + prop_rng_below(&r, 4)),
                                    (uint8_t)prop_rng_below(&r, 3), (uint8_t)prop_rng_below(&r, 3)});
    } else if (profile == 2) {
        prop_prog_push(p, (prop_op){P_G_DISABLE, 0, 0, 0, 0});
    }
    /* Threads take turns in runs, so one thread's operations build on each
     * other (link what it just made) as well as interleave. */
    unsigned cur = 0;
    while (p->n < nops) {
        prop_op op = {0};
        if (prop_rng_below(&r, 1000) < global_per_mille) {
            op.kind = (uint8_t)pick(&r, global_weight, P_BARRIER, P_NKINDS);
            if (op.kind == P_G_COLLECT) {
                unsigned g = prop_rng_below(&r, 100);
                op.a = g < 25 ? 0 : g < 45 ? 1 : 2;
            }
        } else {
            if (prop_rng_below(&r, 4) == 0)
                cur = prop_rng_below(&r, threads);
            op.kind = (uint8_t)pick(&r, thread_weight, 0, P_BARRIER);
            op.thread = (uint8_t)cur;
        }
        /* Handle selectors count from the most recent handle: mostly small,
         * so programs build on what they just made (and close cycles). */
        op.a = op.kind == P_G_COLLECT ? op.a
               : op.kind == P_NEW || op.kind == P_DROP ? (uint8_t)prop_rng_next(&r)
                                                       : recent(&r);
        op.b = op.kind == P_LINK ? recent(&r) : (uint8_t)prop_rng_next(&r);
        if (op.kind == P_NEW) {
            unsigned pad = sizes == 0   ? prop_rng_below(&r, 4)
                           : sizes == 1 ? prop_rng_below(&r, 8)
                                        : (prop_rng_below(&r, 10) < 7 ? 6 : prop_rng_below(&r, 8));
            op.b = (uint8_t)((op.b & 0xe3) | (pad << 2));
        }
        op.c = (uint8_t)prop_rng_next(&r);
        prop_prog_push(p, op);
    }
}

/* Byte -> operation kind, with the generator's weights (thread operations
 * 15 times as likely as global ones, like a busy generated program). */
static uint8_t decode_table[256];
static int decode_ready;

static void decode_init(void)
{
    unsigned w[P_NKINDS], total = 0;
    for (unsigned k = 0; k < P_NKINDS; k++) {
        w[k] = k < P_BARRIER ? thread_weight[k] * 15 : global_weight[k];
        total += w[k];
    }
    unsigned k = 0, acc = w[0];
    for (unsigned i = 0; i < 256; i++) {
        while (i * total >= acc * 256u && k + 1 < P_NKINDS)
            acc += w[++k];
        decode_table[i] = (uint8_t)k;
    }
    /* Every kind reachable from some byte, however small its weight. */
    for (unsigned kind = 0; kind < P_NKINDS; kind++)
        decode_table[255 - kind] = (uint8_t)kind;
    decode_ready = 1;
}

void prop_decode(prop_prog *p, const uint8_t *data, size_t size, unsigned max_threads,
                 size_t max_ops)
{
    if (!decode_ready)
        decode_init();
    unsigned threads = size ? 1 + data[0] % (max_threads ? max_threads : 1) : 1;
    prop_prog_init(p, threads);
    for (size_t i = 1; i + 4 <= size && p->n < max_ops; i += 4) {
        /* kind, a, b, then the thread in the top 3 bits and c in the rest */
        prop_op op = {decode_table[data[i]], (uint8_t)(data[i + 3] >> 5), data[i + 1], data[i + 2],
                      (uint8_t)(data[i + 3] & 0x1f)};
        if (op.kind == P_G_COLLECT)
            op.a %= 3;
        prop_prog_push(p, op);
    }
}

size_t prop_encode(const prop_prog *p, uint8_t *out, size_t cap)
{
    if (cap < 1)
        return 0;
    out[0] = (uint8_t)(p->threads - 1);
    size_t n = 1;
    /* byte 255 - kind decodes to kind (decode_init) */
    for (size_t i = 0; i < p->n && n + 4 <= cap; i++, n += 4) {
        const prop_op *op = &p->ops[i];
        out[n] = (uint8_t)(255 - op->kind);
        out[n + 1] = op->a;
        out[n + 2] = op->b;
        out[n + 3] = (uint8_t)((op->thread << 5) | (op->c & 0x1f));
    }
    return n;
}

void prop_print_op(FILE *f, const prop_op *op)
{
    if (prop_op_is_global(op))
        fprintf(f, "%s %u %u %u\n", prop_op_name(op->kind), op->a, op->b, op->c);
    else
        fprintf(f, "t%u %s %u %u %u\n", op->thread, prop_op_name(op->kind), op->a, op->b, op->c);
}

void prop_print(FILE *f, const prop_prog *p)
{
    fprintf(f, "threads %u\n", p->threads);
    for (size_t i = 0; i < p->n; i++)
        prop_print_op(f, &p->ops[i]);
}

static int kind_of(const char *name)
{
    for (unsigned k = 0; k < P_NKINDS; k++)
        if (strcmp(names[k], name) == 0)
            return (int)k;
    return -1;
}

int prop_parse(prop_prog *p, FILE *f)
{
    char line[256];
    unsigned threads = 1;
    int have_header = 0, lineno = 0;
    prop_prog_init(p, PROP_MAX_THREADS);
    while (fgets(line, sizeof line, f)) {
        lineno++;
        char *s = line;
        while (*s == ' ' || *s == '\t')
            s++;
        if (*s == '#' || *s == '\n' || *s == '\0')
            continue;
        unsigned t = 0, a = 0, b = 0, c = 0;
        char name[32];
        if (sscanf(s, "threads %u", &threads) == 1) {
            if (threads < 1 || threads > PROP_MAX_THREADS) {
                fprintf(stderr, "property: line %d: threads must be 1..%d\n", lineno,
                        PROP_MAX_THREADS);
                return -1;
            }
            have_header = 1;
            continue;
        }
        int k;
        if (s[0] == 't' && sscanf(s, "t%u %31s %u %u %u", &t, name, &a, &b, &c) >= 2) {
            k = kind_of(name);
            if (k < 0 || k >= P_BARRIER || t >= threads) {
                fprintf(stderr, "property: line %d: bad thread operation: %s", lineno, line);
                return -1;
            }
        } else if (sscanf(s, "%31s %u %u %u", name, &a, &b, &c) >= 1) {
            k = kind_of(name);
            if (k < P_BARRIER) {
                fprintf(stderr, "property: line %d: bad global operation: %s", lineno, line);
                return -1;
            }
        } else {
            fprintf(stderr, "property: line %d: cannot read: %s", lineno, line);
            return -1;
        }
        prop_prog_push(p, (prop_op){(uint8_t)k, (uint8_t)t, (uint8_t)a, (uint8_t)b, (uint8_t)c});
    }
    if (!have_header) {
        fprintf(stderr, "property: no \"threads N\" line\n");
        return -1;
    }
    p->threads = threads;
    return 0;
}
