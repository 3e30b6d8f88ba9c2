/* The commands (commands.h). The key space is frt's concurrent map from
 * each key to its slot (keyspace.h), and commands use it in two ways:
 *
 *   - reads (GET, MGET, STRLEN, EXISTS, TYPE, TTL) take no lock: ks_get
 *     returns this thread's own reference to the value, lock-free, and the
 *     reply is copied from it;
 *   - writes lock the key's slot (ks_lock: a critical section on it), read
 *     and change its value, unlock (ks_unlock), then reply. What they store
 *     they make before the lock where they can (frt_new may park, which
 *     suspends the section); a write that must allocate or wait inside its
 *     section (INCR, the first LPUSH of a key) checks ks_changed afterwards
 *     and starts over if another writer got in meanwhile.
 *
 * So a value written by one worker is read (incref, copy, decref) and
 * replaced (decref) by others: the shared-count path of biased reference
 * counting, and the merge queues when a shared count would go negative. */
#include "commands.h"

#include "intcache.h"
#include "keyspace.h"
#include "objects.h"
#include "reply.h"
#include "resp.h"
#include "server.h"

#include <ctype.h>
#include <fnmatch.h>
#include <frt/frt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

typedef void (*cmd_fn)(kv_client *c, size_t argc, const kv_arg *argv);
typedef struct cmd {
    const char *name;
    int arity; /* Redis's convention: n exactly, -n at least n (the name included) */
    cmd_fn fn;
} cmd;

static const char WRONGTYPE[] = "WRONGTYPE Operation against a key holding the wrong kind of value";
static const char NOTINT[] = "ERR value is not an integer or out of range";
static const char SYNTAX[] = "ERR syntax error";
static const char NOMEM[] = "ERR out of memory";

static int arg_is(const kv_arg *a, const char *s)
{
    size_t n = strlen(s);
    return a->n == n && strncasecmp(a->p, s, n) == 0;
}

static int arg_ll(const kv_arg *a, long long *v)
{
    return resp_string2ll(a->p, a->n, v);
}

static void reply_str(kv_buf *b, const frt_object *o)
{
    const kv_str *s = (const kv_str *)o;
    reply_bulk(b, s->data, s->len);
}

/* 1 when v is a string or absent; else a WRONGTYPE reply and 0. */
static int str_or_absent(kv_client *c, const frt_object *v)
{
    if (!v || kv_is_str(v))
        return 1;
    reply_error(c->out, WRONGTYPE);
    return 0;
}

/* ---- connection and server ----------------------------------------------- */

static void cmd_ping(kv_client *c, size_t argc, const kv_arg *argv)
{
    if (argc == 1)
        reply_simple(c->out, "PONG");
    else if (argc == 2)
        reply_bulk(c->out, argv[1].p, argv[1].n);
    else
        reply_error(c->out, "ERR wrong number of arguments for 'ping' command");
}

static void cmd_echo(kv_client *c, size_t argc, const kv_arg *argv)
{
    reply_bulk(c->out, argv[1].p, argv[1].n);
}

static void cmd_quit(kv_client *c, size_t argc, const kv_arg *argv)
{
    reply_simple(c->out, "OK");
    c->close_after = 1;
}

static void cmd_select(kv_client *c, size_t argc, const kv_arg *argv)
{
    long long db;
    if (!arg_ll(&argv[1], &db))
        reply_error(c->out, NOTINT);
    else if (db != 0)
        reply_error(c->out, "ERR DB index is out of range");
    else
        reply_simple(c->out, "OK");
}

static void cmd_dbsize(kv_client *c, size_t argc, const kv_arg *argv)
{
    size_t keys, expires;
    ks_counts(&keys, &expires);
    reply_int(c->out, (long long)keys);
}

static void cmd_flushall(kv_client *c, size_t argc, const kv_arg *argv)
{
    if (argc > 2 || (argc == 2 && !arg_is(&argv[1], "sync") && !arg_is(&argv[1], "async"))) {
        reply_error(c->out, SYNTAX);
        return;
    }
    ks_flush();
    reply_simple(c->out, "OK");
}

/* ---- strings -------------------------------------------------------------- */

