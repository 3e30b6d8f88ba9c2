/* Unit tests of the RESP parser (resp.c) and the reply encoders (reply.c):
 * whole commands, every way to split them, pipelines, inline commands,
 * every protocol error Redis names, and the limits checked before any
 * allocation. Prints one line per group and exits non-zero on a failure. */
#include "reply.h"
#include "resp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;

#define CHECK(cond)                                                                                           \
    do {                                                                                                      \
        if (!(cond)) {                                                                                        \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);                          \
            failures++;                                                                                       \
        }                                                                                                     \
    } while (0)

static int arg_eq(const resp_parser *p, const char *buf, size_t i, const char *want)
{
    return i < p->argc && p->argv[i].len == strlen(want) && memcmp(buf + p->argv[i].off, want, strlen(want)) == 0;
}

/* Parse one complete command from s; returns the result code. */
static int parse_all(resp_parser *p, const char *s, size_t len)
{
    resp_parser_reset(p);
    return resp_parse(p, s, len);
}

static void test_multibulk(void)
{
    resp_parser p;
    resp_parser_init(&p);
    const char *s = "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n";
    CHECK(parse_all(&p, s, strlen(s)) == RESP_COMMAND);
    CHECK(p.argc == 3 && p.consumed == strlen(s));
    CHECK(arg_eq(&p, s, 0, "SET") && arg_eq(&p, s, 1, "key") && arg_eq(&p, s, 2, "value"));

    /* Binary-safe: NUL, CR and LF inside a bulk string; an empty string. */
    const char bin[] = "*2\r\n$5\r\na\0\r\nb\r\n$0\r\n\r\n";
    size_t blen = sizeof bin - 1;
    CHECK(parse_all(&p, bin, blen) == RESP_COMMAND);
    CHECK(p.argc == 2 && p.argv[0].len == 5 && memcmp(bin + p.argv[0].off, "a\0\r\nb", 5) == 0);
    CHECK(p.argv[1].len == 0 && p.consumed == blen);

    /* *0 and *-1 are empty commands: consumed, no arguments. */
    CHECK(parse_all(&p, "*0\r\n", 4) == RESP_COMMAND && p.argc == 0 && p.consumed == 4);
    CHECK(parse_all(&p, "*-1\r\n", 5) == RESP_COMMAND && p.argc == 0 && p.consumed == 5);
    resp_parser_free(&p);
    printf("multibulk: ok\n");
}

/* Every split point of a command gives INCOMPLETE until the last byte,
 * then the same result as the whole; and feeding one byte at a time works
 * with a buffer that moves between calls. */
static void test_splits(void)
{
    const char *s = "*4\r\n$4\r\nMSET\r\n$1\r\nk\r\n$10\r\n0123456789\r\n$0\r\n\r\n";
    size_t n = strlen(s);
    resp_parser p;
    resp_parser_init(&p);
    for (size_t cut = 0; cut < n; cut++) {
        resp_parser_reset(&p);
        CHECK(resp_parse(&p, s, cut) == RESP_INCOMPLETE);
        CHECK(resp_parse(&p, s, n) == RESP_COMMAND);
        CHECK(p.argc == 4 && p.consumed == n && arg_eq(&p, s, 2, "0123456789"));
    }
    resp_parser_reset(&p);
    char *moving = NULL;
    int r = RESP_INCOMPLETE;
    for (size_t len = 1; len <= n; len++) {
        free(moving);
        moving = malloc(len);
        memcpy(moving, s, len);
        r = resp_parse(&p, moving, len);
        CHECK(len == n ? r == RESP_COMMAND : r == RESP_INCOMPLETE);
    }
    CHECK(r == RESP_COMMAND && arg_eq(&p, moving, 0, "MSET") && arg_eq(&p, moving, 3, ""));
    free(moving);
    resp_parser_free(&p);
    printf("splits: ok (%zu cut points, byte-at-a-time with a moving buffer)\n", n);
}

