/*
 * bot_net.c: a bad network between the bots and the server, simulated on
 * the bots' side (--loss PCT, --latency MS), so that a test needs no root
 * and no tc netem.
 *
 * One FIFO holds what is on its way in either direction: with a single
 * constant delay, arrival order is queue order.  A packet sent is copied
 * (ENet would otherwise send it at the next flush); a packet received is
 * held as ENet gave it and destroyed once delivered.  A bot whose peer is
 * gone has its entries dropped, never sent on a stale peer.
 */

#define _POSIX_C_SOURCE 200809L

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bot.h"


#define BOT_NET_QUEUE  65536

typedef struct {
    bot_t         *bot;
    int64_t        due_us;
    int            out, chan, reliable;
    uint8_t       *data;        /* out: a copy */
    size_t         len;
    ENetPacket    *pkt;         /* in: ENet's */
} bot_net_item_t;


static bot_net_item_t  *bot_net_q;
static size_t           bot_net_head, bot_net_len;
static int              bot_net_loss, bot_net_delay_us;
static unsigned         bot_net_rng = 12345;


int
bot_net_init(const bot_run_t *run)
{
    bot_net_loss = run->loss_pct;
    bot_net_delay_us = run->latency_ms * 1000 / 2;
    bot_net_rng = run->seed ? run->seed : 12345;
    if (bot_net_delay_us > 0) {
        bot_net_q = calloc(BOT_NET_QUEUE, sizeof(bot_net_item_t));
        if (bot_net_q == NULL) {
            return -1;
        }
    }
    return 0;
}


/* its own generator: the bots' behaviour (rand()) stays what the seed says */
static int
bot_net_lost(void)
{
    bot_net_rng = bot_net_rng * 1103515245u + 12345u;
    return bot_net_loss > 0
           && (int) ((bot_net_rng >> 16) % 100) < bot_net_loss;
}


void
bot_send_now(ENetPeer *peer, int chan, const uint8_t *data, size_t len,
    int reliable)
{
    ENetPacket  *pkt;

    pkt = enet_packet_create(data, len, reliable ? ENET_PACKET_FLAG_RELIABLE
                                                 : 0);
    if (pkt != NULL && enet_peer_send(peer, (enet_uint8) chan, pkt) != 0) {
        enet_packet_destroy(pkt);
    }
}


static bot_net_item_t *
bot_net_push(bot_t *b, int64_t now_us)
{
    bot_net_item_t  *it;

    if (bot_net_len == BOT_NET_QUEUE) {
        return NULL;                    /* a full link drops */
    }
    it = &bot_net_q[(bot_net_head + bot_net_len++) % BOT_NET_QUEUE];
    memset(it, 0, sizeof(*it));
    it->bot = b;
    it->due_us = now_us + bot_net_delay_us;
    return it;
}


static int64_t
bot_net_now_us(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}


void
bot_net_send(bot_t *b, int chan, const uint8_t *data, size_t len,
    int reliable)
{
    bot_net_item_t  *it;

    if (!reliable && bot_net_lost()) {
        return;
    }
    if (bot_net_delay_us == 0) {
        bot_send_now(b->peer, chan, data, len, reliable);
        return;
    }
    it = bot_net_push(b, bot_net_now_us());
    if (it == NULL || (it->data = malloc(len)) == NULL) {
        if (it != NULL) {
            bot_net_len--;
        }
        return;
    }
    memcpy(it->data, data, len);
    it->out = 1;
    it->chan = chan;
    it->reliable = reliable;
    it->len = len;
}


void
bot_net_received(bot_t *b, ENetPacket *pkt, int chan, int64_t now_us,
    bot_net_deliver_pt deliver)
{
    bot_net_item_t  *it;

    if (chan == GS_CHAN_STATE && bot_net_lost()) {
        enet_packet_destroy(pkt);
        return;
    }
    if (bot_net_delay_us == 0 || (it = bot_net_push(b, now_us)) == NULL) {
        if (bot_net_delay_us == 0) {
            deliver(b, pkt->data, pkt->dataLength, now_us);
        }
        enet_packet_destroy(pkt);
        return;
    }
    it->pkt = pkt;
}


static void
bot_net_drop(bot_net_item_t *it)
{
    free(it->data);
    if (it->pkt != NULL) {
        enet_packet_destroy(it->pkt);
    }
    it->data = NULL;
    it->pkt = NULL;
}


int
bot_net_run(int64_t now_us, bot_net_deliver_pt deliver)
{
    bot_net_item_t  *it;
    int              n = 0;

    while (bot_net_len > 0) {
        it = &bot_net_q[bot_net_head];
        if (it->due_us > now_us) {
            break;
        }
        bot_net_head = (bot_net_head + 1) % BOT_NET_QUEUE;
        bot_net_len--;
        if (it->bot != NULL && it->bot->peer != NULL) {
            if (it->out) {
                bot_send_now(it->bot->peer, it->chan, it->data, it->len,
                             it->reliable);
            } else {
                deliver(it->bot, it->pkt->data, it->pkt->dataLength, now_us);
            }
            n++;
        }
        bot_net_drop(it);
    }
    return n;
}


void
bot_net_forget(bot_t *b)
{
    size_t  i;

    for (i = 0; i < bot_net_len; i++) {
        if (bot_net_q[(bot_net_head + i) % BOT_NET_QUEUE].bot == b) {
            bot_net_q[(bot_net_head + i) % BOT_NET_QUEUE].bot = NULL;
        }
    }
}


void
bot_net_free(void)
{
    while (bot_net_len > 0) {
        bot_net_drop(&bot_net_q[bot_net_head]);
        bot_net_head = (bot_net_head + 1) % BOT_NET_QUEUE;
        bot_net_len--;
    }
    free(bot_net_q);
    bot_net_q = NULL;
}
