
/*
 * The public reads:
 *
 *   GET /leaderboards/{name}?limit=1..100&cursor=&region=&season=
 *   GET /leaderboards/{name}/around/{playerId}?limit=&region=&season=
 *   GET /leaderboards/{name}/around/me            (bearer)
 *   GET /player/{id}/stats
 *
 * A live season is read from Redis, in one script (page, see
 * ngx_game_lb_redis.c), and the players' names from PostgreSQL; a first
 * page is kept in shared memory for game_lb_cache_ttl.  A finished season
 * (season=previous or its id) is read from its archive in PostgreSQL.
 *
 * Cursors are opaque to clients: base64url of "c|season|region|member"
 * (the last entry of the page: the next page is what sorts after it, a
 * keyset that stays right while scores move) or "a|season|region|rank" in
 * an archive, whose ranks are frozen.  A cursor of another board view or
 * of a season that ended is refused with 422.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_game_lb.h"


#define NGX_GAME_LB_LIMIT_DEFAULT   20
#define NGX_GAME_LB_AROUND_DEFAULT  11
#define NGX_GAME_LB_LIMIT_MAX       100

/* why a request was refused, for ngx_game_lb_refuse() */
#define NGX_GAME_LB_NO_BOARD        -30
#define NGX_GAME_LB_BAD_LIMIT       -31
#define NGX_GAME_LB_BAD_CURSOR      -32
#define NGX_GAME_LB_BAD_REGION      -33
#define NGX_GAME_LB_BAD_SEASON      -34
#define NGX_GAME_LB_NO_PLAYER       -35
#define NGX_GAME_LB_NO_SEASON_YET   -36
#define NGX_GAME_LB_BAD_METHOD      -37
#define NGX_GAME_LB_NOBODY          -38


typedef struct {
    ngx_game_lb_board_t        *board;
    ngx_str_t                   season;
    ngx_str_t                   region;         /* "*" or a region */
    ngx_int_t                   limit;
    ngx_str_t                   after;          /* a cursor's member */
    int64_t                     after_rank;     /* an archive cursor's */
    ngx_str_t                   player;         /* around */
    ngx_str_t                   cache_key;      /* a first page's */
    unsigned                    archive:1;
    unsigned                    around:1;

    /* the page read from Redis */
    ngx_uint_t                  first;
    ngx_uint_t                  n;
    ngx_str_t                  *members;
    unsigned                    more:1;
} ngx_game_lb_ctx_t;


static ngx_int_t ngx_game_lb_view(ngx_http_request_t *r,
    ngx_game_lb_ctx_t *ctx, ngx_int_t def);
static ngx_int_t ngx_game_lb_cursor_parse(ngx_http_request_t *r,
    ngx_game_lb_ctx_t *ctx, ngx_str_t *arg);
static ngx_str_t *ngx_game_lb_cursor_make(ngx_http_request_t *r,
    ngx_game_lb_ctx_t *ctx, const char *kind, u_char *last, size_t len);
static ngx_int_t ngx_game_lb_refuse(ngx_http_request_t *r, ngx_int_t why);
static ngx_int_t ngx_game_lb_read(ngx_http_request_t *r,
    ngx_game_lb_ctx_t *ctx);
static void ngx_game_lb_read_got(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply);
static ngx_int_t ngx_game_lb_names(ngx_http_request_t *r,
    ngx_game_lb_ctx_t *ctx);
static void ngx_game_lb_names_got(ngx_game_pg_query_t *q, ngx_int_t rc,
    PGresult *res);
static ngx_int_t ngx_game_lb_archive(ngx_http_request_t *r,
    ngx_game_lb_ctx_t *ctx);
static void ngx_game_lb_archive_got(ngx_game_pg_query_t *q, ngx_int_t rc,
    PGresult *res);
static ngx_int_t ngx_game_lb_query(ngx_http_request_t *r,
    ngx_game_pg_stmt_t *stmt, const char **values,
    ngx_game_pg_handler_pt handler);
static void ngx_game_lb_stats_got(ngx_game_pg_query_t *q, ngx_int_t rc,
    PGresult *res);
static void ngx_game_lb_ranks_got(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply);
static ngx_int_t ngx_game_lb_send(ngx_http_request_t *r, json_t *body,
    ngx_str_t *cache_key);


/* the usernames of a page's players ({id: name or null}); erased and
 * unknown players are left out, and the page leaves them out.  A plain
 * statement rather than a SQL function: prepared once per connection,
 * where a function's body would be planned again at every call */
static ngx_game_pg_stmt_t  ngx_game_lb_names_stmt = {
    "game_lb_names",
    "SELECT coalesce(jsonb_object_agg(p.id, p.username), '{}') "
    "FROM players p WHERE p.id = ANY($1::uuid[]) AND p.deleted_at IS NULL",
    1
};

static ngx_game_pg_stmt_t  ngx_game_lb_archive_page_stmt = {
    "game_lb_archive_page",
    "SELECT lb_archive_page($1, $2, $3, $4, $5::bigint, $6::integer)",
    6
};

static ngx_game_pg_stmt_t  ngx_game_lb_archive_around_stmt = {
    "game_lb_archive_around",
    "SELECT lb_archive_around($1, $2, $3, $4, $5::uuid, $6::integer)",
    6
};

