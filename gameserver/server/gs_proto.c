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
    p = gs_put16(p, (uint16_t) in->claim_y);
    p = gs_put32(p, in->time_ms);
    p = gs_put32(p, in->ack_tick);
    gs_put32(p, in->view_tick);

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
    in->time_ms = gs_get32(p + 16);
    in->ack_tick = gs_get32(p + 20);
    in->view_tick = gs_get32(p + 24);

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


/*
 * Snapshots.  An entry is the slot, a byte of GS_SF_* bits, and the
 * fields those bits name in bit order: against a base, only the players
 * and fields that changed are written (a moving player costs its x and y,
 * six bytes, a still one nothing), players gone from s get an entry with
 * no fields, players new to the client are written whole.
 */
static unsigned
gs_proto_snap_diff(const gs_snap_player_t *a, const gs_snap_player_t *b)
{
    unsigned  f = 0;

    if (b == NULL) {
        return GS_SF_ALL;
    }
    f |= a->flags != b->flags ? GS_SF_FLAGS : 0;
    f |= a->x != b->x ? GS_SF_X : 0;
    f |= a->y != b->y ? GS_SF_Y : 0;
    f |= a->vx != b->vx ? GS_SF_VX : 0;
    f |= a->vy != b->vy ? GS_SF_VY : 0;
    f |= a->aim != b->aim ? GS_SF_AIM : 0;
    f |= a->health != b->health ? GS_SF_HEALTH : 0;
    f |= a->score != b->score ? GS_SF_SCORE : 0;
    return f;
}


static size_t
gs_proto_snap_entry_size(unsigned f)
{
    return 2 + !!(f & GS_SF_FLAGS) + 2 * !!(f & GS_SF_X)
           + 2 * !!(f & GS_SF_Y) + 2 * !!(f & GS_SF_VX)
           + 2 * !!(f & GS_SF_VY) + 2 * !!(f & GS_SF_AIM)
           + !!(f & GS_SF_HEALTH) + 2 * !!(f & GS_SF_SCORE);
}


static uint8_t *
gs_proto_snap_put(uint8_t *p, uint8_t slot, unsigned f,
    const gs_snap_player_t *sp)
{
    *p++ = slot;
    *p++ = (uint8_t) f;
    if (f & GS_SF_FLAGS) {
        *p++ = sp->flags;
    }
    if (f & GS_SF_X) {
        p = gs_put16(p, (uint16_t) sp->x);
    }
    if (f & GS_SF_Y) {
        p = gs_put16(p, (uint16_t) sp->y);
    }
    if (f & GS_SF_VX) {
        p = gs_put16(p, (uint16_t) sp->vx);
    }
    if (f & GS_SF_VY) {
        p = gs_put16(p, (uint16_t) sp->vy);
    }
    if (f & GS_SF_AIM) {
        p = gs_put16(p, sp->aim);
    }
    if (f & GS_SF_HEALTH) {
        *p++ = sp->health;
    }
    if (f & GS_SF_SCORE) {
        p = gs_put16(p, (uint16_t) sp->score);
    }
    return p;
}


/* the players of a snapshot by slot: NULL where absent */
static void
gs_proto_snap_index(const gs_snapshot_t *s, const gs_snap_player_t **by)
{
    unsigned  i;

    memset(by, 0, GS_MAX_PLAYERS * sizeof(*by));
    for (i = 0; s != NULL && i < s->count; i++) {
        if (s->players[i].slot < GS_MAX_PLAYERS) {
            by[s->players[i].slot] = &s->players[i];
        }
    }
}


size_t
gs_proto_snapshot_encode(uint8_t *buf, size_t cap, const gs_snapshot_t *s,
    const gs_snapshot_t *base)
{
    const gs_snap_player_t  *now[GS_MAX_PLAYERS], *was[GS_MAX_PLAYERS];
    uint8_t                 *p = buf, *count;
    unsigned                 slot, f, k = 0;

    if (s->count > GS_MAX_PLAYERS || cap < GS_SNAP_HDR
        || (base == NULL) != (s->base_tick == 0)
        || (base != NULL && base->tick != s->base_tick))
    {
        return 0;
    }
    gs_proto_snap_index(s, now);
    gs_proto_snap_index(base, was);

    *p++ = GS_MSG_SNAPSHOT;
    p = gs_put32(p, s->tick);
    p = gs_put32(p, s->base_tick);
    p = gs_put32(p, s->ack_seq);
    p = gs_put16(p, s->time_left_ds);
    count = p++;

    for (slot = 0; slot < GS_MAX_PLAYERS; slot++) {
        if (now[slot] == NULL && was[slot] == NULL) {
            continue;
        }
        f = now[slot] == NULL ? 0 : gs_proto_snap_diff(now[slot], was[slot]);
        if (f == 0 && now[slot] != NULL) {
            continue;               /* unchanged */
        }
        if ((size_t) (p - buf) + gs_proto_snap_entry_size(f) > cap) {
            return 0;
        }
        p = gs_proto_snap_put(p, (uint8_t) slot, f, now[slot]);
        k++;
    }
    *count = (uint8_t) k;

    return (size_t) (p - buf);
}


