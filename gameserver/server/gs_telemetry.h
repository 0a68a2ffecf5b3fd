/*
 * gs_telemetry.h: what a game server tells the backend's telemetry about
 * its match (ngx_modules/telemetry; the types are the "from": "server"
 * ones of conf/telemetry-types.json).
 *
 * The server is the authority on what happened, and it sees what each
 * client asked for before validation clamped it.  Once a second the loop
 * takes a sample of every player it knows by a player id (a UUID: direct
 * test runs name players otherwise, and nothing is said about them):
 *
 *   position        where the server has the player, the speed the inputs
 *                   asked for (the longest move times the rules' speed),
 *                   and the position the client last claimed (only when
 *                   the player lived through the whole window: a respawn
 *                   moves the player before the client knows)
 *   combat          trigger pulls in the window, the match's shots and hits
 *   anticheat.flag  the violations validation counted since the last sample
 *   kill            as they happen (gs_tel_kill), sent with the next sample
 *
 * and match.start / match.end when the match has a UUID.  The backend's
 * rules judge; the server only reports.  Each event has a fresh UUID, so a
 * batch the agent sends twice (a lost reply) is written once.
 *
 * Pure logic over the world and jansson: the agent thread sends the text.
 */
#ifndef GS_TELEMETRY_H
#define GS_TELEMETRY_H

#include <stdint.h>

#include <jansson.h>

#include "gs_sim.h"

#define GS_TEL_WEAPON  "rifle"      /* the deathmatch has one weapon */

typedef struct {
    gs_violations_t  reported;      /* violations told so far */
    int              deaths;        /* at the last sample */
    int              steady;        /* alive then and still the same life */
} gs_tel_player_t;

typedef struct {
    uint64_t         rng;           /* splitmix64 state: the events' ids */
    int64_t          last_ms;       /* the last sample, monotonic */
    json_t          *pending;       /* kills since the last sample */
    gs_tel_player_t  players[GS_MAX_PLAYERS];
} gs_tel_t;

/* "seed" from the system's randomness (the same seed, the same ids) */
void gs_tel_init(gs_tel_t *t, uint64_t seed);
void gs_tel_free(gs_tel_t *t);

/* a new match: forget the last one's counts and clear every player's
 * window */
void gs_tel_reset(gs_tel_t *t, gs_world_t *w, int64_t now_ms);

/* 1: a UUID, as the backend's player and match ids are */
int gs_tel_uuid_valid(const char *s);

/* a kill, to go out with the next sample */
void gs_tel_kill(gs_tel_t *t, const gs_world_t *w, int killer, int victim,
    const char *match_id, const char *mode, int64_t wall_ms);

/*
 * The window since the last sample (or reset): its events appended to
 * "events", the players' windows cleared.  Returns how many events.
 */
int gs_tel_sample(gs_tel_t *t, gs_world_t *w, const char *match_id,
    const char *mode, int64_t now_ms, int64_t wall_ms, json_t *events);

/* match.start (players) or match.end (reason, winner, duration_ms) */
int gs_tel_match(gs_tel_t *t, const char *type, const char *match_id,
    const char *mode, int players, const char *reason, const char *winner,
    int64_t duration_ms, int64_t wall_ms, json_t *events);

#endif /* GS_TELEMETRY_H */
