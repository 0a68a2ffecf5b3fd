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
 *   speed          a move vector longer than 1 is scaled back to 1
 *   fire rate      a shot sooner than half the fire interval after the last
 *                  accepted one is flagged; one merely early (network
 *                  jitter) is ignored without a flag
 *   out of bounds  the client's predicted position lies outside the arena
 *                  (beyond a one-radius margin for rounding)
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


gs_input_verdict_e
gs_validate_input(gs_world_t *w, int slot, const gs_input_t *in,
    int64_t now_ms)
{
    gs_player_t        *p = &w->players[slot];
    gs_queued_input_t  *q;
    float               mx, my, len, cx, cy, margin;
    int64_t       since;
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

    /* a full queue means the client sends faster than the rate check
     * lets it, in a burst: the newest input waits for nothing */
    if (p->qlen == GS_INPUT_QUEUE) {
        p->dropped++;
        p->stale++;
        return GS_INPUT_STALE;
    }
    q = &p->queue[(p->qhead + p->qlen) % GS_INPUT_QUEUE];
    q->seq = in->seq;
    q->fire = 0;

    mx = in->move_x / (float) GS_MOVE_ONE;
    my = in->move_y / (float) GS_MOVE_ONE;
    len = sqrtf(mx * mx + my * my);
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
    margin = w->rules.radius;
    if (cx < -margin || cy < -margin || cx > w->rules.arena_w + margin
        || cy > w->rules.arena_h + margin)
    {
        p->v.out_of_bounds++;
    }

    if (in->buttons & GS_BTN_FIRE) {
        since = now_ms - p->last_fire_ms;
        if (since < w->rules.fire_interval_ms / 2) {
            p->v.fire_rate++;
        } else if (since >= w->rules.fire_interval_ms - 1000
                              / w->rules.tick_hz)
        {
            /* a tick of slack: inputs arrive bunched on tick boundaries */
            q->fire = 1;
            p->last_fire_ms = now_ms;
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