static void cmd_set(kv_client *c, size_t argc, const kv_arg *argv)
{
    int nx = 0, xx = 0, keepttl = 0, get = 0, has_ttl = 0;
    long long ttl_ms = 0;
    for (size_t i = 3; i < argc; i++) {
        if (arg_is(&argv[i], "nx"))
            nx = 1;
        else if (arg_is(&argv[i], "xx"))
            xx = 1;
        else if (arg_is(&argv[i], "keepttl"))
            keepttl = 1;
        else if (arg_is(&argv[i], "get"))
            get = 1;
        else if ((arg_is(&argv[i], "ex") || arg_is(&argv[i], "px")) && i + 1 < argc && !has_ttl) {
            int ex = arg_is(&argv[i], "ex");
            long long v;
            if (!arg_ll(&argv[++i], &v)) {
                reply_error(c->out, NOTINT);
                return;
            }
            if (v <= 0 || (ex && v > LLONG_MAX / 2000) || (!ex && v > LLONG_MAX / 2)) {
                reply_error(c->out, "ERR invalid expire time in 'set' command");
                return;
            }
            ttl_ms = ex ? v * 1000 : v;
            has_ttl = 1;
        } else {
            reply_error(c->out, SYNTAX);
            return;
        }
    }
    if ((nx && xx) || (has_ttl && keepttl)) {
        reply_error(c->out, SYNTAX);
        return;
    }
    kv_str *v = kv_str_new(argv[2].p, argv[2].n); /* before the lock: frt_new may park */
    if (!v) {
        reply_error(c->out, NOMEM);
        return;
    }
    ks_op op;
    int oom = !ks_lock(&op, argv[1].p, argv[1].n, !xx) && !xx; /* SET XX never creates */
    frt_object *cur = ks_value(&op);
    if (get && !str_or_absent(c, cur)) {
        ks_unlock(&op);
        frt_decref(&v->ob);
        return;
    }
    frt_object *old = get && cur ? frt_newref(cur) : NULL;
    int ok = !oom && !(nx && cur) && !(xx && !cur);
    if (ok) {
        ks_store(&op, &v->ob);
        if (!keepttl)
            ks_set_expire(&op, has_ttl ? kv_now_ms() + ttl_ms : 0);
    }
    ks_unlock(&op);
    frt_decref(&v->ob); /* the slot took its own reference */
    if (oom)
        reply_error(c->out, NOMEM);
    else if (get)
        old ? reply_str(c->out, old) : reply_null(c->out);
    else if (ok)
        reply_simple(c->out, "OK");
    else
        reply_null(c->out);
    frt_xdecref(old);
}

/* GET takes no lock: a map get and a slot load, both lock-free, give this
 * thread its own reference; the reply is copied from it. */
static void cmd_get(kv_client *c, size_t argc, const kv_arg *argv)
{
    frt_object *v = ks_get(argv[1].p, argv[1].n, NULL);
    if (str_or_absent(c, v))
        v ? reply_str(c->out, v) : reply_null(c->out);
    frt_xdecref(v); /* often another worker's object: a shared-count decref */
}

static void cmd_strlen(kv_client *c, size_t argc, const kv_arg *argv)
{
    frt_object *v = ks_get(argv[1].p, argv[1].n, NULL);
    if (str_or_absent(c, v))
        reply_int(c->out, v ? (long long)((kv_str *)v)->len : 0);
    frt_xdecref(v);
}

static void cmd_del(kv_client *c, size_t argc, const kv_arg *argv)
{
    long long n = 0;
    for (size_t i = 1; i < argc; i++) {
        ks_op op;
        if (ks_lock(&op, argv[i].p, argv[i].n, 0)) {
            ks_store(&op, NULL);
            n++;
        }
        ks_unlock(&op);
    }
    reply_int(c->out, n);
}

static void cmd_exists(kv_client *c, size_t argc, const kv_arg *argv)
{
    long long n = 0;
    for (size_t i = 1; i < argc; i++) {
        frt_object *v = ks_get(argv[i].p, argv[i].n, NULL);
        n += v != NULL;
        frt_xdecref(v);
    }
    reply_int(c->out, n);
}

/* Read the value, make the new string, store it: under the key's section,
 * which the allocation (or a contended intcache lock) may suspend, so the
 * store happens only if the value is still the one read. */
static void incr_by(kv_client *c, const kv_arg *key, long long by)
{
    for (;;) {
        ks_op op;
        const char *err = NULL;
        if (!ks_lock(&op, key->p, key->n, 1))
            err = NOMEM;
        frt_object *cur = ks_value(&op);
        if (cur)
            frt_incref(cur); /* held across the suspension points below: its address stays its own */
        long long v = 0;
        if (cur && !kv_is_str(cur)) {
            err = WRONGTYPE;
        } else if (cur) {
            kv_str *s = (kv_str *)cur;
            /* The weak cache knows the value if the last INCR made it. */
            if (!intcache_get(s, &v) && !resp_string2ll(s->data, s->len, &v))
                err = NOTINT;
        }
        if (!err && ((by < 0 && v < LLONG_MIN - by) || (by > 0 && v > LLONG_MAX - by)))
            err = "ERR increment or decrement would overflow";
        long long nv = v + (err ? 0 : by);
        kv_str *ns = NULL;
        if (!err && !(ns = kv_str_from_ll(nv)))
            err = NOMEM;
        if (op.slot && ks_changed(&op, cur)) {
            ks_unlock(&op); /* another writer got in while the section was suspended */
            frt_xdecref(cur);
            frt_xdecref(ns ? &ns->ob : NULL);
            continue;
        }
        if (ns)
            ks_store(&op, &ns->ob);
        ks_unlock(&op);
        frt_xdecref(cur);
        if (err) {
            reply_error(c->out, err);
            return;
        }
        intcache_put(ns, nv);
        frt_decref(&ns->ob);
        reply_int(c->out, nv);
        return;
    }
}

