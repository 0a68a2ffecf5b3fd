
/*
 * Players:
 *
 *   GET    /player/{id}/profile  public profile, from the Redis cache
 *   GET    /player/me            the caller's own data, private fields too
 *   PATCH  /player/me            {username}
 *   DELETE /player/me            erasure (sql/002 auth_erase_player); needs
 *                                a recent login, revokes every access token
 *   GET    /player/me/export     everything stored about the caller
 *
 * Profiles are cached as the exact JSON text PostgreSQL builds, under
 * game:profile:<id> for game_auth_profile_cache_ttl; every change of a
 * field in it deletes the key.  A change racing with a cache fill can
 * leave a stale copy for at most the TTL.  Without Redis, profiles are
 * read from PostgreSQL directly.
 *
 * /player/me* act only on the player the access token names: there is no
 * id in those URIs to get wrong.
 */

#include "ngx_game_auth.h"


#define NGX_GAME_AUTH_PROFILE_KEY  64


static void ngx_game_auth_profile_cached(ngx_game_redis_cmd_t *cmd,
    ngx_int_t rc, redisReply *reply);
static void ngx_game_auth_profile_loaded(ngx_game_pg_query_t *q, ngx_int_t rc,
    PGresult *res);
static void ngx_game_auth_profile_stored(ngx_game_redis_cmd_t *cmd,
    ngx_int_t rc, redisReply *reply);
static ngx_int_t ngx_game_auth_send_copy(ngx_http_request_t *r,
    const char *json, size_t len);
static void ngx_game_auth_private_loaded(ngx_game_pg_query_t *q, ngx_int_t rc,
    PGresult *res);
static void ngx_game_auth_rename_body(ngx_http_request_t *r, json_t *body);
static void ngx_game_auth_renamed(ngx_game_pg_query_t *q, ngx_int_t rc,
    PGresult *res);
static void ngx_game_auth_erased(ngx_game_pg_query_t *q, ngx_int_t rc,
    PGresult *res);
static void ngx_game_auth_erased_revoked(ngx_game_auth_ctx_t *ctx);
static void ngx_game_auth_changed_respond(ngx_game_auth_ctx_t *ctx);
static ngx_int_t ngx_game_auth_start(ngx_game_auth_ctx_t *ctx,
    ngx_game_pg_stmt_t *stmt, ngx_game_pg_handler_pt handler);


static ngx_game_pg_stmt_t  ngx_game_auth_profile_get = {
    "game_auth_profile",
    "SELECT json_build_object('player_id', id, 'username', username, "
    "       'level', level, 'xp', xp, 'created_at', created_at, "
    "       'last_login', last_login)::text "
    "  FROM players WHERE id = $1::uuid AND deleted_at IS NULL",
    1
};

static ngx_game_pg_stmt_t  ngx_game_auth_me_get = {
    "game_auth_me",
    "SELECT json_build_object('player_id', id, 'username', username, "
    "       'level', level, 'xp', xp, 'created_at', created_at, "
    "       'last_login', last_login, 'guest', password_hash IS NULL, "
    "       'mfa_enabled', totp_enabled, "
    "       'currency', json_build_object('soft', soft_currency, "
    "                                     'hard', hard_currency))::text, "
    "       encode(email_ciphertext, 'hex') "
    "  FROM players WHERE id = $1::uuid AND deleted_at IS NULL",
    1
};

static ngx_game_pg_stmt_t  ngx_game_auth_me_rename = {
    "game_auth_rename",
    "UPDATE players SET username = $2 "
    " WHERE id = $1::uuid AND deleted_at IS NULL",
    2
};

static ngx_game_pg_stmt_t  ngx_game_auth_me_erase = {
    "game_auth_erase",
    "SELECT auth_erase_player($1::uuid)",
    1
};

/*
 * Secrets and keyed hashes are left out: they are ours, not data about
 * the player.  Sessions are listed without their hashes.
 */
