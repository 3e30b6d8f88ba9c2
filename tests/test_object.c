/* The object model on one thread: creation, counting, destroy, finalize on
 * a plain last decref (PEP 442), immortals, bad input, init/shutdown. */
#include <errno.h>
#include <string.h>

#include <frt/frt.h>

#include "check.h"

typedef struct node {
    frt_object ob;
    struct node *child;
    int value;
} node;

static int destroyed, finalized;
static frt_object *resurrect_into;

static void node_destroy(frt_object *self)
{
    node *n = (node *)self;
    destroyed++;
    if (n->child)
        frt_decref(&n->child->ob);
}

static void node_finalize(frt_object *self)
{
    finalized++;
    if (resurrect_into == NULL && ((node *)self)->value == 42)
        resurrect_into = frt_newref(self);
}

static const frt_type node_type = {"node", sizeof(node), NULL, NULL, NULL, node_destroy};
static const frt_type fin_type = {"fin", sizeof(node), NULL, NULL, node_finalize, node_destroy};

static void test_lifecycle(void)
{
    CHECK_EQ(frt_shutdown(), FRT_ESTATE);
    CHECK_EQ(frt_thread_attach(), FRT_ESTATE);
    CHECK_EQ(frt_init(NULL), 0);
    CHECK_EQ(frt_init(NULL), FRT_EALREADY);
    CHECK_EQ(frt_thread_attach(), FRT_EALREADY);
    CHECK(frt_is_initialized());
    CHECK(frt_thread_is_attached());
    frt_config cfg;
    frt_config_default(&cfg);
    CHECK_EQ(cfg.gc_threshold[0], 700);
    CHECK_EQ(cfg.gc_threshold[1], 10);
    CHECK_EQ(cfg.gc_threshold[2], 10);
    CHECK_EQ(cfg.gc_enabled, 1);
    CHECK_EQ(frt_shutdown(), 0);
    CHECK(!frt_is_initialized());
    CHECK(!frt_thread_is_attached());
}

static void test_counting(void)
{
    CHECK_EQ(frt_init(NULL), 0);
    destroyed = 0;
    node *a = (node *)frt_new(&node_type);
    CHECK(a);
    CHECK(frt_typeof(&a->ob) == &node_type);
    CHECK_EQ(frt_refcount(&a->ob), 1);
    CHECK(frt_is_owned(&a->ob));
    CHECK_EQ(a->value, 0);
    CHECK(a->child == NULL);
    for (int i = 0; i < 1000; i++)
        frt_incref(&a->ob);
    CHECK_EQ(frt_refcount(&a->ob), 1001);
    for (int i = 0; i < 1000; i++)
        frt_decref(&a->ob);
    CHECK_EQ(frt_refcount(&a->ob), 1);
    CHECK(frt_newref(&a->ob) == &a->ob);
    frt_xdecref(&a->ob);
    frt_xincref(NULL);
    frt_xdecref(NULL);
    CHECK_EQ(destroyed, 0);
    frt_decref(&a->ob);
    CHECK_EQ(destroyed, 1);

    /* a chain: destroy drops the child */
    node *head = NULL;
    for (int i = 0; i < 100; i++) {
        node *n = (node *)frt_new(&node_type);
        n->child = head;
        head = n;
    }
    destroyed = 0;
    frt_decref(&head->ob);
    CHECK_EQ(destroyed, 100);

    /* make_shared: the owner gives its bias up; counts stay exact */
    node *s = (node *)frt_new(&node_type);
    frt_incref(&s->ob);
    CHECK_EQ(frt_make_shared(&s->ob), 0);
    CHECK_EQ(frt_make_shared(&s->ob), FRT_EALREADY);
    CHECK(!frt_is_owned(&s->ob));
    CHECK_EQ(frt_refcount(&s->ob), 2);
    frt_decref(&s->ob);
    CHECK_EQ(frt_refcount(&s->ob), 1);
    destroyed = 0;
    frt_decref(&s->ob);
    CHECK_EQ(destroyed, 1);
    CHECK_EQ(frt_shutdown(), 0);
}