static void cmd_incr(kv_client *c, size_t argc, const kv_arg *argv) { incr_by(c, &argv[1], 1); }
static void cmd_decr(kv_client *c, size_t argc, const kv_arg *argv) { incr_by(c, &argv[1], -1); }

static void cmd_incrby(kv_client *c, size_t argc, const kv_arg *argv)
{
    long long by;
    if (!arg_ll(&argv[2], &by))
        reply_error(c->out, NOTINT);
    else
        incr_by(c, &argv[1], by);
}

static void cmd_decrby(kv_client *c, size_t argc, const kv_arg *argv)
{
    long long by;
    if (!arg_ll(&argv[2], &by) || by == LLONG_MIN)
        reply_error(c->out, NOTINT);
    else
        incr_by(c, &argv[1], -by);
}

/* MSET sets each key under its own section: every key is atomic on its
 * own, but unlike Redis a concurrent MGET may see part of an MSET. */
static void cmd_mset(kv_client *c, size_t argc, const kv_arg *argv)
{
    if (argc % 2 != 1) {
        reply_error(c->out, "ERR wrong number of arguments for 'mset' command");
        return;
    }
    size_t n = (argc - 1) / 2;
    kv_str **vals = malloc(n * sizeof *vals);
    if (!vals) {
        reply_error(c->out, NOMEM);
        return;
    }
    for (size_t i = 0; i < n; i++)
        if (!(vals[i] = kv_str_new(argv[2 + 2 * i].p, argv[2 + 2 * i].n))) {
            while (i--)
                frt_decref(&vals[i]->ob);
            free(vals);
            reply_error(c->out, NOMEM);
            return;
        }
    int oom = 0;
    for (size_t i = 0; i < n; i++) {
        ks_op op;
        if (ks_lock(&op, argv[1 + 2 * i].p, argv[1 + 2 * i].n, 1)) {
            ks_store(&op, &vals[i]->ob);
            ks_set_expire(&op, 0);
        } else {
            oom = 1;
        }
        ks_unlock(&op);
        frt_decref(&vals[i]->ob);
    }
    free(vals);
    if (oom)
        reply_error(c->out, NOMEM);
    else
        reply_simple(c->out, "OK");
}

static void cmd_mget(kv_client *c, size_t argc, const kv_arg *argv)
{
    reply_array(c->out, (long long)argc - 1);
    for (size_t i = 1; i < argc; i++) {
        frt_object *v = ks_get(argv[i].p, argv[i].n, NULL);
        v && kv_is_str(v) ? reply_str(c->out, v) : reply_null(c->out);
        frt_xdecref(v);
    }
}

/* ---- lists ----------------------------------------------------------------- */

/* A list changes only under its key's section, and list code makes no frt
 * objects, so no safepoint (and no suspension) falls inside a change: the
 * collector, with the world stopped, never sees a half-pushed list. */
static void push(kv_client *c, size_t argc, const kv_arg *argv, int left)
{
    size_t n = argc - 2;
    frt_object **items = malloc(n * sizeof *items);
    if (!items) {
        reply_error(c->out, NOMEM);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        kv_str *s = kv_str_new(argv[2 + i].p, argv[2 + i].n);
        if (!s) {
            while (i--)
                frt_decref(items[i]);
            free(items);
            reply_error(c->out, NOMEM);
            return;
        }
        items[i] = &s->ob;
    }
    const char *err = NULL;
    long long len = 0;
    size_t pushed = 0;
    for (;;) {
        ks_op op;
        if (!ks_lock(&op, argv[1].p, argv[1].n, 1))
            err = NOMEM;
        frt_object *cur = ks_value(&op);
        if (cur && !kv_is_list(cur))
            err = WRONGTYPE;
        if (!err && !cur) {
            kv_list *l = kv_list_new(); /* may park, suspending the section */
            if (l && ks_changed(&op, NULL)) {
                frt_decref(&l->ob);
                ks_unlock(&op);
                continue;
            }
            if (l) {
                ks_store(&op, &l->ob);
                frt_decref(&l->ob);
                cur = &l->ob;
            } else {
                err = NOMEM;
            }
        }
        if (!err) {
            kv_list *l = (kv_list *)cur;
            for (; pushed < n; pushed++)
                if (kv_list_push(l, items[pushed], left) != 0) {
                    err = NOMEM;
                    break;
                }
            len = (long long)l->len;
        }
        ks_unlock(&op); /* a list that was made and got nothing goes again */
        break;
    }
    for (size_t i = pushed; i < n; i++)
        frt_decref(items[i]);
    free(items);
    if (err)
        reply_error(c->out, err);
    else
        reply_int(c->out, len);
}

