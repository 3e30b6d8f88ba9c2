/* Misuse: each case runs in a child process. In a debug build
 * (FRT_DEBUG=ON) the child must die by abort() after printing exactly one
 * line "frt: misuse: <what>..." naming the object, its type and owner where
 * there is an object. In a release build the cases whose behaviour is
 * defined (docs/api.md "Misuse") must give their documented result;
 * the undefined ones (use after free) are only run in debug builds. */
#include <errno.h>
#include <sys/wait.h>

#include <frt/frt.h>

#include "test_util.h"

typedef struct cell {
    frt_object ob;
    frt_object *ref;
    int flip;
} cell;

static int flip_traverse(frt_object *self, frt_visit_fn visit, void *arg)
{
    cell *c = (cell *)self;
    /* A broken traverse: it reports its reference every other call. */
    if (c->flip++ & 1)
        return 0;
    return c->ref ? visit(c->ref, arg) : 0;
}

static const frt_type plain_type = {"misuse.plain", sizeof(cell), NULL, NULL, NULL, NULL};
static const frt_type flip_type = {"misuse.flip", sizeof(cell), flip_traverse, NULL, NULL, NULL};

/* ------------------------------------------------------------------ */
/* The cases. Each returns the child's exit status when it did not abort. */

static frt_object *shared_obj;

static void *over_decref(void *arg)
{
    (void)arg;
    CHECK_EQ(frt_thread_attach(), 0);
    frt_decref(shared_obj); /* queued to the owner: the count is held there */
    frt_decref(shared_obj); /* one more than this thread ever had */
    frt_thread_detach();
    return NULL;
}

static int case_decref_below_zero(void)
{
    frt_init(NULL);
    shared_obj = frt_new(&plain_type);
    CHECK_EQ(pthread_join(test_spawn(over_decref, NULL), NULL), 0);
    frt_safepoint(); /* the owner merges: 1 local - 1 queued - 1 shared < 0 */
    return 0;
}

/* A hot object's decref cannot see the sum: the next collection does. */
static int case_hot_decref_below_zero(void)
{
    frt_init(NULL);
    frt_object *o = frt_new(&plain_type);
    CHECK_EQ(frt_make_hot(o), 0);
    frt_decref(o);
    frt_decref(o);
    frt_gc_collect(0);
    return 0;
}

static int case_use_after_free(void)
{
    frt_init(NULL);
    frt_object *o = frt_new(&plain_type);
    frt_decref(o);
    frt_incref(o);
    return 0;
}

static int case_weakref_of_freed(void)
{
    frt_init(NULL);
    frt_object *o = frt_new(&plain_type);
    frt_decref(o);
    return frt_weakref_new(o, NULL, NULL) == NULL ? 0 : 1;
}

static void *unattached_new(void *arg)
{
    (void)arg;
    errno = 0;
    frt_object *o = frt_new(&plain_type);
    return (void *)(intptr_t)(o == NULL && errno == EPERM);
}

static int case_unattached_new(void)
{
    frt_init(NULL);
    void *ok = NULL;
    CHECK_EQ(pthread_join(test_spawn(unattached_new, NULL), &ok), 0);
    return ok ? 0 : 1;
}

static void *unattached_incref(void *arg)
{
    frt_incref(arg);
    return NULL;
}

static int case_unattached_incref(void)
{
    frt_init(NULL);
    frt_object *o = frt_new(&plain_type);
    CHECK_EQ(pthread_join(test_spawn(unattached_incref, o), NULL), 0);
    return 0;
}

static frt_ref shared_slot;

static void *unattached_ref_load(void *arg)
{
    (void)arg;
    return frt_ref_load(&shared_slot); /* NULL in a release build */
}

static int case_unattached_ref_load(void)
{
    frt_init(NULL);
    frt_object *o = frt_new(&plain_type);
    frt_ref_init(&shared_slot, o);
    void *got = (void *)1;
    CHECK_EQ(pthread_join(test_spawn(unattached_ref_load, NULL), &got), 0);
    return got == NULL ? 0 : 1;
}

static int case_traverse_changes(void)
{
    frt_init(NULL);
    cell *a = (cell *)frt_new(&flip_type), *b = (cell *)frt_new(&flip_type);
    a->ref = frt_newref(&b->ob);
    b->ref = frt_newref(&a->ob);
    frt_gc_collect(-1);
    return 0;
}

static void shutdown_in_finalizer(frt_object *self)
{
    (void)self;
    int rc = frt_shutdown();
    printf("inner frt_shutdown: %d\n", rc);
}

