
/*
 * What the matchmaker tells players as it happens, rather than when they
 * ask: every change of a ticket's status (with the server and a fresh
 * connection ticket once matched), parties' members coming and going, and
 * party chat.  All of it goes through the core's pushes (ngx_game_push()):
 * the matchmaker never knows which worker, or which nginx, holds a
 * player's WebSocket, nor whether anyone does.
 *
 *   {"type":"matchmaking", ...GET /matchmaking/status's body...}
 *   {"type":"party", "event":"joined"|"left", "party_id", "player_id",
 *    "leader", "members"}
 *   {"type":"party", "event":"chat", "party_id", "from", "text", "at"}
 *
 * Statuses.  The scripts that change tickets (join, cancel, match, sweep,
 * expire, finish) say which; notify.lua then reads each ticket as the
 * status endpoint would, with those of its players who are online, and a
 * status is built and signed for each of them only.  Reading after the
 * change, never sending what the script saw, means a player always ends
 * on the ticket's latest status, whichever push arrives last.
 *
 * Resume.  When a player's socket is ready, the realtime module asks
 * (the core's resume hook): the player's current status is pushed at
 * once, so a client that reconnects needs no poll to catch up.
 *
 * Every read here has memory of its own: it outlives the request or the
 * matcher's pass that caused it.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <openssl/rand.h>

#include "ngx_game_mm.h"


#define NGX_GAME_MM_NOTIFY_BATCH  (NGX_GAME_REDIS_MAX_ARGS - 2)


typedef struct {
    ngx_game_mm_main_conf_t    *mmcf;
    ngx_pool_t                 *pool;
    ngx_str_t                   player;
    ngx_str_t                   text;
} ngx_game_mm_push_t;


static ngx_game_mm_push_t *ngx_game_mm_push_create(
    ngx_game_mm_main_conf_t *mmcf);
static ngx_int_t ngx_game_mm_push_script(ngx_game_mm_push_t *pu,
    ngx_game_redis_script_t *script, ngx_game_redis_handler_pt handler,
    ngx_game_redis_args_t *a);
static void ngx_game_mm_notified(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply);
static void ngx_game_mm_resumed(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply);
static void ngx_game_mm_push_status(ngx_game_mm_push_t *pu,
    ngx_str_t *player, redisReply *id, redisReply **kv, size_t n);
static void ngx_game_mm_chat_members(ngx_game_redis_cmd_t *cmd,
    ngx_int_t rc, redisReply *reply);
static json_t *ngx_game_mm_members(u_char *list, size_t len);
static ngx_int_t ngx_game_mm_connection_ticket(ngx_game_mm_main_conf_t *mmcf,
    ngx_pool_t *pool, json_t *body, ngx_str_t *player,
    const char *server_id);


/*
 * A ticket's fields (field, value, ...: "kv", "n" of them) -> the status
 * JSON: ticket_id, status, reason (for a ticket that ended), game_mode,
 * region, queued_for_ms, match_id, team, server {host, port},
 * connection_ticket (signed for "player", in "pool").  The status
 * endpoint's body and the "matchmaking" push are this.
 */

