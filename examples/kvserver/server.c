/* frt-kvserver: a multithreaded in-memory key-value server on frt, speaking
 * enough RESP2 for redis-cli and redis-benchmark.
 *
 * Threads:
 *   main      frt_init, then the listener: epoll over the listening socket
 *             and a signalfd; accepted sockets go round-robin to workers
 *             through a pipe each, those beyond --maxclients are told and
 *             closed (listener.c). On SIGINT/SIGTERM: stop, join, drop the
 *             key space, frt_shutdown; exit status 0 only if it returns 0.
 *   workers   one per CPU by default (--threads N), pinned (--no-pin to not);
 *             each runs its own epoll loop over its connections: read,
 *             parse (resp.c), run commands (commands.c), write.
 *   sweeper   removes expired keys every 100 ms (keyspace.c).
 *
 * Every thread that touches frt objects is attached, and every wait is a
 * blocking section: epoll_wait, poll, pthread_join, and contended slot
 * locks (frt critical sections park as blocked threads). A collection (automatic, or FRT.COLLECT) therefore
 * never waits for an idle worker; busy workers reach a safepoint at every
 * frt_new, at frt_safepoint every 64 commands of a pipelined batch, and
 * once per loop. */
#define _GNU_SOURCE
#include "commands.h"
#include "intcache.h"
#include "keyspace.h"
#include "listener.h"
#include "reply.h"
#include "resp.h"
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <frt/frt.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

kv_options kv_opts;
kv_counters kv_count;
int kv_bound_port;
int64_t kv_start_ms;

#define READ_CHUNK 16384                  /* free space offered to each read */
#define OUT_PAUSE ((size_t)1 << 20)       /* pending output above this: stop reading and executing */
#define QUERY_MAX ((size_t)1 << 30)       /* one command may not exceed 1 GiB (Redis's client-query-buffer-limit) */
#define SAFEPOINT_EVERY 64                /* commands between safepoints in a pipelined batch */

static atomic_int stopping;

typedef struct worker worker;

typedef struct conn {
    int fd;
    uint64_t id;
    struct conn *prev, *next;
    worker *w;
    kv_buf in;       /* the current command starts at in.data + in_start */
    size_t in_start;
    kv_buf out;      /* unsent replies from out.data + out_sent */
    size_t out_sent;
    resp_parser parser;
    kv_arg *argv;
    size_t argv_cap;
    uint32_t events; /* what epoll watches now */
    int closing;     /* flush what is pending, then close */
} conn;

struct worker {
    int index;
    pthread_t thread;
    int epfd;
    int pipe_rd, pipe_wr; /* the listener writes accepted fds here */
    conn *conns;
    int cpu;              /* -1: not pinned */
};

static worker *workers;
static int sweeper_pipe[2];
static _Atomic uint64_t next_client_id = 1;

/* ---- connections ----------------------------------------------------------- */

static size_t pending_out(const conn *c)
{
    return c->out.len - c->out_sent;
}

/* The end of an accepted client's life: kv_count.clients counts it from
 * the listener's accept (so that maxclients holds for those still in the
 * pipe to a worker) to here. */
static void client_gone(int fd)
{
    close(fd);
    atomic_fetch_sub(&kv_count.clients, 1);
}

static void conn_close(conn *c)
{
    epoll_ctl(c->w->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    client_gone(c->fd);
    if (c->prev)
        c->prev->next = c->next;
    else
        c->w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    buf_free(&c->in);
    buf_free(&c->out);
    resp_parser_free(&c->parser);
    free(c->argv);
    free(c);
}

static void conn_new(worker *w, int fd)
{
    conn *c = calloc(1, sizeof *c);
    if (!c) {
        client_gone(fd);
        return;
    }
    c->fd = fd;
    c->id = atomic_fetch_add(&next_client_id, 1);
    c->w = w;
    resp_parser_init(&c->parser);
    c->events = EPOLLIN;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        resp_parser_free(&c->parser);
        free(c);
        client_gone(fd);
        return;
    }
    c->next = w->conns;
    if (w->conns)
        w->conns->prev = c;
    w->conns = c;
    atomic_fetch_add(&kv_count.connections_total, 1);
}

/* Parse and run the complete commands in the input buffer. Returns 1 when
 * it stopped because too much output is pending (the caller flushes and
 * calls again), 0 otherwise. */
