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

/*
 * Inputs wait in a per-player queue in sequence order and the tick
 * simulates them in that order, at most GS_INPUTS_PER_TICK per tick: each
 * input sets the move and the aim, and fires with its own aim.  Movement
 * is integrated once per tick with the last move simulated, so a client
 * that sends more inputs gets its shots aimed as it aimed them, never a
 * faster player; one that sends a burst (jitter) is caught up over a few
 * ticks.  The snapshot acknowledges the last input simulated.
 */
#define GS_INPUT_QUEUE     16
#define GS_INPUTS_PER_TICK 4

typedef struct {
    uint32_t   seq;
    float      mx, my;          /* validated: length <= 1 */
    uint16_t   aim;
    uint8_t    fire;            /* a shot the fire-rate check let through */
} gs_queued_input_t;

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
    uint32_t         respawn_tick;
    uint32_t         last_seq;          /* last input simulated: the ack */
    uint32_t         recv_seq;          /* last input queued */
    gs_queued_input_t  queue[GS_INPUT_QUEUE];
    int              qhead, qlen;
    int              dropped;           /* inputs past a full queue */
    int64_t          last_fire_ms;      /* arrival time of the last shot */
    double           tokens;            /* input-rate bucket */
    int64_t          tokens_ms;
    int              kills, deaths, shots, hits, inputs, stale;
    gs_violations_t  v;
    int              flagged;
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
/* the match starts: inputs sent while waiting are acknowledged unplayed */
void gs_sim_flush_inputs(gs_world_t *w);
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
