/* The reference model: see property_model.h for what it does; the rules it
 * checks are those of docs/api.md ("Weak references and
 * finalizers", "A collection, in order", "Freeing: finalize, destroy").
 *
 * Selectors. An operation's operands pick among what its thread has when
 * it runs: a % n over the thread's non-empty handle slots (optionally only
 * containers, or only weakrefs), c % nslots for a container slot, and so
 * on. An operation with nothing to pick is skipped.
 *
 * Races the plan refuses. Within a round the threads run at once, so the
 * plan lets only one thread use a given container's slots (the first one
 * to name it), and only one take a given entry of the resurrection table.
 * A handle that a weakref_get or a load from a slot that may be empty
 * fills is a "maybe" handle: the plan does not know whether it holds
 * anything, so its slots are never used in the same round. Everything else
 * commutes: reference counts add up whatever the interleaving, and deaths
 * are reconciled from what the runtime reports. */
#include "property_model.h"

#include <frt/errors.h>

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void (*prop_fail_hook)(void);
char prop_fail_where[160] = "start";

void prop_fail(const char *check, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "property: FAIL [%s] at %s: ", check, prop_fail_where);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
    if (prop_fail_hook)
        prop_fail_hook();
    _exit(1);
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p) {
        perror("property: calloc");
        abort();
    }
    return p;
}

static int tracked_kind(unsigned k)
{
    return k == MK_CONT || k == MK_FCONT || k == MK_WREF;
}

static int container_kind(unsigned k)
{
    return k == MK_CONT || k == MK_FCONT;
}

static const char *kind_name(unsigned k)
{
    static const char *const n[] = {"leaf", "cont", "fcont", "weakref", "child"};
    return k < 5 ? n[k] : "?";
}

static const char *fmode_name(unsigned f)
{
    static const char *const n[] = {"plain", "resurrect", "alloc"};
    return f < 3 ? n[f] : "?";
}

void prop_model_init(prop_model *m, unsigned threads, size_t prog_ops)
{
    memset(m, 0, sizeof *m);
    m->threads = threads;
    m->child_base = prog_ops + 1;
    m->nids = 2 * m->child_base;
    m->obj = xcalloc(m->nids, sizeof *m->obj);
    for (size_t i = 0; i < m->nids; i++) {
        prop_mobj *o = &m->obj[i];
        for (int s = 0; s < PROP_SLOTS; s++)
            o->slot[s] = o->pslot[s] = -1;
        o->target = -1;
        o->gen = PROP_GEN_NONE;
    }
    m->nfins = prog_ops + 1;
    m->fin = xcalloc(m->nfins, sizeof *m->fin);
    m->res = xcalloc(m->nids, 1);
    m->res_claim = xcalloc(m->nids, 1);
    m->claimed = xcalloc(m->nids, sizeof *m->claimed);
    m->acc_destroyed = xcalloc(m->nids, sizeof(int));
    m->acc_finalized = xcalloc(m->nids, sizeof(int));
    m->acc_cb = xcalloc(m->nids, sizeof(int));
    m->acc_fn = xcalloc(m->nfins, sizeof(int));
    for (unsigned t = 0; t < PROP_MAX_THREADS; t++) {
        for (int k = 0; k < PROP_HCAP; k++)
            m->h[t][k] = -1;
        for (int k = 0; k < PROP_FCAP; k++)
            m->fh[t][k] = -1;
    }
    m->gens_exact = 1;
}

void prop_model_free(prop_model *m)
{
    free(m->obj);
    free(m->fin);
    free(m->res);
    free(m->res_claim);
    free(m->claimed);
    free(m->acc_destroyed);
    free(m->acc_finalized);
    free(m->acc_cb);
    free(m->acc_fn);
    memset(m, 0, sizeof *m);
}

size_t prop_model_alive(const prop_model *m)
{
    size_t n = 0;
    for (size_t i = 0; i < m->nids; i++)
        n += m->obj[i].exists && m->obj[i].alive;
    return n;
}

size_t prop_model_res_count(const prop_model *m)
{
    size_t n = 0;
    for (size_t i = 0; i < m->nids; i++)
        n += m->res[i];
    return n;
}

size_t prop_model_handles(const prop_model *m, unsigned t)
{
    size_t n = 0;
    for (int k = 0; k < PROP_HCAP; k++)
        n += m->h[t][k] >= 0;
    return n;
}

size_t prop_model_fin_handles(const prop_model *m, unsigned t)
{
    size_t n = 0;
    for (int k = 0; k < PROP_FCAP; k++)
        n += m->fh[t][k] >= 0;
    return n;
}

/* ------------------------------------------------------------------ */
/* Planning                                                            */

enum { SEL_ANY, SEL_DEF, SEL_CONT, SEL_WREF };

static void plan_begin(prop_model *m)
{
    for (unsigned t = 0; t < m->threads; t++) {
        for (int k = 0; k < PROP_HCAP; k++) {
            m->ph[t][k] = m->h[t][k];
            m->pmaybe[t][k] = 0;
            m->porig[t][k] = m->h[t][k] >= 0;
            m->page[t][k] = m->hage[t][k];
        }
        for (int k = 0; k < PROP_FCAP; k++)
            m->pfh[t][k] = m->fh[t][k];
        for (unsigned u = 0; u < m->threads; u++)
            m->nmb[t][u] = 0;
    }
    for (size_t i = 0; i < m->next_id && i < m->nids; i++) {
        prop_mobj *o = &m->obj[i];
        o->modmask = 0;
        o->pinned = 0;
        o->died = 0;
        o->fin_new = 0;
        o->alive0 = o->exists && o->alive;
        o->cleared0 = o->cleared;
        m->res_claim[i] = 0;
    }
    for (size_t i = m->child_base; i < m->nids; i++) {
        prop_mobj *o = &m->obj[i];
        if (!o->exists)
            continue;
        o->modmask = o->pinned = o->died = o->fin_new = 0;
        o->alive0 = o->alive;
        o->cleared0 = o->cleared;
        m->res_claim[i] = 0;
    }
    for (size_t f = 0; f < m->next_fin; f++) {
        prop_mfin *fi = &m->fin[f];
        fi->alive0 = fi->alive;
        fi->c1 = fi->d1 = fi->any0 = 0;
    }
    m->nclaimed = 0;
}

/* Objects reachable all through the step: from handles the step never
 * removes and resurrection entries it never takes, through slots it never
 * writes. They must not die, be finalized or have their weakrefs cleared
 * whatever the runtime decides to collect meanwhile. */
static void plan_pin(prop_model *m)
{
    size_t cap = 64, n = 0;
    int *stack = xcalloc(cap, sizeof *stack);
#define PUSH(x)                                                                          \
    do {                                                                                 \
        if (n == cap) {                                                                  \
            cap *= 2;                                                                    \
            stack = realloc(stack, cap * sizeof *stack);                                 \
            if (!stack)                                                                  \
                abort();                                                                 \
        }                                                                                \
        stack[n++] = (x);                                                                \
    } while (0)
    for (unsigned t = 0; t < m->threads; t++)
        for (int k = 0; k < PROP_HCAP; k++)
            if (m->porig[t][k] && m->h[t][k] >= 0)
                PUSH(m->h[t][k]);
    for (size_t i = 0; i < m->nids; i++)
        if (m->res[i] && !m->res_claim[i])
            PUSH((int)i);
    while (n) {
        prop_mobj *o = &m->obj[stack[--n]];
        if (o->pinned || !o->exists || !o->alive)
            continue;
        o->pinned = 1;
        for (int s = 0; s < o->nslots; s++)
            if (!(o->modmask & (1u << s)) && o->slot[s] >= 0)
                PUSH(o->slot[s]);
    }
#undef PUSH
    free(stack);
}

