/* A growable byte buffer and the RESP2 reply encoders that write into it.
 * Pure, like resp.h: no frt, no I/O. A failed allocation sets oom and
 * drops further output; the connection then closes. */
#ifndef KV_REPLY_H
#define KV_REPLY_H

#include <stddef.h>

typedef struct kv_buf {
    char *data;
    size_t len, cap;
    int oom;
} kv_buf;

void buf_free(kv_buf *b);
/* Make room for extra more bytes; 0 on failure (and oom set). */
int buf_reserve(kv_buf *b, size_t extra);
void buf_append(kv_buf *b, const void *p, size_t n);
/* Drop the first n bytes. */
void buf_consume(kv_buf *b, size_t n);

void reply_simple(kv_buf *b, const char *s);                 /* +s */
void reply_error(kv_buf *b, const char *msg);                /* -msg, with \r and \n made spaces */
void reply_errorf(kv_buf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
void reply_int(kv_buf *b, long long v);                      /* :v */
void reply_bulk(kv_buf *b, const void *p, size_t n);          /* $n p */
void reply_bulk_cstr(kv_buf *b, const char *s);
void reply_null(kv_buf *b);                                  /* $-1 */
void reply_array(kv_buf *b, long long n);                    /* *n (-1: null array) */

#endif
