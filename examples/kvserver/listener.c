/* Accepting clients without ever spinning.
 *
 * The listening socket is level-triggered in the listener's epoll set: as
 * long as a connection waits in the backlog, epoll_wait returns at once.
 * So every wake-up must take the waiting connections off the backlog, even
 * those the server will not serve. Two cases:
 *   - more clients than maxclients: accept, send the error, close (Redis);
 *   - no file descriptor left (EMFILE, ENFILE): the spare descriptor held
 *     for this is closed, the connection accepted into its slot, told, and
 *     closed, and the spare taken again (the libev/nginx trick). If even
 *     that fails, the listener leaves the epoll set for PAUSE_MS. */
#define _GNU_SOURCE
#include "listener.h"
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RESERVED_FDS 32 /* Redis's CONFIG_MIN_RESERVED_FDS: logs, libraries, a spare */
#define PAUSE_MS 100

int kv_maxclients_fit(int requested, int own_fds)
{
    long want = requested > 0 ? requested : KV_MAXCLIENTS_DEFAULT;
    long need = want + own_fds + RESERVED_FDS;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return (int)want;
    if (rl.rlim_cur != RLIM_INFINITY && (rlim_t)need > rl.rlim_cur) {
        struct rlimit up = rl;
        up.rlim_cur = rl.rlim_max == RLIM_INFINITY || (rlim_t)need < rl.rlim_max ? (rlim_t)need : rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &up) == 0)
            rl = up;
    }
    if (rl.rlim_cur != RLIM_INFINITY && (rlim_t)need > rl.rlim_cur) {
        long fit = (long)rl.rlim_cur - own_fds - RESERVED_FDS;
        if (fit < 1)
            fit = 1;
        fprintf(stderr,
                "kvserver: maxclients %ld lowered to %ld: the file descriptor limit (RLIMIT_NOFILE) is %ld\n",
                want, fit, (long)rl.rlim_cur);
        want = fit;
    }
    return (int)want;
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int open_spare(void)
{
    return open("/dev/null", O_RDONLY | O_CLOEXEC);
}

int kv_listener_init(kv_listener *l, int lfd, int epfd)
{
    l->fd = lfd;
    l->epfd = epfd;
    l->spare = open_spare();
    l->paused_until_ms = 0;
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
    return l->spare < 0 ? -1 : epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &ev);
}

/* Best effort: a socket just accepted has room for one short line. */
static void turn_away(int fd)
{
    ssize_t n = send(fd, KV_MAXCLIENTS_ERROR, sizeof KV_MAXCLIENTS_ERROR - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)n;
    close(fd);
    atomic_fetch_add(&kv_count.rejected_connections, 1);
}

/* Out of descriptors (which accept4 reports before it looks at the
 * backlog): use the spare to take one connection off the backlog. Returns
 * 1 if it did, 0 if the backlog was empty, -1 if the listener must pause. */
static int accept_on_spare(kv_listener *l)
{
    if (l->spare < 0)
        l->spare = open_spare(); /* maybe a descriptor came free since */
    if (l->spare < 0)
        return -1;
    close(l->spare);
    int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    int err = errno;
    if (fd >= 0)
        turn_away(fd);
    l->spare = open_spare();
    if (fd >= 0)
        return 1;
    /* Else still out of descriptors: another thread took the one we freed. */
    return err == EAGAIN || err == EWOULDBLOCK ? 0 : -1;
}

static void pause_listener(kv_listener *l)
{
    epoll_ctl(l->epfd, EPOLL_CTL_DEL, l->fd, NULL);
    l->paused_until_ms = now_ms() + PAUSE_MS;
}

void kv_listener_accept(kv_listener *l, void (*admit)(int fd, void *arg), void *arg)
{
    while (!l->paused_until_ms) {
        int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            if (atomic_load(&kv_count.clients) >= kv_opts.maxclients)
                turn_away(fd);
            else
                admit(fd, arg);
        } else if (errno == EMFILE || errno == ENFILE) {
            int r = accept_on_spare(l);
            if (r == 0)
                return;
            if (r < 0)
                pause_listener(l);
        } else if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO) {
            continue; /* that one connection, not the listener */
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return;
        } else {
            pause_listener(l); /* ENOBUFS, ENOMEM: the kernel is short, give it a moment */
        }
    }
}

int kv_listener_timeout(const kv_listener *l)
{
    if (!l->paused_until_ms)
        return -1;
    long left = l->paused_until_ms - now_ms();
    return left > 0 ? (int)left : 0;
}

void kv_listener_tick(kv_listener *l)
{
    if (!l->paused_until_ms || now_ms() < l->paused_until_ms)
        return;
    l->paused_until_ms = 0;
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = l->fd};
    epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->fd, &ev);
}
