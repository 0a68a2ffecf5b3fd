/*
 * gs_telemetry.c: the match's events for the backend's telemetry.  See
 * gs_telemetry.h.
 */

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "gs_telemetry.h"


static uint64_t
gs_tel_next(gs_tel_t *t)
{
    uint64_t  z;

    /* splitmix64: a full period over 2^64, well mixed */
    z = (t->rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}


/* a version 4 UUID, as text */
static void
gs_tel_id(gs_tel_t *t, char out[37])
{
    uint64_t  hi = gs_tel_next(t), lo = gs_tel_next(t);

    hi = (hi & ~0xf000ULL) | 0x4000ULL;
    lo = (lo & ~(3ULL << 62)) | (2ULL << 62);

    snprintf(out, 37, "%08x-%04x-%04x-%04x-%012llx",
             (unsigned) (hi >> 32), (unsigned) (hi >> 16) & 0xffff,
             (unsigned) hi & 0xffff, (unsigned) (lo >> 48),
             (unsigned long long) (lo & 0xffffffffffffULL));
}


int
gs_tel_uuid_valid(const char *s)
{
    int  i;

    for (i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-') {
                return 0;
            }
        } else if (!((s[i] >= '0' && s[i] <= '9')
                     || (s[i] >= 'a' && s[i] <= 'f')))
        {
            return 0;
        }
    }
    return s[36] == '\0';
}


void
gs_tel_init(gs_tel_t *t, uint64_t seed)
{
    memset(t, 0, sizeof(*t));
    t->rng = seed;
    t->pending = json_array();
}


void
gs_tel_free(gs_tel_t *t)
{
    json_decref(t->pending);
    t->pending = NULL;
}


void
gs_tel_reset(gs_tel_t *t, gs_world_t *w, int64_t now_ms)
{
    int           i;
    gs_player_t  *p;

    memset(t->players, 0, sizeof(t->players));
    json_array_clear(t->pending);
    t->last_ms = now_ms;

    for (i = 0; i < GS_MAX_PLAYERS; i++) {
        p = &w->players[i];
        p->ask_max = 0;
        p->pulls = 0;
        p->claimed = 0;
        t->players[i].reported = p->v;
        t->players[i].deaths = p->deaths;
        t->players[i].steady = p->alive;
    }
}


/* one event; "player" NULL for the match's own */
static int
gs_tel_add(gs_tel_t *t, json_t *events, const char *type, const char *player,
    const char *match_id, int64_t wall_ms, json_t *payload)
{
    char     id[37];
    json_t  *e;

    if (payload == NULL) {
        return 0;
    }

    gs_tel_id(t, id);
    e = json_pack("{s:s, s:s, s:I, s:o}", "event_id", id, "type", type,
                  "ts", (json_int_t) wall_ms, "payload", payload);
    if (e == NULL) {
        return 0;
    }
    if (player != NULL) {
        json_object_set_new(e, "player_id", json_string(player));
    }
    if (gs_tel_uuid_valid(match_id)) {
        json_object_set_new(e, "session_id", json_string(match_id));
    }

    return json_array_append_new(events, e) == 0;
}


void
gs_tel_kill(gs_tel_t *t, const gs_world_t *w, int killer, int victim,
    const char *match_id, const char *mode, int64_t wall_ms)
{
    const gs_player_t  *k, *v;

    if (killer < 0 || killer >= GS_MAX_PLAYERS || victim < 0
        || victim >= GS_MAX_PLAYERS || t->pending == NULL)
    {
        return;
    }

    k = &w->players[killer];
    v = &w->players[victim];
    if (!gs_tel_uuid_valid(k->id)) {
        return;
    }

    gs_tel_add(t, t->pending, "kill", k->id, match_id, wall_ms,
               json_pack("{s:s, s:s, s:s, s:f}", "match_id", match_id,
                         "mode", mode, "victim", v->id, "distance",
                         (double) hypotf(k->x - v->x, k->y - v->y)));
}


static const char *
gs_tel_checks[] = { "speed", "fire_rate", "input_rate", "out_of_bounds" };


