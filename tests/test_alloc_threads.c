/* The allocator across threads: producers whose objects are freed by other
 * threads, several at once; a thread that detaches (or just exits) while
 * others still hold its objects, and the thread that attaches after it and
 * adopts its heap and memory; statistics that add up once every remote free
 * has been collected, and that a thread that is not attached can read while
 * an owner maps, formats, retires and unmaps. */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include <frt/frt.h>

#include "check.h"
#include "runtime/arena.h"
#include "runtime/os.h"
#include "runtime/tstate.h"

typedef struct item {
    frt_object ob;
    uint32_t producer, seq, extra, shared;
    uint64_t check;
    /* extra bytes of tail: (seq + i) & 0xff */
} item;

#define MAGIC 0x9e3779b97f4a7c15ull

enum { ROLE_MAIN = 0, ROLE_PRODUCER = 1, ROLE_CONSUMER = 2, ROLE_OTHER = 3 };
static _Thread_local int role;

enum { MAXP = 8 };
static atomic_long destroyed_total, destroyed_by[4], destroyed_of[MAXP];
static atomic_long bad_content, bad_thread;

static uint64_t stamp(const item *it)
{
    return MAGIC ^ ((uint64_t)it->producer << 40) ^ ((uint64_t)it->seq << 8) ^ it->extra;
}

static int item_intact(const item *it)
{
    if (it->check != stamp(it))
        return 0;
    const unsigned char *tail = (const unsigned char *)(it + 1);
    for (uint32_t i = 0; i < it->extra; i++)
        if (tail[i] != (unsigned char)(it->seq + i))
            return 0;
    return 1;
}

static void item_destroy(frt_object *self)
{
    item *it = (item *)self;
    if (!item_intact(it))
        atomic_fetch_add(&bad_content, 1);
    /* A shared object's count lives in one atomic field, so the consumer's
     * last decref frees it there: a true cross-thread free. */
    if (it->shared && role == ROLE_PRODUCER)
        atomic_fetch_add(&bad_thread, 1);
    if (it->producer < MAXP)
        atomic_fetch_add(&destroyed_of[it->producer], 1);
    atomic_fetch_add(&destroyed_by[role], 1);
    atomic_fetch_add(&destroyed_total, 1);
}

static const frt_type item_type = {"item", sizeof(item), NULL, NULL, NULL, item_destroy};

static item *item_new(uint32_t producer, uint32_t seq, uint32_t extra)
{
    item *it = (item *)frt_new_var(&item_type, extra);
    CHECK(it != NULL);
    CHECK_EQ((uintptr_t)it % 16, 0);
    it->producer = producer;
    it->seq = seq;
    it->extra = extra;
    unsigned char *tail = (unsigned char *)(it + 1);
    for (uint32_t i = 0; i < extra; i++)
        tail[i] = (unsigned char)(seq + i);
    it->check = stamp(it);
    return it;
}

static void reset_counts(void)
{
    atomic_store(&destroyed_total, 0);
    for (int i = 0; i < 4; i++)
        atomic_store(&destroyed_by[i], 0);
    for (int i = 0; i < MAXP; i++)
        atomic_store(&destroyed_of[i], 0);
    atomic_store(&bad_content, 0);
    atomic_store(&bad_thread, 0);
}

static frt_heap_stats stats(void)
{
    frt_heap_stats st;
    frt_heap_get_stats(&st);
    return st;
}

/* --- a bounded queue between threads -------------------------------------- */

/* Waiting for the queue is waiting on a lock: frt threads do it inside a
 * blocking section, so merges queued to them are done by others meanwhile. */
enum { QCAP = 64 };
typedef struct queue {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    item *slot[QCAP];
    unsigned head, len;
} queue;

static void q_init(queue *q)
{
    pthread_mutex_init(&q->lock, NULL);
    pthread_cond_init(&q->cond, NULL);
    q->head = q->len = 0;
}

static void q_destroy(queue *q)
{
    pthread_mutex_destroy(&q->lock);
    pthread_cond_destroy(&q->cond);
}