static int pick_handle(prop_model *m, unsigned t, unsigned sel, int filter)
{
    int cand[PROP_HCAP], n = 0;
    for (int k = 0; k < PROP_HCAP; k++) {
        int id = m->ph[t][k];
        if (id < 0)
            continue;
        if (filter != SEL_ANY && m->pmaybe[t][k])
            continue;
        if (filter == SEL_CONT) {
            prop_mobj *o = &m->obj[id];
            if (!container_kind(o->kind) || (o->claim && o->claim != (int)t + 1))
                continue;
        }
        if (filter == SEL_WREF && m->obj[id].kind != MK_WREF)
            continue;
        /* most recent first (insertion into a sorted list) */
        int j = n++;
        while (j > 0 && m->page[t][cand[j - 1]] < m->page[t][k]) {
            cand[j] = cand[j - 1];
            j--;
        }
        cand[j] = k;
    }
    return n ? cand[sel % (unsigned)n] : -1;
}

static int free_slot(prop_model *m, unsigned t)
{
    for (int k = 0; k < PROP_HCAP; k++)
        if (m->ph[t][k] < 0)
            return k;
    return -1;
}

static int pick_fin(prop_model *m, unsigned t, unsigned sel)
{
    int cand[PROP_FCAP], n = 0;
    for (int k = 0; k < PROP_FCAP; k++)
        if (m->pfh[t][k] >= 0)
            cand[n++] = k;
    return n ? cand[sel % (unsigned)n] : -1;
}

static int free_fin_slot(prop_model *m, unsigned t)
{
    for (int k = 0; k < PROP_FCAP; k++)
        if (m->pfh[t][k] < 0)
            return k;
    return -1;
}

static void claim(prop_model *m, unsigned t, int id)
{
    prop_mobj *o = &m->obj[id];
    if (o->claim)
        return;
    o->claim = (int)t + 1;
    for (int s = 0; s < PROP_SLOTS; s++)
        o->pslot[s] = o->slot[s];
    o->pslot_maybe = 0;
    m->claimed[m->nclaimed++] = id;
}

static int new_id(prop_model *m)
{
    if (m->next_id >= m->child_base)
        return -1;
    return (int)m->next_id++;
}

/* One thread operation -> r; 0 if it resolves to nothing. */
static int plan_one(prop_model *m, const prop_op *op, size_t pidx, prop_rop *r)
{
    unsigned t = op->thread;
    int k, id;
    r->kind = op->kind;
    r->thread = (uint8_t)t;
    r->h = r->h2 = r->out = r->slot = -1;
    r->mb = -1;
    r->id = r->id2 = r->fin = -1;
    r->result = 0;
    switch (op->kind) {
    case P_NEW: {
        if ((r->out = (int8_t)free_slot(m, t)) < 0 || (id = new_id(m)) < 0)
            return 0;
        unsigned kind = op->a % 10;
        r->mk = kind < 3 ? MK_LEAF : kind < 8 ? MK_CONT : MK_FCONT;
        r->ns = r->mk == MK_LEAF ? 0 : (uint8_t)(1 + op->b % PROP_SLOTS);
        r->fm = r->mk == MK_FCONT ? (uint8_t)(op->c % 3) : 0;
        {
            /* mostly small; some fill a page with a few blocks; a few are
             * large (mapped one by one) */
            static const uint32_t pads[8] = {0, 0, 16, 200, 3000, 9000, 12000, 20000};
            r->pad = pads[(op->b >> 2) % 8];
        }
        r->id = id;
        prop_mobj *o = &m->obj[id];
        o->kind = r->mk;
        o->nslots = r->ns;
        o->fmode = r->fm;
        m->ph[t][r->out] = id;
        m->pmaybe[t][r->out] = 0;
        m->porig[t][r->out] = 0;
        m->page[t][r->out] = pidx + 1;
        return 1;
    }
    case P_DUP:
    case P_DROP:
    case P_MAKE_SHARED:
    case P_MAKE_HOT:
        if ((k = pick_handle(m, t, op->a, SEL_ANY)) < 0)
            return 0;
        r->h = (int8_t)k;
        r->id = m->ph[t][k];
        if (op->kind == P_DUP) {
            if ((r->out = (int8_t)free_slot(m, t)) < 0)
                return 0;
            m->ph[t][r->out] = r->id;
            m->pmaybe[t][r->out] = m->pmaybe[t][k];
            m->porig[t][r->out] = 0;
            m->page[t][r->out] = pidx + 1;
        } else if (op->kind == P_DROP) {
            m->ph[t][k] = -1;
            m->porig[t][k] = 0;
        }
        return 1;
    case P_LINK:
    case P_UNLINK:
    case P_LOAD: {
        if ((k = pick_handle(m, t, op->a, SEL_CONT)) < 0)
            return 0;
        id = m->ph[t][k];
        prop_mobj *o = &m->obj[id];
        int s = op->c % o->nslots;
        int v = -1, vmaybe = 0;
        if (op->kind == P_LINK) {
            int k2 = pick_handle(m, t, op->b, SEL_ANY);
            if (k2 < 0)
                return 0;
            r->h2 = (int8_t)k2;
            v = m->ph[t][k2];
            vmaybe = m->pmaybe[t][k2];
        } else if (op->kind == P_LOAD) {
            if ((r->out = (int8_t)free_slot(m, t)) < 0)
                return 0;
        }
        claim(m, t, id);
        r->h = (int8_t)k;
        r->id = id;
        r->slot = (int8_t)s;
        if (op->kind == P_LOAD) {
            v = o->pslot[s];
            if (v < 0)
                return 0;
            r->id2 = v;
            m->ph[t][r->out] = v;
            m->pmaybe[t][r->out] = (o->pslot_maybe >> s) & 1;
            m->porig[t][r->out] = 0;
            m->page[t][r->out] = pidx + 1;
        } else {
            r->id2 = v;
            o->pslot[s] = v;
            o->pslot_maybe = (uint8_t)((o->pslot_maybe & ~(1u << s)) | ((unsigned)vmaybe << s));
            o->modmask |= (uint8_t)(1u << s);
        }
        return 1;
    }
    case P_HANDOFF:
    case P_SHARE: {
        if (m->threads < 2 || (k = pick_handle(m, t, op->a, SEL_ANY)) < 0)
            return 0;
        unsigned to = op->b % m->threads;
        if (to == t)
            to = (to + 1) % m->threads;
        if (m->nmb[t][to] >= PROP_MBCAP)
            return 0;
        r->h = (int8_t)k;
        r->id = m->ph[t][k];
        r->to = (uint8_t)to;
        r->mb = (int8_t)m->nmb[t][to]++;
        if (op->kind == P_HANDOFF) {
            m->ph[t][k] = -1;
            m->porig[t][k] = 0;
        }
        return 1;
    }
    case P_WR_NEW:
        if ((k = pick_handle(m, t, op->a, SEL_ANY)) < 0 || (r->out = (int8_t)free_slot(m, t)) < 0 ||
            (id = new_id(m)) < 0)
            return 0;
        r->h = (int8_t)k;
        r->id = id;
        r->id2 = m->ph[t][k];
        r->cb = op->b & 1;
        m->obj[id].kind = MK_WREF;
        m->obj[id].target = r->id2;
        m->obj[id].has_cb = r->cb;
        m->ph[t][r->out] = id;
        m->pmaybe[t][r->out] = m->pmaybe[t][k];
        m->porig[t][r->out] = 0;
        m->page[t][r->out] = pidx + 1;
        return 1;
    case P_WR_GET:
        if ((k = pick_handle(m, t, op->a, SEL_WREF)) < 0 || (r->out = (int8_t)free_slot(m, t)) < 0)
            return 0;
        r->h = (int8_t)k;
        r->id = m->ph[t][k];
        r->id2 = m->obj[r->id].target;
        m->ph[t][r->out] = r->id2;
        m->pmaybe[t][r->out] = 1;
        m->porig[t][r->out] = 0;
        m->page[t][r->out] = pidx + 1;
        return 1;
    case P_FIN_NEW:
        if ((k = pick_handle(m, t, op->a, SEL_ANY)) < 0 || (r->out = (int8_t)free_fin_slot(m, t)) < 0 ||
            m->next_fin >= m->nfins)
            return 0;
        r->h = (int8_t)k;
        r->id2 = m->ph[t][k];
        r->fin = (int)m->next_fin++;
        m->pfh[t][r->out] = r->fin;
        return 1;
    case P_FIN_CALL:
    case P_FIN_DETACH:
    case P_FIN_FREE:
        if ((k = pick_fin(m, t, op->a)) < 0)
            return 0;
        r->h = (int8_t)k;
        r->fin = m->pfh[t][k];
        if (op->kind == P_FIN_FREE)
            m->pfh[t][k] = -1;
        return 1;
    case P_ADOPT: {
        if ((r->out = (int8_t)free_slot(m, t)) < 0)
            return 0;
        int n = 0;
        for (size_t i = 0; i < m->nids; i++)
            n += m->res[i] && !m->res_claim[i];
        if (!n)
            return 0;
        int want = op->a % n;
        for (size_t i = 0; i < m->nids; i++)
            if (m->res[i] && !m->res_claim[i] && want-- == 0) {
                r->id = (int)i;
                break;
            }
        m->res_claim[r->id] = 1;
        m->ph[t][r->out] = r->id;
        m->pmaybe[t][r->out] = 0;
        m->porig[t][r->out] = 0;
        m->page[t][r->out] = pidx + 1;
        return 1;
    }
    case P_DETACH:
    case P_BLOCK:
    case P_SAFEPOINT:
        return 1;
    case P_COLLECT:
        r->gen = op->a % 3;
        return 1;
    default:
        return 0;
    }
}

