
/*
 * Failed logins back off per account: "threshold" attempts within the
 * window, then the account is locked for "delay", doubling with every
 * further attempt up to "max".  A locked account gets 429 with the
 * seconds left in Retry-After, before any password is looked at.
 *
 * Every attempt is counted before its password is hashed, in one script
 * that also checks the lock (reserve): thirty guesses sent at once get
 * "threshold" hashes between them, not thirty.  The attempt that reaches
 * the threshold sets the lock and goes on; a success clears the count,
 * unless another attempt set the lock meanwhile: then the lock wins, and
 * the success is refused like any attempt during a lock (succeed).  So
 * one account has at most "threshold" logins in flight at a time.
 *
 * The key is a keyed hash (the email blind-index key) of the account's id
 * once the login name is found, so the username and the address of an
 * account share one counter; of the name as typed, lower-cased, when no
 * account has it, so that unknown names back off exactly like known ones
 * and Redis holds no names, addresses or ids.
 *
 *   game:auth:fail:<hmac>   attempts in the current window
 *   game:auth:lock:<hmac>   present while locked; its value is the attempt
 *                           that set it
 */

#include "ngx_game_auth.h"


static ngx_int_t ngx_game_auth_backoff_keys(ngx_game_auth_ctx_t *ctx,
    char *fail, char *lock);
static void ngx_game_auth_backoff_reserved(ngx_game_redis_cmd_t *cmd,
    ngx_int_t rc, redisReply *reply);
static void ngx_game_auth_backoff_succeeded(ngx_game_redis_cmd_t *cmd,
    ngx_int_t rc, redisReply *reply);
static void ngx_game_auth_backoff_unavailable(ngx_game_auth_ctx_t *ctx,
    ngx_int_t rc);
static void ngx_game_auth_backoff_locked(ngx_game_auth_ctx_t *ctx,
    long long ms);
static ngx_int_t ngx_game_auth_backoff_eval(ngx_game_auth_ctx_t *ctx,
    ngx_game_redis_script_t *script, ngx_game_redis_handler_pt handler,
    ngx_game_redis_args_t *a, int nkeys);


/* {attempt, 0} when reserved, {0, ms left} when locked */
static char  ngx_game_auth_reserve_lua[] =
    "local left = redis.call('PTTL', KEYS[2]) "
    "if left > 0 then return {0, left} end "
    "local n = redis.call('INCR', KEYS[1]) "
    "redis.call('EXPIRE', KEYS[1], ARGV[3]) "
    "local over = n - tonumber(ARGV[1]) "
    "if over >= 0 then "
    "  local d = math.min(tonumber(ARGV[2]) * 2 ^ math.min(over, 30), "
    "                     tonumber(ARGV[3])) "
    "  redis.call('SET', KEYS[2], n, 'EX', math.floor(d)) "
    "end "
    "return {n, 0}";

/* 0 when cleared (with the cached profile), else the ms left on a lock
 * that another attempt set */
static char  ngx_game_auth_succeed_lua[] =
    "local by = redis.call('GET', KEYS[2]) "
    "if by and by ~= ARGV[1] then "
    "  return math.max(redis.call('PTTL', KEYS[2]), 1000) "
    "end "
    "redis.call('DEL', KEYS[1], KEYS[2], KEYS[3]) "
    "return 0";


static ngx_game_redis_script_t  ngx_game_auth_reserve_script = {
    ngx_game_auth_reserve_lua, sizeof(ngx_game_auth_reserve_lua) - 1, ""
};

static ngx_game_redis_script_t  ngx_game_auth_succeed_script = {
    ngx_game_auth_succeed_lua, sizeof(ngx_game_auth_succeed_lua) - 1, ""
};


void
ngx_game_auth_backoff_init(void)
{
    ngx_game_redis_script_init(&ngx_game_auth_reserve_script);
    ngx_game_redis_script_init(&ngx_game_auth_succeed_script);
}


/* whose counter: the account's when the name was found, else the name's */

static ngx_int_t
ngx_game_auth_backoff_keys(ngx_game_auth_ctx_t *ctx, char *fail, char *lock)
{
    char       *ix;
    ngx_str_t   id;

    if (ctx->backoff_key[0] == '\0') {
        if (ctx->found) {
            id.data = (u_char *) ctx->new_id;
            id.len = GAME_UUID_LEN;
            ix = ngx_game_auth_blind_index(ctx->amcf, ctx->request->pool,
                                           "account", &id);

        } else {
            ix = ngx_game_auth_blind_index(ctx->amcf, ctx->request->pool,
                                           "login", &ctx->login);
        }

        if (ix == NULL) {
            return NGX_ERROR;
        }

        /* without the "\x" of a bytea literal */
        ngx_cpystrn((u_char *) ctx->backoff_key, (u_char *) ix + 2,
                    sizeof(ctx->backoff_key));
    }

    ngx_sprintf((u_char *) fail, "game:auth:fail:%s%Z", ctx->backoff_key);
    ngx_sprintf((u_char *) lock, "game:auth:lock:%s%Z", ctx->backoff_key);

    return NGX_OK;
}


/* count this attempt, or answer 429 when the account is locked */

