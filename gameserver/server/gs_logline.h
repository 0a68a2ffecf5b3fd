/*
 * gs_logline.h: a log line as one JSON object, for game-server and
 * game-fleet, built with jansson.
 *
 *   {"time":"2026-11-29T21:03:04.123Z","level":"info",
 *    "service":"game-server","server":"local-7777-1a2b3c","pid":4242,
 *    "event":"player_seated","msg":"player p1 seated in slot 0",
 *    "player":"p1","match_id":"m1","slot":0}
 *
 * The envelope comes first, in this order, on every line: time (RFC 3339,
 * UTC, milliseconds), level (error, warn, info or debug; anything else is
 * written as info), service, the process's identity under the key its
 * program chose ("server": the server id, "fleet": the fleet's name), pid.
 * Then event, a short stable name (absent on free-form lines), and msg,
 * for people.  Then the event's own fields, typed as the caller built
 * them; a field named like a key above is left out (the envelope wins).
 *
 * Whatever it is given, a line is one valid JSON object that fits the
 * buffer: strings that are not UTF-8 have their bad bytes replaced by
 * U+FFFD, control bytes are escaped, and a line too long for the buffer
 * loses bytes from the end of its longest strings (msg first, as it is
 * usually the longest), then its nested fields, and says "truncated":true.
 *
 * Nothing here writes or locks: gs_log.c (the server's ring) and
 * fleet_main.c (the fleet's stderr) decide where lines go.
 */
#ifndef GS_LOGLINE_H
#define GS_LOGLINE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define GS_LOGLINE_MIN      512     /* smallest buffer that fits any line */
#define GS_LOGLINE_ID_MAX   64      /* bytes of service and identity kept */

typedef struct {
    char   service[GS_LOGLINE_ID_MAX + 1];
    char   id_key[16];              /* "server", "fleet" */
    char   id[GS_LOGLINE_ID_MAX + 1];
    long   pid;
} gs_logline_who_t;

/* who writes: strings are cut to GS_LOGLINE_ID_MAX bytes and made UTF-8 */
void gs_logline_who(gs_logline_who_t *who, const char *service,
    const char *id_key, const char *id, long pid);

/*
 * The line and its '\n' into buf, NUL-terminated; its length without the
 * NUL.  fields (may be NULL) is stolen: build it with json_pack and pass
 * it on, as a failed json_pack's NULL only costs the fields.  size must be
 * at least GS_LOGLINE_MIN; 0 only when it is not, or out of memory.
 */
size_t gs_logline_build(char *buf, size_t size, const gs_logline_who_t *who,
    int64_t wall_ms, const char *level, const char *event, const char *msg,
    json_t *fields);

/* the envelope alone (time ... pid, event), for lines of any length; NULL
 * when out of memory */
json_t *gs_logline_object(const gs_logline_who_t *who, int64_t wall_ms,
    const char *level, const char *event);

/* a JSON string of s made UTF-8 (bad bytes become U+FFFD), for fields
 * whose text comes from outside: json_pack refuses what is not UTF-8 */
json_t *gs_logline_str(const char *s);

/* "YYYY-MM-DDTHH:MM:SS.mmmZ" of a wall clock in ms; out holds 25 bytes */
void gs_logline_time(char *out, int64_t wall_ms);

/*
 * A budget of lines per second, for what a client can make happen at
 * will (refusals, connects, late ticks): up to `per_second` lines in a
 * second are told, the rest counted.  1: tell this one, with *untold the
 * lines not told since the last one told; 0: do not.
 */
typedef struct {
    int64_t    second_ms;           /* start of the current second */
    int        told;                /* lines told in it */
    uint64_t   untold;
} gs_logline_budget_t;

int gs_logline_budget_take(gs_logline_budget_t *b, int64_t now_ms,
    int per_second, uint64_t *untold);

#endif /* GS_LOGLINE_H */
