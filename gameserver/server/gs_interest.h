/*
 * gs_interest.h: which players a client is told about, and how often.
 *
 * A client needs the players it can fight every snapshot; a player across
 * the arena can be a few snapshots old without anyone noticing.  What a
 * client is sent is chosen here, per recipient, as the snapshot it should
 * hold afterwards; gs_proto_snapshot_encode() then writes only what
 * differs from the base the client acknowledged.  Transport-free, like the
 * simulation.
 */
#ifndef GS_INTEREST_H
#define GS_INTEREST_H

#include "protocol.h"

/* a far player is refreshed every GS_INTEREST_FAR_EVERY-th snapshot */
#define GS_INTEREST_FAR_EVERY  4

/*
 * out = full for the players within radius (1/64 units) of self and for
 * self; a player farther away keeps its entry of base (what the client
 * already holds) unless this is its turn (n: the snapshot's number) or its
 * flags, health or score changed.  Players absent from full are absent
 * from out.  out->tick, ack_seq and time_left_ds are full's; base_tick is
 * base's (0 without one).
 */
void gs_interest_select(const gs_snapshot_t *full, const gs_snapshot_t *base,
    int self, uint32_t n, int32_t radius, gs_snapshot_t *out);

#endif /* GS_INTEREST_H */