static void cmd_lpush(kv_client *c, size_t argc, const kv_arg *argv) { push(c, argc, argv, 1); }
static void cmd_rpush(kv_client *c, size_t argc, const kv_arg *argv) { push(c, argc, argv, 0); }

/* The list at key, its slot locked (ks_unlock when done); or NULL, with
 * nothing locked, when the key is absent or (after a WRONGTYPE reply, and
 * *wrong set) holds a string. */
static kv_list *lock_list(kv_client *c, ks_op *op, const kv_arg *key, int *wrong)
{
    ks_lock(op, key->p, key->n, 0);
    frt_object *cur = ks_value(op);
    *wrong = cur && !kv_is_list(cur);
    if (cur && !*wrong)
        return (kv_list *)cur;
    ks_unlock(op);
    if (*wrong)
        reply_error(c->out, WRONGTYPE);
    return NULL;
}

static void pop(kv_client *c, size_t argc, const kv_arg *argv, int left)
{
    long long count = -1;
    if (argc > 3) {
        reply_errorf(c->out, "ERR wrong number of arguments for '%s' command", left ? "lpop" : "rpop");
        return;
    }
    if (argc == 3 && (!arg_ll(&argv[2], &count) || count < 0)) {
        reply_error(c->out, "ERR value is out of range, must be positive");
        return;
    }
    ks_op op;
    int wrong;
    kv_list *l = lock_list(c, &op, &argv[1], &wrong);
    if (!l) {
        if (!wrong)
            count < 0 ? reply_null(c->out) : reply_array(c->out, -1);
        return;
    }
    size_t want = count < 0 ? 1 : (size_t)count;
    if (want > l->len)
        want = l->len;
    frt_object *one[8];
    frt_object **got = want <= 8 ? one : malloc(want * sizeof *got);
    size_t n = 0;
    if (got)
        for (; n < want; n++)
            got[n] = kv_list_pop(l, left); /* the list's reference becomes ours */
    if (l->len == 0)
        ks_store(&op, NULL); /* Redis deletes a list that becomes empty */
    ks_unlock(&op);
    if (!got) {
        reply_error(c->out, NOMEM);
        return;
    }
    if (count < 0) {
        n ? reply_str(c->out, got[0]) : reply_null(c->out);
    } else {
        reply_array(c->out, (long long)n);
        for (size_t i = 0; i < n; i++)
            reply_str(c->out, got[i]);
    }
    for (size_t i = 0; i < n; i++) {
        frt_decref(got[i]);
        if ((i & 1023) == 1023)
            frt_safepoint();
    }
    if (got != one)
        free(got);
}

static void cmd_lpop(kv_client *c, size_t argc, const kv_arg *argv) { pop(c, argc, argv, 1); }
static void cmd_rpop(kv_client *c, size_t argc, const kv_arg *argv) { pop(c, argc, argv, 0); }

/* A list's ring changes under its key's section, so even LLEN reads it
 * under the section. */
static void cmd_llen(kv_client *c, size_t argc, const kv_arg *argv)
{
    ks_op op;
    int wrong;
    kv_list *l = lock_list(c, &op, &argv[1], &wrong);
    long long n = l ? (long long)l->len : 0;
    if (l)
        ks_unlock(&op);
    if (!wrong)
        reply_int(c->out, n);
}

static void cmd_lrange(kv_client *c, size_t argc, const kv_arg *argv)
{
    long long start, stop;
    if (!arg_ll(&argv[2], &start) || !arg_ll(&argv[3], &stop)) {
        reply_error(c->out, NOTINT);
        return;
    }
    ks_op op;
    int wrong;
    kv_list *l = lock_list(c, &op, &argv[1], &wrong);
    if (!l) {
        if (!wrong)
            reply_array(c->out, 0);
        return;
    }
    long long len = (long long)l->len;
    if (start < 0)
        start += len;
    if (stop < 0)
        stop += len;
    if (start < 0)
        start = 0;
    if (stop >= len)
        stop = len - 1;
    size_t n = (start > stop || start >= len) ? 0 : (size_t)(stop - start + 1);
    frt_object **items = n ? malloc(n * sizeof *items) : NULL;
    if (items)
        for (size_t i = 0; i < n; i++)
            items[i] = frt_newref(kv_list_at(l, (size_t)start + i));
    ks_unlock(&op);
    if (n && !items) {
        reply_error(c->out, NOMEM);
        return;
    }
    /* Copying the reply happens without the lock, from our own references. */
    reply_array(c->out, (long long)n);
    for (size_t i = 0; i < n; i++) {
        reply_str(c->out, items[i]);
        frt_decref(items[i]);
        if ((i & 1023) == 1023)
            frt_safepoint();
    }
    free(items);
}

