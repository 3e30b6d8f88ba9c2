/* Callbacks of a target's weakrefs, and its finalizers, run newest first
 * however much the weakref table has grown since they were registered
 * (issue 14, item 4: each resize used to reverse the chains, so a target
 * whose shard had grown an odd number of times called back oldest first).
 *
 * A target's weakrefs sit in one of 64 shards, and which shard grows how
 * often depends on addresses, so the test uses many targets: with the old
 * code some of them are certain to have their order flipped. */
#include <frt/frt.h>

#include "test_util.h"

#define TARGETS 32
#define PER_TARGET 3

static frt_type plain_type = {"test.plain", sizeof(frt_object), NULL, NULL, NULL, NULL};

static int ran[TARGETS][PER_TARGET], nran[TARGETS];

static void note(intptr_t tag)
{
    int t = (int)(tag / PER_TARGET);
    CHECK(nran[t] < PER_TARGET);
    ran[t][nran[t]++] = (int)(tag % PER_TARGET);
}

static void on_clear(frt_weakref *wr, void *ctx)
{
    (void)wr;
    note((intptr_t)ctx);
}

static void on_finalize(void *ctx)
{
    note((intptr_t)ctx);
}

/* Register PER_TARGET callbacks on each of TARGETS objects, then `others`
 * weakrefs to other objects (growing the table), then drop the targets:
 * each target's callbacks must run 2, 1, 0. */
static void run(int finalizers, int others)
{
    memset(nran, 0, sizeof nran);
    frt_object *target[TARGETS];
    frt_weakref *wr[TARGETS][PER_TARGET];
    frt_finalizer *fin[TARGETS][PER_TARGET];
    for (int t = 0; t < TARGETS; t++) {
        target[t] = frt_new(&plain_type);
        CHECK(target[t]);
        for (int i = 0; i < PER_TARGET; i++) {
            void *tag = (void *)(intptr_t)(t * PER_TARGET + i);
            if (finalizers) {
                fin[t][i] = frt_finalizer_new(target[t], on_finalize, tag);
                CHECK(fin[t][i]);
            } else {
                wr[t][i] = frt_weakref_new(target[t], on_clear, tag);
                CHECK(wr[t][i]);
            }
        }
    }
    frt_object **obj = malloc((size_t)others * sizeof *obj);
    frt_weakref **owr = malloc((size_t)others * sizeof *owr);
    CHECK(obj && owr);
    for (int k = 0; k < others; k++) {
        obj[k] = frt_new(&plain_type);
        CHECK(obj[k]);
        owr[k] = frt_weakref_new(obj[k], NULL, NULL);
        CHECK(owr[k]);
    }
    for (int t = 0; t < TARGETS; t++) {
        frt_decref(target[t]);
        CHECK_EQ(nran[t], PER_TARGET);
        for (int i = 0; i < PER_TARGET; i++)
            CHECK_EQ(ran[t][i], PER_TARGET - 1 - i);
    }
    for (int t = 0; t < TARGETS; t++)
        for (int i = 0; i < PER_TARGET; i++) {
            if (finalizers)
                frt_finalizer_free(fin[t][i]);
            else
                frt_decref(frt_weakref_object(wr[t][i]));
        }
    for (int k = 0; k < others; k++) {
        frt_decref(frt_weakref_object(owr[k]));
        frt_decref(obj[k]);
    }
    free(obj);
    free(owr);
}

int main(void)
{
    test_watchdog("test_weakref_order", 120);
    /* Fresh tables each time (frt_shutdown frees them): 2,000 others grow
     * a shard once or twice, 20,000 four or five times. */
    int sizes[] = {0, 2000, 20000};
    for (int finalizers = 0; finalizers < 2; finalizers++)
        for (unsigned s = 0; s < sizeof sizes / sizeof *sizes; s++) {
            CHECK_EQ(frt_init(NULL), 0);
            run(finalizers, SCALED(sizes[s]));
            CHECK_EQ(frt_shutdown(), 0);
        }
    TEST_PASS("test_weakref_order");
    return 0;
}
