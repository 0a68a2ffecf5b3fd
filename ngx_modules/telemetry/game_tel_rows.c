/*
 * game_tel_rows.c: a batch's events as COPY rows of the writer's staging
 * table (game_tel_rows.h says which, and why each value is what it is).
 */

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "game_tel_rows.h"
#include "game_tel_schema.h"


static int game_tel_rows_room(game_tel_sink_t *sink, size_t n);
static int game_tel_rows_put(game_tel_sink_t *sink, const char *s,
    size_t len);
static int game_tel_rows_escaped(game_tel_sink_t *sink, const char *s,
    size_t len);
static int game_tel_rows_text(game_tel_sink_t *sink, json_t *v);
static int game_tel_rows_json(game_tel_sink_t *sink, json_t *v);
static int game_tel_rows_dumped(const char *buffer, size_t size,
    void *data);
static int game_tel_rows_int(game_tel_sink_t *sink, int64_t v, char after);


/*
 * The batch's text, read without building it (game_tel_rows_batch()):
 * "p" moves on over what was read; every function returns 0, or -1 at
 * the first thing that is not JSON as PostgreSQL's jsonb reads it.
 */
typedef struct {
    const unsigned char        *p;
    const unsigned char        *end;
    unsigned                    depth;
} game_tel_scan_t;

/* jansson's limit too: deeper is no batch of ours */
#define GAME_TEL_SCAN_DEPTH  2048

/* an event's members as spans of the text; start NULL when absent */
typedef struct {
    const unsigned char        *start;
    const unsigned char        *end;
} game_tel_span_t;

enum {
    GAME_TEL_M_EVENT_ID = 0,
    GAME_TEL_M_TS,
    GAME_TEL_M_PLAYER_ID,
    GAME_TEL_M_SESSION_ID,
    GAME_TEL_M_TYPE,
    GAME_TEL_M_PAYLOAD,
    GAME_TEL_MEMBERS
};

static const char  *game_tel_members[GAME_TEL_MEMBERS] = {
    "event_id", "ts", "player_id", "session_id", "type", "payload"
};

static void game_tel_scan_ws(game_tel_scan_t *sc);
static int game_tel_scan_value(game_tel_scan_t *sc);
static int game_tel_scan_string(game_tel_scan_t *sc);
static int game_tel_scan_hex4(const unsigned char *p, unsigned *v);
static int game_tel_scan_number(game_tel_scan_t *sc);
static int game_tel_scan_word(game_tel_scan_t *sc, const char *word,
    size_t len);
static int game_tel_scan_key(game_tel_scan_t *sc, const char *const *names,
    int n);
static long game_tel_rows_events(game_tel_sink_t *sink, game_tel_scan_t *sc,
    int64_t seq_base, const char *source, size_t source_len,
    const char *player, size_t player_len);
static int game_tel_rows_span(game_tel_sink_t *sink, game_tel_span_t *v);
static int game_tel_rows_unescaped(game_tel_sink_t *sink,
    const unsigned char *p, const unsigned char *end);


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
        rc |= game_tel_rows_int(sink, (int64_t) ((uint64_t) seq_base | k),
                                '\n');

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
    if (v == NULL || json_is_null(v)) {
        return game_tel_rows_put(sink, "\\N", 2);
    }

    if (json_is_string(v)) {
        return game_tel_rows_escaped(sink, json_string_value(v),
                                     json_string_length(v));
    }

    if (json_is_integer(v)) {
        return game_tel_rows_int(sink, json_integer_value(v), '\0');
    }

    return game_tel_rows_json(sink, v);
}


static int
game_tel_rows_json(game_tel_sink_t *sink, json_t *v)
{
    return json_dump_callback(v, game_tel_rows_dumped, sink,
                              GAME_TEL_JSON_FLAGS | JSON_ENCODE_ANY);
}


/* jansson's text, piece by piece, escaped on its way into the sink:
 * compact JSON has backslashes (its own escapes), never a raw control
 * character */
static int
game_tel_rows_dumped(const char *buffer, size_t size, void *data)
{
    return game_tel_rows_escaped(data, buffer, size);
}


