/* libFuzzer target over the RESP parser (resp.c).
 *
 * Each input is fed the way a connection feeds the parser: in chunks whose
 * sizes come from the input's first byte, with the buffer copied to a new
 * allocation between calls (so stale pointers would be caught by ASan),
 * and commands consumed one after another. Checked on every command: the
 * arguments lie inside the bytes given and inside the command, the command
 * consumed at least one byte, and parsing the same bytes in one piece gives
 * the same commands. Small limits make the limit paths reachable. */
#include "resp.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct result {
    int code;
    size_t consumed, argc;
    uint64_t sum; /* a digest of the arguments */
} result;

static uint64_t digest(const resp_parser *p, const char *cmd)
{
    uint64_t h = 1469598103934665603ull ^ p->argc;
    for (size_t i = 0; i < p->argc; i++) {
        h = (h ^ p->argv[i].len) * 1099511628211ull;
        for (size_t j = 0; j < p->argv[i].len; j++)
            h = (h ^ (unsigned char)cmd[p->argv[i].off + j]) * 1099511628211ull;
    }
    return h;
}

static void check_command(const resp_parser *p, size_t avail)
{
    if (p->consumed == 0 || p->consumed > avail)
        abort();
    for (size_t i = 0; i < p->argc; i++)
        if (p->argv[i].off > p->consumed || p->argv[i].len > p->consumed - p->argv[i].off)
            abort();
}

static void limits(resp_parser *p)
{
    p->max_bulk = 64;
    p->max_args = 16;
    p->max_inline = 128;
}

/* Parse data all at once, recording up to cap results. */
static size_t whole(const uint8_t *data, size_t size, result *out, size_t cap)
{
    resp_parser p;
    resp_parser_init(&p);
    limits(&p);
    size_t pos = 0, n = 0;
    while (n < cap) {
        int r = resp_parse(&p, (const char *)data + pos, size - pos);
        out[n].code = r;
        if (r != RESP_COMMAND) {
            n++;
            break;
        }
        check_command(&p, size - pos);
        out[n].consumed = p.consumed;
        out[n].argc = p.argc;
        out[n].sum = digest(&p, (const char *)data + pos);
        n++;
        pos += p.consumed;
    }
    resp_parser_free(&p);
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = (size_t)(data[0] % 16) + 1;
    data++;
    size--;

    enum { CAP = 256 };
    result ref[CAP];
    size_t nref = whole(data, size, ref, CAP);

    resp_parser p;
    resp_parser_init(&p);
    limits(&p);
    size_t start = 0, have = 0, n = 0; /* command start, bytes fed so far */
    char *buf = NULL;
    while (n < nref) {
        size_t more = have + step <= size ? have + step : size;
        size_t len = more - start;
        free(buf);
        buf = malloc(len ? len : 1); /* a fresh copy: the parser keeps no pointers */
        if (!buf)
            abort();
        memcpy(buf, data + start, len);
        int r = resp_parse(&p, buf, len);
        if (r == RESP_INCOMPLETE) {
            if (more == size) {
                if (ref[n].code != RESP_INCOMPLETE)
                    abort(); /* chunked parsing stalled where whole parsing did not */
                break;
            }
            have = more;
            continue;
        }
        if (r != ref[n].code)
            abort();
        if (r != RESP_COMMAND)
            break;
        check_command(&p, len);
        if (p.consumed != ref[n].consumed || p.argc != ref[n].argc || digest(&p, buf) != ref[n].sum)
            abort();
        start += p.consumed;
        have = start > more ? start : more;
        if (have > size)
            abort();
        n++;
    }
    free(buf);
    resp_parser_free(&p);
    return 0;
}
