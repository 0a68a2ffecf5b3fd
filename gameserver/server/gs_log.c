/*
 * gs_log.c: the JSON log shared by the loop and the agent thread.
 *
 * Each line is built by the caller, whole, into a buffer the size of a
 * ring slot (gs_logline_build: jansson's json_dumpb into that buffer, cut
 * to fit), then copied into a slot under a mutex held only for the copy;
 * the writer thread takes the lines out and writes them with the mutex
 * released.  A full ring drops the line and counts it: losing a log line
 * under a flood of refusals is better than a late tick for every player.
 * The writer reports the losses as a line of its own.
 *
 * Why the caller builds the JSON, not the writer: the line then holds the
 * time and the values of the moment it was logged, a slot holds finished
 * bytes that the writer only copies out, and the fields keep the types
 * the caller gave them without a second typed format of our own in the
 * ring for the writer to rebuild JSON from.  The price on the tick is
 * jansson's few small allocations for one line's object, bounded by the
 * slot (what does not fit is cut, never grown), and paid only on the
 * rare lines: everything a client can make happen at will (refusals,
 * connects, late ticks) is held to a few lines a second by its
 * gs_logline_budget_t.  No log call writes to or waits for stderr.
 */

#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gs_log.h"


#define GS_LOG_LINE   1024              /* a slot: line, newline, NUL */
#define GS_LOG_RING   512               /* lines: 512 KiB */


static gs_logline_who_t  gs_log_self;
static int               gs_log_named;

static pthread_mutex_t  gs_log_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t   gs_log_cv = PTHREAD_COND_INITIALIZER;
static pthread_t        gs_log_thread;
static int              gs_log_running, gs_log_stopping, gs_log_done;
static char             gs_log_ring[GS_LOG_RING][GS_LOG_LINE];
static unsigned         gs_log_head, gs_log_count;
static uint64_t         gs_log_lost, gs_log_lost_told;


void
gs_log_init(const char *server_id)
{
    gs_logline_who(&gs_log_self, "game-server", "server", server_id,
                   (long) getpid());
    gs_log_named = 1;
}


/* set in main before any thread starts, read only afterwards */
const gs_logline_who_t *
gs_log_who(void)
{
    if (!gs_log_named) {
        gs_log_init("");
    }
    return &gs_log_self;
}


static int64_t
gs_log_wall_ms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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


/* built here, on the writer's side: the ring had no room for it */
static void
gs_log_write_lost(uint64_t lost)
{
    char  note[GS_LOG_LINE], msg[128];

    snprintf(msg, sizeof(msg), "%llu log lines dropped: stderr could not "
             "keep up", (unsigned long long) lost);
    if (gs_logline_build(note, sizeof(note), gs_log_who(), gs_log_wall_ms(),
                         "warn", "log_lines_lost", msg,
                         json_pack("{s:I}", "lost", (json_int_t) lost)) > 0)
    {
        gs_log_write(note);
    }
}


static void *
gs_log_writer(void *arg)
{
    char      line[GS_LOG_LINE];
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
            gs_log_write_lost(lost);
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


/* a finished line (n bytes and its NUL) into the ring, or to stderr */
static void
gs_log_put(const char *line, size_t n)
{
    pthread_mutex_lock(&gs_log_mu);
    if (!gs_log_running) {
        pthread_mutex_unlock(&gs_log_mu);
        if (n > 0) {
            gs_log_write(line);
        }
        return;
    }
    if (n == 0 || gs_log_count == GS_LOG_RING) {
        gs_log_lost++;          /* no room, or no memory to build it */
    } else {
        memcpy(gs_log_ring[(gs_log_head + gs_log_count) % GS_LOG_RING], line,
               n + 1);
        gs_log_count++;
        pthread_cond_signal(&gs_log_cv);
    }
    pthread_mutex_unlock(&gs_log_mu);
}


/*
 * A message longer than its buffer is cut by vsnprintf; the buffer is a
 * whole slot, so such a message never fits the line with its envelope,
 * and the builder cuts it again and says "truncated".
 */
static void
gs_log_va(const char *level, const char *event, json_t *fields,
    const char *fmt, va_list ap)
{
    char    msg[GS_LOG_LINE], line[GS_LOG_LINE];
    size_t  n;

    vsnprintf(msg, sizeof(msg), fmt, ap);
    n = gs_logline_build(line, sizeof(line), gs_log_who(), gs_log_wall_ms(),
                         level, event, msg, fields);
    gs_log_put(line, n);
}


void
gs_log(const char *level, const char *fmt, ...)
{
    va_list  ap;

    va_start(ap, fmt);
    gs_log_va(level, NULL, NULL, fmt, ap);
    va_end(ap);
}


void
gs_log_event(const char *level, const char *event, json_t *fields,
    const char *fmt, ...)
{
    va_list  ap;

    va_start(ap, fmt);
    gs_log_va(level, event, fields, fmt, ap);
    va_end(ap);
}
