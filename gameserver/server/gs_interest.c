/*
 * gs_interest.c: the snapshot a client should hold, player by player.
 *
 * A far player is held back only while nothing a client must not miss
 * changed: death, respawn, health and score always go out at once, only
 * the motion of a far player waits for its turn.  Turns are spread by
 * slot, so each snapshot refreshes a quarter of the far players and its
 * size stays flat rather than spiking every fourth one.
 */

#include <string.h>

#include "gs_interest.h"


/* the players of a snapshot by slot, NULL where absent: one pass, so a
 * recipient costs O(players), not O(players^2) */
static void
gs_interest_index(const gs_snapshot_t *s, const gs_snap_player_t **by)
{
    unsigned  i;

    memset(by, 0, GS_MAX_PLAYERS * sizeof(*by));
    for (i = 0; s != NULL && i < s->count; i++) {
        if (s->players[i].slot < GS_MAX_PLAYERS) {
            by[s->players[i].slot] = &s->players[i];
        }
    }
}


void
gs_interest_select(const gs_snapshot_t *full, const gs_snapshot_t *base,
    int self, uint32_t n, int32_t radius, gs_snapshot_t *out)
{
    const gs_snap_player_t  *me = NULL, *cur, *old;
    const gs_snap_player_t  *was[GS_MAX_PLAYERS];
    int32_t                  dx, dy;
    unsigned                 i;

    gs_interest_index(base, was);
    for (i = 0; i < full->count; i++) {
        if ((int) full->players[i].slot == self) {
            me = &full->players[i];
        }
    }

    out->tick = full->tick;
    out->base_tick = base != NULL ? base->tick : 0;
    out->ack_seq = full->ack_seq;
    out->time_left_ds = full->time_left_ds;
    out->count = 0;

    for (i = 0; i < full->count; i++) {
        cur = &full->players[i];
        old = cur->slot < GS_MAX_PLAYERS ? was[cur->slot] : NULL;
        if (me != NULL && old != NULL && cur != me
            && (n + cur->slot) % GS_INTEREST_FAR_EVERY != 0
            && old->flags == cur->flags && old->health == cur->health
            && old->score == cur->score)
        {
            dx = (int32_t) cur->x - me->x;
            dy = (int32_t) cur->y - me->y;
            if ((int64_t) dx * dx + (int64_t) dy * dy
                > (int64_t) radius * radius)
            {
                out->players[out->count++] = *old;
                continue;
            }
        }
        out->players[out->count++] = *cur;
    }
}
