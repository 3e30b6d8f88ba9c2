/* A model cache in the style of Python's weakref.WeakValueDictionary: a
 * hash map from model name to a weak reference to the model. The map never
 * keeps a model alive; while any thread uses a model, every lookup of its
 * name finds it, and once the last user drops it, it is freed and the
 * weakref's callback takes the dead entry out of the map.
 *
 * The locking rules this shows (docs/api.md, "Blocking sections"):
 *   - waiting for the map mutex happens inside frt_blocking_begin/end, so a
 *     stop-the-world (the collector runs them) never waits for a thread that
 *     waits for the lock;
 *   - no frt_decref of a model while holding the mutex: that decref may be
 *     the last one, which runs model_gone on this thread, which takes the
 *     mutex itself (a self-deadlock). Decrefs happen after the unlock;
 *   - building a model (frt_new, which may park at a safepoint) happens
 *     outside the lock, so two builders of one name can race: the loser
 *     uses the winner's model and throws its own away. */
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

/* ---- the map: name -> weakref, chained buckets, one mutex ---------- */
typedef struct entry { struct entry *next; const char *name; frt_weakref *wr; } entry;
static struct { pthread_mutex_t lock; entry *bucket[NBUCKETS]; size_t count; } cache = {
    .lock = PTHREAD_MUTEX_INITIALIZER};

static void cache_lock(void)
{
    if (pthread_mutex_trylock(&cache.lock) == 0)
        return;
    frt_blocking_begin();             /* the wait may last: let a stop-the-world go on */
    pthread_mutex_lock(&cache.lock);
    frt_blocking_end();
}

static entry **find(const char *name) /* under the lock */
{
    entry **pp = &cache.bucket[(strlen(name) * 31 + (unsigned char)name[0]) % NBUCKETS];
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
    cache_lock();
    entry **pp = find(ctx);
    if (*pp && (*pp)->wr == wr) {
        dead = *pp;
        *pp = dead->next;
        cache.count--;
    }
    pthread_mutex_unlock(&cache.lock);
    atomic_fetch_add(dead ? &cb_removed : &cb_stale, 1);
    if (dead) /* after the unlock: the map's reference (the runtime holds one too) */
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
    cache_lock();
    entry *e = *find(name);
    frt_object *o = e ? frt_weakref_get(e->wr) : NULL; /* NULL: dead, or dying right now */
    pthread_mutex_unlock(&cache.lock);
    if (o) {
        st->hits++;
        return (model *)o;
    }
    st->misses++;
    model *m = build(name); /* no lock held: frt_new may park */
    frt_weakref *wr = frt_weakref_new(&m->ob, model_gone, (void *)name);
    entry *fresh = malloc(sizeof *fresh);
    frt_weakref *old = NULL;
    cache_lock();
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
        cache.count++;
    }
    pthread_mutex_unlock(&cache.lock);
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
    pthread_t t[NTHREADS];
    for (int i = 0; i < NTHREADS; i++)
        pthread_create(&t[i], NULL, worker, &results[i]);
    frt_blocking_begin();
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(t[i], NULL);
    frt_blocking_end();

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
           " left in the map %zu\n", ins, rem, rep, atomic_load(&cb_stale), cache.count);
    int alive = frt_shutdown();
    printf("objects alive at shutdown: %d\n", alive);
    int ok = sum.hits + sum.misses == (unsigned long)NTHREADS * LOOKUPS && sum.misses == built &&
             sum.bad == 0 && once == built && ins == rem + rep &&
             ins + sum.races == built && cache.count == 0 && alive == 0 && sum.hits > 0;
    puts(ok ? "weak_cache: OK" : "weak_cache: FAILED");
    return ok ? 0 : 1;
}