/* a number in decimal, and "after" unless it is '\0' (a row's end) */
static int
game_tel_rows_int(game_tel_sink_t *sink, int64_t v, char after)
{
    char      buf[24], *p;
    uint64_t  u;

    p = buf + sizeof(buf);

    if (after) {
        *--p = after;
    }

    u = v < 0 ? 0 - (uint64_t) v : (uint64_t) v;

    do {
        *--p = (char) ('0' + u % 10);
        u /= 10;
    } while (u);

    if (v < 0) {
        *--p = '-';
    }

    return game_tel_rows_put(sink, p, buf + sizeof(buf) - p);
}


/*
 * A batch's text, {"events": [...]}, into rows without building it: the
 * same rows game_tel_rows() writes from the parsed batch, but that the
 * payload goes as the batch spells it (jsonb reads it the same), and a
 * number read as text is that number's spelling.  Parsing a batch with
 * jansson was most of the CPU nginx spent on an event.
 *
 * The whole text is checked first as jsonb_in() checks it (UTF-8, no
 * \u0000, surrogates in pairs, RFC 8259's grammar), so that anything
 * PostgreSQL would refuse in the batch is refused here: -2.  The last of
 * two "events" is the one, as in jsonb.
 */

long
game_tel_rows_batch(game_tel_sink_t *sink, const char *text, size_t len,
    int64_t seq_base, const char *source, size_t source_len,
    const char *player, size_t player_len)
{
    long              n;
    game_tel_scan_t   sc;
    game_tel_span_t   events;

    sc.p = (const unsigned char *) text;
    sc.end = sc.p + len;
    sc.depth = 0;
    events.start = NULL;
    events.end = NULL;

    game_tel_scan_ws(&sc);

    if (sc.p == sc.end || *sc.p != '{') {
        return -2;
    }

    sc.p++;
    game_tel_scan_ws(&sc);

    if (sc.p < sc.end && *sc.p == '}') {
        sc.p++;
        goto done;
    }

    for ( ;; ) {
        static const char *const  names[] = { "events" };
        int                       m;

        m = game_tel_scan_key(&sc, names, 1);
        if (m == -2) {
            return -2;
        }

        game_tel_scan_ws(&sc);
        if (m == 0) {
            events.start = sc.p;
        }

        if (game_tel_scan_value(&sc) != 0) {
            return -2;
        }

        if (m == 0) {
            events.end = sc.p;
        }

        game_tel_scan_ws(&sc);

        if (sc.p < sc.end && *sc.p == ',') {
            sc.p++;
            game_tel_scan_ws(&sc);
            continue;
        }

        if (sc.p < sc.end && *sc.p == '}') {
            sc.p++;
            break;
        }

        return -2;
    }

done:

    game_tel_scan_ws(&sc);
    if (sc.p != sc.end) {
        return -2;
    }

    if (events.start == NULL) {
        /* no events: tel_write() finds none either */
        return 0;
    }

    if (*events.start != '[') {
        return -2;
    }

    sc.p = events.start;
    sc.end = events.end;
    sc.depth = 0;

    n = game_tel_rows_events(sink, &sc, seq_base, source, source_len,
                             player, player_len);

    return n;
}