/* 10,000 pipelined commands in one buffer parse one after another. */
static void test_pipeline(void)
{
    const char *one = "*2\r\n$4\r\nINCR\r\n$7\r\ncounter\r\n";
    size_t ol = strlen(one), count = 10000;
    char *buf = malloc(ol * count + 6);
    for (size_t i = 0; i < count; i++)
        memcpy(buf + i * ol, one, ol);
    memcpy(buf + ol * count, "PING\r\n", 6);
    size_t len = ol * count + 6, pos = 0, cmds = 0, incrs = 0, pings = 0;
    resp_parser p;
    resp_parser_init(&p);
    for (;;) {
        int r = resp_parse(&p, buf + pos, len - pos);
        if (r != RESP_COMMAND)
            break;
        CHECK(p.argc >= 1);
        incrs += p.argc == 2 && arg_eq(&p, buf + pos, 0, "INCR") && arg_eq(&p, buf + pos, 1, "counter");
        pings += p.argc == 1 && arg_eq(&p, buf + pos, 0, "PING");
        cmds++;
        pos += p.consumed;
    }
    CHECK(cmds == count + 1 && pos == len);
    CHECK(incrs == count && pings == 1);
    resp_parser_free(&p);
    free(buf);
    printf("pipeline: ok (%zu commands)\n", cmds);
}

static void test_inline(void)
{
    resp_parser p;
    resp_parser_init(&p);
    const char *s = "  set\tfoo   bar \r\n";
    CHECK(parse_all(&p, s, strlen(s)) == RESP_COMMAND);
    CHECK(p.argc == 3 && arg_eq(&p, s, 0, "set") && arg_eq(&p, s, 1, "foo") && arg_eq(&p, s, 2, "bar"));
    CHECK(p.consumed == strlen(s));
    CHECK(parse_all(&p, "PING\n", 5) == RESP_COMMAND && p.argc == 1 && p.consumed == 5);
    CHECK(parse_all(&p, "\r\n", 2) == RESP_COMMAND && p.argc == 0 && p.consumed == 2);
    CHECK(parse_all(&p, "PING", 4) == RESP_INCOMPLETE);
    CHECK(resp_parse(&p, "PING\r", 5) == RESP_INCOMPLETE);
    CHECK(resp_parse(&p, "PING\r\n", 6) == RESP_COMMAND && p.argc == 1);
    resp_parser_free(&p);
    printf("inline: ok\n");
}

static void expect_error(const char *input, size_t len, const char *msg)
{
    resp_parser p;
    resp_parser_init(&p);
    int r = resp_parse(&p, input, len);
    CHECK(r == RESP_ERROR);
    if (r == RESP_ERROR && strcmp(p.error, msg) != 0) {
        fprintf(stderr, "wanted error \"%s\", got \"%s\"\n", msg, p.error);
        failures++;
    }
    CHECK(resp_parse(&p, input, len) == RESP_ERROR); /* stays in error */
    resp_parser_free(&p);
}

static void test_errors(void)
{
    expect_error("*abc\r\n", 6, "Protocol error: invalid multibulk length");
    expect_error("*1x\r\n", 5, "Protocol error: invalid multibulk length");
    expect_error("*+1\r\n", 5, "Protocol error: invalid multibulk length");
    expect_error("*01\r\n", 5, "Protocol error: invalid multibulk length");
    expect_error("*\r\n", 3, "Protocol error: invalid multibulk length");
    expect_error("*1\rx", 4, "Protocol error: invalid multibulk length");
    expect_error("*99999999999999999999999\r\n", 26, "Protocol error: invalid multibulk length");
    expect_error("*1048577\r\n", 10, "Protocol error: invalid multibulk length"); /* over 1M arguments */
    expect_error("*1\r\n:5\r\n", 8, "Protocol error: expected '$', got ':'");
    expect_error("*1\r\n\x01", 5, "Protocol error: expected '$', got '\\x01'");
    expect_error("*1\r\n$-1\r\n", 9, "Protocol error: invalid bulk length");
    expect_error("*1\r\n$abc\r\n", 10, "Protocol error: invalid bulk length");
    expect_error("*1\r\n$536870913\r\n", 16, "Protocol error: invalid bulk length"); /* 512 MiB + 1 */
    expect_error("*1\r\n$999999999999\r\n", 19, "Protocol error: invalid bulk length");
    expect_error("*1\r\n$3\r\nabcXY", 13, "Protocol error: expected CRLF after bulk string");
    printf("errors: ok\n");
}

