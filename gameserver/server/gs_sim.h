/*
 * gs_sim.h: the arena deathmatch, as pure data and functions.
 *
 * The world knows nothing of sockets, Redis or clocks: the caller feeds it
 * validated inputs (gs_validate.c) and calls gs_sim_step() once per tick.
 * That keeps the rules unit-testable and deterministic for a given seed.
 */
#ifndef GS_SIM_H
#define GS_SIM_H

#include <stdint.h>

#include "protocol.h"

#define GS_PLAYER_ID_MAX  64

typedef struct {
    int        tick_hz, max_players, match_seconds, score_limit;
    float      arena_w, arena_h, speed, radius, range;
    int        health, damage, fire_interval_ms, respawn_ms;
    int        input_rate;          /* inputs per second a client may send */
    int        flag_threshold;      /* violations before a player is flagged */
} gs_rules_t;

typedef struct {
    int        speed, fire_rate, input_rate, out_of_bounds;
} gs_violations_t;

typedef struct {
    int              used, connected, alive, health;
    char             id[GS_PLAYER_ID_MAX + 1];
    float            x, y, vx, vy;      /* world units, units per second */
    float            mx, my;            /* latest move, length <= 1 */
    uint16_t         aim;
    int              fire_pending;
    uint32_t         respawn_tick, last_seq;
    int64_t          last_fire_ms;      /* arrival time of the last shot */
    double           tokens;            /* input-rate bucket */
    int64_t          tokens_ms;
    int              kills, deaths, shots, hits, inputs, stale;
    gs_violations_t  v;
    int              flagged;

    /* what the inputs asked for since telemetry last sampled them
     * (gs_telemetry.c): the longest move, the trigger pulls, the latest
     * claimed position */
    float            ask_max;
    int              pulls;
    float            claim_x, claim_y;
    int              claimed;
} gs_player_t;

typedef void (*gs_sim_event_pt)(void *data, const gs_event_t *e);

typedef struct {
    gs_rules_t       rules;
    gs_player_t      players[GS_MAX_PLAYERS];
    uint32_t         tick, rng;
    gs_sim_event_pt  on_event;
    void            *data;
} gs_world_t;

void gs_rules_default(gs_rules_t *r, int tick_hz);
void gs_sim_init(gs_world_t *w, const gs_rules_t *rules, uint32_t seed,
    gs_sim_event_pt on_event, void *data);
int gs_sim_find(gs_world_t *w, const char *id);     /* slot or -1 */
int gs_sim_join(gs_world_t *w, const char *id);     /* slot or -1: full */
void gs_sim_leave(gs_world_t *w, int slot);
int gs_sim_connected(const gs_world_t *w);
int gs_sim_step(gs_world_t *w);     /* 1: the score limit was reached */
int gs_sim_leader(const gs_world_t *w);     /* slot, -1: tie or nobody */
void gs_sim_snapshot(const gs_world_t *w, int slot, uint32_t ticks_left,
    gs_snapshot_t *s);

/* gs_validate.c: one received input, checked and applied */

typedef enum {
    GS_INPUT_APPLIED, GS_INPUT_STALE, GS_INPUT_RATE_LIMITED
} gs_input_verdict_e;

gs_input_verdict_e gs_validate_input(gs_world_t *w, int slot,
    const gs_input_t *in, int64_t now_ms);
int gs_violations_total(const gs_violations_t *v);

#endif /* GS_SIM_H */
