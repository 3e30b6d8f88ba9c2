/* The README's example: a node type with one strong reference, a cycle of
 * two nodes shared with a second thread, and the collector reclaiming it. */
#include <frt/frt.h>
#include <pthread.h>
#include <stdio.h>

typedef struct node { frt_object ob; frt_object *next; } node;

static int node_traverse(frt_object *self, frt_visit_fn visit, void *arg)
{
    node *n = (node *)self;
    return n->next ? visit(n->next, arg) : 0;
}
static void node_clear(frt_object *self) { node *n = (node *)self; frt_xdecref(n->next); n->next = NULL; }
static void node_destroy(frt_object *self) { node_clear(self); }
static const frt_type node_type = {"node", sizeof(node), node_traverse, node_clear, NULL, node_destroy};

static void *worker(void *arg)
{
    frt_thread_attach();               /* every thread that touches objects attaches */
    frt_decref(arg);                   /* a non-owner's decref: an atomic, or a queue to the owner */
    frt_thread_detach();
    return NULL;
}

int main(void)
{
    frt_init(NULL);
    node *a = (node *)frt_new(&node_type), *b = (node *)frt_new(&node_type);
    a->next = frt_newref(&b->ob);      /* a -> b -> a: a cycle */
    b->next = frt_newref(&a->ob);
    pthread_t t;
    pthread_create(&t, NULL, worker, frt_newref(&a->ob)); /* the thread gets its own reference */
    frt_blocking_begin();              /* waiting: a stop-the-world need not wait for us */
    pthread_join(t, NULL);
    frt_blocking_end();
    frt_decref(&a->ob);
    frt_decref(&b->ob);                /* unreachable now, but the cycle keeps both counts at 1 */
    printf("collected %ld objects\n", frt_gc_collect(-1));
    printf("objects alive at shutdown: %d\n", frt_shutdown());
    return 0;
}
