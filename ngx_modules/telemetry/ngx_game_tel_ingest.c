
/*
 * POST /game/telemetry  {"events": [{event_id, type, ts, session_id?,
 *                                    payload}, ...]}
 *
 * A player's batch (the player is the token's: game_tel_player, never the
 * body).  Each event is checked against its type's schema
 * (game_tel_schema.c); the valid ones go on the stream <prefix>events as
 * one entry, and the answer names the others:
 *
 *   202 {"accepted": N, "rejected": [{"index": i, "code": "..."}]}
 *
 * One Redis script (below) decides and queues at once: the backlog's
 * limit first (503 + Retry-After: the writer is behind, nothing is lost
 * and nothing is counted against the player), then the player's token
 * bucket (429 + Retry-After: when the batch would fit), then XADD; and it
 * counts what it refused.  A batch whose every event is valid goes on the
 * stream as its body came, without being serialised again.
 *
 * A malformed batch is refused whole, as usual: 415 (not JSON), 413 (over
 * game_tel_max_bytes, or more than game_tel_max_events events), 400 (not
 * well-formed), 422 (no "events" array, or an empty one).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_game_tel.h"


typedef struct {
    ngx_str_t                   player;
    ngx_str_t                   raw;        /* the body as it came */
    ngx_uint_t                  accepted;
    json_t                     *rejected;   /* [{index, code}] */
} ngx_game_tel_ingest_ctx_t;


static ngx_int_t ngx_game_tel_ingest_raw(ngx_http_request_t *r,
    ngx_str_t *body, const char **code, const char **message);
static void ngx_game_tel_ingest_body(ngx_http_request_t *r, json_t *body);
static ngx_int_t ngx_game_tel_ingest_check(ngx_http_request_t *r,
    json_t *events, json_t *valid, json_t *rejected);
static ngx_int_t ngx_game_tel_ingest_queue(ngx_http_request_t *r,
    ngx_str_t *b, ngx_uint_t nvalid, ngx_uint_t nrejected);
static void ngx_game_tel_ingest_queued(ngx_game_redis_cmd_t *cmd,
    ngx_int_t rc, redisReply *reply);
static ngx_int_t ngx_game_tel_ingest_answer(ngx_http_request_t *r);
static void ngx_game_tel_ingest_count(ngx_http_request_t *r,
    ngx_uint_t rejected);
static void ngx_game_tel_ingest_counted(ngx_game_redis_cmd_t *cmd,
    ngx_int_t rc, redisReply *reply);
static void ngx_game_tel_ingest_cleanup(void *data);


/*
 * ARGV: stream, rate key, stats key, now (ms), valid events, rejected
 * events, rate (events/s, 0: none), burst, max backlog (entries), player,
 * body.  Reply: {'OK', id} | {'BUSY'} | {'RATE', ms until the batch fits}.
 *
 * The bucket holds "burst" tokens and refills at "rate" per second; a
 * batch takes one per valid event, all or nothing.  Its key lapses once
 * it would be full again, so idle players cost no memory.
 */
static ngx_game_redis_script_t  ngx_game_tel_ingest_lua = {
    "local n, bad = tonumber(ARGV[5]), tonumber(ARGV[6])\n"
    "if redis.call('XLEN', ARGV[1]) >= tonumber(ARGV[9]) then\n"
    "  redis.call('HINCRBY', ARGV[3], 'refused_backlog', n)\n"
    "  return {'BUSY'}\n"
    "end\n"
    "local rate, burst = tonumber(ARGV[7]), tonumber(ARGV[8])\n"
    "if rate > 0 then\n"
    "  local now = tonumber(ARGV[4])\n"
    "  local b = redis.call('HMGET', ARGV[2], 't', 'at')\n"
    "  local tokens = tonumber(b[1]) or burst\n"
    "  local at = tonumber(b[2]) or now\n"
    "  if now > at then\n"
    "    tokens = math.min(burst, tokens + (now - at) * rate / 1000)\n"
    "  else\n"
    "    now = at\n"
    "  end\n"
    "  if tokens < n then\n"
    "    redis.call('HINCRBY', ARGV[3], 'refused_rate', n)\n"
    "    return {'RATE', math.ceil((n - tokens) * 1000 / rate)}\n"
    "  end\n"
    "  redis.call('HSET', ARGV[2], 't', tostring(tokens - n), 'at', now)\n"
    "  redis.call('PEXPIRE', ARGV[2],\n"
    "             math.ceil(burst * 1000 / rate) + 1000)\n"
    "end\n"
    "local id = redis.call('XADD', ARGV[1], '*', 's', 'client',\n"
    "                      'p', ARGV[10], 'n', ARGV[5], 'b', ARGV[11])\n"
    "redis.call('HINCRBY', ARGV[3], 'accepted', n)\n"
    "if bad > 0 then redis.call('HINCRBY', ARGV[3], 'rejected', bad) end\n"
    "return {'OK', id}\n",
    0, ""
};