size_t prop_model_plan_round(prop_model *m, const prop_op *ops, size_t n, size_t pidx0,
                             prop_rop *out, size_t counts[PROP_MAX_THREADS])
{
    plan_begin(m);
    prop_rop *tmp = xcalloc(n, sizeof *tmp);
    size_t nt = 0;
    for (size_t i = 0; i < n; i++) {
        prop_rop r;
        memset(&r, 0, sizeof r);
        if (plan_one(m, &ops[i], pidx0 + i, &r)) {
            r.pidx = pidx0 + i;
            tmp[nt++] = r;
        }
    }
    /* Thread by thread, each in program order. */
    size_t w = 0;
    for (unsigned t = 0; t < PROP_MAX_THREADS; t++) {
        counts[t] = 0;
        for (size_t i = 0; i < nt; i++)
            if (tmp[i].thread == t) {
                out[w++] = tmp[i];
                counts[t]++;
            }
    }
    free(tmp);
    plan_pin(m);
    return w;
}

int prop_model_plan_global(prop_model *m, const prop_op *op, size_t pidx, prop_rop *r)
{
    plan_begin(m);
    memset(r, 0, sizeof *r);
    r->kind = op->kind;
    r->h = r->h2 = r->out = r->slot = r->mb = -1;
    r->id = r->id2 = r->fin = -1;
    r->pidx = pidx;
    int ok = 1;
    switch (op->kind) {
    case P_G_COLLECT:
        r->gen = op->a % 3;
        break;
    case P_G_THRESH:
        r->mk = op->a;
        r->ns = op->b;
        r->fm = op->c;
        break;
    case P_G_RELEASE: {
        int n = 0;
        for (size_t i = 0; i < m->nids; i++)
            n += m->res[i];
        if (!n) {
            ok = 0;
            break;
        }
        int want = op->a % n;
        for (size_t i = 0; i < m->nids; i++)
            if (m->res[i] && want-- == 0) {
                r->id = (int)i;
                break;
            }
        m->res_claim[r->id] = 1;
        break;
    }
    case P_BARRIER:
    case P_G_FREEZE:
    case P_G_UNFREEZE:
    case P_G_ENABLE:
    case P_G_DISABLE:
        break;
    default:
        ok = 0;
    }
    plan_pin(m);
    return ok;
}

/* ------------------------------------------------------------------ */
/* Applying a step                                                      */

static void make_object(prop_model *m, int id, unsigned kind, unsigned ns, unsigned fm)
{
    prop_mobj *o = &m->obj[id];
    o->exists = 1;
    o->kind = (uint8_t)kind;
    o->nslots = (uint8_t)ns;
    o->fmode = (uint8_t)fm;
    o->alive = 1;
    o->alive0 = 1; /* for this step's checks, as alive from its start */
    o->finalized = 0;
    o->hot = 0;
    o->gen = tracked_kind(kind) ? 0 : PROP_GEN_NONE;
    for (int s = 0; s < PROP_SLOTS; s++)
        o->slot[s] = -1;
    size_t alive = prop_model_alive(m);
    if (alive > m->max_alive)
        m->max_alive = alive;
}

static void compute_nref(const prop_model *m, prop_mobj *obj, const uint8_t *res);

