
/*
 * The realtime module's own declarations, shared by its files:
 *
 *   ngx_game_rt_module.c     directives, configuration, worker start/stop
 *   ngx_game_rt_handshake.c  GET /ws: the upgrade, then the connection is
 *                            taken from the HTTP request
 *   ngx_game_rt_conn.c       one WebSocket: wslay bound to the event loop,
 *                            timers, the outbound cap, closing
 *   ngx_game_rt_proto.c      game.v1 messages: auth, ping, the services'
 *                            types, errors
 *   ngx_game_rt_fanout.c     this worker's players, its one subscription,
 *                            delivery
 *   ngx_game_rt_admin.c      POST /admin/notify
 *   game_rt_util.c           pure helpers (unit tested)
 */

#ifndef _NGX_GAME_RT_H_INCLUDED_
#define _NGX_GAME_RT_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <wslay/wslay.h>

#include "ngx_game_core.h"
#include "game_util.h"
#include "game_rt_util.h"


#define NGX_GAME_RT_PROTOCOL        "game.v1"

/* close codes of RFC 6455 we send, besides wslay's own */
#define NGX_GAME_RT_NORMAL          1000
#define NGX_GAME_RT_GOING_AWAY      1001
#define NGX_GAME_RT_PROTOCOL_ERROR  1002
#define NGX_GAME_RT_UNSUPPORTED     1003
#define NGX_GAME_RT_POLICY          1008
#define NGX_GAME_RT_INTERNAL        1011
#define NGX_GAME_RT_TRY_LATER       1013


typedef struct ngx_game_rt_worker_s  ngx_game_rt_worker_t;
typedef struct ngx_game_rt_player_s  ngx_game_rt_player_t;
typedef struct ngx_game_rt_conn_s    ngx_game_rt_conn_t;


typedef struct {
    ngx_game_redis_pool_t      *redis;
    ngx_array_t                *origins;        /* ngx_str_t; NULL: none */
    ngx_array_t                 admins;         /* ngx_game_admin_t */

    ngx_msec_t                  auth_timeout;
    ngx_msec_t                  ping_interval;
    ngx_msec_t                  pong_timeout;
    ngx_msec_t                  close_timeout;
    size_t                      max_message;
    size_t                      send_queue;
    ngx_uint_t                  rate;           /* messages a second */
    ngx_uint_t                  burst;

    ngx_game_access_verifier_t *access;         /* the auth module's check */
    ngx_game_push_hooks_t      *hooks;          /* services' resume, types */

    ngx_game_rt_worker_t       *worker;         /* from init_process */

    /* metrics (ngx_game_rt_metrics.c) */
    ngx_game_metric_t          *m_sockets;
    ngx_game_metric_t          *m_players;
    ngx_game_metric_t          *m_closes;
} ngx_game_rt_main_conf_t;


/*
 * One WebSocket, in its connection's memory (c->pool).  The wslay context
 * (about 8.8 KB: its read and write buffers) exists only while the
 * connection has something in hand: a frame or a fragmented message half
 * read, a message half sent.  An idle connection has none, so that tens
 * of thousands of idle players cost their sockets and little more.
 */

struct ngx_game_rt_conn_s {
    ngx_connection_t           *connection;
    ngx_game_rt_main_conf_t    *rmcf;
    wslay_event_context_ptr     wslay;          /* NULL while idle */

    ngx_game_rt_player_t       *player;         /* once authenticated */
    ngx_queue_t                 peers;          /* the player's sockets */
    ngx_queue_t                 all;            /* this worker's sockets */
    ngx_game_access_t           access;

    ngx_msec_t                  send_timeout;   /* the location's */

    /* how far wslay has read: the bytes handed to it, and the bytes of
     * the whole frames it has finished; equal between frames */
    uint64_t                    fed;
    uint64_t                    framed;
    uint64_t                    frame;          /* the frame being read */
    size_t                      budget;         /* to read this turn */

    /* bytes the client sent with its handshake, beyond it */
    u_char                     *preread;
    size_t                      npreread;

    /* a frame header held back to go out with its payload: one send()
     * per small message, not two */
    u_char                      head[14];
    size_t                      nhead;

    game_rt_bucket_t            bucket;
    ngx_uint_t                  refused;        /* messages over the rate */

    uint16_t                    close_code;     /* ours, once closing */

    unsigned                    authenticated:1;
    unsigned                    frame_fin:1;
    unsigned                    frame_data:1;
    unsigned                    in_frame:1;
    unsigned                    fragmented:1;
    unsigned                    recv_failed:1;
    unsigned                    send_failed:1;
    unsigned                    blocked:1;      /* waiting to write */
    unsigned                    pinged:1;       /* waiting for a pong */
    unsigned                    closing:1;      /* our close is queued */
    unsigned                    aborted:1;
    unsigned                    more:1;         /* read on, next turn */
    unsigned                    bad_close:1;    /* a 1-byte close frame */
};


/* ngx_game_rt_handshake.c */
ngx_int_t ngx_game_rt_websocket_handler(ngx_http_request_t *r);

/* ngx_game_rt_conn.c */
void ngx_game_rt_conn_start(ngx_game_rt_conn_t *ws);
ngx_int_t ngx_game_rt_send_text(ngx_game_rt_conn_t *ws, u_char *data,
    size_t len);
ngx_int_t ngx_game_rt_send_json(ngx_game_rt_conn_t *ws, json_t *msg);
void ngx_game_rt_close(ngx_game_rt_conn_t *ws, uint16_t code,
    const char *reason);
void ngx_game_rt_flush(ngx_game_rt_conn_t *ws);
void ngx_game_rt_arm(ngx_game_rt_conn_t *ws);
void ngx_game_rt_conn_cleanup(ngx_game_rt_conn_t *ws);

/* ngx_game_rt_proto.c */
void ngx_game_rt_message(ngx_game_rt_conn_t *ws, const u_char *data,
    size_t len);
ngx_int_t ngx_game_rt_authenticated(ngx_game_rt_conn_t *ws);
void ngx_game_rt_send_error(ngx_game_rt_conn_t *ws, const char *code,
    const char *message, json_t *about);

/* ngx_game_rt_fanout.c */
ngx_int_t ngx_game_rt_worker_start(ngx_cycle_t *cycle,
    ngx_game_rt_main_conf_t *rmcf);
void ngx_game_rt_worker_stop(ngx_game_rt_main_conf_t *rmcf);
void ngx_game_rt_track(ngx_game_rt_conn_t *ws);
ngx_int_t ngx_game_rt_attach(ngx_game_rt_conn_t *ws);
void ngx_game_rt_detach(ngx_game_rt_conn_t *ws);

/* ngx_game_rt_admin.c */
ngx_int_t ngx_game_rt_notify_handler(ngx_http_request_t *r);


extern ngx_module_t  ngx_game_rt_module;


ngx_int_t ngx_game_rt_metrics_init(ngx_conf_t *cf,
    ngx_game_rt_main_conf_t *rmcf);
void ngx_game_rt_metrics_closed(ngx_game_rt_main_conf_t *rmcf,
    uint16_t code);


#endif /* _NGX_GAME_RT_H_INCLUDED_ */
