
/*
 * Pushing messages to players, and whether they are online.
 * ngx_game_core.h has the contract; this file is the publishing side,
 * which any service uses, and the registry through which services take
 * part in the realtime module's connections without knowing it: what a
 * connecting player is told at once (resume), and the client messages a
 * service answers (party.chat: the matchmaker's).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_game_core_internal.h"


typedef struct {
    ngx_game_push_resume_pt     handler;
    void                       *data;
} ngx_game_push_resume_t;


typedef struct {
    ngx_str_t                   type;
    ngx_game_push_message_pt    handler;
    void                       *data;
} ngx_game_push_handler_t;


static void ngx_game_push_sent(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply);


/*
 * PUBLISH the message on the player's channel ("player" NULL: everyone's)
 * with "cmd", whose handler hears how many subscriptions (workers) took
 * it.  The message is serialised here; hiredis copies the command at once,
 * so nothing of the caller's has to outlive the call.
 */

ngx_int_t
ngx_game_push_run(ngx_game_redis_pool_t *rp, ngx_game_redis_cmd_t *cmd,
    ngx_str_t *player, json_t *msg)
{
    char       *text;
    u_char      channel[sizeof(NGX_GAME_PUSH_PREFIX) + GAME_UUID_LEN];
    ngx_int_t   rc;
    const char *argv[3];
    size_t      argvlen[3];

    if (player) {
        if (player->len != GAME_UUID_LEN) {
            return NGX_ERROR;
        }

        argvlen[1] = ngx_cpymem(ngx_cpymem(channel, NGX_GAME_PUSH_PREFIX,
                                           sizeof(NGX_GAME_PUSH_PREFIX) - 1),
                                player->data, player->len)
                     - channel;
        argv[1] = (char *) channel;

    } else {
        argv[1] = NGX_GAME_PUSH_ALL;
        argvlen[1] = sizeof(NGX_GAME_PUSH_ALL) - 1;
    }

    text = json_dumps(msg, JSON_COMPACT);
    if (text == NULL) {
        return NGX_ERROR;
    }

    argv[0] = "PUBLISH";
    argvlen[0] = 7;
    argv[2] = text;
    argvlen[2] = ngx_strlen(text);

    rc = ngx_game_redis_cmd_run(rp, cmd, 3, argv, argvlen);
    free(text);

    return rc;
}


/*
 * Fire and forget: the command has memory of its own, since it outlives
 * whatever request or event made the message.  A message that cannot be
 * sent is logged here, at warn: the player misses it, and reads the truth
 * again when they next connect.
 */

ngx_int_t
ngx_game_push(ngx_game_redis_pool_t *rp, ngx_str_t *player, json_t *msg)
{
    ngx_int_t              rc;
    ngx_pool_t            *pool;
    ngx_game_redis_cmd_t  *cmd;

    pool = ngx_create_pool(512, ngx_cycle->log);
    if (pool == NULL) {
        return NGX_ERROR;
    }

    cmd = ngx_game_redis_cmd_create(pool, ngx_cycle->log);
    if (cmd == NULL) {
        ngx_destroy_pool(pool);
        return NGX_ERROR;
    }

    cmd->handler = ngx_game_push_sent;
    cmd->data = pool;

    rc = ngx_game_push_run(rp, cmd, player, msg);

    if (rc != NGX_AGAIN) {
        ngx_destroy_pool(pool);

        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "game: a push to %s could not be sent: Redis pool "
                      "\"%V\" is unavailable",
                      player ? "a player" : "everyone",
                      ngx_game_redis_pool_name(rp));
        return rc;
    }

    return NGX_OK;
}


static void
ngx_game_push_sent(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply)
{
    if (rc != NGX_OK) {
        ngx_log_error(NGX_LOG_WARN, cmd->log, 0,
                      "game: a push was lost: Redis did not take it");
    }

    ngx_destroy_pool(cmd->data);
}


/*
 * Presence: PUBSUB NUMSUB of the players' channels, with "cmd" (whose
 * memory holds the channel names until the command is formatted).  The
 * reply is [channel, count, channel, count, ...] in the order asked;
 * ngx_game_presence_online() reads the i-th player's.
 */