/* ---- expiry ---------------------------------------------------------------- */

static void expire_generic(kv_client *c, const kv_arg *argv, int seconds)
{
    long long t;
    if (!arg_ll(&argv[2], &t)) {
        reply_error(c->out, NOTINT);
        return;
    }
    if (seconds ? (t > LLONG_MAX / 2000 || t < LLONG_MIN / 2000) : (t > LLONG_MAX / 2 || t < LLONG_MIN / 2)) {
        reply_errorf(c->out, "ERR invalid expire time in '%s' command", seconds ? "expire" : "pexpire");
        return;
    }
    long long ms = seconds ? t * 1000 : t;
    ks_op op;
    int r = ks_lock(&op, argv[1].p, argv[1].n, 0) != NULL;
    if (r) {
        if (ms <= 0)
            ks_store(&op, NULL); /* an expire in the past deletes, as in Redis */
        else
            ks_set_expire(&op, kv_now_ms() + ms);
    }
    ks_unlock(&op);
    reply_int(c->out, r);
}

static void cmd_expire(kv_client *c, size_t argc, const kv_arg *argv) { expire_generic(c, argv, 1); }
static void cmd_pexpire(kv_client *c, size_t argc, const kv_arg *argv) { expire_generic(c, argv, 0); }

static void ttl_generic(kv_client *c, const kv_arg *argv, int seconds)
{
    int64_t exp = 0;
    frt_object *v = ks_get(argv[1].p, argv[1].n, &exp);
    long long r = !v ? -2 : !exp ? -1 : (long long)(exp - kv_now_ms());
    frt_xdecref(v);
    if (r >= 0 && seconds)
        r = (r + 500) / 1000;
    reply_int(c->out, r);
}

static void cmd_ttl(kv_client *c, size_t argc, const kv_arg *argv) { ttl_generic(c, argv, 1); }
static void cmd_pttl(kv_client *c, size_t argc, const kv_arg *argv) { ttl_generic(c, argv, 0); }

static void cmd_persist(kv_client *c, size_t argc, const kv_arg *argv)
{
    ks_op op;
    int r = ks_lock(&op, argv[1].p, argv[1].n, 0) && ks_expire(&op);
    if (r)
        ks_set_expire(&op, 0);
    ks_unlock(&op);
    reply_int(c->out, r);
}

static void cmd_type(kv_client *c, size_t argc, const kv_arg *argv)
{
    frt_object *v = ks_get(argv[1].p, argv[1].n, NULL);
    const char *t = !v ? "none" : kv_is_list(v) ? "list" : "string";
    frt_xdecref(v);
    reply_simple(c->out, t);
}

/* ---- introspection: INFO, CONFIG, COMMAND, CLIENT, FRT.* ------------------ */

static int want_section(size_t argc, const kv_arg *argv, const char *name)
{
    if (argc < 2)
        return 1;
    for (size_t i = 1; i < argc; i++)
        if (arg_is(&argv[i], name) || arg_is(&argv[i], "all") || arg_is(&argv[i], "everything") ||
            arg_is(&argv[i], "default"))
            return 1;
    return 0;
}

