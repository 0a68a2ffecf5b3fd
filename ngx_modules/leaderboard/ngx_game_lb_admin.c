
/*
 * The admin endpoints:
 *
 *   POST /admin/leaderboards/players/{playerId}/remove  {reason}
 *        a cheater's entries go from every board and season, live and
 *        archived, and the player takes no score from then on
 *   POST /admin/leaderboards/{name}/recompute
 *        the board's live season again from the match history; Redis
 *        rebuilds it (readers get 503 for that while)
 *
 * An admin sends "Authorization: Bearer <secret>", one of the secrets
 * declared with game_lb_admin, checked by the core (ngx_game_admin_who()).
 * These locations must not be behind game_auth_jwt.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_game_lb.h"


typedef struct {
    ngx_game_admin_t           *admin;
    ngx_str_t                   player;
    ngx_game_lb_board_t        *board;
    json_t                     *answer;
} ngx_game_lb_admin_ctx_t;


static void ngx_game_lb_remove_body(ngx_http_request_t *r, json_t *body);
static void ngx_game_lb_removed(ngx_game_pg_query_t *q, ngx_int_t rc,
    PGresult *res);
static void ngx_game_lb_removed_put(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply);
static void ngx_game_lb_removed_answer(ngx_http_request_t *r);
static void ngx_game_lb_recomputed(ngx_game_pg_query_t *q, ngx_int_t rc,
    PGresult *res);
static void ngx_game_lb_dropped(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply);
static ngx_int_t ngx_game_lb_admin_begin(ngx_http_request_t *r,
    ngx_game_lb_admin_ctx_t **ctx);
static ngx_int_t ngx_game_lb_admin_refuse(ngx_http_request_t *r,
    ngx_int_t why);
static json_t *ngx_game_lb_admin_json(ngx_http_request_t *r,
    ngx_game_lb_admin_ctx_t *ctx, PGresult *res);
static ngx_int_t ngx_game_lb_admin_query(ngx_http_request_t *r,
    ngx_game_pg_pool_t *pg, ngx_game_pg_stmt_t *stmt, const char **values,
    ngx_game_pg_handler_pt handler);


static ngx_game_pg_stmt_t  ngx_game_lb_remove_stmt = {
    "game_lb_admin_remove",
    "SELECT lb_admin_remove($1::uuid, $2, $3)",
    3
};

static ngx_game_pg_stmt_t  ngx_game_lb_recompute_stmt = {
    "game_lb_recompute",
    "SELECT lb_recompute($1::jsonb, $2::boolean, $3::boolean)",
    3
};


ngx_int_t
ngx_game_lb_admin_remove(ngx_http_request_t *r)
{
    ngx_int_t                 rc;
    ngx_game_lb_admin_ctx_t  *ctx;

    rc = ngx_game_lb_admin_begin(r, &ctx);
    if (rc != NGX_OK) {
        return ngx_game_lb_admin_refuse(r, rc);
    }

    if (ngx_game_lb_path_segment(r, 3, &ctx->player) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (!game_lb_uuid_valid((char *) ctx->player.data, ctx->player.len)) {
        return ngx_game_http_send_error(r, NGX_HTTP_NOT_FOUND, "no_player",
                                        "no such player");
    }

    ngx_strlow(ctx->player.data, ctx->player.data, ctx->player.len);

    return ngx_game_http_read_json(r, ngx_game_lb_remove_body);
}


static void
ngx_game_lb_remove_body(ngx_http_request_t *r, json_t *body)
{
    json_t                   *reason;
    const char               *values[3];
    ngx_game_lb_admin_ctx_t  *ctx;
    ngx_game_lb_main_conf_t  *lmcf;

    lmcf = ngx_http_get_module_main_conf(r, ngx_game_lb_module);
    ctx = ngx_http_get_module_ctx(r, ngx_game_lb_module);

    reason = json_object_get(body, "reason");

    if (!json_is_string(reason) || json_string_length(reason) == 0
        || json_string_length(reason) > 500)
    {
        ngx_http_finalize_request(r,
            ngx_game_http_send_error(r, NGX_GAME_HTTP_UNPROCESSABLE,
                                     "invalid_request",
                                     "a removal is {reason}: why, 1 to 500 "
                                     "characters"));
        return;
    }

    values[0] = (char *) ctx->player.data;
    values[1] = (char *) ngx_game_lb_text(r->pool,
                                          (char *) ctx->admin->name.data,
                                          ctx->admin->name.len)->data;
    values[2] = json_string_value(reason);

    ngx_http_finalize_request(r,
        ngx_game_lb_admin_query(r, lmcf->pg, &ngx_game_lb_remove_stmt,
                                values, ngx_game_lb_removed));
}


static void
ngx_game_lb_removed(ngx_game_pg_query_t *q, ngx_int_t rc, PGresult *res)
{
    size_t                    i, n;
    json_t                   *gone;
    ngx_str_t                 records;
    ngx_uint_t                k;
    ngx_game_lb_live_t       *live;
    ngx_game_lb_write_t      *w;
    ngx_http_request_t       *r = q->data;
    ngx_game_lb_admin_ctx_t  *ctx;
    ngx_game_lb_main_conf_t  *lmcf;

    lmcf = ngx_http_get_module_main_conf(r, ngx_game_lb_module);
    ctx = ngx_http_get_module_ctx(r, ngx_game_lb_module);

    if (rc == NGX_OK && PQntuples(res) == 1 && PQgetisnull(res, 0, 0)) {
        ngx_http_finalize_request(r,
            ngx_game_http_send_error(r, NGX_HTTP_NOT_FOUND, "no_player",
                                     "no such player"));
        return;
    }

    ctx->answer = ngx_game_lb_admin_json(r, ctx, rc == NGX_OK ? res : NULL);
    if (ctx->answer == NULL) {
        ngx_http_finalize_request(r,
            ngx_game_http_send_outcome(r, rc == NGX_OK ? NGX_ERROR : rc,
                                       "the leaderboards' database"));
        return;
    }

    /* Redis drops the live entries before the answer leaves; should it
     * be away, the outbox has them for the lease holder */
    gone = json_object_get(ctx->answer, "gone");
    n = json_array_size(gone);
    w = ngx_pcalloc(r->pool, (n + 1) * sizeof(ngx_game_lb_write_t));
    if (w == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    k = 0;
    for (i = 0; i < n; i++) {
        if (ngx_game_lb_write_json(lmcf, json_array_get(gone, i), &w[k])
            != NGX_OK)
        {
            continue;
        }

        live = ngx_game_lb_live(lmcf, w[k].board);
        if (live && live->season_len == w[k].season.len
            && ngx_strncmp(live->season, w[k].season.data, w[k].season.len)
               == 0)
        {
            k++;
        }
    }

    if (k == 0
        || ngx_game_lb_records(r->pool, w, k, &records) != NGX_OK
        || ngx_game_lb_put(lmcf, r->pool, r->connection->log, &records,
                           ngx_game_lb_removed_put, r)
           != NGX_AGAIN)
    {
        ngx_game_lb_removed_answer(r);
        return;
    }
}


