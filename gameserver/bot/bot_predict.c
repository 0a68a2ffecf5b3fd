/*
 * bot_predict.c: client-side prediction and reconciliation.
 *
 * The arithmetic is the server's (gs_validate.c, gs_sim.c), step for step
 * and in float: the move vector scaled back to length 1, each input moving
 * for its own duration (time_ms minus the previous input's, the first one
 * not at all, at most GS_INPUT_DT_MAX_MS), walls one radius in.  The
 * server's snapshot rounds positions to 1/64, so a reconciled position can
 * differ from the prediction by that much without anything being wrong: a
 * correction is an error beyond BOT_PREDICT_SLACK.
 */

#include <math.h>

#include "bot.h"
#include "gs_sim.h"


#define BOT_PREDICT_RADIUS  1.0f    /* the rules' radius (not announced) */
#define BOT_PREDICT_SLACK   0.05f   /* world units: rounding, not error */


static float
bot_predict_clamp(float v, float lo, float hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}


static void
bot_predict_move(const bot_t *b, float *x, float *y, const bot_pending_t *p)
{
    float  r = BOT_PREDICT_RADIUS, vx, vy;

    vx = p->mx * (float) b->rules.speed;
    vy = p->my * (float) b->rules.speed;
    *x = bot_predict_clamp(*x + vx * p->dt, r, b->rules.arena_w - r);
    *y = bot_predict_clamp(*y + vy * p->dt, r, b->rules.arena_h - r);
}


void
bot_predict_input(bot_t *b, const gs_input_t *in)
{
    bot_predict_t  *pr = &b->predict;
    bot_pending_t  *p;
    float           mx, my, len;
    int64_t         d;

    mx = in->move_x / (float) GS_MOVE_ONE;
    my = in->move_y / (float) GS_MOVE_ONE;
    len = sqrtf(mx * mx + my * my);
    if (len > 1.0f) {
        mx /= len;
        my /= len;
    }

    d = pr->started ? (int32_t) (in->time_ms - pr->last_time) : 0;
    d = d < 0 ? 0 : d > GS_INPUT_DT_MAX_MS ? GS_INPUT_DT_MAX_MS : d;
    pr->started = 1;
    pr->last_time = in->time_ms;

    if (pr->plen == BOT_PENDING) {      /* acks stopped: forget the oldest */
        pr->phead = (pr->phead + 1) % BOT_PENDING;
        pr->plen--;
    }
    p = &pr->pending[(pr->phead + pr->plen++) % BOT_PENDING];
    p->seq = in->seq;
    p->mx = mx;
    p->my = my;
    p->dt = d / 1000.0f;

    if (pr->was_alive) {
        bot_predict_move(b, &pr->x, &pr->y, p);
    }
}


void
bot_predict_snapshot(bot_t *b, const gs_snapshot_t *s)
{
    bot_predict_t           *pr = &b->predict;
    const gs_snap_player_t  *me = NULL;
    float                    x, y, dx, dy, err;
    unsigned                 i;
    int                      alive;

    for (i = 0; i < s->count; i++) {
        if (s->players[i].slot == b->slot) {
            me = &s->players[i];
        }
    }
    if (me == NULL) {
        return;
    }

    /* inputs the server has simulated are history */
    while (pr->plen > 0 && pr->pending[pr->phead].seq <= s->ack_seq) {
        pr->phead = (pr->phead + 1) % BOT_PENDING;
        pr->plen--;
    }

    x = me->x / GS_FIX;
    y = me->y / GS_FIX;
    alive = (me->flags & GS_SNAP_ALIVE) != 0;
    if (alive) {
        for (i = 0; i < (unsigned) pr->plen; i++) {
            bot_predict_move(b, &x, &y,
                             &pr->pending[(pr->phead + i) % BOT_PENDING]);
        }
    }

    /* death and respawn move a player without an input: not an error */
    if (alive && pr->was_alive) {
        dx = pr->x - x;
        dy = pr->y - y;
        err = sqrtf(dx * dx + dy * dy);
        pr->checks++;
        pr->err_sum += err;
        if (err > pr->err_max) {
            pr->err_max = err;
        }
        if (err > BOT_PREDICT_SLACK) {
            pr->corrections++;
        }
    }
    pr->x = x;
    pr->y = y;
    pr->was_alive = alive;
}