static ngx_game_pg_stmt_t  ngx_game_lb_stats_stmt = {
    "game_lb_player_stats",
    "SELECT lb_player_stats($1::uuid)",
    1
};


ngx_int_t
ngx_game_lb_page(ngx_http_request_t *r)
{
    ngx_int_t           rc;
    ngx_str_t           body;
    ngx_game_lb_ctx_t  *ctx;

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_game_lb_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_game_lb_view(r, ctx, NGX_GAME_LB_LIMIT_DEFAULT);
    if (rc != NGX_OK) {
        return ngx_game_lb_refuse(r, rc);
    }

    ngx_http_set_ctx(r, ctx, ngx_game_lb_module);

    if (ctx->archive) {
        return ngx_game_lb_archive(r, ctx);
    }

    /* a first page: shared memory first */
    if (ctx->after.len == 0) {
        ctx->cache_key.data = ngx_pnalloc(r->pool, NGX_GAME_LB_KEY_LEN + 16);
        if (ctx->cache_key.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ctx->cache_key.len = ngx_sprintf(ctx->cache_key.data, "%V|%V|%V|%i",
                                         &ctx->board->name, &ctx->season,
                                         &ctx->region, ctx->limit)
                             - ctx->cache_key.data;

        if (ngx_game_lb_cache_get(r, &ctx->cache_key, &body) == NGX_OK) {
            return ngx_game_http_send_text(r, NGX_HTTP_OK, &body);
        }
    }

    return ngx_game_lb_read(r, ctx);
}


ngx_int_t
ngx_game_lb_around(ngx_http_request_t *r)
{
    ngx_int_t                 rc;
    ngx_str_t                 v;
    ngx_game_lb_ctx_t        *ctx;
    ngx_game_lb_main_conf_t  *lmcf;

    lmcf = ngx_http_get_module_main_conf(r, ngx_game_lb_module);

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_game_lb_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->around = 1;

    rc = ngx_game_lb_view(r, ctx, NGX_GAME_LB_AROUND_DEFAULT);
    if (rc != NGX_OK) {
        return ngx_game_lb_refuse(r, rc);
    }

    if (ngx_game_lb_path_segment(r, 3, &ctx->player) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ctx->player.len == 2 && ngx_strncmp(ctx->player.data, "me", 2) == 0)
    {
        if (lmcf->player == NULL
            || ngx_http_complex_value(r, lmcf->player, &v) != NGX_OK)
        {
            return ngx_game_lb_refuse(r, NGX_GAME_LB_NOBODY);
        }

        ctx->player = *ngx_game_lb_text(r->pool, (char *) v.data, v.len);
    }

    if (!game_lb_uuid_valid((char *) ctx->player.data, ctx->player.len)) {
        return ngx_game_lb_refuse(r, ctx->player.len == 0
                                     ? NGX_GAME_LB_NOBODY
                                     : NGX_GAME_LB_NO_PLAYER);
    }

    /* ids are compared by their bytes, and written in lowercase */
    ngx_strlow(ctx->player.data, ctx->player.data, ctx->player.len);

    ngx_http_set_ctx(r, ctx, ngx_game_lb_module);

    if (ctx->archive) {
        return ngx_game_lb_archive(r, ctx);
    }

    return ngx_game_lb_read(r, ctx);
}


/*
 * What the request asks to see: the board, season, region, limit and
 * cursor.  Returns why it is refused, or NGX_OK.
 */
static ngx_int_t
ngx_game_lb_view(ngx_http_request_t *r, ngx_game_lb_ctx_t *ctx, ngx_int_t def)
{
    ngx_str_t                 name, arg;
    ngx_game_lb_live_t       *live;
    ngx_game_lb_main_conf_t  *lmcf;

    lmcf = ngx_http_get_module_main_conf(r, ngx_game_lb_module);

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_GAME_LB_BAD_METHOD;
    }

    if (ngx_game_lb_path_segment(r, 1, &name) != NGX_OK) {
        return NGX_ERROR;
    }

    ctx->board = ngx_game_lb_board(lmcf, &name);
    if (ctx->board == NULL) {
        return NGX_GAME_LB_NO_BOARD;
    }

    ctx->limit = def;

    if (ngx_http_arg(r, (u_char *) "limit", 5, &arg) == NGX_OK) {
        ctx->limit = ngx_atoi(arg.data, arg.len);
        if (ctx->limit == NGX_ERROR || ctx->limit < 1
            || ctx->limit > NGX_GAME_LB_LIMIT_MAX)
        {
            return NGX_GAME_LB_BAD_LIMIT;
        }
    }

    ngx_str_set(&ctx->region, "*");

    if (ngx_http_arg(r, (u_char *) "region", 6, &arg) == NGX_OK) {
        if (!ctx->board->regions
            || !game_lb_region_valid((char *) arg.data, arg.len))
        {
            return NGX_GAME_LB_BAD_REGION;
        }

        ctx->region = *ngx_game_lb_text(r->pool, (char *) arg.data, arg.len);
    }

    live = ngx_game_lb_live(lmcf, ctx->board);
    if (live == NULL || live->season_len == 0) {
        return NGX_GAME_LB_NO_SEASON_YET;
    }

    ctx->season = *ngx_game_lb_text(r->pool, (char *) live->season,
                                    live->season_len);

    if (ngx_http_arg(r, (u_char *) "season", 6, &arg) == NGX_OK) {
        if (!game_lb_season_valid((char *) arg.data, arg.len)) {
            return NGX_GAME_LB_BAD_SEASON;
        }

        if (arg.len != ctx->season.len
            || ngx_strncmp(arg.data, ctx->season.data, arg.len) != 0)
        {
            ctx->archive = 1;
            ctx->season = *ngx_game_lb_text(r->pool, (char *) arg.data,
                                            arg.len);
        }
    }

    if (ctx->season.data == NULL || ctx->region.data == NULL) {
        return NGX_ERROR;
    }

    if (!ctx->around
        && ngx_http_arg(r, (u_char *) "cursor", 6, &arg) == NGX_OK)
    {
        return ngx_game_lb_cursor_parse(r, ctx, &arg);
    }

    return NGX_OK;
}


