/*
 * game_tel_schema.h: telemetry event types and the check of one event.
 *
 * Types are declared in a JSON file (game_tel_types), read when nginx
 * reads its configuration, so that adding a type is an edit and a reload,
 * never a rebuild:
 *
 *   {"types": {
 *      "session.start": {"from": "client", "max_bytes": 1024,
 *                        "fields": {"platform": {"type": "string",
 *                                                "required": true,
 *                                                "max_length": 32}}},
 *      "position":      {"from": "server", "additional": false,
 *                        "fields": {"x": {"type": "number"}, ...}}}}
 *
 * A type says who may send it ("client", "server" or "any"), how large its
 * payload may be once serialised ("max_bytes", 4096 by default), whether
 * fields it does not name are allowed ("additional", false by default),
 * and its fields: "type" one of string, integer, number, boolean, uuid,
 * object, array; "required"; "max_length" (strings), "min" and "max"
 * (numbers), "max_items" (arrays).
 *
 * The check of an event knows nothing of nginx, so that the unit tests
 * run it as it is (tests/unit/test_tel_schema.c).
 */

#ifndef _GAME_TEL_SCHEMA_H_INCLUDED_
#define _GAME_TEL_SCHEMA_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>
#include <jansson.h>


#define GAME_TEL_FROM_CLIENT   1
#define GAME_TEL_FROM_SERVER   2

#define GAME_TEL_TYPE_MAX      64      /* game_events.kind: 1 to 64 */

/*
 * How telemetry writes the JSON it has read (a batch rebuilt without its
 * rejected events, a server's events, a payload's size): numbers with 15
 * significant digits, the most that give a decimal of up to 15 digits
 * back as it was sent (16.7; jansson's default of 17 writes the double's
 * 16.699999999999999, which jsonb keeps as another number).  A double
 * computed to 16 or 17 digits loses its last ones.
 */
#define GAME_TEL_JSON_FLAGS    (JSON_COMPACT | JSON_REAL_PRECISION(15))


typedef struct game_tel_types_s  game_tel_types_t;


/* what an event is checked against besides its type */
typedef struct {
    unsigned          from;             /* GAME_TEL_FROM_* */
    int64_t           now_ms;
    int64_t           max_age_ms;       /* ts no older than this */
    int64_t           max_skew_ms;      /* ts no further ahead than this */
} game_tel_check_t;


/*
 * The types of a parsed document; NULL with a message in "err" (which
 * names the type and field at fault).  The result owns its memory: free it
 * with game_tel_types_free().
 */
game_tel_types_t *game_tel_types_parse(json_t *doc, char *err, size_t len);
void game_tel_types_free(game_tel_types_t *types);
size_t game_tel_types_count(const game_tel_types_t *types);

/*
 * NULL when "event" may be stored as it is; otherwise the code a client
 * sees for it: invalid_event, invalid_event_id, unknown_type, invalid_ts,
 * ts_out_of_range, invalid_session_id, invalid_player_id, invalid_payload,
 * payload_too_large.  A server's event names its player ("player_id", a
 * UUID or null); a client's never does.
 */
const char *game_tel_event_check(const game_tel_types_t *types,
    json_t *event, const game_tel_check_t *check);

/* 1 when "s" (of "len" bytes) is a valid type name: [a-z][a-z0-9_.:-]* */
int game_tel_type_name_valid(const char *s, size_t len);


#endif /* _GAME_TEL_SCHEMA_H_INCLUDED_ */