static void
ngx_game_lb_removed_put(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply)
{
    ngx_game_lb_removed_answer(cmd->data);
}


static void
ngx_game_lb_removed_answer(ngx_http_request_t *r)
{
    json_t                   *body;
    ngx_game_lb_admin_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_game_lb_module);

    body = json_pack("{s:O,s:O}",
                     "player_id", json_object_get(ctx->answer, "player_id"),
                     "removed", json_object_get(ctx->answer, "removed"));
    if (body == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_finalize_request(r, ngx_game_http_send_json(r, NGX_HTTP_OK,
                                                         body));
    json_decref(body);
}


ngx_int_t
ngx_game_lb_admin_recompute(ngx_http_request_t *r)
{
    ngx_int_t                 rc;
    ngx_str_t                 name;
    const char               *values[3];
    ngx_game_lb_admin_ctx_t  *ctx;
    ngx_game_lb_main_conf_t  *lmcf;

    lmcf = ngx_http_get_module_main_conf(r, ngx_game_lb_module);

    rc = ngx_game_lb_admin_begin(r, &ctx);
    if (rc != NGX_OK) {
        return ngx_game_lb_admin_refuse(r, rc);
    }

    if (ngx_game_lb_path_segment(r, 2, &name) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->board = ngx_game_lb_board(lmcf, &name);
    if (ctx->board == NULL) {
        return ngx_game_http_send_error(r, NGX_HTTP_NOT_FOUND,
                                        "unknown_leaderboard",
                                        "no such leaderboard");
    }

    values[0] = (char *) ctx->board->json.data;
    values[1] = lmcf->test_clock ? "true" : "false";
    /* players under review get nothing, as from the stream (sql/009) */
    values[2] = lmcf->exclude_flagged ? "true" : "false";

    /* a whole season in one statement: the maintenance pool's */
    return ngx_game_lb_admin_query(r, lmcf->pg_maintenance,
                                   &ngx_game_lb_recompute_stmt, values,
                                   ngx_game_lb_recomputed);
}


static void
ngx_game_lb_recomputed(ngx_game_pg_query_t *q, ngx_int_t rc, PGresult *res)
{
    u_char                   *p;
    size_t                    i, n;
    json_t                   *regions, *season;
    ngx_str_t                 s, region;
    const char              **argv;
    size_t                   *argvlen;
    ngx_game_redis_cmd_t     *cmd;
    ngx_http_request_t       *r = q->data;
    ngx_game_lb_admin_ctx_t  *ctx;
    ngx_game_lb_main_conf_t  *lmcf;

    lmcf = ngx_http_get_module_main_conf(r, ngx_game_lb_module);
    ctx = ngx_http_get_module_ctx(r, ngx_game_lb_module);

    ctx->answer = ngx_game_lb_admin_json(r, ctx, rc == NGX_OK ? res : NULL);
    if (ctx->answer == NULL) {
        ngx_http_finalize_request(r,
            ngx_game_http_send_outcome(r, rc == NGX_OK ? NGX_ERROR : rc,
                                       "the leaderboards' database"));
        return;
    }

    season = json_object_get(ctx->answer, "season");
    regions = json_object_get(ctx->answer, "regions");
    n = json_array_size(regions);

    if (!json_is_string(season)) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    s.data = (u_char *) json_string_value(season);
    s.len = json_string_length(season);

    /* the meta (building), then the sets and hashes of every region */
    argv = ngx_palloc(r->pool, (2 * n + 1) * sizeof(char *));
    argvlen = ngx_palloc(r->pool, (2 * n + 1) * sizeof(size_t));
    p = ngx_pnalloc(r->pool, (2 * n + 1) * NGX_GAME_LB_KEY_LEN);
    cmd = ngx_game_redis_request_cmd(r);
    if (argv == NULL || argvlen == NULL || p == NULL || cmd == NULL
        || 2 * n + 1 > NGX_GAME_REDIS_MAX_ARGS - 3)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    argv[0] = (char *) p;
    p = ngx_game_lb_key(p, "meta", &ctx->board->name, &s, NULL);
    argvlen[0] = p - (u_char *) argv[0];

    for (i = 0; i < n; i++) {
        region.data = (u_char *) json_string_value(json_array_get(regions, i));
        region.len = json_string_length(json_array_get(regions, i));

        argv[1 + 2 * i] = (char *) p;
        p = ngx_game_lb_key(p, "z", &ctx->board->name, &s, &region);
        argvlen[1 + 2 * i] = p - (u_char *) argv[1 + 2 * i];
        argv[2 + 2 * i] = (char *) p;
        p = ngx_game_lb_key(p, "h", &ctx->board->name, &s, &region);
        argvlen[2 + 2 * i] = p - (u_char *) argv[2 + 2 * i];
    }

    cmd->handler = ngx_game_lb_dropped;
    cmd->data = r;

    rc = ngx_game_redis_eval(lmcf->redis, cmd, &ngx_game_lb_drop_lua, 0,
                             2 * n + 1, argv, argvlen);
    if (rc != NGX_AGAIN) {
        ngx_game_lb_dropped(cmd, rc, NULL);
    }
}


static void
ngx_game_lb_dropped(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply)
{
    json_t                   *body;
    ngx_http_request_t       *r = cmd->data;
    ngx_game_lb_admin_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_game_lb_module);

    if (rc != NGX_OK) {
        /* PostgreSQL has it; Redis still has the old season */
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "game lb: a recomputed board could not be dropped "
                      "from Redis: recompute it again once Redis is back");
        ngx_http_finalize_request(r,
            ngx_game_http_send_outcome(r, rc, "the leaderboards"));
        return;
    }

    body = json_pack("{s:O,s:O,s:O,s:b}",
                     "leaderboard", json_object_get(ctx->answer,
                                                    "leaderboard"),
                     "season", json_object_get(ctx->answer, "season"),
                     "entries", json_object_get(ctx->answer, "entries"),
                     "rebuilding", 1);
    if (body == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_finalize_request(r, ngx_game_http_send_json(r,
                                                         NGX_HTTP_ACCEPTED,
                                                         body));
    json_decref(body);
}