void prop_model_apply(prop_model *m, const prop_rop *rops, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const prop_rop *r = &rops[i];
        unsigned t = r->thread;
        int v, c, f;
        switch (r->kind) {
        case P_NEW:
            make_object(m, r->id, r->mk, r->ns, r->fm);
            m->h[t][r->out] = r->id;
            m->hage[t][r->out] = r->pidx + 1;
            m->objects_made++;
            break;
        case P_DUP:
            if ((v = m->h[t][r->h]) >= 0) {
                m->h[t][r->out] = v;
                m->hage[t][r->out] = r->pidx + 1;
            }
            break;
        case P_DROP:
            m->h[t][r->h] = -1;
            break;
        case P_LINK:
        case P_UNLINK:
        case P_LOAD:
            c = m->h[t][r->h];
            if (c != r->id)
                prop_fail("model", "internal: container handle holds #%d, plan said #%d", c, r->id);
            if (r->kind == P_LINK) {
                m->obj[c].slot[r->slot] = m->h[t][r->h2];
            } else if (r->kind == P_UNLINK) {
                m->obj[c].slot[r->slot] = -1;
            } else {
                v = m->obj[c].slot[r->slot];
                if ((v >= 0) != (r->result == 1))
                    prop_fail("slot", "load of #%d slot %d: the runtime found %s, the model #%d", c,
                              r->slot, r->result == 1 ? "an object" : "nothing", v);
                if (v >= 0) {
                    m->h[t][r->out] = v;
                    m->hage[t][r->out] = r->pidx + 1;
                }
            }
            break;
        case P_HANDOFF:
        case P_SHARE:
            v = m->h[t][r->h];
            if (r->kind == P_HANDOFF)
                m->h[t][r->h] = -1;
            m->mbox[t][r->to][r->mb] = v;
            m->mbox_age[t][r->to][r->mb] = r->pidx + 1;
            m->nmb[t][r->to] = r->mb + 1;
            break;
        case P_MAKE_SHARED:
            if (m->h[t][r->h] >= 0 && r->result != 0 && r->result != FRT_EALREADY &&
                r->result != FRT_ESTATE)
                prop_fail("make_shared", "frt_make_shared(#%d) returned %ld", m->h[t][r->h], r->result);
            break;
        case P_MAKE_HOT:
            /* EALREADY: hot already, perhaps by another thread's make_hot
             * of this round, applied here in either order. */
            v = m->h[t][r->h];
            if (v >= 0 && (r->result == 0 || r->result == FRT_EALREADY))
                m->obj[v].hot = 1;
            else if (v >= 0 && r->result != 1)
                prop_fail("make_hot", "frt_make_hot(#%d) returned %ld", v, r->result);
            break;
        case P_WR_NEW:
            v = m->h[t][r->h];
            if (v >= 0) {
                if (r->result != 1)
                    prop_fail("weakref_new", "frt_weakref_new(#%d) failed", v);
                make_object(m, r->id, MK_WREF, 0, 0);
                m->obj[r->id].target = v;
                m->obj[r->id].has_cb = r->cb;
                m->obj[r->id].cleared = m->obj[r->id].cleared0 = 0;
                m->obj[r->id].called = 0;
                m->h[t][r->out] = r->id;
                m->hage[t][r->out] = r->pidx + 1;
                m->weakrefs_made++;
            }
            break;
        case P_WR_GET:
            if (r->result == 1) {
                prop_mobj *w = &m->obj[r->id], *x = &m->obj[r->id2];
                if (w->cleared0 || !x->alive0)
                    prop_fail("weakref_get", "get on weakref #%d returned #%d, which was %s", r->id,
                              r->id2, w->cleared0 ? "cleared before" : "dead before");
                m->h[t][r->out] = r->id2;
                m->hage[t][r->out] = r->pidx + 1;
            }
            break;
        case P_FIN_NEW:
            v = m->h[t][r->h];
            if (v >= 0) {
                if (r->result != 1)
                    prop_fail("finalizer_new", "frt_finalizer_new(#%d) failed", v);
                prop_mfin *fi = &m->fin[r->fin];
                fi->exists = 1;
                fi->target = v;
                fi->thread = (int)t;
                fi->alive = fi->alive0 = 1;
                fi->handle = 1;
                m->fh[t][r->out] = r->fin;
                m->finalizers_made++;
            }
            break;
        case P_FIN_CALL:
        case P_FIN_DETACH:
            f = m->fh[t][r->h];
            if (f >= 0) {
                prop_mfin *fi = &m->fin[f];
                if (r->result != 0 && r->result != 1)
                    prop_fail("finalizer", "%s(f%d) returned %ld", r->kind == P_FIN_CALL ?
                              "frt_finalizer_call" : "frt_finalizer_detach", f, r->result);
                if (r->result == 1) {
                    if (fi->c1 || fi->d1)
                        prop_fail("finalizer-once", "f%d went from alive to dead twice", f);
                    if (r->kind == P_FIN_CALL)
                        fi->c1 = 1;
                    else
                        fi->d1 = 1;
                } else {
                    fi->any0 = 1;
                }
            }
            break;
        case P_FIN_FREE:
            f = m->fh[t][r->h];
            if (f >= 0) {
                m->fin[f].handle = 0;
                m->fh[t][r->h] = -1;
            }
            break;
        case P_ADOPT:
            if (r->result != 1)
                prop_fail("resurrection-table", "#%d was not in the resurrection table", r->id);
            m->res[r->id] = 0;
            m->h[t][r->out] = r->id;
            m->hage[t][r->out] = r->pidx + 1;
            break;
        case P_G_RELEASE:
            m->res[r->id] = 0;
            break;
        case P_G_FREEZE:
            /* A hot object nothing refers to is dead, waiting for the next
             * collection: not frozen, and in the oldest generation from
             * here on, as the young ones are forgotten. */
            compute_nref(m, m->obj, m->res);
            for (size_t j = 0; j < m->nids; j++) {
                prop_mobj *o = &m->obj[j];
                if (o->exists && o->alive && tracked_kind(o->kind) && o->gen != PROP_GEN_FROZEN)
                    o->gen = o->hot && o->nref == 0 ? 2 : PROP_GEN_FROZEN;
            }
            m->frozen_any = 1;
            break;
        case P_G_UNFREEZE:
            for (size_t j = 0; j < m->nids; j++)
                if (m->obj[j].exists && m->obj[j].gen == PROP_GEN_FROZEN)
                    m->obj[j].gen = 2;
            m->frozen_any = 0;
            break;
        default:
            break;
        }
    }
    /* Deliveries, sender by sender, in the order they were handed. */
    m->ndeliv = 0;
    for (unsigned from = 0; from < m->threads; from++)
        for (unsigned to = 0; to < m->threads; to++) {
            for (int k = 0; k < m->nmb[from][to]; k++) {
                int id = m->mbox[from][to][k];
                if (id < 0)
                    continue;
                int slot = -1;
                for (int j = 0; j < PROP_HCAP; j++)
                    if (m->h[to][j] < 0) {
                        slot = j;
                        break;
                    }
                if (slot >= 0) {
                    m->h[to][slot] = id;
                    m->hage[to][slot] = m->mbox_age[from][to][k];
                }
                m->deliv[m->ndeliv++] =
                    (prop_delivery){(uint8_t)from, (uint8_t)to, (uint8_t)k, (int8_t)slot};
            }
            m->nmb[from][to] = 0;
        }
    for (size_t i = 0; i < m->nclaimed; i++)
        m->obj[m->claimed[i]].claim = 0;
    m->nclaimed = 0;
}

/* ------------------------------------------------------------------ */
/* Shared by the prediction and the reconciliation                      */

static void compute_nref(const prop_model *m, prop_mobj *obj, const uint8_t *res)
{
    for (size_t i = 0; i < m->nids; i++)
        obj[i].nref = 0;
    for (unsigned t = 0; t < m->threads; t++)
        for (int k = 0; k < PROP_HCAP; k++)
            if (m->h[t][k] >= 0)
                obj[m->h[t][k]].nref++;
    for (size_t i = 0; i < m->nids; i++) {
        if (res[i])
            obj[i].nref++;
        if (!obj[i].exists || !obj[i].alive)
            continue;
        for (int s = 0; s < obj[i].nslots; s++)
            if (obj[i].slot[s] >= 0)
                obj[obj[i].slot[s]].nref++;
    }
}

/* What a finalizing container's finalize does (property_exec.c does the
 * same): resurrect into the table, or put a new child in slot 0. */
static void finalize_effects(const prop_model *m, prop_mobj *obj, uint8_t *res, int id)
{
    prop_mobj *o = &obj[id];
    if (o->fmode == FM_RESURRECT) {
        res[id] = 1;
        o->nref++;
    } else if (o->fmode == FM_ALLOC) {
        int cid = (int)(m->child_base + (size_t)id);
        prop_mobj *c = &obj[cid];
        c->exists = 1;
        c->kind = MK_CHILD;
        c->nslots = 0;
        c->alive = c->alive0 = 1;
        c->gen = PROP_GEN_NONE;
        c->nref = 1;
        int old = o->slot[0];
        o->slot[0] = cid;
        if (old >= 0)
            obj[old].nref--;
    }
}

/* ------------------------------------------------------------------ */
/* Predicting a collection at a barrier                                 */

typedef struct predict {
    const prop_model *m;
    prop_mobj *obj;
    uint8_t *res;
    prop_mfin *fin;
    prop_expect *e;
    uint8_t *died, *cb_late;
} predict;

static void p_finalize(predict *p, int id)
{
    p->obj[id].finalized = 1;
    p->e->finalized[id] = 1;
    finalize_effects(p->m, p->obj, p->res, id);
}

/* Plain reference-count deaths, to a fixed point: what the decrefs of a
 * collection's clear phase (and of finalizers) free. */
static void p_closure(predict *p)
{
    const prop_model *m = p->m;
    for (int changed = 1; changed;) {
        changed = 0;
        for (size_t i = 0; i < m->nids; i++) {
            prop_mobj *o = &p->obj[i];
            if (!o->exists || !o->alive || o->nref != 0 || o->hot)
                continue;
            if (o->kind == MK_FCONT && !o->finalized) {
                p_finalize(p, (int)i);
                if (o->nref > 0) {
                    changed = 1;
                    continue;
                }
            }
            o->alive = 0;
            p->died[i] = 1;
            for (size_t w = 0; w < m->nids; w++) {
                prop_mobj *wo = &p->obj[w];
                if (!wo->exists || wo->kind != MK_WREF || wo->target != (int)i)
                    continue;
                if (wo->has_cb && !wo->cleared && !wo->called) {
                    if (wo->alive) {
                        p->e->cb[w] = 1;
                        p->cb_late[w] = 1;
                        wo->called = 1;
                    } else if (p->died[w]) {
                        p->e->cb[w] = 2; /* died in the same cascade: order decides */
                    }
                }
                wo->cleared = 1;
            }
            for (size_t f = 0; f < m->next_fin; f++)
                if (p->fin[f].exists && p->fin[f].alive && p->fin[f].target == (int)i) {
                    p->e->fn[f] = 1;
                    p->fin[f].alive = 0;
                }
            for (int s = 0; s < o->nslots; s++)
                if (o->slot[s] >= 0)
                    p->obj[o->slot[s]].nref--;
            changed = 1;
        }
    }
}