/* the elements of a checked array, a row each */
static long
game_tel_rows_events(game_tel_sink_t *sink, game_tel_scan_t *sc,
    int64_t seq_base, const char *source, size_t source_len,
    const char *player, size_t player_len)
{
    int               m, rc;
    size_t            k;
    game_tel_span_t   v[GAME_TEL_MEMBERS];

    sc->p++;
    game_tel_scan_ws(sc);

    if (*sc->p == ']') {
        return 0;
    }

    for (k = 0; /* void */; k++) {
        memset(v, 0, sizeof(v));

        if (*sc->p == '{') {
            sc->p++;
            game_tel_scan_ws(sc);

            while (*sc->p != '}') {
                m = game_tel_scan_key(sc, game_tel_members, GAME_TEL_MEMBERS);
                game_tel_scan_ws(sc);

                /* the last of two members is the one, as in jsonb */
                if (m >= 0) {
                    v[m].start = sc->p;
                }

                (void) game_tel_scan_value(sc);

                if (m >= 0) {
                    v[m].end = sc->p;
                }

                game_tel_scan_ws(sc);
                if (*sc->p == ',') {
                    sc->p++;
                    game_tel_scan_ws(sc);
                }
            }

            sc->p++;

        } else {
            (void) game_tel_scan_value(sc);
        }

        rc = game_tel_rows_span(sink, &v[GAME_TEL_M_EVENT_ID]);
        rc |= game_tel_rows_put(sink, "\t", 1);
        rc |= game_tel_rows_span(sink, &v[GAME_TEL_M_TS]);
        rc |= game_tel_rows_put(sink, "\t", 1);
        rc |= player ? game_tel_rows_escaped(sink, player, player_len)
                     : game_tel_rows_span(sink, &v[GAME_TEL_M_PLAYER_ID]);
        rc |= game_tel_rows_put(sink, "\t", 1);
        rc |= game_tel_rows_span(sink, &v[GAME_TEL_M_SESSION_ID]);
        rc |= game_tel_rows_put(sink, "\t", 1);
        rc |= game_tel_rows_span(sink, &v[GAME_TEL_M_TYPE]);
        rc |= game_tel_rows_put(sink, "\t", 1);

        /* the payload as the batch spells it: jsonb reads it the same */
        rc |= v[GAME_TEL_M_PAYLOAD].start
              ? game_tel_rows_escaped(sink,
                    (const char *) v[GAME_TEL_M_PAYLOAD].start,
                    v[GAME_TEL_M_PAYLOAD].end - v[GAME_TEL_M_PAYLOAD].start)
              : game_tel_rows_put(sink, "{}", 2);

        rc |= game_tel_rows_put(sink, "\t", 1);
        rc |= game_tel_rows_escaped(sink, source, source_len);
        rc |= game_tel_rows_put(sink, "\t", 1);
        rc |= game_tel_rows_int(sink, (int64_t) ((uint64_t) seq_base | k),
                                '\n');

        if (rc != 0) {
            return -1;
        }

        game_tel_scan_ws(sc);

        if (*sc->p == ']') {
            return (long) k + 1;
        }

        /* a comma */
        sc->p++;
        game_tel_scan_ws(sc);
    }
}


/* a member's value as ->> gives it: a string's text, NULL, or its JSON */
static int
game_tel_rows_span(game_tel_sink_t *sink, game_tel_span_t *v)
{
    if (v->start == NULL
        || (v->end - v->start == 4 && memcmp(v->start, "null", 4) == 0))
    {
        return game_tel_rows_put(sink, "\\N", 2);
    }

    if (*v->start == '"') {
        return game_tel_rows_unescaped(sink, v->start + 1, v->end - 1);
    }

    return game_tel_rows_escaped(sink, (const char *) v->start,
                                 v->end - v->start);
}


/* a checked string's content, its JSON escapes undone, escaped for COPY:
 * never longer than twice the text (an escape is no shorter than what it
 * stands for) */
static int
game_tel_rows_unescaped(game_tel_sink_t *sink, const unsigned char *p,
    const unsigned char *end)
{
    unsigned              c, lo;
    unsigned char         u[4], *d;
    const unsigned char  *run;

    if (game_tel_rows_room(sink, 2 * (end - p)) != 0) {
        return -1;
    }

    d = sink->pos;

    while (p < end) {
        if (*p != '\\') {
            run = memchr(p, '\\', end - p);
            if (run == NULL) {
                run = end;
            }

            d = game_tel_copy_escape(d, p, run - p);
            p = run;
            continue;
        }

        p++;

        switch (*p++) {
        case 'b': c = '\b'; break;
        case 'f': c = '\f'; break;
        case 'n': c = '\n'; break;
        case 'r': c = '\r'; break;
        case 't': c = '\t'; break;

        case 'u':
            /* checked: four hex digits, and a low surrogate after a
             * high one */
            c = 0;
            lo = 0xdc00;
            (void) game_tel_scan_hex4(p, &c);
            p += 4;

            if (c >= 0xd800 && c <= 0xdbff) {
                (void) game_tel_scan_hex4(p + 2, &lo);
                p += 6;
                c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
            }

            break;

        default:            /* " \ / */
            c = p[-1];
        }

        if (c < 0x80) {
            u[0] = (unsigned char) c;
            d = game_tel_copy_escape(d, u, 1);

        } else if (c < 0x800) {
            *d++ = (unsigned char) (0xc0 | (c >> 6));
            *d++ = (unsigned char) (0x80 | (c & 0x3f));

        } else if (c < 0x10000) {
            *d++ = (unsigned char) (0xe0 | (c >> 12));
            *d++ = (unsigned char) (0x80 | ((c >> 6) & 0x3f));
            *d++ = (unsigned char) (0x80 | (c & 0x3f));

        } else {
            *d++ = (unsigned char) (0xf0 | (c >> 18));
            *d++ = (unsigned char) (0x80 | ((c >> 12) & 0x3f));
            *d++ = (unsigned char) (0x80 | ((c >> 6) & 0x3f));
            *d++ = (unsigned char) (0x80 | (c & 0x3f));
        }
    }

    sink->pos = d;

    return 0;
}