static ngx_game_pg_stmt_t  ngx_game_auth_me_export = {
    "game_auth_export",
    "SELECT json_build_object("
    "  'player', to_jsonb(p) - 'password_hash' - 'email_ciphertext' "
    "            - 'email_index' - 'totp_secret_ciphertext', "
    "  'sessions', (SELECT coalesce(json_agg(json_build_object("
    "       'family_id', t.family_id, 'issued_at', t.issued_at, "
    "       'expires_at', t.expires_at, 'rotated_at', t.rotated_at, "
    "       'revoked_at', t.revoked_at, 'revoked_reason', t.revoked_reason) "
    "       ORDER BY t.issued_at), '[]') "
    "       FROM refresh_tokens t WHERE t.player_id = p.id), "
    "  'inventory', (SELECT coalesce(json_agg(i ORDER BY i.acquired_at), "
    "       '[]') FROM inventory_items i WHERE i.player_id = p.id), "
    "  'transactions', (SELECT coalesce(json_agg(to_jsonb(x) - "
    "       'request_hash' ORDER BY x.id), '[]') "
    "       FROM transactions x WHERE x.player_id = p.id), "
    "  'matches', (SELECT coalesce(json_agg(m), '[]') "
    "       FROM game_session_players m WHERE m.player_id = p.id), "
    "  'ratings', (SELECT coalesce(json_agg(g), '[]') "
    "       FROM player_ratings g WHERE g.player_id = p.id), "
    "  'leaderboards', (SELECT coalesce(json_agg(l), '[]') "
    "       FROM leaderboard_entries l WHERE l.player_id = p.id), "
    "  'events', (SELECT coalesce(json_agg(e ORDER BY e.occurred_at), '[]') "
    "       FROM game_events e WHERE e.player_id = p.id))::text, "
    "  encode(p.email_ciphertext, 'hex') "
    "  FROM players p WHERE p.id = $1::uuid AND p.deleted_at IS NULL",
    1
};


ngx_int_t
ngx_game_auth_profile_handler(ngx_http_request_t *r)
{
    u_char               *p, *end;
    char                  key[NGX_GAME_AUTH_PROFILE_KEY];
    const char           *argv[2];
    size_t                argvlen[2];
    ngx_game_auth_ctx_t  *ctx;

    static const char     prefix[] = "/player/";
    static const char     suffix[] = "/profile";

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return ngx_game_http_send_error(r, NGX_HTTP_NOT_ALLOWED,
                                        "method_not_allowed", "use GET");
    }

    /* the location is "~ ^/player/[^/]+/profile$": the id is in between */
    p = r->uri.data + sizeof(prefix) - 1;
    end = r->uri.data + r->uri.len - (sizeof(suffix) - 1);

    if (r->uri.len < sizeof(prefix) + sizeof(suffix) - 2
        || !game_uuid_valid(p, end - p))
    {
        return ngx_game_http_send_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                        "no such player");
    }

    ctx = ngx_game_auth_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(ctx->new_id, p, GAME_UUID_LEN);
    ctx->new_id[GAME_UUID_LEN] = '\0';

    ngx_sprintf((u_char *) key, "game:profile:%s%Z", ctx->new_id);

    argv[0] = "GET";
    argv[1] = key;
    argvlen[0] = 3;
    argvlen[1] = ngx_strlen(key);

    r->main->count++;

    if (ngx_game_auth_redis(ctx, ngx_game_auth_profile_cached, 2, argv,
                            argvlen) != NGX_OK)
    {
        ngx_game_auth_finalize(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
    }

    return NGX_DONE;
}