/* Mark members of set that are referenced from outside it (beyond `hold`
 * references each) and everything they reach inside it. */
static void p_mark_external(predict *p, const uint8_t *in, int hold, uint8_t *mark)
{
    const prop_model *m = p->m;
    int *internal = xcalloc(m->nids, sizeof *internal);
    int *stack = xcalloc(m->nids * (PROP_SLOTS + 1) + 1, sizeof *stack);
    size_t n = 0;
    for (size_t i = 0; i < m->nids; i++) {
        if (!in[i])
            continue;
        prop_mobj *o = &p->obj[i];
        for (int s = 0; s < o->nslots; s++)
            if (o->slot[s] >= 0 && in[o->slot[s]])
                internal[o->slot[s]]++;
    }
    for (size_t i = 0; i < m->nids; i++) {
        mark[i] = 0;
        if (in[i] && p->obj[i].nref - internal[i] - hold > 0)
            stack[n++] = (int)i;
    }
    while (n) {
        int id = stack[--n];
        if (mark[id])
            continue;
        mark[id] = 1;
        prop_mobj *o = &p->obj[id];
        for (int s = 0; s < o->nslots; s++)
            if (o->slot[s] >= 0 && in[o->slot[s]] && !mark[o->slot[s]])
                stack[n++] = o->slot[s];
    }
    free(internal);
    free(stack);
}

void prop_expect_free(prop_expect *e)
{
    free(e->destroyed);
    free(e->finalized);
    free(e->cb);
    free(e->cleared);
    free(e->gen);
    free(e->fn);
    memset(e, 0, sizeof *e);
}

void prop_model_predict_collect(prop_model *m, int gen, prop_expect *e)
{
    size_t N = m->nids;
    memset(e, 0, sizeof *e);
    e->destroyed = xcalloc(N, 1);
    e->finalized = xcalloc(N, 1);
    e->cb = xcalloc(N, 1);
    e->cleared = xcalloc(N, 1);
    e->gen = xcalloc(N, 1);
    e->fn = xcalloc(m->nfins, 1);
    predict p = {m, xcalloc(N, sizeof(prop_mobj)), xcalloc(N, 1), xcalloc(m->nfins, sizeof(prop_mfin)),
                 e, xcalloc(N, 1), xcalloc(N, 1)};
    memcpy(p.obj, m->obj, N * sizeof(prop_mobj));
    memcpy(p.res, m->res, N);
    memcpy(p.fin, m->fin, m->nfins * sizeof(prop_mfin));
    compute_nref(m, p.obj, p.res);

    /* The examined set and, by trial deletion, what in it is unreachable:
     * not referenced from outside it (threads, the resurrection table,
     * older, frozen or untracked objects) nor from what is. */
    uint8_t *in = xcalloc(N, 1), *mark = xcalloc(N, 1), *u = xcalloc(N, 1);
    /* Hot objects whose count is zero (any generation, tracked or not)
     * die in the sweep at the first stop: the examined set skips them (a
     * count of zero), and what they reference counts as held from outside
     * until their destroy runs, right after the stop. */
    uint8_t *hot_dead = xcalloc(N, 1);
    for (size_t i = 0; i < N; i++) {
        prop_mobj *o = &p.obj[i];
        hot_dead[i] = o->exists && o->alive && o->hot && o->nref == 0;
        in[i] = o->exists && o->alive && tracked_kind(o->kind) && o->gen >= 0 && o->gen <= gen &&
                !hot_dead[i];
    }
    p_mark_external(&p, in, 0, mark);
    for (size_t i = 0; i < N; i++) {
        u[i] = in[i] && !mark[i];
        e->n_unreachable += u[i];
        /* Hot garbage is counted the ordinary way from this stop on. */
        if (u[i] || hot_dead[i])
            p.obj[i].hot = 0;
    }
    m->unreachable_found += e->n_unreachable;

    /* First stop: garbage weakrefs are cleared, and so are weakrefs with a
     * callback to garbage; those not garbage themselves will call back.
     * frt_finalizers are weakrefs with a callback held by their registry. */
    for (size_t i = 0; i < N; i++)
        if (u[i] && p.obj[i].kind == MK_WREF)
            p.obj[i].cleared = 1;
    for (size_t i = 0; i < N; i++) {
        prop_mobj *w = &p.obj[i];
        if (w->exists && w->alive && w->kind == MK_WREF && !u[i] && w->has_cb && !w->cleared &&
            !w->called && w->target >= 0 && u[w->target]) {
            e->cb[i] = 1;
            w->called = 1;
            w->cleared = 1;
        }
    }
    for (size_t f = 0; f < m->next_fin; f++)
        if (p.fin[f].exists && p.fin[f].alive && u[p.fin[f].target]) {
            e->fn[f] = 1;
            p.fin[f].alive = 0;
        }
    /* The world runs: the sweep's dead are freed first. */
    p_closure(&p);
    /* The collector holds one reference to each unreachable object; the
     * world runs; finalizers run, and may free what they let go. */
    for (size_t i = 0; i < N; i++)
        if (u[i])
            p.obj[i].nref++;
    for (size_t i = 0; i < N; i++)
        if (u[i] && p.obj[i].kind == MK_FCONT && !p.obj[i].finalized)
            p_finalize(&p, (int)i);
    p_closure(&p);
    /* Second stop: the resurrection check. */
    p_mark_external(&p, u, 1, mark);
    for (size_t i = 0; i < N; i++)
        e->n_resurrected += u[i] && mark[i];
    /* What collect returns leaves the resurrected out, as CPython. */
    e->ret = (long)(e->n_unreachable - e->n_resurrected);
    for (size_t i = 0; i < N; i++) {
        if (!u[i] || mark[i])
            continue;
        for (size_t w = 0; w < N; w++)
            if (p.obj[w].exists && p.obj[w].kind == MK_WREF && p.obj[w].target == (int)i)
                p.obj[w].cleared = 1;
    }
    /* clear() on what is still garbage, then the holds go. */
    for (size_t i = 0; i < N; i++) {
        if (!u[i] || mark[i])
            continue;
        prop_mobj *o = &p.obj[i];
        for (int s = 0; s < o->nslots; s++)
            if (o->slot[s] >= 0) {
                p.obj[o->slot[s]].nref--;
                o->slot[s] = -1;
            }
    }
    for (size_t i = 0; i < N; i++)
        if (u[i])
            p.obj[i].nref--;
    p_closure(&p);
    for (size_t i = 0; i < N; i++) {
        prop_mobj *o = &p.obj[i];
        if (in[i] && o->alive && (!u[i] || mark[i]))
            o->gen = (int8_t)(gen < 2 ? gen + 1 : 2);
        /* A hot object the sweep freed, resurrected by its finalizer, was
         * not examined: where it ends up is learned after the collection. */
        if (hot_dead[i] && o->alive && tracked_kind(o->kind))
            m->gens_exact = 0;
        e->destroyed[i] = p.died[i] && o->kind != MK_WREF;
        e->cleared[i] = o->cleared;
        e->gen[i] = o->gen;
        if (e->cb[i] == 1 && p.cb_late[i] && p.died[i])
            e->cb[i] = 2;
    }
    m->collections_predicted++;
    free(hot_dead);
    free(in);
    free(mark);
    free(u);
    free(p.obj);
    free(p.res);
    free(p.fin);
    free(p.died);
    free(p.cb_late);
}