static const frt_type fin_type = {"misuse.fin", sizeof(cell), NULL, NULL, shutdown_in_finalizer, NULL};

static int case_reentrant_shutdown(void)
{
    frt_init(NULL);
    frt_decref(frt_new(&fin_type)); /* its finalizer calls frt_shutdown */
    return frt_shutdown() == 0 ? 0 : 1;
}

static void fin_fn_shutdown(void *ctx)
{
    (void)ctx;
    int rc = frt_shutdown(); /* from inside frt_shutdown's own finalizer run */
    printf("inner frt_shutdown: %d\n", rc);
}

static int case_shutdown_in_shutdown(void)
{
    frt_init(NULL);
    frt_object *o = frt_new(&plain_type);
    frt_finalizer_free(frt_finalizer_new(o, fin_fn_shutdown, NULL));
    return frt_shutdown() == 1 ? 0 : 1; /* o is alive (leaked on purpose) */
}

/* A finalizer that detaches while its thread's dealloc loop still has
 * objects pending (a parent's destroy dropped many children; the one
 * dropped last is freed first and detaches). The detach is refused: the
 * thread stays attached and the loop frees every pending child. */
#define DETACH_CHILDREN 2001
static int detach_destroyed, detach_attached_after = -1;

static void detach_finalize(frt_object *self)
{
    (void)self;
    frt_thread_detach();
    detach_attached_after = frt_thread_is_attached();
}

static void count_destroy(frt_object *self)
{
    (void)self;
    detach_destroyed++;
}

static const frt_type detach_child_type = {"misuse.child", sizeof(cell), NULL, NULL, NULL, count_destroy};
static const frt_type detach_fin_type = {"misuse.detach", sizeof(cell), NULL, NULL, detach_finalize,
                                         count_destroy};

typedef struct parent {
    frt_object ob;
    frt_object *child[DETACH_CHILDREN];
} parent;

static void parent_destroy(frt_object *self)
{
    parent *p = (parent *)self;
    for (int i = 0; i < DETACH_CHILDREN; i++)
        frt_decref(p->child[i]);
}

static const frt_type parent_type = {"misuse.parent", sizeof(parent), NULL, NULL, NULL, parent_destroy};

static int case_detach_in_finalizer(void)
{
    frt_init(NULL);
    parent *p = (parent *)frt_new(&parent_type);
    for (int i = 0; i < DETACH_CHILDREN; i++)
        p->child[i] = frt_new(i == DETACH_CHILDREN - 1 ? &detach_fin_type : &detach_child_type);
    frt_decref(&p->ob);
    int ok = detach_attached_after == 1 && detach_destroyed == DETACH_CHILDREN && frt_thread_is_attached();
    printf("detach in a finalizer: attached after %d, destroyed %d of %d\n", detach_attached_after,
           detach_destroyed, DETACH_CHILDREN);
    return ok && frt_shutdown() == 0 ? 0 : 1;
}

static int case_blocking_end_unbalanced(void)
{
    frt_init(NULL);
    frt_blocking_end();
    return frt_shutdown() == 0 ? 0 : 1;
}

static void *other_thread_shutdown(void *arg)
{
    (void)arg;
    CHECK_EQ(frt_thread_attach(), 0);
    int rc = frt_shutdown();
    frt_thread_detach();
    return (void *)(intptr_t)(rc == FRT_ESTATE);
}

static int case_shutdown_other_thread(void)
{
    frt_init(NULL);
    void *ok = NULL;
    CHECK_EQ(pthread_join(test_spawn(other_thread_shutdown, NULL), &ok), 0);
    return ok && frt_shutdown() == 0 ? 0 : 1;
}

static frt_mutex held_elsewhere = FRT_MUTEX_INIT;

static void *lock_and_leave(void *arg)
{
    (void)arg;
    frt_mutex_lock(&held_elsewhere);
    return NULL;
}

static int case_unlock_not_held(void)
{
    frt_init(NULL);
    CHECK_EQ(pthread_join(test_spawn(lock_and_leave, NULL), NULL), 0);
    frt_mutex_unlock(&held_elsewhere);
    return 0;
}

static int case_unlock_unlocked(void)
{
    frt_mutex m = FRT_MUTEX_INIT;
    return frt_mutex_unlock(&m) == FRT_ESTATE ? 0 : 1;
}

static int case_sections_out_of_order(void)
{
    frt_init(NULL);
    frt_object *a = frt_new(&plain_type), *b = frt_new(&plain_type);
    frt_critical_section ca, cb;
    frt_critical_section_begin(&ca, a);
    frt_critical_section_begin(&cb, b);
    frt_critical_section_end(&ca);
    return 0;
}

