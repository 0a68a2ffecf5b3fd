
/*
 * Pure helpers of the core.  See game_util.h.
 */

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <uuid/uuid.h>

#include "game_util.h"


int
game_media_type_is_json(const unsigned char *value, size_t len)
{
    static const char  json[] = "application/json";
    size_t             n = sizeof(json) - 1;

    while (len && (*value == ' ' || *value == '\t')) {
        value++;
        len--;
    }

    if (len < n || strncasecmp((const char *) value, json, n) != 0) {
        return 0;
    }

    value += n;
    len -= n;

    /* "application/jsonx" is another type; only parameters may follow */
    while (len && (*value == ' ' || *value == '\t')) {
        value++;
        len--;
    }

    return len == 0 || *value == ';';
}


unsigned long
game_backoff_next(unsigned long current, unsigned long min, unsigned long max)
{
    if (current < min) {
        return min;
    }

    if (current >= max / 2) {
        return max;
    }

    return current * 2;
}


size_t
game_json_error_describe(const json_error_t *err, char *buf, size_t size)
{
    int  n;

    if (size == 0) {
        return 0;
    }

    if (err->line > 0) {
        n = snprintf(buf, size, "invalid JSON at line %d, column %d: %s",
                     err->line, err->column, err->text);
    } else {
        n = snprintf(buf, size, "invalid JSON: %s", err->text);
    }

    if (n < 0) {
        buf[0] = '\0';
        return 0;
    }

    return (size_t) n < size ? (size_t) n : size - 1;
}


void
game_uuid_generate(char *out)
{
    uuid_t  u;

    uuid_generate_random(u);
    uuid_unparse_lower(u, out);
}


int
game_uuid_valid(const unsigned char *s, size_t len)
{
    char    text[GAME_UUID_LEN + 1];
    size_t  i;
    uuid_t  u;

    if (len != GAME_UUID_LEN) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (s[i] >= 'A' && s[i] <= 'F') {
            return 0;
        }
    }

    memcpy(text, s, len);
    text[len] = '\0';

    return uuid_parse(text, u) == 0;
}


size_t
game_utf8_chars(const char *s, size_t len)
{
    size_t  i, n;

    n = 0;
    for (i = 0; i < len; i++) {
        if (((unsigned char) s[i] & 0xc0) != 0x80) {
            n++;
        }
    }

    return n;
}
