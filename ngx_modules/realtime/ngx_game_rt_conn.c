
/*
 * One WebSocket: libwslay does the framing (RFC 6455: masking required
 * from clients, fragments and the control frames between them, UTF-8 of
 * text, close codes, the largest message), this file binds it to the
 * worker's event loop.
 *
 * Memory.  A wslay context holds 8.8 KB of buffers, more than everything
 * else of a connection.  It is made when there is something to read or
 * send and freed when the connection is between frames again: nothing
 * half read (the bytes handed to wslay are exactly the bytes of the frames
 * it finished, and no fragmented message is open), nothing waiting to be
 * sent.  An idle socket keeps its few hundred bytes in c->pool.
 *
 * Sending.  Messages are queued (wslay copies them) and sent from the
 * write event, never from inside the code that queued them, so that a
 * delivery to thousands of sockets never closes one of them under its
 * caller's feet.  What waits for one socket is capped (game_rt_send_queue):
 * a client that does not read is closed with 1013, and one that takes no
 * byte for send_timeout is dropped.
 *
 * Timers.  One timer on the read event: the auth deadline, the ping
 * interval, the pong deadline, or the close deadline.  All but the last
 * are idle work (cancelable): a leaving worker does not wait for them.
 * The close deadline and send_timeout guard work in flight and keep a
 * leaving worker until they fire.
 *
 * Closing.  Our close frame is sent, then the socket waits for the
 * client's answer (any byte, or the end) for game_rt_close_timeout and
 * closes: after our close frame only the client's matters, so wslay is not
 * needed for it.  A close the client started is answered and the socket
 * closed at once; so is a connection failed for a protocol error.  A
 * leaving worker (reload) closes every socket with 1001 first.
 */

#include "ngx_game_rt.h"


#define NGX_GAME_RT_READ_BUDGET     (64 * 1024)   /* per event, then yield */
#define NGX_GAME_RT_COALESCE        4096          /* header + payload */


static ssize_t ngx_game_rt_recv(wslay_event_context_ptr ctx, uint8_t *buf,
    size_t len, int flags, void *user_data);
static ssize_t ngx_game_rt_send(wslay_event_context_ptr ctx,
    const uint8_t *data, size_t len, int flags, void *user_data);
static void ngx_game_rt_frame_start(wslay_event_context_ptr ctx,
    const struct wslay_event_on_frame_recv_start_arg *arg, void *user_data);
static void ngx_game_rt_frame_end(wslay_event_context_ptr ctx,
    void *user_data);
static void ngx_game_rt_msg(wslay_event_context_ptr ctx,
    const struct wslay_event_on_msg_recv_arg *arg, void *user_data);

static void ngx_game_rt_read_handler(ngx_event_t *rev);
static void ngx_game_rt_write_handler(ngx_event_t *wev);
static void ngx_game_rt_timer(ngx_game_rt_conn_t *ws);
static void ngx_game_rt_read(ngx_game_rt_conn_t *ws);
static void ngx_game_rt_drain(ngx_game_rt_conn_t *ws);
static void ngx_game_rt_fail(ngx_game_rt_conn_t *ws, uint16_t code);
static ngx_int_t ngx_game_rt_context(ngx_game_rt_conn_t *ws);
static void ngx_game_rt_release(ngx_game_rt_conn_t *ws);
static void ngx_game_rt_end(ngx_game_rt_conn_t *ws, const char *why);
static void ngx_game_rt_cleanup(void *data);


static struct wslay_event_callbacks  ngx_game_rt_callbacks = {
    ngx_game_rt_recv,
    ngx_game_rt_send,
    NULL,                               /* a server masks nothing */
    ngx_game_rt_frame_start,
    NULL,
    ngx_game_rt_frame_end,
    ngx_game_rt_msg
};


/* the connection is ours (ngx_game_rt_takeover()) */

