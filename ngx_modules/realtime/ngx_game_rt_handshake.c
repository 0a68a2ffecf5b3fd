
/*
 * GET /ws: the opening handshake (RFC 6455, 4.2), then the connection is
 * taken from the HTTP request.
 *
 * Refused before anything is upgraded, with the core's JSON errors:
 *
 *   405  not GET
 *   400  over HTTP/2 (RFC 8441 is not offered), a token in the URL (they
 *        are logged: never there), a malformed Sec-WebSocket-Key, no
 *        "game.v1" among the offered subprotocols
 *   426  not an upgrade to websocket, or a version other than 13
 *   403  an Origin that game_rt_origins does not list
 *   401  an Authorization header whose token the guard would refuse
 *
 * A request with "Authorization: Bearer" is authenticated here, by the
 * auth module's check (ngx_game_access_verify(), the guard's own); one
 * without (a browser, which cannot set headers on a WebSocket) must send
 * {"type":"auth","token":...} first, within game_rt_auth_timeout.
 *
 * Once the 101 is out, the request is freed the way nginx frees a request
 * before a keep-alive wait (its access log line is written then, status
 * 101) and the connection is the WebSocket's alone, with a few hundred
 * bytes of memory of its own.  That happens from a posted event, outside
 * the request's handlers, which still use the request after the content
 * handler returns.
 */

#include "ngx_game_rt.h"


static ngx_int_t ngx_game_rt_refuse(ngx_http_request_t *r, ngx_uint_t status,
    const char *code, const char *message);
static ngx_str_t *ngx_game_rt_header(ngx_http_request_t *r,
    const char *name);
static ngx_int_t ngx_game_rt_origin_allowed(ngx_game_rt_main_conf_t *rmcf,
    ngx_str_t *origin);
static ngx_int_t ngx_game_rt_token_in_args(ngx_http_request_t *r);
static void ngx_game_rt_takeover(ngx_event_t *wev);
static void ngx_game_rt_abandon(ngx_http_request_t *r, ngx_game_rt_conn_t *ws);
static void ngx_game_rt_free_buffers(ngx_connection_t *c,
    ngx_http_connection_t *hc);


