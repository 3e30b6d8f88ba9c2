/* frt_config (issue 14, item 12): a config that frt_config_default did not
 * fill is refused with FRT_EINVAL (and, in a debug build, reported as
 * misuse), instead of a zeroed struct silently meaning "collector off, no
 * thresholds, no arena cache". A filled one, changed field by field, is
 * taken as given, zeros included. */
#include <frt/frt.h>
#include <signal.h>

#include "test_util.h"

static frt_type cell_type = {"test.cell", sizeof(frt_object) + sizeof(frt_object *), NULL, NULL, NULL, NULL};

static int init_refused(void *arg)
{
    int rc = frt_init(arg);
    return rc == FRT_EINVAL && !frt_is_initialized() && frt_init(NULL) == 0 && frt_shutdown() == 0 ? 0 : 1;
}

/* In a child: frt_init(cfg) must fail with FRT_EINVAL and leave the runtime
 * down (release), or abort with one misuse line naming frt_init (debug). */
static void expect_refused(frt_config *cfg, const char *what)
{
    char buf[2048];
    int status = test_run_child(init_refused, cfg, buf, sizeof buf);
    int ok = FRT_DEBUG ? WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT &&
                             strstr(buf, "frt: misuse: frt_init with a config not filled by frt_config_default")
                       : WIFEXITED(status) && WEXITSTATUS(status) == 0 && !strstr(buf, "misuse");
    if (!ok) {
        fprintf(stderr, "test_config: %s: not refused as documented (status %d):\n%s\n", what, status, buf);
        exit(1);
    }
}

int main(void)
{
    test_watchdog("test_config", 60);

    frt_config zero;
    memset(&zero, 0, sizeof zero);
    expect_refused(&zero, "a zeroed config");
    frt_config partial = {.gc_threshold = {700, 10, 10}, .gc_enabled = 1, .arena_cache = 4};
    expect_refused(&partial, "a config built field by field");

    /* From the defaults: taken as given. */
    frt_config cfg;
    frt_config_default(&cfg);
    CHECK_EQ(cfg.version, FRT_CONFIG_VERSION);
    CHECK_EQ(cfg.gc_enabled, 1);
    CHECK_EQ(cfg.gc_threshold[0], 700);
    CHECK_EQ(cfg.arena_cache, 4);
    CHECK_EQ(frt_init(&cfg), 0);
    CHECK_EQ(frt_gc_isenabled(), 1);
    CHECK_EQ(frt_shutdown(), 0);

    /* A zero set on purpose means what it says. */
    cfg.gc_enabled = 0;
    cfg.gc_threshold[0] = 0;
    CHECK_EQ(frt_init(&cfg), 0);
    CHECK_EQ(frt_gc_isenabled(), 0);
    size_t t[3] = {1, 1, 1};
    frt_gc_get_threshold(t);
    CHECK_EQ(t[0], 0);
    frt_object *o = frt_new(&cell_type);
    CHECK(o);
    frt_decref(o);
    CHECK_EQ(frt_shutdown(), 0);

    CHECK_EQ(frt_init(NULL), 0); /* NULL: the defaults */
    CHECK_EQ(frt_gc_isenabled(), 1);
    CHECK_EQ(frt_shutdown(), 0);
    TEST_PASS("test_config");
    return 0;
}