void
ngx_game_rt_conn_start(ngx_game_rt_conn_t *ws)
{
    ngx_connection_t    *c = ws->connection;
    ngx_pool_cleanup_t  *cln;

    cln = ngx_pool_cleanup_add(c->pool, 0);
    if (cln == NULL) {
        ngx_http_close_connection(c);
        return;
    }

    cln->handler = ngx_game_rt_cleanup;
    cln->data = ws;

    c->read->handler = ngx_game_rt_read_handler;
    c->write->handler = ngx_game_rt_write_handler;

    /* a leaving worker calls the read handler of "idle" connections with
     * c->close set (ngx_close_idle_connections()): the 1001 goes then */
    c->idle = 1;
    ngx_reusable_connection(c, 0);

    ngx_game_rt_track(ws);

    if (ngx_exiting || ngx_terminate || ngx_quit) {
        ngx_game_rt_close(ws, NGX_GAME_RT_GOING_AWAY, "server going away");
        ngx_game_rt_flush(ws);
        return;
    }

    if (ws->authenticated && ngx_game_rt_authenticated(ws) != NGX_OK) {
        ngx_game_rt_close(ws, NGX_GAME_RT_INTERNAL, "server error");
    }

    ngx_game_rt_arm(ws);

    if (ws->npreread || c->read->ready) {
        ngx_game_rt_read(ws);
        return;
    }

    ngx_game_rt_flush(ws);
}


static void
ngx_game_rt_read_handler(ngx_event_t *rev)
{
    ngx_connection_t    *c = rev->data;
    ngx_game_rt_conn_t  *ws = c->data;

    if (c->close) {
        c->close = 0;

        if (c->error) {
            /* worker_shutdown_timeout: no more waiting */
            ngx_game_rt_end(ws, "the worker is leaving");
            return;
        }

        ngx_game_rt_close(ws, NGX_GAME_RT_GOING_AWAY, "server going away");
        ngx_game_rt_flush(ws);
        return;
    }

    if (rev->timedout) {
        rev->timedout = 0;
        ngx_game_rt_timer(ws);
        return;
    }

    ngx_game_rt_read(ws);
}


static void
ngx_game_rt_write_handler(ngx_event_t *wev)
{
    ngx_connection_t    *c = wev->data;
    ngx_game_rt_conn_t  *ws = c->data;

    if (wev->timedout) {
        ngx_log_error(NGX_LOG_INFO, c->log, NGX_ETIMEDOUT,
                      "game rt: the client took nothing for send_timeout");
        c->timedout = 1;
        ngx_game_rt_end(ws, NULL);
        return;
    }

    ngx_game_rt_flush(ws);
}


/* the read event's timer: whichever deadline ngx_game_rt_arm() set */
static void
ngx_game_rt_timer(ngx_game_rt_conn_t *ws)
{
    ngx_connection_t         *c = ws->connection;
    struct wslay_event_msg    ping;
    ngx_game_rt_main_conf_t  *rmcf = ws->rmcf;

    if (ws->closing) {
        /* the client never answered our close */
        ngx_game_rt_end(ws, NULL);
        return;
    }

    if (!ws->authenticated) {
        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "game rt: no \"auth\" message in time");
        ngx_game_rt_close(ws, NGX_GAME_RT_POLICY, "auth_timeout");
        ngx_game_rt_flush(ws);
        return;
    }

    if (ws->pinged) {
        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "game rt: no pong in time");
        ngx_game_rt_end(ws, NULL);
        return;
    }

    if (ngx_time() > ws->access.exp) {
        ngx_game_rt_close(ws, NGX_GAME_RT_POLICY, "token_expired");
        ngx_game_rt_flush(ws);
        return;
    }

    /* logged out, or the account erased, since the token was checked */
    if (ngx_game_access_revoked(rmcf->access, &ws->access)) {
        ngx_game_rt_close(ws, NGX_GAME_RT_POLICY, "token_revoked");
        ngx_game_rt_flush(ws);
        return;
    }

    if (ngx_game_rt_context(ws) != NGX_OK) {
        ngx_game_rt_end(ws, "out of memory");
        return;
    }

    ping.opcode = WSLAY_PING;
    ping.msg = NULL;
    ping.msg_length = 0;

    if (wslay_event_queue_msg(ws->wslay, &ping) == 0) {
        ws->pinged = 1;
    }

    ngx_game_rt_arm(ws);
    ngx_game_rt_flush(ws);
}


/*
 * The next deadline.  Before "auth" it is never moved on (a client does
 * not buy time by talking); afterwards every frame from the client starts
 * the ping interval again, which never runs past the token's end.
 */