json_t *
ngx_game_mm_status_json(ngx_game_mm_main_conf_t *mmcf, ngx_pool_t *pool,
    ngx_str_t *player, redisReply *id, redisReply **kv, size_t n)
{
    size_t       i;
    json_t      *body, *server, *status;
    int64_t      created;
    redisReply  *k, *v;
    ngx_time_t  *tp;
    const char  *queue, *colon, *server_id;

    body = json_object();
    server = json_object();
    if (body == NULL || server == NULL) {
        json_decref(body);
        json_decref(server);
        return NULL;
    }

    json_object_set_new(body, "ticket_id", json_stringn(id->str, id->len));
    created = -1;
    server_id = NULL;

    for (i = 0; i + 1 < n; i += 2) {
        k = kv[i];
        v = kv[i + 1];

        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) {
            continue;
        }

        if (ngx_strcmp(k->str, "status") == 0
            || ngx_strcmp(k->str, "match") == 0)
        {
            json_object_set_new(body,
                                ngx_strcmp(k->str, "match") == 0
                                ? "match_id" : k->str,
                                json_stringn(v->str, v->len));

        } else if (ngx_strcmp(k->str, "reason") == 0 && v->len) {
            json_object_set_new(body, "reason", json_stringn(v->str, v->len));

        } else if (ngx_strcmp(k->str, "team") == 0) {
            json_object_set_new(body, "team",
                                json_integer(strtoll(v->str, NULL, 10)));

        } else if (ngx_strcmp(k->str, "queue") == 0) {
            /* "mode:region" */
            queue = v->str;
            colon = strchr(queue, ':');
            if (colon) {
                json_object_set_new(body, "game_mode",
                                    json_stringn(queue, colon - queue));
                json_object_set_new(body, "region", json_string(colon + 1));
            }

        } else if (ngx_strcmp(k->str, "created") == 0) {
            created = strtoll(v->str, NULL, 10);

        } else if (ngx_strcmp(k->str, "server_id") == 0) {
            server_id = v->str;

        } else if (ngx_strcmp(k->str, "server_host") == 0) {
            json_object_set_new(server, "host", json_stringn(v->str, v->len));

        } else if (ngx_strcmp(k->str, "server_port") == 0) {
            json_object_set_new(server, "port",
                                json_integer(strtoll(v->str, NULL, 10)));
        }
    }

    if (created >= 0) {
        tp = ngx_timeofday();
        json_object_set_new(body, "queued_for_ms",
            json_integer((json_int_t) ((int64_t) tp->sec * 1000 + tp->msec
                                       - created)));
    }

    status = json_object_get(body, "status");

    /* the server and a connection ticket while the match is on */
    if (json_object_size(server) == 2 && server_id && json_is_string(status)
        && (ngx_strcmp(json_string_value(status), "matched") == 0
            || ngx_strcmp(json_string_value(status), "playing") == 0))
    {
        json_object_set_new(body, "server", server);

        if (ngx_game_mm_connection_ticket(mmcf, pool, body, player, server_id)
            != NGX_OK)
        {
            json_decref(body);
            return NULL;
        }

    } else {
        json_decref(server);
    }

    return body;
}


/*
 * The connection ticket of one player for one match on one server: what
 * the game server checks when the player connects (PROTOCOL.md).  Claims
 * are built by jansson: nothing that comes from Redis is glued into JSON
 * by hand.
 */

static ngx_int_t
ngx_game_mm_connection_ticket(ngx_game_mm_main_conf_t *mmcf, ngx_pool_t *pool,
    json_t *body, ngx_str_t *player, const char *server_id)
{
    u_char      jti[16], hex[33];
    time_t      now;
    json_t     *claims, *match;
    ngx_int_t   rc;
    ngx_str_t   token;

    match = json_object_get(body, "match_id");

    if (mmcf->keys == NULL || mmcf->keys->signer == NULL
        || !json_is_string(match))
    {
        return NGX_OK;
    }

    if (RAND_bytes(jti, sizeof(jti)) != 1) {
        return NGX_ERROR;
    }

    *ngx_hex_dump(hex, jti, sizeof(jti)) = '\0';

    now = ngx_time();

    claims = json_pack("{s:s#,s:O,s:s,s:I,s:I,s:I,s:s}",
                       "sub", player->data, (int) player->len,
                       "match_id", match,
                       "server_id", server_id,
                       "iat", (json_int_t) now,
                       "nbf", (json_int_t) now,
                       "exp", (json_int_t) (now + mmcf->connect_ttl),
                       "jti", hex);
    if (claims == NULL) {
        return NGX_ERROR;
    }

    rc = ngx_game_jwt_sign(mmcf->keys, NGX_GAME_JWT_TICKET, claims, pool,
                           &token);
    json_decref(claims);

    if (rc != NGX_OK) {
        return NGX_ERROR;
    }

    json_object_set_new(body, "connection_ticket",
                        json_stringn((char *) token.data, token.len));

    return NGX_OK;
}


/* statuses */