void
ngx_game_auth_backoff_reserve(ngx_game_auth_ctx_t *ctx,
    ngx_game_auth_step_pt next)
{
    char                        fail[96], lock[96];
    u_char                      th[NGX_INT_T_LEN + 1];
    u_char                      delay[NGX_TIME_T_LEN + 1];
    u_char                      max[NGX_TIME_T_LEN + 1];
    ngx_game_redis_args_t       a;
    ngx_game_auth_main_conf_t  *amcf = ctx->amcf;

    if (ngx_game_auth_backoff_keys(ctx, fail, lock) != NGX_OK) {
        ngx_game_auth_finalize(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    *ngx_sprintf(th, "%ui", amcf->backoff_threshold) = '\0';
    *ngx_sprintf(delay, "%T", amcf->backoff_delay) = '\0';
    *ngx_sprintf(max, "%T", amcf->backoff_max) = '\0';

    ngx_memzero(&a, sizeof(a));
    ngx_game_redis_arg_cstr(&a, fail);
    ngx_game_redis_arg_cstr(&a, lock);
    ngx_game_redis_arg_cstr(&a, (char *) th);
    ngx_game_redis_arg_cstr(&a, (char *) delay);
    ngx_game_redis_arg_cstr(&a, (char *) max);

    ctx->hash_done = next;

    (void) ngx_game_auth_backoff_eval(ctx, &ngx_game_auth_reserve_script,
                                      ngx_game_auth_backoff_reserved, &a, 2);
}


static void
ngx_game_auth_backoff_reserved(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply)
{
    ngx_game_auth_ctx_t  *ctx = cmd->data;

    /* fail closed: without the counter there is no brute-force limit */
    if (rc != NGX_OK || reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements != 2
        || reply->element[0]->type != REDIS_REPLY_INTEGER
        || reply->element[1]->type != REDIS_REPLY_INTEGER)
    {
        ngx_game_auth_backoff_unavailable(ctx, rc);
        return;
    }

    if (reply->element[0]->integer == 0) {
        ngx_game_auth_backoff_locked(ctx, reply->element[1]->integer);
        return;
    }

    ngx_sprintf((u_char *) ctx->backoff_n, "%L%Z",
                (int64_t) reply->element[0]->integer);

    ctx->hash_done(ctx);
}


/* the one 401 every failure gets; the attempt was counted already */

void
ngx_game_auth_backoff_fail(ngx_game_auth_ctx_t *ctx)
{
    ngx_game_auth_finalize(ctx,
        ngx_game_http_send_error(ctx->request, NGX_HTTP_UNAUTHORIZED,
                                 "invalid_credentials",
                                 "wrong login or password"));
}


/*
 * The password (and the second factor) were right: check the lock again
 * and forget the attempts, and the cached profile whose last_login is
 * about to change; "next" issues the tokens.
 */

void
ngx_game_auth_backoff_succeed(ngx_game_auth_ctx_t *ctx,
    ngx_game_auth_step_pt next)
{
    char                    fail[96], lock[96], profile[64];
    ngx_game_redis_args_t   a;

    if (ngx_game_auth_backoff_keys(ctx, fail, lock) != NGX_OK) {
        ngx_game_auth_finalize(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_sprintf((u_char *) profile, "game:profile:%s%Z", ctx->new_id);

    ngx_memzero(&a, sizeof(a));
    ngx_game_redis_arg_cstr(&a, fail);
    ngx_game_redis_arg_cstr(&a, lock);
    ngx_game_redis_arg_cstr(&a, profile);
    ngx_game_redis_arg_cstr(&a, ctx->backoff_n);

    ctx->hash_done = next;

    (void) ngx_game_auth_backoff_eval(ctx, &ngx_game_auth_succeed_script,
                                      ngx_game_auth_backoff_succeeded, &a, 3);
}


static void
ngx_game_auth_backoff_succeeded(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply)
{
    ngx_game_auth_ctx_t  *ctx = cmd->data;

    if (rc != NGX_OK || reply == NULL || reply->type != REDIS_REPLY_INTEGER) {
        ngx_game_auth_backoff_unavailable(ctx, rc);
        return;
    }

    if (reply->integer > 0) {
        ngx_game_auth_backoff_locked(ctx, reply->integer);
        return;
    }

    ctx->hash_done(ctx);
}


static void
ngx_game_auth_backoff_unavailable(ngx_game_auth_ctx_t *ctx, ngx_int_t rc)
{
    ngx_game_auth_finalize(ctx,
        ngx_game_http_send_outcome(ctx->request,
                                   rc == NGX_OK ? NGX_GAME_UNAVAILABLE : rc,
                                   "the session store"));
}


static void
ngx_game_auth_backoff_locked(ngx_game_auth_ctx_t *ctx, long long ms)
{
    ngx_game_auth_finalize(ctx,
        ngx_game_auth_send_retry(ctx->request, (time_t) ((ms + 999) / 1000),
                                 "too_many_attempts",
                                 "too many failed logins for this account, "
                                 "retry later"));
}


static ngx_int_t
ngx_game_auth_backoff_eval(ngx_game_auth_ctx_t *ctx,
    ngx_game_redis_script_t *script, ngx_game_redis_handler_pt handler,
    ngx_game_redis_args_t *a, int nkeys)
{
    ngx_int_t              rc;
    ngx_game_redis_cmd_t  *cmd;

    cmd = ngx_game_redis_request_cmd(ctx->request);
    if (cmd == NULL) {
        ngx_game_auth_finalize(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NGX_ERROR;
    }

    cmd->handler = handler;
    cmd->data = ctx;

    rc = ngx_game_redis_eval(ctx->amcf->redis, cmd, script, nkeys, a->argc,
                             a->argv, a->argvlen);
    if (rc != NGX_AGAIN) {
        handler(cmd, rc == NGX_ERROR ? NGX_GAME_UNAVAILABLE : rc, NULL);
    }

    return NGX_OK;
}
