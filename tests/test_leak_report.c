/* The leak report (issue 14, item 10): frt_shutdown with objects still
 * alive lists them on stderr by type, with counts and a few addresses, in
 * a debug build or with FRT_LEAKS=1; FRT_LEAKS=0 silences it. Each case
 * runs in a child whose stderr the parent reads. */
#include <frt/frt.h>
#include <sys/wait.h>

#include "test_util.h"

#define NTYPES 40 /* more types than the report lists one by one */

static frt_type leaky_type = {"test.leaky", sizeof(frt_object) + 16, NULL, NULL, NULL, NULL};
static frt_type other_type = {"test.other", sizeof(frt_object), NULL, NULL, NULL, NULL};
static frt_type many_types[NTYPES];
static char many_names[NTYPES][16];

enum { LEAK_NONE, LEAK_SOME, LEAK_MANY_TYPES };

/* In the child: leak what `what` says, shut down, exit with the count. */
static void child(int what, const char *env)
{
    if (env)
        setenv("FRT_LEAKS", env, 1);
    else
        unsetenv("FRT_LEAKS");
    CHECK_EQ(frt_init(NULL), 0);
    frt_object *keep = frt_new(&leaky_type); /* freed: not reported */
    int expect = 0;
    if (what == LEAK_SOME) {
        for (int i = 0; i < 5; i++)
            CHECK(frt_new(&leaky_type));
        for (int i = 0; i < 2; i++)
            CHECK(frt_new(&other_type));
        expect = 7;
    } else if (what == LEAK_MANY_TYPES) {
        for (int i = 0; i < NTYPES; i++) {
            snprintf(many_names[i], sizeof many_names[i], "test.t%d", i);
            many_types[i] = (frt_type){many_names[i], sizeof(frt_object), NULL, NULL, NULL, NULL};
            CHECK(frt_new(&many_types[i]));
        }
        expect = NTYPES;
    }
    frt_object *immortal = frt_new(&other_type);
    frt_set_immortal(immortal); /* by design, not a leak */
    frt_decref(keep);
    CHECK_EQ(frt_shutdown(), expect);
    fflush(stderr);
    _exit(0);
}

/* Run a child; its stderr into buf. */
static void run(int what, const char *env, char *buf, size_t cap)
{
    int p[2];
    CHECK_EQ(pipe(p), 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        dup2(p[1], 2);
        close(p[1]);
        child(what, env);
    }
    close(p[1]);
    size_t len = 0;
    ssize_t n;
    while (len + 1 < cap && (n = read(p[0], buf + len, cap - 1 - len)) > 0)
        len += (size_t)n;
    buf[len] = 0;
    close(p[0]);
    int status;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "child (case %d, FRT_LEAKS=%s) failed; its stderr:\n%s", what, env ? env : "unset",
                buf);
        exit(1);
    }
}

static int has(const char *buf, const char *s)
{
    return strstr(buf, s) != NULL;
}

int main(void)
{
    test_watchdog("test_leak_report", 120);
    static char out[16384];

    /* FRT_LEAKS=1: the report, in any build. */
    run(LEAK_SOME, "1", out, sizeof out);
    CHECK(has(out, "frt: 7 objects still alive at shutdown"));
    CHECK(has(out, "frt:   5 x 'test.leaky' ("));
    CHECK(has(out, "frt:   2 x 'test.other' ("));
    CHECK(strstr(out, "'test.leaky'") < strstr(out, "'test.other'")); /* largest group first */
    CHECK(has(out, " ...\n"));                                          /* 5 objects, 3 addresses */
    CHECK(has(out, "at 0x"));

    /* FRT_LEAKS=0: silent, in any build. */
    run(LEAK_SOME, "0", out, sizeof out);
    CHECK(!has(out, "still alive"));

    /* Unset: the debug build reports, the others do not. */
    run(LEAK_SOME, NULL, out, sizeof out);
    CHECK_EQ(has(out, "frt: 7 objects still alive at shutdown"), FRT_DEBUG);

    /* Nothing alive (the immortal object aside): nothing to say. */
    run(LEAK_NONE, "1", out, sizeof out);
    CHECK(!has(out, "still alive"));

    /* More types than lines: the rest summed on one line. */
    run(LEAK_MANY_TYPES, "1", out, sizeof out);
    CHECK(has(out, "frt: 40 objects still alive at shutdown"));
    CHECK(has(out, "frt:   8 more of other types"));

    TEST_PASS("test_leak_report");
    return 0;
}
