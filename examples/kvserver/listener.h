/* Accepting clients: the maxclients limit, and running out of file
 * descriptors without spinning. */
#ifndef KV_LISTENER_H
#define KV_LISTENER_H

#define KV_MAXCLIENTS_DEFAULT 10000
#define KV_MAXCLIENTS_ERROR "-ERR max number of clients reached\r\n"

/* The effective maxclients for `requested` (0: the default): at most the
 * file descriptor limit less what the server needs for itself (`own_fds`
 * plus a reserve), raising the soft limit toward the hard one first, as
 * Redis does. Says so on stderr when it had to lower it. */
int kv_maxclients_fit(int requested, int own_fds);

typedef struct kv_listener {
    int fd;      /* the listening socket */
    int epfd;    /* the epoll set it is watched in */
    int spare;   /* an fd held back for EMFILE/ENFILE; -1 when lost */
    long paused_until_ms; /* 0: watched */
} kv_listener;

/* Start watching lfd in epfd (data.fd = lfd) and put the spare fd aside. */
int kv_listener_init(kv_listener *l, int lfd, int epfd);

/* Accept everything pending. A client beyond maxclients (counted in
 * kv_count.clients) gets KV_MAXCLIENTS_ERROR and is closed; so is one
 * accepted on the spare fd when the process is out of descriptors. The
 * others go to admit(fd, arg), which owns them from then on (and counts
 * them). If no descriptor could be found at all, the listener pauses for a
 * moment instead of letting level-triggered epoll wake it again at once. */
void kv_listener_accept(kv_listener *l, void (*admit)(int fd, void *arg), void *arg);

/* epoll_wait's timeout: -1, or the time left until a paused listener is
 * watched again. Then kv_listener_tick resumes it once that time is up. */
int kv_listener_timeout(const kv_listener *l);
void kv_listener_tick(kv_listener *l);

#endif
