/*
 * gs_sim.c: one tick of the arena deathmatch.
 *
 * The server is the authority: positions come only from integrating the
 * (validated, clamped) move direction at the rules' speed, shots are
 * resolved here as hitscan rays against player circles, and the client's
 * own idea of its position is used for nothing but the out-of-bounds check.
 * Players who leave keep their slot and stats until the match ends, so a
 * reconnect gets its score back and the result lists everyone who played.
 */

#include <math.h>
#include <string.h>

#include "gs_sim.h"


void
gs_rules_default(gs_rules_t *r, int tick_hz)
{
    memset(r, 0, sizeof(*r));
    r->tick_hz = tick_hz;
    r->max_players = 16;
    r->match_seconds = 120;
    r->score_limit = 20;
    r->arena_w = 100.0f;
    r->arena_h = 100.0f;
    r->speed = 10.0f;
    r->radius = 1.0f;
    r->range = 40.0f;
    r->health = 100;
    r->damage = 25;
    r->fire_interval_ms = 200;
    r->respawn_ms = 2000;
    /* a client sends one input per frame; allow 60 fps clients and jitter */
    r->input_rate = tick_hz * 2 > 90 ? tick_hz * 2 : 90;
    r->flag_threshold = 10;
    r->lag_window_ms = 200;
    r->clock_slack_ms = 250;
}


/* xorshift32: spawn points only need to be spread, not secret */
static uint32_t
gs_sim_rand(gs_world_t *w)
{
    uint32_t  x = w->rng;

    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    w->rng = x;
    return x;
}


static void
gs_sim_spawn(gs_world_t *w, gs_player_t *p)
{
    float  margin = w->rules.radius * 2;

    p->x = margin + (gs_sim_rand(w) % 10000) / 10000.0f
                    * (w->rules.arena_w - 2 * margin);
    p->y = margin + (gs_sim_rand(w) % 10000) / 10000.0f
                    * (w->rules.arena_h - 2 * margin);
    p->vx = p->vy = 0;
    p->health = w->rules.health;
    p->alive = 1;
}


static void
gs_sim_emit(gs_world_t *w, int kind, int a, int b)
{
    gs_event_t  e;

    if (w->on_event != NULL) {
        e.kind = (uint8_t) kind;
        e.tick = w->tick;
        e.a = (uint8_t) a;
        e.b = (uint8_t) b;
        w->on_event(w->data, &e);
    }
}


void
gs_sim_init(gs_world_t *w, const gs_rules_t *rules, uint32_t seed,
    gs_sim_event_pt on_event, void *data)
{
    memset(w, 0, sizeof(*w));
    w->rules = *rules;
    if (w->rules.max_players > GS_MAX_PLAYERS) {
        w->rules.max_players = GS_MAX_PLAYERS;
    }
    w->rng = seed ? seed : 0x9e3779b9u;
    w->on_event = on_event;
    w->data = data;
}


int
gs_sim_find(gs_world_t *w, const char *id)
{
    int  i;

    for (i = 0; i < w->rules.max_players; i++) {
        if (w->players[i].used && strcmp(w->players[i].id, id) == 0) {
            return i;
        }
    }
    return -1;
}


int
gs_sim_join(gs_world_t *w, const char *id)
{
    gs_player_t  *p;
    int           i;

    i = gs_sim_find(w, id);

    if (i < 0) {
        for (i = 0; i < w->rules.max_players; i++) {
            if (!w->players[i].used) {
                break;
            }
        }
        if (i == w->rules.max_players || strlen(id) > GS_PLAYER_ID_MAX) {
            return -1;
        }
        p = &w->players[i];
        memset(p, 0, sizeof(*p));
        p->used = 1;
        strcpy(p->id, id);
        p->last_fire_ms = INT64_MIN / 2;
        gs_sim_spawn(w, p);
    }

    /* a reconnect keeps its stats; its input sequence starts over */
    p = &w->players[i];
    p->connected = 1;
    p->last_seq = 0;
    p->recv_seq = 0;
    p->ack_tick = 0;
    p->qhead = p->qlen = 0;
    p->tokens_ms = 0;
    p->clock_started = 0;
    p->last_fire_ms = INT64_MIN / 2;
    p->mx = p->my = 0;
    gs_sim_emit(w, GS_EV_JOIN, i, 0);
    return i;
}


void
gs_sim_leave(gs_world_t *w, int slot)
{
    if (slot >= 0 && slot < w->rules.max_players
        && w->players[slot].connected)
    {
        w->players[slot].connected = 0;
        w->players[slot].mx = w->players[slot].my = 0;
        gs_sim_emit(w, GS_EV_LEAVE, slot, 0);
    }
}


