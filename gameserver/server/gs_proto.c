/*
 * gs_proto.c: encode and decode the messages of protocol.h.
 *
 * Byte-by-byte little-endian writes and reads, never a cast of a struct
 * onto the packet: the layout then does not depend on the compiler's
 * padding or the host's byte order, and a short packet cannot be read
 * past its end.  Decoders refuse exact-size mismatches rather than
 * ignoring trailing bytes, so a truncated or padded message is visible
 * as malformed instead of silently half-read.
 */

#include <string.h>

#include "protocol.h"


static uint8_t *
gs_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t) v;
    p[1] = (uint8_t) (v >> 8);
    return p + 2;
}


static uint8_t *
gs_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t) v;
    p[1] = (uint8_t) (v >> 8);
    p[2] = (uint8_t) (v >> 16);
    p[3] = (uint8_t) (v >> 24);
    return p + 4;
}


static uint16_t
gs_get16(const uint8_t *p)
{
    return (uint16_t) (p[0] | (p[1] << 8));
}


static uint32_t
gs_get32(const uint8_t *p)
{
    return (uint32_t) p[0] | ((uint32_t) p[1] << 8)
           | ((uint32_t) p[2] << 16) | ((uint32_t) p[3] << 24);
}


size_t
gs_proto_hello_encode(uint8_t *buf, size_t cap, const char *ticket,
    size_t len)
{
    uint8_t  *p = buf;

    if (len > GS_TICKET_MAX || cap < GS_HELLO_HDR + len) {
        return 0;
    }

    *p++ = GS_MSG_HELLO;
    *p++ = GS_PROTO_VERSION;
    p = gs_put16(p, (uint16_t) len);
    memcpy(p, ticket, len);

    return GS_HELLO_HDR + len;
}


int
gs_proto_hello_decode(const uint8_t *p, size_t n, gs_hello_t *h)
{
    size_t  i;

    if (n < GS_HELLO_HDR || p[0] != GS_MSG_HELLO) {
        return -1;
    }

    h->version = p[1];
    h->ticket_len = gs_get16(p + 2);

    if (h->ticket_len == 0 || h->ticket_len > GS_TICKET_MAX
        || n != GS_HELLO_HDR + (size_t) h->ticket_len)
    {
        return -1;
    }

    /* a JWT is printable ASCII; anything else cannot be one */
    for (i = 0; i < h->ticket_len; i++) {
        if (p[GS_HELLO_HDR + i] < 0x21 || p[GS_HELLO_HDR + i] > 0x7e) {
            return -1;
        }
    }

    h->ticket = (const char *) p + GS_HELLO_HDR;
    return 0;
}


size_t
gs_proto_input_encode(uint8_t *buf, size_t cap, const gs_input_t *in)
{
    uint8_t  *p = buf;

    if (cap < GS_INPUT_SIZE) {
        return 0;
    }

    *p++ = GS_MSG_INPUT;
    p = gs_put32(p, in->seq);
    p = gs_put16(p, (uint16_t) in->move_x);
    p = gs_put16(p, (uint16_t) in->move_y);
    p = gs_put16(p, in->aim);
    *p++ = in->buttons;
    p = gs_put16(p, (uint16_t) in->claim_x);
    gs_put16(p, (uint16_t) in->claim_y);

    return GS_INPUT_SIZE;
}


int
gs_proto_input_decode(const uint8_t *p, size_t n, gs_input_t *in)
{
    if (n != GS_INPUT_SIZE || p[0] != GS_MSG_INPUT) {
        return -1;
    }

    in->seq = gs_get32(p + 1);
    in->move_x = (int16_t) gs_get16(p + 5);
    in->move_y = (int16_t) gs_get16(p + 7);
    in->aim = gs_get16(p + 9);
    in->buttons = p[11];
    in->claim_x = (int16_t) gs_get16(p + 12);
    in->claim_y = (int16_t) gs_get16(p + 14);

    /*
     * Sequence 0 is never sent (clients start at 1), and unknown button
     * bits mean a client we do not understand.  An oversized move vector
     * is well-formed: it is a validation matter (clamped and flagged),
     * not a framing one.
     */
    if (in->seq == 0 || (in->buttons & ~GS_BTN_FIRE) != 0) {
        return -1;
    }

    return 0;
}


size_t
gs_proto_welcome_encode(uint8_t *buf, size_t cap, const gs_welcome_t *w)
{
    uint8_t  *p = buf;

    if (cap < GS_WELCOME_SIZE) {
        return 0;
    }

    *p++ = GS_MSG_WELCOME;
    *p++ = w->version;
    *p++ = w->slot;
    *p++ = w->max_players;
    p = gs_put16(p, w->tick_hz);
    p = gs_put16(p, w->snapshot_hz);
    p = gs_put16(p, w->fire_interval_ms);
    p = gs_put16(p, w->arena_w);
    p = gs_put16(p, w->arena_h);
    p = gs_put16(p, w->match_seconds);
    p = gs_put16(p, w->score_limit);
    gs_put16(p, w->speed);

    return GS_WELCOME_SIZE;
}


