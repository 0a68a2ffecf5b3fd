/*
 * protocol.h: the game's wire protocol, shared by game-server and game-bot.
 *
 * Every message is one ENet packet that starts with a type byte; integers
 * are little-endian, fixed width, with no padding.  Decoders check the
 * length and every field before anything is trusted: a message that fails
 * is dropped and counted by the receiver.  Full description, with sizes
 * and rules: gameserver/PROTOCOL.md.
 *
 * Encoders and decoders are transport-free (gameserver/server/gs_proto.c)
 * so that unit tests and fuzzers can drive them without a socket.
 */
#ifndef GS_PROTOCOL_H
#define GS_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

/*
 * 2: INPUT carries the client's input time, the newest snapshot it holds
 * and the one it shows (input-time checks, lag compensation, deltas).
 */
#define GS_PROTO_VERSION      2

/* channels: 0 reliable (hello, welcome, events), 1 unreliable sequenced */
#define GS_CHAN_RELIABLE      0
#define GS_CHAN_STATE         1
#define GS_CHAN_COUNT         2

#define GS_TICKET_MAX         2048      /* bytes of JWT in a hello */
#define GS_MAX_PLAYERS        64        /* one snapshot fits one MTU */
#define GS_PACKET_MAX         4096      /* ENet maximumPacketSize */

/* fixed point: positions and velocities in 1/64 world units */
#define GS_FIX                64.0f
/* move vector components in 1/1000; a valid vector has length <= 1 */
#define GS_MOVE_ONE           1000

typedef enum {
    GS_MSG_HELLO = 1,           /* c->s, reliable: version + join ticket */
    GS_MSG_INPUT = 2,           /* c->s, unreliable sequenced */
    GS_MSG_WELCOME = 16,        /* s->c, reliable: your slot, the rules */
    GS_MSG_EVENT = 17,          /* s->c, reliable */
    GS_MSG_SNAPSHOT = 18        /* s->c, unreliable sequenced */
} gs_msg_type_e;

typedef enum {
    GS_EV_JOIN = 1, GS_EV_LEAVE, GS_EV_DEATH, GS_EV_MATCH_START,
    GS_EV_MATCH_END
} gs_event_kind_e;

/* why a match ended (GS_EV_MATCH_END, results) */
typedef enum {
    GS_END_TIME = 1, GS_END_SCORE, GS_END_EMPTY, GS_END_ABORT, GS_END_DRAIN
} gs_end_reason_e;

/* the data of the ENet disconnect a server sends to a refused client */
typedef enum {
    GS_REFUSE_NONE = 0, GS_REFUSE_NO_TICKET = 1, GS_REFUSE_BAD_TICKET,
    GS_REFUSE_EXPIRED, GS_REFUSE_WRONG_SERVER, GS_REFUSE_WRONG_MATCH,
    GS_REFUSE_REPLAYED, GS_REFUSE_FULL, GS_REFUSE_VERSION,
    GS_REFUSE_MATCH_OVER, GS_REFUSE_SHUTDOWN,
    GS_REFUSE_BUSY,             /* this address asked for too many verifies */
    GS_REFUSE_REPLACED          /* the player came back on a new connection */
} gs_refuse_e;

#define GS_BTN_FIRE           0x01

typedef struct {
    uint8_t        version;
    uint16_t       ticket_len;
    const char    *ticket;      /* points into the packet, not terminated */
} gs_hello_t;

typedef struct {
    uint32_t       seq;         /* strictly increasing per client */
    int16_t        move_x, move_y;      /* 1/1000 */
    uint16_t       aim;         /* angle, 65536 = full turn */
    uint8_t        buttons;
    int16_t        claim_x, claim_y;    /* client's predicted position, 1/64 */
    uint32_t       time_ms;     /* client's monotonic clock at this input */
    uint32_t       ack_tick;    /* newest snapshot the client decoded */
    uint32_t       view_tick;   /* snapshot the client showed when it aimed */
} gs_input_t;

typedef struct {
    uint8_t        version, slot, max_players;
    uint16_t       tick_hz, snapshot_hz, fire_interval_ms;
    uint16_t       arena_w, arena_h;        /* world units */
    uint16_t       match_seconds, score_limit, speed;  /* speed: units/s */
} gs_welcome_t;

