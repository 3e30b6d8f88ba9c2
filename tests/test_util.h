/* What the test programs share besides assertions: a watchdog, a clock,
 * bounded waits and thread helpers. Header-only: each test is one program. */
#ifndef FRT_TESTS_TEST_UTIL_H
#define FRT_TESTS_TEST_UTIL_H

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <frt/frt.h>

#include "check.h"

static const char *test_util_name = "test";

static void test_util_on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = ": watchdog expired: a thread is stuck (deadlock or lost wakeup)\n";
    ssize_t r = write(2, test_util_name, strlen(test_util_name));
    r = write(2, msg, sizeof msg - 1);
    (void)r;
    _exit(3);
}

/* Kill the test with a message after seconds: a hang fails, never stalls CI. */
static inline void test_watchdog(const char *name, unsigned seconds)
{
    test_util_name = name;
    signal(SIGALRM, test_util_on_alarm);
    alarm(seconds);
}

static inline uint64_t test_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline void test_sleep_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* The i-th wait of a polling loop: yield at first, then sleep briefly. */
static inline void test_pause(unsigned i)
{
    if (i < 64)
        sched_yield();
    else
        test_sleep_us(50);
}

/* Until *v >= want, at most 60 s. poll: the waiter is attached and must
 * keep reaching safepoints (a stop-the-world would wait for it). */
static inline void test_wait_at_least(_Atomic long *v, long want, int poll, const char *what)
{
    uint64_t deadline = test_now_ns() + 60ull * 1000000000u;
    for (unsigned i = 0; atomic_load(v) < want; i++) {
        if (test_now_ns() > deadline) {
            fprintf(stderr, "%s: timed out waiting for %s (%ld < %ld)\n", test_util_name, what,
                    atomic_load(v), want);
            exit(1);
        }
        if (poll)
            frt_safepoint();
        test_pause(i);
    }
}

static inline pthread_t test_spawn(void *(*fn)(void *), void *arg)
{
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, fn, arg), 0);
    return t;
}

/* Join from an attached thread: inside a blocking section, so a stop of the
 * world (or a queue merge) never waits for us while we wait. */
static inline void test_join(pthread_t t)
{
    int attached = frt_thread_is_attached();
    if (attached)
        frt_blocking_begin();
    CHECK_EQ(pthread_join(t, NULL), 0);
    if (attached)
        frt_blocking_end();
}

/* Run child(arg) in a forked process whose stdout and stderr go to out
 * (NUL-terminated, cut at cap - 1 bytes); child's return value is its exit
 * status. Returns the waitpid status: for what a debug build's abort, a
 * report on stderr or an exit code says. */
static inline int test_run_child(int (*child)(void *), void *arg, char *out, size_t cap)
{
    int fds[2];
    CHECK_EQ(pipe(fds), 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], 2);
        dup2(fds[1], 1);
        close(fds[0]);
        int rc = child(arg);
        fflush(stdout);
        fflush(stderr);
        _exit(rc);
    }
    close(fds[1]);
    size_t len = 0;
    ssize_t r;
    while (len + 1 < cap && (r = read(fds[0], out + len, cap - 1 - len)) > 0)
        len += (size_t)r;
    out[len] = 0;
    close(fds[0]);
    int status = 0;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    return status;
}

#endif
