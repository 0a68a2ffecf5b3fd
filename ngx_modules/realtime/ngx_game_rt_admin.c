
/*
 * POST /admin/notify: a notification to one player or to everyone
 * connected, from an admin declared with game_rt_admin (a name and a
 * file each), checked by the core (ngx_game_admin_who()).
 *
 *   {"player_id"?: "<id>", "title"?: "...", "body": "...", "data"?: {...}}
 *
 *   202 {"notification_id", "player_id"?, "online"?: bool, "workers": n}
 *
 * Players receive {"type":"notification", "notification_id", "title"?,
 * "body", "data"?, "sent_at": ms}.  A player who is not connected misses
 * it ("online": false says so): notifications that must be read later
 * belong in a store of their own.
 */

#include "ngx_game_rt.h"


#define NGX_GAME_RT_TITLE_MAX   200         /* characters */
#define NGX_GAME_RT_BODY_MAX    2000
#define NGX_GAME_RT_DATA_MAX    4096        /* bytes of JSON */


typedef struct {
    ngx_http_request_t         *request;
    u_char                      id[GAME_UUID_LEN + 1];
    u_char                      player[GAME_UUID_LEN + 1];
    unsigned                    one:1;
} ngx_game_rt_notify_t;


static void ngx_game_rt_notify_body(ngx_http_request_t *r, json_t *body);
static const char *ngx_game_rt_notify_check(json_t *body);
static void ngx_game_rt_notified(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply);


ngx_int_t
ngx_game_rt_notify_handler(ngx_http_request_t *r)
{
    ngx_game_rt_notify_t     *n;
    ngx_game_rt_main_conf_t  *rmcf;

    rmcf = ngx_http_get_module_main_conf(r, ngx_game_rt_module);

    if (ngx_game_admin_who(r, &rmcf->admins) == NULL) {
        return ngx_game_http_send_error(r, NGX_HTTP_UNAUTHORIZED,
                                        "unauthorized",
                                        "an admin credential is required");
    }

    if (r->method != NGX_HTTP_POST) {
        return ngx_game_http_send_error(r, NGX_HTTP_NOT_ALLOWED,
                                        "method_not_allowed",
                                        "notify with POST");
    }

    n = ngx_pcalloc(r->pool, sizeof(ngx_game_rt_notify_t));
    if (n == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    n->request = r;
    ngx_http_set_ctx(r, n, ngx_game_rt_module);

    return ngx_game_http_read_json(r, ngx_game_rt_notify_body);
}


static void
ngx_game_rt_notify_body(ngx_http_request_t *r, json_t *body)
{
    json_t                   *msg, *v;
    ngx_str_t                 player;
    ngx_int_t                 rc;
    ngx_time_t               *tp;
    const char               *err;
    ngx_game_redis_cmd_t     *cmd;
    ngx_game_rt_notify_t     *n;
    ngx_game_rt_main_conf_t  *rmcf;

    n = ngx_http_get_module_ctx(r, ngx_game_rt_module);
    rmcf = ngx_http_get_module_main_conf(r, ngx_game_rt_module);

    err = ngx_game_rt_notify_check(body);
    if (err) {
        ngx_http_finalize_request(r,
            ngx_game_http_send_error(r, NGX_GAME_HTTP_UNPROCESSABLE,
                                     "invalid_notification", err));
        return;
    }

    v = json_object_get(body, "player_id");
    if (v) {
        ngx_memcpy(n->player, json_string_value(v), GAME_UUID_LEN);
        n->one = 1;
    }

    game_uuid_generate((char *) n->id);
    tp = ngx_timeofday();

    msg = json_pack("{s:s,s:s,s:O,s:I}",
                    "type", "notification",
                    "notification_id", n->id,
                    "body", json_object_get(body, "body"),
                    "sent_at", (json_int_t) tp->sec * 1000 + tp->msec);
    if (msg == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    v = json_object_get(body, "title");
    if (v) {
        json_object_set(msg, "title", v);
    }

    v = json_object_get(body, "data");
    if (v) {
        json_object_set(msg, "data", v);
    }

    cmd = ngx_game_redis_request_cmd(r);
    if (cmd == NULL) {
        json_decref(msg);
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    cmd->handler = ngx_game_rt_notified;
    cmd->data = r;

    player.data = n->player;
    player.len = GAME_UUID_LEN;

    rc = ngx_game_push_run(rmcf->redis, cmd, n->one ? &player : NULL, msg);
    json_decref(msg);

    if (rc != NGX_AGAIN) {
        ngx_http_finalize_request(r,
            ngx_game_http_send_outcome(r, rc, "the message bus"));
        return;
    }

    r->main->count++;
    ngx_http_finalize_request(r, NGX_DONE);
}


/* NULL, or what is wrong (for the client) */
static const char *
ngx_game_rt_notify_check(json_t *body)
{
    json_t  *player, *title, *text, *data;

    player = json_object_get(body, "player_id");
    title = json_object_get(body, "title");
    text = json_object_get(body, "body");
    data = json_object_get(body, "data");

    if (player
        && (!json_is_string(player)
            || !game_uuid_valid((u_char *) json_string_value(player),
                                json_string_length(player))))
    {
        return "\"player_id\" must be a player's id";
    }

    if (!json_is_string(text) || json_string_length(text) == 0
        || game_utf8_chars(json_string_value(text), json_string_length(text))
           > NGX_GAME_RT_BODY_MAX)
    {
        return "\"body\" must be a text of 1 to 2000 characters";
    }

    if (title
        && (!json_is_string(title)
            || game_utf8_chars(json_string_value(title),
                               json_string_length(title))
               > NGX_GAME_RT_TITLE_MAX))
    {
        return "\"title\" must be a text of up to 200 characters";
    }

    if (data
        && (!json_is_object(data)
            || json_dumpb(data, NULL, 0, JSON_COMPACT) > NGX_GAME_RT_DATA_MAX))
    {
        return "\"data\" must be an object of up to 4096 bytes of JSON";
    }

    return NULL;
}


static void
ngx_game_rt_notified(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply)
{
    json_t                *body;
    ngx_http_request_t    *r = cmd->data;
    ngx_game_rt_notify_t  *n;

    if (rc != NGX_OK || reply->type != REDIS_REPLY_INTEGER) {
        ngx_http_finalize_request(r,
            ngx_game_http_send_outcome(r, rc == NGX_OK ? NGX_ERROR : rc,
                                       "the message bus"));
        return;
    }

    n = ngx_http_get_module_ctx(r, ngx_game_rt_module);

    body = json_pack("{s:s,s:I}", "notification_id", n->id,
                     "workers", (json_int_t) reply->integer);
    if (body == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (n->one) {
        json_object_set_new(body, "player_id", json_string((char *) n->player));
        json_object_set_new(body, "online", json_boolean(reply->integer > 0));
    }

    ngx_http_finalize_request(r,
        ngx_game_http_send_json(r, NGX_HTTP_ACCEPTED, body));
    json_decref(body);
}
