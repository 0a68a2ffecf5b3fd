
/*
 * Fan-out: this worker's players and the one subscription that feeds
 * them.
 *
 * A service anywhere publishes on a player's channel (game:push:<id>, see
 * ngx_game_push() in the core); each worker subscribes, on a single Redis
 * connection of its own, to the channels of the players whose sockets it
 * holds, and to game:push:all.  Redis hands a message to the workers that
 * hold the player and to no other, and the worker writes it to each of
 * the player's sockets as it came: it is already a game.v1 message.
 *
 * The players live in a red-black tree by id, each with its sockets.  A
 * player's channel is subscribed when their first socket here is
 * authenticated and unsubscribed when their last one closes; changes made
 * during one turn of the event loop go to Redis together, in one
 * SUBSCRIBE and one UNSUBSCRIBE, from a posted event.  Being subscribed is
 * being online (PUBSUB NUMSUB, the core's presence).
 *
 * What a player must know at once (the matchmaker's status with a fresh
 * connection ticket) is asked of the services (the core's resume hooks)
 * when the subscription of their channel is confirmed, or at once when it
 * is already: their answer is pushed on that channel, and no push can
 * overtake the subscription it needs.  When Redis comes back after a
 * restart, every channel is subscribed again and every player resumed,
 * since what was pushed meanwhile was lost.
 */

#include "ngx_game_rt.h"


#define NGX_GAME_RT_CHANNEL_LEN   (sizeof(NGX_GAME_PUSH_PREFIX) - 1       \
                                   + GAME_UUID_LEN)
#define NGX_GAME_RT_BATCH         1000    /* channels per command */


struct ngx_game_rt_player_s {
    ngx_str_node_t              sn;         /* sn.str: the player's id */
    ngx_queue_t                 conns;      /* ngx_game_rt_conn_t.peers */
    ngx_queue_t                 changed;    /* in the worker's, or not */
    u_char                      channel[NGX_GAME_RT_CHANNEL_LEN];
    unsigned                    subscribed:1;   /* confirmed */
    unsigned                    asked:1;        /* SUBSCRIBE sent */
    unsigned                    resume:1;       /* at the confirmation */
    unsigned                    in_changed:1;
};


struct ngx_game_rt_worker_s {
    ngx_rbtree_t                tree;
    ngx_rbtree_node_t           sentinel;
    ngx_queue_t                 all;        /* ngx_game_rt_conn_t.all */
    ngx_queue_t                 changed;    /* to (un)subscribe */
    ngx_event_t                 flush;
    ngx_uint_t                  nplayers;

    ngx_game_redis_sub_t       *sub;
    ngx_game_rt_main_conf_t    *rmcf;
    ngx_log_t                  *log;
};


static ngx_game_rt_player_t *ngx_game_rt_find(ngx_game_rt_worker_t *w,
    u_char *id);
static void ngx_game_rt_changed(ngx_game_rt_worker_t *w,
    ngx_game_rt_player_t *p);
static void ngx_game_rt_flush_subscriptions(ngx_event_t *ev);
static void ngx_game_rt_sub_ready(ngx_game_redis_sub_t *sub, void *data);
static void ngx_game_rt_sub_lost(ngx_game_redis_sub_t *sub, void *data);
static void ngx_game_rt_sub_subscribed(ngx_game_redis_sub_t *sub,
    void *data, ngx_str_t *channel);
static void ngx_game_rt_sub_message(ngx_game_redis_sub_t *sub, void *data,
    ngx_str_t *channel, ngx_str_t *payload);
static void ngx_game_rt_resume(ngx_game_rt_worker_t *w,
    ngx_game_rt_player_t *p);
static void ngx_game_rt_deliver(ngx_game_rt_conn_t *ws, ngx_str_t *payload);