int
gs_proto_welcome_decode(const uint8_t *p, size_t n, gs_welcome_t *w)
{
    if (n != GS_WELCOME_SIZE || p[0] != GS_MSG_WELCOME) {
        return -1;
    }

    w->version = p[1];
    w->slot = p[2];
    w->max_players = p[3];
    w->tick_hz = gs_get16(p + 4);
    w->snapshot_hz = gs_get16(p + 6);
    w->fire_interval_ms = gs_get16(p + 8);
    w->arena_w = gs_get16(p + 10);
    w->arena_h = gs_get16(p + 12);
    w->match_seconds = gs_get16(p + 14);
    w->score_limit = gs_get16(p + 16);
    w->speed = gs_get16(p + 18);

    if (w->max_players == 0 || w->max_players > GS_MAX_PLAYERS
        || w->slot >= w->max_players || w->tick_hz == 0
        || w->arena_w == 0 || w->arena_h == 0)
    {
        return -1;
    }

    return 0;
}


size_t
gs_proto_event_encode(uint8_t *buf, size_t cap, const gs_event_t *e)
{
    uint8_t  *p = buf;

    if (cap < GS_EVENT_SIZE) {
        return 0;
    }

    *p++ = GS_MSG_EVENT;
    *p++ = e->kind;
    p = gs_put32(p, e->tick);
    *p++ = e->a;
    *p = e->b;

    return GS_EVENT_SIZE;
}


int
gs_proto_event_decode(const uint8_t *p, size_t n, gs_event_t *e)
{
    if (n != GS_EVENT_SIZE || p[0] != GS_MSG_EVENT) {
        return -1;
    }

    e->kind = p[1];
    e->tick = gs_get32(p + 2);
    e->a = p[6];
    e->b = p[7];

    if (e->kind < GS_EV_JOIN || e->kind > GS_EV_MATCH_END) {
        return -1;
    }

    return 0;
}


size_t
gs_proto_snapshot_encode(uint8_t *buf, size_t cap, const gs_snapshot_t *s)
{
    uint8_t                 *p = buf;
    const gs_snap_player_t  *sp;
    unsigned                 i;

    if (s->count > GS_MAX_PLAYERS
        || cap < GS_SNAP_HDR + (size_t) s->count * GS_SNAP_PLAYER)
    {
        return 0;
    }

    *p++ = GS_MSG_SNAPSHOT;
    p = gs_put32(p, s->tick);
    p = gs_put32(p, s->ack_seq);
    p = gs_put16(p, s->time_left_ds);
    *p++ = s->count;

    for (i = 0; i < s->count; i++) {
        sp = &s->players[i];
        *p++ = sp->slot;
        *p++ = sp->flags;
        p = gs_put16(p, (uint16_t) sp->x);
        p = gs_put16(p, (uint16_t) sp->y);
        p = gs_put16(p, (uint16_t) sp->vx);
        p = gs_put16(p, (uint16_t) sp->vy);
        p = gs_put16(p, sp->aim);
        *p++ = sp->health;
        p = gs_put16(p, (uint16_t) sp->score);
    }

    return (size_t) (p - buf);
}


int
gs_proto_snapshot_decode(const uint8_t *p, size_t n, gs_snapshot_t *s)
{
    gs_snap_player_t  *sp;
    const uint8_t     *q;
    unsigned           i;

    if (n < GS_SNAP_HDR || p[0] != GS_MSG_SNAPSHOT) {
        return -1;
    }

    s->tick = gs_get32(p + 1);
    s->ack_seq = gs_get32(p + 5);
    s->time_left_ds = gs_get16(p + 9);
    s->count = p[11];

    if (s->count > GS_MAX_PLAYERS
        || n != GS_SNAP_HDR + (size_t) s->count * GS_SNAP_PLAYER)
    {
        return -1;
    }

    q = p + GS_SNAP_HDR;
    for (i = 0; i < s->count; i++, q += GS_SNAP_PLAYER) {
        sp = &s->players[i];
        sp->slot = q[0];
        sp->flags = q[1];
        sp->x = (int16_t) gs_get16(q + 2);
        sp->y = (int16_t) gs_get16(q + 4);
        sp->vx = (int16_t) gs_get16(q + 6);
        sp->vy = (int16_t) gs_get16(q + 8);
        sp->aim = gs_get16(q + 10);
        sp->health = q[12];
        sp->score = (int16_t) gs_get16(q + 13);

        if (sp->slot >= GS_MAX_PLAYERS) {
            return -1;
        }
    }

    return 0;
}


void
gs_proto_snapshot_set_ack(uint8_t *buf, uint32_t ack_seq)
{
    gs_put32(buf + 5, ack_seq);
}


const char *
gs_proto_refuse_name(uint32_t reason)
{
    static const char *names[] = {
        "none", "no_ticket", "bad_ticket", "expired", "wrong_server",
        "wrong_match", "replayed", "full", "version", "match_over",
        "shutdown", "busy", "replaced"
    };

    return reason < sizeof(names) / sizeof(names[0]) ? names[reason]
                                                     : "unknown";
}


const char *
gs_proto_end_name(int reason)
{
    static const char *names[] = {
        "none", "time", "score", "empty", "abort", "drain"
    };

    return reason >= 0 && (size_t) reason < sizeof(names) / sizeof(names[0])
           ? names[reason] : "unknown";
}
