/*
 * gs_validate.c: what the server accepts from a client's input.
 *
 * A well-formed input (gs_proto.c checked the framing) can still ask for
 * something the rules forbid.  Each check clamps or ignores the offending
 * part, so the world stays legal whatever a client sends, and counts a
 * violation against the player, so that cheats show up in the result:
 *
 *   input rate     a token bucket of rules.input_rate per second; inputs
 *                  beyond it are dropped whole
 *   speed          a move vector longer than 1 is scaled back to 1; an
 *                  input whose time runs ahead of the real time since the
 *                  player's first input (by more than clock_slack_ms) is
 *                  granted only the time left, and counted
 *   fire rate      a shot sooner than half the fire interval after the last
 *                  accepted one is flagged; one merely early is ignored
 *                  without a flag
 *   out of bounds  the client's predicted position lies outside the arena
 *                  (beyond a one-radius margin for rounding)
 *
 * Time is the input's, not the packet's arrival: a player's inputs are
 * measured on its own clock (time_ms), so jitter that bunches or spreads
 * their arrival changes nothing, and that clock is held to the server's:
 * it may not grant more time than has really passed.  A fast clock thus
 * buys at most clock_slack_ms once, and then its shots are measured on
 * real time again, where firing too often shows.
 */

#include <math.h>

#include "gs_sim.h"


/* a client normalises in 1/1000: allow a hair over for its rounding */
#define GS_VALIDATE_MOVE_SLACK  1.01f


int
gs_violations_total(const gs_violations_t *v)
{
    return v->speed + v->fire_rate + v->input_rate + v->out_of_bounds;
}


static int
gs_validate_rate(gs_world_t *w, gs_player_t *p, int64_t now_ms)
{
    double  cap = w->rules.input_rate;

    if (p->tokens_ms == 0) {
        p->tokens = cap;
    } else if (now_ms > p->tokens_ms) {
        p->tokens += (now_ms - p->tokens_ms) * cap / 1000.0;
        if (p->tokens > cap) {
            p->tokens = cap;
        }
    }
    p->tokens_ms = now_ms;

    if (p->tokens < 1.0) {
        return 0;
    }
    p->tokens -= 1.0;
    return 1;
}


/*
 * How long this input moves the player, in ms of input time: its time
 * minus the previous input's, capped at GS_INPUT_DT_MAX_MS, and within
 * the budget real time allows.
 */
static int64_t
gs_validate_clock(gs_world_t *w, gs_player_t *p, uint32_t time_ms,
    int64_t now_ms)
{
    int64_t  d, budget;

    if (!p->clock_started) {
        p->clock_started = 1;
        p->clock_t0 = now_ms;
        p->clock_last = time_ms;
        p->sim_ms = 0;
        return 0;
    }

    /* differences modulo 2^32: a client clock may wrap */
    d = (int32_t) (time_ms - p->clock_last);
    p->clock_last = time_ms;
    if (d < 0) {
        d = 0;          /* a clock that steps back moves nobody */
    } else if (d > GS_INPUT_DT_MAX_MS) {
        d = GS_INPUT_DT_MAX_MS;
    }

    budget = now_ms - p->clock_t0 + w->rules.clock_slack_ms - p->sim_ms;
    if (d > budget) {
        p->v.speed++;
        d = budget > 0 ? budget : 0;
    }
    p->sim_ms += d;
    return d;
}


gs_input_verdict_e
gs_validate_input(gs_world_t *w, int slot, const gs_input_t *in,
    int64_t now_ms)
{
    gs_player_t        *p = &w->players[slot];
    gs_queued_input_t  *q;
    float               mx, my, len, cx, cy, margin;
    int64_t             since, dt;
    gs_input_verdict_e  verdict = GS_INPUT_APPLIED;

    if (!gs_validate_rate(w, p, now_ms)) {
        p->v.input_rate++;
        verdict = GS_INPUT_RATE_LIMITED;
        goto flag;
    }

    /* ENet drops out-of-order sequenced packets; this catches replays */
    if (in->seq <= p->recv_seq) {
        p->stale++;
        return GS_INPUT_STALE;
    }
    p->recv_seq = in->seq;
    p->inputs++;
    /* the base of the next delta; a tick not yet sent is a lie */
    if (in->ack_tick > p->ack_tick && in->ack_tick <= w->tick) {
        p->ack_tick = in->ack_tick;
    }

    /* a full queue means the client sends faster than the rate check
     * lets it, in a burst: the newest input waits for nothing */
    if (p->qlen == GS_INPUT_QUEUE) {
        p->dropped++;
        p->stale++;
        return GS_INPUT_STALE;
    }
    dt = gs_validate_clock(w, p, in->time_ms, now_ms);
    q = &p->queue[(p->qhead + p->qlen) % GS_INPUT_QUEUE];
    q->seq = in->seq;
    q->fire = 0;
    q->dt = dt / 1000.0f;
    q->view_tick = in->view_tick;

    mx = in->move_x / (float) GS_MOVE_ONE;
    my = in->move_y / (float) GS_MOVE_ONE;
    len = sqrtf(mx * mx + my * my);
    if (len > p->ask_max) {
        p->ask_max = len;
    }
    if (len > GS_VALIDATE_MOVE_SLACK) {
        p->v.speed++;
    }
    if (len > 1.0f) {
        mx /= len;
        my /= len;
    }
    q->mx = mx;
    q->my = my;
    q->aim = in->aim;

    cx = in->claim_x / GS_FIX;
    cy = in->claim_y / GS_FIX;
    p->claim_x = cx;
    p->claim_y = cy;
    p->claimed = 1;
    margin = w->rules.radius;
    if (cx < -margin || cy < -margin || cx > w->rules.arena_w + margin
        || cy > w->rules.arena_h + margin)
    {
        p->v.out_of_bounds++;
    }

    if (in->buttons & GS_BTN_FIRE) {
        p->pulls++;
        since = p->sim_ms - p->last_fire_ms;
        if (since < w->rules.fire_interval_ms / 2) {
            p->v.fire_rate++;
        } else if (since >= w->rules.fire_interval_ms) {
            q->fire = 1;
            p->last_fire_ms = p->sim_ms;
        }
    }
    p->qlen++;

flag:
    if (!p->flagged
        && gs_violations_total(&p->v) >= w->rules.flag_threshold)
    {
        p->flagged = 1;
    }

    return verdict;
}