int
gs_sim_connected(const gs_world_t *w)
{
    int  i, n = 0;

    for (i = 0; i < w->rules.max_players; i++) {
        n += w->players[i].connected;
    }
    return n;
}


/*
 * Where the shooter saw the others: the history entry of the tick its
 * input names, no older than the lag window (an older claim is clamped to
 * the window's edge), or NULL for the present (no claim, a claim of this
 * tick or later, or a tick no longer kept).
 */
static const gs_history_t *
gs_sim_rewind(gs_world_t *w, gs_player_t *s, uint32_t view_tick)
{
    uint32_t             window, oldest;
    const gs_history_t  *h;

    if (view_tick == 0 || view_tick >= w->tick) {
        return NULL;
    }
    window = (uint32_t) (w->rules.lag_window_ms * w->rules.tick_hz / 1000);
    if (window > GS_HISTORY - 1) {
        window = GS_HISTORY - 1;
    }
    oldest = w->tick > window ? w->tick - window : 1;
    if (view_tick < oldest) {
        view_tick = oldest;
        s->rewinds_clamped++;
    }
    h = &w->history[view_tick % GS_HISTORY];
    if (h->tick != view_tick) {
        return NULL;
    }
    s->rewinds++;
    return h;
}


/*
 * The first player whose circle the ray from (sx, sy) crosses within
 * range: project each target on the aim direction, keep those in front and
 * close enough to the line, take the nearest along the ray.  Targets are
 * where h shows them (lag compensation); a target must be alive both then
 * and now: the dead are not killed twice.
 */
static int
gs_sim_trace(gs_world_t *w, int shooter, float sx, float sy, uint16_t aim,
    const gs_history_t *h)
{
    gs_player_t  *t;
    float         a, dx, dy, ux, uy, along, off2, best = 1e30f;
    int           i, hit = -1;

    a = aim * (float) (2.0 * 3.14159265358979323846 / 65536.0);
    ux = cosf(a);
    uy = sinf(a);

    for (i = 0; i < w->rules.max_players; i++) {
        t = &w->players[i];
        if (i == shooter || !t->connected || !t->alive
            || (h != NULL && !h->alive[i]))
        {
            continue;
        }
        dx = (h != NULL ? h->x[i] : t->x) - sx;
        dy = (h != NULL ? h->y[i] : t->y) - sy;
        along = dx * ux + dy * uy;
        if (along <= 0 || along > w->rules.range || along >= best) {
            continue;
        }
        off2 = dx * dx + dy * dy - along * along;
        if (off2 <= w->rules.radius * w->rules.radius) {
            best = along;
            hit = i;
        }
    }

    return hit;
}


static float
gs_sim_clampf(float v, float lo, float hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}


typedef struct {
    float      x, y;            /* the shooter, after its input's move */
    uint16_t   aim;
    uint32_t   view_tick;
} gs_shot_t;


/*
 * This tick's inputs of one player, oldest first: each moves the player
 * for its own duration (walls stop a player; they do not bounce), sets the
 * aim, and a shot it fires is kept with that aim and that position.
 * Returns the number of shots added to shots[].
 */
static int
gs_sim_take_inputs(gs_world_t *w, int slot, gs_shot_t *shots)
{
    gs_player_t        *p = &w->players[slot];
    gs_queued_input_t  *q;
    float               r = w->rules.radius;
    int                 n, k = 0;

    for (n = 0; n < GS_INPUTS_PER_TICK && p->qlen > 0; n++) {
        q = &p->queue[p->qhead];
        p->qhead = (p->qhead + 1) % GS_INPUT_QUEUE;
        p->qlen--;
        p->mx = q->mx;
        p->my = q->my;
        p->aim = q->aim;
        p->last_seq = q->seq;
        if (!p->alive || !p->connected) {
            continue;
        }
        p->vx = q->mx * w->rules.speed;
        p->vy = q->my * w->rules.speed;
        p->x = gs_sim_clampf(p->x + p->vx * q->dt, r, w->rules.arena_w - r);
        p->y = gs_sim_clampf(p->y + p->vy * q->dt, r, w->rules.arena_h - r);
        if (q->fire) {
            shots[k].x = p->x;
            shots[k].y = p->y;
            shots[k].aim = q->aim;
            shots[k].view_tick = q->view_tick;
            k++;
        }
    }
    return k;
}


