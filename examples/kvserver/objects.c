/* kv_str and kv_list: the frt types of the key-value server (objects.h). */
#include "objects.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- kv_str: no references, so no traverse/clear/destroy ----------------- */

const frt_type kv_str_type = {"kv.str", sizeof(kv_str), NULL, NULL, NULL, NULL};

kv_str *kv_str_new(const void *data, size_t len)
{
    kv_str *s = (kv_str *)frt_new_var(&kv_str_type, len + 1); /* frt_new polls: may park */
    if (!s)
        return NULL;
    s->len = len;
    if (len)
        memcpy(s->data, data, len);
    s->data[len] = '\0';
    return s;
}

kv_str *kv_str_from_ll(long long v)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%lld", v);
    return kv_str_new(tmp, (size_t)n);
}

/* ---- kv_list: a container ------------------------------------------------ */

/* The collector calls traverse with the world stopped: no thread is in the
 * middle of changing the list, because list code never reaches a safepoint
 * (it does not allocate frt objects, only realloc its ring). */
static int list_traverse(frt_object *self, frt_visit_fn visit, void *arg)
{
    kv_list *l = (kv_list *)self;
    for (size_t i = 0; i < l->len; i++) {
        int r = visit(l->items[(l->head + i) % l->cap], arg);
        if (r)
            return r;
    }
    return 0;
}

/* clear drops every reference the list holds. The collector calls it on
 * garbage lists (nobody else can reach them); destroy calls it when the
 * last reference goes. The elements are strings, whose decrefs run no code
 * of ours, so this never re-enters the list. */
static void list_clear(frt_object *self)
{
    kv_list *l = (kv_list *)self;
    size_t n = l->len, head = l->head, cap = l->cap;
    frt_object **items = l->items;
    l->len = 0;
    l->head = 0;
    for (size_t i = 0; i < n; i++)
        frt_decref(items[(head + i) % cap]);
}

static void list_destroy(frt_object *self)
{
    kv_list *l = (kv_list *)self;
    list_clear(self);
    free(l->items);
    l->items = NULL;
    l->cap = 0;
}

const frt_type kv_list_type = {"kv.list", sizeof(kv_list), list_traverse, list_clear, NULL, list_destroy};

kv_list *kv_list_new(void)
{
    return (kv_list *)frt_new(&kv_list_type); /* zeroed: empty, no ring yet */
}

static int list_grow(kv_list *l)
{
    size_t cap = l->cap ? l->cap * 2 : 8;
    frt_object **items = malloc(cap * sizeof *items);
    if (!items)
        return -1;
    for (size_t i = 0; i < l->len; i++)
        items[i] = l->items[(l->head + i) % l->cap];
    free(l->items);
    l->items = items;
    l->head = 0;
    l->cap = cap;
    return 0;
}

int kv_list_push(kv_list *l, frt_object *item, int left)
{
    if (l->len == l->cap && list_grow(l) != 0)
        return -1;
    if (left) {
        l->head = (l->head + l->cap - 1) % l->cap;
        l->items[l->head] = item;
    } else {
        l->items[(l->head + l->len) % l->cap] = item;
    }
    l->len++;
    return 0;
}

frt_object *kv_list_pop(kv_list *l, int left)
{
    if (l->len == 0)
        return NULL;
    frt_object *o;
    if (left) {
        o = l->items[l->head];
        l->head = (l->head + 1) % l->cap;
    } else {
        o = l->items[(l->head + l->len - 1) % l->cap];
    }
    l->len--;
    return o;
}

frt_object *kv_list_at(const kv_list *l, size_t i)
{
    return i < l->len ? l->items[(l->head + i) % l->cap] : NULL;
}