/* "c|season|region|member" or "a|season|region|rank", base64url */
static ngx_int_t
ngx_game_lb_cursor_parse(ngx_http_request_t *r, ngx_game_lb_ctx_t *ctx,
    ngx_str_t *arg)
{
    u_char           *p, *last;
    ngx_str_t         raw, season, region;
    game_lb_entry_t   e;

    if (arg->len == 0 || arg->len > 512) {
        return NGX_GAME_LB_BAD_CURSOR;
    }

    raw.data = ngx_pnalloc(r->pool, ngx_base64_decoded_length(arg->len));
    if (raw.data == NULL) {
        return NGX_ERROR;
    }

    if (ngx_decode_base64url(&raw, arg) != NGX_OK || raw.len < 4
        || raw.data[1] != '|'
        || (raw.data[0] != (ctx->archive ? 'a' : 'c')))
    {
        return NGX_GAME_LB_BAD_CURSOR;
    }

    last = raw.data + raw.len;

    season.data = raw.data + 2;
    p = ngx_strlchr(season.data, last, '|');
    if (p == NULL) {
        return NGX_GAME_LB_BAD_CURSOR;
    }
    season.len = p - season.data;

    region.data = p + 1;
    p = ngx_strlchr(region.data, last, '|');
    if (p == NULL) {
        return NGX_GAME_LB_BAD_CURSOR;
    }
    region.len = p - region.data;
    p++;

    /* a cursor of this very view: another season's or region's order is
     * not this one's */
    if (season.len != ctx->season.len || region.len != ctx->region.len
        || ngx_strncmp(season.data, ctx->season.data, season.len) != 0
        || ngx_strncmp(region.data, ctx->region.data, region.len) != 0)
    {
        return NGX_GAME_LB_BAD_CURSOR;
    }

    if (ctx->archive) {
        ctx->after_rank = ngx_atoi(p, last - p);
        return (ctx->after_rank < 1) ? NGX_GAME_LB_BAD_CURSOR : NGX_OK;
    }

    if (game_lb_member_parse((char *) p, last - p, ctx->board->desc, &e)
        != 0)
    {
        return NGX_GAME_LB_BAD_CURSOR;
    }

    ctx->after.data = p;
    ctx->after.len = last - p;

    return NGX_OK;
}


static ngx_str_t *
ngx_game_lb_cursor_make(ngx_http_request_t *r, ngx_game_lb_ctx_t *ctx,
    const char *kind, u_char *last, size_t len)
{
    ngx_str_t  raw, *out;

    raw.data = ngx_pnalloc(r->pool, ctx->season.len + ctx->region.len + len
                                    + 8);
    out = ngx_palloc(r->pool, sizeof(ngx_str_t));
    if (raw.data == NULL || out == NULL) {
        return NULL;
    }

    raw.len = ngx_sprintf(raw.data, "%s|%V|%V|%*s", kind, &ctx->season,
                          &ctx->region, len, last)
              - raw.data;

    out->data = ngx_pnalloc(r->pool, ngx_base64_encoded_length(raw.len) + 1);
    if (out->data == NULL) {
        return NULL;
    }

    ngx_encode_base64url(out, &raw);
    out->data[out->len] = '\0';

    return out;
}


/*
 * The answer to a request that a helper refused.  The helpers only say
 * why: one that sent the answer itself would return what the send
 * returned, often NGX_OK, and its caller would carry on as if all were
 * well.
 */
