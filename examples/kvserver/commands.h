/* The command table: each Redis command the server knows, run against the
 * key space, writing its reply into the client's output buffer. Called
 * from a worker thread (attached to frt), with no lock held. */
#ifndef KV_COMMANDS_H
#define KV_COMMANDS_H

#include "reply.h"

#include <stddef.h>
#include <stdint.h>

typedef struct kv_arg {
    const char *p;
    size_t n;
} kv_arg;

typedef struct kv_client {
    kv_buf *out;
    uint64_t id;
    int close_after; /* QUIT: close once the reply is written */
} kv_client;

void kv_command(kv_client *c, size_t argc, const kv_arg *argv);

#endif
