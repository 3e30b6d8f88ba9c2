/* A -fsanitize=thread program outside the frt tree, linked against the
 * installed frt_tsan variant: threads build containers, hand them to each
 * other and collect, so frt runs this program's traverse, clear and destroy
 * on other threads while the world is stopped. Against the plain library
 * TSan cannot see frt's synchronisation and blames this code for races;
 * against frt_tsan it must report nothing. */
#include <frt/frt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

typedef struct pair {
    frt_object ob;
    frt_object *a, *b;
    long payload;
} pair;

static int pair_traverse(frt_object *self, frt_visit_fn visit, void *arg)
{
    pair *p = (pair *)self;
    if (p->a && visit(p->a, arg))
        return 1;
    return p->b ? visit(p->b, arg) : 0;
}

static void pair_clear(frt_object *self)
{
    pair *p = (pair *)self;
    frt_object *a = p->a, *b = p->b;
    p->a = p->b = NULL;
    frt_xdecref(a);
    frt_xdecref(b);
}

static const frt_type pair_type = {"consumer.pair", sizeof(pair), pair_traverse, pair_clear, NULL, pair_clear};

static _Atomic(frt_object *) handoff;

static void *work(void *arg)
{
    (void)arg;
    if (frt_thread_attach() != 0)
        return (void *)1;
    for (int i = 0; i < 2000; i++) {
        pair *x = (pair *)frt_new(&pair_type);
        pair *y = (pair *)frt_new(&pair_type);
        x->payload = y->payload = i;
        x->a = frt_newref(&y->ob); /* a cycle: x <-> y */
        y->a = frt_newref(&x->ob);
        frt_decref(&y->ob);
        frt_object *prev = atomic_exchange(&handoff, &x->ob); /* the other thread drops it */
        if (prev) {
            pair *p = (pair *)prev;
            p->payload++;
            frt_decref(prev);
        }
        if (i % 500 == 0)
            frt_gc_collect(i % 3);
    }
    frt_thread_detach();
    return NULL;
}

int main(void)
{
    if (frt_init(NULL) != 0)
        return 1;
    pthread_t t[3];
    frt_blocking_begin();
    for (int i = 0; i < 3; i++)
        pthread_create(&t[i], NULL, work, NULL);
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    frt_blocking_end();
    frt_xdecref(atomic_exchange(&handoff, NULL));
    frt_gc_collect(2);
    int left = frt_shutdown();
    printf("frt_tsan consumer: %d objects left\n", left);
    return left == 0 ? 0 : 1;
}
