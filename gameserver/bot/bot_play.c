/*
 * bot_play.c: the ENet side of game-bot.
 *
 * An honest bot wanders (turning every second or so), aims at random and
 * fires no sooner than the fire interval the welcome announced, with a
 * margin: it should never earn a violation.  A cheating bot breaks exactly
 * one rule, so a test can tell which check caught it.  --fuzz sends
 * malformed packets (reliably, so that each one reaches the server's
 * parser and can be counted there) after the welcome.
 */

#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bot.h"


#define BOT_FIRE_MARGIN_MS  30
#define BOT_LINGER_MS       500     /* after MATCH_END, for the disconnect */


static int64_t
bot_now_us(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}


/* every packet of a bot goes through the simulated network (bot_net.c) */
static void
bot_send(bot_t *b, int chan, const uint8_t *data, size_t len, int reliable)
{
    bot_net_send(b, chan, data, len, reliable);
}


static void
bot_hello(bot_t *b)
{
    uint8_t  buf[GS_HELLO_HDR + GS_TICKET_MAX];
    size_t   n;

    if (b->ticket[0] == '\0') {
        return;     /* --no-ticket: the server must refuse us */
    }
    n = gs_proto_hello_encode(buf, sizeof(buf), b->ticket, strlen(b->ticket));
    if (n > 0) {
        bot_send(b, GS_CHAN_RELIABLE, buf, n, 1);
    }
}


/* malformed on purpose: each kind fails a different check of the server */
static void
bot_fuzz_one(bot_t *b, unsigned k)
{
    uint8_t     buf[64];
    gs_input_t  in;
    size_t      n;

    memset(&in, 0, sizeof(in));
    in.seq = b->seq + 1;
    n = gs_proto_input_encode(buf, sizeof(buf), &in);

    switch (k % 7) {
    case 0:     /* truncated input */
        bot_send(b, GS_CHAN_STATE, buf, n - 3, 1);
        break;
    case 1:     /* input with a trailing byte */
        buf[n] = 0xaa;
        bot_send(b, GS_CHAN_STATE, buf, n + 1, 1);
        break;
    case 2:     /* unknown message type */
        buf[0] = 0x7f;
        bot_send(b, GS_CHAN_STATE, buf, n, 1);
        break;
    case 3:     /* an input on the reliable channel */
        bot_send(b, GS_CHAN_RELIABLE, buf, n, 1);
        break;
    case 4:     /* sequence 0 */
        buf[1] = buf[2] = buf[3] = buf[4] = 0;
        bot_send(b, GS_CHAN_STATE, buf, n, 1);
        break;
    case 5:     /* undefined button bits */
        buf[11] = 0xf0;
        bot_send(b, GS_CHAN_STATE, buf, n, 1);
        break;
    default:    /* a single byte */
        bot_send(b, GS_CHAN_STATE, buf, 1, 1);
        break;
    }
    b->fuzz_sent++;
}


static void
bot_input(bot_t *b, int64_t now_ms)
{
    gs_input_t  in;
    uint8_t     buf[GS_INPUT_SIZE];
    float       speed = 1000.0f;

    if (now_ms >= b->turn_ms) {
        b->dir = (float) (rand() % 6283) / 1000.0f;
        b->turn_ms = now_ms + 500 + rand() % 1000;
    }
    /* where the bot thinks it is: its prediction (bot_predict.c) */
    if (b->predict.was_alive) {
        b->x = b->predict.x;
        b->y = b->predict.y;
    }
    /* steer back towards the middle when close to a wall */
    if (b->x < 5 || b->y < 5 || b->x > b->rules.arena_w - 5
        || b->y > b->rules.arena_h - 5)
    {
        b->dir = atan2f(b->rules.arena_h / 2.0f - b->y,
                        b->rules.arena_w / 2.0f - b->x);
    }

    memset(&in, 0, sizeof(in));
    in.seq = ++b->seq;
    in.time_ms = (uint32_t) now_ms;
    /* the bot shows the newest snapshot it has: that is what it aims at */
    in.ack_tick = b->snap_tick;
    in.view_tick = b->snap_tick;
    if (b->cheat == BOT_CHEAT_SPEED) {
        speed = 5000.0f;        /* five times the allowed length */
    }
    in.move_x = (int16_t) (cosf(b->dir) * speed);
    in.move_y = (int16_t) (sinf(b->dir) * speed);
    in.aim = (uint16_t) (rand() & 0xffff);
    in.claim_x = (int16_t) (b->x * GS_FIX);
    in.claim_y = (int16_t) (b->y * GS_FIX);
    if (b->cheat == BOT_CHEAT_BOUNDS) {
        in.claim_x = (int16_t) (-50 * GS_FIX);
        in.claim_y = (int16_t) ((b->rules.arena_h + 50) * GS_FIX);
    }

    if (b->cheat == BOT_CHEAT_FIRERATE) {
        in.buttons = GS_BTN_FIRE;       /* every input, whatever the rules */
    } else if (now_ms - b->last_fire_ms
               >= b->rules.fire_interval_ms + BOT_FIRE_MARGIN_MS
               && rand() % 3 == 0)
    {
        in.buttons = GS_BTN_FIRE;
        b->last_fire_ms = now_ms;
    }

    gs_proto_input_encode(buf, sizeof(buf), &in);
    bot_send(b, GS_CHAN_STATE, buf, sizeof(buf), 0);
    b->inputs++;
    bot_predict_input(b, &in);
}


