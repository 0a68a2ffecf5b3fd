
/*
 * Health endpoints for load balancers and orchestrators.
 *
 *   game_health;  liveness: the worker runs and answers, nothing else.
 *   game_ready;   readiness: one round trip to every PostgreSQL and Redis
 *                 pool this nginx declares, all within their timeouts.
 *                 503 names each dependency that failed.
 *
 * Also game_json_echo, a diagnostics endpoint that parses a JSON body the
 * way every service endpoint does and sends it back; the tests use it to
 * check body limits, media types and JSON errors in one place.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_game_core_internal.h"


typedef struct ngx_game_ready_ctx_s  ngx_game_ready_ctx_t;


/* one dependency's answer; JSON is built only when it is sent */
typedef struct {
    ngx_game_ready_ctx_t       *ctx;
    const char                 *kind;       /* "postgres", "redis" */
    ngx_str_t                  *name;
    ngx_int_t                   rc;
    unsigned                    done:1;
} ngx_game_ready_check_t;


struct ngx_game_ready_ctx_s {
    ngx_http_request_t         *request;
    ngx_game_ready_check_t     *checks;
    ngx_uint_t                  nchecks;
    ngx_uint_t                  pending;
    ngx_game_ready_check_t     *failed;     /* the first failure */
};


static ngx_int_t ngx_game_health_handler(ngx_http_request_t *r);
static ngx_int_t ngx_game_ready_handler(ngx_http_request_t *r);
static void ngx_game_ready_pg_done(ngx_game_pg_query_t *q, ngx_int_t rc,
    PGresult *res);
static void ngx_game_ready_redis_done(ngx_game_redis_cmd_t *cmd,
    ngx_int_t rc, redisReply *reply);
static ngx_game_ready_check_t *ngx_game_ready_check(
    ngx_game_ready_ctx_t *ctx, const char *kind, ngx_str_t *name);
static void ngx_game_ready_record(ngx_game_ready_check_t *c, ngx_int_t rc);
static ngx_int_t ngx_game_ready_respond(ngx_game_ready_ctx_t *ctx);
static ngx_int_t ngx_game_ready_send_ok(ngx_game_ready_ctx_t *ctx);
static json_t *ngx_game_ready_checks(ngx_game_ready_ctx_t *ctx);
static ngx_int_t ngx_game_json_echo_handler(ngx_http_request_t *r);
static void ngx_game_json_echo_body(ngx_http_request_t *r, json_t *body);


static ngx_game_pg_stmt_t  ngx_game_ready_stmt = {
    "game_core_ready", "SELECT 1", 0
};


static ngx_int_t
ngx_game_method_get(ngx_http_request_t *r)
{
    if (r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD)) {
        return NGX_OK;
    }

    return ngx_game_http_send_error(r, NGX_HTTP_NOT_ALLOWED,
                                    "method_not_allowed",
                                    "only GET and HEAD are allowed here");
}


char *
ngx_game_health_directive(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_game_health_handler;

    return NGX_CONF_OK;
}


char *
ngx_game_ready_directive(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_game_ready_handler;

    return NGX_CONF_OK;
}


char *
ngx_game_json_echo_directive(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_game_json_echo_handler;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_game_health_handler(ngx_http_request_t *r)
{
    static ngx_str_t  ok = ngx_string("{\"status\":\"ok\"}\n");

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return ngx_game_method_get(r);
    }

    return ngx_game_http_send_text(r, NGX_HTTP_OK, &ok);
}


