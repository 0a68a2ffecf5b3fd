/*
 * bot.h: game-bot, a test client that plays the game over ENet.
 *
 * One process runs N bots on one ENet client host (one peer each).  Each
 * bot joins with a ticket, sends inputs at its own rate, and records what
 * a player would notice: time to connect, snapshots, round trip time,
 * events, and whether the server let it in at all.
 */
#ifndef BOT_H
#define BOT_H

#include <stdint.h>

#include <enet/enet.h>

#include "protocol.h"

#define BOT_TICKET_MAX  GS_TICKET_MAX

typedef enum { BOT_CHEAT_NONE, BOT_CHEAT_SPEED, BOT_CHEAT_FIRERATE,
               BOT_CHEAT_BOUNDS } bot_cheat_e;

typedef struct {
    char            player[65];
    char            ticket[BOT_TICKET_MAX + 1];     /* "" : send no hello */
    bot_cheat_e     cheat;
    int             fuzz;               /* malformed packets to send */

    ENetPeer       *peer;
    int             connected, welcomed, done, ended, slot;
    uint32_t        refused;            /* ENet disconnect data */
    int64_t         start_us, connect_us;
    gs_welcome_t    rules;
    uint32_t        seq, last_ack;
    uint64_t        snapshots, events, deaths, kills, inputs, fuzz_sent;
    uint64_t        rtt_sum, rtt_n;
    float           x, y, dir, max_speed;
    int64_t         last_fire_ms, turn_ms;
    int             end_reason, winner;
    const char     *failure;
} bot_t;

typedef struct {
    const char     *host;
    int             port, input_hz, duration_s, connect_timeout_s;
    int             nbots;
    bot_t          *bots;
    unsigned        seed;
} bot_run_t;

/* bot_play.c: run every bot to the end of the match or the duration */
int bot_play(bot_run_t *run);

/* bot_ticket.c: mint an ES256 join ticket (dev/test only) */
typedef struct bot_signer_s bot_signer_t;
bot_signer_t *bot_signer_load(const char *spec, char *err, size_t errlen);
int bot_signer_mint(bot_signer_t *s, const char *sub, const char *match_id,
    const char *server_id, long ttl_s, char *out, size_t cap);
void bot_signer_free(bot_signer_t *s);

/* bot_http.c: the player's path through the backend (later issues) */
int bot_http_matchmake(const char *base_url, bot_t *bot, char *host,
    size_t hostlen, int *port, char *err, size_t errlen);

#endif /* BOT_H */