static void
game_tel_scan_ws(game_tel_scan_t *sc)
{
    while (sc->p < sc->end
           && (*sc->p == ' ' || *sc->p == '\t' || *sc->p == '\n'
               || *sc->p == '\r'))
    {
        sc->p++;
    }
}


/* a member's name: which of "names" it is (its escapes undone), -1 for
 * none, -2 when it is no string or no ':' follows */
static int
game_tel_scan_key(game_tel_scan_t *sc, const char *const *names, int n)
{
    int                    i;
    size_t                 len;
    const unsigned char   *start;
    unsigned char          buf[16];
    game_tel_sink_t        key;

    start = sc->p;

    if (game_tel_scan_string(sc) != 0) {
        return -2;
    }

    len = sc->p - start - 2;
    i = -1;

    /* no name of ours is longer than 10 bytes, nor has what COPY escapes;
     * an escaped spelling of one is undone first */
    if (n > 0 && len <= 6 * 10) {
        if (memchr(start + 1, '\\', len) == NULL) {
            memcpy(buf, start + 1, len <= sizeof(buf) ? len : sizeof(buf));

        } else {
            unsigned char  wide[2 * 6 * 10];

            key.pos = wide;
            key.end = wide + sizeof(wide);
            key.reserve = NULL;
            (void) game_tel_rows_unescaped(&key, start + 1, sc->p - 1);
            len = key.pos - wide;
            memcpy(buf, wide, len <= sizeof(buf) ? len : sizeof(buf));
        }

        for (i = n - 1; i >= 0; i--) {
            if (strlen(names[i]) == len && memcmp(buf, names[i], len) == 0) {
                break;
            }
        }
    }

    game_tel_scan_ws(sc);

    if (sc->p == sc->end || *sc->p != ':') {
        return -2;
    }

    sc->p++;

    return i;
}


static int
game_tel_scan_value(game_tel_scan_t *sc)
{
    if (sc->p == sc->end) {
        return -1;
    }

    switch (*sc->p) {

    case '"':
        return game_tel_scan_string(sc);

    case '{':
    case '[':
        break;

    case 't':
        return game_tel_scan_word(sc, "true", 4);

    case 'f':
        return game_tel_scan_word(sc, "false", 5);

    case 'n':
        return game_tel_scan_word(sc, "null", 4);

    default:
        return game_tel_scan_number(sc);
    }

    /* an object or an array */

    if (++sc->depth > GAME_TEL_SCAN_DEPTH) {
        return -1;
    }

    if (*sc->p++ == '{') {
        game_tel_scan_ws(sc);

        if (sc->p < sc->end && *sc->p == '}') {
            sc->p++;
            sc->depth--;
            return 0;
        }

        for ( ;; ) {
            if (game_tel_scan_key(sc, NULL, 0) == -2) {
                return -1;
            }

            game_tel_scan_ws(sc);

            if (game_tel_scan_value(sc) != 0) {
                return -1;
            }

            game_tel_scan_ws(sc);

            if (sc->p < sc->end && *sc->p == ',') {
                sc->p++;
                game_tel_scan_ws(sc);
                continue;
            }

            if (sc->p < sc->end && *sc->p == '}') {
                sc->p++;
                sc->depth--;
                return 0;
            }

            return -1;
        }
    }

    game_tel_scan_ws(sc);

    if (sc->p < sc->end && *sc->p == ']') {
        sc->p++;
        sc->depth--;
        return 0;
    }

    for ( ;; ) {
        if (game_tel_scan_value(sc) != 0) {
            return -1;
        }

        game_tel_scan_ws(sc);

        if (sc->p < sc->end && *sc->p == ',') {
            sc->p++;
            game_tel_scan_ws(sc);
            continue;
        }

        if (sc->p < sc->end && *sc->p == ']') {
            sc->p++;
            sc->depth--;
            return 0;
        }

        return -1;
    }
}


