/* udp_ports.c: see udp_ports.h. A small array under a mutex: flows have a
 * handful of UDP ports at most. */
#include "udp_ports.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

typedef struct {
    int port, fd;
    const void *owner;
} entry;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static entry *tab;
static size_t n, cap;

int crm_udp_port_add(int port, int fd, const void *owner)
{
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < n; i++)
        if (tab[i].port == port) {
            pthread_mutex_unlock(&lock);
            return -1;
        }
    if (n == cap) {
        cap = cap ? 2 * cap : 8;
        tab = realloc(tab, cap * sizeof *tab);
    }
    tab[n++] = (entry){port, fd, owner};
    pthread_mutex_unlock(&lock);
    return 0;
}

void crm_udp_port_remove(int port, const void *owner)
{
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < n; i++)
        if (tab[i].port == port && tab[i].owner == owner) {
            tab[i] = tab[--n];
            break;
        }
    pthread_mutex_unlock(&lock);
}

int crm_udp_port_dup(int port)
{
    int fd = -1;
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < n; i++)
        if (tab[i].port == port) {
            fd = fcntl(tab[i].fd, F_DUPFD_CLOEXEC, 0);
            break;
        }
    pthread_mutex_unlock(&lock);
    return fd;
}