static int conn_process(conn *c)
{
    int paused = 0;
    uint64_t ran = 0;
    while (!c->closing) {
        if (pending_out(c) > OUT_PAUSE) {
            paused = 1;
            break;
        }
        const char *cmd = c->in.data + c->in_start;
        size_t avail = c->in.len - c->in_start;
        int r = resp_parse(&c->parser, cmd, avail);
        if (r == RESP_INCOMPLETE) {
            if (avail > QUERY_MAX) {
                atomic_fetch_add(&kv_count.rejected_limits, 1);
                reply_error(&c->out, "ERR Protocol error: query buffer limit exceeded");
                c->closing = 1;
            }
            break;
        }
        if (r != RESP_COMMAND) {
            /* Redis's behaviour: the error reply, then close. */
            atomic_fetch_add(&kv_count.protocol_errors, 1);
            if (r == RESP_ERROR)
                reply_errorf(&c->out, "ERR %s", c->parser.error);
            else
                reply_error(&c->out, "ERR out of memory");
            c->closing = 1;
            break;
        }
        size_t argc = c->parser.argc;
        if (argc > c->argv_cap) {
            size_t cap = c->argv_cap ? c->argv_cap : 16;
            while (cap < argc)
                cap *= 2;
            kv_arg *a = realloc(c->argv, cap * sizeof *a);
            if (!a) {
                reply_error(&c->out, "ERR out of memory");
                c->closing = 1;
                break;
            }
            c->argv = a;
            c->argv_cap = cap;
        }
        for (size_t i = 0; i < argc; i++) {
            c->argv[i].p = cmd + c->parser.argv[i].off;
            c->argv[i].n = c->parser.argv[i].len;
        }
        kv_client cl = {&c->out, c->id, 0};
        kv_command(&cl, argc, c->argv);
        c->in_start += c->parser.consumed;
        if (cl.close_after)
            c->closing = 1;
        if (argc && (++ran % SAFEPOINT_EVERY) == 0)
            frt_safepoint(); /* 10,000 pipelined commands must not delay a stop-the-world */
    }
    if (ran)
        atomic_fetch_add_explicit(&kv_count.commands_total, ran, memory_order_relaxed);
    /* Compact: keep the command in progress at the start of the buffer. The
     * parser's offsets are relative to the command, so moving is fine. */
    if (c->in_start == c->in.len) {
        c->in.len = c->in_start = 0;
        if (c->in.cap > ((size_t)1 << 20)) { /* do not keep a big buffer for an idle client */
            buf_free(&c->in);
        }
    } else if (c->in_start > 0 && (c->in_start >= c->in.cap / 2 || c->in.cap - c->in.len < READ_CHUNK)) {
        buf_consume(&c->in, c->in_start);
        c->in_start = 0;
    }
    return paused;
}

/* Write what is pending and set the epoll interest. Returns -1 if the
 * connection was closed (c is freed). */
static int conn_flush(conn *c)
{
    if (c->out.oom)
        goto dead;
    while (pending_out(c) > 0) {
        ssize_t n = send(c->fd, c->out.data + c->out_sent, pending_out(c), MSG_NOSIGNAL);
        if (n > 0) {
            c->out_sent += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        } else {
            goto dead;
        }
    }
    if (pending_out(c) == 0) {
        c->out.len = c->out_sent = 0;
        if (c->out.cap > ((size_t)1 << 20))
            buf_free(&c->out);
        if (c->closing)
            goto dead;
    } else if (c->out_sent > c->out.cap / 2) {
        buf_consume(&c->out, c->out_sent);
        c->out_sent = 0;
    }
    uint32_t want = (!c->closing && pending_out(c) <= OUT_PAUSE ? EPOLLIN : 0) | (pending_out(c) ? EPOLLOUT : 0);
    if (want != c->events) {
        struct epoll_event ev = {.events = want, .data.ptr = c};
        if (epoll_ctl(c->w->epfd, EPOLL_CTL_MOD, c->fd, &ev) != 0)
            goto dead;
        c->events = want;
    }
    return 0;
dead:
    conn_close(c);
    return -1;
}

static void conn_run(conn *c)
{
    for (;;) {
        int paused = conn_process(c);
        if (conn_flush(c) < 0)
            return;
        if (!paused || pending_out(c) > OUT_PAUSE)
            return;
    }
}

