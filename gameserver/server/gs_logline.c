/*
 * gs_logline.c: building one JSON log line into a fixed buffer.
 *
 * jansson builds the object and json_dumpb writes it into the caller's
 * buffer, which tells how long the line would be when it does not fit.
 * Fitting then cuts strings by exactly the overflow, longest first: a
 * byte taken from a string shortens its JSON by at least a byte (escapes
 * only make bytes longer), so one cut usually does it, and each further
 * round needs a string longer than GS_LOGLINE_KEEP bytes or a field to
 * drop: the work is bounded by the number of keys.
 */

#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gs_logline.h"


#define GS_LOGLINE_KEEP     8       /* a cut string keeps this many bytes */
#define GS_LOGLINE_ROUNDS   64


static const char *const  gs_logline_levels[] = {
    "error", "warn", "info", "debug"
};


void
gs_logline_time(char *out, int64_t wall_ms)
{
    struct tm  tm;
    time_t     secs;
    int        ms;

    if (wall_ms < 0) {
        wall_ms = 0;
    }
    secs = (time_t) (wall_ms / 1000);
    ms = (int) (wall_ms % 1000);
    gmtime_r(&secs, &tm);

    /* the year has four digits until 9999; strftime bounds it anyway */
    if (strftime(out, 21, "%Y-%m-%dT%H:%M:%S", &tm) != 19) {
        strcpy(out, "1970-01-01T00:00:00");
    }
    out[19] = '.';
    out[20] = (char) ('0' + ms / 100);
    out[21] = (char) ('0' + ms / 10 % 10);
    out[22] = (char) ('0' + ms % 10);
    out[23] = 'Z';
    out[24] = '\0';
}


/*
 * Length of the UTF-8 sequence at s (at most n bytes there), or 0 when it
 * is not one that jansson takes: no overlong forms, no surrogates, nothing
 * past U+10FFFF.
 */
static size_t
gs_logline_utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char  lo = 0x80, hi = 0xbf;
    size_t         len, i;

    if (s[0] < 0x80) {
        return 1;
    }
    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        len = 2;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        len = 3;
        if (s[0] == 0xe0) {
            lo = 0xa0;
        } else if (s[0] == 0xed) {
            hi = 0x9f;
        }
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        len = 4;
        if (s[0] == 0xf0) {
            lo = 0x90;
        } else if (s[0] == 0xf4) {
            hi = 0x8f;
        }
    } else {
        return 0;
    }

    if (len > n || s[1] < lo || s[1] > hi) {
        return 0;
    }
    for (i = 2; i < len; i++) {
        if (s[i] < 0x80 || s[i] > 0xbf) {
            return 0;
        }
    }
    return len;
}


/* out holds 3 * n bytes: each bad byte becomes U+FFFD (3 bytes) */
static size_t
gs_logline_utf8_fix(char *out, const char *in, size_t n)
{
    const unsigned char  *s = (const unsigned char *) in;
    size_t                i = 0, o = 0, k;

    while (i < n) {
        k = gs_logline_utf8_seq(s + i, n - i);
        if (k == 0) {
            memcpy(out + o, "\xef\xbf\xbd", 3);
            o += 3;
            i++;
        } else {
            memcpy(out + o, s + i, k);
            o += k;
            i += k;
        }
    }
    return o;
}


static json_t *
gs_logline_strn(const char *s, size_t n)
{
    json_t  *v;
    char    *fixed;
    size_t   i, k;

    for (i = 0; i < n; i += k) {
        k = gs_logline_utf8_seq((const unsigned char *) s + i, n - i);
        if (k == 0) {
            break;
        }
    }
    if (i >= n) {
        return json_stringn(s, n);
    }

    fixed = malloc(3 * n);
    if (fixed == NULL) {
        return NULL;
    }
    v = json_stringn(fixed, gs_logline_utf8_fix(fixed, s, n));
    free(fixed);
    return v;
}


json_t *
gs_logline_str(const char *s)
{
    return gs_logline_strn(s ? s : "", s ? strlen(s) : 0);
}


/* at most max bytes of s, made UTF-8, cut on a character boundary */
static void
gs_logline_copy(char *out, size_t max, const char *s)
{
    char    fixed[3 * GS_LOGLINE_ID_MAX];
    size_t  n = strlen(s);

    if (n > GS_LOGLINE_ID_MAX) {
        n = GS_LOGLINE_ID_MAX;
    }
    n = gs_logline_utf8_fix(fixed, s, n);
    if (n > max) {
        n = max;
        while (n > 0 && ((unsigned char) fixed[n] & 0xc0) == 0x80) {
            n--;
        }
    }
    memcpy(out, fixed, n);
    out[n] = '\0';
}


void
gs_logline_who(gs_logline_who_t *who, const char *service,
    const char *id_key, const char *id, long pid)
{
    gs_logline_copy(who->service, GS_LOGLINE_ID_MAX, service ? service : "");
    snprintf(who->id_key, sizeof(who->id_key), "%s", id_key);
    gs_logline_copy(who->id, GS_LOGLINE_ID_MAX, id ? id : "");
    who->pid = pid;
}


static const char *
gs_logline_level(const char *level)
{
    size_t  i;

    for (i = 0; i < sizeof(gs_logline_levels) / sizeof(char *); i++) {
        if (level != NULL && strcmp(level, gs_logline_levels[i]) == 0) {
            return gs_logline_levels[i];
        }
    }
    return "info";
}


