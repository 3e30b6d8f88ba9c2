/* The RESP2 request parser (resp.h). No frt, no I/O: unit-tested by
 * test_resp.c and fuzzed by fuzz_resp.c. */
#include "resp.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void resp_parser_init(resp_parser *p)
{
    memset(p, 0, sizeof *p);
    p->max_bulk = RESP_MAX_BULK_DEFAULT;
    p->max_args = RESP_MAX_ARGS_DEFAULT;
    p->max_inline = RESP_MAX_INLINE_DEFAULT;
    p->bulk = -1;
}

void resp_parser_free(resp_parser *p)
{
    free(p->argv);
    p->argv = NULL;
    p->cap = 0;
    resp_parser_reset(p);
}

void resp_parser_reset(resp_parser *p)
{
    p->kind = 0;
    p->done = 0;
    p->pos = 0;
    p->want = 0;
    p->bulk = -1;
    p->scan = 0;
    p->argc = 0;
    p->consumed = 0;
    p->error = NULL;
}

size_t resp_need(const resp_parser *p, size_t len)
{
    if (p->kind == '*' && p->bulk >= 0) {
        size_t end = p->pos + (size_t)p->bulk + 2;
        return end > len ? end - len : 0;
    }
    return 0;
}

/* Redis's string2ll rules: an optional '-', then digits without leading
 * zeros ("0" itself is fine, "-0" is not), no sign '+', no spaces, and the
 * value must fit in a long long. */
int resp_string2ll(const char *s, size_t n, long long *out)
{
    if (n == 0 || n > 20)
        return 0;
    int neg = 0;
    size_t i = 0;
    if (s[0] == '-') {
        neg = 1;
        i = 1;
        if (n == 1)
            return 0;
    }
    if (s[i] == '0')
        return (n == 1) ? (*out = 0, 1) : 0;
    unsigned long long v = 0;
    for (; i < n; i++) {
        unsigned d = (unsigned char)s[i] - '0';
        if (d > 9)
            return 0;
        if (v > (ULLONG_MAX - d) / 10)
            return 0;
        v = v * 10 + d;
    }
    if (neg) {
        if (v > (unsigned long long)LLONG_MAX + 1)
            return 0;
        *out = v == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN : -(long long)v;
    } else {
        if (v > (unsigned long long)LLONG_MAX)
            return 0;
        *out = (long long)v;
    }
    return 1;
}

static int fail(resp_parser *p, const char *msg)
{
    p->error = msg;
    return RESP_ERROR;
}

static int push_arg(resp_parser *p, size_t off, size_t len)
{
    if (p->argc == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 16;
        resp_arg *a = realloc(p->argv, cap * sizeof *a);
        if (!a)
            return 0;
        p->argv = a;
        p->cap = cap;
    }
    p->argv[p->argc].off = off;
    p->argv[p->argc].len = len;
    p->argc++;
    return 1;
}

/* Find the "\r\n" that ends a header line starting at from (just after the
 * '*' or '$'). Returns 1 with *cr at the '\r', 0 when more bytes are
 * needed, -1 when the line is over the limit, -2 for a '\r' not followed by
 * '\n'. */
static int header_end(const resp_parser *p, const char *buf, size_t len, size_t from, size_t *cr)
{
    size_t avail = len - from;
    size_t span = avail < p->max_inline ? avail : p->max_inline;
    const char *r = memchr(buf + from, '\r', span);
    if (!r)
        return avail > p->max_inline ? -1 : 0;
    size_t at = (size_t)(r - buf);
    if (at + 1 >= len)
        return 0;
    if (buf[at + 1] != '\n')
        return -2;
    *cr = at;
    return 1;
}

static int parse_multibulk(resp_parser *p, const char *buf, size_t len)
{
    if (p->pos == 0) {
        size_t cr;
        int h = header_end(p, buf, len, 1, &cr);
        if (h == 0)
            return RESP_INCOMPLETE;
        if (h == -1)
            return fail(p, "Protocol error: too big mbulk count string");
        long long n;
        if (h == -2 || !resp_string2ll(buf + 1, cr - 1, &n) || (n > 0 && (unsigned long long)n > p->max_args))
            return fail(p, "Protocol error: invalid multibulk length");
        p->pos = cr + 2;
        if (n <= 0) { /* "*0" and "*-1": an empty command, skipped */
            p->want = 0;
            p->consumed = p->pos;
            p->done = 1;
            return RESP_COMMAND;
        }
        p->want = (size_t)n;
    }
    while (p->argc < p->want) {
        if (p->bulk < 0) {
            if (p->pos >= len)
                return RESP_INCOMPLETE;
            unsigned char c = (unsigned char)buf[p->pos];
            if (c != '$') {
                if (c >= 0x20 && c < 0x7f)
                    snprintf(p->errbuf, sizeof p->errbuf, "Protocol error: expected '$', got '%c'", c);
                else
                    snprintf(p->errbuf, sizeof p->errbuf, "Protocol error: expected '$', got '\\x%02x'", c);
                return fail(p, p->errbuf);
            }
            size_t cr;
            int h = header_end(p, buf, len, p->pos + 1, &cr);
            if (h == 0)
                return RESP_INCOMPLETE;
            if (h == -1)
                return fail(p, "Protocol error: too big bulk count string");
            long long n;
            if (h == -2 || !resp_string2ll(buf + p->pos + 1, cr - p->pos - 1, &n) || n < 0 ||
                (unsigned long long)n > p->max_bulk)
                return fail(p, "Protocol error: invalid bulk length");
            p->bulk = n;
            p->pos = cr + 2;
        }
        size_t blen = (size_t)p->bulk;
        if (len - p->pos < blen + 2)
            return RESP_INCOMPLETE;
        if (buf[p->pos + blen] != '\r' || buf[p->pos + blen + 1] != '\n')
            return fail(p, "Protocol error: expected CRLF after bulk string");
        if (!push_arg(p, p->pos, blen))
            return RESP_NOMEM;
        p->pos += blen + 2;
        p->bulk = -1;
    }
    p->consumed = p->pos;
    p->done = 1;
    return RESP_COMMAND;
}

static int parse_inline(resp_parser *p, const char *buf, size_t len)
{
    const char *nl = memchr(buf + p->scan, '\n', len - p->scan);
    if (!nl) {
        p->scan = len;
        if (len > p->max_inline)
            return fail(p, "Protocol error: too big inline request");
        return RESP_INCOMPLETE;
    }
    size_t end = (size_t)(nl - buf);
    if (end > p->max_inline)
        return fail(p, "Protocol error: too big inline request");
    size_t stop = (end > 0 && buf[end - 1] == '\r') ? end - 1 : end;
    size_t i = 0;
    while (i < stop) {
        while (i < stop && (buf[i] == ' ' || buf[i] == '\t'))
            i++;
        if (i == stop)
            break;
        size_t start = i;
        while (i < stop && buf[i] != ' ' && buf[i] != '\t')
            i++;
        if (!push_arg(p, start, i - start))
            return RESP_NOMEM;
    }
    p->consumed = end + 1;
    p->done = 1;
    return RESP_COMMAND;
}

int resp_parse(resp_parser *p, const char *buf, size_t len)
{
    if (p->error)
        return RESP_ERROR;
    if (p->done)
        resp_parser_reset(p);
    if (p->kind == 0) {
        if (len == 0)
            return RESP_INCOMPLETE;
        p->kind = buf[0] == '*' ? '*' : 'i';
    }
    return p->kind == '*' ? parse_multibulk(p, buf, len) : parse_inline(p, buf, len);
}
