/*
 * gs_log.h: one line per event on stderr, with time, level and server id.
 *
 * gs_log() never waits for stderr: lines go into a bounded ring that a
 * writer thread drains, so a slow or blocked log consumer cannot stall the
 * tick loop.  When the ring is full a line is dropped and counted, and the
 * writer says how many were lost once it catches up.  Before
 * gs_log_start() (and after gs_log_stop()) lines are written directly.
 */
#ifndef GS_LOG_H
#define GS_LOG_H

#include <stdint.h>

void gs_log_init(const char *name);
/* 0, or -1 when the writer thread cannot start (lines are then written
 * directly, as before it started) */
int gs_log_start(void);
/* write out what is queued and join the writer */
void gs_log_stop(void);
uint64_t gs_log_dropped(void);
void gs_log(const char *level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif /* GS_LOG_H */
