/* fork() while other threads are attached, as CPython does it
 * (PyOS_BeforeFork / PyOS_AfterFork_Parent / PyOS_AfterFork_Child).
 *
 * Before fork the forking thread quiesces the runtime: it waits for a
 * collection in progress to end, stops the world, then takes every lock
 * of the runtime in one fixed order. At that moment every other attached
 * thread is parked at a safepoint or suspended in a blocking section, and
 * neither holds a lock nor is half way through an operation, so the image
 * the child gets is consistent.
 *
 * The parent releases it all. The child is left with one thread, so it
 * makes every lock new, takes the other threads' states out of the
 * registry and restarts the world (which waits for nobody now); then, with
 * the world running, it takes over what each vanished thread owned: its
 * BRC queue is merged (its objects are owned by nobody from then on, as
 * those of a thread that detached), its heap becomes an orphan (the
 * collector's heap walks still see its objects; the next thread to attach
 * adopts it) and the objects it was in the middle of freeing are freed.
 * The forking thread takes the role of frt_init's thread in the child. */
#include <pthread.h>

#include "debug.h"
#include "fork.h"
#include "runtime.h"

/* What prepare did, for the handler that runs after fork on this thread. */
static __thread struct {
    int active;          /* prepared: the world is stopped and locked */
    int temp_attached;   /* attached for the fork only */
    unsigned blocking;   /* blocking depth left for the fork, restored after */
} fork_ctx;

/* The order locks are taken in; released in reverse. */
static void (*const lock_hooks[])(int phase) = {
    frt__qsbr_fork, /* the child stops waiting for grace periods */
    frt__finalizers_fork, frt__weakrefs_fork, frt__heaps_fork,
    frt__arenas_fork,     frt__large_fork,    frt__stw_fork,
    frt__parking_lot_fork,
};
#define NHOOKS (sizeof lock_hooks / sizeof lock_hooks[0])

static void fork_prepare(void)
{
    fork_ctx.active = fork_ctx.temp_attached = 0;
    fork_ctx.blocking = 0;
    if (atomic_load(&frt__rt.initialized) != 1 || atomic_load(&frt__rt.shutting_down))
        return;
    frt_tstate *me = frt__tstate();
    if (!me) {
        /* A thread that is not attached forks: attach it for the fork, so
         * the world can be stopped; the child gets a consistent runtime. */
        if (frt__tstate_attach() != 0)
            return;
        me = frt__tstate();
        fork_ctx.temp_attached = 1;
    }
    if (me->stw_depth || me->in_gc_callback)
        FRT_MISUSE(NULL, "fork() while holding a stop-the-world or from a finalizer or callback of a collection");
    if (me->blocking_depth) {
        /* fork is a system call, and may well sit in a blocking section. */
        fork_ctx.blocking = me->blocking_depth;
        me->blocking_depth = 0;
        frt__leave_blocked(me);
    }
    if (frt__rt.hooks.fork)
        frt__rt.hooks.fork(FRT_FORK_QUIESCE);
    frt_stop_the_world();
    if (frt__rt.hooks.fork)
        frt__rt.hooks.fork(FRT_FORK_LOCK);
    for (size_t i = 0; i < NHOOKS; i++)
        lock_hooks[i](FRT_FORK_LOCK);
    fork_ctx.active = 1;
}

/* Both sides end the same way: back in the blocking section the fork was
 * called from, or detached again. */
static void fork_finish(frt_tstate *me)
{
    if (fork_ctx.blocking) {
        me->blocking_depth = fork_ctx.blocking;
        frt__enter_blocked(me);
    }
    if (fork_ctx.temp_attached)
        frt__tstate_detach();
    fork_ctx.active = 0;
}

static void fork_parent(void)
{
    if (!fork_ctx.active)
        return;
    for (size_t i = NHOOKS; i-- > 0;)
        lock_hooks[i](FRT_FORK_PARENT);
    if (frt__rt.hooks.fork)
        frt__rt.hooks.fork(FRT_FORK_PARENT);
    frt_start_the_world();
    fork_finish(frt__tstate());
}

static void fork_child(void)
{
    if (!fork_ctx.active)
        return;
    frt_tstate *me = frt__tstate();
    for (size_t i = 0; i < NHOOKS; i++)
        lock_hooks[i](FRT_FORK_CHILD);
    if (frt__rt.hooks.fork)
        frt__rt.hooks.fork(FRT_FORK_CHILD);
    frt_tstate *gone = frt__tstate_fork_child(me);
    frt_start_the_world(); /* nobody else to restart; releases the stop's locks */
    frt__rt.init_thread = pthread_self();
    /* Destroy functions may run from here on (objects whose last reference
     * was queued to a vanished thread, or that it was freeing), with the
     * world running and every lock free, as at any detach. */
    while (gone) {
        frt_tstate *next = gone->next_free;
        frt__tstate_take_over(gone);
        gone = next;
    }
    fork_finish(me);
}

static void do_register(void)
{
    pthread_atfork(fork_prepare, fork_parent, fork_child);
}

void frt__fork_register(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, do_register);
}