/* tickets "ids[n]" changed: their online players hear it */
void
ngx_game_mm_notify(ngx_game_mm_main_conf_t *mmcf, ngx_str_t *ids,
    ngx_uint_t n)
{
    ngx_uint_t              i, k;
    ngx_game_mm_push_t     *pu;
    ngx_game_redis_args_t   a;

    for (i = 0; i < n; i += NGX_GAME_MM_NOTIFY_BATCH) {

        pu = ngx_game_mm_push_create(mmcf);
        if (pu == NULL) {
            return;
        }

        ngx_memzero(&a, sizeof(ngx_game_redis_args_t));
        ngx_game_redis_arg_str(&a, &mmcf->prefix);
        ngx_game_redis_arg_lit(&a, NGX_GAME_PUSH_PREFIX);

        for (k = i; k < n && k < i + NGX_GAME_MM_NOTIFY_BATCH; k++) {
            ngx_game_redis_arg_str(&a, &ids[k]);
        }

        (void) ngx_game_mm_push_script(pu, &ngx_game_mm_lua_notify,
                                       ngx_game_mm_notified, &a);
    }
}


/* a script's list of tickets (an array reply), for ngx_game_mm_notify() */
void
ngx_game_mm_notify_reply(ngx_game_mm_main_conf_t *mmcf, redisReply *list)
{
    size_t       i, n;
    ngx_str_t    ids[NGX_GAME_MM_NOTIFY_BATCH];

    if (list == NULL || list->type != REDIS_REPLY_ARRAY) {
        return;
    }

    n = 0;

    for (i = 0; i < list->elements; i++) {
        if (list->element[i]->type != REDIS_REPLY_STRING) {
            continue;
        }

        ids[n].data = (u_char *) list->element[i]->str;
        ids[n].len = list->element[i]->len;

        if (++n == NGX_GAME_MM_NOTIFY_BATCH) {
            ngx_game_mm_notify(mmcf, ids, n);
            n = 0;
        }
    }

    ngx_game_mm_notify(mmcf, ids, n);
}


/* {{ticket id, {field, value, ...}, {online player, ...}}, ...} */
static void
ngx_game_mm_notified(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply)
{
    size_t               i, k;
    ngx_str_t            player;
    redisReply          *t, *online;
    ngx_game_mm_push_t  *pu = cmd->data;

    if (rc != NGX_OK || reply->type != REDIS_REPLY_ARRAY) {
        ngx_log_error(NGX_LOG_WARN, cmd->log, 0,
                      "game mm: status changes were not pushed to players: "
                      "Redis did not answer");
        goto done;
    }

    for (i = 0; i < reply->elements; i++) {
        t = reply->element[i];

        if (t->type != REDIS_REPLY_ARRAY || t->elements != 3
            || t->element[0]->type != REDIS_REPLY_STRING
            || t->element[1]->type != REDIS_REPLY_ARRAY
            || t->element[2]->type != REDIS_REPLY_ARRAY)
        {
            continue;
        }

        online = t->element[2];

        for (k = 0; k < online->elements; k++) {
            if (online->element[k]->type != REDIS_REPLY_STRING) {
                continue;
            }

            player.data = (u_char *) online->element[k]->str;
            player.len = online->element[k]->len;

            ngx_game_mm_push_status(pu, &player, t->element[0],
                                    t->element[1]->element,
                                    t->element[1]->elements);
        }
    }

done:

    ngx_destroy_pool(pu->pool);
}


static void
ngx_game_mm_push_status(ngx_game_mm_push_t *pu, ngx_str_t *player,
    redisReply *id, redisReply **kv, size_t n)
{
    json_t  *msg;

    if (player->len != GAME_UUID_LEN) {
        return;
    }

    msg = ngx_game_mm_status_json(pu->mmcf, pu->pool, player, id, kv, n);
    if (msg == NULL) {
        return;
    }

    json_object_set_new(msg, "type", json_string("matchmaking"));
    (void) ngx_game_push(pu->mmcf->redis, player, msg);
    json_decref(msg);
}


/* the core's resume hook: a player's socket is ready */
void
ngx_game_mm_resume(void *data, ngx_str_t *player)
{
    ngx_game_mm_push_t     *pu;
    ngx_game_redis_args_t   a;

    pu = ngx_game_mm_push_create(data);
    if (pu == NULL) {
        return;
    }

    pu->player.data = ngx_pstrdup(pu->pool, player);
    pu->player.len = player->len;

    if (pu->player.data == NULL) {
        ngx_destroy_pool(pu->pool);
        return;
    }

    ngx_memzero(&a, sizeof(ngx_game_redis_args_t));
    ngx_game_redis_arg_str(&a, &pu->mmcf->prefix);
    ngx_game_redis_arg_str(&a, &pu->player);

    (void) ngx_game_mm_push_script(pu, &ngx_game_mm_lua_status,
                                   ngx_game_mm_resumed, &a);
}


