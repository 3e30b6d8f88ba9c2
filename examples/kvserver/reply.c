/* RESP2 reply encoding into a growable buffer (reply.h). */
#include "reply.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void buf_free(kv_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

int buf_reserve(kv_buf *b, size_t extra)
{
    if (b->oom)
        return 0;
    if (b->cap - b->len >= extra)
        return 1;
    size_t want = b->len + extra;
    if (want < b->len) {
        b->oom = 1;
        return 0;
    }
    size_t cap = b->cap ? b->cap : 256;
    while (cap < want)
        cap = cap * 2 > cap ? cap * 2 : want;
    char *d = realloc(b->data, cap);
    if (!d) {
        b->oom = 1;
        return 0;
    }
    b->data = d;
    b->cap = cap;
    return 1;
}

void buf_append(kv_buf *b, const void *p, size_t n)
{
    if (n == 0 || !buf_reserve(b, n))
        return;
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

void buf_consume(kv_buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

/* "<c><v>\r\n" for a prefix character and a signed number. */
static void prefixed_ll(kv_buf *b, char c, long long v)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%c%lld\r\n", c, v);
    buf_append(b, tmp, (size_t)n);
}

void reply_simple(kv_buf *b, const char *s)
{
    size_t n = strlen(s);
    if (!buf_reserve(b, n + 3))
        return;
    b->data[b->len++] = '+';
    memcpy(b->data + b->len, s, n);
    b->len += n;
    memcpy(b->data + b->len, "\r\n", 2);
    b->len += 2;
}

void reply_error(kv_buf *b, const char *msg)
{
    size_t n = strlen(msg);
    if (!buf_reserve(b, n + 3))
        return;
    b->data[b->len++] = '-';
    for (size_t i = 0; i < n; i++)
        b->data[b->len++] = (msg[i] == '\r' || msg[i] == '\n') ? ' ' : msg[i];
    memcpy(b->data + b->len, "\r\n", 2);
    b->len += 2;
}

void reply_errorf(kv_buf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    reply_error(b, tmp);
}

void reply_int(kv_buf *b, long long v)
{
    prefixed_ll(b, ':', v);
}

void reply_bulk(kv_buf *b, const void *p, size_t n)
{
    prefixed_ll(b, '$', (long long)n);
    buf_append(b, p, n);
    buf_append(b, "\r\n", 2);
}

void reply_bulk_cstr(kv_buf *b, const char *s)
{
    reply_bulk(b, s, strlen(s));
}

void reply_null(kv_buf *b)
{
    buf_append(b, "$-1\r\n", 5);
}

void reply_array(kv_buf *b, long long n)
{
    prefixed_ll(b, '*', n);
}
