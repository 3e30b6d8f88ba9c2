/* A large object is not committed until written (issue 14, item 7):
 * frt_new_var of 256 MiB used to write zeros over its whole mapping, which
 * the OS had already zeroed, and so cost 256 MiB of resident memory before
 * the program touched a byte. Its body still reads as zeros, and a small
 * object made in a reused block is still zeroed. */
#include <frt/frt.h>

#include "test_util.h"

#define BIG ((size_t)256 << 20)

static frt_type blob_type = {"test.blob", sizeof(frt_object), NULL, NULL, NULL, NULL};

static long resident_pages(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    CHECK(f);
    long size = 0, resident = 0;
    CHECK_EQ(fscanf(f, "%ld %ld", &size, &resident), 2);
    fclose(f);
    return resident;
}

int main(void)
{
    test_watchdog("test_large_fresh", 120);
    CHECK_EQ(frt_init(NULL), 0);
    long page = sysconf(_SC_PAGESIZE);

    long before = resident_pages();
    frt_object *o = frt_new_var(&blob_type, BIG);
    CHECK(o);
    long grown = (resident_pages() - before) * page;
    fprintf(stderr, "test_large_fresh: 256 MiB object, resident memory +%ld KiB\n", grown / 1024);
    CHECK(grown < (long)(BIG / 16)); /* was the whole 256 MiB */

    /* Zero where it is read: one byte per page, every 64th page (reading an
     * untouched page maps the shared zero page, committing nothing). */
    const unsigned char *body = (const unsigned char *)(o + 1);
    for (size_t off = 0; off < BIG; off += (size_t)page * 64)
        CHECK_EQ(body[off], 0);
    CHECK_EQ(body[BIG - 1], 0);
    frt_decref(o);

    /* Small blocks are reused: a new object there must still be zeroed. */
    frt_object *s = frt_new_var(&blob_type, 200);
    CHECK(s);
    memset(s + 1, 0xab, 200);
    frt_decref(s);
    for (int i = 0; i < 64; i++) {
        frt_object *t = frt_new_var(&blob_type, 200);
        CHECK(t);
        const unsigned char *b = (const unsigned char *)(t + 1);
        for (int k = 0; k < 200; k++)
            CHECK_EQ(b[k], 0);
        frt_decref(t);
    }
    CHECK_EQ(frt_shutdown(), 0);
    TEST_PASS("test_large_fresh");
    return 0;
}
