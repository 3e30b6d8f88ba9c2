/* A tree whose nodes know their parent, as in a DOM or a widget tree.
 * Children are strong references (a parent keeps its subtrees alive) and
 * each child's link up is a weak reference. The tree then holds no cycle:
 * dropping the root frees every node at once, by plain reference counting,
 * with the collector switched off. The same tree with strong parent links
 * is one big web of cycles (parent <-> child): dropping the root frees
 * nothing, and only the cycle collector reclaims it.
 *
 * NTHREADS threads each build one subtree of the root in parallel, then all
 * of them walk up from every leaf to the root through the parent links;
 * a finalizer on the root (like weakref.finalize) reports when the tree is
 * gone. */
#include <frt/frt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define NTHREADS 4
#define DEPTH 6 /* levels below the root in each thread's subtree */
#define NNODES (1 + NTHREADS * ((1 << DEPTH) - 1))
#define NLEAVES (NTHREADS << (DEPTH - 1))

typedef struct node {
    frt_object ob;
    struct node *child[NTHREADS]; /* strong; the root uses NTHREADS, others 2 */
    frt_weakref *up_weak;          /* weak mode: a weakref to the parent (held strongly) */
    struct node *up_strong;        /* strong mode: a counted reference to the parent */
    int level;
} node;

static _Atomic int destroyed, tree_gone;

static int node_traverse(frt_object *self, frt_visit_fn visit, void *arg)
{
    node *n = (node *)self;
    for (int i = 0; i < NTHREADS; i++)
        if (n->child[i] && visit(&n->child[i]->ob, arg))
            return 1;
    if (n->up_weak && visit(frt_weakref_object(n->up_weak), arg)) /* the weakref object itself */
        return 1;
    return n->up_strong ? visit(&n->up_strong->ob, arg) : 0;
}
static void node_clear(frt_object *self)
{
    node *n = (node *)self;
    for (int i = 0; i < NTHREADS; i++) {
        node *c = n->child[i];
        n->child[i] = NULL;
        if (c)
            frt_decref(&c->ob);
    }
    if (n->up_weak)
        frt_decref(frt_weakref_object(n->up_weak));
    if (n->up_strong)
        frt_decref(&n->up_strong->ob);
    n->up_weak = NULL;
    n->up_strong = NULL;
}
static void node_destroy(frt_object *self)
{
    node_clear(self);
    atomic_fetch_add(&destroyed, 1);
}
static const frt_type node_type = {"node", sizeof(node), node_traverse, node_clear, NULL,
                                   node_destroy};

static int weak_mode;

static node *new_node(node *parent)
{
    node *n = (node *)frt_new(&node_type);
    n->level = parent->level + 1;
    if (weak_mode)
        n->up_weak = frt_weakref_new(&parent->ob, NULL, NULL);
    else
        n->up_strong = (node *)frt_newref(&parent->ob);
    return n;
}

static void build(node *n, int levels_below)
{
    if (levels_below == 0)
        return;
    for (int i = 0; i < 2; i++) {
        n->child[i] = new_node(n);
        build(n->child[i], levels_below - 1);
    }
}

/* Walk from n up to the root; the number of steps, or -1 if a parent is
 * missing. In weak mode each step takes a strong reference through the
 * weakref (frt_weakref_get) and drops the one before. */
static int climb(node *n)
{
    int steps = 0;
    frt_incref(&n->ob);
    for (;;) {
        node *p = weak_mode ? (n->up_weak ? (node *)frt_weakref_get(n->up_weak) : NULL)
                            : (n->up_strong ? (node *)frt_newref(&n->up_strong->ob) : NULL);
        int top = weak_mode ? n->up_weak == NULL : n->up_strong == NULL;
        frt_decref(&n->ob);
        if (!p)
            return top ? steps : -1;
        n = p;
        steps++;
    }
}

static int leaves_climbed(node *n, int *bad)
{
    int found = 0;
    for (int i = 0; i < NTHREADS; i++)
        if (n->child[i])
            found += leaves_climbed(n->child[i], bad);
    if (!n->child[0]) {
        *bad += climb(n) != DEPTH;
        found++;
    }
    return found;
}

static node *root;
static pthread_barrier_t built;
static _Atomic int climbed, bad_climbs;

static void *worker(void *arg)
{
    int i = (int)(intptr_t)arg, bad = 0;
    frt_thread_attach();
    node *sub = new_node(root);
    build(sub, DEPTH - 1);
    root->child[i] = sub; /* each thread writes its own slot; the barrier publishes it */
    frt_blocking_begin();
    pthread_barrier_wait(&built);
    frt_blocking_end();
    atomic_fetch_add(&climbed, leaves_climbed(root, &bad)); /* every thread walks every leaf */
    atomic_fetch_add(&bad_climbs, bad);
    frt_thread_detach();
    return NULL;
}

static void report_gone(void *ctx) { atomic_fetch_add((_Atomic int *)ctx, 1); }

static int run(int weak)
{
    weak_mode = weak;
    atomic_store(&destroyed, 0);
    atomic_store(&tree_gone, 0);
    atomic_store(&climbed, 0);
    atomic_store(&bad_climbs, 0);
    root = (node *)frt_new(&node_type);
    frt_finalizer *fin = frt_finalizer_new(&root->ob, report_gone, &tree_gone);
    pthread_barrier_init(&built, NULL, NTHREADS);
    pthread_t t[NTHREADS];
    for (int i = 0; i < NTHREADS; i++)
        pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i);
    frt_blocking_begin();
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(t[i], NULL);
    frt_blocking_end();
    pthread_barrier_destroy(&built);

    frt_decref(&root->ob); /* the only outside reference to the tree */
    int freed_by_decref = atomic_load(&destroyed), gone_at_decref = atomic_load(&tree_gone);
    long collected = frt_gc_collect(-1);
    int ok = atomic_load(&climbed) == NTHREADS * NLEAVES && atomic_load(&bad_climbs) == 0 &&
             atomic_load(&destroyed) == NNODES && atomic_load(&tree_gone) == 1 &&
             !frt_finalizer_alive(fin);
    if (weak)
        ok = ok && freed_by_decref == NNODES && gone_at_decref == 1 && collected == 0;
    else
        ok = ok && freed_by_decref == 0 && gone_at_decref == 0 && collected == NNODES;
    printf("%s parent links: %d nodes, %d leaf-to-root climbs (%d wrong); after the root's decref"
           " %d freed, finalizer %s; frt_gc_collect(-1) = %ld; finalizer runs %d\n",
           weak ? "weak  " : "strong", NNODES, atomic_load(&climbed), atomic_load(&bad_climbs),
           freed_by_decref, gone_at_decref ? "ran" : "not yet", collected,
           atomic_load(&tree_gone));
    frt_finalizer_free(fin);
    return ok;
}

int main(void)
{
    frt_init(NULL);
    frt_gc_disable(); /* no automatic collection: only the explicit one below may free cycles */
    int ok = run(1);
    ok = run(0) && ok;
    int alive = frt_shutdown();
    printf("objects alive at shutdown: %d\n", alive);
    ok = ok && alive == 0;
    puts(ok ? "tree_parent: OK" : "tree_parent: FAILED");
    return ok ? 0 : 1;
}