/* the fields f names, in bit order, into sp; the caller checked the size */
static const uint8_t *
gs_proto_snap_get(const uint8_t *q, unsigned f, gs_snap_player_t *sp)
{
    if (f & GS_SF_FLAGS) {
        sp->flags = *q++;
    }
    if (f & GS_SF_X) {
        sp->x = (int16_t) gs_get16(q);
        q += 2;
    }
    if (f & GS_SF_Y) {
        sp->y = (int16_t) gs_get16(q);
        q += 2;
    }
    if (f & GS_SF_VX) {
        sp->vx = (int16_t) gs_get16(q);
        q += 2;
    }
    if (f & GS_SF_VY) {
        sp->vy = (int16_t) gs_get16(q);
        q += 2;
    }
    if (f & GS_SF_AIM) {
        sp->aim = gs_get16(q);
        q += 2;
    }
    if (f & GS_SF_HEALTH) {
        sp->health = *q++;
    }
    if (f & GS_SF_SCORE) {
        sp->score = (int16_t) gs_get16(q);
        q += 2;
    }
    return q;
}


int
gs_proto_snapshot_base(const uint8_t *p, size_t n, uint32_t *base_tick)
{
    if (n < GS_SNAP_HDR || p[0] != GS_MSG_SNAPSHOT) {
        return -1;
    }
    *base_tick = gs_get32(p + 5);
    return 0;
}


int
gs_proto_snapshot_decode(const uint8_t *p, size_t n,
    const gs_snapshot_t *base, gs_snapshot_t *s)
{
    gs_snap_player_t         have[GS_MAX_PLAYERS];
    const gs_snap_player_t  *was[GS_MAX_PLAYERS];
    uint8_t                  present[GS_MAX_PLAYERS], seen[GS_MAX_PLAYERS];
    const uint8_t           *q, *end = p + n;
    unsigned                 i, k, slot, f;
    gs_snap_player_t        *sp;

    if (n < GS_SNAP_HDR || p[0] != GS_MSG_SNAPSHOT) {
        return -1;
    }
    s->tick = gs_get32(p + 1);
    s->base_tick = gs_get32(p + 5);
    s->ack_seq = gs_get32(p + 9);
    s->time_left_ds = gs_get16(p + 13);
    k = p[15];

    if (k > GS_MAX_PLAYERS || (s->base_tick == 0) != (base == NULL)
        || (base != NULL && base->tick != s->base_tick))
    {
        return -1;
    }

    /* start from the base, apply the entries */
    gs_proto_snap_index(base, was);
    memset(seen, 0, sizeof(seen));
    memset(have, 0, sizeof(have));
    for (slot = 0; slot < GS_MAX_PLAYERS; slot++) {
        present[slot] = was[slot] != NULL;
        if (present[slot]) {
            have[slot] = *was[slot];
        }
    }

    q = p + GS_SNAP_HDR;
    for (i = 0; i < k; i++) {
        if (end - q < 2) {
            return -1;
        }
        slot = q[0];
        f = q[1];
        /* a slot once per message; a player new to the base comes whole;
         * only a player of the base can leave */
        if (slot >= GS_MAX_PLAYERS || seen[slot]
            || (!present[slot] && f != GS_SF_ALL)
            || (size_t) (end - q) < gs_proto_snap_entry_size(f))
        {
            return -1;
        }
        seen[slot] = 1;
        q += 2;
        if (f == 0) {
            present[slot] = 0;
            continue;
        }
        present[slot] = 1;
        sp = &have[slot];
        sp->slot = (uint8_t) slot;
        q = gs_proto_snap_get(q, f, sp);
    }
    if (q != end) {
        return -1;
    }

    s->count = 0;
    for (slot = 0; slot < GS_MAX_PLAYERS; slot++) {
        if (present[slot]) {
            s->players[s->count++] = have[slot];
        }
    }
    return 0;
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
