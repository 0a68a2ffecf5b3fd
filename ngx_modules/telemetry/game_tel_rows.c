/*
 * game_tel_rows.c: a batch's events as COPY rows of the writer's staging
 * table (game_tel_rows.h says which, and why each value is what it is).
 */

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "game_tel_rows.h"


static int game_tel_rows_room(game_tel_sink_t *sink, size_t n);
static int game_tel_rows_put(game_tel_sink_t *sink, const char *s,
    size_t len);
static int game_tel_rows_escaped(game_tel_sink_t *sink, const char *s,
    size_t len);
static int game_tel_rows_text(game_tel_sink_t *sink, json_t *v);
static int game_tel_rows_json(game_tel_sink_t *sink, json_t *v);
static int game_tel_rows_dumped(const char *buffer, size_t size,
    void *data);


int
game_tel_seq_base(const char *id, size_t len, int64_t *base)
{
    size_t    i, dash;
    uint64_t  ms, n;

    dash = 0;
    ms = 0;
    n = 0;

    for (i = 0; i < len; i++) {
        if (id[i] == '-' && dash == 0 && i > 0) {
            dash = i;
            continue;
        }

        if (id[i] < '0' || id[i] > '9') {
            return -1;
        }

        /* both halves are bigints for PostgreSQL: larger is refused */
        if (dash == 0) {
            if (ms > (INT64_MAX - 9) / 10) {
                return -1;
            }
            ms = ms * 10 + (id[i] - '0');

        } else {
            if (n > (INT64_MAX - 9) / 10) {
                return -1;
            }
            n = n * 10 + (id[i] - '0');
        }
    }

    if (dash == 0 || dash == len - 1) {
        return -1;
    }

    if (n > 4095) {
        n = 4095;
    }

    /* PostgreSQL's bigint << wraps the same way past 2^63 (year 2039) */
    *base = (int64_t) ((ms << 22) | (n << 10));

    return 0;
}


long
game_tel_rows(game_tel_sink_t *sink, json_t *events, int64_t seq_base,
    const char *source, size_t source_len, const char *player,
    size_t player_len)
{
    int      rc;
    char     num[24];
    size_t   k;
    json_t  *ev, *payload;

    if (!json_is_array(events)) {
        return -1;
    }

    json_array_foreach(events, k, ev) {
        /* a member of something that is no object is NULL, as ->> says */
        rc = game_tel_rows_text(sink, json_object_get(ev, "event_id"));
        rc |= game_tel_rows_put(sink, "\t", 1);
        rc |= game_tel_rows_text(sink, json_object_get(ev, "ts"));
        rc |= game_tel_rows_put(sink, "\t", 1);

        if (player != NULL) {
            rc |= game_tel_rows_escaped(sink, player, player_len);

        } else {
            rc |= game_tel_rows_text(sink, json_object_get(ev, "player_id"));
        }

        rc |= game_tel_rows_put(sink, "\t", 1);
        rc |= game_tel_rows_text(sink, json_object_get(ev, "session_id"));
        rc |= game_tel_rows_put(sink, "\t", 1);
        rc |= game_tel_rows_text(sink, json_object_get(ev, "type"));
        rc |= game_tel_rows_put(sink, "\t", 1);

        payload = json_object_get(ev, "payload");
        rc |= payload ? game_tel_rows_json(sink, payload)
                      : game_tel_rows_put(sink, "{}", 2);

        rc |= game_tel_rows_put(sink, "\t", 1);
        rc |= game_tel_rows_escaped(sink, source, source_len);
        rc |= game_tel_rows_put(sink, "\t", 1);

        /* OR, not plus: what tel_write() does, also past 1024 events */
        rc |= game_tel_rows_put(sink, num,
                  snprintf(num, sizeof(num), "%" PRId64 "\n",
                           (int64_t) ((uint64_t) seq_base | k)));

        if (rc != 0) {
            return -1;
        }
    }

    return (long) json_array_size(events);
}


unsigned char *
game_tel_copy_escape(unsigned char *dst, const unsigned char *src,
    size_t len)
{
    const unsigned char  *end;

    for (end = src + len; src < end; src++) {
        switch (*src) {

        case '\\':
            *dst++ = '\\';
            *dst++ = '\\';
            break;

        case '\t':
            *dst++ = '\\';
            *dst++ = 't';
            break;

        case '\n':
            *dst++ = '\\';
            *dst++ = 'n';
            break;

        case '\r':
            *dst++ = '\\';
            *dst++ = 'r';
            break;

        default:
            *dst++ = *src;
        }
    }

    return dst;
}


static int
game_tel_rows_room(game_tel_sink_t *sink, size_t n)
{
    if ((size_t) (sink->end - sink->pos) >= n) {
        return 0;
    }

    return sink->reserve(sink, n);
}


static int
game_tel_rows_put(game_tel_sink_t *sink, const char *s, size_t len)
{
    if (game_tel_rows_room(sink, len) != 0) {
        return -1;
    }

    memcpy(sink->pos, s, len);
    sink->pos += len;

    return 0;
}


static int
game_tel_rows_escaped(game_tel_sink_t *sink, const char *s, size_t len)
{
    if (game_tel_rows_room(sink, 2 * len) != 0) {
        return -1;
    }

    sink->pos = game_tel_copy_escape(sink->pos, (const unsigned char *) s,
                                     len);
    return 0;
}


/* a member as ->> gives it: a string's text, NULL, or compact JSON */
static int
game_tel_rows_text(game_tel_sink_t *sink, json_t *v)
{
    char  num[24];

    if (v == NULL || json_is_null(v)) {
        return game_tel_rows_put(sink, "\\N", 2);
    }

    if (json_is_string(v)) {
        return game_tel_rows_escaped(sink, json_string_value(v),
                                     json_string_length(v));
    }

    if (json_is_integer(v)) {
        return game_tel_rows_put(sink, num,
                   snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT,
                            json_integer_value(v)));
    }

    return game_tel_rows_json(sink, v);
}


static int
game_tel_rows_json(game_tel_sink_t *sink, json_t *v)
{
    return json_dump_callback(v, game_tel_rows_dumped, sink,
                              JSON_COMPACT | JSON_ENCODE_ANY);
}


/* jansson's text, piece by piece, escaped on its way into the sink:
 * compact JSON has backslashes (its own escapes), never a raw control
 * character */
static int
game_tel_rows_dumped(const char *buffer, size_t size, void *data)
{
    return game_tel_rows_escaped(data, buffer, size);
}