static ngx_int_t
ngx_game_lb_refuse(ngx_http_request_t *r, ngx_int_t why)
{
    switch (why) {

    case NGX_GAME_LB_BAD_METHOD:
        return ngx_game_http_send_error(r, NGX_HTTP_NOT_ALLOWED,
                                        "method_not_allowed",
                                        "leaderboards are read with GET");

    case NGX_GAME_LB_NO_BOARD:
        return ngx_game_http_send_error(r, NGX_HTTP_NOT_FOUND,
                                        "unknown_leaderboard",
                                        "no such leaderboard");

    case NGX_GAME_LB_BAD_LIMIT:
        return ngx_game_http_send_error(r, NGX_GAME_HTTP_UNPROCESSABLE,
                                        "invalid_limit",
                                        "\"limit\" is 1 to 100");

    case NGX_GAME_LB_BAD_CURSOR:
        return ngx_game_http_send_error(r, NGX_GAME_HTTP_UNPROCESSABLE,
                                        "invalid_cursor",
                                        "\"cursor\" is a page's "
                                        "\"next_cursor\" of this board, "
                                        "season and region");

    case NGX_GAME_LB_BAD_REGION:
        return ngx_game_http_send_error(r, NGX_GAME_HTTP_UNPROCESSABLE,
                                        "invalid_region",
                                        "this board has no such region");

    case NGX_GAME_LB_BAD_SEASON:
        return ngx_game_http_send_error(r, NGX_GAME_HTTP_UNPROCESSABLE,
                                        "invalid_season",
                                        "\"season\" is \"previous\" or a "
                                        "season's id");

    case NGX_GAME_LB_NO_PLAYER:
        return ngx_game_http_send_error(r, NGX_HTTP_NOT_FOUND, "no_entry",
                                        "the player has no score on this "
                                        "board");

    case NGX_GAME_LB_NOBODY:
        return ngx_game_http_send_error(r, NGX_HTTP_UNAUTHORIZED,
                                        "unauthorized",
                                        "a signed-in player is required");

    case NGX_GAME_LB_NO_SEASON_YET:
        return ngx_game_http_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                        "unavailable",
                                        "the leaderboards are starting, "
                                        "retry later");

    default:
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
}


/* the live season's page (or window) from Redis */
static ngx_int_t
ngx_game_lb_read(ngx_http_request_t *r, ngx_game_lb_ctx_t *ctx)
{
    u_char                   *p, limit[NGX_INT_T_LEN];
    ngx_int_t                 rc;
    const char               *argv[7];
    size_t                    argvlen[7];
    ngx_game_redis_cmd_t     *cmd;
    ngx_game_lb_main_conf_t  *lmcf;

    lmcf = ngx_http_get_module_main_conf(r, ngx_game_lb_module);

    p = ngx_pnalloc(r->pool, 3 * NGX_GAME_LB_KEY_LEN);
    cmd = ngx_game_redis_request_cmd(r);
    if (p == NULL || cmd == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    argv[0] = (char *) p;
    p = ngx_game_lb_key(p, "meta", &ctx->board->name, &ctx->season, NULL);
    argvlen[0] = p - (u_char *) argv[0];
    argv[1] = "lb:alive";
    argvlen[1] = 8;
    argv[2] = (char *) p;
    p = ngx_game_lb_key(p, "z", &ctx->board->name, &ctx->season,
                        &ctx->region);
    argvlen[2] = p - (u_char *) argv[2];
    argv[3] = (char *) p;
    p = ngx_game_lb_key(p, "h", &ctx->board->name, &ctx->season,
                        &ctx->region);
    argvlen[3] = p - (u_char *) argv[3];

    if (ctx->around) {
        argv[4] = "around";
        argv[5] = (char *) ctx->player.data;
        argvlen[5] = ctx->player.len;

    } else if (ctx->after.len) {
        argv[4] = "after";
        argv[5] = (char *) ctx->after.data;
        argvlen[5] = ctx->after.len;

    } else {
        argv[4] = "top";
        argv[5] = "";
        argvlen[5] = 0;
    }

    argvlen[4] = ngx_strlen(argv[4]);
    argv[6] = (char *) limit;
    argvlen[6] = ngx_sprintf(limit, "%i", ctx->limit) - limit;

    cmd->handler = ngx_game_lb_read_got;
    cmd->data = r;

    rc = ngx_game_redis_eval(lmcf->redis, cmd, &ngx_game_lb_page_lua, 0, 7,
                             argv, argvlen);
    if (rc != NGX_AGAIN) {
        return ngx_game_http_send_outcome(r, rc, "the leaderboards");
    }

    r->main->count++;
    return NGX_DONE;
}


static void
ngx_game_lb_read_got(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply)
{
    size_t               i, n;
    redisReply          *list, *m;
    ngx_http_request_t  *r = cmd->data;
    ngx_game_lb_ctx_t   *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_game_lb_module);

    if (rc != NGX_OK) {
        ngx_http_finalize_request(r,
            ngx_game_http_send_outcome(r, rc, "the leaderboards"));
        return;
    }

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 1
        || reply->element[0]->type != REDIS_REPLY_STRING)
    {
        ngx_http_finalize_request(r,
            ngx_game_http_send_outcome(r, NGX_ERROR, "the leaderboards"));
        return;
    }

    if (reply->element[0]->len == 4
        && ngx_strncmp(reply->element[0]->str, "BUSY", 4) == 0)
    {
        ngx_http_finalize_request(r,
            ngx_game_http_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                     "rebuilding",
                                     "the leaderboard is being rebuilt, "
                                     "retry later"));
        return;
    }

    if (reply->element[0]->len == 4
        && ngx_strncmp(reply->element[0]->str, "NONE", 4) == 0)
    {
        ngx_http_finalize_request(r,
                                  ngx_game_lb_refuse(r, NGX_GAME_LB_NO_PLAYER));
        return;
    }

    if (reply->elements != 4 || reply->element[1]->type != REDIS_REPLY_INTEGER
        || reply->element[3]->type != REDIS_REPLY_ARRAY)
    {
        ngx_http_finalize_request(r,
            ngx_game_http_send_outcome(r, NGX_ERROR, "the leaderboards"));
        return;
    }

    list = reply->element[3];
    n = ngx_min(list->elements, (size_t) ctx->limit);

    ctx->first = reply->element[1]->integer;
    ctx->more = (list->elements > (size_t) ctx->limit);
    ctx->n = n;
    ctx->members = ngx_palloc(r->pool, (n + 1) * sizeof(ngx_str_t));
    if (ctx->members == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* the reply goes when this returns */
    for (i = 0; i < n; i++) {
        m = list->element[i];
        if (m->type != REDIS_REPLY_STRING) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        ctx->members[i] = *ngx_game_lb_text(r->pool, m->str, m->len);
    }

    ngx_http_finalize_request(r, ngx_game_lb_names(r, ctx));
}


