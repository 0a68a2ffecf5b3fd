
/*
 * game.v1: JSON messages, each an object with a "type".
 *
 * From the client:
 *
 *   {"type":"auth","token":"<access token>"}   first, when the handshake
 *       had no Authorization header; later, a fresh token of the same
 *       player keeps the socket open past the first one's end
 *   {"type":"ping","id"?:...}                  answered {"type":"pong"}
 *   any type a service registered with the core (party.chat: the
 *       matchmaker's), handed to it
 *
 * Anything else is answered with {"type":"error","code","message"}; the
 * socket stays open.  "id", when a message has one, comes back in its
 * answer.  Every message counts against game_rt_rate: over it, the
 * message is refused ("rate_limited"); a client that keeps going past
 * twice the burst is closed (1008).
 *
 * To the client, besides answers: "welcome" once authenticated, and what
 * services push (matchmaking, wallet, notification, party), delivered by
 * ngx_game_rt_fanout.c.
 */

#include "ngx_game_rt.h"


static void ngx_game_rt_auth(ngx_game_rt_conn_t *ws, json_t *msg);
static void ngx_game_rt_ping(ngx_game_rt_conn_t *ws, json_t *msg);
static ngx_int_t ngx_game_rt_welcome(ngx_game_rt_conn_t *ws);
static ngx_uint_t ngx_game_rt_allowed(ngx_game_rt_conn_t *ws);


void
ngx_game_rt_message(ngx_game_rt_conn_t *ws, const u_char *data, size_t len)
{
    json_t              *msg, *type;
    ngx_str_t            t, player;
    ngx_int_t            rc;
    const char          *code, *message;
    json_error_t         err;
    ngx_connection_t    *c = ws->connection;

    if (!ngx_game_rt_allowed(ws)) {
        return;
    }

    msg = json_loadb((const char *) data, len, JSON_REJECT_DUPLICATES, &err);

    if (msg == NULL || !json_is_object(msg)) {
        json_decref(msg);

        if (!ws->authenticated) {
            ngx_game_rt_close(ws, NGX_GAME_RT_POLICY, "auth_required");
            return;
        }

        ngx_game_rt_send_error(ws, "invalid_message",
                               "a message is a JSON object with a \"type\"",
                               NULL);
        return;
    }

    type = json_object_get(msg, "type");

    if (!json_is_string(type)) {
        if (ws->authenticated) {
            ngx_game_rt_send_error(ws, "invalid_message",
                                   "a message is a JSON object with a "
                                   "\"type\"", msg);
        } else {
            ngx_game_rt_close(ws, NGX_GAME_RT_POLICY, "auth_required");
        }

        json_decref(msg);
        return;
    }

    t.data = (u_char *) json_string_value(type);
    t.len = json_string_length(type);

    if (t.len == 4 && ngx_strncmp(t.data, "auth", 4) == 0) {
        ngx_game_rt_auth(ws, msg);
        json_decref(msg);
        return;
    }

    if (!ws->authenticated) {
        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "game rt: a message before \"auth\"");
        ngx_game_rt_close(ws, NGX_GAME_RT_POLICY, "auth_required");
        json_decref(msg);
        return;
    }

    if (t.len == 4 && ngx_strncmp(t.data, "ping", 4) == 0) {
        ngx_game_rt_ping(ws, msg);
        json_decref(msg);
        return;
    }

    player.data = ws->access.player_id;
    player.len = GAME_UUID_LEN;
    code = NULL;
    message = NULL;

    rc = ngx_game_push_message(ws->rmcf->hooks, &t, &player, msg, &code,
                               &message);

    switch (rc) {

    case NGX_OK:
        break;

    case NGX_DECLINED:
        ngx_game_rt_send_error(ws, "unknown_type",
                               "no such message type in game.v1", msg);
        break;

    case NGX_GAME_REFUSED:
        ngx_game_rt_send_error(ws, code ? code : "refused",
                               message ? message : "the message was refused",
                               msg);
        break;

    default:
        ngx_game_rt_send_error(ws, "unavailable",
                               "the message could not be handled now; try "
                               "again", msg);
        break;
    }

    json_decref(msg);
}


/*
 * The rate, per socket.  A refused message is answered, and answers cost
 * the client's own send queue; past twice the burst in a row the socket
 * is closed, so a flood costs a bounded amount of work.
 */

