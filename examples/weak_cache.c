/* A model cache in the style of Python's weakref.WeakValueDictionary: a
 * hash map from model name to a weak reference to the model. The map never
 * keeps a model alive; while any thread uses a model, every lookup of its
 * name finds it, and once the last user drops it, it is freed and the
 * weakref's callback takes the dead entry out of the map.
 *
 * The map is an frt object and its fields are read and changed only inside
 * a critical section on it (docs/api.md, "Locks and critical sections"):
 * lookups, inserts and the weakref callback alike. The callback may run on
 * any thread, also on one that is inside such a section already, and the
 * section in a callback never deadlocks: a thread that waits for a lock
 * first lets go of the sections it holds. What the code does keep in mind
 * is that a decref or an frt_new may run a callback that changes the map,
 * so it does those outside the section, or looks the entry up again after.
 * Building a model happens outside the section, so two builders of one
 * name can race: the loser uses the winner's model and throws its own away. */
#include <frt/frt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NTHREADS 4
#define LOOKUPS 20000 /* per thread */
#define HOLD 3        /* models a thread keeps in use at once */
#define NWEIGHTS 512
#define MAX_MODELS (NTHREADS * LOOKUPS)
#define NBUCKETS 8

static const char *const names[] = {"resnet50", "bert-base", "gpt2", "t5-small", "whisper",
                                    "clip", "yolo", "llama-7b", "vit", "wav2vec"};
#define NNAMES (sizeof names / sizeof names[0])

typedef struct model {
    frt_object ob;
    const char *name;
    unsigned serial;
    double *weights; /* the payload, a malloc'ed buffer freed in destroy */
} model;

static _Atomic unsigned next_serial;
static _Atomic unsigned char destroyed[MAX_MODELS];
static _Atomic unsigned long cb_removed, cb_stale, inserted, replaced;

static void model_destroy(frt_object *self)
{
    model *m = (model *)self;
    free(m->weights);
    atomic_fetch_add(&destroyed[m->serial], 1);
}
static const frt_type model_type = {"model", sizeof(model), NULL, NULL, NULL, model_destroy};

/* ---- the map: name -> weakref, chained buckets ---------------------- */
typedef struct entry { struct entry *next; const char *name; frt_weakref *wr; } entry;
typedef struct cache_map {
    frt_object ob;
    entry *bucket[NBUCKETS];
    size_t count;
} cache_map;
static void cache_destroy(frt_object *self)
{
    cache_map *c = (cache_map *)self;
    for (int b = 0; b < NBUCKETS; b++)
        for (entry *e = c->bucket[b], *next; e; e = next) {
            next = e->next;
            frt_decref(frt_weakref_object(e->wr));
            free(e);
        }
}
static const frt_type cache_type = {"cache", sizeof(cache_map), NULL, NULL, NULL, cache_destroy};
static cache_map *cache;
static size_t cache_left; /* count when the cache went */

static entry **find(const char *name) /* inside a critical section on cache */
{
    entry **pp = &cache->bucket[(strlen(name) * 31 + (unsigned char)name[0]) % NBUCKETS];
    while (*pp && strcmp((*pp)->name, name) != 0)
        pp = &(*pp)->next;
    return pp;
}

/* The weakref callback: runs on whichever thread dropped the model's last
 * reference, after the weakref was cleared. ctx is the name. The entry may
 * already hold a newer weakref (a lookup replaced the dead one): then leave
 * it alone. */
static void model_gone(frt_weakref *wr, void *ctx)
{
    entry *dead = NULL;
    FRT_BEGIN_CRITICAL_SECTION(cache);
    entry **pp = find(ctx);
    if (*pp && (*pp)->wr == wr) {
        dead = *pp;
        *pp = dead->next;
        cache->count--;
    }
    FRT_END_CRITICAL_SECTION();
    atomic_fetch_add(dead ? &cb_removed : &cb_stale, 1);
    if (dead) /* the map's reference (the runtime holds one too) */
        frt_decref(frt_weakref_object(dead->wr));
    free(dead);
}

static model *build(const char *name)
{
    model *m = (model *)frt_new(&model_type);
    m->name = name;
    m->serial = atomic_fetch_add(&next_serial, 1);
    m->weights = malloc(NWEIGHTS * sizeof(double));
    for (int i = 0; i < NWEIGHTS; i++)
        m->weights[i] = m->serial + i;
    return m;
}

typedef struct stats { unsigned long hits, misses, races, bad; } stats;

