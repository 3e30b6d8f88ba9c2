/* The RESP2 request parser: bytes in, commands out.
 *
 * Pure: no frt, no I/O, no globals. The caller owns the input buffer; the
 * parser remembers how far it got in the current command, so feeding it the
 * same command again with more bytes appended costs only the new bytes (a
 * 512 MiB value that arrives in 64 KiB reads is not re-scanned). Arguments
 * are returned as offsets from the start of the command, so the caller may
 * move its buffer (compact, realloc) between calls.
 *
 * Two request forms, as Redis accepts them:
 *   multibulk  *<argc>\r\n then argc times $<len>\r\n<len bytes>\r\n
 *   inline     words separated by spaces or tabs, ended by \n (or \r\n)
 *
 * Limits are checked before anything is allocated: a declared argument
 * count above max_args or a bulk length above max_bulk is refused from the
 * header alone, so a client cannot make the server reserve memory it never
 * sends. Error messages are Redis's own ("Protocol error: invalid bulk
 * length"); after one the connection must be closed, as Redis does. */
#ifndef KV_RESP_H
#define KV_RESP_H

#include <stddef.h>

#define RESP_MAX_BULK_DEFAULT ((size_t)512 * 1024 * 1024) /* Redis proto-max-bulk-len */
#define RESP_MAX_ARGS_DEFAULT ((size_t)1024 * 1024)       /* Redis's multibulk limit */
#define RESP_MAX_INLINE_DEFAULT ((size_t)64 * 1024)       /* inline line, and a header line */

enum {
    RESP_INCOMPLETE = 0, /* need more bytes; call again with the same start and more data */
    RESP_COMMAND = 1,    /* a whole command: argc/argv/consumed are set (argc may be 0) */
    RESP_ERROR = -1,     /* malformed: p->error says why; close the connection */
    RESP_NOMEM = -2      /* the argument array could not grow */
};

typedef struct resp_arg {
    size_t off; /* from the start of the command */
    size_t len;
} resp_arg;

typedef struct resp_parser {
    /* limits, set by resp_parser_init; the caller may change them */
    size_t max_bulk, max_args, max_inline;

    /* the command in progress (private) */
    int kind;          /* 0 nothing yet, '*' multibulk, 'i' inline */
    int done;          /* the last call returned RESP_COMMAND: the next one starts afresh */
    size_t pos;        /* bytes of the command parsed so far */
    size_t want;       /* multibulk: declared argument count */
    long long bulk;    /* length from the current $ header, -1 before it */
    size_t scan;       /* inline: bytes already searched for the newline */

    /* results */
    size_t argc;
    resp_arg *argv;
    size_t cap;
    size_t consumed;   /* RESP_COMMAND: bytes the command took */
    const char *error; /* RESP_ERROR: the message, without the "-ERR " prefix */
    char errbuf[64];   /* holds error when it names a byte of the input */
} resp_parser;

void resp_parser_init(resp_parser *p);
void resp_parser_free(resp_parser *p);

/* Parse the command that starts at buf (len bytes available). Until it
 * returns RESP_COMMAND, later calls must pass the same command start (the
 * same bytes, possibly moved, with more appended). After RESP_COMMAND the
 * next call parses a new command, which begins consumed bytes further on.
 * After RESP_ERROR the parser stays in error until resp_parser_reset. */
int resp_parse(resp_parser *p, const char *buf, size_t len);

/* Forget the command in progress (keeps the limits and the argv array). */
void resp_parser_reset(resp_parser *p);

/* How many more bytes the command in progress needs at least (0 if
 * unknown): a hint for sizing the next read. */
size_t resp_need(const resp_parser *p, size_t len);

/* Redis's string2ll: an optional '-', digits, no leading zeros, no
 * spaces, fits in a long long. 1 and *out on success, 0 otherwise. Used
 * for the headers, and by the server for INCR and friends. */
int resp_string2ll(const char *s, size_t n, long long *out);

#endif