void
ngx_game_rt_arm(ngx_game_rt_conn_t *ws)
{
    time_t                    left;
    ngx_msec_t                timer;
    ngx_event_t              *rev = ws->connection->read;
    ngx_game_rt_main_conf_t  *rmcf = ws->rmcf;

    if (ws->closing) {
        rev->cancelable = 0;
        ngx_add_timer(rev, rmcf->close_timeout);
        return;
    }

    rev->cancelable = 1;

    if (!ws->authenticated) {
        if (!rev->timer_set) {
            ngx_add_timer(rev, rmcf->auth_timeout);
        }
        return;
    }

    if (ws->pinged) {
        timer = rmcf->pong_timeout;

    } else {
        timer = rmcf->ping_interval;
        left = ws->access.exp - ngx_time();

        if (left < 0) {
            left = 0;
        }

        if ((ngx_msec_t) left * 1000 + 1000 < timer) {
            timer = (ngx_msec_t) left * 1000 + 1000;
        }
    }

    ngx_add_timer(rev, timer);
}


/* reading */

static void
ngx_game_rt_read(ngx_game_rt_conn_t *ws)
{
    int                rc;
    uint64_t           fed;
    ngx_connection_t  *c = ws->connection;

    if (ws->closing && ws->wslay == NULL) {
        ngx_game_rt_drain(ws);
        return;
    }

    if (ngx_game_rt_context(ws) != NGX_OK) {
        ngx_game_rt_end(ws, "out of memory");
        return;
    }

    fed = ws->fed;
    ws->budget = NGX_GAME_RT_READ_BUDGET;
    ws->more = 0;

    rc = wslay_event_recv(ws->wslay);

    if (rc != 0) {
        if (ws->recv_failed || rc == WSLAY_ERR_NOMEM) {
            ngx_game_rt_end(ws, NULL);
            return;
        }

        /*
         * wslay refused a frame's header (a control frame over 125 bytes
         * or fragmented, a length not in its shortest form) and queued a
         * close without a code; RFC 6455 wants 1002.
         */
        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "game rt: a malformed frame from the client");
        ngx_game_rt_fail(ws, NGX_GAME_RT_PROTOCOL_ERROR);

    } else if (ws->bad_close) {
        ws->bad_close = 0;
        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "game rt: a close frame of one byte from the client");
        ngx_game_rt_fail(ws, NGX_GAME_RT_PROTOCOL_ERROR);
    }

    /*
     * wslay answers pings by itself, past our cap: a client that sends
     * pings and reads nothing would grow the queue without end.  Once our
     * close is queued wslay queues no more pongs, so what waits stays
     * within the cap and one read's budget.
     */
    if (ws->wslay && !ws->closing && !ws->aborted
        && wslay_event_get_queued_msg_length(ws->wslay)
           > ws->rmcf->send_queue)
    {
        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "game rt: the client reads too slowly: more than %uz "
                      "bytes of pongs wait for it", ws->rmcf->send_queue);
        ngx_game_rt_close(ws, NGX_GAME_RT_TRY_LATER, "slow consumer");
    }

    if (ws->more) {
        /* the budget is spent and the socket has more: after the others */
        ngx_post_event(c->read, &ngx_posted_events);
    }

    if (ws->fed != fed && ws->authenticated && !ws->closing) {
        /* the client is alive: the next ping is an interval away */
        ws->pinged = 0;
        ngx_game_rt_arm(ws);
    }

    ngx_game_rt_flush(ws);
}


/* our close went out: any byte or the end from the client ends it */
static void
ngx_game_rt_drain(ngx_game_rt_conn_t *ws)
{
    u_char             buf[512];
    ssize_t            n;
    ngx_connection_t  *c = ws->connection;

    n = c->recv(c, buf, sizeof(buf));

    if (n == NGX_AGAIN) {
        if (ngx_handle_read_event(c->read, 0) != NGX_OK) {
            ngx_game_rt_end(ws, NULL);
        }
        return;
    }

    ngx_game_rt_end(ws, NULL);
}