void prop_model_learn_gens(prop_model *m, const prop_observer *obs)
{
    int *ids = xcalloc(m->nids, sizeof *ids);
    int8_t *g = xcalloc(m->nids, 1);
    size_t n = 0;
    compute_nref(m, m->obj, m->res);
    for (size_t i = 0; i < m->nids; i++)
        /* A hot object with no reference left waits for the sweep, and is
         * in no generation's list (its count is zero). */
        if (m->obj[i].exists && m->obj[i].alive && tracked_kind(m->obj[i].kind) &&
            !(m->obj[i].hot && m->obj[i].nref == 0))
            ids[n++] = (int)i;
    if (obs->gens(obs->ctx, ids, n, g) == 0) {
        for (size_t j = 0; j < n; j++) {
            prop_mobj *o = &m->obj[ids[j]];
            if (g[j] < 0)
                prop_fail("generation", "#%d (%s) is tracked but frt_gc_get_objects lists it twice",
                          ids[j], kind_name(o->kind));
            if ((g[j] == PROP_GEN_FROZEN) != (o->gen == PROP_GEN_FROZEN))
                prop_fail("generation", "#%d (%s): %s by the model, %s by frt_gc_get_objects", ids[j],
                          kind_name(o->kind), o->gen == PROP_GEN_FROZEN ? "frozen" : "not frozen",
                          g[j] == PROP_GEN_FROZEN ? "in no generation" : "in a generation");
            if (m->gens_exact && g[j] != o->gen)
                prop_fail("generation", "#%d (%s) is in generation %d, the model says %d", ids[j],
                          kind_name(o->kind), g[j], o->gen);
            o->gen = g[j];
        }
        m->gens_exact = 1;
    }
    free(ids);
    free(g);
}

/* ------------------------------------------------------------------ */
/* Reconciling                                                          */

static int has_cycle_from(prop_model *m, int id)
{
    /* colours in mark: 0 new, 1 on the path, 2 done; only dead-this-step */
    prop_mobj *o = &m->obj[id];
    o->mark = 1;
    for (int s = 0; s < o->nslots; s++) {
        int v = o->slot[s];
        if (v < 0 || !m->obj[v].died)
            continue;
        if (m->obj[v].mark == 1)
            return 1;
        if (m->obj[v].mark == 0 && has_cycle_from(m, v))
            return 1;
    }
    o->mark = 2;
    return 0;
}

