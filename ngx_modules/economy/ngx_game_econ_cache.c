
/*
 * The inventory cache: GET /inventory/{id} answers from Redis, where each
 * player's inventory sits as its two documents (the owner's, the public
 * loadout), for game_econ_inventory_cache_ttl.
 *
 * A cached document is never older than the last write that reached
 * Redis.  Every write that changes an inventory (a purchase, an equip, a
 * grant of an item) bumps the player's version and deletes the documents,
 * after its transaction committed and before its answer leaves.  A read
 * that misses takes the version it saw to PostgreSQL and stores what it
 * read only if the version did not move meanwhile: a read that raced a
 * write (and may have read before the commit) caches nothing.
 *
 * Keys (prefix "econ:"): inv:<view>:<player> (the document), invv:<player>
 * (the version).  Redis down: reads go to PostgreSQL, writes answer as
 * usual and log that the cache may be stale until its ttl.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_game_econ.h"


/* ARGV: prefix, view, player -> {'HIT', json} | {'MISS', version} */
static ngx_game_redis_script_t  ngx_game_econ_cache_get_lua = {
    "local d = redis.call('GET', ARGV[1] .. 'inv:' .. ARGV[2] .. ':'\n"
    "                     .. ARGV[3])\n"
    "if d then return { 'HIT', d } end\n"
    "return { 'MISS', redis.call('GET', ARGV[1] .. 'invv:' .. ARGV[3])\n"
    "                 or '0' }\n",
    0, ""
};

/* ARGV: prefix, view, player, version, json, ttl s -> 1 stored | 0 */
static ngx_game_redis_script_t  ngx_game_econ_cache_put_lua = {
    "local v = redis.call('GET', ARGV[1] .. 'invv:' .. ARGV[3]) or '0'\n"
    "if v ~= ARGV[4] then return 0 end\n"
    "redis.call('SET', ARGV[1] .. 'inv:' .. ARGV[2] .. ':' .. ARGV[3],\n"
    "           ARGV[5], 'EX', ARGV[6])\n"
    "return 1\n",
    0, ""
};

/* ARGV: prefix, player -> the new version */
static ngx_game_redis_script_t  ngx_game_econ_cache_bump_lua = {
    "local n = redis.call('INCR', ARGV[1] .. 'invv:' .. ARGV[2])\n"
    "redis.call('EXPIRE', ARGV[1] .. 'invv:' .. ARGV[2], 86400)\n"
    "redis.call('DEL', ARGV[1] .. 'inv:own:' .. ARGV[2],\n"
    "           ARGV[1] .. 'inv:pub:' .. ARGV[2])\n"
    "return n\n",
    0, ""
};


static void ngx_game_econ_cache_got(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply);
static void ngx_game_econ_cache_stored(ngx_game_redis_cmd_t *cmd,
    ngx_int_t rc, redisReply *reply);
static void ngx_game_econ_cache_bumped(ngx_game_redis_cmd_t *cmd,
    ngx_int_t rc, redisReply *reply);
static ngx_int_t ngx_game_econ_cache_eval(ngx_http_request_t *r,
    ngx_game_redis_script_t *script, ngx_game_redis_handler_pt handler,
    ngx_game_redis_args_t *a);


void
ngx_game_econ_cache_init(void)
{
    ngx_game_redis_script_t  *s[] = { &ngx_game_econ_cache_get_lua,
                                      &ngx_game_econ_cache_put_lua,
                                      &ngx_game_econ_cache_bump_lua };
    ngx_uint_t                i;

    for (i = 0; i < sizeof(s) / sizeof(s[0]); i++) {
        if (s[i]->len == 0) {
            s[i]->len = ngx_strlen(s[i]->text);
            ngx_game_redis_script_init(s[i]);
        }
    }
}


/*
 * Look the document up; "done" is called with it (a hit), or with an
 * empty string and the version to hand to ngx_game_econ_cache_put() (a
 * miss, or Redis away: version "" then, and nothing will be stored).
 */

ngx_int_t
ngx_game_econ_cache_get(ngx_http_request_t *r, ngx_game_econ_cached_t *c)
{
    ngx_game_redis_args_t       a;
    ngx_game_econ_main_conf_t  *emcf;

    emcf = ngx_http_get_module_main_conf(r, ngx_game_econ_module);

    if (emcf->redis == NULL || emcf->inventory_ttl == 0) {
        return NGX_DECLINED;
    }

    ngx_memzero(&a, sizeof(ngx_game_redis_args_t));
    ngx_game_redis_arg_lit(&a, "econ:");
    ngx_game_redis_arg_cstr(&a, c->view);
    ngx_game_redis_arg_str(&a, &c->player);

    return ngx_game_econ_cache_eval(r, &ngx_game_econ_cache_get_lua,
                                    ngx_game_econ_cache_got, &a);
}


