/*
 * gs_log.h: the game server's log, one JSON object per line on stderr.
 *
 * Each line carries time, level, service ("game-server"), server (the
 * server id), pid, the event's name when it has one, msg, and the event's
 * fields as typed JSON values: see gs_logline.h.  gs_log_event() is for
 * the events operators query by name; gs_log() for the free-form rest.
 * Never give either a ticket, a token or a key: player ids are fine.
 *
 * Neither waits for stderr: lines go into a bounded ring that a writer
 * thread drains, so a slow or blocked log consumer cannot stall the tick
 * loop.  When the ring is full a line is dropped and counted, and the
 * writer says how many were lost (event log_lines_lost) once it catches
 * up.  Before gs_log_start() (and after gs_log_stop()) lines are written
 * directly.
 */
#ifndef GS_LOG_H
#define GS_LOG_H

#include <stdint.h>

#include <jansson.h>

#include "gs_logline.h"

/* the server id; before it, lines say "" */
void gs_log_init(const char *server_id);
/* 0, or -1 when the writer thread cannot start (lines are then written
 * directly, as before it started) */
int gs_log_start(void);
/* write out what is queued and join the writer */
void gs_log_stop(void);
uint64_t gs_log_dropped(void);
/* who this process is, for lines written elsewhere (the lifecycle lines) */
const gs_logline_who_t *gs_log_who(void);

/* level: "error", "warn", "info" or "debug" */
void gs_log(const char *level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* fields: a JSON object (json_pack), stolen; NULL for none */
void gs_log_event(const char *level, const char *event, json_t *fields,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#endif /* GS_LOG_H */