/* {'TICKET', ticket id, field, value, ...} | {'NONE'}: nothing to say */
static void
ngx_game_mm_resumed(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply)
{
    ngx_game_mm_push_t  *pu = cmd->data;

    if (rc == NGX_OK && ngx_game_mm_reply_is(reply, "TICKET")
        && reply->elements >= 2
        && reply->element[1]->type == REDIS_REPLY_STRING)
    {
        ngx_game_mm_push_status(pu, &pu->player, reply->element[1],
                                &reply->element[2], reply->elements - 2);
    }

    ngx_destroy_pool(pu->pool);
}


/* parties */

/*
 * "player" joined or left "party"; "leader" and "members" are the party
 * now (empty: it is gone).  Everyone in it hears, and the one who left.
 */

void
ngx_game_mm_party_event(ngx_game_mm_main_conf_t *mmcf, u_char *party,
    const char *event, ngx_str_t *player, ngx_str_t *leader,
    ngx_str_t *members)
{
    u_char     *p, *last;
    json_t     *msg, *list;
    ngx_str_t   id;

    list = ngx_game_mm_members(members->data, members->len);
    if (list == NULL) {
        return;
    }

    msg = json_pack("{s:s,s:s,s:s#,s:s#,s:o}",
                    "type", "party", "event", event,
                    "party_id", (char *) party, (int) GAME_UUID_LEN,
                    "player_id", (char *) player->data, (int) player->len,
                    "members", list);
    if (msg == NULL) {
        return;
    }

    json_object_set_new(msg, "leader",
                        leader->len ? json_stringn((char *) leader->data,
                                                   leader->len)
                                    : json_null());

    p = members->data;
    last = members->data + members->len;

    while (ngx_game_mm_next_id(&p, last, &id)) {
        (void) ngx_game_push(mmcf->redis, &id, msg);
    }

    if (ngx_strcmp(event, "left") == 0) {
        (void) ngx_game_push(mmcf->redis, player, msg);
    }

    json_decref(msg);
}


static json_t *
ngx_game_mm_members(u_char *list, size_t len)
{
    u_char     *p, *last;
    json_t     *a;
    ngx_str_t   id;

    a = json_array();
    if (a == NULL) {
        return NULL;
    }

    p = list;
    last = list + len;

    while (ngx_game_mm_next_id(&p, last, &id)) {
        json_array_append_new(a, json_stringn((char *) id.data, id.len));
    }

    return a;
}


/*
 * The core's handler of the client message {"type":"party.chat",
 * "text":"..."}: 1 to game_mm_party_chat_max characters, to every member
 * of the sender's party, the sender too (who learns it went out).  The
 * rate is the realtime module's, per socket.  Not in a party: the sender
 * is told so, by a push, since the answer comes after Redis's.
 */

ngx_int_t
ngx_game_mm_party_chat(void *data, ngx_str_t *player, json_t *msg,
    const char **code, const char **message)
{
    json_t                   *text;
    ngx_game_mm_push_t       *pu;
    ngx_game_redis_args_t     a;
    ngx_game_mm_main_conf_t  *mmcf = data;

    text = json_object_get(msg, "text");

    if (!json_is_string(text) || json_string_length(text) == 0) {
        *code = "invalid_message";
        *message = "party.chat needs a \"text\"";
        return NGX_GAME_REFUSED;
    }

    if (game_utf8_chars(json_string_value(text), json_string_length(text))
        > mmcf->chat_max)
    {
        *code = "message_too_long";
        *message = "a chat line is too long";
        return NGX_GAME_REFUSED;
    }

    pu = ngx_game_mm_push_create(mmcf);
    if (pu == NULL) {
        return NGX_ERROR;
    }

    pu->player.data = ngx_pstrdup(pu->pool, player);
    pu->player.len = player->len;
    pu->text.len = json_string_length(text);
    pu->text.data = ngx_pnalloc(pu->pool, pu->text.len);

    if (pu->player.data == NULL || pu->text.data == NULL) {
        ngx_destroy_pool(pu->pool);
        return NGX_ERROR;
    }

    ngx_memcpy(pu->text.data, json_string_value(text), pu->text.len);

    ngx_memzero(&a, sizeof(ngx_game_redis_args_t));
    ngx_game_redis_arg_str(&a, &mmcf->prefix);
    ngx_game_redis_arg_str(&a, &pu->player);

    return ngx_game_mm_push_script(pu, &ngx_game_mm_lua_party_of,
                                   ngx_game_mm_chat_members, &a);
}