static ssize_t
ngx_game_rt_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
    int flags, void *user_data)
{
    ssize_t              n;
    ngx_connection_t    *c;
    ngx_game_rt_conn_t  *ws = user_data;

    if (ws->npreread) {
        n = ngx_min(len, ws->npreread);
        ngx_memcpy(buf, ws->preread, n);
        ws->preread += n;
        ws->npreread -= n;
        ws->fed += n;
        return n;
    }

    if (ws->budget == 0) {
        ws->more = 1;
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }

    c = ws->connection;
    n = c->recv(c, buf, ngx_min(len, ws->budget));

    if (n == NGX_AGAIN) {
        if (ngx_handle_read_event(c->read, 0) != NGX_OK) {
            ws->recv_failed = 1;
            wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
            return -1;
        }

        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }

    if (n == NGX_ERROR || n == 0) {
        /* gone (the end, a reset): nobody to answer */
        ws->recv_failed = 1;
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }

    ws->fed += n;
    ws->budget -= n;

    return n;
}


static void
ngx_game_rt_frame_start(wslay_event_context_ptr ctx,
    const struct wslay_event_on_frame_recv_start_arg *arg, void *user_data)
{
    ngx_game_rt_conn_t  *ws = user_data;

    ws->in_frame = 1;
    ws->frame = game_rt_frame_size(arg->payload_length, 1);
    ws->frame_fin = arg->fin;
    ws->frame_data = !wslay_is_ctrl_frame(arg->opcode);

    /* a close frame's body is a code and a reason, or nothing; wslay
     * takes one byte for nothing and echoes a close without a code */
    if (arg->opcode == WSLAY_CONNECTION_CLOSE && arg->payload_length == 1) {
        ws->bad_close = 1;
    }
}


static void
ngx_game_rt_frame_end(wslay_event_context_ptr ctx, void *user_data)
{
    ngx_game_rt_conn_t  *ws = user_data;

    ws->in_frame = 0;
    ws->framed += ws->frame;

    if (ws->frame_data) {
        ws->fragmented = !ws->frame_fin;
    }
}


/* a whole message; nothing here may free the connection or the context */
static void
ngx_game_rt_msg(wslay_event_context_ptr ctx,
    const struct wslay_event_on_msg_recv_arg *arg, void *user_data)
{
    ngx_game_rt_conn_t  *ws = user_data;

    switch (arg->opcode) {

    case WSLAY_TEXT_FRAME:
        if (!ws->closing) {
            ngx_game_rt_message(ws, arg->msg, arg->msg_length);
        }
        break;

    case WSLAY_BINARY_FRAME:
        ngx_log_error(NGX_LOG_INFO, ws->connection->log, 0,
                      "game rt: a binary message from the client");
        ngx_game_rt_close(ws, NGX_GAME_RT_UNSUPPORTED,
                          "game.v1 messages are text");
        wslay_event_shutdown_read(ctx);
        break;

    case WSLAY_PONG:
        ws->pinged = 0;
        break;

    case WSLAY_CONNECTION_CLOSE:
        /* wslay answers with the client's code; nothing more is sent */
        ws->closing = 1;
        ngx_game_rt_detach(ws);
        break;

    default:
        break;
    }
}


/*
 * Fail the connection with "code" after wslay refused a frame at its
 * frame layer, where it queues a close without a code.  With nothing half
 * sent, a fresh context sends the right one; otherwise the socket is
 * blocked anyway, and it is simply closed.
 */

static void
ngx_game_rt_fail(ngx_game_rt_conn_t *ws, uint16_t code)
{
    if (ws->blocked || ws->nhead) {
        ws->aborted = 1;
        return;
    }

    wslay_event_context_free(ws->wslay);
    ws->wslay = NULL;
    ws->closing = 0;

    ngx_game_rt_close(ws, code, NULL);

    if (ws->wslay) {
        wslay_event_shutdown_read(ws->wslay);
    }
}


/* sending */