static void
gs_sim_shoot(gs_world_t *w, int i, const gs_shot_t *shot,
    uint32_t respawn_ticks, int *limit)
{
    gs_player_t  *p = &w->players[i], *t;
    int           hit;

    p->shots++;
    hit = gs_sim_trace(w, i, shot->x, shot->y, shot->aim,
                       gs_sim_rewind(w, p, shot->view_tick));
    if (hit < 0) {
        return;
    }
    p->hits++;
    t = &w->players[hit];
    t->health -= w->rules.damage;
    if (t->health <= 0) {
        t->health = 0;
        t->alive = 0;
        t->deaths++;
        t->respawn_tick = w->tick + respawn_ticks;
        p->kills++;
        gs_sim_emit(w, GS_EV_DEATH, hit, i);
        if (w->rules.score_limit > 0 && p->kills >= w->rules.score_limit) {
            *limit = 1;
        }
    }
}


/* what this tick's snapshot shows, kept for the shots of later ticks */
static void
gs_sim_record(gs_world_t *w)
{
    gs_history_t  *h = &w->history[w->tick % GS_HISTORY];
    gs_player_t   *p;
    int            i;

    h->tick = w->tick;
    for (i = 0; i < w->rules.max_players; i++) {
        p = &w->players[i];
        h->x[i] = p->x;
        h->y[i] = p->y;
        h->alive[i] = (uint8_t) (p->used && p->connected && p->alive);
    }
}


int
gs_sim_step(gs_world_t *w)
{
    gs_player_t  *p;
    int           i, k, limit = 0;
    uint32_t      respawn_ticks;
    gs_shot_t     shots[GS_MAX_PLAYERS][GS_INPUTS_PER_TICK];
    int           nshots[GS_MAX_PLAYERS];

    w->tick++;
    respawn_ticks = (uint32_t) (w->rules.respawn_ms * w->rules.tick_hz
                                / 1000);

    for (i = 0; i < w->rules.max_players; i++) {
        p = &w->players[i];
        nshots[i] = 0;
        if (!p->used) {
            continue;
        }
        if (!p->alive && p->connected && w->tick >= p->respawn_tick) {
            gs_sim_spawn(w, p);
        }
        nshots[i] = gs_sim_take_inputs(w, i, shots[i]);
    }

    /* shots after everyone's movement, in slot order; each with the aim,
     * the position and the view of the input that fired it */
    for (i = 0; i < w->rules.max_players; i++) {
        for (k = 0; k < nshots[i]; k++) {
            p = &w->players[i];
            if (p->alive && p->connected) {
                gs_sim_shoot(w, i, &shots[i][k], respawn_ticks, &limit);
            }
        }
    }

    gs_sim_record(w);
    return limit;
}


void
gs_sim_flush_inputs(gs_world_t *w)
{
    int  i;

    for (i = 0; i < w->rules.max_players; i++) {
        w->players[i].qhead = w->players[i].qlen = 0;
        w->players[i].last_seq = w->players[i].recv_seq;
    }
}


int
gs_sim_leader(const gs_world_t *w)
{
    int  i, best = -1, tie = 0;

    for (i = 0; i < w->rules.max_players; i++) {
        if (!w->players[i].used) {
            continue;
        }
        if (best < 0 || w->players[i].kills > w->players[best].kills) {
            best = i;
            tie = 0;
        } else if (w->players[i].kills == w->players[best].kills) {
            tie = 1;
        }
    }
    return tie ? -1 : best;
}


static int16_t
gs_sim_fix(float v)
{
    v *= GS_FIX;
    return (int16_t) gs_sim_clampf(v, -32767.0f, 32767.0f);
}


void
gs_sim_snapshot(const gs_world_t *w, int slot, uint32_t ticks_left,
    gs_snapshot_t *s)
{
    const gs_player_t  *p;
    gs_snap_player_t   *sp;
    uint32_t            ds;
    int                 i;

    s->tick = w->tick;
    s->base_tick = 0;
    s->ack_seq = slot >= 0 ? w->players[slot].last_seq : 0;
    ds = ticks_left * 10 / (uint32_t) w->rules.tick_hz;
    s->time_left_ds = (uint16_t) (ds > 65535 ? 65535 : ds);
    s->count = 0;

    for (i = 0; i < w->rules.max_players; i++) {
        p = &w->players[i];
        if (!p->used || !p->connected) {
            continue;
        }
        sp = &s->players[s->count++];
        sp->slot = (uint8_t) i;
        sp->flags = p->alive ? GS_SNAP_ALIVE : 0;
        sp->x = gs_sim_fix(p->x);
        sp->y = gs_sim_fix(p->y);
        sp->vx = gs_sim_fix(p->vx);
        sp->vy = gs_sim_fix(p->vy);
        sp->aim = p->aim;
        sp->health = (uint8_t) (p->health > 255 ? 255 : p->health);
        sp->score = (int16_t) p->kills;
    }
}