static int case_freed_while_locked(void)
{
    frt_init(NULL);
    frt_object *o = frt_new(&plain_type);
    FRT_BEGIN_CRITICAL_SECTION(o);
    frt_decref(o);
    FRT_END_CRITICAL_SECTION();
    return 0;
}

/* ------------------------------------------------------------------ */
/* The driver.                                                         */

typedef struct mcase {
    const char *name;
    int (*run)(void);
    const char *message;   /* what the one debug line must contain */
    const char *type_name; /* the type it must name, or NULL (no object) */
    int defined_in_release; /* run in release builds too: must exit 0 */
} mcase;

static const mcase cases[] = {
    {"decref below zero", case_decref_below_zero, "decref below zero", "misuse.plain", 0},
    {"hot decref below zero", case_hot_decref_below_zero,
     "decref below zero (found summing its per-thread counts)", "misuse.plain", 0},
    {"use after free", case_use_after_free, "use of a freed object", "<freed>", 0},
    {"weakref of a freed object", case_weakref_of_freed, "frt_weakref_new of a freed object",
     "<freed>", 0},
    {"frt_new unattached", case_unattached_new, "frt_new from a thread that is not attached", NULL, 1},
    {"incref unattached", case_unattached_incref, "reference counted from a thread that is not attached",
     "misuse.plain", 0},
    {"ref load unattached", case_unattached_ref_load, "frt_ref_load from a thread that is not attached",
     NULL, 1},
    {"traverse changes", case_traverse_changes, "traverse reported different references", "misuse.flip",
     0},
    {"shutdown in a finalizer", case_reentrant_shutdown, "frt_shutdown from a blocking section, a stop or a finalizer",
     NULL, 1},
    {"shutdown inside shutdown", case_shutdown_in_shutdown, "frt_shutdown called again while shutting down",
     NULL, 1},
    {"blocking_end without begin", case_blocking_end_unbalanced, "frt_blocking_end without frt_blocking_begin",
     NULL, 1},
    {"detach in a finalizer", case_detach_in_finalizer, "frt_thread_detach from a finalizer, destroy or callback",
     NULL, 1},
    {"shutdown from another thread", case_shutdown_other_thread,
     "frt_shutdown from a thread other than the one that called frt_init", NULL, 1},
    {"unlock a mutex held elsewhere", case_unlock_not_held,
     "frt_mutex_unlock by a thread that does not hold it", NULL, 0},
    {"unlock an unlocked mutex", case_unlock_unlocked, "frt_mutex_unlock of an unlocked mutex", NULL, 1},
    {"sections ended out of order", case_sections_out_of_order, "critical sections ended out of order",
     "misuse.plain", 0},
    {"freed while locked", case_freed_while_locked, "object freed while its mutex is locked",
     "misuse.plain", 0},
};

static int run_in_child(void *arg)
{
    return ((const mcase *)arg)->run();
}

static void run_case(const mcase *c)
{
    char buf[4096];
    int status = test_run_child(run_in_child, (void *)c, buf, sizeof buf);

    if (FRT_DEBUG) {
        int aborted = WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
        const char *line = strstr(buf, "frt: misuse: ");
        int lines = 0;
        for (const char *p = buf; (p = strstr(p, "frt: misuse: ")); p++)
            lines++;
        int ok = aborted && line && lines == 1 && strstr(line, c->message);
        if (ok && c->type_name) {
            char want[128];
            snprintf(want, sizeof want, "type '%s' owner ", c->type_name);
            ok = strstr(line, want) != NULL;
        }
        if (!ok) {
            fprintf(stderr, "test_misuse: %s: expected one abort line with \"%s\"%s%s, got status %d and:\n%s\n",
                    c->name, c->message, c->type_name ? " naming type " : "",
                    c->type_name ? c->type_name : "", status, buf);
            exit(1);
        }
        fprintf(stderr, "test_misuse: %-30s %s", c->name, line);
    } else {
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || strstr(buf, "frt: misuse")) {
            fprintf(stderr, "test_misuse: %s: release build: expected exit 0, silent; got status %d and:\n%s\n",
                    c->name, status, buf);
            exit(1);
        }
        fprintf(stderr, "test_misuse: %-30s release: documented result\n", c->name);
    }
}

int main(void)
{
    test_watchdog("test_misuse", 120);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (FRT_DEBUG || cases[i].defined_in_release)
            run_case(&cases[i]);
    TEST_PASS("test_misuse");
    return 0;
}
