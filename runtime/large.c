/* Objects above FRT_SMALL_MAX: each mapped from the OS on its own, behind a
 * 64-byte header that links it into one list (the collector walks it like a
 * page). They are rare, so a mutex is enough. */
#include <pthread.h>
#include <stdint.h>

#include "fork.h"
#include "os.h"
#include "pool.h"

typedef struct large_hdr {
    struct large_hdr *prev, *next;
    size_t map_size;
    size_t obj_size;
    uint64_t pad[4]; /* keeps the object 64-byte aligned */
} large_hdr;

_Static_assert(sizeof(large_hdr) == 64, "large object header must stay 64 bytes");

static pthread_mutex_t large_lock = PTHREAD_MUTEX_INITIALIZER;
static large_hdr *large_list;
static size_t large_count, large_bytes;

void frt__large_fork(int phase)
{
    frt__fork_mutex(&large_lock, phase);
}

void *frt__large_alloc(size_t size)
{
    if (size > SIZE_MAX - sizeof(large_hdr) - 4096)
        return NULL; /* rounding up would wrap */
    size_t map = (size + sizeof(large_hdr) + 4095) & ~(size_t)4095;
    large_hdr *h = frt__os_map(map, 4096);
    if (!h)
        return NULL;
    h->map_size = map;
    h->obj_size = size;
    pthread_mutex_lock(&large_lock);
    h->prev = NULL;
    h->next = large_list;
    if (large_list)
        large_list->prev = h;
    large_list = h;
    large_count++;
    large_bytes += size;
    pthread_mutex_unlock(&large_lock);
    frt__mapped_bytes_add(map, 1);
    return h + 1;
}

void frt__large_free(void *obj)
{
    large_hdr *h = (large_hdr *)obj - 1;
    pthread_mutex_lock(&large_lock);
    if (h->prev)
        h->prev->next = h->next;
    else
        large_list = h->next;
    if (h->next)
        h->next->prev = h->prev;
    large_count--;
    large_bytes -= h->obj_size;
    pthread_mutex_unlock(&large_lock);
    frt__mapped_bytes_add(h->map_size, -1);
    frt__os_unmap(h, h->map_size);
}

void frt__large_walk(frt_block_visit fn, void *arg)
{
    pthread_mutex_lock(&large_lock);
    for (large_hdr *h = large_list; h; h = h->next)
        fn(h + 1, h->obj_size, arg);
    pthread_mutex_unlock(&large_lock);
}

void frt__large_stats(size_t *count, size_t *bytes)
{
    pthread_mutex_lock(&large_lock);
    *count = large_count;
    *bytes = large_bytes;
    pthread_mutex_unlock(&large_lock);
}

void frt__large_release_all(void)
{
    pthread_mutex_lock(&large_lock);
    large_hdr *h = large_list;
    large_list = NULL;
    large_count = large_bytes = 0;
    pthread_mutex_unlock(&large_lock);
    while (h) {
        large_hdr *next = h->next;
        frt__mapped_bytes_add(h->map_size, -1);
        frt__os_unmap(h, h->map_size);
        h = next;
    }
}