static void q_push(queue *q, item *it)
{
    frt_blocking_begin();
    pthread_mutex_lock(&q->lock);
    while (q->len == QCAP)
        pthread_cond_wait(&q->cond, &q->lock);
    q->slot[(q->head + q->len) % QCAP] = it;
    q->len++;
    pthread_cond_broadcast(&q->cond);
    pthread_mutex_unlock(&q->lock);
    frt_blocking_end();
}

static item *q_pop(queue *q)
{
    frt_blocking_begin();
    pthread_mutex_lock(&q->lock);
    while (q->len == 0)
        pthread_cond_wait(&q->cond, &q->lock);
    item *it = q->slot[q->head];
    q->head = (q->head + 1) % QCAP;
    q->len--;
    pthread_cond_broadcast(&q->cond);
    pthread_mutex_unlock(&q->lock);
    frt_blocking_end();
    return it;
}

/* --- producers and consumers ---------------------------------------------- */

enum { NPROD = 4, NCONS = 4 };
#define PER_PRODUCER ((uint32_t)SCALED(100000) / NCONS * NCONS)

static queue queues[NCONS];

static uint32_t extra_for(uint32_t seq)
{
    /* Spans classes 48 B .. ~2 KiB, and now and then a 16 KiB one. */
    return seq % 97 == 0 ? FRT_SMALL_MAX - (uint32_t)sizeof(item) : (seq * 37u) % 2000u;
}

static void *producer(void *arg)
{
    uint32_t id = (uint32_t)(uintptr_t)arg;
    role = ROLE_PRODUCER;
    CHECK_EQ(frt_thread_attach(), 0);
    for (uint32_t seq = 0; seq < PER_PRODUCER; seq++) {
        item *it = item_new(id, seq, extra_for(seq));
        /* Even items give their bias up, so the consumer's decref frees
         * them; odd ones stay owned, so the consumer's decref is queued
         * back here and freed by us (or by a helper while we block). */
        if (seq % 2 == 0) {
            it->shared = 1;
            CHECK_EQ(frt_make_shared(&it->ob), 0);
        }
        /* Spread over every consumer, so pages of one producer take remote
         * frees from several threads at the same time. */
        q_push(&queues[(id + seq) % NCONS], it);
    }
    frt_thread_detach();
    return NULL;
}

static void *consumer(void *arg)
{
    uint32_t id = (uint32_t)(uintptr_t)arg;
    role = ROLE_CONSUMER;
    CHECK_EQ(frt_thread_attach(), 0);
    enum { HOLD = 16 };
    item *held[HOLD];
    unsigned nheld = 0;
    uint32_t expect = NPROD * PER_PRODUCER / NCONS;
    for (uint32_t k = 0; k < expect; k++) {
        item *it = q_pop(&queues[id]);
        if (!item_intact(it) || it->producer >= NPROD || (it->producer + it->seq) % NCONS != id)
            atomic_fetch_add(&bad_content, 1);
        if (k % 3 == 0) {
            frt_incref(&it->ob);
            frt_decref(&it->ob);
        }
        /* Hold some a while, so frees arrive in bursts. */
        held[nheld++] = it;
        if (nheld == HOLD || k % 5 == 0) {
            while (nheld)
                frt_decref(&held[--nheld]->ob);
        }
    }
    while (nheld)
        frt_decref(&held[--nheld]->ob);
    frt_thread_detach();
    return NULL;
}