/*
 * A snapshot is a delta against one the bot decoded before (or whole):
 * decoded snapshots are kept by tick, as the bases of later ones.  One
 * whose base the bot no longer has (or never got) cannot be read; the
 * bot's ack then stays on its newest, and the server bases on that.
 */
static int
bot_snapshot(bot_t *b, const uint8_t *data, size_t len, gs_snapshot_t *s)
{
    const gs_snapshot_t  *base = NULL;
    uint32_t              bt;

    if (b->held == NULL) {
        b->held = calloc(BOT_SNAP_HELD, sizeof(gs_snapshot_t));
        if (b->held == NULL) {
            return -1;
        }
    }
    if (gs_proto_snapshot_base(data, len, &bt) != 0) {
        return -1;
    }
    if (bt != 0) {
        base = &b->held[bt % BOT_SNAP_HELD];
        if (base->tick != bt) {
            b->undecodable++;
            return -1;
        }
    }
    if (gs_proto_snapshot_decode(data, len, base, s) != 0) {
        b->undecodable++;
        return -1;
    }
    if (s->tick != 0) {
        b->held[s->tick % BOT_SNAP_HELD] = *s;
    }
    return 0;
}


static void
bot_receive(bot_t *b, const uint8_t *data, size_t len, int64_t now_us)
{
    static gs_snapshot_t  s;
    gs_welcome_t          w;
    gs_event_t            e;
    unsigned              i;
    float                 v;

    if (len == 0) {
        return;
    }

    switch (data[0]) {

    case GS_MSG_WELCOME:
        if (gs_proto_welcome_decode(data, len, &w) == 0 && !b->welcomed) {
            b->welcomed = 1;
            b->rules = w;
            b->slot = w.slot;
            b->connect_us = now_us - b->start_us;
            b->x = w.arena_w / 2.0f;
            b->y = w.arena_h / 2.0f;
            bot_progress(b, b->index, "connected, slot %d, %d Hz, match of "
                         "%d s", b->slot, w.tick_hz, w.match_seconds);
        }
        break;

    case GS_MSG_SNAPSHOT:
        if (!b->welcomed || bot_snapshot(b, data, len, &s) != 0) {
            break;
        }
        b->snapshots++;
        b->last_ack = s.ack_seq;
        if (s.tick > b->snap_tick) {
            b->snap_tick = s.tick;
        }
        for (i = 0; i < s.count; i++) {
            if (s.players[i].slot != b->slot) {
                continue;
            }
            v = sqrtf((float) s.players[i].vx * s.players[i].vx
                      + (float) s.players[i].vy * s.players[i].vy) / GS_FIX;
            if (v > b->max_speed) {
                b->max_speed = v;
            }
        }
        bot_predict_snapshot(b, &s);
        break;

    case GS_MSG_EVENT:
        if (gs_proto_event_decode(data, len, &e) != 0) {
            break;
        }
        b->events++;
        if (e.kind == GS_EV_DEATH) {
            b->deaths += e.a == b->slot;
            b->kills += e.b == b->slot;
            if (e.a == b->slot || e.b == b->slot) {
                bot_progress(b, b->index, "score %llu kills, %llu deaths",
                             (unsigned long long) b->kills,
                             (unsigned long long) b->deaths);
            }
        } else if (e.kind == GS_EV_MATCH_START) {
            bot_progress(b, b->index, "match started");
        } else if (e.kind == GS_EV_MATCH_END) {
            b->ended = 1;
            b->winner = e.a;
            b->end_reason = e.b;
            bot_progress(b, b->index, "match over (%s): %s",
                         gs_proto_end_name(e.b), e.a == b->slot ? "won"
                         : e.a == 255 ? "nobody won" : "lost");
        }
        break;
    }
}


static void
bot_finish(bot_t *b, const char *failure)
{
    if (!b->done) {
        b->done = 1;
        if (failure != NULL || b->failure != NULL) {
            bot_progress(b, b->index, "failed: %s%s%s",
                         failure ? failure : b->failure,
                         b->refused ? ", refused " : "",
                         b->refused ? gs_proto_refuse_name(b->refused) : "");
        }
        if (b->peer != NULL) {
            b->rtt_sum += b->peer->roundTripTime;
            b->rtt_n++;
        }
        if (failure != NULL && b->failure == NULL) {
            b->failure = failure;
        }
    }
}


/* the HTTP path gives each bot its own server; the others share the run's */
static int
bot_address(const bot_run_t *run, const bot_t *b, ENetAddress *addr)
{
    if (enet_address_set_host(addr, b->port ? b->host : run->host) != 0) {
        return -1;
    }
    addr->port = (enet_uint16) (b->port ? b->port : run->port);
    return 0;
}