/*
 * A string: no raw control character, only JSON's escapes, no \u0000
 * (text cannot hold it), surrogates only in pairs, and UTF-8 that is
 * valid (shortest forms, no surrogates, at most U+10FFFF).
 */
static int
game_tel_scan_string(game_tel_scan_t *sc)
{
    unsigned              c, lo;
    const unsigned char  *p, *end;

    p = sc->p;
    end = sc->end;

    if (p == end || *p != '"') {
        return -1;
    }

    p++;

    for ( ;; ) {
        if (p == end) {
            return -1;
        }

        c = *p;

        if (c == '"') {
            sc->p = p + 1;
            return 0;
        }

        if (c < 0x20) {
            return -1;
        }

        if (c == '\\') {
            if (end - p < 2) {
                return -1;
            }

            switch (p[1]) {
            case '"': case '\\': case '/': case 'b': case 'f': case 'n':
            case 'r': case 't':
                p += 2;
                continue;

            case 'u':
                break;

            default:
                return -1;
            }

            if (end - p < 6 || game_tel_scan_hex4(p + 2, &c) != 0 || c == 0
                || (c >= 0xdc00 && c <= 0xdfff))
            {
                return -1;
            }

            p += 6;

            if (c >= 0xd800 && c <= 0xdbff) {
                if (end - p < 6 || p[0] != '\\' || p[1] != 'u'
                    || game_tel_scan_hex4(p + 2, &lo) != 0
                    || lo < 0xdc00 || lo > 0xdfff)
                {
                    return -1;
                }

                p += 6;
            }

            continue;
        }

        if (c < 0x80) {
            p++;
            continue;
        }

        /* UTF-8: the lead byte says how many follow, and their range */
        if (c >= 0xc2 && c <= 0xdf) {
            if (end - p < 2 || (p[1] & 0xc0) != 0x80) {
                return -1;
            }
            p += 2;

        } else if (c >= 0xe0 && c <= 0xef) {
            if (end - p < 3 || (p[1] & 0xc0) != 0x80
                || (p[2] & 0xc0) != 0x80
                || (c == 0xe0 && p[1] < 0xa0)
                || (c == 0xed && p[1] > 0x9f))
            {
                return -1;
            }
            p += 3;

        } else if (c >= 0xf0 && c <= 0xf4) {
            if (end - p < 4 || (p[1] & 0xc0) != 0x80
                || (p[2] & 0xc0) != 0x80 || (p[3] & 0xc0) != 0x80
                || (c == 0xf0 && p[1] < 0x90)
                || (c == 0xf4 && p[1] > 0x8f))
            {
                return -1;
            }
            p += 4;

        } else {
            return -1;
        }
    }
}


static int
game_tel_scan_hex4(const unsigned char *p, unsigned *v)
{
    int       i;
    unsigned  c, d;

    d = 0;

    for (i = 0; i < 4; i++) {
        c = p[i];

        if (c >= '0' && c <= '9') {
            c -= '0';

        } else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') {
            c = (c | 0x20) - 'a' + 10;

        } else {
            return -1;
        }

        d = d << 4 | c;
    }

    *v = d;

    return 0;
}


/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static int
game_tel_scan_number(game_tel_scan_t *sc)
{
    const unsigned char  *p, *end, *digits;

    p = sc->p;
    end = sc->end;

    if (p < end && *p == '-') {
        p++;
    }

    if (p < end && *p == '0') {
        p++;

    } else {
        digits = p;
        while (p < end && *p >= '0' && *p <= '9') {
            p++;
        }
        if (p == digits) {
            return -1;
        }
    }

    if (p < end && *p == '.') {
        digits = ++p;
        while (p < end && *p >= '0' && *p <= '9') {
            p++;
        }
        if (p == digits) {
            return -1;
        }
    }

    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-')) {
            p++;
        }
        digits = p;
        while (p < end && *p >= '0' && *p <= '9') {
            p++;
        }
        if (p == digits) {
            return -1;
        }
    }

    sc->p = p;

    return 0;
}


static int
game_tel_scan_word(game_tel_scan_t *sc, const char *word, size_t len)
{
    if ((size_t) (sc->end - sc->p) < len
        || memcmp(sc->p, word, len) != 0)
    {
        return -1;
    }

    sc->p += len;

    return 0;
}