void
ngx_game_tel_ingest_init(void)
{
    if (ngx_game_tel_ingest_lua.len == 0) {
        ngx_game_tel_ingest_lua.len = ngx_strlen(ngx_game_tel_ingest_lua.text);
        ngx_game_redis_script_init(&ngx_game_tel_ingest_lua);
    }
}


ngx_int_t
ngx_game_tel_ingest(ngx_http_request_t *r)
{
    ngx_str_t                   v;
    ngx_game_tel_main_conf_t   *tmcf;
    ngx_game_tel_ingest_ctx_t  *ctx;

    tmcf = ngx_http_get_module_main_conf(r, ngx_game_tel_module);

    if (r->method != NGX_HTTP_POST) {
        return ngx_game_http_send_error(r, NGX_HTTP_NOT_ALLOWED,
                                        "method_not_allowed",
                                        "send telemetry with POST");
    }

    if (ngx_http_complex_value(r, tmcf->player, &v) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (!game_uuid_valid(v.data, v.len)) {
        return ngx_game_http_send_error(r, NGX_HTTP_UNAUTHORIZED,
                                        "unauthorized",
                                        "a signed-in player is required");
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_game_tel_ingest_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->player.data = ngx_pnalloc(r->pool, GAME_UUID_LEN + 1);
    if (ctx->player.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    *ngx_cpymem(ctx->player.data, v.data, GAME_UUID_LEN) = '\0';
    ctx->player.len = GAME_UUID_LEN;

    ngx_http_set_ctx(r, ctx, ngx_game_tel_module);

    return ngx_game_http_read_json_limited(r, tmcf->max_bytes,
                                           ngx_game_tel_ingest_raw,
                                           ngx_game_tel_ingest_body);
}


/* not a check: the raw body is kept, to be queued as it came */
static ngx_int_t
ngx_game_tel_ingest_raw(ngx_http_request_t *r, ngx_str_t *body,
    const char **code, const char **message)
{
    ngx_game_tel_ingest_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_game_tel_module);
    ctx->raw = *body;

    return NGX_OK;
}


static void
ngx_game_tel_ingest_body(ngx_http_request_t *r, json_t *body)
{
    char                       *text;
    json_t                     *events, *valid, *wrap;
    ngx_int_t                   rc;
    ngx_str_t                   b;
    ngx_uint_t                  nvalid, nrejected;
    ngx_pool_cleanup_t         *cln;
    ngx_game_tel_main_conf_t   *tmcf;
    ngx_game_tel_ingest_ctx_t  *ctx;

    tmcf = ngx_http_get_module_main_conf(r, ngx_game_tel_module);
    ctx = ngx_http_get_module_ctx(r, ngx_game_tel_module);

    events = json_object_get(body, "events");

    if (!json_is_array(events) || json_array_size(events) == 0) {
        ngx_http_finalize_request(r,
            ngx_game_http_send_error(r, NGX_GAME_HTTP_UNPROCESSABLE,
                                     "invalid_batch",
                                     "a batch is {\"events\": [...]} with at "
                                     "least one event"));
        return;
    }

    if (json_array_size(events) > tmcf->max_events) {
        ngx_http_finalize_request(r,
            ngx_game_http_send_error(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                     "too_many_events",
                                     "too many events in one batch"));
        return;
    }

    valid = json_array();
    ctx->rejected = json_array();
    cln = ngx_pool_cleanup_add(r->pool, 0);

    if (valid == NULL || ctx->rejected == NULL || cln == NULL) {
        json_decref(valid);
        json_decref(ctx->rejected);
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    cln->handler = ngx_game_tel_ingest_cleanup;
    cln->data = ctx->rejected;

    /* the answer is built from ctx->rejected when the request ends */
    rc = ngx_game_tel_ingest_check(r, events, valid, ctx->rejected);
    if (rc != NGX_OK) {
        json_decref(valid);
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    nvalid = json_array_size(valid);
    nrejected = json_array_size(ctx->rejected);

    if (nvalid == 0) {
        json_decref(valid);
        ngx_game_tel_ingest_count(r, nrejected);
        ngx_http_finalize_request(r, ngx_game_tel_ingest_answer(r));
        return;
    }

    if (nrejected == 0) {
        /* the common case: the body goes on the stream as it came */
        b = ctx->raw;
        json_decref(valid);

    } else {
        wrap = json_pack("{s:o}", "events", valid);
        text = wrap ? json_dumps(wrap, GAME_TEL_JSON_FLAGS) : NULL;
        json_decref(wrap);

        if (text == NULL) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        b.len = ngx_strlen(text);
        b.data = ngx_pnalloc(r->pool, b.len);
        if (b.data == NULL) {
            free(text);
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        ngx_memcpy(b.data, text, b.len);
        free(text);
    }

    ctx->accepted = nvalid;

    ngx_http_finalize_request(r,
        ngx_game_tel_ingest_queue(r, &b, nvalid, nrejected));
}


/*
 * Every event against its type; a second event with an id seen earlier in
 * the batch is rejected as a duplicate (ids are hashed into an open table
 * twice the batch's size, so a batch of 500 costs 500 lookups).
 */

static ngx_int_t
ngx_game_tel_ingest_check(ngx_http_request_t *r, json_t *events,
    json_t *valid, json_t *rejected)
{
    size_t                     i, n, size, slot;
    json_t                    *e, *id;
    ngx_uint_t                 key;
    const char                *code, **seen;
    game_tel_check_t           c;
    ngx_game_tel_main_conf_t  *tmcf;

    tmcf = ngx_http_get_module_main_conf(r, ngx_game_tel_module);

    c.from = GAME_TEL_FROM_CLIENT;
    c.now_ms = ngx_game_tel_now_ms();
    c.max_age_ms = tmcf->accept_age;
    c.max_skew_ms = tmcf->accept_skew;

    n = json_array_size(events);

    for (size = 16; size < 2 * n; size *= 2) { /* void */ }

    seen = ngx_pcalloc(r->pool, size * sizeof(const char *));
    if (seen == NULL) {
        return NGX_ERROR;
    }

    json_array_foreach(events, i, e) {

        code = game_tel_event_check(tmcf->types, e, &c);

        if (code == NULL) {
            id = json_object_get(e, "event_id");
            key = ngx_hash_key((u_char *) json_string_value(id),
                               GAME_UUID_LEN);

            for (slot = key & (size - 1); seen[slot];
                 slot = (slot + 1) & (size - 1))
            {
                if (ngx_strncmp(seen[slot], json_string_value(id),
                                GAME_UUID_LEN) == 0)
                {
                    code = "duplicate_event_id";
                    break;
                }
            }

            if (code == NULL) {
                seen[slot] = json_string_value(id);

                if (json_array_append(valid, e) != 0) {
                    return NGX_ERROR;
                }

                continue;
            }
        }

        if (json_array_append_new(rejected,
                                  json_pack("{s:I,s:s}", "index",
                                            (json_int_t) i, "code", code))
            != 0)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_game_tel_ingest_queue(ngx_http_request_t *r, ngx_str_t *b,
    ngx_uint_t nvalid, ngx_uint_t nrejected)
{
    u_char                      key[128], now[NGX_INT64_LEN], n[NGX_INT_T_LEN],
                                bad[NGX_INT_T_LEN], rate[NGX_INT_T_LEN],
                                burst[NGX_INT_T_LEN], backlog[NGX_INT_T_LEN];
    ngx_int_t                   rc;
    ngx_game_redis_cmd_t       *cmd;
    ngx_game_redis_args_t       a;
    ngx_game_tel_main_conf_t   *tmcf;
    ngx_game_tel_ingest_ctx_t  *ctx;

    tmcf = ngx_http_get_module_main_conf(r, ngx_game_tel_module);
    ctx = ngx_http_get_module_ctx(r, ngx_game_tel_module);

    ngx_memzero(&a, sizeof(ngx_game_redis_args_t));
    ngx_game_redis_arg_str(&a, &tmcf->stream);
    ngx_game_redis_arg(&a, key, ngx_snprintf(key, sizeof(key), "%Vrate:%V",
                                             &tmcf->prefix, &ctx->player)
                                - key);
    ngx_game_redis_arg_str(&a, &tmcf->stats);
    ngx_game_redis_arg(&a, now, ngx_sprintf(now, "%L", ngx_game_tel_now_ms())
                                - now);
    ngx_game_redis_arg(&a, n, ngx_sprintf(n, "%ui", nvalid) - n);
    ngx_game_redis_arg(&a, bad, ngx_sprintf(bad, "%ui", nrejected) - bad);
    ngx_game_redis_arg(&a, rate, ngx_sprintf(rate, "%ui", tmcf->rate) - rate);
    ngx_game_redis_arg(&a, burst, ngx_sprintf(burst, "%ui", tmcf->burst)
                                  - burst);
    ngx_game_redis_arg(&a, backlog,
                       ngx_sprintf(backlog, "%ui", tmcf->max_backlog)
                       - backlog);
    ngx_game_redis_arg_str(&a, &ctx->player);
    ngx_game_redis_arg_str(&a, b);

    cmd = ngx_game_redis_request_cmd(r);
    if (cmd == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cmd->handler = ngx_game_tel_ingest_queued;
    cmd->data = r;

    /* eval copies the arguments into the request's memory, where they
     * stay for a NOSCRIPT resend */
    rc = ngx_game_redis_eval(tmcf->redis, cmd, &ngx_game_tel_ingest_lua, 0,
                             a.argc, a.argv, a.argvlen);
    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc != NGX_AGAIN) {
        return ngx_game_http_send_outcome(r, rc, "the telemetry queue");
    }

    r->main->count++;
    return NGX_DONE;
}


static void
ngx_game_tel_ingest_queued(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply)
{
    json_t              *error;
    ngx_int_t            ms, rv;
    redisReply          *verdict;
    ngx_http_request_t  *r = cmd->data;

    if (rc != NGX_OK) {
        ngx_http_finalize_request(r,
            ngx_game_http_send_outcome(r, rc, "the telemetry queue"));
        return;
    }

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements == 0
        || reply->element[0]->type != REDIS_REPLY_STRING)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "game tel: unexpected reply of the ingest script");
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    verdict = reply->element[0];

    if (ngx_strcmp(verdict->str, "OK") == 0) {
        ngx_http_finalize_request(r, ngx_game_tel_ingest_answer(r));
        return;
    }

    if (ngx_strcmp(verdict->str, "BUSY") == 0) {
        ngx_http_finalize_request(r,
            ngx_game_http_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                     "backlog_full",
                                     "telemetry is behind, retry later"));
        return;
    }

    /* the time until the batch fits in the player's bucket */
    ms = (reply->elements == 2
          && reply->element[1]->type == REDIS_REPLY_INTEGER)
         ? (ngx_int_t) reply->element[1]->integer : 1000;

    error = json_pack("{s:{s:s,s:s}}", "error", "code", "rate_limited",
                      "message", "too many events, slow down");
    if (error == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    rv = ngx_game_http_send_json_retry(r, NGX_HTTP_TOO_MANY_REQUESTS, error,
                                       (time_t) ((ms + 999) / 1000));
    json_decref(error);

    ngx_http_finalize_request(r, rv);
}


/* 202 {"accepted", "rejected"} */
static ngx_int_t
ngx_game_tel_ingest_answer(ngx_http_request_t *r)
{
    json_t                     *body;
    ngx_int_t                   rc;
    ngx_game_tel_ingest_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_game_tel_module);

    body = json_pack("{s:I,s:O}", "accepted", (json_int_t) ctx->accepted,
                     "rejected", ctx->rejected);
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_game_http_send_json(r, NGX_HTTP_ACCEPTED, body);
    json_decref(body);

    return rc;
}


/*
 * A batch with nothing to queue is not worth a script, but its rejected
 * events are counted all the same; nobody waits for the count.
 */

static void
ngx_game_tel_ingest_count(ngx_http_request_t *r, ngx_uint_t rejected)
{
    u_char                     n[NGX_INT_T_LEN];
    ngx_game_redis_cmd_t      *cmd;
    ngx_game_redis_args_t      a;
    ngx_game_tel_main_conf_t  *tmcf;

    tmcf = ngx_http_get_module_main_conf(r, ngx_game_tel_module);

    ngx_memzero(&a, sizeof(ngx_game_redis_args_t));
    ngx_game_redis_arg_lit(&a, "HINCRBY");
    ngx_game_redis_arg_str(&a, &tmcf->stats);
    ngx_game_redis_arg_lit(&a, "rejected");
    ngx_game_redis_arg(&a, n, ngx_sprintf(n, "%ui", rejected) - n);

    cmd = ngx_game_redis_request_cmd(r);
    if (cmd == NULL) {
        return;
    }

    cmd->handler = ngx_game_tel_ingest_counted;
    cmd->data = NULL;

    if (ngx_game_redis_cmd_run(tmcf->redis, cmd, a.argc, a.argv, a.argvlen)
        != NGX_AGAIN)
    {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "game tel: %ui rejected events not counted: Redis is "
                      "unavailable", rejected);
    }
}


static void
ngx_game_tel_ingest_counted(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply)
{
    /* the request may be gone: nothing to do either way */
}


static void
ngx_game_tel_ingest_cleanup(void *data)
{
    json_decref(data);
}