static void
ngx_game_econ_cache_got(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply)
{
    ngx_str_t                *v;
    redisReply               *e;
    ngx_http_request_t       *r = cmd->data;
    ngx_game_econ_cached_t   *c;

    c = ngx_http_get_module_ctx(r, ngx_game_econ_module);

    ngx_str_null(&c->json);
    ngx_str_null(&c->version);

    if (rc == NGX_OK && reply->type == REDIS_REPLY_ARRAY
        && reply->elements == 2
        && reply->element[0]->type == REDIS_REPLY_STRING
        && reply->element[1]->type == REDIS_REPLY_STRING)
    {
        e = reply->element[1];
        v = (reply->element[0]->str[0] == 'H') ? &c->json : &c->version;

        v->data = ngx_pnalloc(r->pool, e->len + 1);
        if (v->data) {
            *ngx_cpymem(v->data, e->str, e->len) = '\0';
            v->len = e->len;
        }
    }

    c->done(r, c);
}


/* store a document read from PostgreSQL under the version seen before */
void
ngx_game_econ_cache_put(ngx_http_request_t *r, ngx_game_econ_cached_t *c,
    ngx_str_t *json)
{
    u_char                      ttl[NGX_INT_T_LEN];
    ngx_pool_t                 *pool;
    ngx_game_redis_cmd_t       *cmd;
    ngx_game_redis_args_t       a;
    ngx_game_econ_main_conf_t  *emcf;

    emcf = ngx_http_get_module_main_conf(r, ngx_game_econ_module);

    if (c->version.len == 0) {
        return;
    }

    ngx_memzero(&a, sizeof(ngx_game_redis_args_t));
    ngx_game_redis_arg_lit(&a, "econ:");
    ngx_game_redis_arg_cstr(&a, c->view);
    ngx_game_redis_arg_str(&a, &c->player);
    ngx_game_redis_arg_str(&a, &c->version);
    ngx_game_redis_arg_str(&a, json);
    ngx_game_redis_arg(&a, ttl,
                       ngx_sprintf(ttl, "%T", emcf->inventory_ttl) - ttl);

    /* nobody waits for it, but it must outlive the request, which ends
     * with its answer: a Redis that lost its scripts answers NOSCRIPT, and
     * the core sends the command again from its memory */
    pool = ngx_create_pool(512, ngx_cycle->log);
    if (pool == NULL) {
        return;
    }

    cmd = ngx_game_redis_cmd_create(pool, ngx_cycle->log);
    if (cmd == NULL) {
        ngx_destroy_pool(pool);
        return;
    }

    cmd->handler = ngx_game_econ_cache_stored;
    cmd->data = pool;

    if (ngx_game_redis_eval(emcf->redis, cmd, &ngx_game_econ_cache_put_lua,
                            0, a.argc, a.argv, a.argvlen)
        != NGX_AGAIN)
    {
        ngx_destroy_pool(pool);
    }
}


static void
ngx_game_econ_cache_stored(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply)
{
    ngx_destroy_pool(cmd->data);
}


/*
 * A write changed "player"'s inventory and committed: bump its version
 * and drop its documents, then send "answer".  The answer waits for Redis
 * so that the client's next read cannot see the old document.
 */

ngx_int_t
ngx_game_econ_cache_bump(ngx_http_request_t *r, ngx_str_t *player,
    ngx_game_econ_answer_t *answer)
{
    ngx_game_redis_args_t       a;
    ngx_game_econ_answer_t     *keep;
    ngx_game_econ_main_conf_t  *emcf;

    emcf = ngx_http_get_module_main_conf(r, ngx_game_econ_module);

    if (emcf->redis == NULL || emcf->inventory_ttl == 0) {
        return ngx_game_econ_send(r, answer);
    }

    keep = ngx_palloc(r->pool, sizeof(ngx_game_econ_answer_t));
    if (keep == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    *keep = *answer;
    r->main->count++;
    ngx_http_set_ctx(r, keep, ngx_game_econ_module);

    ngx_memzero(&a, sizeof(ngx_game_redis_args_t));
    ngx_game_redis_arg_lit(&a, "econ:");
    ngx_game_redis_arg_str(&a, player);

    if (ngx_game_econ_cache_eval(r, &ngx_game_econ_cache_bump_lua,
                                 ngx_game_econ_cache_bumped, &a)
        != NGX_AGAIN)
    {
        r->main->count--;
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "game econ: Redis is away: an inventory may be served "
                      "stale from its cache until its ttl");
        return ngx_game_econ_send(r, answer);
    }

    return NGX_DONE;
}


static void
ngx_game_econ_cache_bumped(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply)
{
    ngx_http_request_t      *r = cmd->data;
    ngx_game_econ_answer_t  *answer;

    if (rc != NGX_OK) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "game econ: an inventory's cache could not be "
                      "dropped; it may be served stale until its ttl");
    }

    answer = ngx_http_get_module_ctx(r, ngx_game_econ_module);

    ngx_http_finalize_request(r, ngx_game_econ_send(r, answer));
}


static ngx_int_t
ngx_game_econ_cache_eval(ngx_http_request_t *r,
    ngx_game_redis_script_t *script, ngx_game_redis_handler_pt handler,
    ngx_game_redis_args_t *a)
{
    ngx_game_redis_cmd_t       *cmd;
    ngx_game_econ_main_conf_t  *emcf;

    emcf = ngx_http_get_module_main_conf(r, ngx_game_econ_module);

    cmd = ngx_game_redis_request_cmd(r);
    if (cmd == NULL) {
        return NGX_ERROR;
    }

    cmd->handler = handler;
    cmd->data = r;

    return ngx_game_redis_eval(emcf->redis, cmd, script, 0, a->argc, a->argv,
                               a->argvlen);
}