static ngx_int_t
ngx_game_ready_handler(ngx_http_request_t *r)
{
    ngx_int_t                   rc;
    ngx_uint_t                  i;
    ngx_game_pg_pool_t        **pg;
    ngx_game_pg_query_t        *q;
    ngx_game_redis_cmd_t       *cmd;
    ngx_game_ready_ctx_t       *ctx;
    ngx_game_ready_check_t     *c;
    ngx_game_redis_pool_t     **rp;
    ngx_game_core_main_conf_t  *cmcf;

    static const char          *ping[] = { "PING" };
    static const size_t         ping_len[] = { 4 };

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return ngx_game_method_get(r);
    }

    cmcf = ngx_http_get_module_main_conf(r, ngx_game_core_module);

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_game_ready_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->request = r;
    ctx->checks = ngx_pcalloc(r->pool, (cmcf->pg_pools.nelts
                                        + cmcf->redis_pools.nelts)
                                       * sizeof(ngx_game_ready_check_t));
    if (ctx->checks == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the handler's own reference: no completion finalizes the request
     * while checks are still being started */
    ctx->pending = 1;

    pg = cmcf->pg_pools.elts;
    for (i = 0; i < cmcf->pg_pools.nelts; i++) {
        /* a probe's statement goes by what it is, not by its request:
         * probes are not in the access log, and a storm of them then
         * renames no connection (on a copy=on pool each renaming is a
         * round trip) */
        q = ngx_game_pg_query_create(r->pool, r->connection->log,
                                     &ngx_game_ready_stmt);
        if (q == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_str_set(&q->trace, "ready");

        c = ngx_game_ready_check(ctx, "postgres",
                                 ngx_game_pg_pool_name(pg[i]));

        q->handler = ngx_game_ready_pg_done;
        q->data = c;
        ctx->pending++;

        rc = ngx_game_pg_query_run(pg[i], q);
        if (rc != NGX_AGAIN) {
            ngx_game_ready_pg_done(q, rc, NULL);
        }
    }

    rp = cmcf->redis_pools.elts;
    for (i = 0; i < cmcf->redis_pools.nelts; i++) {
        cmd = ngx_game_redis_request_cmd(r);
        if (cmd == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        c = ngx_game_ready_check(ctx, "redis",
                                 ngx_game_redis_pool_name(rp[i]));

        cmd->handler = ngx_game_ready_redis_done;
        cmd->data = c;
        ctx->pending++;

        rc = ngx_game_redis_cmd_run(rp[i], cmd, 1, ping, ping_len);
        if (rc != NGX_AGAIN) {
            ngx_game_ready_redis_done(cmd, rc, NULL);
        }
    }

    if (--ctx->pending == 0) {
        /* everything answered at once: nothing is up, or nothing declared */
        return ngx_game_ready_respond(ctx);
    }

    /* the last completion finalizes */
    r->main->count++;

    return NGX_DONE;
}


static void
ngx_game_ready_pg_done(ngx_game_pg_query_t *q, ngx_int_t rc, PGresult *res)
{
    ngx_game_ready_record(q->data, rc);
}


static void
ngx_game_ready_redis_done(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply)
{
    ngx_game_ready_record(cmd->data, rc);
}


static ngx_game_ready_check_t *
ngx_game_ready_check(ngx_game_ready_ctx_t *ctx, const char *kind,
    ngx_str_t *name)
{
    ngx_game_ready_check_t  *c;

    c = &ctx->checks[ctx->nchecks++];
    c->ctx = ctx;
    c->kind = kind;
    c->name = name;

    return c;
}


/*
 * A pool calls a completion handler exactly once (ngx_game_core.h).  A
 * second call would finalize the request twice: it is refused, loudly.
 */

static void
ngx_game_ready_record(ngx_game_ready_check_t *c, ngx_int_t rc)
{
    ngx_game_ready_ctx_t  *ctx = c->ctx;

    if (c->done) {
        ngx_log_error(NGX_LOG_ALERT, ctx->request->connection->log, 0,
                      "game: the %s:%V readiness check completed twice",
                      c->kind, c->name);
        return;
    }

    c->done = 1;
    c->rc = rc;

    if (rc != NGX_OK && ctx->failed == NULL) {
        ctx->failed = c;
    }

    if (--ctx->pending == 0) {
        ngx_http_finalize_request(ctx->request, ngx_game_ready_respond(ctx));
    }
}


static json_t *
ngx_game_ready_checks(ngx_game_ready_ctx_t *ctx)
{
    u_char                   key[64];
    json_t                  *checks;
    ngx_uint_t               i;
    const char              *state;
    ngx_game_ready_check_t  *c;

    checks = json_object();
    if (checks == NULL) {
        return NULL;
    }

    for (i = 0; i < ctx->nchecks; i++) {
        c = &ctx->checks[i];

        switch (c->rc) {
        case NGX_OK:
            state = "ok";
            break;
        case NGX_GAME_TIMEOUT:
            state = "timeout";
            break;
        case NGX_GAME_UNAVAILABLE:
            state = "unavailable";
            break;
        default:
            state = "error";
        }

        *ngx_snprintf(key, sizeof(key) - 1, "%s:%V", c->kind, c->name)
            = '\0';

        if (json_object_set_new(checks, (char *) key, json_string(state))
            != 0)
        {
            json_decref(checks);
            return NULL;
        }
    }

    return checks;
}


static ngx_int_t
ngx_game_ready_respond(ngx_game_ready_ctx_t *ctx)
{
    u_char               msg[128];
    json_t              *body, *checks;
    ngx_int_t            rc;
    ngx_http_request_t  *r = ctx->request;

    if (ctx->failed == NULL) {
        return ngx_game_ready_send_ok(ctx);
    }

    *ngx_snprintf(msg, sizeof(msg) - 1, "dependency %s:%V is not ready",
                  ctx->failed->kind, ctx->failed->name) = '\0';

    checks = ngx_game_ready_checks(ctx);
    if (checks == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    body = json_pack("{s:{s:s,s:s},s:o}",
                     "error", "code", "not_ready", "message", (char *) msg,
                     "checks", checks);
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_game_http_send_json(r, NGX_HTTP_SERVICE_UNAVAILABLE, body);
    json_decref(body);

    return rc;
}


/*
 * The answer when every check passed depends only on the configuration,
 * so each worker serializes it once: /readyz is polled often.
 */

static ngx_int_t
ngx_game_ready_send_ok(ngx_game_ready_ctx_t *ctx)
{
    char       *text;
    json_t     *body, *checks;

    static ngx_str_t  cached;

    if (cached.data == NULL) {
        checks = ngx_game_ready_checks(ctx);
        if (checks == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        body = json_pack("{s:s,s:o}", "status", "ready", "checks", checks);
        if (body == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        text = json_dumps(body, JSON_COMPACT);
        json_decref(body);

        if (text == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        cached.len = ngx_strlen(text) + 1;
        cached.data = ngx_alloc(cached.len, ngx_cycle->log);
        if (cached.data == NULL) {
            free(text);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_memcpy(cached.data, text, cached.len - 1);
        cached.data[cached.len - 1] = '\n';
        free(text);
    }

    return ngx_game_http_send_text(ctx->request, NGX_HTTP_OK, &cached);
}


static ngx_int_t
ngx_game_json_echo_handler(ngx_http_request_t *r)
{
    if (!(r->method & (NGX_HTTP_POST|NGX_HTTP_PUT|NGX_HTTP_PATCH))) {
        return ngx_game_http_send_error(r, NGX_HTTP_NOT_ALLOWED,
                                        "method_not_allowed",
                                        "send the JSON with POST");
    }

    return ngx_game_http_read_json(r, ngx_game_json_echo_body);
}


static void
ngx_game_json_echo_body(ngx_http_request_t *r, json_t *body)
{
    json_t     *out;
    ngx_int_t   rc;

    out = json_pack("{s:O}", "received", body);
    if (out == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    rc = ngx_game_http_send_json(r, NGX_HTTP_OK, out);
    json_decref(out);

    ngx_http_finalize_request(r, rc);
}
