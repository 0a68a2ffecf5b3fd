/*
 * gs_result.h: the result of a match as the JSON published on the results
 * stream (format: gameserver/PROTOCOL.md, "Results").
 */
#ifndef GS_RESULT_H
#define GS_RESULT_H

#include <stdint.h>

#include <jansson.h>

#include "gs_sim.h"

typedef struct {
    const char  *match_id, *server_id, *mode;
    int          reason, expected_players;
    int64_t      started_at_ms, duration_ms;    /* wall clock, elapsed */
    uint64_t     malformed;
    uint64_t     refused[16];                   /* by gs_refuse_e */
    int          tick_hz;
    double       tick_p50_us, tick_p99_us, tick_max_us;
    double       bytes_out_per_player_s, bytes_in_per_player_s;
} gs_result_meta_t;

/* the result as a jansson object (a new reference), or NULL */
json_t *gs_result_object(const gs_world_t *w, const gs_result_meta_t *m);
/* malloc'd JSON text, or NULL when out of memory */
char *gs_result_json(const gs_world_t *w, const gs_result_meta_t *m);

#endif /* GS_RESULT_H */
