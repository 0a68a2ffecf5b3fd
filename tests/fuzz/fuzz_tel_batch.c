
/*
 * A telemetry batch, checked the way POST /game/telemetry checks it (and
 * the writer a game server's): each event of a JSON document against the
 * types of conf/telemetry-types.json (telemetry/game_tel_schema.c), once as
 * a player's and once as a server's.
 *
 * Beyond memory errors, it checks what ingest and the writer take for
 * granted of an event that passes: an object with a 36-character event id
 * (ingest hashes exactly that many bytes), a known type, an integer ts in
 * the accepted window, an object payload or none; a player's never names a
 * player, a server's names a UUID or none.  A refusal is always one of
 * the documented codes.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "game_tel_schema.h"


#define FUZZ_CHECK(cond)  do { if (!(cond)) abort(); } while (0)

#define FUZZ_NOW_MS       1800000000000LL       /* 2027-01-15 */
#define FUZZ_AGE_MS       (48LL * 3600 * 1000)
#define FUZZ_SKEW_MS      (5LL * 60 * 1000)


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static game_tel_types_t  *fuzz_types;

static const char  *fuzz_codes[] = {
    "invalid_event", "invalid_event_id", "unknown_type", "invalid_ts",
    "ts_out_of_range", "invalid_session_id", "invalid_player_id",
    "invalid_payload", "payload_too_large", NULL
};


/* the types the shipped configuration declares (FUZZ_TYPES: its path) */
static void
fuzz_load_types(void)
{
    char          err[256];
    json_t       *doc;
    json_error_t  jerr;

    doc = json_load_file(FUZZ_TYPES, JSON_REJECT_DUPLICATES, &jerr);
    if (doc == NULL) {
        fprintf(stderr, "fuzz_tel_batch: %s: %s\n", FUZZ_TYPES, jerr.text);
        abort();
    }

    fuzz_types = game_tel_types_parse(doc, err, sizeof(err));
    json_decref(doc);

    if (fuzz_types == NULL) {
        fprintf(stderr, "fuzz_tel_batch: %s: %s\n", FUZZ_TYPES, err);
        abort();
    }
}


static int
fuzz_known_code(const char *code)
{
    int  i;

    for (i = 0; fuzz_codes[i]; i++) {
        if (strcmp(code, fuzz_codes[i]) == 0) {
            return 1;
        }
    }

    return 0;
}


static void
fuzz_passed(json_t *e, unsigned from)
{
    json_t  *id, *type, *ts, *payload, *player;

    FUZZ_CHECK(json_is_object(e));

    id = json_object_get(e, "event_id");
    FUZZ_CHECK(json_is_string(id) && json_string_length(id) == 36
               && strlen(json_string_value(id)) == 36);

    type = json_object_get(e, "type");
    FUZZ_CHECK(json_is_string(type)
               && game_tel_type_name_valid(json_string_value(type),
                                           json_string_length(type)));

    ts = json_object_get(e, "ts");
    FUZZ_CHECK(json_is_integer(ts)
               && json_integer_value(ts) >= FUZZ_NOW_MS - FUZZ_AGE_MS
               && json_integer_value(ts) <= FUZZ_NOW_MS + FUZZ_SKEW_MS);

    payload = json_object_get(e, "payload");
    FUZZ_CHECK(payload == NULL || json_is_object(payload));

    player = json_object_get(e, "player_id");

    if (from == GAME_TEL_FROM_CLIENT) {
        FUZZ_CHECK(player == NULL);

    } else {
        /* absent is null: an event of no player */
        FUZZ_CHECK(player == NULL || json_is_null(player)
                   || (json_is_string(player)
                       && json_string_length(player) == 36));
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t             i;
    json_t            *doc, *events, *e;
    unsigned           from;
    const char        *code;
    game_tel_check_t   c;

    if (fuzz_types == NULL) {
        fuzz_load_types();
    }

    doc = json_loadb((const char *) data, size, JSON_REJECT_DUPLICATES, NULL);
    events = json_object_get(doc, "events");

    if (!json_is_array(events)) {
        json_decref(doc);
        return 0;
    }

    c.now_ms = FUZZ_NOW_MS;
    c.max_age_ms = FUZZ_AGE_MS;
    c.max_skew_ms = FUZZ_SKEW_MS;

    for (from = GAME_TEL_FROM_CLIENT; from <= GAME_TEL_FROM_SERVER; from++) {
        c.from = from;

        json_array_foreach(events, i, e) {
            code = game_tel_event_check(fuzz_types, e, &c);

            if (code == NULL) {
                fuzz_passed(e, from);

            } else {
                FUZZ_CHECK(fuzz_known_code(code));
            }
        }
    }

    json_decref(doc);

    return 0;
}