static void conn_readable(conn *c)
{
    /* Offer at least READ_CHUNK bytes, or what the bulk string in progress
     * still needs (capped: the buffer grows as the bytes really arrive). */
    size_t want = resp_need(&c->parser, c->in.len - c->in_start);
    if (want < READ_CHUNK)
        want = READ_CHUNK;
    if (want > ((size_t)4 << 20))
        want = (size_t)4 << 20;
    if (!buf_reserve(&c->in, want)) {
        conn_close(c);
        return;
    }
    ssize_t n = read(c->fd, c->in.data + c->in.len, c->in.cap - c->in.len);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        conn_close(c); /* the client went away, possibly mid-command: its partial input goes with it */
        return;
    }
    if (n > 0)
        c->in.len += (size_t)n;
    conn_run(c);
}

/* ---- workers ---------------------------------------------------------------- */

static void take_new_connections(worker *w)
{
    int fds[64];
    for (;;) {
        ssize_t n = read(w->pipe_rd, fds, sizeof fds);
        if (n <= 0)
            return;
        for (ssize_t i = 0; i < n / (ssize_t)sizeof(int); i++) {
            if (atomic_load(&stopping))
                client_gone(fds[i]);
            else
                conn_new(w, fds[i]);
        }
    }
}

static void pin(worker *w)
{
    if (w->cpu < 0)
        return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(w->cpu, &set);
    if (pthread_setaffinity_np(pthread_self(), sizeof set, &set) != 0 && kv_opts.verbose)
        fprintf(stderr, "kvserver: could not pin worker %d to CPU %d\n", w->index, w->cpu);
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    pin(w);
    if (frt_thread_attach() != 0) {
        fprintf(stderr, "kvserver: worker %d: frt_thread_attach failed\n", w->index);
        return NULL;
    }
    struct epoll_event ev[64];
    while (!atomic_load(&stopping)) {
        /* The wait touches no frt object: a blocking section, so a
         * stop-the-world proceeds without this thread, and objects other
         * threads queue to it are merged on its behalf meanwhile. */
        frt_blocking_begin();
        int n = epoll_wait(w->epfd, ev, 64, 100);
        frt_blocking_end();
        for (int i = 0; i < n; i++) {
            conn *c = ev[i].data.ptr;
            if (!c) {
                take_new_connections(w);
                continue;
            }
            if (ev[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                conn_readable(c);
            else if (ev[i].events & EPOLLOUT)
                conn_run(c);
        }
        /* Merges objects other threads queued to this one, and takes back
         * blocks they freed into this worker's heap (heap stats count those
         * as in use until then). */
        frt_safepoint();
    }
    while (w->conns)
        conn_close(w->conns);
    take_new_connections(w); /* closes whatever the listener still sent */
    frt_thread_detach();
    return NULL;
}

static void *sweeper_main(void *arg)
{
    if (frt_thread_attach() != 0)
        return NULL;
    struct pollfd p = {.fd = sweeper_pipe[0], .events = POLLIN};
    while (!atomic_load(&stopping)) {
        frt_blocking_begin();
        int r = poll(&p, 1, 100);
        frt_blocking_end();
        if (r != 0 || atomic_load(&stopping))
            break;
        ks_sweep(); /* drops values that workers made, from this thread */
    }
    frt_thread_detach();
    return NULL;
}

/* ---- options ----------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: frt-kvserver [options]\n"
            "  --port N            listen on 127.0.0.1:N (default 6390; 0: any free port)\n"
            "  --threads N         worker threads (default: one per CPU)\n"
            "  --no-pin            do not pin workers to CPUs\n"
            "  --gc-threshold T0[,T1,T2]  collector thresholds (default 700,10,10; T0=0: no automatic runs)\n"
            "  --no-gc             start with automatic collection disabled\n"
            "  --gc-freeze         frt_gc_freeze() once start-up is done\n"
            "  --maxclients N      clients served at once (default 10000, lowered to fit RLIMIT_NOFILE);\n"
            "                      more get \"-ERR max number of clients reached\" and are closed\n"
            "  --verbose           log connections and shutdown details to stderr\n");
}

static int parse_options(int argc, char **argv)
{
    kv_opts.port = 6390;
    kv_opts.threads = 0;
    kv_opts.pin = 1;
    kv_opts.gc_enabled = 1;
    kv_opts.gc_threshold[0] = -1;
    static const struct option longopts[] = {
        {"port", required_argument, NULL, 'p'},      {"threads", required_argument, NULL, 't'},
        {"no-pin", no_argument, NULL, 'P'},          {"gc-threshold", required_argument, NULL, 'g'},
        {"no-gc", no_argument, NULL, 'G'},           {"gc-freeze", no_argument, NULL, 'F'},
        {"verbose", no_argument, NULL, 'v'},         {"help", no_argument, NULL, 'h'},
        {"maxclients", required_argument, NULL, 'm'},
        {NULL, 0, NULL, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "p:t:hv", longopts, NULL)) != -1) {
        char *end;
        switch (o) {
        case 'p':
            kv_opts.port = (int)strtol(optarg, &end, 10);
            if (*end || kv_opts.port < 0 || kv_opts.port > 65535)
                return -1;
            break;
        case 't':
            kv_opts.threads = (int)strtol(optarg, &end, 10);
            if (*end || kv_opts.threads < 1 || kv_opts.threads > 1024)
                return -1;
            break;
        case 'P':
            kv_opts.pin = 0;
            break;
        case 'g': {
            long t[3] = {700, 10, 10};
            int n = sscanf(optarg, "%ld,%ld,%ld", &t[0], &t[1], &t[2]);
            if (n < 1 || t[0] < 0 || t[1] < 0 || t[2] < 0)
                return -1;
            memcpy(kv_opts.gc_threshold, t, sizeof t);
            break;
        }
        case 'G':
            kv_opts.gc_enabled = 0;
            break;
        case 'F':
            kv_opts.gc_freeze = 1;
            break;
        case 'v':
            kv_opts.verbose = 1;
            break;
        case 'm':
            kv_opts.maxclients = (int)strtol(optarg, &end, 10);
            if (*end || kv_opts.maxclients < 1 || kv_opts.maxclients > 1000000)
                return -1;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            return -1;
        }
    }
    return optind == argc ? 0 : -1;
}

/* ---- the listener (main thread) ------------------------------------------------ */

static int listen_on(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 511) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        close(fd);
        return -1;
    }
    kv_bound_port = ntohs(a.sin_port);
    return fd;
}