int
gs_tel_sample(gs_tel_t *t, gs_world_t *w, const char *match_id,
    const char *mode, int64_t now_ms, int64_t wall_ms, json_t *events)
{
    int               i, k, n, now[4], before[4];
    int64_t           window;
    json_t           *pos;
    gs_player_t      *p;
    gs_tel_player_t  *st;

    n = 0;
    window = now_ms - t->last_ms;
    if (window < 1) {
        window = 1;
    }
    t->last_ms = now_ms;

    /* the kills of the window first: they happened before the sample */
    if (t->pending != NULL) {
        n += (int) json_array_size(t->pending);
        json_array_extend(events, t->pending);
        json_array_clear(t->pending);
    }

    for (i = 0; i < w->rules.max_players && i < GS_MAX_PLAYERS; i++) {
        p = &w->players[i];
        st = &t->players[i];

        if (!p->used || !gs_tel_uuid_valid(p->id)) {
            goto next;
        }

        if (p->connected && p->alive) {
            pos = json_pack("{s:s, s:s, s:f, s:f, s:f}", "match_id", match_id,
                            "mode", mode, "x", (double) p->x, "y",
                            (double) p->y, "speed",
                            (double) (p->ask_max * w->rules.speed));
            if (pos != NULL && p->claimed && st->steady
                && st->deaths == p->deaths)
            {
                json_object_set_new(pos, "claim_x",
                                    json_real((double) p->claim_x));
                json_object_set_new(pos, "claim_y",
                                    json_real((double) p->claim_y));
            }
            n += gs_tel_add(t, events, "position", p->id, match_id, wall_ms,
                            pos);
        }

        if (p->pulls > 0) {
            n += gs_tel_add(t, events, "combat", p->id, match_id, wall_ms,
                            json_pack("{s:s, s:s, s:s, s:i, s:I, s:i, s:i}",
                                      "match_id", match_id, "mode", mode,
                                      "weapon", GS_TEL_WEAPON, "shots",
                                      p->pulls, "window_ms",
                                      (json_int_t) window, "match_shots",
                                      p->shots, "match_hits", p->hits));
        }

        now[0] = p->v.speed;
        now[1] = p->v.fire_rate;
        now[2] = p->v.input_rate;
        now[3] = p->v.out_of_bounds;
        before[0] = st->reported.speed;
        before[1] = st->reported.fire_rate;
        before[2] = st->reported.input_rate;
        before[3] = st->reported.out_of_bounds;

        for (k = 0; k < 4; k++) {
            if (now[k] > before[k]) {
                n += gs_tel_add(t, events, "anticheat.flag", p->id, match_id,
                                wall_ms,
                                json_pack("{s:s, s:s, s:s, s:i}", "match_id",
                                          match_id, "mode", mode, "check",
                                          gs_tel_checks[k], "count",
                                          now[k] - before[k]));
            }
        }

    next:

        st->reported = p->v;
        st->steady = p->alive;
        st->deaths = p->deaths;
        p->ask_max = 0;
        p->pulls = 0;
        p->claimed = 0;
    }

    return n;
}


int
gs_tel_match(gs_tel_t *t, const char *type, const char *match_id,
    const char *mode, int players, const char *reason, const char *winner,
    int64_t duration_ms, int64_t wall_ms, json_t *events)
{
    json_t  *payload;

    if (!gs_tel_uuid_valid(match_id)) {
        return 0;
    }

    if (strcmp(type, "match.start") == 0) {
        payload = json_pack("{s:s, s:s, s:i}", "match_id", match_id, "mode",
                            mode, "players", players);
    } else {
        payload = json_pack("{s:s, s:s, s:s, s:I}", "match_id", match_id,
                            "mode", mode, "reason", reason,
                            "duration_ms", (json_int_t) duration_ms);
        if (payload != NULL && winner != NULL) {
            json_object_set_new(payload, "winner", json_string(winner));
        }
    }

    return gs_tel_add(t, events, type, NULL, match_id, wall_ms, payload);
}
