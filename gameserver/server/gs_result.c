/*
 * gs_result.c: turn the world at match end into the published result.
 *
 * Everyone who joined is listed, connected at the end or not, since a
 * player who rage-quits still played (and a leaderboard may want to know).
 * The winner is the player with the most kills, or null on a tie.
 */

#include <jansson.h>

#include "gs_result.h"


static json_t *
gs_result_violations(const gs_violations_t *v)
{
    return json_pack("{s:i, s:i, s:i, s:i}", "speed", v->speed,
                     "fire_rate", v->fire_rate, "input_rate", v->input_rate,
                     "out_of_bounds", v->out_of_bounds);
}


json_t *
gs_result_object(const gs_world_t *w, const gs_result_meta_t *m)
{
    json_t             *root, *players, *refused;
    const gs_player_t  *p;
    gs_violations_t     total = { 0, 0, 0, 0 };
    int                 i, winner, flagged = 0;
    json_t             *pl;

    players = json_array();
    for (i = 0; i < w->rules.max_players; i++) {
        p = &w->players[i];
        if (!p->used) {
            continue;
        }
        total.speed += p->v.speed;
        total.fire_rate += p->v.fire_rate;
        total.input_rate += p->v.input_rate;
        total.out_of_bounds += p->v.out_of_bounds;
        flagged += p->flagged;
        pl = json_pack(
            "{s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:o, s:b, s:b}",
            "id", p->id, "slot", i, "kills", p->kills, "deaths", p->deaths,
            "shots", p->shots, "hits", p->hits, "inputs", p->inputs,
            "stale_inputs", p->stale,
            "violations", gs_result_violations(&p->v),
            "flagged", p->flagged, "connected", p->connected);
        if (pl != NULL) {
            /* lag compensation: shots traced in the past, and claims
             * older than the window */
            json_object_set_new(pl, "rewound_shots",
                                json_integer(p->rewinds));
            json_object_set_new(pl, "rewinds_clamped",
                                json_integer(p->rewinds_clamped));
        }
        json_array_append_new(players, pl);
    }

    refused = json_object();
    for (i = 1; i < 16; i++) {
        if (m->refused[i]) {
            json_object_set_new(refused, gs_proto_refuse_name((uint32_t) i),
                                json_integer((json_int_t) m->refused[i]));
        }
    }

    winner = gs_sim_leader(w);
    root = json_pack(
        "{s:s, s:s, s:s, s:s, s:o, s:I, s:I, s:i, s:o, s:o, s:i,"
        " s:I, s:o, s:{s:i, s:f, s:f, s:f}, s:{s:f, s:f}}",
        "match_id", m->match_id, "server_id", m->server_id, "mode", m->mode,
        "reason", gs_proto_end_name(m->reason),
        "winner", winner >= 0 ? json_string(w->players[winner].id)
                              : json_null(),
        "started_at_ms", (json_int_t) m->started_at_ms,
        "duration_ms", (json_int_t) m->duration_ms,
        "expected_players", m->expected_players,
        "players", players,
        "violations", gs_result_violations(&total),
        "flagged_players", flagged,
        "malformed_packets", (json_int_t) m->malformed,
        "refused", refused,
        "tick", "hz", m->tick_hz, "p50_us", m->tick_p50_us,
        "p99_us", m->tick_p99_us, "max_us", m->tick_max_us,
        "bytes_per_s_per_player", "out", m->bytes_out_per_player_s,
        "in", m->bytes_in_per_player_s);
    return root;
}


char *
gs_result_json(const gs_world_t *w, const gs_result_meta_t *m)
{
    json_t  *root;
    char    *text;

    root = gs_result_object(w, m);
    if (root == NULL) {
        return NULL;
    }

    text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return text;
}