static void bprintf(kv_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void bprintf(kv_buf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0)
        buf_append(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

static void heap_lines(kv_buf *b)
{
    frt_heap_stats h;
    frt_heap_get_stats(&h);
    bprintf(b, "arenas:%zu\r\narenas_peak:%zu\r\nbytes_mapped:%zu\r\nbytes_mapped_peak:%zu\r\n", h.arenas,
            h.arenas_peak, h.bytes_mapped, h.bytes_mapped_peak);
    bprintf(b, "bytes_in_use:%zu\r\nblocks_in_use:%zu\r\nlarge_objects:%zu\r\narenas_returned:%llu\r\n",
            h.bytes_in_use, h.blocks_in_use, h.large_objects, (unsigned long long)h.arenas_returned);
}

static void gc_lines(kv_buf *b)
{
    size_t th[3], cnt[3];
    frt_gc_get_threshold(th);
    frt_gc_get_count(cnt);
    frt_gc_stats st[3];
    frt_gc_get_stats(st);
    frt_stw_stats stw;
    frt_stw_get_stats(&stw);
    intcache_stats ic;
    intcache_get_stats(&ic);
    bprintf(b, "gc_enabled:%d\r\ngc_threshold:%zu,%zu,%zu\r\ngc_count:%zu,%zu,%zu\r\ngc_freeze_count:%zu\r\n",
            frt_gc_isenabled(), th[0], th[1], th[2], cnt[0], cnt[1], cnt[2], frt_gc_get_freeze_count());
    for (int g = 0; g < 3; g++)
        bprintf(b,
                "gen%d:collections=%llu,collected=%llu,uncollectable=%llu,pause_ns_total=%llu,"
                "pause_ns_max=%llu\r\n",
                g, (unsigned long long)st[g].collections, (unsigned long long)st[g].collected,
                (unsigned long long)st[g].uncollectable, (unsigned long long)st[g].pause_ns_total,
                (unsigned long long)st[g].pause_ns_max);
    bprintf(b, "gc_garbage:%zu\r\nstw_stops:%llu\r\nstw_pause_ns_max:%llu\r\nstw_pause_ns_total:%llu\r\n",
            frt_gc_garbage_count(), (unsigned long long)stw.stops, (unsigned long long)stw.pause_ns_max,
            (unsigned long long)stw.pause_ns_total);
    bprintf(b, "intcache_hits:%llu\r\nintcache_misses:%llu\r\nintcache_puts:%llu\r\n"
               "intcache_cleared_by_callback:%llu\r\nintcache_slots_used:%llu\r\n",
            (unsigned long long)ic.hits, (unsigned long long)ic.misses, (unsigned long long)ic.puts,
            (unsigned long long)ic.evicted_by_callback, (unsigned long long)ic.slots_used);
}

static void cmd_info(kv_client *c, size_t argc, const kv_arg *argv)
{
    kv_buf b = {0};
    if (want_section(argc, argv, "server"))
        bprintf(&b,
                "# Server\r\nredis_version:7.0.0\r\nfrt_version:%s\r\nredis_mode:standalone\r\n"
                "multiplexing_api:epoll\r\nprocess_id:%ld\r\ntcp_port:%d\r\nuptime_in_seconds:%lld\r\n"
                "worker_threads:%d\r\n\r\n",
                FRT_VERSION, (long)getpid(), kv_bound_port, (long long)((kv_now_ms() - kv_start_ms) / 1000),
                kv_opts.threads);
    if (want_section(argc, argv, "clients"))
        bprintf(&b, "# Clients\r\nconnected_clients:%ld\r\nmaxclients:%d\r\n\r\n", atomic_load(&kv_count.clients),
                kv_opts.maxclients);
    if (want_section(argc, argv, "memory")) {
        frt_heap_stats h;
        frt_heap_get_stats(&h);
        bprintf(&b, "# Memory\r\nused_memory:%zu\r\nfrt_bytes_mapped:%zu\r\nfrt_blocks_in_use:%zu\r\n\r\n",
                h.bytes_in_use, h.bytes_mapped, h.blocks_in_use);
    }
    if (want_section(argc, argv, "stats"))
        bprintf(&b,
                "# Stats\r\ntotal_connections_received:%llu\r\ntotal_commands_processed:%llu\r\n"
                "rejected_connections:%llu\r\nexpired_keys:%llu\r\nfrt_protocol_errors:%llu\r\n"
                "frt_clients_over_limits:%llu\r\n\r\n",
                (unsigned long long)atomic_load(&kv_count.connections_total),
                (unsigned long long)atomic_load(&kv_count.commands_total),
                (unsigned long long)atomic_load(&kv_count.rejected_connections), (unsigned long long)ks_expired_total(),
                (unsigned long long)atomic_load(&kv_count.protocol_errors),
                (unsigned long long)atomic_load(&kv_count.rejected_limits));
    if (want_section(argc, argv, "keyspace")) {
        size_t keys, expires;
        ks_counts(&keys, &expires);
        bprintf(&b, "# Keyspace\r\n");
        if (keys)
            bprintf(&b, "db0:keys=%zu,expires=%zu,avg_ttl=0\r\n", keys, expires);
        bprintf(&b, "\r\n");
    }
    if (want_section(argc, argv, "frt")) {
        bprintf(&b, "# Frt\r\n");
        gc_lines(&b);
        heap_lines(&b);
    }
    if (b.oom)
        reply_error(c->out, NOMEM);
    else
        reply_bulk(c->out, b.data, b.len);
    buf_free(&b);
}

/* redis-benchmark asks for "save" and "appendonly" at start-up. */
static void cmd_config(kv_client *c, size_t argc, const kv_arg *argv)
{
    if (arg_is(&argv[1], "get") && argc >= 3) {
        char port[16], threads[16], maxclients[16];
        snprintf(port, sizeof port, "%d", kv_bound_port);
        snprintf(threads, sizeof threads, "%d", kv_opts.threads);
        snprintf(maxclients, sizeof maxclients, "%d", kv_opts.maxclients);
        const char *params[][2] = {{"save", ""},           {"appendonly", "no"},
                                   {"databases", "1"},     {"maxmemory", "0"},
                                   {"port", port},         {"io-threads", threads},
                                   {"bind", "127.0.0.1"},  {"proto-max-bulk-len", "536870912"},
                                   {"maxclients", maxclients}};
        size_t np = sizeof params / sizeof params[0];
        int match[sizeof params / sizeof params[0]] = {0};
        long long n = 0;
        for (size_t i = 2; i < argc; i++) {
            char pat[128];
            size_t len = argv[i].n < sizeof pat - 1 ? argv[i].n : sizeof pat - 1;
            for (size_t j = 0; j < len; j++)
                pat[j] = (char)tolower((unsigned char)argv[i].p[j]);
            pat[len] = '\0';
            for (size_t j = 0; j < np; j++)
                if (!match[j] && fnmatch(pat, params[j][0], 0) == 0) {
                    match[j] = 1;
                    n++;
                }
        }
        reply_array(c->out, 2 * n);
        for (size_t j = 0; j < np; j++)
            if (match[j]) {
                reply_bulk_cstr(c->out, params[j][0]);
                reply_bulk_cstr(c->out, params[j][1]);
            }
    } else if (arg_is(&argv[1], "resetstat") && argc == 2) {
        reply_simple(c->out, "OK");
    } else if (arg_is(&argv[1], "set") && argc >= 4) {
        reply_errorf(c->out, "ERR Unsupported CONFIG parameter: %.*s", (int)(argv[2].n > 64 ? 64 : argv[2].n),
                     argv[2].p);
    } else {
        reply_errorf(c->out, "ERR unknown subcommand or wrong number of arguments for '%.*s'. Try CONFIG HELP.",
                     (int)(argv[1].n > 64 ? 64 : argv[1].n), argv[1].p);
    }
}

static void cmd_command(kv_client *c, size_t argc, const kv_arg *argv); /* after the table */

static void cmd_client(kv_client *c, size_t argc, const kv_arg *argv)
{
    if (arg_is(&argv[1], "setname") || arg_is(&argv[1], "setinfo") || arg_is(&argv[1], "no-evict"))
        reply_simple(c->out, "OK");
    else if (arg_is(&argv[1], "getname"))
        reply_null(c->out);
    else if (arg_is(&argv[1], "id"))
        reply_int(c->out, (long long)c->id);
    else
        reply_errorf(c->out, "ERR unknown subcommand '%.*s'. Try CLIENT HELP.",
                     (int)(argv[1].n > 64 ? 64 : argv[1].n), argv[1].p);
}

static void cmd_frt_gcstats(kv_client *c, size_t argc, const kv_arg *argv)
{
    kv_buf b = {0};
    gc_lines(&b);
    b.oom ? reply_error(c->out, NOMEM) : reply_bulk(c->out, b.data, b.len);
    buf_free(&b);
}

static void cmd_frt_heapstats(kv_client *c, size_t argc, const kv_arg *argv)
{
    kv_buf b = {0};
    heap_lines(&b);
    b.oom ? reply_error(c->out, NOMEM) : reply_bulk(c->out, b.data, b.len);
    buf_free(&b);
}

/* FRT.COLLECT [generation]: gc.collect() from a client. The collection runs
 * on this worker, with every other attached thread parked at a safepoint or
 * suspended in its blocking section (epoll_wait, a contended slot lock). */
static void cmd_frt_collect(kv_client *c, size_t argc, const kv_arg *argv)
{
    long long gen = -1;
    if (argc > 2 || (argc == 2 && (!arg_ll(&argv[1], &gen) || gen < -1 || gen > 2))) {
        reply_error(c->out, "ERR generation must be -1, 0, 1 or 2");
        return;
    }
    long found = frt_gc_collect((int)gen);
    frt_heap_trim(); /* this worker's empty arenas back to the OS */
    reply_int(c->out, found);
}

/* FRT.GC ENABLE | DISABLE | FREEZE | UNFREEZE | THRESHOLD t0 [t1 t2]:
 * the knobs of Python's gc module, at run time. */
static void cmd_frt_gc(kv_client *c, size_t argc, const kv_arg *argv)
{
    if (argc == 2 && arg_is(&argv[1], "enable"))
        frt_gc_enable();
    else if (argc == 2 && arg_is(&argv[1], "disable"))
        frt_gc_disable();
    else if (argc == 2 && arg_is(&argv[1], "freeze"))
        frt_gc_freeze();
    else if (argc == 2 && arg_is(&argv[1], "unfreeze"))
        frt_gc_unfreeze();
    else if ((argc == 3 || argc == 5) && arg_is(&argv[1], "threshold")) {
        size_t th[3];
        frt_gc_get_threshold(th);
        for (size_t i = 2; i < argc; i++) {
            long long v;
            if (!arg_ll(&argv[i], &v) || v < 0) {
                reply_error(c->out, NOTINT);
                return;
            }
            th[i - 2] = (size_t)v;
        }
        if (frt_gc_set_threshold(th[0], th[1], th[2]) != 0) {
            reply_error(c->out, "ERR invalid threshold");
            return;
        }
    } else {
        reply_error(c->out, "ERR usage: FRT.GC ENABLE|DISABLE|FREEZE|UNFREEZE|THRESHOLD t0 [t1 t2]");
        return;
    }
    reply_simple(c->out, "OK");
}

/* ---- dispatch -------------------------------------------------------------- */

static const cmd commands[] = {
    {"get", 2, cmd_get},
    {"set", -3, cmd_set},
    {"incr", 2, cmd_incr},
    {"lpush", -3, cmd_lpush},
    {"lpop", -2, cmd_lpop},
    {"rpush", -3, cmd_rpush},
    {"rpop", -2, cmd_rpop},
    {"ping", -1, cmd_ping},
    {"mset", -3, cmd_mset},
    {"mget", -2, cmd_mget},
    {"del", -2, cmd_del},
    {"unlink", -2, cmd_del},
    {"exists", -2, cmd_exists},
    {"decr", 2, cmd_decr},
    {"incrby", 3, cmd_incrby},
    {"decrby", 3, cmd_decrby},
    {"strlen", 2, cmd_strlen},
    {"lrange", 4, cmd_lrange},
    {"llen", 2, cmd_llen},
    {"expire", 3, cmd_expire},
    {"pexpire", 3, cmd_pexpire},
    {"ttl", 2, cmd_ttl},
    {"pttl", 2, cmd_pttl},
    {"persist", 2, cmd_persist},
    {"type", 2, cmd_type},
    {"echo", 2, cmd_echo},
    {"select", 2, cmd_select},
    {"dbsize", 1, cmd_dbsize},
    {"flushall", -1, cmd_flushall},
    {"flushdb", -1, cmd_flushall},
    {"info", -1, cmd_info},
    {"config", -2, cmd_config},
    {"command", -1, cmd_command},
    {"client", -2, cmd_client},
    {"quit", -1, cmd_quit},
    {"frt.gcstats", 1, cmd_frt_gcstats},
    {"frt.heapstats", 1, cmd_frt_heapstats},
    {"frt.collect", -1, cmd_frt_collect},
    {"frt.gc", -2, cmd_frt_gc},
};

static size_t command_count(void)
{
    return sizeof commands / sizeof commands[0];
}

/* redis-cli asks "COMMAND DOCS" (then "COMMAND") at start-up for its help
 * hints: an empty answer gives it no hints, which it handles. */
static void cmd_command(kv_client *c, size_t argc, const kv_arg *argv)
{
    if (argc == 1 || arg_is(&argv[1], "docs") || arg_is(&argv[1], "info")) {
        reply_array(c->out, 0);
    } else if (arg_is(&argv[1], "count")) {
        reply_int(c->out, (long long)command_count());
    } else if (arg_is(&argv[1], "list")) {
        reply_array(c->out, (long long)command_count());
        for (size_t i = 0; i < command_count(); i++)
            reply_bulk_cstr(c->out, commands[i].name);
    } else {
        reply_errorf(c->out, "ERR unknown subcommand '%.*s'. Try COMMAND HELP.",
                     (int)(argv[1].n > 64 ? 64 : argv[1].n), argv[1].p);
    }
}

static const cmd *find_command(const kv_arg *name)
{
    for (size_t i = 0; i < command_count(); i++)
        if (arg_is(name, commands[i].name))
            return &commands[i];
    return NULL;
}

static void unknown(kv_client *c, size_t argc, const kv_arg *argv)
{
    char msg[512];
    int n = snprintf(msg, sizeof msg, "ERR unknown command '%.*s', with args beginning with: ",
                     (int)(argv[0].n > 128 ? 128 : argv[0].n), argv[0].p);
    for (size_t i = 1; i < argc && n > 0 && (size_t)n < sizeof msg - 1; i++)
        n += snprintf(msg + n, sizeof msg - (size_t)n, "'%.*s' ", (int)(argv[i].n > 64 ? 64 : argv[i].n),
                      argv[i].p);
    reply_error(c->out, msg);
}

void kv_command(kv_client *c, size_t argc, const kv_arg *argv)
{
    if (argc == 0)
        return;
    const cmd *k = find_command(&argv[0]);
    if (!k) {
        unknown(c, argc, argv);
        return;
    }
    if ((k->arity > 0 && argc != (size_t)k->arity) || (k->arity < 0 && argc < (size_t)-k->arity)) {
        reply_errorf(c->out, "ERR wrong number of arguments for '%s' command", k->name);
        return;
    }
    k->fn(c, argc, argv);
}