json_t *
gs_logline_object(const gs_logline_who_t *who, int64_t wall_ms,
    const char *level, const char *event)
{
    json_t  *line;
    char     when[25];

    gs_logline_time(when, wall_ms);
    line = json_pack("{s:s, s:s, s:s, s:s, s:I}", "time", when,
                     "level", gs_logline_level(level),
                     "service", who->service, who->id_key, who->id,
                     "pid", (json_int_t) who->pid);
    if (line != NULL && event != NULL
        && json_object_set_new(line, "event", gs_logline_str(event)) != 0)
    {
        json_decref(line);
        return NULL;
    }
    return line;
}


static int
gs_logline_reserved(const char *key, const gs_logline_who_t *who)
{
    static const char *const  keys[] = {
        "time", "level", "service", "pid", "event", "msg", "truncated"
    };
    size_t                    i;

    for (i = 0; i < sizeof(keys) / sizeof(char *); i++) {
        if (strcmp(key, keys[i]) == 0) {
            return 1;
        }
    }
    return strcmp(key, who->id_key) == 0;
}


static size_t
gs_logline_dump(const json_t *line, char *buf, size_t cap)
{
    return json_dumpb(line, buf, cap, JSON_COMPACT);
}


/* strings that came in unchecked (json_stringn_nocheck) made UTF-8 */
static void
gs_logline_fix_strings(json_t *line)
{
    const char  *key;
    json_t      *v;

    json_object_foreach(line, key, v) {
        if (json_is_string(v)) {
            json_object_set_new(line, key,
                                gs_logline_strn(json_string_value(v),
                                                json_string_length(v)));
        }
    }
}


/*
 * Cut the longest string but time and level by `over` bytes (to no less
 * than GS_LOGLINE_KEEP), on a character boundary.  0: none is left to cut.
 */
static int
gs_logline_cut(json_t *line, size_t over)
{
    const char  *key, *s;
    json_t      *v, *longest = NULL;
    size_t       len, max = GS_LOGLINE_KEEP;

    json_object_foreach(line, key, v) {
        if (json_is_string(v) && strcmp(key, "time") != 0
            && strcmp(key, "level") != 0 && json_string_length(v) > max)
        {
            longest = v;
            max = json_string_length(v);
        }
    }
    if (longest == NULL) {
        return 0;
    }

    len = max > over + GS_LOGLINE_KEEP ? max - over : GS_LOGLINE_KEEP;
    s = json_string_value(longest);
    while (len > 0 && ((unsigned char) s[len] & 0xc0) == 0x80) {
        len--;
    }
    return json_string_setn(longest, s, len) == 0;
}


/* the caller's fields out: nested ones first (all: every one) */
static void
gs_logline_drop(json_t *line, const gs_logline_who_t *who, int all)
{
    const char  *key;
    void        *tmp;
    json_t      *v;

    json_object_foreach_safe(line, tmp, key, v) {
        if (!gs_logline_reserved(key, who)
            && (all || json_is_object(v) || json_is_array(v)))
        {
            json_object_del(line, key);
        }
    }
}


static size_t
gs_logline_fit(json_t *line, const gs_logline_who_t *who, char *buf,
    size_t cap)
{
    size_t  n;
    int     pass, round;

    n = gs_logline_dump(line, buf, cap);
    if (n == 0) {
        gs_logline_fix_strings(line);
        n = gs_logline_dump(line, buf, cap);
    }
    if (n > 0 && n <= cap) {
        return n;
    }

    json_object_set_new(line, "truncated", json_true());
    for (pass = 0; pass < 3; pass++) {
        if (pass > 0) {
            gs_logline_drop(line, who, pass == 2);
        }
        for (round = 0; round < GS_LOGLINE_ROUNDS; round++) {
            n = gs_logline_dump(line, buf, cap);
            if (n > 0 && n <= cap) {
                return n;
            }
            if (n == 0 || !gs_logline_cut(line, n - cap)) {
                break;
            }
        }
    }
    return 0;
}


size_t
gs_logline_build(char *buf, size_t size, const gs_logline_who_t *who,
    int64_t wall_ms, const char *level, const char *event, const char *msg,
    json_t *fields)
{
    const char  *key;
    json_t      *line, *v;
    size_t       n = 0;

    if (size < GS_LOGLINE_MIN) {
        json_decref(fields);
        return 0;
    }

    line = gs_logline_object(who, wall_ms, level, event);
    if (line == NULL
        || json_object_set_new(line, "msg", gs_logline_str(msg)) != 0)
    {
        goto done;
    }
    if (json_is_object(fields)) {
        json_object_foreach(fields, key, v) {
            if (!gs_logline_reserved(key, who)) {
                json_object_set(line, key, v);
            }
        }
    }

    /* room for the newline and the NUL */
    n = gs_logline_fit(line, who, buf, size - 2);
    if (n > 0) {
        buf[n++] = '\n';
        buf[n] = '\0';
    }

done:
    json_decref(line);
    json_decref(fields);
    return n;
}


int
gs_logline_budget_take(gs_logline_budget_t *b, int64_t now_ms,
    int per_second, uint64_t *untold)
{
    if (now_ms - b->second_ms >= 1000 || now_ms < b->second_ms) {
        b->second_ms = now_ms;
        b->told = 0;
    }
    if (b->told >= per_second) {
        b->untold++;
        return 0;
    }
    b->told++;
    *untold = b->untold;
    b->untold = 0;
    return 1;
}
