
/*
 * Failed logins back off per account name: after "threshold" failures
 * within the window the name is locked for "delay", doubling with every
 * further failure up to "max".  A locked name gets 429 with the seconds
 * left in Retry-After before any password is even looked at.
 *
 * The key is a keyed hash of the name as typed, so Redis holds no
 * usernames or addresses, and unknown names back off exactly like known
 * ones (the lock itself must not reveal which accounts exist).
 *
 *   game:auth:fail:<hmac>   failures in the current window (INCR, EXPIRE)
 *   game:auth:lock:<hmac>   present while locked (SET EX)
 */

#include "ngx_game_auth.h"


static void ngx_game_auth_backoff_checked(ngx_game_redis_cmd_t *cmd,
    ngx_int_t rc, redisReply *reply);
static void ngx_game_auth_backoff_failed(ngx_game_redis_cmd_t *cmd,
    ngx_int_t rc, redisReply *reply);
static void ngx_game_auth_backoff_cleared(ngx_game_redis_cmd_t *cmd,
    ngx_int_t rc, redisReply *reply);
static void ngx_game_auth_backoff_answer(ngx_game_auth_ctx_t *ctx);
static ngx_int_t ngx_game_auth_backoff_keys(ngx_game_auth_ctx_t *ctx,
    char *fail, char *lock);


/* atomically count a failure and, past the threshold, set the lock */
static const char  ngx_game_auth_backoff_lua[] =
    "local n = redis.call('INCR', KEYS[1]) "
    "redis.call('EXPIRE', KEYS[1], ARGV[3]) "
    "local over = n - tonumber(ARGV[1]) "
    "if over < 0 then return 0 end "
    "local d = math.min(tonumber(ARGV[2]) * 2 ^ math.min(over, 30), "
    "                   tonumber(ARGV[3])) "
    "redis.call('SET', KEYS[2], '1', 'EX', math.floor(d)) "
    "return math.floor(d)";


static ngx_int_t
ngx_game_auth_backoff_keys(ngx_game_auth_ctx_t *ctx, char *fail, char *lock)
{
    char  *ix;

    if (ctx->backoff_key[0] == '\0') {
        ix = ngx_game_auth_blind_index(ctx->amcf, ctx->request->pool, "login",
                                       &ctx->login);
        if (ix == NULL) {
            return NGX_ERROR;
        }

        ngx_cpystrn((u_char *) ctx->backoff_key, (u_char *) ix + 2, 65);
    }

    ngx_sprintf((u_char *) fail, "game:auth:fail:%s%Z", ctx->backoff_key);
    ngx_sprintf((u_char *) lock, "game:auth:lock:%s%Z", ctx->backoff_key);

    return NGX_OK;
}


ngx_int_t
ngx_game_auth_backoff_check(ngx_game_auth_ctx_t *ctx,
    ngx_game_auth_step_pt next)
{
    char         fail[96], lock[96];
    const char  *argv[2];
    size_t       argvlen[2];

    if (ngx_game_auth_backoff_keys(ctx, fail, lock) != NGX_OK) {
        return NGX_ERROR;
    }

    ctx->hash_done = next;

    argv[0] = "PTTL";
    argv[1] = lock;
    argvlen[0] = 4;
    argvlen[1] = ngx_strlen(lock);

    return ngx_game_auth_redis(ctx, ngx_game_auth_backoff_checked, 2, argv,
                               argvlen);
}


static void
ngx_game_auth_backoff_checked(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply)
{
    ngx_game_auth_ctx_t  *ctx = cmd->data;

    time_t               left;
    ngx_http_request_t  *r = ctx->request;

    /* fail closed: without the counter there is no brute-force limit */
    if (rc != NGX_OK || reply == NULL || reply->type != REDIS_REPLY_INTEGER) {
        ngx_game_auth_finalize(ctx,
            ngx_game_http_send_outcome(r, rc == NGX_OK ? NGX_GAME_UNAVAILABLE
                                                       : rc,
                                       "the session store"));
        return;
    }

    if (reply->integer > 0) {
        left = (time_t) ((reply->integer + 999) / 1000);
        ngx_game_auth_finalize(ctx,
            ngx_game_auth_send_retry(r, left, "too_many_attempts",
                                     "too many failed logins for this "
                                     "account, retry later"));
        return;
    }

    ctx->hash_done(ctx);
}