static void
ngx_game_auth_profile_cached(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply)
{
    ngx_game_auth_ctx_t  *ctx = cmd->data;

    if (rc == NGX_OK && reply && reply->type == REDIS_REPLY_STRING) {
        ngx_game_auth_finalize(ctx,
            ngx_game_auth_send_copy(ctx->request, reply->str, reply->len));
        return;
    }

    /* a miss, or Redis is away: the database answers either way */
    ctx->found = (rc == NGX_OK);

    if (ngx_game_auth_start(ctx, &ngx_game_auth_profile_get,
                            ngx_game_auth_profile_loaded) != NGX_OK)
    {
        ngx_game_auth_finalize(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
    }
}


static ngx_int_t
ngx_game_auth_start(ngx_game_auth_ctx_t *ctx, ngx_game_pg_stmt_t *stmt,
    ngx_game_pg_handler_pt handler)
{
    ngx_game_pg_query_t  *q;

    q = ngx_game_auth_query(ctx, stmt, handler);
    if (q == NULL) {
        return NGX_ERROR;
    }

    q->values[0] = ctx->new_id;

    return ngx_game_auth_run(ctx, q);
}


static void
ngx_game_auth_profile_loaded(ngx_game_pg_query_t *q, ngx_int_t rc,
    PGresult *res)
{
    ngx_game_auth_ctx_t  *ctx = q->data;

    char                 key[NGX_GAME_AUTH_PROFILE_KEY];
    u_char               ttl[NGX_TIME_T_LEN + 1];
    const char          *argv[5];
    size_t               argvlen[5];
    ngx_str_t            json;
    ngx_http_request_t  *r = ctx->request;

    if (rc != NGX_OK) {
        ngx_game_auth_finalize(ctx,
                               ngx_game_http_send_outcome(r, rc,
                                                          "the database"));
        return;
    }

    if (PQntuples(res) != 1) {
        ngx_game_auth_finalize(ctx,
            ngx_game_http_send_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                     "no such player"));
        return;
    }

    /* kept in the request for the answer after the cache write */
    json.len = PQgetlength(res, 0, 0);
    json.data = ngx_pnalloc(r->pool, json.len + 1);
    if (json.data == NULL) {
        ngx_game_auth_finalize(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_memcpy(json.data, PQgetvalue(res, 0, 0), json.len);
    ctx->login = json;

    if (!ctx->found) {
        ngx_game_auth_finalize(ctx,
            ngx_game_auth_send_copy(r, (char *) json.data, json.len));
        return;
    }

    ngx_sprintf((u_char *) key, "game:profile:%s%Z", ctx->new_id);
    ngx_sprintf(ttl, "%T%Z", ctx->amcf->profile_cache_ttl);

    argv[0] = "SET";
    argv[1] = key;
    argv[2] = (char *) json.data;
    argv[3] = "EX";
    argv[4] = (char *) ttl;
    argvlen[0] = 3;
    argvlen[1] = ngx_strlen(key);
    argvlen[2] = json.len;
    argvlen[3] = 2;
    argvlen[4] = ngx_strlen(ttl);

    if (ngx_game_auth_redis(ctx, ngx_game_auth_profile_stored, 5, argv,
                            argvlen) != NGX_OK)
    {
        ngx_game_auth_finalize(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
    }
}


static void
ngx_game_auth_profile_stored(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply)
{
    ngx_game_auth_ctx_t  *ctx = cmd->data;

    /* a failed cache write costs only the next read a database trip */
    ngx_game_auth_finalize(ctx,
        ngx_game_auth_send_copy(ctx->request, (char *) ctx->login.data,
                                ctx->login.len));
}


static ngx_int_t
ngx_game_auth_send_copy(ngx_http_request_t *r, const char *json, size_t len)
{
    ngx_str_t  *text;

    text = ngx_palloc(r->pool, sizeof(ngx_str_t));
    if (text == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    text->data = ngx_pnalloc(r->pool, len + 1);
    if (text->data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(text->data, json, len);
    text->data[len] = '\n';
    text->len = len + 1;

    return ngx_game_http_send_text(r, NGX_HTTP_OK, text);
}


ngx_int_t
ngx_game_auth_me_handler(ngx_http_request_t *r)
{
    ngx_int_t             rc;
    ngx_game_auth_ctx_t  *ctx;

    ctx = ngx_game_auth_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_cpystrn((u_char *) ctx->new_id, ctx->player_id, sizeof(ctx->new_id));

    switch (r->method) {

    case NGX_HTTP_PATCH:
        return ngx_game_http_read_json(r, ngx_game_auth_rename_body);

    case NGX_HTTP_GET:
    case NGX_HTTP_DELETE:
        break;

    default:
        return ngx_game_http_send_error(r, NGX_HTTP_NOT_ALLOWED,
                                        "method_not_allowed",
                                        "use GET, PATCH or DELETE");
    }

    /* erasure is for the player, not for whoever holds their token */
    if (r->method == NGX_HTTP_DELETE && !ngx_game_auth_is_recent(ctx)) {
        return ngx_game_auth_send_stale(ctx);
    }

    /* the count first: the query may complete before the call returns */
    r->main->count++;

    if (r->method == NGX_HTTP_GET) {
        rc = ngx_game_auth_start(ctx, &ngx_game_auth_me_get,
                                 ngx_game_auth_private_loaded);
    } else {
        rc = ngx_game_auth_start(ctx, &ngx_game_auth_me_erase,
                                 ngx_game_auth_erased);
    }

    if (rc != NGX_OK) {
        r->main->count--;
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return NGX_DONE;
}


ngx_int_t
ngx_game_auth_export_handler(ngx_http_request_t *r)
{
    ngx_game_auth_ctx_t  *ctx;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return ngx_game_http_send_error(r, NGX_HTTP_NOT_ALLOWED,
                                        "method_not_allowed", "use GET");
    }

    ctx = ngx_game_auth_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_cpystrn((u_char *) ctx->new_id, ctx->player_id, sizeof(ctx->new_id));

    /* the count first: the query may complete before the call returns */
    r->main->count++;

    if (ngx_game_auth_start(ctx, &ngx_game_auth_me_export,
                            ngx_game_auth_private_loaded) != NGX_OK)
    {
        r->main->count--;
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return NGX_DONE;
}


/* me and export: the JSON from PostgreSQL plus the decrypted email */

static void
ngx_game_auth_private_loaded(ngx_game_pg_query_t *q, ngx_int_t rc,
    PGresult *res)
{
    ngx_game_auth_ctx_t  *ctx = q->data;

    json_t              *body, *email;
    ngx_str_t            plain;
    ngx_int_t            status;
    json_error_t         err;
    ngx_http_request_t  *r = ctx->request;

    if (rc != NGX_OK) {
        ngx_game_auth_finalize(ctx,
                               ngx_game_http_send_outcome(r, rc,
                                                          "the database"));
        return;
    }

    if (PQntuples(res) != 1) {
        ngx_game_auth_finalize(ctx,
            ngx_game_http_send_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                     "this account no longer exists"));
        return;
    }

    body = json_loadb(PQgetvalue(res, 0, 0), PQgetlength(res, 0, 0), 0, &err);
    if (body == NULL) {
        ngx_game_auth_finalize(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    email = json_null();

    if (!PQgetisnull(res, 0, 1)) {
        if (ngx_game_auth_secret_open(ctx->amcf, r->pool, "email",
                                      ctx->new_id, PQgetvalue(res, 0, 1),
                                      &plain) == NGX_OK)
        {
            email = json_stringn((char *) plain.data, plain.len);

        } else {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "game auth: the email of %s does not decrypt "
                          "(wrong game_auth_email_key?)", ctx->new_id);
        }
    }

    (void) json_object_set_new(json_is_object(json_object_get(body, "player"))
                               ? json_object_get(body, "player") : body,
                               "email", email);

    status = ngx_game_http_send_json(r, NGX_HTTP_OK, body);
    json_decref(body);

    ngx_game_auth_finalize(ctx, status);
}


static void
ngx_game_auth_rename_body(ngx_http_request_t *r, json_t *body)
{
    ngx_game_pg_query_t  *q;
    ngx_game_auth_ctx_t  *ctx;

    ctx = ngx_game_auth_ctx(r);

    if (ngx_game_auth_field(r, body, "username", &ctx->username, 1, 64)
        != NGX_OK)
    {
        ngx_game_auth_finalize(ctx,
            ngx_game_http_send_error(r, NGX_HTTP_BAD_REQUEST,
                                     "invalid_request", ctx->errmsg));
        return;
    }

    if (!game_auth_username_valid((char *) ctx->username.data,
                                  ctx->username.len))
    {
        ngx_game_auth_finalize(ctx,
            ngx_game_http_send_error(r, NGX_GAME_AUTH_HTTP_UNPROCESSABLE,
                                     "invalid_username",
                                     "a username is 3 to 20 letters, digits "
                                     "or underscores"));
        return;
    }

    q = ngx_game_auth_query(ctx, &ngx_game_auth_me_rename,
                            ngx_game_auth_renamed);
    if (q == NULL) {
        ngx_game_auth_finalize(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    q->values[0] = ctx->new_id;
    q->values[1] = (char *) ctx->username.data;

    /* a taken username is the client's, not an operator's */
    q->expect = "23505";

    (void) ngx_game_auth_run(ctx, q);
}


static void
ngx_game_auth_renamed(ngx_game_pg_query_t *q, ngx_int_t rc, PGresult *res)
{
    ngx_game_auth_ctx_t  *ctx = q->data;

    ngx_http_request_t  *r = ctx->request;

    if (rc == NGX_GAME_QUERY_ERROR
        && ngx_strcmp(ngx_game_auth_sqlstate(res), "23505") == 0)
    {
        ngx_game_auth_finalize(ctx,
            ngx_game_http_send_error(r, NGX_HTTP_CONFLICT, "username_taken",
                                     "this username is taken"));
        return;
    }

    if (rc != NGX_OK) {
        ngx_game_auth_finalize(ctx,
                               ngx_game_http_send_outcome(r, rc,
                                                          "the database"));
        return;
    }

    if (ngx_atoi((u_char *) PQcmdTuples(res), ngx_strlen(PQcmdTuples(res)))
        != 1)
    {
        ngx_game_auth_finalize(ctx,
            ngx_game_http_send_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                     "this account no longer exists"));
        return;
    }

    ngx_game_auth_profile_invalidate(ctx, ctx->new_id,
                                     ngx_game_auth_changed_respond);
}


static void
ngx_game_auth_erased(ngx_game_pg_query_t *q, ngx_int_t rc, PGresult *res)
{
    ngx_game_auth_ctx_t  *ctx = q->data;

    if (rc != NGX_OK) {
        ngx_game_auth_finalize(ctx,
                               ngx_game_http_send_outcome(ctx->request, rc,
                                                          "the database"));
        return;
    }

    if (PQntuples(res) != 1 || PQgetvalue(res, 0, 0)[0] != 't') {
        ngx_game_auth_finalize(ctx,
            ngx_game_http_send_error(ctx->request, NGX_HTTP_NOT_FOUND,
                                     "not_found",
                                     "this account no longer exists"));
        return;
    }

    ctx->username.len = 0;      /* the answer says "erased" */

    /* every access token of the player stops working, in every worker */
    ngx_game_auth_revoke(ctx, 'p', ctx->new_id, ngx_game_auth_erased_revoked);
}


static void
ngx_game_auth_erased_revoked(ngx_game_auth_ctx_t *ctx)
{
    ngx_game_auth_profile_invalidate(ctx, ctx->new_id,
                                     ngx_game_auth_changed_respond);
}


void
ngx_game_auth_profile_invalidate(ngx_game_auth_ctx_t *ctx,
    const char *player_id, ngx_game_auth_step_pt next)
{
    char                    key[NGX_GAME_AUTH_PROFILE_KEY];
    ngx_game_redis_args_t   a;

    ngx_sprintf((u_char *) key, "game:profile:%s%Z", player_id);

    ngx_memzero(&a, sizeof(a));
    ngx_game_redis_arg_lit(&a, "DEL");
    ngx_game_redis_arg_cstr(&a, key);

    ngx_game_auth_redis_then(ctx, &a, "a cached profile was not "
                             "invalidated; it expires within "
                             "game_auth_profile_cache_ttl", next);
}


static void
ngx_game_auth_changed_respond(ngx_game_auth_ctx_t *ctx)
{
    json_t     *body;
    ngx_int_t   rc;

    if (ctx->username.len == 0) {
        body = json_pack("{s:s,s:b}", "player_id", ctx->new_id, "erased", 1);

    } else {
        body = json_pack("{s:s,s:s}", "player_id", ctx->new_id,
                         "username", (char *) ctx->username.data);
    }

    if (body == NULL) {
        ngx_game_auth_finalize(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    rc = ngx_game_http_send_json(ctx->request, NGX_HTTP_OK, body);
    json_decref(body);

    ngx_game_auth_finalize(ctx, rc);
}