static ngx_uint_t
ngx_game_rt_allowed(ngx_game_rt_conn_t *ws)
{
    if (game_rt_bucket_take(&ws->bucket, ngx_current_msec, ws->rmcf->rate,
                            ws->rmcf->burst))
    {
        ws->refused = 0;
        return 1;
    }

    if (++ws->refused > 2 * ws->rmcf->burst) {
        ngx_log_error(NGX_LOG_INFO, ws->connection->log, 0,
                      "game rt: the client keeps sending over its rate");
        ngx_game_rt_close(ws, NGX_GAME_RT_POLICY, "rate_limited");
        return 0;
    }

    ngx_game_rt_send_error(ws, "rate_limited", "too many messages: slow down",
                           NULL);
    return 0;
}


static void
ngx_game_rt_auth(ngx_game_rt_conn_t *ws, json_t *msg)
{
    json_t              *token;
    ngx_game_access_t    a;
    ngx_connection_t    *c = ws->connection;

    token = json_object_get(msg, "token");

    if (!json_is_string(token)
        || ngx_game_access_verify(ws->rmcf->access,
                                  (u_char *) json_string_value(token),
                                  json_string_length(token), &a)
           != NGX_OK)
    {
        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "game rt: invalid, expired or revoked access token");

        if (!ws->authenticated) {
            ngx_game_rt_close(ws, NGX_GAME_RT_POLICY, "invalid_token");
            return;
        }

        /* the socket keeps the token it has */
        ngx_game_rt_send_error(ws, "invalid_token",
                               "a valid access token is required", msg);
        return;
    }

    if (!ws->authenticated) {
        ws->access = a;
        ws->authenticated = 1;

        if (ngx_game_rt_authenticated(ws) != NGX_OK) {
            ngx_game_rt_close(ws, NGX_GAME_RT_INTERNAL, "server error");
            return;
        }

        ngx_game_rt_arm(ws);
        return;
    }

    /* a fresh token: the same player only, and the socket lives on */
    if (ngx_memcmp(a.player_id, ws->access.player_id, GAME_UUID_LEN) != 0) {
        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "game rt: an \"auth\" message for another player");
        ngx_game_rt_close(ws, NGX_GAME_RT_POLICY, "player_mismatch");
        return;
    }

    ws->access = a;
    ngx_game_rt_arm(ws);

    (void) ngx_game_rt_welcome(ws);
}


/* the socket has a player: it joins the worker's tables, says welcome */
ngx_int_t
ngx_game_rt_authenticated(ngx_game_rt_conn_t *ws)
{
    if (ngx_game_rt_attach(ws) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_game_rt_welcome(ws);
}


static ngx_int_t
ngx_game_rt_welcome(ngx_game_rt_conn_t *ws)
{
    json_t     *msg;
    ngx_int_t   rc;

    msg = json_pack("{s:s,s:s#,s:s,s:I,s:I}",
                    "type", "welcome",
                    "player_id", ws->access.player_id, (int) GAME_UUID_LEN,
                    "protocol", NGX_GAME_RT_PROTOCOL,
                    "ping_interval_ms", (json_int_t) ws->rmcf->ping_interval,
                    "expires_at", (json_int_t) ws->access.exp);
    if (msg == NULL) {
        return NGX_ERROR;
    }

    rc = ngx_game_rt_send_json(ws, msg);
    json_decref(msg);

    return rc == NGX_ERROR ? NGX_ERROR : NGX_OK;
}


static void
ngx_game_rt_ping(ngx_game_rt_conn_t *ws, json_t *msg)
{
    json_t      *pong, *id;
    ngx_time_t  *tp;

    tp = ngx_timeofday();

    pong = json_pack("{s:s,s:I}", "type", "pong",
                     "at", (json_int_t) tp->sec * 1000 + tp->msec);
    if (pong == NULL) {
        return;
    }

    id = json_object_get(msg, "id");
    if (id) {
        json_object_set(pong, "id", id);
    }

    (void) ngx_game_rt_send_json(ws, pong);
    json_decref(pong);
}


/*
 * {"type":"error","code","message","in_reply_to"?,"id"?}: "about" is the
 * message it answers, when it had a type or an id.
 */

void
ngx_game_rt_send_error(ngx_game_rt_conn_t *ws, const char *code,
    const char *message, json_t *about)
{
    json_t  *err, *v;

    err = json_pack("{s:s,s:s,s:s}", "type", "error", "code", code,
                    "message", message);
    if (err == NULL) {
        return;
    }

    if (about) {
        v = json_object_get(about, "type");
        if (json_is_string(v) && json_string_length(v) <= 64) {
            json_object_set(err, "in_reply_to", v);
        }

        v = json_object_get(about, "id");
        if (v && (json_is_string(v) || json_is_integer(v))) {
            json_object_set(err, "id", v);
        }
    }

    (void) ngx_game_rt_send_json(ws, err);
    json_decref(err);
}