/* the names of the page's players, erased ones left out */
static ngx_int_t
ngx_game_lb_names(ngx_http_request_t *r, ngx_game_lb_ctx_t *ctx)
{
    u_char       *p;
    ngx_uint_t    i;
    const char   *values[1];

    /* an array literal of ids: members hold checked UUIDs only */
    p = ngx_pnalloc(r->pool, ctx->n * 37 + 3);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    values[0] = (char *) p;
    *p++ = '{';

    for (i = 0; i < ctx->n; i++) {
        if (ctx->members[i].len != GAME_LB_MEMBER_LEN
            || !game_lb_uuid_valid((char *) ctx->members[i].data + 44, 36))
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        p = ngx_sprintf(p, "%s%*s", i ? "," : "", (size_t) 36,
                        ctx->members[i].data + 44);
    }

    *p++ = '}';
    *p = '\0';

    return ngx_game_lb_query(r, &ngx_game_lb_names_stmt, values,
                             ngx_game_lb_names_got);
}


static void
ngx_game_lb_names_got(ngx_game_pg_query_t *q, ngx_int_t rc, PGresult *res)
{
    char                 iso[24];
    json_t              *names, *body, *entries, *e, *name;
    ngx_str_t           *next;
    ngx_uint_t           i;
    json_error_t         err;
    game_lb_entry_t      en;
    ngx_http_request_t  *r = q->data;
    ngx_game_lb_ctx_t   *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_game_lb_module);

    if (rc != NGX_OK || PQntuples(res) != 1) {
        ngx_http_finalize_request(r,
            ngx_game_http_send_outcome(r, rc == NGX_OK ? NGX_ERROR : rc,
                                       "the leaderboards' database"));
        return;
    }

    names = json_loadb(PQgetvalue(res, 0, 0), PQgetlength(res, 0, 0), 0,
                       &err);
    entries = json_array();
    body = json_object();

    if (!json_is_object(names) || entries == NULL || body == NULL) {
        json_decref(names);
        json_decref(entries);
        json_decref(body);
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    for (i = 0; i < ctx->n; i++) {
        if (game_lb_member_parse((char *) ctx->members[i].data,
                                 ctx->members[i].len, ctx->board->desc, &en)
            != 0)
        {
            continue;
        }

        /* an erased player is not shown (the outbox drops them soon) */
        name = json_object_get(names, en.player);
        if (name == NULL) {
            continue;
        }

        (void) game_lb_time_iso(iso, en.reached_ms);

        e = json_pack("{s:I,s:s,s:O,s:I,s:I,s:s#}",
                      "rank", (json_int_t) (ctx->first + i + 1),
                      "player_id", en.player,
                      "username", name,
                      "score", (json_int_t) en.score,
                      "subscore", (json_int_t) en.subscore,
                      "updated_at", iso, (int) sizeof(iso));
        if (e) {
            json_array_append_new(entries, e);
        }
    }

    json_decref(names);

    json_object_set_new(body, "leaderboard",
                        json_stringn((char *) ctx->board->name.data,
                                     ctx->board->name.len));
    json_object_set_new(body, "season",
                        json_stringn((char *) ctx->season.data,
                                     ctx->season.len));
    json_object_set_new(body, "region",
                        ctx->region.data[0] == '*'
                        ? json_null()
                        : json_stringn((char *) ctx->region.data,
                                       ctx->region.len));

    if (ctx->around) {
        json_object_set_new(body, "player_id",
                            json_stringn((char *) ctx->player.data,
                                         ctx->player.len));
    }

    json_object_set_new(body, "entries", entries);

    if (!ctx->around) {
        next = NULL;
        if (ctx->more && ctx->n) {
            next = ngx_game_lb_cursor_make(r, ctx, "c",
                                           ctx->members[ctx->n - 1].data,
                                           ctx->members[ctx->n - 1].len);
        }

        json_object_set_new(body, "next_cursor",
                            next ? json_string((char *) next->data)
                                 : json_null());
    }

    ngx_http_finalize_request(r, ngx_game_lb_send(r, body, &ctx->cache_key));
    json_decref(body);
}