/* {'OK', party id, leader, members} | {'NONE'} */
static void
ngx_game_mm_chat_members(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply)
{
    u_char              *p, *last;
    json_t              *msg;
    ngx_str_t            id;
    ngx_time_t          *tp;
    ngx_game_mm_push_t  *pu = cmd->data;

    if (rc != NGX_OK) {
        msg = json_pack("{s:s,s:s,s:s,s:s}", "type", "error",
                        "code", "unavailable", "message",
                        "the chat line could not be sent; try again",
                        "in_reply_to", "party.chat");

    } else if (!ngx_game_mm_reply_is(reply, "OK") || reply->elements != 4) {
        msg = json_pack("{s:s,s:s,s:s,s:s}", "type", "error",
                        "code", "no_party", "message",
                        "the player is not in a party",
                        "in_reply_to", "party.chat");

    } else {
        tp = ngx_timeofday();

        msg = json_pack("{s:s,s:s,s:s#,s:s#,s:s#,s:I}",
                        "type", "party", "event", "chat",
                        "party_id", reply->element[1]->str,
                        (int) reply->element[1]->len,
                        "from", (char *) pu->player.data,
                        (int) pu->player.len,
                        "text", (char *) pu->text.data, (int) pu->text.len,
                        "at", (json_int_t) tp->sec * 1000 + tp->msec);

        if (msg) {
            p = (u_char *) reply->element[3]->str;
            last = p + reply->element[3]->len;

            while (ngx_game_mm_next_id(&p, last, &id)) {
                (void) ngx_game_push(pu->mmcf->redis, &id, msg);
            }

            json_decref(msg);
        }

        ngx_destroy_pool(pu->pool);
        return;
    }

    if (msg) {
        (void) ngx_game_push(pu->mmcf->redis, &pu->player, msg);
        json_decref(msg);
    }

    ngx_destroy_pool(pu->pool);
}


/* memory of its own, for a read that outlives whatever caused it */
static ngx_game_mm_push_t *
ngx_game_mm_push_create(ngx_game_mm_main_conf_t *mmcf)
{
    ngx_pool_t          *pool;
    ngx_game_mm_push_t  *pu;

    if (mmcf->redis == NULL) {
        return NULL;
    }

    pool = ngx_create_pool(1024, ngx_cycle->log);
    if (pool == NULL) {
        return NULL;
    }

    pu = ngx_pcalloc(pool, sizeof(ngx_game_mm_push_t));
    if (pu == NULL) {
        ngx_destroy_pool(pool);
        return NULL;
    }

    pu->mmcf = mmcf;
    pu->pool = pool;

    return pu;
}


/* NGX_OK: the handler will run and free the memory; else it is freed */
static ngx_int_t
ngx_game_mm_push_script(ngx_game_mm_push_t *pu,
    ngx_game_redis_script_t *script, ngx_game_redis_handler_pt handler,
    ngx_game_redis_args_t *a)
{
    ngx_game_redis_cmd_t  *cmd;

    if (a->overflow) {
        ngx_destroy_pool(pu->pool);
        return NGX_ERROR;
    }

    cmd = ngx_game_redis_cmd_create(pu->pool, ngx_cycle->log);
    if (cmd == NULL) {
        ngx_destroy_pool(pu->pool);
        return NGX_ERROR;
    }

    cmd->handler = handler;
    cmd->data = pu;

    if (ngx_game_redis_eval(pu->mmcf->redis, cmd, script, 0, a->argc,
                            a->argv, a->argvlen)
        != NGX_AGAIN)
    {
        ngx_destroy_pool(pu->pool);
        return NGX_GAME_UNAVAILABLE;
    }

    return NGX_OK;
}
