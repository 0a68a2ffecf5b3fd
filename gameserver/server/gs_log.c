/*
 * gs_log.c: stderr logging shared by the loop and the agent thread.
 *
 * Each line is formatted by the caller into one ring slot, under a mutex
 * held only for the copy; the writer thread takes the lines out and
 * writes them with the mutex released.  A full ring drops the line and
 * counts it: losing a log line under a flood of refusals is better than a
 * late tick for every player.  The writer reports the losses as a line of
 * its own.
 */

#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gs_log.h"


#define GS_LOG_LINE   1024
#define GS_LOG_RING   512               /* lines: 512 KiB */


static char             gs_log_name[80] = "game-server";

static pthread_mutex_t  gs_log_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t   gs_log_cv = PTHREAD_COND_INITIALIZER;
static pthread_t        gs_log_thread;
static int              gs_log_running, gs_log_stopping, gs_log_done;
static char             gs_log_ring[GS_LOG_RING][GS_LOG_LINE];
static unsigned         gs_log_head, gs_log_count;
static uint64_t         gs_log_lost, gs_log_lost_told;


void
gs_log_init(const char *name)
{
    snprintf(gs_log_name, sizeof(gs_log_name), "%s", name);
}


/* one write(2) per line; stderr may be a pipe other processes share */
static void
gs_log_write(const char *line)
{
    size_t   len = strlen(line), off;
    ssize_t  n;

    for (off = 0; off < len; off += (size_t) n) {
        n = write(STDERR_FILENO, line + off, len - off);
        if (n <= 0) {
            return;
        }
    }
}


static void *
gs_log_writer(void *arg)
{
    char      line[GS_LOG_LINE];
    char      note[256];
    uint64_t  lost;

    pthread_mutex_lock(&gs_log_mu);
    for ( ;; ) {
        while (gs_log_count == 0 && !gs_log_stopping) {
            pthread_cond_wait(&gs_log_cv, &gs_log_mu);
        }
        if (gs_log_count == 0) {
            break;
        }
        memcpy(line, gs_log_ring[gs_log_head], GS_LOG_LINE);
        gs_log_head = (gs_log_head + 1) % GS_LOG_RING;
        gs_log_count--;
        lost = gs_log_lost - gs_log_lost_told;
        gs_log_lost_told = gs_log_lost;
        pthread_mutex_unlock(&gs_log_mu);

        gs_log_write(line);
        if (lost > 0) {
            snprintf(note, sizeof(note), "%s [warn] %llu log lines dropped: "
                     "stderr could not keep up\n", gs_log_name,
                     (unsigned long long) lost);
            gs_log_write(note);
        }

        pthread_mutex_lock(&gs_log_mu);
    }
    gs_log_done = 1;
    pthread_cond_broadcast(&gs_log_cv);
    pthread_mutex_unlock(&gs_log_mu);
    return NULL;
}


int
gs_log_start(void)
{
    if (pthread_create(&gs_log_thread, NULL, gs_log_writer, NULL) != 0) {
        return -1;
    }
    pthread_mutex_lock(&gs_log_mu);
    gs_log_running = 1;
    pthread_mutex_unlock(&gs_log_mu);
    return 0;
}


/*
 * Up to a second for the queued lines: a writer stuck on a stderr nobody
 * reads must not keep the process from exiting, so it is then left
 * behind (exit ends it).
 */
void
gs_log_stop(void)
{
    struct timespec  until;
    int              done;

    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 1;

    pthread_mutex_lock(&gs_log_mu);
    if (!gs_log_running) {
        pthread_mutex_unlock(&gs_log_mu);
        return;
    }
    gs_log_stopping = 1;
    pthread_cond_broadcast(&gs_log_cv);
    while (!gs_log_done) {
        if (pthread_cond_timedwait(&gs_log_cv, &gs_log_mu, &until) != 0) {
            break;
        }
    }
    done = gs_log_done;
    gs_log_running = 0;     /* from now on, lines are written directly */
    pthread_mutex_unlock(&gs_log_mu);

    if (done) {
        pthread_join(gs_log_thread, NULL);
    } else {
        pthread_detach(gs_log_thread);
    }
}


uint64_t
gs_log_dropped(void)
{
    uint64_t  n;

    pthread_mutex_lock(&gs_log_mu);
    n = gs_log_lost;
    pthread_mutex_unlock(&gs_log_mu);
    return n;
}


void
gs_log(const char *level, const char *fmt, ...)
{
    char             line[GS_LOG_LINE];
    struct timespec  ts;
    struct tm        tm;
    va_list          ap;
    int              n;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = snprintf(line, sizeof(line), "%02d:%02d:%02d.%03ld %s [%s] ",
                 tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
                 gs_log_name, level);
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof(line) - 1 - (size_t) n, fmt, ap);
    va_end(ap);
    n = (int) strlen(line);
    line[n++] = '\n';
    line[n] = '\0';

    pthread_mutex_lock(&gs_log_mu);
    if (!gs_log_running) {
        pthread_mutex_unlock(&gs_log_mu);
        gs_log_write(line);
        return;
    }
    if (gs_log_count == GS_LOG_RING) {
        gs_log_lost++;
    } else {
        memcpy(gs_log_ring[(gs_log_head + gs_log_count) % GS_LOG_RING], line,
               (size_t) n + 1);
        gs_log_count++;
        pthread_cond_signal(&gs_log_cv);
    }
    pthread_mutex_unlock(&gs_log_mu);
}