/* a finished season's page or window, from PostgreSQL */
static ngx_int_t
ngx_game_lb_archive(ngx_http_request_t *r, ngx_game_lb_ctx_t *ctx)
{
    const char          *values[6];
    ngx_game_lb_live_t  *live;
    ngx_game_lb_main_conf_t  *lmcf;

    lmcf = ngx_http_get_module_main_conf(r, ngx_game_lb_module);
    live = ngx_game_lb_live(lmcf, ctx->board);

    values[0] = (char *) ngx_game_lb_text(r->pool,
                                          (char *) ctx->board->name.data,
                                          ctx->board->name.len)->data;
    values[1] = (char *) ctx->season.data;
    values[2] = (char *) ngx_game_lb_text(r->pool, (char *) live->season,
                                          live->season_len)->data;
    values[3] = (char *) ctx->region.data;
    values[5] = (char *) ngx_game_lb_number(r->pool, ctx->limit);

    if (ctx->around) {
        values[4] = (char *) ctx->player.data;
        return ngx_game_lb_query(r, &ngx_game_lb_archive_around_stmt, values,
                                 ngx_game_lb_archive_got);
    }

    values[4] = (char *) ngx_game_lb_number(r->pool, ctx->after_rank);

    return ngx_game_lb_query(r, &ngx_game_lb_archive_page_stmt, values,
                             ngx_game_lb_archive_got);
}


