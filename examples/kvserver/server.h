/* Process-wide settings and counters of the server, read by INFO. */
#ifndef KV_SERVER_H
#define KV_SERVER_H

#include <stdatomic.h>
#include <stdint.h>

typedef struct kv_options {
    int port;         /* 0: any free port (printed on the "ready" line) */
    int threads;      /* worker threads; default: one per CPU */
    int pin;          /* pin worker i to CPU i % ncpu */
    int gc_enabled;
    int gc_freeze;    /* frt_gc_freeze() once start-up is done */
    long gc_threshold[3];
    int verbose;
    int maxclients;   /* clients served at once; more are told so and closed */
} kv_options;

typedef struct kv_counters {
    _Atomic uint64_t connections_total;
    _Atomic long clients;             /* accepted and not closed yet (in a worker or on the way) */
    _Atomic uint64_t commands_total;
    _Atomic uint64_t protocol_errors;
    _Atomic uint64_t rejected_limits; /* clients closed for a query or reply buffer over its limit */
    _Atomic uint64_t rejected_connections; /* turned away: maxclients, or out of file descriptors */
} kv_counters;

extern kv_options kv_opts;
extern kv_counters kv_count;
extern int kv_bound_port;
extern int64_t kv_start_ms;

#endif