#define NGX_GAME_LB_NOT_ADMIN   -40
#define NGX_GAME_LB_NOT_POST    -41


/*
 * The admin and the method.  NGX_OK, or why not: the caller answers with
 * ngx_game_lb_admin_refuse().  A helper that sent the answer itself would
 * return what the send returned, often NGX_OK, and its caller would go on
 * to run the action for a request already answered.
 */
static ngx_int_t
ngx_game_lb_admin_begin(ngx_http_request_t *r, ngx_game_lb_admin_ctx_t **ctx)
{
    ngx_game_lb_main_conf_t  *lmcf;

    lmcf = ngx_http_get_module_main_conf(r, ngx_game_lb_module);

    *ctx = ngx_pcalloc(r->pool, sizeof(ngx_game_lb_admin_ctx_t));
    if (*ctx == NULL) {
        return NGX_ERROR;
    }

    (*ctx)->admin = ngx_game_admin_who(r, &lmcf->admins);
    if ((*ctx)->admin == NULL) {
        return NGX_GAME_LB_NOT_ADMIN;
    }

    if (r->method != NGX_HTTP_POST) {
        return NGX_GAME_LB_NOT_POST;
    }

    ngx_http_set_ctx(r, *ctx, ngx_game_lb_module);

    return NGX_OK;
}