ngx_int_t
ngx_game_rt_worker_start(ngx_cycle_t *cycle, ngx_game_rt_main_conf_t *rmcf)
{
    ngx_game_rt_worker_t           *w;
    ngx_game_redis_sub_handlers_t   h;

    w = ngx_pcalloc(cycle->pool, sizeof(ngx_game_rt_worker_t));
    if (w == NULL) {
        return NGX_ERROR;
    }

    ngx_rbtree_init(&w->tree, &w->sentinel, ngx_str_rbtree_insert_value);
    ngx_queue_init(&w->all);
    ngx_queue_init(&w->changed);

    w->rmcf = rmcf;
    w->log = cycle->log;
    w->flush.handler = ngx_game_rt_flush_subscriptions;
    w->flush.data = w;
    w->flush.log = cycle->log;

    rmcf->worker = w;

    h.ready = ngx_game_rt_sub_ready;
    h.lost = ngx_game_rt_sub_lost;
    h.subscribed = ngx_game_rt_sub_subscribed;
    h.message = ngx_game_rt_sub_message;
    h.data = w;

    w->sub = ngx_game_redis_sub_start(cycle, rmcf->redis, &h);
    if (w->sub == NULL) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * The worker ends.  Sockets still open (a reload whose clients did not
 * answer, a worker_shutdown_timeout) are closed here, so that none is
 * left behind; their players' memory goes with them.
 */

void
ngx_game_rt_worker_stop(ngx_game_rt_main_conf_t *rmcf)
{
    ngx_queue_t           *q;
    ngx_game_rt_conn_t    *ws;
    ngx_game_rt_worker_t  *w = rmcf->worker;

    while (!ngx_queue_empty(&w->all)) {
        q = ngx_queue_head(&w->all);
        ws = ngx_queue_data(q, ngx_game_rt_conn_t, all);

        /* the cleanup takes it out of the queue */
        ngx_http_close_connection(ws->connection);
    }

    if (w->flush.posted) {
        ngx_delete_posted_event(&w->flush);
    }

    ngx_game_redis_sub_stop(w->sub);
    rmcf->worker = NULL;
}


/* a socket of this worker, authenticated or not */
void
ngx_game_rt_track(ngx_game_rt_conn_t *ws)
{
    ngx_queue_insert_tail(&ws->rmcf->worker->all, &ws->all);
    ngx_queue_init(&ws->peers);
    ngx_game_metric_inc(ws->rmcf->m_sockets, 0, 0, 1);
}


/* the socket is a player's: its player's channel, and what they missed */
ngx_int_t
ngx_game_rt_attach(ngx_game_rt_conn_t *ws)
{
    ngx_game_rt_player_t  *p;
    ngx_game_rt_worker_t  *w = ws->rmcf->worker;

    if (ws->player) {
        return NGX_OK;
    }

    p = ngx_game_rt_find(w, ws->access.player_id);

    if (p == NULL) {
        p = ngx_alloc(sizeof(ngx_game_rt_player_t), w->log);
        if (p == NULL) {
            return NGX_ERROR;
        }

        ngx_memzero(p, sizeof(ngx_game_rt_player_t));
        ngx_queue_init(&p->conns);

        ngx_memcpy(ngx_cpymem(p->channel, NGX_GAME_PUSH_PREFIX,
                              sizeof(NGX_GAME_PUSH_PREFIX) - 1),
                   ws->access.player_id, GAME_UUID_LEN);

        p->sn.str.data = p->channel + sizeof(NGX_GAME_PUSH_PREFIX) - 1;
        p->sn.str.len = GAME_UUID_LEN;
        p->sn.node.key = ngx_crc32_short(p->sn.str.data, GAME_UUID_LEN);

        ngx_rbtree_insert(&w->tree, &p->sn.node);
        w->nplayers++;
        ngx_game_metric_inc(w->rmcf->m_players, 0, 0, 1);
    }

    ngx_queue_insert_tail(&p->conns, &ws->peers);
    ws->player = p;

    if (p->subscribed) {
        ngx_game_rt_resume(w, p);

    } else {
        /* told once the subscription is confirmed */
        p->resume = 1;
    }

    ngx_game_rt_changed(w, p);

    return NGX_OK;
}


/* the socket is no longer the player's (closing, or closed) */
void
ngx_game_rt_detach(ngx_game_rt_conn_t *ws)
{
    ngx_game_rt_player_t  *p = ws->player;

    if (p == NULL) {
        return;
    }

    ngx_queue_remove(&ws->peers);
    ngx_queue_init(&ws->peers);
    ws->player = NULL;

    if (ngx_queue_empty(&p->conns)) {
        /* the player's last socket here: unsubscribed, then forgotten */
        ngx_game_rt_changed(ws->rmcf->worker, p);
    }
}


/* the socket's memory goes */
void
ngx_game_rt_conn_cleanup(ngx_game_rt_conn_t *ws)
{
    ngx_game_rt_detach(ws);

    if (ws->all.next) {
        ngx_queue_remove(&ws->all);
        ws->all.next = NULL;
        ngx_game_metric_inc(ws->rmcf->m_sockets, 0, 0, -1);
    }
}


static ngx_game_rt_player_t *
ngx_game_rt_find(ngx_game_rt_worker_t *w, u_char *id)
{
    ngx_str_t  s;

    s.data = id;
    s.len = GAME_UUID_LEN;

    return (ngx_game_rt_player_t *)
           ngx_str_rbtree_lookup(&w->tree, &s, ngx_crc32_short(id,
                                                               GAME_UUID_LEN));
}


/* (un)subscribe at the end of this turn of the event loop */
static void
ngx_game_rt_changed(ngx_game_rt_worker_t *w, ngx_game_rt_player_t *p)
{
    if (!p->in_changed) {
        ngx_queue_insert_tail(&w->changed, &p->changed);
        p->in_changed = 1;
    }

    if (!w->flush.posted) {
        ngx_post_event(&w->flush, &ngx_posted_events);
    }
}


/*
 * The players whose sockets came or went: a player with sockets and no
 * subscription is subscribed; one without sockets is unsubscribed (if it
 * was) and forgotten.  Channels go in batches, one command each.
 */

static void
ngx_game_rt_flush_subscriptions(ngx_event_t *ev)
{
    u_char                 names[NGX_GAME_RT_BATCH][NGX_GAME_RT_CHANNEL_LEN];
    ngx_str_t              on[NGX_GAME_RT_BATCH], off[NGX_GAME_RT_BATCH];
    ngx_uint_t             non, noff;
    ngx_queue_t           *q;
    ngx_game_rt_player_t  *p;
    ngx_game_rt_worker_t  *w = ev->data;

    non = 0;
    noff = 0;

    while (!ngx_queue_empty(&w->changed)) {
        q = ngx_queue_head(&w->changed);
        p = ngx_queue_data(q, ngx_game_rt_player_t, changed);

        ngx_queue_remove(q);
        p->in_changed = 0;

        if (!ngx_queue_empty(&p->conns)) {

            if (!p->asked && ngx_game_redis_sub_ready_now(w->sub)) {
                p->asked = 1;
                on[non].data = p->channel;
                on[non].len = NGX_GAME_RT_CHANNEL_LEN;
                non++;
            }

        } else {

            if (p->asked) {
                /* the name outlives the player until it is sent */
                ngx_memcpy(names[noff], p->channel, NGX_GAME_RT_CHANNEL_LEN);
                off[noff].data = names[noff];
                off[noff].len = NGX_GAME_RT_CHANNEL_LEN;
                noff++;
            }

            ngx_rbtree_delete(&w->tree, &p->sn.node);
            w->nplayers--;
            ngx_game_metric_inc(w->rmcf->m_players, 0, 0, -1);
            ngx_free(p);
        }

        if (non == NGX_GAME_RT_BATCH) {
            (void) ngx_game_redis_sub_send(w->sub, 1, on, non);
            non = 0;
        }

        if (noff == NGX_GAME_RT_BATCH) {
            (void) ngx_game_redis_sub_send(w->sub, 0, off, noff);
            noff = 0;
        }
    }

    /* a subscription that is down forgets them all anyway, and "ready"
     * asks for those still wanted */
    (void) ngx_game_redis_sub_send(w->sub, 1, on, non);
    (void) ngx_game_redis_sub_send(w->sub, 0, off, noff);
}


/* the subscription is up, the first time or again */
static void
ngx_game_rt_sub_ready(ngx_game_redis_sub_t *sub, void *data)
{
    ngx_str_t              all;
    ngx_rbtree_node_t     *node, *root, *sentinel;
    ngx_game_rt_player_t  *p;
    ngx_game_rt_worker_t  *w = data;

    ngx_str_set(&all, NGX_GAME_PUSH_ALL);

    /* first, and never given up: a hiredis context whose last channel
     * goes leaves subscribe mode, which the players' churn must not do */
    (void) ngx_game_redis_sub_send(sub, 1, &all, 1);

    root = w->tree.root;
    sentinel = w->tree.sentinel;

    if (root == sentinel) {
        return;
    }

    for (node = ngx_rbtree_min(root, sentinel);
         node;
         node = ngx_rbtree_next(&w->tree, node))
    {
        p = (ngx_game_rt_player_t *) node;

        /* what was pushed while the subscription was away is lost: the
         * players hear the current state once they are subscribed */
        p->asked = 0;
        p->resume = 1;
        ngx_game_rt_changed(w, p);
    }
}


static void
ngx_game_rt_sub_lost(ngx_game_redis_sub_t *sub, void *data)
{
    ngx_rbtree_node_t     *node, *root, *sentinel;
    ngx_game_rt_player_t  *p;
    ngx_game_rt_worker_t  *w = data;

    root = w->tree.root;
    sentinel = w->tree.sentinel;

    if (root == sentinel) {
        return;
    }

    for (node = ngx_rbtree_min(root, sentinel);
         node;
         node = ngx_rbtree_next(&w->tree, node))
    {
        p = (ngx_game_rt_player_t *) node;
        p->asked = 0;
        p->subscribed = 0;
    }
}


static void
ngx_game_rt_sub_subscribed(ngx_game_redis_sub_t *sub, void *data,
    ngx_str_t *channel)
{
    ngx_game_rt_player_t  *p;
    ngx_game_rt_worker_t  *w = data;

    if (channel->len != NGX_GAME_RT_CHANNEL_LEN) {
        return;
    }

    p = ngx_game_rt_find(w, channel->data + sizeof(NGX_GAME_PUSH_PREFIX) - 1);

    if (p == NULL || !p->asked) {
        return;
    }

    p->subscribed = 1;

    if (p->resume && !ngx_queue_empty(&p->conns)) {
        ngx_game_rt_resume(w, p);
    }
}


static void
ngx_game_rt_resume(ngx_game_rt_worker_t *w, ngx_game_rt_player_t *p)
{
    p->resume = 0;
    ngx_game_push_resume(w->rmcf->hooks, &p->sn.str);
}


/* a message for a player of this worker, or for everyone */
static void
ngx_game_rt_sub_message(ngx_game_redis_sub_t *sub, void *data,
    ngx_str_t *channel, ngx_str_t *payload)
{
    ngx_queue_t           *q, *next;
    ngx_game_rt_conn_t    *ws;
    ngx_game_rt_player_t  *p;
    ngx_game_rt_worker_t  *w = data;

    if (channel->len == sizeof(NGX_GAME_PUSH_ALL) - 1
        && ngx_strncmp(channel->data, NGX_GAME_PUSH_ALL, channel->len) == 0)
    {
        for (q = ngx_queue_head(&w->all);
             q != ngx_queue_sentinel(&w->all);
             q = next)
        {
            next = ngx_queue_next(q);
            ws = ngx_queue_data(q, ngx_game_rt_conn_t, all);

            if (ws->player) {
                ngx_game_rt_deliver(ws, payload);
            }
        }

        return;
    }

    if (channel->len != NGX_GAME_RT_CHANNEL_LEN) {
        return;
    }

    p = ngx_game_rt_find(w, channel->data + sizeof(NGX_GAME_PUSH_PREFIX) - 1);
    if (p == NULL) {
        return;
    }

    for (q = ngx_queue_head(&p->conns);
         q != ngx_queue_sentinel(&p->conns);
         q = next)
    {
        next = ngx_queue_next(q);
        ws = ngx_queue_data(q, ngx_game_rt_conn_t, peers);

        ngx_game_rt_deliver(ws, payload);
    }
}


/*
 * Queued, not sent: the socket's write event sends it after this turn.
 * A socket over its send queue is closed (1013) from there, never here,
 * so the lists walked above stay whole.
 */

static void
ngx_game_rt_deliver(ngx_game_rt_conn_t *ws, ngx_str_t *payload)
{
    (void) ngx_game_rt_send_text(ws, payload->data, payload->len);
}