static void
ngx_game_lb_archive_got(ngx_game_pg_query_t *q, ngx_int_t rc, PGresult *res)
{
    u_char               rank[NGX_INT64_LEN];
    json_t              *a, *body, *next;
    ngx_str_t           *cursor;
    json_error_t         err;
    ngx_http_request_t  *r = q->data;
    ngx_game_lb_ctx_t   *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_game_lb_module);

    if (rc != NGX_OK || PQntuples(res) != 1) {
        ngx_http_finalize_request(r,
            ngx_game_http_send_outcome(r, rc == NGX_OK ? NGX_ERROR : rc,
                                       "the leaderboards' database"));
        return;
    }

    if (PQgetisnull(res, 0, 0)) {
        ngx_http_finalize_request(r,
            ngx_game_http_send_error(r, NGX_HTTP_NOT_FOUND, "unknown_season",
                                     "this board has no such finished "
                                     "season"));
        return;
    }

    a = json_loadb(PQgetvalue(res, 0, 0), PQgetlength(res, 0, 0), 0, &err);
    if (!json_is_object(a) || !json_is_string(json_object_get(a, "season")))
    {
        json_decref(a);
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (json_object_get(a, "entries") == NULL) {
        json_decref(a);
        ngx_http_finalize_request(r,
                                  ngx_game_lb_refuse(r, NGX_GAME_LB_NO_PLAYER));
        return;
    }

    /* "previous" is answered with the season it means */
    ctx->season = *ngx_game_lb_text(r->pool,
                      json_string_value(json_object_get(a, "season")),
                      json_string_length(json_object_get(a, "season")));

    body = json_pack("{s:s%,s:O,s:o,s:O}",
                     "leaderboard", ctx->board->name.data,
                     ctx->board->name.len,
                     "season", json_object_get(a, "season"),
                     "region", ctx->region.data[0] == '*'
                               ? json_null()
                               : json_stringn((char *) ctx->region.data,
                                              ctx->region.len),
                     "entries", json_object_get(a, "entries"));

    if (body && ctx->around) {
        json_object_set_new(body, "player_id",
                            json_stringn((char *) ctx->player.data,
                                         ctx->player.len));

    } else if (body) {
        next = json_object_get(a, "next_rank");
        cursor = NULL;

        if (json_is_integer(next)) {
            cursor = ngx_game_lb_cursor_make(r, ctx, "a", rank,
                         ngx_sprintf(rank, "%L",
                                     (int64_t) json_integer_value(next))
                         - rank);
        }

        json_object_set_new(body, "next_cursor",
                            cursor ? json_string((char *) cursor->data)
                                   : json_null());
    }

    json_decref(a);

    if (body == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_finalize_request(r, ngx_game_lb_send(r, body, NULL));
    json_decref(body);
}


/*
 * GET /player/{id}/stats: matches, wins, losses, draws, kills, deaths,
 * playtime and rating per mode (PostgreSQL: the economy's player_stats and
 * the matchmaker's player_ratings), and the player's rank on every board's
 * live global season (Redis).
 */
ngx_int_t
ngx_game_lb_stats(ngx_http_request_t *r)
{
    ngx_str_t    player;
    const char  *values[1];

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return ngx_game_lb_refuse(r, NGX_GAME_LB_BAD_METHOD);
    }

    if (ngx_game_lb_path_segment(r, 1, &player) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (!game_lb_uuid_valid((char *) player.data, player.len)) {
        return ngx_game_http_send_error(r, NGX_HTTP_NOT_FOUND, "no_player",
                                        "no such player");
    }

    ngx_strlow(player.data, player.data, player.len);
    values[0] = (char *) player.data;

    return ngx_game_lb_query(r, &ngx_game_lb_stats_stmt, values,
                             ngx_game_lb_stats_got);
}


typedef struct {
    json_t                     *stats;
    ngx_str_t                   player;
} ngx_game_lb_stats_ctx_t;


static void
ngx_game_lb_stats_cleanup(void *data)
{
    json_decref(data);
}


static void
ngx_game_lb_stats_got(ngx_game_pg_query_t *q, ngx_int_t rc, PGresult *res)
{
    u_char                   *p;
    ngx_uint_t                i, k, nb;
    const char              **argv;
    size_t                   *argvlen;
    json_error_t              err;
    ngx_str_t                 season;
    ngx_pool_cleanup_t       *cln;
    ngx_game_redis_cmd_t     *cmd;
    ngx_game_lb_live_t       *live;
    ngx_game_lb_board_t      *b;
    ngx_http_request_t       *r = q->data;
    ngx_game_lb_stats_ctx_t  *sc;
    ngx_game_lb_main_conf_t  *lmcf;

    static ngx_str_t  global = ngx_string("*");

    lmcf = ngx_http_get_module_main_conf(r, ngx_game_lb_module);

    if (rc != NGX_OK || PQntuples(res) != 1) {
        ngx_http_finalize_request(r,
            ngx_game_http_send_outcome(r, rc == NGX_OK ? NGX_ERROR : rc,
                                       "the leaderboards' database"));
        return;
    }

    if (PQgetisnull(res, 0, 0)) {
        ngx_http_finalize_request(r,
            ngx_game_http_send_error(r, NGX_HTTP_NOT_FOUND, "no_player",
                                     "no such player"));
        return;
    }

    sc = ngx_pcalloc(r->pool, sizeof(ngx_game_lb_stats_ctx_t));
    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (sc == NULL || cln == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    sc->stats = json_loadb(PQgetvalue(res, 0, 0), PQgetlength(res, 0, 0), 0,
                           &err);
    if (!json_is_object(sc->stats)) {
        json_decref(sc->stats);
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    cln->handler = ngx_game_lb_stats_cleanup;
    cln->data = sc->stats;

    sc->player = *ngx_game_lb_text(r->pool, (char *) q->values[0], 36);
    ngx_http_set_ctx(r, sc, ngx_game_lb_module);

    /* alive, (meta, zkey, hkey) per board, player */
    nb = lmcf->boards.nelts;
    argv = ngx_palloc(r->pool, (3 * nb + 2) * sizeof(char *));
    argvlen = ngx_palloc(r->pool, (3 * nb + 2) * sizeof(size_t));
    p = ngx_pnalloc(r->pool, 3 * nb * NGX_GAME_LB_KEY_LEN);
    cmd = ngx_game_redis_request_cmd(r);
    if (argv == NULL || argvlen == NULL || p == NULL || cmd == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    argv[0] = "lb:alive";
    argvlen[0] = 8;
    k = 1;
    b = lmcf->boards.elts;

    for (i = 0; i < nb; i++) {
        live = ngx_game_lb_live(lmcf, &b[i]);
        season.data = live ? live->season : (u_char *) "";
        season.len = live ? live->season_len : 0;

        argv[k] = (char *) p;
        p = ngx_game_lb_key(p, "meta", &b[i].name, &season, NULL);
        argvlen[k] = p - (u_char *) argv[k];
        argv[k + 1] = (char *) p;
        p = ngx_game_lb_key(p, "z", &b[i].name, &season, &global);
        argvlen[k + 1] = p - (u_char *) argv[k + 1];
        argv[k + 2] = (char *) p;
        p = ngx_game_lb_key(p, "h", &b[i].name, &season, &global);
        argvlen[k + 2] = p - (u_char *) argv[k + 2];
        k += 3;
    }

    argv[k] = (char *) sc->player.data;
    argvlen[k] = 36;
    k++;

    cmd->handler = ngx_game_lb_ranks_got;
    cmd->data = r;

    /* a board count past what an EVALSHA takes: ranks stay unknown */
    if (k > NGX_GAME_REDIS_MAX_ARGS - 3
        || ngx_game_redis_eval(lmcf->redis, cmd, &ngx_game_lb_ranks_lua, 0,
                               k, argv, argvlen)
           != NGX_AGAIN)
    {
        ngx_game_lb_ranks_got(cmd, NGX_GAME_UNAVAILABLE, NULL);
        return;
    }
}


static void
ngx_game_lb_ranks_got(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply)
{
    json_t                   *boards, *one;
    ngx_uint_t                i;
    redisReply               *rank, *member;
    game_lb_entry_t           e;
    ngx_game_lb_live_t       *live;
    ngx_game_lb_board_t      *b;
    ngx_http_request_t       *r = cmd->data;
    ngx_game_lb_stats_ctx_t  *sc;
    ngx_game_lb_main_conf_t  *lmcf;

    lmcf = ngx_http_get_module_main_conf(r, ngx_game_lb_module);
    sc = ngx_http_get_module_ctx(r, ngx_game_lb_module);

    boards = json_object();
    if (boards == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    b = lmcf->boards.elts;

    for (i = 0; i < lmcf->boards.nelts; i++) {
        live = ngx_game_lb_live(lmcf, &b[i]);

        one = json_pack("{s:s%,s:n,s:n,s:n}",
                        "season", live ? (char *) live->season : "",
                        live ? live->season_len : 0,
                        "rank", "score", "subscore");
        if (one == NULL) {
            continue;
        }

        if (rc == NGX_OK && reply->type == REDIS_REPLY_ARRAY
            && reply->elements == 2 * lmcf->boards.nelts)
        {
            rank = reply->element[2 * i];
            member = reply->element[2 * i + 1];

            if (rank->type == REDIS_REPLY_INTEGER && rank->integer >= 0
                && member->type == REDIS_REPLY_STRING
                && game_lb_member_parse(member->str, member->len, b[i].desc,
                                        &e)
                   == 0)
            {
                json_object_set_new(one, "rank",
                                    json_integer(rank->integer + 1));
                json_object_set_new(one, "score", json_integer(e.score));
                json_object_set_new(one, "subscore",
                                    json_integer(e.subscore));

            } else if (rank->type == REDIS_REPLY_INTEGER
                       && rank->integer == -2)
            {
                json_object_set_new(one, "rebuilding", json_true());
            }

        } else {
            json_object_set_new(one, "unavailable", json_true());
        }

        json_object_setn_new(boards, (char *) b[i].name.data, b[i].name.len,
                             one);
    }

    json_object_set_new(sc->stats, "leaderboards", boards);

    ngx_http_finalize_request(r, ngx_game_lb_send(r, sc->stats, NULL));
}


static ngx_int_t
ngx_game_lb_query(ngx_http_request_t *r, ngx_game_pg_stmt_t *stmt,
    const char **values, ngx_game_pg_handler_pt handler)
{
    int                       i;
    ngx_int_t                 rc;
    ngx_game_pg_query_t      *q;
    ngx_game_lb_main_conf_t  *lmcf;

    lmcf = ngx_http_get_module_main_conf(r, ngx_game_lb_module);

    for (i = 0; i < stmt->nparams; i++) {
        if (values[i] == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    q = ngx_game_pg_request_query(r, stmt);
    if (q == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    for (i = 0; i < stmt->nparams; i++) {
        q->values[i] = values[i];
    }

    q->handler = handler;
    q->data = r;

    rc = ngx_game_pg_query_run(lmcf->pg, q);
    if (rc != NGX_AGAIN) {
        return ngx_game_http_send_outcome(r, rc,
                                          "the leaderboards' database");
    }

    r->main->count++;
    return NGX_DONE;
}


/* 200 with "body"; a first page goes to the cache too */
static ngx_int_t
ngx_game_lb_send(ngx_http_request_t *r, json_t *body, ngx_str_t *cache_key)
{
    size_t     len;
    ngx_str_t  text;

    len = json_dumpb(body, NULL, 0, JSON_COMPACT);

    text.data = ngx_pnalloc(r->pool, len + 1);
    if (text.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    text.len = json_dumpb(body, (char *) text.data, len, JSON_COMPACT);
    text.data[text.len++] = '\n';

    if (cache_key && cache_key->len) {
        ngx_game_lb_cache_put(r, cache_key, &text);
    }

    return ngx_game_http_send_text(r, NGX_HTTP_OK, &text);
}


/*
 * The path's segment number "n" (0 is the first after the leading slash),
 * NUL-terminated in the request's memory.  The locations' regular
 * expressions decide the shape; this only takes the piece out.
 */
ngx_int_t
ngx_game_lb_path_segment(ngx_http_request_t *r, ngx_uint_t n, ngx_str_t *seg)
{
    u_char  *p, *last, *start;

    p = r->uri.data;
    last = r->uri.data + r->uri.len;

    for ( ;; ) {
        if (p == last || *p != '/') {
            ngx_str_null(seg);
            seg->data = (u_char *) "";
            return NGX_OK;
        }

        start = ++p;
        while (p < last && *p != '/') {
            p++;
        }

        if (n-- == 0) {
            break;
        }
    }

    seg->data = ngx_pnalloc(r->pool, p - start + 1);
    if (seg->data == NULL) {
        return NGX_ERROR;
    }

    seg->len = p - start;
    *ngx_cpymem(seg->data, start, seg->len) = '\0';

    return NGX_OK;
}


/* a number as SQL text, NUL-terminated, in "pool" */
u_char *
ngx_game_lb_number(ngx_pool_t *pool, int64_t n)
{
    u_char  *p;

    p = ngx_pnalloc(pool, NGX_INT64_LEN + 1);
    if (p == NULL) {
        return NULL;
    }

    *ngx_sprintf(p, "%L", n) = '\0';

    return p;
}


/* a NUL-terminated copy in "pool"; an empty string without memory */
ngx_str_t *
ngx_game_lb_text(ngx_pool_t *pool, const char *s, size_t len)
{
    ngx_str_t  *t;

    static ngx_str_t  none = ngx_null_string;

    t = ngx_palloc(pool, sizeof(ngx_str_t));
    if (t == NULL) {
        return &none;
    }

    t->data = ngx_pnalloc(pool, len + 1);
    if (t->data == NULL) {
        return &none;
    }

    ngx_memcpy(t->data, s, len);
    t->data[len] = '\0';
    t->len = len;

    return t;
}