static void test_producers_consumers(void)
{
    reset_counts();
    frt_heap_stats base = stats();
    CHECK_EQ(base.blocks_in_use, 0);
    for (int i = 0; i < NCONS; i++)
        q_init(&queues[i]);
    pthread_t p[NPROD], c[NCONS];
    for (uintptr_t i = 0; i < NCONS; i++)
        CHECK_EQ(pthread_create(&c[i], NULL, consumer, (void *)i), 0);
    for (uintptr_t i = 0; i < NPROD; i++)
        CHECK_EQ(pthread_create(&p[i], NULL, producer, (void *)i), 0);
    /* Main waits without touching objects: outside any stop. */
    frt_blocking_begin();
    for (int i = 0; i < NPROD; i++)
        pthread_join(p[i], NULL);
    for (int i = 0; i < NCONS; i++)
        pthread_join(c[i], NULL);
    frt_blocking_end();
    for (int i = 0; i < NCONS; i++)
        q_destroy(&queues[i]);

    long total = (long)NPROD * PER_PRODUCER;
    CHECK_EQ(atomic_load(&bad_content), 0);
    CHECK_EQ(atomic_load(&bad_thread), 0);
    CHECK_EQ(atomic_load(&destroyed_total), total);
    for (int i = 0; i < NPROD; i++)
        CHECK_EQ(atomic_load(&destroyed_of[i]), PER_PRODUCER);
    /* Every shared item died on a consumer; owned ones on either side. */
    CHECK(atomic_load(&destroyed_by[ROLE_CONSUMER]) >= total / 2);
    CHECK_EQ(atomic_load(&destroyed_by[ROLE_CONSUMER]) + atomic_load(&destroyed_by[ROLE_PRODUCER]),
             total);
    fprintf(stderr, "producers/consumers: %ld items, %ld freed by consumers, %ld by producers\n",
            total, atomic_load(&destroyed_by[ROLE_CONSUMER]),
            atomic_load(&destroyed_by[ROLE_PRODUCER]));

    /* Every thread has left; their heaps are orphans holding remote frees
     * nobody collected yet. A trim collects them and returns every arena. */
    frt_heap_trim();
    frt_safepoint();
    frt_heap_stats st = stats();
    CHECK_EQ(st.blocks_in_use, 0);
    CHECK_EQ(st.bytes_in_use, 0);
    CHECK_EQ(st.large_objects, 0);
    CHECK_EQ(st.arenas, base.arenas);
    CHECK(st.arenas_peak > base.arenas);
    CHECK(st.arenas_returned > base.arenas_returned);
}

/* --- a thread leaves while others hold its objects ------------------------ */

#define LEAVER_ITEMS ((uint32_t)SCALED(4000))
enum { MAX_ARENAS = 64 };

typedef struct handoff {
    item **items;
    uint32_t n;
    frt_heap *heap;
    uintptr_t arenas[MAX_ARENAS];
    unsigned narenas;
    int detach; /* 0: just return and let the exit hook detach */
    uint32_t producer;
} handoff;

static uint32_t leaver_extra(uint32_t seq)
{
    /* Classes up to 1 KiB, about 2 MiB in all: fewer arenas than the arena
     * cache holds, so none of them goes back to the OS before it is reused. */
    return (seq * 53u) % 900u;
}

static void note_arena(handoff *h, const void *p)
{
    uintptr_t a = (uintptr_t)frt_arena_of(p);
    for (unsigned i = 0; i < h->narenas; i++)
        if (h->arenas[i] == a)
            return;
    CHECK(h->narenas < MAX_ARENAS);
    h->arenas[h->narenas++] = a;
}

static int in_arenas(const handoff *h, const void *p)
{
    uintptr_t a = (uintptr_t)frt_arena_of(p);
    for (unsigned i = 0; i < h->narenas; i++)
        if (h->arenas[i] == a)
            return 1;
    return 0;
}

static void *leaver(void *arg)
{
    handoff *h = arg;
    role = ROLE_OTHER;
    CHECK_EQ(frt_thread_attach(), 0);
    h->heap = frt__tstate()->heap;
    for (uint32_t seq = 0; seq < h->n; seq++) {
        item *it = item_new(h->producer, seq, leaver_extra(seq));
        if (seq % 3 == 0) {
            it->shared = 1;
            CHECK_EQ(frt_make_shared(&it->ob), 0);
        }
        note_arena(h, it);
        h->items[seq] = it;
    }
    if (h->detach)
        frt_thread_detach();
    return NULL;
}

typedef struct adopter_arg {
    const handoff *prev;
    item *keeper;
    long maps_during;
    int adopted, keeper_ours, reused, in_use_after_adopt;
} adopter_arg;

