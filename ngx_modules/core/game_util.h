
/*
 * Small pure helpers of the core, free of nginx types so that the unit
 * tests (tests/unit) exercise them directly.
 */

#ifndef _GAME_UTIL_H_INCLUDED_
#define _GAME_UTIL_H_INCLUDED_


#include <stddef.h>
#include <jansson.h>


/* 1 when a Content-Type header value names JSON ("application/json",
 * any case, optional parameters such as "; charset=utf-8"), else 0 */
int game_media_type_is_json(const unsigned char *value, size_t len);

/* the reconnect delay after "current": doubles from "min", capped at "max" */
unsigned long game_backoff_next(unsigned long current, unsigned long min,
    unsigned long max);

/* a message for a client saying where its JSON went wrong; returns the
 * length written (always NUL-terminated, truncated to "size") */
size_t game_json_error_describe(const json_error_t *err, char *buf,
    size_t size);


#endif /* _GAME_UTIL_H_INCLUDED_ */