void prop_model_reconcile(prop_model *m, const prop_observer *obs, const prop_expect *e,
                          const prop_rop *rops, size_t n)
{
    void *ctx = obs->ctx;
    size_t N = m->nids;
    long ncoll = obs->collections(ctx);
    long dcoll = ncoll - m->acc_collections;
    m->acc_collections = ncoll;
    int strict = e != NULL;
    /* A collection ends hot counting for what it frees and for cyclic
     * garbage (which a finalizer may resurrect): learn which objects are
     * still hot from the runtime. make_hot results are checked when they
     * are applied. */
    if (dcoll > 0)
        for (size_t i = 0; i < N; i++)
            if (m->obj[i].exists && m->obj[i].alive && m->obj[i].hot &&
                obs->destroyed(ctx, (int)i) == m->acc_destroyed[i]) /* not freed meanwhile */
                m->obj[i].hot = (uint8_t)obs->is_hot(ctx, (int)i);
    if (strict && dcoll != 1)
        prop_fail("collections", "frt_gc_collect at a barrier: %ld collections ran, expected 1", dcoll);
    /* An automatic (or concurrent) collection ran: garbage may or may not
     * have been collected, and the model learns which. */
    int allow = !strict && dcoll > 0;
    m->steps_with_collections += dcoll > 0;
    if (m->trace_out && dcoll > 0 && !strict)
        fprintf(m->trace_out, "    (%ld collection%s ran during the step)\n", dcoll,
                dcoll > 1 ? "s" : "");
    for (size_t k = 0; k < n; k++)
        if (rops[k].kind == P_WR_GET) {
            m->gets_ok += rops[k].result == 1;
            m->gets_null += rops[k].result == 0;
        }

    /* 1. Type finalizers, with their effects. */
    for (size_t i = 0; i < N; i++) {
        prop_mobj *o = &m->obj[i];
        int f = obs->finalized(ctx, (int)i) - m->acc_finalized[i];
        if (f == 0) {
            if (strict && e->finalized[i])
                prop_fail("finalize-missing", "#%zu (%s, %s) is unreachable and was never finalized, "
                          "but the collection did not finalize it", i, kind_name(o->kind),
                          fmode_name(o->fmode));
            continue;
        }
        m->acc_finalized[i] += f;
        if (f != 1 || o->finalized)
            prop_fail("finalize-once", "#%zu finalized %d times", i, m->acc_finalized[i]);
        if (!o->exists || o->kind != MK_FCONT || !o->alive)
            prop_fail("finalize", "finalize ran on #%zu (%s%s)", i, kind_name(o->kind),
                      o->alive ? "" : ", destroyed");
        if (strict && !e->finalized[i])
            prop_fail("finalize-unexpected", "the collection finalized #%zu, which is reachable or "
                      "was not examined", i);
        if (!strict && o->pinned)
            prop_fail("finalize-reachable", "#%zu was finalized although reachable all along", i);
        o->finalized = 1;
        o->fin_new = 1;
        finalize_effects(m, m->obj, m->res, (int)i);
        m->ev_finalized++;
        m->ev_resurrected += o->fmode == FM_RESURRECT;
        if (m->trace_out)
            fprintf(m->trace_out, "    finalized #%zu (%s)\n", i, fmode_name(o->fmode));
    }
    /* 2. Destroyed objects (weakrefs report nothing: the model infers). */
    for (size_t i = 0; i < N; i++) {
        prop_mobj *o = &m->obj[i];
        if (o->kind == MK_WREF)
            continue;
        int d = obs->destroyed(ctx, (int)i) - m->acc_destroyed[i];
        if (d == 0) {
            if (strict && e->destroyed[i] && o->alive)
                prop_fail("not-collected", "#%zu (%s) is unreachable but the collection did not "
                          "destroy it", i, kind_name(o->kind));
            continue;
        }
        m->acc_destroyed[i] += d;
        if (d != 1 || !o->exists || !o->alive)
            prop_fail("destroy-once", "#%zu (%s) destroyed %d times in all%s", i, kind_name(o->kind),
                      m->acc_destroyed[i], o->exists ? "" : " (an id never created)");
        if (o->kind == MK_FCONT && !o->finalized)
            prop_fail("destroy-before-finalize", "#%zu destroyed without its finalize", i);
        if (strict && !e->destroyed[i])
            prop_fail("destroyed-reachable", "the collection destroyed #%zu (%s), which is reachable",
                      i, kind_name(o->kind));
        if (!strict && o->pinned)
            prop_fail("destroyed-reachable", "#%zu (%s) destroyed although reachable all along", i,
                      kind_name(o->kind));
        o->alive = 0;
        o->died = 1;
        m->ev_destroyed++;
        if (m->trace_out)
            fprintf(m->trace_out, "    destroyed #%zu (%s)\n", i, kind_name(o->kind));
    }
    /* 3. References: nothing alive may point at something destroyed, and
     * whatever has no reference left must be gone. */
    compute_nref(m, m->obj, m->res);
    for (unsigned t = 0; t < m->threads; t++)
        for (int k = 0; k < PROP_HCAP; k++) {
            int id = m->h[t][k];
            if (id >= 0 && !m->obj[id].alive)
                prop_fail("destroyed-while-referenced", "#%d (%s) was destroyed while thread %u "
                          "holds a reference (handle %d)", id, kind_name(m->obj[id].kind), t, k);
        }
    for (size_t i = 0; i < N; i++) {
        prop_mobj *o = &m->obj[i];
        if (m->res[i] && !o->alive)
            prop_fail("destroyed-while-referenced", "#%zu was destroyed while the resurrection "
                      "table holds it", i);
        if (!o->exists || !o->alive)
            continue;
        for (int s = 0; s < o->nslots; s++) {
            int v = o->slot[s];
            if (v >= 0 && !m->obj[v].alive)
                prop_fail("destroyed-while-referenced", "#%d (%s) was destroyed while slot %d of "
                          "live #%zu (%s) references it", v, kind_name(m->obj[v].kind), s, i,
                          kind_name(o->kind));
        }
    }
    for (size_t i = 0; i < N; i++) {
        prop_mobj *o = &m->obj[i];
        if (!o->exists || !o->alive || o->nref != 0 || o->hot)
            continue; /* a hot object waits for a collection */
        if (o->kind == MK_WREF) {
            o->alive = 0; /* its last reference went: the runtime freed it */
            o->died = 1;
            continue;
        }
        prop_fail("leak", "#%zu (%s) has no reference left but was not destroyed", i,
                  kind_name(o->kind));
    }
    /* 4. Without a collection only reference counting frees: what died
     * holds no cycle, and a finalized object that did not resurrect died. */
    if (!strict && dcoll == 0) {
        for (size_t i = 0; i < N; i++)
            m->obj[i].mark = 0;
        for (size_t i = 0; i < N; i++)
            if (m->obj[i].died && m->obj[i].mark == 0 && has_cycle_from(m, (int)i))
                prop_fail("cycle-freed", "a cycle through #%zu was freed without a collection", i);
        for (size_t i = 0; i < N; i++) {
            prop_mobj *o = &m->obj[i];
            if (o->fin_new && o->fmode != FM_RESURRECT && o->alive)
                prop_fail("finalized-alive", "#%zu (%s) was finalized but lives on without "
                          "resurrecting (no collection ran)", i, fmode_name(o->fmode));
        }
    }
    /* 5. Weakref callbacks: once, after the target died, not when the
     * weakref died first or was garbage with it. */
    for (size_t i = 0; i < N; i++) {
        prop_mobj *w = &m->obj[i];
        if (!w->exists || w->kind != MK_WREF)
            continue;
        int x = w->target;
        prop_mobj *xo = &m->obj[x];
        int c = obs->called(ctx, (int)i) - m->acc_cb[i];
        m->acc_cb[i] += c;
        if (c < 0 || c > 1 || (c && w->called))
            prop_fail("callback-once", "weakref #%zu called back %d times", i, m->acc_cb[i]);
        if (c && !w->has_cb)
            prop_fail("callback", "weakref #%zu has no callback but one ran", i);
        if (strict) {
            if (e->cb[i] == 0 && c)
                prop_fail("callback-unexpected", "weakref #%zu to #%d called back in a collection "
                          "that must not call it", i, x);
            if (e->cb[i] == 1 && !c)
                prop_fail("callback-missing", "weakref #%zu (alive) to unreachable #%d: the "
                          "collection did not call back", i, x);
        } else if (c) {
            if (!w->alive0)
                prop_fail("callback-of-dead-weakref", "weakref #%zu called back after it died", i);
            if (w->cleared0)
                prop_fail("callback-after-clear", "weakref #%zu called back after it was cleared", i);
            if (!xo->died && !(allow && !xo->pinned))
                prop_fail("callback-without-death", "weakref #%zu called back but #%d neither died "
                          "nor could be collected", i, x);
        } else if (w->alive0 && w->has_cb && !w->called && !w->cleared0 && xo->died && !w->died &&
                   !(allow && !w->pinned)) {
            prop_fail("callback-missing", "#%d died, its weakref #%zu lives, the callback did not run",
                      x, i);
        }
        if (c) {
            w->called = 1;
            w->cleared = 1;
            m->ev_callbacks++;
            if (m->trace_out)
                fprintf(m->trace_out, "    weakref #%zu called back (target #%d)\n", i, x);
        }
        if (!xo->alive)
            w->cleared = 1;
        if (strict && w->alive && !w->cleared && e->cleared[i])
            w->cleared = 1;
    }
    /* 6. frt_finalizer: exactly once (target death, call, shutdown), never
     * after detach. */
    for (size_t f = 0; f < m->next_fin; f++) {
        prop_mfin *fi = &m->fin[f];
        if (!fi->exists)
            continue;
        int mm = obs->fn_ran(ctx, (int)f) - m->acc_fn[f];
        m->acc_fn[f] += mm;
        prop_mobj *t = &m->obj[fi->target];
        if (mm < 0 || mm > 1 || (mm && fi->ran))
            prop_fail("finalizer-once", "finalizer f%zu ran %d times", f, m->acc_fn[f]);
        if (strict) {
            if (mm != e->fn[f])
                prop_fail(mm ? "finalizer-unexpected" : "finalizer-missing",
                          "finalizer f%zu (target #%d): ran %d, expected %d", f, fi->target, mm,
                          e->fn[f]);
        } else if (!fi->alive0) {
            if (mm || fi->c1 || fi->d1)
                prop_fail("finalizer-once", "finalizer f%zu acted after it was dead", f);
        } else {
            if (fi->c1 && mm != 1)
                prop_fail("finalizer-call", "frt_finalizer_call(f%zu) returned 1 but the function "
                          "did not run", f);
            if (fi->d1 && mm)
                prop_fail("finalizer-detach", "f%zu ran although frt_finalizer_detach returned 1", f);
            if (!fi->c1 && !fi->d1) {
                if (mm && !t->died && !(allow && !t->pinned))
                    prop_fail("finalizer-unexpected", "f%zu ran but its target #%d did not die", f,
                              fi->target);
                if (!mm && t->died)
                    prop_fail("finalizer-missing", "target #%d of f%zu died, the function did not "
                              "run", fi->target, f);
                if (!mm && fi->any0)
                    prop_fail("finalizer-call", "a call or detach of f%zu returned 0 while it was "
                              "alive", f);
            }
        }
        if (mm) {
            m->ev_fn++;
            if (m->trace_out)
                fprintf(m->trace_out, "    finalizer f%zu ran (target #%d)\n", f, fi->target);
        }
        fi->ran |= (uint8_t)mm;
        fi->detached |= (uint8_t)fi->d1;
        fi->alive = fi->alive && !fi->c1 && !fi->d1 && !mm;
        fi->c1 = fi->d1 = fi->any0 = 0;
    }
    /* 7. Generations. */
    if (strict) {
        for (size_t i = 0; i < N; i++)
            if (m->obj[i].exists && m->obj[i].alive)
                m->obj[i].gen = e->gen[i];
    } else if (dcoll > 0) {
        m->gens_exact = 0;
    }
    /* 8. The runtime's state, object by object. */
    for (size_t i = 0; i < N; i++) {
        prop_mobj *o = &m->obj[i];
        if (!o->exists || !o->alive)
            continue;
        obs->check_object(ctx, (int)i, o);
        long rc = obs->refcount(ctx, (int)i);
        if (rc != o->nref)
            prop_fail("refcount", "#%zu (%s): frt_refcount is %ld, the model counts %d", i,
                      kind_name(o->kind), rc, o->nref);
    }
    for (size_t i = 0; i < N; i++) {
        prop_mobj *w = &m->obj[i];
        if (!w->exists || !w->alive || w->kind != MK_WREF)
            continue;
        int valid = !w->cleared && m->obj[w->target].alive;
        int got = obs->wr_get(ctx, (int)i, w->target);
        if (valid && !got) {
            if (allow && !w->pinned) {
                w->cleared = 1; /* it was garbage in a collection, and survived */
                m->learned_cleared++;
                if (m->trace_out)
                    fprintf(m->trace_out, "    weakref #%zu was cleared by a collection\n", i);
            }
            else
                prop_fail("weakref-cleared", "weakref #%zu returns NULL but #%d is alive", i,
                          w->target);
        } else if (!valid && got) {
            prop_fail("weakref-not-cleared", "weakref #%zu still returns #%d (%s)", i, w->target,
                      m->obj[w->target].alive ? "cleared by a collection" : "destroyed");
        }
    }
    for (size_t k = 0; k < n; k++) {
        const prop_rop *r = &rops[k];
        if (r->kind != P_WR_GET || r->result != 0)
            continue;
        prop_mobj *w = &m->obj[r->id], *x = &m->obj[r->id2];
        if (!(w->cleared0 || !x->alive0 || x->died || x->fin_new || (allow && w->cleared)))
            prop_fail("weakref-get", "frt_weakref_get(#%d) returned NULL although #%d stayed alive",
                      r->id, r->id2);
    }
    long *wcount = xcalloc(N, sizeof *wcount);
    for (size_t i = 0; i < N; i++) {
        prop_mobj *w = &m->obj[i];
        if (w->exists && w->alive && w->kind == MK_WREF && !w->cleared)
            wcount[w->target]++;
    }
    long fin_objects = 0, fin_frozen = 0;
    for (size_t f = 0; f < m->next_fin; f++) {
        prop_mfin *fi = &m->fin[f];
        if (!fi->exists)
            continue;
        if (fi->alive)
            wcount[fi->target]++;
        fin_objects += fi->alive || fi->handle;
        (void)fin_frozen;
        if (fi->handle) {
            int a = obs->fin_alive(ctx, (int)f);
            if (a != fi->alive)
                prop_fail("finalizer-alive", "frt_finalizer_alive(f%zu) is %d, the model says %d", f,
                          a, fi->alive);
        }
    }
    for (size_t i = 0; i < N; i++) {
        prop_mobj *o = &m->obj[i];
        if (o->exists && o->alive) {
            long wc = obs->wr_count(ctx, (int)i);
            if (wc != wcount[i])
                prop_fail("weakref-count", "frt_weakref_count(#%zu) is %ld, the model counts %ld", i,
                          wc, wcount[i]);
        }
        if (o->exists && obs->res_present(ctx, (int)i) != m->res[i])
            prop_fail("resurrection-table", "#%zu: the table %s it, the model says %d", i,
                      m->res[i] ? "lacks" : "holds", m->res[i]);
    }
    free(wcount);
    if (!m->frozen_any) {
        long fc = obs->freeze_count(ctx);
        if (fc != 0)
            prop_fail("freeze-count", "frt_gc_get_freeze_count is %ld with nothing frozen", fc);
    } else {
        long frozen = 0;
        for (size_t i = 0; i < N; i++)
            frozen += m->obj[i].exists && m->obj[i].alive && m->obj[i].gen == PROP_GEN_FROZEN;
        long fc = obs->freeze_count(ctx);
        /* finalizer objects made before the freeze are frozen too */
        if (fc < frozen || fc > frozen + fin_objects)
            prop_fail("freeze-count", "frt_gc_get_freeze_count is %ld, the model has %ld frozen "
                      "objects (and %ld finalizers)", fc, frozen, fin_objects);
    }
    size_t alive = prop_model_alive(m);
    if (alive > m->max_alive)
        m->max_alive = alive;
}