/* Attaches after the leaver is gone: must get its heap, and allocate from
 * the memory the leaver's freed objects left, not from the OS. */
static void *adopter(void *arg)
{
    adopter_arg *a = arg;
    role = ROLE_OTHER;
    CHECK_EQ(frt_thread_attach(), 0);
    frt_heap *mine = frt__tstate()->heap;
    a->adopted = mine == a->prev->heap;
    a->keeper_ours = frt_arena_of(a->keeper)->heap == mine;
    /* Adoption collected the main thread's remote frees: only the keeper
     * is left in use. */
    a->in_use_after_adopt = (int)stats().blocks_in_use;

    uint32_t n = a->prev->n;
    item **mine_items = malloc(n * sizeof *mine_items);
    CHECK(mine_items);
    long maps = frt_test_fault_count(FRT_FAULT_MAP);
    int reused = 1;
    for (uint32_t seq = 0; seq < n; seq++) {
        mine_items[seq] = item_new(MAXP - 1, seq, leaver_extra(seq));
        if (!in_arenas(a->prev, mine_items[seq]))
            reused = 0;
    }
    a->maps_during = frt_test_fault_count(FRT_FAULT_MAP) - maps;
    a->reused = reused;
    for (uint32_t seq = 0; seq < n; seq++) {
        CHECK(item_intact(mine_items[seq]));
        frt_decref(&mine_items[seq]->ob);
    }
    free(mine_items);
    /* The keeper was the leaver's; now its block is in our heap and our
     * decref frees it locally. */
    CHECK(item_intact(a->keeper));
    frt_decref(&a->keeper->ob);
    frt_thread_detach();
    return NULL;
}

static void test_leaver(int detach)
{
    reset_counts();
    frt_heap_trim();
    frt_heap_stats base = stats();
    CHECK_EQ(base.blocks_in_use, 0);

    handoff h;
    memset(&h, 0, sizeof h);
    h.n = LEAVER_ITEMS;
    h.items = malloc(h.n * sizeof *h.items);
    CHECK(h.items);
    h.detach = detach;
    h.producer = 5;
    pthread_t t;
    frt_blocking_begin();
    CHECK_EQ(pthread_create(&t, NULL, leaver, &h), 0);
    pthread_join(t, NULL);
    frt_blocking_end();
    CHECK(h.heap != NULL);
    CHECK_EQ(stats().blocks_in_use, h.n);

    /* The leaver is gone; its objects are all still here, intact, and
     * countable from this thread. */
    for (uint32_t i = 0; i < h.n; i++) {
        item *it = h.items[i];
        CHECK(item_intact(it));
        CHECK_EQ(frt_refcount(&it->ob), 1);
        CHECK(!frt_is_owned(&it->ob));
        CHECK(frt_arena_of(it)->heap == h.heap);
        if (i % 4 == 0) {
            frt_incref(&it->ob);
            CHECK_EQ(frt_refcount(&it->ob), 2);
            frt_decref(&it->ob);
        }
    }
    CHECK_EQ(atomic_load(&destroyed_total), 0);

    /* Free all but one. The blocks go back to the orphaned heap as remote
     * frees, which count as in use until someone collects them. */
    item *keeper = h.items[h.n / 2];
    for (uint32_t i = 0; i < h.n; i++)
        if (h.items[i] != keeper)
            frt_decref(&h.items[i]->ob);
    CHECK_EQ(atomic_load(&destroyed_total), h.n - 1);
    CHECK_EQ(atomic_load(&bad_content), 0);
    CHECK_EQ(stats().blocks_in_use, h.n);

    /* The next thread to attach adopts the leaver's heap (the most recent
     * orphan) with the keeper in it, and reuses that memory. */
    adopter_arg a;
    memset(&a, 0, sizeof a);
    a.prev = &h;
    a.keeper = keeper;
    frt_blocking_begin();
    CHECK_EQ(pthread_create(&t, NULL, adopter, &a), 0);
    pthread_join(t, NULL);
    frt_blocking_end();
    CHECK(a.adopted);
    CHECK(a.keeper_ours);
    CHECK_EQ(a.in_use_after_adopt, 1);
    CHECK_EQ(a.maps_during, 0);
    CHECK(a.reused);
    CHECK_EQ(atomic_load(&destroyed_total), 2 * (long)h.n);
    CHECK_EQ(atomic_load(&bad_content), 0);
    CHECK_EQ(atomic_load(&destroyed_of[5]), h.n);
    CHECK_EQ(atomic_load(&destroyed_of[MAXP - 1]), h.n);
    free(h.items);

    frt_heap_trim();
    frt_safepoint();
    frt_heap_stats st = stats();
    CHECK_EQ(st.blocks_in_use, 0);
    CHECK_EQ(st.bytes_in_use, 0);
    CHECK_EQ(st.arenas, base.arenas);
}