/* count the failure, then answer the one 401 every failure gets */

void
ngx_game_auth_backoff_fail(ngx_game_auth_ctx_t *ctx)
{
    char                        fail[96], lock[96];
    u_char                      th[NGX_INT_T_LEN + 1], delay[NGX_INT_T_LEN + 1];
    u_char                      max[NGX_INT_T_LEN + 1];
    const char                 *argv[8];
    size_t                      argvlen[8];
    ngx_uint_t                  i;
    ngx_game_auth_main_conf_t  *amcf = ctx->amcf;

    if (ngx_game_auth_backoff_keys(ctx, fail, lock) != NGX_OK) {
        ngx_game_auth_backoff_answer(ctx);
        return;
    }

    ngx_sprintf(th, "%ui%Z", amcf->backoff_threshold);
    ngx_sprintf(delay, "%T%Z", amcf->backoff_delay);
    ngx_sprintf(max, "%T%Z", amcf->backoff_max);

    argv[0] = "EVAL";
    argv[1] = ngx_game_auth_backoff_lua;
    argv[2] = "2";
    argv[3] = fail;
    argv[4] = lock;
    argv[5] = (char *) th;
    argv[6] = (char *) delay;
    argv[7] = (char *) max;

    for (i = 0; i < 8; i++) {
        argvlen[i] = ngx_strlen(argv[i]);
    }

    if (ngx_game_auth_redis(ctx, ngx_game_auth_backoff_failed, 8, argv,
                            argvlen) != NGX_OK)
    {
        ngx_game_auth_backoff_answer(ctx);
    }
}


static void
ngx_game_auth_backoff_failed(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply)
{
    ngx_game_auth_ctx_t  *ctx = cmd->data;

    if (rc != NGX_OK || reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        ngx_log_error(NGX_LOG_WARN, ctx->request->connection->log, 0,
                      "game auth: failed login not counted (redis)");
    }

    ngx_game_auth_backoff_answer(ctx);
}


static void
ngx_game_auth_backoff_answer(ngx_game_auth_ctx_t *ctx)
{
    ngx_game_auth_finalize(ctx,
        ngx_game_http_send_error(ctx->request, NGX_HTTP_UNAUTHORIZED,
                                 "invalid_credentials",
                                 "wrong login or password"));
}


/* after a success: forget the failures, and the cached profile whose
 * last_login just changed */

void
ngx_game_auth_backoff_clear(ngx_game_auth_ctx_t *ctx, const char *player_id,
    ngx_game_auth_step_pt next)
{
    char         fail[96], lock[96], profile[64];
    const char  *argv[4];
    size_t       argvlen[4];

    ctx->hash_done = next;

    if (ngx_game_auth_backoff_keys(ctx, fail, lock) != NGX_OK) {
        next(ctx);
        return;
    }

    ngx_sprintf((u_char *) profile, "game:profile:%s%Z", player_id);

    argv[0] = "DEL";
    argv[1] = fail;
    argv[2] = lock;
    argv[3] = profile;
    argvlen[0] = 3;
    argvlen[1] = ngx_strlen(fail);
    argvlen[2] = ngx_strlen(lock);
    argvlen[3] = ngx_strlen(profile);

    if (ngx_game_auth_redis(ctx, ngx_game_auth_backoff_cleared, 4, argv,
                            argvlen) != NGX_OK)
    {
        next(ctx);
    }
}


static void
ngx_game_auth_backoff_cleared(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply)
{
    ngx_game_auth_ctx_t  *ctx = cmd->data;

    ctx->hash_done(ctx);
}