void prop_model_check_final(prop_model *m, const prop_observer *obs)
{
    for (size_t i = 0; i < m->nids; i++) {
        prop_mobj *o = &m->obj[i];
        if (!o->exists)
            continue;
        if (o->alive)
            prop_fail("final", "#%zu (%s) is still alive after everything was dropped and collected",
                      i, kind_name(o->kind));
        if (o->kind != MK_WREF && obs->destroyed(obs->ctx, (int)i) != 1)
            prop_fail("destroy-once", "#%zu destroyed %d times in all", i,
                      obs->destroyed(obs->ctx, (int)i));
    }
    for (size_t f = 0; f < m->next_fin; f++) {
        prop_mfin *fi = &m->fin[f];
        if (!fi->exists)
            continue;
        if (fi->alive || fi->ran + fi->detached != 1)
            prop_fail("finalizer-once", "finalizer f%zu: alive %d, ran %d, detached %d", f, fi->alive,
                      fi->ran, fi->detached);
    }
}

/* ------------------------------------------------------------------ */
/* Printing                                                             */

void prop_rop_print(FILE *f, const prop_model *m, const prop_rop *r)
{
    (void)m;
    if (r->kind >= P_BARRIER) {
        switch (r->kind) {
        case P_G_COLLECT:
            fprintf(f, "  collect(%u) -> %ld\n", r->gen, r->result);
            break;
        case P_G_THRESH:
            fprintf(f, "  threshold(%zu, %zu, %zu)\n", prop_thresh_t0[r->mk % 6],
                    prop_thresh_t12[r->ns % 3], prop_thresh_t12[r->fm % 3]);
            break;
        case P_G_RELEASE:
            fprintf(f, "  release #%d from the resurrection table\n", r->id);
            break;
        default:
            fprintf(f, "  %s\n", prop_op_name(r->kind));
        }
        return;
    }
    fprintf(f, "  t%u: ", r->thread);
    switch (r->kind) {
    case P_NEW:
        if (r->mk == MK_FCONT)
            fprintf(f, "h%d = #%d = new fcont(%u slots, %s", r->out, r->id, r->ns, fmode_name(r->fm));
        else
            fprintf(f, "h%d = #%d = new %s(%u slots", r->out, r->id, kind_name(r->mk), r->ns);
        if (r->pad)
            fprintf(f, ", +%u bytes", r->pad);
        fputc(')', f);
        break;
    case P_DUP:
        fprintf(f, "h%d = incref h%d (#%d)", r->out, r->h, r->id);
        break;
    case P_DROP:
        fprintf(f, "decref h%d (#%d)", r->h, r->id);
        break;
    case P_LINK:
        fprintf(f, "#%d.slot[%d] = h%d (#%d)", r->id, r->slot, r->h2, r->id2);
        break;
    case P_UNLINK:
        fprintf(f, "#%d.slot[%d] = NULL", r->id, r->slot);
        break;
    case P_LOAD:
        fprintf(f, "h%d = incref #%d.slot[%d] (#%d) -> %s", r->out, r->id, r->slot, r->id2,
                r->result == 1 ? "got it" : "empty");
        break;
    case P_HANDOFF:
        fprintf(f, "hand h%d (#%d) to t%u", r->h, r->id, r->to);
        break;
    case P_SHARE:
        fprintf(f, "give t%u a new reference to h%d (#%d)", r->to, r->h, r->id);
        break;
    case P_MAKE_SHARED:
        fprintf(f, "frt_make_shared(h%d #%d) -> %ld", r->h, r->id, r->result);
        break;
    case P_WR_NEW:
        fprintf(f, "h%d = #%d = weakref(h%d #%d)%s", r->out, r->id, r->h, r->id2,
                r->cb ? " with callback" : "");
        break;
    case P_WR_GET:
        fprintf(f, "h%d = weakref_get(h%d #%d) -> %s", r->out, r->h, r->id,
                r->result == 1 ? "#target" : r->result == 0 ? "NULL" : "skipped");
        if (r->result == 1)
            fprintf(f, " (#%d)", r->id2);
        break;
    case P_FIN_NEW:
        fprintf(f, "f%d = finalizer(h%d #%d)", r->fin, r->h, r->id2);
        break;
    case P_FIN_CALL:
        fprintf(f, "finalizer_call(f%d) -> %ld", r->fin, r->result);
        break;
    case P_FIN_DETACH:
        fprintf(f, "finalizer_detach(f%d) -> %ld", r->fin, r->result);
        break;
    case P_FIN_FREE:
        fprintf(f, "finalizer_free(f%d)", r->fin);
        break;
    case P_ADOPT:
        fprintf(f, "h%d = take #%d from the resurrection table", r->out, r->id);
        break;
    case P_DETACH:
        fprintf(f, "detach and attach again");
        break;
    case P_BLOCK:
        fprintf(f, "blocking section");
        break;
    case P_SAFEPOINT:
        fprintf(f, "safepoint");
        break;
    case P_COLLECT:
        fprintf(f, "collect(%u) while others run -> %ld", r->gen, r->result);
        break;
    case P_MAKE_HOT:
        fprintf(f, "frt_make_hot(h%d #%d) -> %ld", r->h, r->id, r->result);
        break;
    default:
        fprintf(f, "%s", prop_op_name(r->kind));
    }
    fputc('\n', f);
}