ngx_int_t
ngx_game_presence_query(ngx_game_redis_pool_t *rp, ngx_game_redis_cmd_t *cmd,
    ngx_str_t *players, ngx_uint_t n)
{
    u_char                 *p;
    ngx_uint_t              i;
    ngx_game_redis_args_t   a;

    if (n > NGX_GAME_REDIS_MAX_ARGS - 2) {
        return NGX_ERROR;
    }

    ngx_memzero(&a, sizeof(ngx_game_redis_args_t));
    ngx_game_redis_arg_lit(&a, "PUBSUB");
    ngx_game_redis_arg_lit(&a, "NUMSUB");

    for (i = 0; i < n; i++) {
        p = ngx_pnalloc(cmd->mem, sizeof(NGX_GAME_PUSH_PREFIX) + players[i].len);
        if (p == NULL) {
            return NGX_ERROR;
        }

        ngx_game_redis_arg(&a, p,
                           ngx_cpymem(ngx_cpymem(p, NGX_GAME_PUSH_PREFIX,
                                           sizeof(NGX_GAME_PUSH_PREFIX) - 1),
                                      players[i].data, players[i].len)
                           - p);
    }

    return ngx_game_redis_cmd_run(rp, cmd, a.argc, a.argv, a.argvlen);
}


ngx_int_t
ngx_game_presence_online(redisReply *reply, ngx_uint_t i)
{
    redisReply  *count;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || 2 * i + 1 >= reply->elements)
    {
        return NGX_ERROR;
    }

    count = reply->element[2 * i + 1];

    if (count->type != REDIS_REPLY_INTEGER) {
        return NGX_ERROR;
    }

    return count->integer > 0;
}


/* the registry */

ngx_int_t
ngx_game_push_hooks_init(ngx_pool_t *pool, ngx_game_push_hooks_t *hooks)
{
    if (ngx_array_init(&hooks->resume, pool, 2,
                       sizeof(ngx_game_push_resume_t))
        != NGX_OK
        || ngx_array_init(&hooks->messages, pool, 2,
                          sizeof(ngx_game_push_handler_t))
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


ngx_int_t
ngx_game_push_on_resume(ngx_conf_t *cf, ngx_game_push_resume_pt handler,
    void *data)
{
    ngx_game_push_resume_t     *r;
    ngx_game_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_game_core_module);

    r = ngx_array_push(&cmcf->push.resume);
    if (r == NULL) {
        return NGX_ERROR;
    }

    r->handler = handler;
    r->data = data;

    return NGX_OK;
}


ngx_int_t
ngx_game_push_on_message(ngx_conf_t *cf, const char *type,
    ngx_game_push_message_pt handler, void *data)
{
    ngx_uint_t                  i;
    ngx_game_push_handler_t    *h;
    ngx_game_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_game_core_module);

    h = cmcf->push.messages.elts;
    for (i = 0; i < cmcf->push.messages.nelts; i++) {
        if (ngx_strcmp(h[i].type.data, type) == 0) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "two services answer client messages of type "
                          "\"%s\"", type);
            return NGX_ERROR;
        }
    }

    h = ngx_array_push(&cmcf->push.messages);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->type.data = (u_char *) type;
    h->type.len = ngx_strlen(type);
    h->handler = handler;
    h->data = data;

    return NGX_OK;
}


ngx_game_push_hooks_t *
ngx_game_push_hooks(ngx_conf_t *cf)
{
    ngx_game_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_game_core_module);

    return &cmcf->push;
}


void
ngx_game_push_resume(ngx_game_push_hooks_t *hooks, ngx_str_t *player)
{
    ngx_uint_t               i;
    ngx_game_push_resume_t  *r;

    r = hooks->resume.elts;

    for (i = 0; i < hooks->resume.nelts; i++) {
        r[i].handler(r[i].data, player);
    }
}


ngx_int_t
ngx_game_push_message(ngx_game_push_hooks_t *hooks, ngx_str_t *type,
    ngx_str_t *player, json_t *msg, const char **code, const char **message)
{
    ngx_uint_t                i;
    ngx_game_push_handler_t  *h;

    h = hooks->messages.elts;

    for (i = 0; i < hooks->messages.nelts; i++) {
        if (h[i].type.len == type->len
            && ngx_strncmp(h[i].type.data, type->data, type->len) == 0)
        {
            return h[i].handler(h[i].data, player, msg, code, message);
        }
    }

    return NGX_DECLINED;
}
