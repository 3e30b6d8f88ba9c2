/* The leak report (issue 14, item 10): frt_shutdown with objects still
 * alive lists them on stderr by type, with counts and a few addresses, in
 * a debug build or with FRT_LEAKS=1; FRT_LEAKS=0 silences it. Each case
 * runs in a child whose stderr the parent reads. */
#include <frt/frt.h>

#include "test_util.h"

#define NTYPES 40 /* more types than the report lists one by one */

static frt_type leaky_type = {"test.leaky", sizeof(frt_object) + 16, NULL, NULL, NULL, NULL};
static frt_type other_type = {"test.other", sizeof(frt_object), NULL, NULL, NULL, NULL};
static frt_type many_types[NTYPES];
static char many_names[NTYPES][16];

enum { LEAK_NONE, LEAK_SOME, LEAK_MANY_TYPES };

typedef struct leak_case {
    int what;
    const char *env; /* FRT_LEAKS, or NULL: unset */
} leak_case;

/* In the child: leak what the case says, shut down, check the count. */
static int child(void *arg)
{
    const leak_case *c = arg;
    if (c->env)
        setenv("FRT_LEAKS", c->env, 1);
    else
        unsetenv("FRT_LEAKS");
    CHECK_EQ(frt_init(NULL), 0);
    frt_object *keep = frt_new(&leaky_type); /* freed: not reported */
    int expect = 0;
    if (c->what == LEAK_SOME) {
        for (int i = 0; i < 5; i++)
            CHECK(frt_new(&leaky_type));
        for (int i = 0; i < 2; i++)
            CHECK(frt_new(&other_type));
        expect = 7;
    } else if (c->what == LEAK_MANY_TYPES) {
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
    return 0;
}

/* Run a case in a child; its stderr into buf. */
static void run(int what, const char *env, char *buf, size_t cap)
{
    leak_case c = {what, env};
    int status = test_run_child(child, &c, buf, cap);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "child (case %d, FRT_LEAKS=%s) failed; its output:\n%s", what, env ? env : "unset", buf);
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