/* The limits are checked from the header alone: a 512 MiB bulk is
 * accepted as a header (INCOMPLETE, nothing allocated for it), one byte
 * more is refused; long header and inline lines are refused at 64 KiB. */
static void test_limits(void)
{
    resp_parser p;
    resp_parser_init(&p);
    const char *max = "*1\r\n$536870912\r\n";
    CHECK(resp_parse(&p, max, strlen(max)) == RESP_INCOMPLETE);
    CHECK(resp_need(&p, strlen(max)) == (size_t)536870912 + 2);
    resp_parser_free(&p);

    size_t big = RESP_MAX_INLINE_DEFAULT + 10;
    char *s = malloc(big);
    memset(s, 'a', big);
    expect_error(s, big, "Protocol error: too big inline request");
    s[0] = '*';
    memset(s + 1, '1', big - 1);
    expect_error(s, big, "Protocol error: too big mbulk count string");
    memcpy(s, "*1\r\n$", 5);
    expect_error(s, big, "Protocol error: too big bulk count string");
    free(s);

    /* A declared 1M-argument command reserves nothing up front. */
    resp_parser_init(&p);
    CHECK(resp_parse(&p, "*1048576\r\n", 10) == RESP_INCOMPLETE && p.cap == 0);
    resp_parser_free(&p);

    /* Custom, smaller limits. */
    resp_parser_init(&p);
    p.max_bulk = 4;
    CHECK(resp_parse(&p, "*1\r\n$5\r\n", 8) == RESP_ERROR);
    resp_parser_free(&p);
    printf("limits: ok\n");
}

static void test_string2ll(void)
{
    long long v;
    CHECK(resp_string2ll("0", 1, &v) && v == 0);
    CHECK(resp_string2ll("-42", 3, &v) && v == -42);
    CHECK(resp_string2ll("9223372036854775807", 19, &v) && v == 9223372036854775807LL);
    CHECK(resp_string2ll("-9223372036854775808", 20, &v) && v == (-9223372036854775807LL - 1));
    CHECK(!resp_string2ll("9223372036854775808", 19, &v));
    CHECK(!resp_string2ll("-0", 2, &v) && !resp_string2ll("007", 3, &v) && !resp_string2ll("", 0, &v));
    CHECK(!resp_string2ll(" 1", 2, &v) && !resp_string2ll("1 ", 2, &v) && !resp_string2ll("+1", 2, &v));
    printf("string2ll: ok\n");
}

static void test_replies(void)
{
    kv_buf b = {0};
    reply_simple(&b, "OK");
    reply_error(&b, "ERR bad\r\nthing");
    reply_int(&b, -7);
    reply_bulk(&b, "a\0b", 3);
    reply_null(&b);
    reply_array(&b, 2);
    const char want[] = "+OK\r\n-ERR bad  thing\r\n:-7\r\n$3\r\na\0b\r\n$-1\r\n*2\r\n";
    CHECK(b.len == sizeof want - 1 && memcmp(b.data, want, b.len) == 0);
    buf_consume(&b, 5);
    CHECK(b.len == sizeof want - 6 && b.data[0] == '-');
    buf_free(&b);
    printf("replies: ok\n");
}

int main(void)
{
    test_multibulk();
    test_splits();
    test_pipeline();
    test_inline();
    test_errors();
    test_limits();
    test_string2ll();
    test_replies();
    if (failures) {
        printf("test_resp: %d failures\n", failures);
        return 1;
    }
    printf("test_resp: all passed\n");
    return 0;
}
