/*
 * bot.h: game-bot, a test client that plays the game over ENet.
 *
 * One process runs N bots on one ENet client host (one peer each).  Each
 * bot joins with a ticket, sends inputs at its own rate, and records what
 * a player would notice: time to match (HTTP path), time to connect,
 * snapshots, round trip time, events, and whether the server let it in.
 */
#ifndef BOT_H
#define BOT_H

#include <stdint.h>

#include <enet/enet.h>

#include "protocol.h"

#define BOT_TICKET_MAX  GS_TICKET_MAX
#define BOT_HOST_MAX    255
#define BOT_ID_MAX      64

typedef enum { BOT_CHEAT_NONE, BOT_CHEAT_SPEED, BOT_CHEAT_FIRERATE,
               BOT_CHEAT_BOUNDS } bot_cheat_e;

#define BOT_SNAP_HELD   32      /* decoded snapshots kept: delta bases */
#define BOT_PENDING     64      /* inputs sent and not yet acknowledged */

/* what the bot predicted for one of its inputs, to replay it */
typedef struct {
    uint32_t        seq;
    float           mx, my, dt;
} bot_pending_t;

/*
 * Client-side prediction: the bot moves itself at once with each input it
 * sends, exactly as the server will (bot_predict.c), and when a snapshot
 * acknowledges input n it takes the server's position after n, replays
 * its newer inputs on top, and measures how far its prediction was off.
 */
typedef struct {
    float           x, y;               /* predicted position */
    int             started, was_alive;
    uint32_t        last_time;          /* time_ms of the previous input */
    bot_pending_t   pending[BOT_PENDING];
    int             phead, plen;
    uint64_t        checks, corrections;
    double          err_sum, err_max;
} bot_predict_t;

typedef struct {
    char            player[BOT_ID_MAX + 1];
    char            ticket[BOT_TICKET_MAX + 1];     /* "" : send no hello */

    /* where this bot connects when it differs from the run's server: the
     * HTTP path, where N bots may land in different matches (port 0: the
     * run's host and port) */
    char            host[BOT_HOST_MAX + 1];
    int             port;

    /* HTTP path: what matchmaking said */
    char            match_id[BOT_ID_MAX + 1];
    char            error[48];          /* the backend's error code */
    char            failure_buf[256];   /* b->failure when it is built */
    int64_t         match_us;           /* join accepted -> ticket; -1 */
    bot_cheat_e     cheat;
    int             fuzz;               /* malformed packets to send */

    ENetPeer       *peer;
    int             connected, welcomed, done, ended, slot;
    uint32_t        refused;            /* ENet disconnect data */
    int64_t         start_us, connect_us;
    gs_welcome_t    rules;
    uint32_t        seq, last_ack;
    uint32_t        snap_tick;          /* newest snapshot decoded */
    gs_snapshot_t  *held;               /* BOT_SNAP_HELD, by tick */
    uint64_t        undecodable;        /* deltas whose base we lacked */
    bot_predict_t   predict;
    uint64_t        snapshots, events, deaths, kills, inputs, fuzz_sent;
    uint64_t        rtt_sum, rtt_n;
    float           x, y, dir, max_speed;
    int64_t         last_fire_ms, turn_ms;
    int             end_reason, winner;
    int             index;              /* in the run, for progress lines */
    const char     *failure;
} bot_t;

typedef struct {
    const char     *host;
    const char     *bind;               /* local address, NULL: any */
    int             port, input_hz, duration_s, connect_timeout_s;
    int             nbots;
    bot_t          *bots;
    unsigned        seed;
    int             loss_pct, latency_ms;   /* simulated network */
} bot_run_t;

/* bot_play.c: run every bot to the end of the match or the duration */
int bot_play(bot_run_t *run);

/* bot_predict.c */
void bot_predict_input(bot_t *b, const gs_input_t *in);
void bot_predict_snapshot(bot_t *b, const gs_snapshot_t *s);

/*
 * bot_net.c: --loss and --latency, simulated in the bot's own send and
 * receive path.  Every packet waits latency/2 each way; unreliable ones
 * (inputs out, snapshots in) are also dropped with loss_pct %.  Reliable
 * ones are only delayed: ENet would resend them, which this does not model.
 */
typedef void (*bot_net_deliver_pt)(bot_t *b, const uint8_t *data,
    size_t len, int64_t now_us);
int bot_net_init(const bot_run_t *run);
void bot_net_send(bot_t *b, int chan, const uint8_t *data, size_t len,
    int reliable);
void bot_net_received(bot_t *b, ENetPacket *pkt, int chan, int64_t now_us,
    bot_net_deliver_pt deliver);
/* sends and deliveries that are due; returns how many */
int bot_net_run(int64_t now_us, bot_net_deliver_pt deliver);
void bot_net_forget(bot_t *b);       /* the bot's peer is gone */
void bot_net_free(void);
void bot_send_now(ENetPeer *peer, int chan, const uint8_t *data, size_t len,
    int reliable);

/* bot_ticket.c: mint an ES256 join ticket (dev/test only) */
typedef struct bot_signer_s bot_signer_t;
bot_signer_t *bot_signer_load(const char *spec, char *err, size_t errlen);
int bot_signer_mint(bot_signer_t *s, const char *sub, const char *match_id,
    const char *server_id, long ttl_s, char *out, size_t cap);
void bot_signer_free(bot_signer_t *s);

/* bot_progress.c: one line on stderr per step of a bot (stdout keeps the
 * JSON summary); only the first few bots of a run are told */
void bot_progress_quiet(int quiet);
void bot_progress(const bot_t *b, int index, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* bot_http.c: the player's path through the backend */
typedef struct {
    const char     *api;                /* "http://127.0.0.1:8080" */
    const char     *mode, *region;
    int             match_timeout_s;
} bot_http_conf_t;

/* sign every bot in as a fresh guest, join, and wait until each one has a
 * server and a connection ticket (b->host, b->port, b->ticket) or has
 * failed (b->failure, b->error); -1 only if libcurl cannot start */
int bot_http_matchmake(const bot_http_conf_t *conf, bot_t *bots, int n);

#endif /* BOT_H */