static ssize_t
ngx_game_rt_send(wslay_event_context_ptr ctx, const uint8_t *data,
    size_t len, int flags, void *user_data)
{
    u_char               buf[NGX_GAME_RT_COALESCE];
    ssize_t              n;
    ngx_connection_t    *c;
    ngx_game_rt_conn_t  *ws = user_data;

    c = ws->connection;

    if ((flags & WSLAY_MSG_MORE) && ws->nhead == 0
        && len <= sizeof(ws->head))
    {
        /* a frame's header, its payload next: they leave together */
        ngx_memcpy(ws->head, data, len);
        ws->nhead = len;
        return len;
    }

    if (ws->nhead) {

        if (ws->nhead + len <= sizeof(buf)) {
            ngx_memcpy(buf, ws->head, ws->nhead);
            ngx_memcpy(buf + ws->nhead, data, len);

            n = c->send(c, buf, ws->nhead + len);

            if (n > 0 && (size_t) n > ws->nhead) {
                n -= ws->nhead;
                ws->nhead = 0;
                return n;
            }

        } else {
            n = c->send(c, ws->head, ws->nhead);

            if (n > 0 && (size_t) n == ws->nhead) {
                ws->nhead = 0;
                n = c->send(c, (u_char *) data, len);
                goto sent;
            }
        }

        if (n > 0) {
            /* part of the header only: the rest goes first next time */
            ngx_memmove(ws->head, ws->head + n, ws->nhead - n);
            ws->nhead -= n;
            n = NGX_AGAIN;
        }

        goto sent;
    }

    n = c->send(c, (u_char *) data, len);

sent:

    if (n == NGX_AGAIN || n == 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }

    if (n == NGX_ERROR) {
        ws->send_failed = 1;
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }

    return n;
}


/*
 * Queue a text message.  NGX_DECLINED: not taken (the connection is
 * closing, or this would pass the send queue's cap: the client is slow,
 * and it is closed with 1013).  It goes out from the write event.
 */

ngx_int_t
ngx_game_rt_send_text(ngx_game_rt_conn_t *ws, u_char *data, size_t len)
{
    ngx_connection_t       *c = ws->connection;
    struct wslay_event_msg  msg;

    if (ws->closing || ws->aborted) {
        return NGX_DECLINED;
    }

    if (ngx_game_rt_context(ws) != NGX_OK) {
        return NGX_ERROR;
    }

    if (wslay_event_get_queued_msg_length(ws->wslay) + len
        > ws->rmcf->send_queue)
    {
        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "game rt: the client reads too slowly: more than %uz "
                      "bytes wait for it", ws->rmcf->send_queue);
        ngx_game_rt_close(ws, NGX_GAME_RT_TRY_LATER, "slow consumer");
        len = 0;

    } else {
        msg.opcode = WSLAY_TEXT_FRAME;
        msg.msg = data;
        msg.msg_length = len;

        if (wslay_event_queue_msg(ws->wslay, &msg) != 0) {
            return NGX_ERROR;
        }
    }

    if (!ws->blocked && !c->write->posted) {
        ngx_post_event(c->write, &ngx_posted_events);
    }

    return len ? NGX_OK : NGX_DECLINED;
}


ngx_int_t
ngx_game_rt_send_json(ngx_game_rt_conn_t *ws, json_t *msg)
{
    u_char     buf[2048], *p;
    size_t     len;
    ngx_int_t  rc;

    len = json_dumpb(msg, (char *) buf, sizeof(buf), JSON_COMPACT);

    if (len == 0) {
        return NGX_ERROR;
    }

    if (len <= sizeof(buf)) {
        return ngx_game_rt_send_text(ws, buf, len);
    }

    p = ngx_alloc(len, ws->connection->log);
    if (p == NULL) {
        return NGX_ERROR;
    }

    len = json_dumpb(msg, (char *) p, len, JSON_COMPACT);
    rc = ngx_game_rt_send_text(ws, p, len);
    ngx_free(p);

    return rc;
}


/*
 * Queue our close frame and stop taking messages.  Safe anywhere, inside
 * wslay's callbacks too: it only queues; the frame leaves with the next
 * flush.
 */

void
ngx_game_rt_close(ngx_game_rt_conn_t *ws, uint16_t code, const char *reason)
{
    if (ws->closing || ws->aborted) {
        return;
    }

    ws->closing = 1;
    ws->close_code = code;

    /* no longer a player's socket: nothing more is delivered to it, and
     * the player is offline unless another socket holds them */
    ngx_game_rt_detach(ws);

    if (ngx_game_rt_context(ws) != NGX_OK) {
        ws->aborted = 1;
        return;
    }

    /* NGX_DECLINED from wslay: a close is queued already (the client's
     * answer); it goes out instead */
    (void) wslay_event_queue_close(ws->wslay, code, (const uint8_t *) reason,
                                   reason ? ngx_strlen(reason) : 0);

    ngx_game_rt_arm(ws);
}


