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
 * input moves the player for its own duration (its time minus the previous
 * input's, on the client's clock) and fires with its own aim, so the
 * server's state after input n is what the client predicted after input n.
 * What keeps a client from buying speed with more inputs, or with a clock
 * that runs fast, is the time budget of gs_validate.c: the durations of a
 * player's inputs add up to no more than the real time since its first
 * input (plus rules.clock_slack_ms).  The snapshot acknowledges the last
 * input simulated.
 */
#define GS_INPUT_QUEUE     16
#define GS_INPUTS_PER_TICK 4
/* one input moves at most this long: a client back from a stall resumes,
 * it does not jump */
#define GS_INPUT_DT_MAX_MS 250

/*
 * Lag compensation: every tick's positions are kept GS_HISTORY ticks, and
 * a shot is traced against the targets where the tick its input names
 * (view_tick: the snapshot the shooter was looking at) showed them, never
 * further back than rules.lag_window_ms.
 */
#define GS_HISTORY         32

typedef struct {
    uint32_t   seq;
    float      mx, my;          /* validated: length <= 1 */
    float      dt;              /* seconds this input moves the player */
    uint16_t   aim;
    uint8_t    fire;            /* a shot the fire-rate check let through */
    uint32_t   view_tick;
} gs_queued_input_t;

typedef struct {
    uint32_t   tick;
    float      x[GS_MAX_PLAYERS], y[GS_MAX_PLAYERS];
    uint8_t    alive[GS_MAX_PLAYERS];
} gs_history_t;

typedef struct {
    int        tick_hz, max_players, match_seconds, score_limit;
    float      arena_w, arena_h, speed, radius, range;
    int        health, damage, fire_interval_ms, respawn_ms;
    int        input_rate;          /* inputs per second a client may send */
    int        flag_threshold;      /* violations before a player is flagged */
    int        lag_window_ms;       /* how far back a shot may be traced */
    int        clock_slack_ms;      /* input time allowed ahead of real time */
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
    uint32_t         ack_tick;          /* newest snapshot it decoded */
    gs_queued_input_t  queue[GS_INPUT_QUEUE];
    int              qhead, qlen;
    int              dropped;           /* inputs past a full queue */
    int              clock_started;     /* the first input anchors the clock */
    int64_t          clock_t0;          /* server ms of the first input */
    uint32_t         clock_last;        /* client time of the last input */
    int64_t          sim_ms;            /* input time granted, from 0 */
    int64_t          last_fire_ms;      /* sim_ms of the last shot */
    int              rewinds, rewinds_clamped;  /* lag-compensated shots */
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
    gs_history_t     history[GS_HISTORY];
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