static ngx_int_t
ngx_game_lb_admin_refuse(ngx_http_request_t *r, ngx_int_t why)
{
    switch (why) {

    case NGX_GAME_LB_NOT_ADMIN:
        return ngx_game_http_send_error(r, NGX_HTTP_UNAUTHORIZED,
                                        "unauthorized",
                                        "an admin credential is required");

    case NGX_GAME_LB_NOT_POST:
        return ngx_game_http_send_error(r, NGX_HTTP_NOT_ALLOWED,
                                        "method_not_allowed",
                                        "admin actions are POSTed");

    default:
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
}


static void
ngx_game_lb_admin_cleanup(void *data)
{
    json_decref(data);
}


/* the SQL function's JSON answer, freed with the request; NULL if none */
static json_t *
ngx_game_lb_admin_json(ngx_http_request_t *r, ngx_game_lb_admin_ctx_t *ctx,
    PGresult *res)
{
    json_t              *j;
    json_error_t         err;
    ngx_pool_cleanup_t  *cln;

    if (res == NULL || PQntuples(res) != 1 || PQgetisnull(res, 0, 0)) {
        return NULL;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    j = json_loadb(PQgetvalue(res, 0, 0), PQgetlength(res, 0, 0), 0, &err);
    if (!json_is_object(j)) {
        json_decref(j);
        return NULL;
    }

    cln->handler = ngx_game_lb_admin_cleanup;
    cln->data = j;

    return j;
}


static ngx_int_t
ngx_game_lb_admin_query(ngx_http_request_t *r, ngx_game_pg_pool_t *pg,
    ngx_game_pg_stmt_t *stmt, const char **values,
    ngx_game_pg_handler_pt handler)
{
    int                   i;
    ngx_int_t             rc;
    ngx_game_pg_query_t  *q;

    q = ngx_game_pg_request_query(r, stmt);
    if (q == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    for (i = 0; i < stmt->nparams; i++) {
        if (values[i] == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
        q->values[i] = values[i];
    }

    q->handler = handler;
    q->data = r;

    rc = ngx_game_pg_query_run(pg, q);
    if (rc != NGX_AGAIN) {
        return ngx_game_http_send_outcome(r, rc,
                                          "the leaderboards' database");
    }

    r->main->count++;
    return NGX_DONE;
}