ngx_int_t
ngx_game_rt_websocket_handler(ngx_http_request_t *r)
{
    char                       accept[GAME_RT_ACCEPT_LEN + 1];
    u_char                     *p;
    ngx_str_t                  *upgrade, *connection, *version, *key,
                               *protocols, *origin, token;
    ngx_int_t                   rc;
    ngx_table_elt_t            *h;
    ngx_connection_t           *c;
    ngx_game_rt_conn_t         *ws;
    ngx_game_rt_main_conf_t    *rmcf;
    ngx_http_core_loc_conf_t   *clcf;

    rmcf = ngx_http_get_module_main_conf(r, ngx_game_rt_module);
    c = r->connection;

    if (r->method != NGX_HTTP_GET) {
        return ngx_game_rt_refuse(r, NGX_HTTP_NOT_ALLOWED,
                                  "method_not_allowed",
                                  "a WebSocket opens with GET");
    }

    if (r != r->main || r->http_version != NGX_HTTP_VERSION_11
#if (NGX_HTTP_V2)
        || r->stream
#endif
       )
    {
        return ngx_game_rt_refuse(r, NGX_HTTP_BAD_REQUEST, "http_1_1_only",
                                  "WebSockets open over HTTP/1.1");
    }

    /* access logs keep URLs: a token there would be written to disk */
    if (ngx_game_rt_token_in_args(r)) {
        return ngx_game_rt_refuse(r, NGX_HTTP_BAD_REQUEST, "token_in_url",
                                  "send the token in an Authorization "
                                  "header or an \"auth\" message, never in "
                                  "the URL");
    }

    upgrade = ngx_game_rt_header(r, "Upgrade");
    connection = ngx_game_rt_header(r, "Connection");

    if (upgrade == NULL || connection == NULL
        || !game_rt_list_has(upgrade->data, upgrade->len, "websocket", 1)
        || !game_rt_list_has(connection->data, connection->len, "upgrade", 1))
    {
        return ngx_game_rt_refuse(r, 426, "upgrade_required",
                                  "GET /ws upgrades to a WebSocket "
                                  "(Upgrade: websocket)");
    }

    version = ngx_game_rt_header(r, "Sec-WebSocket-Version");

    if (version == NULL || version->len != 2
        || ngx_strncmp(version->data, "13", 2) != 0)
    {
        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "Sec-WebSocket-Version");
        ngx_str_set(&h->value, "13");

        return ngx_game_rt_refuse(r, 426, "unsupported_version",
                                  "the WebSocket version is 13");
    }

    key = ngx_game_rt_header(r, "Sec-WebSocket-Key");

    if (key == NULL || !game_rt_key_valid(key->data, key->len)) {
        return ngx_game_rt_refuse(r, NGX_HTTP_BAD_REQUEST, "invalid_key",
                                  "Sec-WebSocket-Key must be 16 bytes in "
                                  "base64");
    }

    origin = ngx_game_rt_header(r, "Origin");

    if (origin && ngx_game_rt_origin_allowed(rmcf, origin) != NGX_OK) {
        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "game rt: a WebSocket from origin \"%V\" refused",
                      origin);
        return ngx_game_rt_refuse(r, NGX_HTTP_FORBIDDEN,
                                  "origin_not_allowed",
                                  "this origin may not open a WebSocket");
    }

    protocols = ngx_game_rt_header(r, "Sec-WebSocket-Protocol");

    if (protocols == NULL
        || !game_rt_list_has(protocols->data, protocols->len,
                             NGX_GAME_RT_PROTOCOL, 0))
    {
        return ngx_game_rt_refuse(r, NGX_HTTP_BAD_REQUEST,
                                  "subprotocol_required",
                                  "offer the subprotocol game.v1");
    }

    ws = ngx_pcalloc(c->pool, sizeof(ngx_game_rt_conn_t));
    if (ws == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ws->connection = c;
    ws->rmcf = rmcf;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);
    ws->send_timeout = clcf->send_timeout;

    if (ngx_game_access_bearer(r, &token) == NGX_OK) {

        if (ngx_game_access_verify(rmcf->access, token.data, token.len,
                                   &ws->access)
            != NGX_OK)
        {
            ngx_log_error(NGX_LOG_INFO, c->log, 0,
                          "game rt: invalid, expired or revoked access "
                          "token");

            h = ngx_list_push(&r->headers_out.headers);
            if (h == NULL) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            h->hash = 1;
            ngx_str_set(&h->key, "WWW-Authenticate");
            ngx_str_set(&h->value, "Bearer error=\"invalid_token\"");

            return ngx_game_rt_refuse(r, NGX_HTTP_UNAUTHORIZED,
                                      "invalid_token",
                                      "a valid access token is required");
        }

        ws->authenticated = 1;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    game_rt_accept(key->data, key->len, accept);

    r->headers_out.status = NGX_HTTP_SWITCHING_PROTOCOLS;
    ngx_str_set(&r->headers_out.status_line, "101 Switching Protocols");
    r->headers_out.content_length_n = -1;
    r->header_only = 1;
    r->keepalive = 0;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    h->hash = 1;
    ngx_str_set(&h->key, "Upgrade");
    ngx_str_set(&h->value, "websocket");

    h = ngx_list_push(&r->headers_out.headers);
    p = ngx_pnalloc(r->pool, GAME_RT_ACCEPT_LEN);
    if (h == NULL || p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    h->hash = 1;
    ngx_str_set(&h->key, "Sec-WebSocket-Accept");
    h->value.data = p;
    h->value.len = GAME_RT_ACCEPT_LEN;
    ngx_memcpy(p, accept, GAME_RT_ACCEPT_LEN);

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    h->hash = 1;
    ngx_str_set(&h->key, "Sec-WebSocket-Protocol");
    ngx_str_set(&h->value, NGX_GAME_RT_PROTOCOL);

    rc = ngx_http_send_header(r);
    if (rc == NGX_ERROR || rc > NGX_OK) {
        return rc;
    }

    /*
     * Frames the client sent right behind its request (it should wait for
     * the 101, but need not) are wslay's first bytes.
     */
    if (r->header_in->pos < r->header_in->last) {
        ws->npreread = r->header_in->last - r->header_in->pos;
        ws->preread = ngx_pnalloc(c->pool, ws->npreread);
        if (ws->preread == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
        ngx_memcpy(ws->preread, r->header_in->pos, ws->npreread);
        r->header_in->pos = r->header_in->last;
    }

    /* until the takeover: ignore reads (the bytes wait in the socket),
     * send the rest of the 101 if it did not all go */
    r->read_event_handler = ngx_http_request_empty_handler;
    r->write_event_handler = ngx_http_request_empty_handler;

    ngx_http_set_ctx(r, ws, ngx_game_rt_module);

    c->write->handler = ngx_game_rt_takeover;
    ngx_post_event(c->write, &ngx_posted_events);

    r->main->count++;

    return NGX_DONE;
}


/*
 * From a posted event: the 101 is sent (or its rest once the socket takes
 * it), then the request is freed and the connection is the WebSocket's.
 */

static void
ngx_game_rt_takeover(ngx_event_t *wev)
{
    ngx_connection_t       *c;
    ngx_game_rt_conn_t     *ws;
    ngx_http_request_t     *r;
    ngx_http_connection_t  *hc;

    c = wev->data;
    r = c->data;
    ws = ngx_http_get_module_ctx(r, ngx_game_rt_module);

    if (wev->timedout) {
        ngx_log_error(NGX_LOG_INFO, c->log, NGX_ETIMEDOUT,
                      "client timed out");
        c->timedout = 1;
        ngx_game_rt_abandon(r, ws);
        return;
    }

    if (r->out || c->buffered) {
        if (ngx_http_output_filter(r, NULL) == NGX_ERROR || c->error) {
            ngx_game_rt_abandon(r, ws);
            return;
        }

        if (r->out || c->buffered) {
            if (!wev->timer_set) {
                ngx_add_timer(wev, ws->send_timeout);
            }

            if (ngx_handle_write_event(wev, 0) != NGX_OK) {
                ngx_game_rt_abandon(r, ws);
            }

            return;
        }
    }

    if (wev->timer_set) {
        ngx_del_timer(wev);
    }

    /* logs the request (status 101), runs its cleanups, frees its memory */
    hc = r->http_connection;
    ngx_http_free_request(r, 0);
    ngx_game_rt_free_buffers(c, hc);

    c->data = ws;
    c->destroyed = 0;
    c->log->action = "exchanging WebSocket messages";

#if (NGX_SSL)
    if (c->ssl) {
        ngx_ssl_free_buffer(c);
    }
#endif

    ngx_game_rt_conn_start(ws);
}


/*
 * The request's header buffers are the connection's (nginx keeps them for
 * a next request), outside the connection's small pool: a WebSocket has
 * no next request, so they go, as before a keep-alive wait.
 */

static void
ngx_game_rt_free_buffers(ngx_connection_t *c, ngx_http_connection_t *hc)
{
    ngx_chain_t  *cl;

    if (c->buffer && c->buffer->start
        && ngx_pfree(c->pool, c->buffer->start) == NGX_OK)
    {
        c->buffer->start = NULL;
        c->buffer->pos = NULL;
        c->buffer->last = NULL;
        c->buffer->end = NULL;
    }

    for (cl = hc->busy; cl; cl = cl->next) {
        (void) ngx_pfree(c->pool, cl->buf->start);
    }

    for (cl = hc->free; cl; cl = cl->next) {
        (void) ngx_pfree(c->pool, cl->buf->start);
    }

    hc->busy = NULL;
    hc->free = NULL;
    hc->nbusy = 0;
}


/* the 101 could not be sent: there is no WebSocket to speak of */
static void
ngx_game_rt_abandon(ngx_http_request_t *r, ngx_game_rt_conn_t *ws)
{
    ngx_connection_t  *c = r->connection;

    ngx_http_free_request(r, 0);
    ngx_http_close_connection(c);
}


static ngx_int_t
ngx_game_rt_refuse(ngx_http_request_t *r, ngx_uint_t status,
    const char *code, const char *message)
{
    /* the upgrade's answer ends the exchange: no body follows the
     * request, and a refused client opens a new connection anyway */
    r->keepalive = 0;

    return ngx_game_http_send_error(r, status, code, message);
}


static ngx_str_t *
ngx_game_rt_header(ngx_http_request_t *r, const char *name)
{
    size_t            len;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    len = ngx_strlen(name);
    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {
        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NULL;
            }
            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == len
            && ngx_strncasecmp(h[i].key.data, (u_char *) name, len) == 0)
        {
            return &h[i].value;
        }
    }
}


static ngx_int_t
ngx_game_rt_origin_allowed(ngx_game_rt_main_conf_t *rmcf, ngx_str_t *origin)
{
    ngx_str_t   *allowed;
    ngx_uint_t   i;

    if (rmcf->origins == NULL) {
        return NGX_DECLINED;
    }

    allowed = rmcf->origins->elts;

    for (i = 0; i < rmcf->origins->nelts; i++) {
        if (allowed[i].len == origin->len
            && ngx_strncasecmp(allowed[i].data, origin->data, origin->len)
               == 0)
        {
            return NGX_OK;
        }
    }

    return NGX_DECLINED;
}


static ngx_int_t
ngx_game_rt_token_in_args(ngx_http_request_t *r)
{
    ngx_str_t  v;

    return r->args.len
           && (ngx_http_arg(r, (u_char *) "token", 5, &v) == NGX_OK
               || ngx_http_arg(r, (u_char *) "access_token", 12, &v)
                  == NGX_OK);
}