static void test_var_and_sizes(void)
{
    CHECK_EQ(frt_init(NULL), 0);
    node *v = (node *)frt_new_var(&node_type, 1000);
    CHECK(v);
    unsigned char *extra = (unsigned char *)(v + 1);
    for (int i = 0; i < 1000; i++)
        CHECK_EQ(extra[i], 0);
    memset(extra, 0xab, 1000);
    frt_decref(&v->ob);
    /* a large object, mapped on its own */
    node *big = (node *)frt_new_var(&node_type, 1 << 20);
    CHECK(big);
    CHECK(((uintptr_t)big & 63) == 0);
    frt_heap_stats st;
    frt_heap_get_stats(&st);
    CHECK_EQ(st.large_objects, 1);
    frt_decref(&big->ob);
    frt_heap_get_stats(&st);
    CHECK_EQ(st.large_objects, 0);
    CHECK_EQ(frt_shutdown(), 0);
}

static void test_finalize(void)
{
    CHECK_EQ(frt_init(NULL), 0);
    finalized = destroyed = 0;
    node *f = (node *)frt_new(&fin_type);
    frt_decref(&f->ob);
    CHECK_EQ(finalized, 1);
    CHECK_EQ(destroyed, 1);

    /* resurrection: finalize stores a reference; the object lives on and is
     * never finalized again */
    finalized = destroyed = 0;
    node *r = (node *)frt_new(&fin_type);
    r->value = 42;
    frt_decref(&r->ob);
    CHECK_EQ(finalized, 1);
    CHECK_EQ(destroyed, 0);
    CHECK(resurrect_into == &r->ob);
    CHECK_EQ(frt_refcount(&r->ob), 1);
    CHECK_EQ(r->value, 42);
    frt_decref(resurrect_into);
    CHECK_EQ(finalized, 1);
    CHECK_EQ(destroyed, 1);
    CHECK_EQ(frt_shutdown(), 0);
}

static void test_immortal_and_leaks(void)
{
    CHECK_EQ(frt_init(NULL), 0);
    destroyed = 0;
    node *im = (node *)frt_new(&node_type);
    frt_set_immortal(&im->ob);
    CHECK(frt_is_immortal(&im->ob));
    for (int i = 0; i < 10; i++)
        frt_decref(&im->ob);
    frt_incref(&im->ob);
    CHECK_EQ(destroyed, 0);
    /* two leaked objects: shutdown reports them (immortals are not leaks) */
    CHECK(frt_new(&node_type));
    CHECK(frt_new(&node_type));
    CHECK_EQ(frt_shutdown(), 2);
    CHECK_EQ(destroyed, 0);
}

static void test_bad_input(void)
{
    CHECK(strstr(frt_strerror(FRT_ENOMEM), "FRT_ENOMEM"));
    CHECK(strstr(frt_strerror(FRT_EINVAL), "FRT_EINVAL"));
    CHECK(strstr(frt_strerror(FRT_ESTATE), "FRT_ESTATE"));
    CHECK(strstr(frt_strerror(FRT_EALREADY), "FRT_EALREADY"));
    CHECK(frt_strerror(-99));
#if !FRT_DEBUG
    /* unattached: NULL and errno, no crash */
    CHECK(frt_new(&node_type) == NULL);
    CHECK_EQ(frt_init(NULL), 0);
    static const frt_type tiny = {"tiny", 8, NULL, NULL, NULL, NULL};
    errno = 0;
    CHECK(frt_new(&tiny) == NULL);
    CHECK_EQ(errno, EINVAL);
    CHECK(frt_new(NULL) == NULL);
    CHECK(frt_new_var(&node_type, SIZE_MAX) == NULL);
    CHECK(frt_typeof(NULL) == NULL);
    CHECK_EQ(frt_refcount(NULL), 0);
    CHECK_EQ(frt_make_shared(NULL), FRT_EINVAL);
    CHECK_EQ(frt_shutdown(), 0);
#endif
}

int main(void)
{
    test_lifecycle();
    test_counting();
    test_var_and_sizes();
    test_finalize();
    test_immortal_and_leaks();
    test_bad_input();
    TEST_PASS("test_object");
    return 0;
}
