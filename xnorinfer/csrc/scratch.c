#include "scratch.h"

#include <stdint.h>
#include <stdlib.h>

/* A thread's buffers, found through a pthread key whose destructor frees them when the thread
 * exits (a thread-local pointer alone would leak the buffers of every thread a program retires).
 * On Windows a thread-local pointer stands in for the key: a retired thread's buffers stay. */
typedef struct {
    void *raw[XI_SCRATCH_SLOTS];
    size_t size[XI_SCRATCH_SLOTS];
} pool;

static void pool_free(void *p)
{
    pool *t = (pool *)p;
    if (!t)
        return;
    for (int i = 0; i < XI_SCRATCH_SLOTS; ++i)
        free(t->raw[i]);
    free(t);
}

#if defined(_WIN32)
static __declspec(thread) pool *this_pool;
static pool *get_pool(int create)
{
    if (!this_pool && create)
        this_pool = (pool *)calloc(1, sizeof(pool));
    return this_pool;
}
static void forget_pool(void)
{
    this_pool = NULL;
}
#else
#include <pthread.h>
static pthread_key_t key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static int key_ok = 0;
static void make_key(void)
{
    key_ok = pthread_key_create(&key, pool_free) == 0;
}
static pool *get_pool(int create)
{
    pthread_once(&key_once, make_key);
    if (!key_ok)
        return NULL;
    pool *t = (pool *)pthread_getspecific(key);
    if (!t && create) {
        t = (pool *)calloc(1, sizeof(pool));
        if (t && pthread_setspecific(key, t) != 0) {
            free(t);
            t = NULL;
        }
    }
    return t;
}
static void forget_pool(void)
{
    if (key_ok)
        pthread_setspecific(key, NULL);
}
#endif

enum { ALIGN = 64 };

void *xi_scratch(int slot, size_t bytes)
{
    if (slot < 0 || slot >= XI_SCRATCH_SLOTS)
        return NULL;
    pool *t = get_pool(1);
    if (!t)
        return NULL;
    if (t->size[slot] < bytes || !t->raw[slot]) {
        /* Grow by at least half again, so a sequence of growing requests reallocates rarely. */
        size_t want = bytes + bytes / 2 + ALIGN;
        free(t->raw[slot]);
        t->raw[slot] = malloc(want);
        t->size[slot] = t->raw[slot] ? want - ALIGN : 0;
        if (!t->raw[slot])
            return NULL;
    }
    return (void *)(((uintptr_t)t->raw[slot] + ALIGN - 1) / ALIGN * ALIGN);
}

void xi_scratch_release(void)
{
    pool *t = get_pool(0);
    if (t) {
        forget_pool();
        pool_free(t);
    }
}
