
/*
 * The admin endpoints:
 *
 *   GET  /admin/telemetry/flagged?limit=&cursor=&evidence=
 *        players the anti-cheat rules flagged for review, newest first,
 *        each with its score and its latest evidence
 *   POST /admin/telemetry/players/{id}/review  {decision, note?}
 *        "clear" lifts the flag (and the score starts again), "confirm"
 *        keeps it; nobody is banned from here either
 *   GET  /admin/telemetry/stats
 *        the counters (accepted, rejected, refused, written, duplicates,
 *        dropped, dead-lettered) and the backlogs
 *
 * An admin sends "Authorization: Bearer <secret>", one of the secrets of
 * game_tel_admin, checked by the core (ngx_game_admin_who) like the
 * economy's.  These locations are not behind game_auth_jwt.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_game_tel.h"


typedef struct {
    ngx_game_admin_t           *admin;
    ngx_str_t                   player;
} ngx_game_tel_admin_ctx_t;


static ngx_int_t ngx_game_tel_admin_refuse(ngx_http_request_t *r,
    ngx_uint_t method, const char *verb, ngx_int_t *sent);
static ngx_int_t ngx_game_tel_admin_query(ngx_http_request_t *r,
    ngx_game_pg_stmt_t *stmt, const char **values);
static void ngx_game_tel_admin_answered(ngx_game_pg_query_t *q, ngx_int_t rc,
    PGresult *res);
static void ngx_game_tel_admin_review_body(ngx_http_request_t *r,
    json_t *body);
static ngx_int_t ngx_game_tel_admin_arg(ngx_http_request_t *r,
    const char *name, ngx_int_t def, ngx_int_t max, u_char **text);
static void ngx_game_tel_admin_stats_got(ngx_game_redis_cmd_t *cmd,
    ngx_int_t rc, redisReply *reply);


static ngx_game_pg_stmt_t  ngx_game_tel_flagged_stmt = {
    "game_tel_flagged",
    "SELECT (a->>'status')::integer, a->'body' "
    "FROM tel_flagged_list($1::integer, $2, $3::integer) AS a",
    3
};

static ngx_game_pg_stmt_t  ngx_game_tel_review_stmt = {
    "game_tel_review",
    "SELECT (a->>'status')::integer, a->'body' "
    "FROM tel_review($1::uuid, $2, $3, $4) AS a",
    4
};


/* ARGV: stats key, the two streams, their dead-letter streams */
static ngx_game_redis_script_t  ngx_game_tel_stats_lua = {
    "return {redis.call('HGETALL', ARGV[1]),\n"
    "        redis.call('XLEN', ARGV[2]), redis.call('XLEN', ARGV[3]),\n"
    "        redis.call('XLEN', ARGV[4]), redis.call('XLEN', ARGV[5])}\n",
    0, ""
};