int
bot_play(bot_run_t *run)
{
    ENetHost    *host;
    ENetAddress  addr, local;
    ENetEvent    ev;
    bot_t       *b;
    int64_t      start, now, deadline, connect_deadline, next_input,
                 ended_at = 0;
    int          i, left, input_us;

    srand(run->seed);
    if (bot_net_init(run) != 0) {
        return -1;
    }
    if (run->bind != NULL) {
        if (enet_address_set_host_ip(&local, run->bind) != 0) {
            return -1;
        }
        local.port = 0;
    }
    host = enet_host_create(run->bind ? &local : NULL, (size_t) run->nbots,
                            GS_CHAN_COUNT, 0, 0);
    if (host == NULL) {
        return -1;
    }

    start = bot_now_us();
    for (i = 0; i < run->nbots; i++) {
        b = &run->bots[i];
        b->start_us = start;
        if (b->failure != NULL) {
            b->done = 1;        /* out before the game: matchmaking */
            bot_progress(b, b->index, "failed: %s", b->failure);
            continue;
        }
        if (bot_address(run, b, &addr) != 0) {
            bot_finish(b, "cannot resolve the server");
            continue;
        }
        b->peer = enet_host_connect(host, &addr, GS_CHAN_COUNT, 0);
        if (b->peer == NULL) {
            bot_finish(b, "enet_host_connect");
            continue;
        }
        b->peer->data = b;
    }

    deadline = start + (int64_t) run->duration_s * 1000000;
    connect_deadline = start + (int64_t) run->connect_timeout_s * 1000000;
    input_us = 1000000 / run->input_hz;
    next_input = start;

    for ( ;; ) {
        now = bot_now_us();
        left = 0;
        for (i = 0; i < run->nbots; i++) {
            left += !run->bots[i].done;
        }
        if (left == 0 || now >= deadline
            || (ended_at && now - ended_at > BOT_LINGER_MS * 1000))
        {
            break;
        }

        if (enet_host_service(host, &ev, 2) > 0) {
            do {
                b = ev.peer->data;
                if (b == NULL) {
                    if (ev.type == ENET_EVENT_TYPE_RECEIVE) {
                        enet_packet_destroy(ev.packet);
                    }
                    continue;
                }
                now = bot_now_us();
                switch (ev.type) {
                case ENET_EVENT_TYPE_CONNECT:
                    b->connected = 1;
                    bot_hello(b);
                    break;
                case ENET_EVENT_TYPE_RECEIVE:
                    bot_net_received(b, ev.packet, ev.channelID, now,
                                     bot_receive);
                    break;
                case ENET_EVENT_TYPE_DISCONNECT:
                    b->refused = ev.data;
                    b->peer = NULL;
                    bot_net_forget(b);
                    bot_finish(b, b->ended ? NULL : !b->connected
                               ? "could not connect" : !b->welcomed
                               ? "refused" : "disconnected");
                    break;
                default:
                    break;
                }
            } while (enet_host_check_events(host, &ev) > 0);
        }

        now = bot_now_us();
        if (bot_net_run(now, bot_receive) > 0) {
            enet_host_flush(host);
        }
        for (i = 0; i < run->nbots && ended_at == 0; i++) {
            if (run->bots[i].ended) {
                ended_at = now;
            }
        }
        for (i = 0; i < run->nbots; i++) {
            b = &run->bots[i];
            if (!b->done && !b->welcomed && now >= connect_deadline) {
                bot_finish(b, b->connected ? "no welcome" : "connect timeout");
                if (b->peer != NULL) {
                    enet_peer_reset(b->peer);
                    b->peer = NULL;
                }
            }
        }

        if (now >= next_input) {
            next_input += input_us;
            if (now - next_input > 5 * input_us) {
                next_input = now + input_us;
            }
            for (i = 0; i < run->nbots; i++) {
                b = &run->bots[i];
                if (b->done || !b->welcomed || b->ended || b->peer == NULL) {
                    continue;
                }
                bot_input(b, now / 1000);
                if (b->fuzz_sent < (uint64_t) b->fuzz) {
                    bot_fuzz_one(b, (unsigned) b->fuzz_sent);
                }
                b->rtt_sum += b->peer->roundTripTime;
                b->rtt_n++;
            }
            enet_host_flush(host);
        }
    }

    for (i = 0; i < run->nbots; i++) {
        b = &run->bots[i];
        if (!b->done) {
            /* the run's time is up: fine if it got in and saw the game */
            bot_finish(b, b->welcomed && b->snapshots > 0 ? NULL
                          : b->welcomed ? "no snapshots" : "no welcome");
        }
        if (b->peer != NULL) {
            enet_peer_disconnect_now(b->peer, 0);
            b->peer = NULL;
        }
    }
    enet_host_flush(host);
    bot_net_free();
    enet_host_destroy(host);
    for (i = 0; i < run->nbots; i++) {
        free(run->bots[i].held);
        run->bots[i].held = NULL;
    }
    return 0;
}