/* A new reference to the model called name, from the cache or built. */
static model *lookup(const char *name, stats *st)
{
    frt_object *o;
    FRT_BEGIN_CRITICAL_SECTION(cache);
    entry *e = *find(name);
    o = e ? frt_weakref_get(e->wr) : NULL; /* NULL: dead, or dying right now */
    FRT_END_CRITICAL_SECTION();
    if (o) {
        st->hits++;
        return (model *)o;
    }
    st->misses++;
    model *m = build(name); /* outside: frt_new may run callbacks that change the map */
    frt_weakref *wr = frt_weakref_new(&m->ob, model_gone, (void *)name);
    entry *fresh = malloc(sizeof *fresh);
    frt_weakref *old = NULL;
    FRT_BEGIN_CRITICAL_SECTION(cache);
    entry **pp = find(name);
    if (*pp && (o = frt_weakref_get((*pp)->wr)) != NULL) {
        /* someone else built it meanwhile: use theirs */
    } else if (*pp) {
        old = (*pp)->wr; /* a dead entry whose callback has not run yet */
        (*pp)->wr = wr;
    } else {
        *fresh = (entry){NULL, name, wr};
        *pp = fresh;
        fresh = NULL;
        cache->count++;
    }
    FRT_END_CRITICAL_SECTION();
    free(fresh);
    if (o) {
        st->races++;
        frt_decref(frt_weakref_object(wr)); /* the weakref first: its callback never runs */
        frt_decref(&m->ob);
        return (model *)o;
    }
    atomic_fetch_add(&inserted, 1);
    atomic_fetch_add(&replaced, old != NULL);
    if (old) /* its target is dead or dying, maybe on another thread right now */
        frt_decref(frt_weakref_object(old));
    return m;
}

static void use(model *m, const char *name, stats *st)
{
    double sum = 0;
    for (int i = 0; i < NWEIGHTS; i += 8)
        sum += m->weights[i] - i;
    st->bad += strcmp(m->name, name) != 0 || sum != (double)m->serial * (NWEIGHTS / 8);
}

static stats results[NTHREADS];

static void *worker(void *arg)
{
    stats *st = arg;
    unsigned seed = (unsigned)(st - results) * 7919u + 1;
    model *held[HOLD] = {0};
    const char *held_name[HOLD] = {0};
    frt_thread_attach();
    for (int i = 0; i < LOOKUPS; i++) {
        int k = i % HOLD;
        if (held[k]) {
            use(held[k], held_name[k], st);
            frt_decref(&held[k]->ob); /* maybe the last user: model_gone runs here */
        }
        seed = seed * 1103515245u + 12345u;
        held_name[k] = names[(seed >> 16) % NNAMES];
        held[k] = lookup(held_name[k], st);
        use(held[k], held_name[k], st);
        frt_safepoint(); /* hits poll nowhere else */
    }
    for (int k = 0; k < HOLD; k++)
        frt_decref(&held[k]->ob);
    frt_thread_detach();
    return NULL;
}

int main(void)
{
    frt_init(NULL);
    cache = (cache_map *)frt_new(&cache_type);
    pthread_t t[NTHREADS];
    for (int i = 0; i < NTHREADS; i++)
        pthread_create(&t[i], NULL, worker, &results[i]);
    frt_blocking_begin();
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(t[i], NULL);
    frt_blocking_end();
    cache_left = cache->count; /* every model is gone: so is every entry */
    frt_decref(&cache->ob);

    stats sum = {0};
    for (int i = 0; i < NTHREADS; i++) {
        sum.hits += results[i].hits;
        sum.misses += results[i].misses;
        sum.races += results[i].races;
        sum.bad += results[i].bad;
    }
    unsigned built = atomic_load(&next_serial), once = 0;
    for (unsigned s = 0; s < built; s++)
        once += atomic_load(&destroyed[s]) == 1;
    unsigned long ins = atomic_load(&inserted), rem = atomic_load(&cb_removed), rep = replaced;
    printf("lookups %lu: hits %lu, misses %lu (lost build races %lu), bad payloads %lu\n",
           sum.hits + sum.misses, sum.hits, sum.misses, sum.races, sum.bad);
    printf("models built %u, destroyed exactly once %u\n", built, once);
    printf("entries inserted %lu = removed by callback %lu + replaced %lu (stale callbacks %lu);"
           " left in the map %zu\n", ins, rem, rep, atomic_load(&cb_stale), cache_left);
    int alive = frt_shutdown();
    printf("objects alive at shutdown: %d\n", alive);
    int ok = sum.hits + sum.misses == (unsigned long)NTHREADS * LOOKUPS && sum.misses == built &&
             sum.bad == 0 && once == built && ins == rem + rep &&
             ins + sum.races == built && cache_left == 0 && alive == 0 && sum.hits > 0;
    puts(ok ? "weak_cache: OK" : "weak_cache: FAILED");
    return ok ? 0 : 1;
}