/*
 * Send what is queued, as far as the socket takes it, then see whether
 * the connection ended.  Called last by the event handlers: it may close
 * the connection and free "ws".
 */

void
ngx_game_rt_flush(ngx_game_rt_conn_t *ws)
{
    ngx_connection_t  *c = ws->connection;

    if (ws->aborted) {
        ngx_game_rt_end(ws, NULL);
        return;
    }

    if (ws->wslay && (!ws->blocked || c->write->ready)) {
        if (wslay_event_send(ws->wslay) != 0) {
            ngx_game_rt_end(ws, NULL);
            return;
        }
    }

    ws->blocked = 0;

    if (ws->wslay) {
        ws->blocked = wslay_event_want_write(ws->wslay) ? 1 : 0;

        if (wslay_event_get_close_sent(ws->wslay)) {

            /* ours or wslay's own (a protocol error), counted once: the
             * context goes below either way */
            ngx_game_rt_metrics_closed(ws->rmcf,
                wslay_event_get_status_code_sent(ws->wslay));

            if (wslay_event_get_close_received(ws->wslay)
                || !wslay_event_get_read_enabled(ws->wslay))
            {
                /* the client closed first, or failed: done */
                ngx_game_rt_end(ws, NULL);
                return;
            }

            /* ours went first: its answer needs no wslay */
            wslay_event_context_free(ws->wslay);
            ws->wslay = NULL;
            ws->blocked = 0;
            ws->nhead = 0;
        }
    }

    if (ws->blocked) {
        if (!c->write->timer_set) {
            /* a client that takes nothing for this long is gone */
            c->write->cancelable = 0;
            ngx_add_timer(c->write, ws->send_timeout);
        }

        if (ngx_handle_write_event(c->write, 0) != NGX_OK) {
            ngx_game_rt_end(ws, NULL);
            return;
        }

    } else if (c->write->timer_set) {
        ngx_del_timer(c->write);
    }

    ngx_game_rt_release(ws);
}


static ngx_int_t
ngx_game_rt_context(ngx_game_rt_conn_t *ws)
{
    if (ws->wslay) {
        return NGX_OK;
    }

    if (wslay_event_context_server_init(&ws->wslay, &ngx_game_rt_callbacks,
                                        ws)
        != 0)
    {
        ws->wslay = NULL;
        return NGX_ERROR;
    }

    /* larger messages, fragments included, are refused with 1009 before
     * any of their payload is kept */
    wslay_event_config_set_max_recv_msg_length(ws->wslay,
                                               ws->rmcf->max_message);

    ws->fed = 0;
    ws->framed = 0;
    ws->in_frame = 0;
    ws->fragmented = 0;

    return NGX_OK;
}


/* between frames with nothing to send: the context's memory goes */
static void
ngx_game_rt_release(ngx_game_rt_conn_t *ws)
{
    if (ws->wslay == NULL || ws->closing || ws->blocked || ws->nhead
        || ws->in_frame || ws->fragmented || ws->fed != ws->framed
        || ws->npreread || ws->more
        || wslay_event_want_write(ws->wslay)
        || !wslay_event_get_read_enabled(ws->wslay))
    {
        return;
    }

    wslay_event_context_free(ws->wslay);
    ws->wslay = NULL;
}


/* the end of the socket: "why" is logged for what an operator may want */
static void
ngx_game_rt_end(ngx_game_rt_conn_t *ws, const char *why)
{
    ngx_connection_t  *c = ws->connection;

    if (why) {
        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "game rt: WebSocket closed: %s", why);
    }

    ngx_http_close_connection(c);
}


/* the connection's memory goes (c->pool): so do wslay's and our place in
 * the worker's tables */
static void
ngx_game_rt_cleanup(void *data)
{
    ngx_game_rt_conn_t  *ws = data;

    if (ws->wslay) {
        wslay_event_context_free(ws->wslay);
        ws->wslay = NULL;
    }

    ngx_game_rt_conn_cleanup(ws);
}
