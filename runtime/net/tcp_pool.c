/* tcp_pool.c: see tcp_pool.h. */
#include "tcp_pool.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char id[17];
    crm_node *owner;
    crm_tcp_job_fn fn;
} entry;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static entry *tab;
static size_t n, cap;

void crm_tcp_pool_add(const char *id, crm_node *owner, crm_tcp_job_fn handler)
{
    pthread_mutex_lock(&lock);
    if (n == cap) {
        cap = cap ? 2 * cap : 16;
        tab = realloc(tab, cap * sizeof *tab);
    }
    entry *e = &tab[n++];
    memset(e, 0, sizeof *e);
    strncpy(e->id, id, 16);
    e->owner = owner;
    e->fn = handler;
    pthread_mutex_unlock(&lock);
}

void crm_tcp_pool_remove(const char *id)
{
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < n; i++)
        if (!strcmp(tab[i].id, id)) {
            memmove(&tab[i], &tab[i + 1], (n - i - 1) * sizeof *tab); /* keep the order of connection */
            n--;
            break;
        }
    pthread_mutex_unlock(&lock);
}

static void post(const entry *e, const void *data, size_t len, bool reset)
{
    crm_tcp_job *j = malloc(sizeof *j + len);
    memcpy(j->id, e->id, sizeof j->id);
    j->reset = reset;
    j->len = len;
    if (len) memcpy(j->data, data, len);
    crm_node_post_ex(e->owner, (void (*)(crm_node *, void *))e->fn, free, j);
}

void crm_tcp_pool_send(const char *id, const void *data, size_t len, bool reset)
{
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < n; i++)
        if (!id || !strcmp(tab[i].id, id)) post(&tab[i], data, len, reset);
    pthread_mutex_unlock(&lock);
}