ngx_int_t
ngx_game_tel_admin_flagged(ngx_http_request_t *r)
{
    ngx_int_t    rc;
    const char  *values[3];
    u_char      *limit, *evidence, *cursor;
    ngx_str_t    v;

    if (ngx_game_tel_admin_refuse(r, NGX_HTTP_GET, "list with GET", &rc)
        != NGX_OK)
    {
        return rc;
    }

    if (ngx_game_tel_admin_arg(r, "limit", 50, 500, &limit) != NGX_OK
        || ngx_game_tel_admin_arg(r, "evidence", 10, 100, &evidence)
           != NGX_OK)
    {
        return ngx_game_http_send_error(r, NGX_GAME_HTTP_UNPROCESSABLE,
                                        "invalid_page",
                                        "limit is 1 to 500, evidence 1 to "
                                        "100");
    }

    cursor = NULL;

    if (ngx_http_arg(r, (u_char *) "cursor", 6, &v) == NGX_OK && v.len) {
        /* checked by tel_flagged_list; only its length here */
        if (v.len > 128) {
            return ngx_game_http_send_error(r, NGX_GAME_HTTP_UNPROCESSABLE,
                                            "invalid_cursor",
                                            "the cursor is not one this "
                                            "endpoint gave");
        }

        cursor = ngx_pnalloc(r->pool, v.len + 1);
        if (cursor == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        /* ':' may come percent-encoded */
        *ngx_cpymem(cursor, v.data, v.len) = '\0';
        if (ngx_strlchr(cursor, cursor + v.len, '%')) {
            u_char  *src = cursor, *dst = cursor;

            ngx_unescape_uri(&dst, &src, v.len, 0);
            *dst = '\0';
        }
    }

    values[0] = (char *) limit;
    values[1] = (char *) cursor;
    values[2] = (char *) evidence;

    return ngx_game_tel_admin_query(r, &ngx_game_tel_flagged_stmt, values);
}


ngx_int_t
ngx_game_tel_admin_review(ngx_http_request_t *r)
{
    u_char                    *p, *last, *start;
    ngx_int_t                  rc;
    ngx_game_tel_admin_ctx_t  *ctx;

    if (ngx_game_tel_admin_refuse(r, NGX_HTTP_POST, "review with POST", &rc)
        != NGX_OK)
    {
        return rc;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_game_tel_module);

    /* /admin/telemetry/players/{id}/review: the fourth segment */
    p = r->uri.data;
    last = r->uri.data + r->uri.len;
    start = NULL;

    for (rc = 0; p < last; p++) {
        if (*p == '/') {
            if (++rc == 4) {
                start = p + 1;
            } else if (rc == 5) {
                break;
            }
        }
    }

    if (start == NULL || !game_uuid_valid(start, p - start)) {
        return ngx_game_http_send_error(r, NGX_HTTP_NOT_FOUND, "not_flagged",
                                        "this player is not flagged for "
                                        "review");
    }

    ctx->player.len = GAME_UUID_LEN;
    ctx->player.data = ngx_pnalloc(r->pool, GAME_UUID_LEN + 1);
    if (ctx->player.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    *ngx_cpymem(ctx->player.data, start, GAME_UUID_LEN) = '\0';

    return ngx_game_http_read_json(r, ngx_game_tel_admin_review_body);
}


static void
ngx_game_tel_admin_review_body(ngx_http_request_t *r, json_t *body)
{
    json_t                    *decision, *note;
    const char                *values[4];
    ngx_game_tel_admin_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_game_tel_module);

    decision = json_object_get(body, "decision");
    note = json_object_get(body, "note");

    if (!json_is_string(decision) || (note && !json_is_string(note))) {
        ngx_http_finalize_request(r,
            ngx_game_http_send_error(r, NGX_GAME_HTTP_UNPROCESSABLE,
                                     "invalid_review",
                                     "a review is {\"decision\": \"clear\" "
                                     "| \"confirm\", \"note\"?}"));
        return;
    }

    values[0] = (char *) ctx->player.data;
    values[1] = json_string_value(decision);
    values[2] = (char *) ctx->admin->name.data;
    values[3] = note ? json_string_value(note) : NULL;

    ngx_http_finalize_request(r,
        ngx_game_tel_admin_query(r, &ngx_game_tel_review_stmt, values));
}


ngx_int_t
ngx_game_tel_admin_stats(ngx_http_request_t *r)
{
    u_char                     dead[2][128];
    ngx_int_t                  rc;
    ngx_game_redis_cmd_t      *cmd;
    ngx_game_redis_args_t      a;
    ngx_game_tel_main_conf_t  *tmcf;

    if (ngx_game_tel_admin_refuse(r, NGX_HTTP_GET, "read with GET", &rc)
        != NGX_OK)
    {
        return rc;
    }

    tmcf = ngx_http_get_module_main_conf(r, ngx_game_tel_module);

    if (ngx_game_tel_stats_lua.len == 0) {
        ngx_game_tel_stats_lua.len = ngx_strlen(ngx_game_tel_stats_lua.text);
        ngx_game_redis_script_init(&ngx_game_tel_stats_lua);
    }

    ngx_memzero(&a, sizeof(ngx_game_redis_args_t));
    ngx_game_redis_arg_str(&a, &tmcf->stats);
    ngx_game_redis_arg_str(&a, &tmcf->stream);
    ngx_game_redis_arg_str(&a, &tmcf->server_stream);
    ngx_game_redis_arg(&a, dead[0],
                       ngx_snprintf(dead[0], sizeof(dead[0]), "%V:dead",
                                    &tmcf->stream) - dead[0]);
    ngx_game_redis_arg(&a, dead[1],
                       ngx_snprintf(dead[1], sizeof(dead[1]), "%V:dead",
                                    &tmcf->server_stream) - dead[1]);

    cmd = ngx_game_redis_request_cmd(r);
    if (cmd == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cmd->handler = ngx_game_tel_admin_stats_got;
    cmd->data = r;

    rc = ngx_game_redis_eval(tmcf->redis, cmd, &ngx_game_tel_stats_lua, 0,
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
ngx_game_tel_admin_stats_got(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply)
{
    size_t               i;
    json_t              *body, *counters;
    ngx_int_t            rv;
    redisReply          *h;
    ngx_http_request_t  *r = cmd->data;

    if (rc != NGX_OK) {
        ngx_http_finalize_request(r,
            ngx_game_http_send_outcome(r, rc, "the telemetry queue"));
        return;
    }

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 5
        || reply->element[0]->type != REDIS_REPLY_ARRAY)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    counters = json_object();
    h = reply->element[0];

    for (i = 0; counters && i + 1 < h->elements; i += 2) {
        if (h->element[i]->type == REDIS_REPLY_STRING
            && h->element[i + 1]->type == REDIS_REPLY_STRING)
        {
            json_object_set_new(counters, h->element[i]->str,
                json_integer(ngx_atoof((u_char *) h->element[i + 1]->str,
                                       h->element[i + 1]->len)));
        }
    }

    body = json_pack("{s:o,s:{s:I,s:I},s:{s:I,s:I}}",
                     "counters", counters,
                     "backlog",
                     "events", (json_int_t) reply->element[1]->integer,
                     "server", (json_int_t) reply->element[2]->integer,
                     "dead_letters",
                     "events", (json_int_t) reply->element[3]->integer,
                     "server", (json_int_t) reply->element[4]->integer);
    if (body == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    rv = ngx_game_http_send_json(r, NGX_HTTP_OK, body);
    json_decref(body);

    ngx_http_finalize_request(r, rv);
}


/*
 * NGX_OK: an admin, with the method "method" (the admin is kept in the
 * request's ctx).  NGX_DECLINED: refused, and the answer is sent; what
 * sending it returned is in "sent", for the handler to return.  (The send
 * itself returns NGX_OK: it cannot be what tells the caller to go on.)
 */

static ngx_int_t
ngx_game_tel_admin_refuse(ngx_http_request_t *r, ngx_uint_t method,
    const char *verb, ngx_int_t *sent)
{
    ngx_game_admin_t          *admin;
    ngx_game_tel_admin_ctx_t  *ctx;
    ngx_game_tel_main_conf_t  *tmcf;

    tmcf = ngx_http_get_module_main_conf(r, ngx_game_tel_module);

    admin = ngx_game_admin_who(r, &tmcf->admins);
    if (admin == NULL) {
        *sent = ngx_game_http_send_error(r, NGX_HTTP_UNAUTHORIZED,
                                         "unauthorized",
                                         "an admin credential is required");
        return NGX_DECLINED;
    }

    if (!(r->method & method)) {
        *sent = ngx_game_http_send_error(r, NGX_HTTP_NOT_ALLOWED,
                                         "method_not_allowed", verb);
        return NGX_DECLINED;
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_game_tel_admin_ctx_t));
    if (ctx == NULL) {
        *sent = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return NGX_DECLINED;
    }

    ctx->admin = admin;
    ngx_http_set_ctx(r, ctx, ngx_game_tel_module);

    return NGX_OK;
}


/* a whole number argument within [1, max], as SQL text, or "def" */
static ngx_int_t
ngx_game_tel_admin_arg(ngx_http_request_t *r, const char *name,
    ngx_int_t def, ngx_int_t max, u_char **text)
{
    ngx_int_t  n;
    ngx_str_t  v;

    n = def;

    if (ngx_http_arg(r, (u_char *) name, ngx_strlen(name), &v) == NGX_OK) {
        n = ngx_atoi(v.data, v.len);
        if (n < 1 || n > max) {
            return NGX_DECLINED;
        }
    }

    *text = ngx_game_tel_number(r->pool, n);

    return *text ? NGX_OK : NGX_ERROR;
}


static ngx_int_t
ngx_game_tel_admin_query(ngx_http_request_t *r, ngx_game_pg_stmt_t *stmt,
    const char **values)
{
    int                        i;
    ngx_int_t                  rc;
    ngx_game_pg_query_t       *q;
    ngx_game_tel_main_conf_t  *tmcf;

    tmcf = ngx_http_get_module_main_conf(r, ngx_game_tel_module);

    q = ngx_game_pg_request_query(r, stmt);
    if (q == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    for (i = 0; i < stmt->nparams; i++) {
        q->values[i] = values[i];
    }

    q->handler = ngx_game_tel_admin_answered;
    q->data = r;

    rc = ngx_game_pg_query_run(tmcf->pg, q);
    if (rc != NGX_AGAIN) {
        return ngx_game_http_send_outcome(r, rc, "the telemetry database");
    }

    r->main->count++;
    return NGX_DONE;
}


/* {status, body} as the SQL function built them */
static void
ngx_game_tel_admin_answered(ngx_game_pg_query_t *q, ngx_int_t rc,
    PGresult *res)
{
    ngx_int_t            status;
    ngx_str_t            body;
    ngx_http_request_t  *r = q->data;

    if (rc != NGX_OK) {
        ngx_http_finalize_request(r,
            ngx_game_http_send_outcome(r, rc, "the telemetry database"));
        return;
    }

    if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0)) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    status = ngx_atoi((u_char *) PQgetvalue(res, 0, 0),
                      PQgetlength(res, 0, 0));

    /* the result goes when this handler returns: keep the body */
    body.len = PQgetlength(res, 0, 1);
    body.data = ngx_pnalloc(r->pool, body.len + 1);
    if (status < 200 || status > 599 || body.data == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_memcpy(body.data, PQgetvalue(res, 0, 1), body.len);
    body.data[body.len++] = '\n';

    ngx_http_finalize_request(r, ngx_game_http_send_text(r, status, &body));
}
