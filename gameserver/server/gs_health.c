/*
 * gs_health.c: the health file (see gs_health.h), both halves.
 *
 * The writer touches the mapping with atomic stores only: a tick costs a
 * few memory writes, and the kernel carries them to the file's pages,
 * which a reader's pread sees at once (one page cache, no msync needed).
 */

#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "gs_health.h"


gs_health_t *
gs_health_open(const char *path, char *err, size_t errlen)
{
    int           fd;
    gs_health_t  *h;

    fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd == -1) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }

    if (ftruncate(fd, sizeof(gs_health_t)) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        close(fd);
        return NULL;
    }

    h = mmap(NULL, sizeof(gs_health_t), PROT_READ | PROT_WRITE, MAP_SHARED,
             fd, 0);
    close(fd);      /* the mapping keeps the file */

    if (h == MAP_FAILED) {
        snprintf(err, errlen, "%s: mmap: %s", path, strerror(errno));
        return NULL;
    }

    h->version = GS_HEALTH_VERSION;
    h->pid = (int32_t) getpid();
    h->phase = GS_HEALTH_IDLE;
    __atomic_store_n(&h->magic, GS_HEALTH_MAGIC, __ATOMIC_RELEASE);

    return h;
}


void
gs_health_tick(gs_health_t *h, int64_t now_ms, unsigned phase,
    unsigned players)
{
    if (h == NULL) {
        return;
    }

    __atomic_store_n(&h->phase, phase, __ATOMIC_RELAXED);
    __atomic_store_n(&h->players, players, __ATOMIC_RELAXED);
    __atomic_store_n(&h->ticks, h->ticks + 1, __ATOMIC_RELAXED);
    __atomic_store_n(&h->last_tick_ms, now_ms, __ATOMIC_RELEASE);
}


/* the loop's recent p99, for the fleet manager's metrics */
void
gs_health_tick_time(gs_health_t *h, uint32_t tick_p99_us)
{
    if (h != NULL) {
        __atomic_store_n(&h->tick_p99_us, tick_p99_us, __ATOMIC_RELAXED);
    }
}


void
gs_health_close(gs_health_t *h)
{
    if (h != NULL) {
        munmap(h, sizeof(gs_health_t));
    }
}


int
gs_health_read(const char *path, gs_health_t *out)
{
    int      fd;
    ssize_t  n;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
        return -1;
    }

    n = pread(fd, out, sizeof(*out), 0);
    close(fd);

    if (n != (ssize_t) sizeof(*out) || out->magic != GS_HEALTH_MAGIC
        || out->version != GS_HEALTH_VERSION)
    {
        return -1;
    }

    return 0;
}