static int cpus_allowed(int *list, int max)
{
    cpu_set_t set;
    int n = 0;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        for (int i = 0; i < CPU_SETSIZE && n < max; i++)
            if (CPU_ISSET(i, &set))
                list[n++] = i;
    if (n == 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        for (int i = 0; i < (c > 0 ? c : 1) && n < max; i++)
            list[n++] = i;
    }
    return n;
}

/* A client the listener accepted: to the next worker, round-robin. */
static void admit(int fd, void *arg)
{
    int *next = arg;
    atomic_fetch_add(&kv_count.clients, 1);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    worker *w = &workers[(*next)++ % kv_opts.threads];
    if (write(w->pipe_wr, &fd, sizeof fd) != (ssize_t)sizeof fd)
        client_gone(fd);
}

int main(int argc, char **argv)
{
    if (parse_options(argc, argv) != 0) {
        usage(stderr);
        return 2;
    }
    static int cpu_list[CPU_SETSIZE];
    int ncpu = cpus_allowed(cpu_list, CPU_SETSIZE);
    if (kv_opts.threads == 0)
        kv_opts.threads = ncpu;
    /* Our own descriptors: stdio, the listening socket, signalfd, epoll,
     * the sweeper's pipe, the spare, and per worker an epoll and a pipe. */
    kv_opts.maxclients = kv_maxclients_fit(kv_opts.maxclients, 9 + 3 * kv_opts.threads);

    frt_config cfg;
    frt_config_default(&cfg);
    if (kv_opts.gc_threshold[0] >= 0)
        for (int i = 0; i < 3; i++)
            cfg.gc_threshold[i] = (size_t)kv_opts.gc_threshold[i];
    cfg.gc_enabled = kv_opts.gc_enabled;
    int rc = frt_init(&cfg);
    if (rc != 0) {
        fprintf(stderr, "kvserver: frt_init: %s\n", frt_strerror(rc));
        return 1;
    }
    kv_start_ms = kv_now_ms();
    if (ks_init() != 0) {
        fprintf(stderr, "kvserver: out of memory\n");
        return 1;
    }
    intcache_init();

    /* Signals: blocked in every thread (the threads inherit the mask), read
     * from a signalfd by the listener. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    int sfd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);
    int lfd = listen_on(kv_opts.port);
    int epfd = epoll_create1(EPOLL_CLOEXEC);
    kv_listener listener;
    if (sfd < 0 || lfd < 0 || epfd < 0 || pipe2(sweeper_pipe, O_CLOEXEC) != 0 ||
        kv_listener_init(&listener, lfd, epfd) != 0) {
        fprintf(stderr, "kvserver: cannot listen on 127.0.0.1:%d: %s\n", kv_opts.port, strerror(errno));
        return 1;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = sfd};
    epoll_ctl(epfd, EPOLL_CTL_ADD, sfd, &ev);

    workers = calloc((size_t)kv_opts.threads, sizeof *workers);
    for (int i = 0; i < kv_opts.threads; i++) {
        worker *w = &workers[i];
        int p[2];
        w->index = i;
        w->cpu = kv_opts.pin ? cpu_list[i % ncpu] : -1;
        w->epfd = epoll_create1(EPOLL_CLOEXEC);
        if (w->epfd < 0 || pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0) {
            fprintf(stderr, "kvserver: worker setup: %s\n", strerror(errno));
            return 1;
        }
        w->pipe_rd = p[0];
        w->pipe_wr = p[1];
        struct epoll_event pev = {.events = EPOLLIN, .data.ptr = NULL};
        epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->pipe_rd, &pev);
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            fprintf(stderr, "kvserver: cannot start worker %d\n", i);
            return 1;
        }
    }
    pthread_t sweeper;
    pthread_create(&sweeper, NULL, sweeper_main, NULL);
    if (kv_opts.gc_freeze)
        frt_gc_freeze(); /* whatever start-up built is never examined again */

    printf("kvserver: ready on 127.0.0.1:%d, %d worker threads%s, maxclients %d\n", kv_bound_port,
           kv_opts.threads, kv_opts.pin ? " (pinned)" : "", kv_opts.maxclients);
    fflush(stdout);

    int next = 0, sig = 0;
    while (!sig) {
        struct epoll_event evs[8];
        frt_blocking_begin();
        int n = epoll_wait(epfd, evs, 8, kv_listener_timeout(&listener));
        frt_blocking_end();
        kv_listener_tick(&listener);
        for (int i = 0; i < n; i++) {
            if (evs[i].data.fd == sfd) {
                struct signalfd_siginfo si;
                if (read(sfd, &si, sizeof si) == (ssize_t)sizeof si)
                    sig = (int)si.ssi_signo;
                continue;
            }
            kv_listener_accept(&listener, admit, &next);
        }
    }

    /* Shutdown: stop the threads, drop every reference we hold, and let
     * frt_shutdown count what is left. */
    printf("kvserver: %s: shutting down\n", strsignal(sig));
    fflush(stdout);
    atomic_store(&stopping, 1);
    close(lfd);
    close(listener.spare);
    for (int i = 0; i < kv_opts.threads; i++)
        close(workers[i].pipe_wr); /* wakes the worker's epoll_wait */
    if (write(sweeper_pipe[1], "x", 1) != 1)
        perror("kvserver: waking the sweeper");
    frt_blocking_begin();
    for (int i = 0; i < kv_opts.threads; i++)
        pthread_join(workers[i].thread, NULL);
    pthread_join(sweeper, NULL);
    frt_blocking_end();
    for (int i = 0; i < kv_opts.threads; i++) {
        close(workers[i].pipe_rd);
        close(workers[i].epfd);
    }
    free(workers);

    size_t keys, expires;
    ks_counts(&keys, &expires);
    ks_destroy();     /* the key space's references: values made by workers that have left */
    intcache_clear(); /* weakrefs whose targets are gone: their callbacks emptied most slots */
    long found = frt_gc_collect(-1);
    int alive = frt_shutdown();
    printf("kvserver: dropped %zu keys, final collection found %ld, frt_shutdown: %d objects alive\n", keys, found,
           alive);
    fflush(stdout);
    close(epfd);
    close(sfd);
    close(sweeper_pipe[0]);
    close(sweeper_pipe[1]);
    return alive == 0 ? 0 : 1;
}
