/*
 * gs_log.c: stderr logging shared by the loop and the agent thread.
 *
 * Each line is formatted into one buffer and written with one fprintf, so
 * lines from the two threads do not interleave mid-line.
 */

#define _POSIX_C_SOURCE 200809L

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "gs_log.h"


static char  gs_log_name[80] = "game-server";


void
gs_log_init(const char *name)
{
    snprintf(gs_log_name, sizeof(gs_log_name), "%s", name);
}


void
gs_log(const char *level, const char *fmt, ...)
{
    char             line[1024];
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
    vsnprintf(line + n, sizeof(line) - (size_t) n, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s\n", line);
}
