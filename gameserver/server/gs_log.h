/*
 * gs_log.h: one line per event on stderr, with time, level and server id.
 */
#ifndef GS_LOG_H
#define GS_LOG_H

void gs_log_init(const char *name);
void gs_log(const char *level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif /* GS_LOG_H */