/* --- statistics while the owner changes its layout ------------------------ */

/* frt_heap_get_stats counts blocks from the pages, walking every heap's
 * arenas, while their owners add and unmap arenas and format and retire
 * pages (under each heap's layout_lock): here from a thread that is not
 * attached, against an owner that cycles 10 MiB through several classes
 * with a purge delay of 0, so arenas go back to the OS as it runs. TSan
 * checks the locking; the counts stay within what can be live. */
static atomic_int stats_stop;
static atomic_long stats_reads, stats_bad;

enum { LAYOUT_N = 40000 };

static void *stats_reader(void *arg)
{
    (void)arg;
    while (!atomic_load(&stats_stop)) {
        frt_heap_stats st = stats();
        /* Pages read at different moments: at most two rounds' worth. */
        if (st.blocks_in_use > 2 * LAYOUT_N || st.bytes_in_use > st.bytes_mapped_peak)
            atomic_fetch_add(&stats_bad, 1);
        atomic_fetch_add(&stats_reads, 1);
    }
    return NULL;
}

static void test_stats_while_layout_changes(void)
{
    frt_heap_trim();
    CHECK_EQ(stats().blocks_in_use, 0);
    frt__arena_set_purge_delay(0);
    frt_object **v = malloc(LAYOUT_N * sizeof *v);
    CHECK(v);
    pthread_t r;
    atomic_store(&stats_stop, 0);
    CHECK_EQ(pthread_create(&r, NULL, stats_reader, NULL), 0);
    static const size_t sizes[] = {32, 256, 48, 200, 96};
    for (int round = 0; round < 20; round++) {
        frt_type t = {"layout", sizes[round % 5], NULL, NULL, NULL, NULL};
        for (long i = 0; i < LAYOUT_N; i++)
            CHECK((v[i] = frt_new(&t)) != NULL);
        for (long i = 0; i < LAYOUT_N; i++)
            frt_decref(v[i]);
    }
    while (atomic_load(&stats_reads) < 100)
        ;
    atomic_store(&stats_stop, 1);
    CHECK_EQ(pthread_join(r, NULL), 0);
    CHECK_EQ(atomic_load(&stats_bad), 0);
    frt__arena_set_purge_delay(FRT_ARENA_PURGE_NS);
    free(v);
    frt_heap_trim();
    CHECK_EQ(stats().blocks_in_use, 0);
    CHECK_EQ(stats().bytes_in_use, 0);
}

int main(void)
{
    CHECK_EQ(frt_init(NULL), 0);
    role = ROLE_MAIN;
    test_producers_consumers();
    test_leaver(1);
    test_leaver(0); /* the thread exits attached: its exit hook detaches it */
    test_producers_consumers(); /* again, on pooled thread states and heaps */
    test_stats_while_layout_changes();
    frt_heap_stats st = stats();
    CHECK_EQ(st.blocks_in_use, 0);
    CHECK_EQ(frt_shutdown(), 0);
    st = stats();
    CHECK_EQ(st.arenas, 0);
    CHECK_EQ(st.bytes_mapped, 0);
    TEST_PASS("test_alloc_threads");
    return 0;
}