typedef struct {
    uint8_t        kind;
    uint32_t       tick;
    uint8_t        a, b;        /* JOIN/LEAVE: a=slot; DEATH: a=victim,
                                   b=killer; MATCH_END: a=winner (255 none),
                                   b=reason */
} gs_event_t;

typedef struct {
    uint8_t        slot, flags;         /* GS_SNAP_ALIVE */
    int16_t        x, y, vx, vy;        /* 1/64 */
    uint16_t       aim;
    uint8_t        health;
    int16_t        score;
} gs_snap_player_t;

#define GS_SNAP_ALIVE         0x01

/*
 * A snapshot is the full state a client should hold for its tick; on the
 * wire it is written as the difference from base_tick, a snapshot the
 * client acknowledged (0: none, every player written whole).  players[]
 * is in slot order.
 */
typedef struct {
    uint32_t          tick, base_tick;
    uint32_t          ack_seq;          /* last input seq applied for you */
    uint16_t          time_left_ds;     /* deciseconds */
    uint8_t           count;
    gs_snap_player_t  players[GS_MAX_PLAYERS];
} gs_snapshot_t;

/* which fields of a player a snapshot entry carries; an entry with none
 * says the player left the snapshot */
#define GS_SF_FLAGS           0x01
#define GS_SF_X               0x02
#define GS_SF_Y               0x04
#define GS_SF_VX              0x08
#define GS_SF_VY              0x10
#define GS_SF_AIM             0x20
#define GS_SF_HEALTH          0x40
#define GS_SF_SCORE           0x80
#define GS_SF_ALL             0xff

/* sizes on the wire */
#define GS_HELLO_HDR          4
#define GS_INPUT_SIZE         28
#define GS_WELCOME_SIZE       20
#define GS_EVENT_SIZE         8
#define GS_SNAP_HDR           16
#define GS_SNAP_PLAYER        16        /* slot, fields, all of them */
#define GS_SNAP_MAX           (GS_SNAP_HDR + GS_MAX_PLAYERS * GS_SNAP_PLAYER)
#define GS_SNAP_MTU           1200      /* below ENet's 1392 with headers */

/*
 * Encoders write into buf (cap bytes) and return the length, or 0 when the
 * message does not fit or a field is out of range.  Decoders return 0 and
 * fill the struct, or -1 for a malformed message (wrong type, wrong length,
 * field out of range).
 */
size_t gs_proto_hello_encode(uint8_t *buf, size_t cap, const char *ticket,
    size_t len);
int gs_proto_hello_decode(const uint8_t *p, size_t n, gs_hello_t *h);
size_t gs_proto_input_encode(uint8_t *buf, size_t cap, const gs_input_t *in);
int gs_proto_input_decode(const uint8_t *p, size_t n, gs_input_t *in);
size_t gs_proto_welcome_encode(uint8_t *buf, size_t cap,
    const gs_welcome_t *w);
int gs_proto_welcome_decode(const uint8_t *p, size_t n, gs_welcome_t *w);
size_t gs_proto_event_encode(uint8_t *buf, size_t cap, const gs_event_t *e);
int gs_proto_event_decode(const uint8_t *p, size_t n, gs_event_t *e);
/*
 * base: the snapshot s->base_tick names (NULL with base_tick 0: whole).
 * The decoder needs the same base the encoder used: peek at base_tick
 * with gs_proto_snapshot_base(), find it, and decode; a base that is not
 * the one named, or missing, fails (-1) like a malformed message.
 */
size_t gs_proto_snapshot_encode(uint8_t *buf, size_t cap,
    const gs_snapshot_t *s, const gs_snapshot_t *base);
int gs_proto_snapshot_base(const uint8_t *p, size_t n, uint32_t *base_tick);
int gs_proto_snapshot_decode(const uint8_t *p, size_t n,
    const gs_snapshot_t *base, gs_snapshot_t *s);
const char *gs_proto_refuse_name(uint32_t reason);
const char *gs_proto_end_name(int reason);

#endif /* GS_PROTOCOL_H */
