
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


/* characters of UTF-8 text (not bytes): the code points' first bytes;
 * the text is taken as valid (jansson's strings are) */
size_t game_utf8_chars(const char *s, size_t len);


/*
 * Ids.  Every id we hand out is a random (version 4) UUID in canonical
 * text: 36 characters, lower case.  PostgreSQL and libuuid read upper case
 * too, but a Redis key or a text comparison does not, so upper case is
 * refused: one id, one spelling.
 */
#define GAME_UUID_LEN  36

/* writes 37 bytes: the UUID and a NUL */
void game_uuid_generate(char *out);
int game_uuid_valid(const unsigned char *s, size_t len);


#endif /* _GAME_UTIL_H_INCLUDED_ */
