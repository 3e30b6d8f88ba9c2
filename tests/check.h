/* A few assertion macros for the test programs: a failed check prints the
 * expression with its location and exits non-zero, so CTest reports it. */
#ifndef FRT_TESTS_CHECK_H
#define FRT_TESTS_CHECK_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond)                                                                    \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);   \
            exit(1);                                                                   \
        }                                                                              \
    } while (0)

#define CHECK_EQ(a, b)                                                                 \
    do {                                                                               \
        long long va_ = (long long)(a), vb_ = (long long)(b);                          \
        if (va_ != vb_) {                                                              \
            fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %s (%lld != %lld)\n",       \
                    __FILE__, __LINE__, #a, #b, va_, vb_);                             \
            exit(1);                                                                   \
        }                                                                              \
    } while (0)

/* Scale iteration counts down under sanitizers (they run 5-20x slower). */
#if defined(FRT_TEST_TSAN)
#define TEST_SCALE 10
#elif defined(FRT_TEST_ASAN)
#define TEST_SCALE 4
#else
#define TEST_SCALE 1
#endif
#define SCALED(n) ((n) / TEST_SCALE)

#define TEST_PASS(name) fprintf(stderr, "%s: ok\n", name)

#endif
