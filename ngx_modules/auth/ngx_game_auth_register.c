
/*
 * Creating accounts:
 *
 *   POST /auth/register {username, email, password}   -> 201
 *   POST /auth/device   {device_id}                    -> tokens of the
 *        guest account tied to that device, created on first use
 *   POST /auth/link     {username, email, password}   (authenticated,
 *        recently) turns the caller's guest account into a full one
 *
 * Registration does not tell whether an address is registered: with a
 * taken address it answers exactly as when the account was made (and
 * makes none), after the same Argon2id work.  A taken username is said:
 * usernames are public anyway.
 *
 * A device id is a guest's only credential.  Once the account has a
 * password (link), the device id no longer logs in: it would be a second
 * password that skips the second factor.
 *
 * The player id is made here rather than by PostgreSQL because the
 * sealed email is bound to it (see ngx_game_auth_crypto.c).
 */

#include "ngx_game_auth.h"


static void ngx_game_auth_register_body(ngx_http_request_t *r, json_t *body);
static ngx_int_t ngx_game_auth_account_fields(ngx_game_auth_ctx_t *ctx,
    json_t *body);
static void ngx_game_auth_register_hashed(ngx_game_auth_ctx_t *ctx);
static void ngx_game_auth_register_done(ngx_game_pg_query_t *q, ngx_int_t rc,
    PGresult *res);
static ngx_int_t ngx_game_auth_account_refused(ngx_game_auth_ctx_t *ctx,
    ngx_int_t rc, PGresult *res);
static void ngx_game_auth_device_body(ngx_http_request_t *r, json_t *body);
static void ngx_game_auth_device_done(ngx_game_pg_query_t *q, ngx_int_t rc,
    PGresult *res);
static void ngx_game_auth_link_body(ngx_http_request_t *r, json_t *body);
static void ngx_game_auth_link_hashed(ngx_game_auth_ctx_t *ctx);
static void ngx_game_auth_link_done(ngx_game_pg_query_t *q, ngx_int_t rc,
    PGresult *res);
static void ngx_game_auth_link_respond(ngx_game_auth_ctx_t *ctx);
static ngx_int_t ngx_game_auth_send_account(ngx_game_auth_ctx_t *ctx,
    ngx_uint_t status);


/* a taken address inserts nothing and says nothing: no 23505 for it */
static ngx_game_pg_stmt_t  ngx_game_auth_register_insert = {
    "game_auth_register",
    "INSERT INTO players (id, username, email_ciphertext, email_index, "
    "                     password_hash, auth_provider) "
    "VALUES ($1::uuid, $2, $3::bytea, $4::bytea, $5, 'password') "
    "ON CONFLICT (email_index) WHERE email_index IS NOT NULL DO NOTHING",
    5
};

/*
 * Find-or-create and open a session in one round trip.  The FK check of
 * refresh_tokens runs at the end of the statement and sees the new row.
 * A linked account (it has a password) is not updated, so nothing comes
 * back for it.
 */
static ngx_game_pg_stmt_t  ngx_game_auth_device_login = {
    "game_auth_device",
    "WITH p AS ("
    "  INSERT INTO players (id, device_id, auth_provider, last_login) "
    "  VALUES ($1::uuid, $2, 'device', now()) "
    "  ON CONFLICT (device_id) DO UPDATE SET last_login = now() "
    "     WHERE players.password_hash IS NULL "
    "       AND players.deleted_at IS NULL "
    "  RETURNING id) "
    "INSERT INTO refresh_tokens (player_id, family_id, token_hash, expires_at) "
    "SELECT id, gen_random_uuid(), $3::bytea, "
    "       now() + make_interval(secs => $4::double precision) FROM p "
    "RETURNING player_id, family_id, "
    "          floor(extract(epoch FROM issued_at))::bigint",
    4
};

static ngx_game_pg_stmt_t  ngx_game_auth_link_update = {
    "game_auth_link",
    "UPDATE players SET username = $2, email_ciphertext = $3::bytea, "
    "       email_index = $4::bytea, password_hash = $5, "
    "       auth_provider = 'password' "
    " WHERE id = $1::uuid AND password_hash IS NULL AND deleted_at IS NULL",
    5
};


ngx_int_t
ngx_game_auth_register_handler(ngx_http_request_t *r)
{
    return ngx_game_auth_post_json(r, ngx_game_auth_register_body);
}


static void
ngx_game_auth_register_body(ngx_http_request_t *r, json_t *body)
{
    ngx_game_auth_ctx_t  *ctx;

    ctx = ngx_game_auth_ctx(r);

    if (ngx_game_auth_account_fields(ctx, body) != NGX_OK) {
        return;
    }

    game_uuid_generate(ctx->new_id);

    if (ngx_game_auth_email_seal(ctx, ctx->new_id) != NGX_OK) {
        ngx_game_auth_finalize(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (ngx_game_auth_hash(ctx, ngx_game_auth_register_hashed) != NGX_OK) {
        ngx_game_auth_finalize(ctx,
            ngx_game_http_send_outcome(r, NGX_GAME_UNAVAILABLE,
                                       "the password service"));
    }
}


/*
 * username, email and password, checked; on NGX_DECLINED the answer has
 * been sent and the request finalized.
 */

static ngx_int_t
ngx_game_auth_account_fields(ngx_game_auth_ctx_t *ctx, json_t *body)
{
    const char          *weak;
    ngx_http_request_t  *r = ctx->request;

    if (ngx_game_auth_field(r, body, "username", &ctx->username, 1, 64)
        != NGX_OK
        || ngx_game_auth_field(r, body, "email", &ctx->email, 1, 254) != NGX_OK
        || ngx_game_auth_field(r, body, "password", &ctx->password, 1,
                               NGX_GAME_AUTH_PASSWORD_MAX) != NGX_OK)
    {
        ngx_game_auth_finalize(ctx,
            ngx_game_http_send_error(r, NGX_HTTP_BAD_REQUEST,
                                     "invalid_request", ctx->errmsg));
        return NGX_DECLINED;
    }

    if (!game_auth_username_valid((char *) ctx->username.data,
                                  ctx->username.len))
    {
        ngx_game_auth_finalize(ctx,
            ngx_game_http_send_error(r, NGX_GAME_AUTH_HTTP_UNPROCESSABLE,
                                     "invalid_username",
                                     "a username is 3 to 20 letters, digits "
                                     "or underscores"));
        return NGX_DECLINED;
    }

    if (!game_auth_email_valid((char *) ctx->email.data, ctx->email.len)) {
        ngx_game_auth_finalize(ctx,
            ngx_game_http_send_error(r, NGX_GAME_AUTH_HTTP_UNPROCESSABLE,
                                     "invalid_email",
                                     "this is not an email address"));
        return NGX_DECLINED;
    }

    weak = ngx_game_auth_password_weak(ctx->amcf, &ctx->password);
    if (weak) {
        ngx_game_auth_finalize(ctx,
            ngx_game_http_send_error(r, NGX_GAME_AUTH_HTTP_UNPROCESSABLE,
                                     "weak_password", weak));
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/*
 * The password is hashed: write the account's credentials, as a new
 * account (register) or onto a guest's (link); both statements take the
 * same parameters.
 */

static void
ngx_game_auth_credentials_write(ngx_game_auth_ctx_t *ctx,
    ngx_game_pg_stmt_t *stmt, ngx_game_pg_handler_pt done)
{
    ngx_game_pg_query_t  *q;

    if (ctx->hash_failed) {
        ngx_game_auth_finalize(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    q = ngx_game_auth_query(ctx, stmt, done);
    if (q == NULL) {
        ngx_game_auth_finalize(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    q->values[0] = ctx->new_id;
    q->values[1] = (char *) ctx->username.data;
    q->values[2] = ctx->email_ct;
    q->values[3] = ctx->email_ix;
    q->values[4] = ctx->hash;

    /* a taken username or address is the client's, not an operator's */
    q->expect = "23505";

    (void) ngx_game_auth_run(ctx, q);
}


static void
ngx_game_auth_register_hashed(ngx_game_auth_ctx_t *ctx)
{
    ngx_game_auth_credentials_write(ctx, &ngx_game_auth_register_insert,
                                    ngx_game_auth_register_done);
}


static void
ngx_game_auth_register_done(ngx_game_pg_query_t *q, ngx_int_t rc,
    PGresult *res)
{
    ngx_game_auth_ctx_t  *ctx = q->data;

    if (rc != NGX_OK) {
        ngx_game_auth_finalize(ctx,
                               ngx_game_auth_account_refused(ctx, rc, res));
        return;
    }

    ngx_game_auth_finalize(ctx,
                           ngx_game_auth_send_account(ctx, NGX_HTTP_CREATED));
}


/* a failed INSERT or UPDATE of an account: which conflict, if any */

static ngx_int_t
ngx_game_auth_account_refused(ngx_game_auth_ctx_t *ctx, ngx_int_t rc,
    PGresult *res)
{
    const char          *constraint;
    ngx_http_request_t  *r = ctx->request;

    if (rc == NGX_GAME_QUERY_ERROR
        && ngx_strcmp(ngx_game_auth_sqlstate(res), "23505") == 0)
    {
        constraint = ngx_game_auth_constraint(res);

        /* only linking gets here with a taken address (registration does
         * not conflict on it): the caller learns no more than that these
         * credentials cannot be used */
        if (ngx_strcmp(constraint, "players_email_index_key") == 0) {
            return ngx_game_http_send_error(r, NGX_HTTP_CONFLICT,
                                            "credentials_unavailable",
                                            "this username or email address "
                                            "cannot be used");
        }

        return ngx_game_http_send_error(r, NGX_HTTP_CONFLICT,
                                        "username_taken",
                                        "this username is taken");
    }

    /* the pool has logged the statement's error already */
    return ngx_game_http_send_outcome(r, rc, "the database");
}


/*
 * Registration answers with the username only: an id that a taken
 * address did not get would give the pretence away (the account's id
 * comes with its first login).  Linking names the caller's own account.
 */

static ngx_int_t
ngx_game_auth_send_account(ngx_game_auth_ctx_t *ctx, ngx_uint_t status)
{
    json_t     *body;
    ngx_int_t   rc;

    if (status == NGX_HTTP_CREATED) {
        body = json_pack("{s:s}", "username", (char *) ctx->username.data);

    } else {
        body = json_pack("{s:s,s:s}", "player_id", ctx->new_id,
                         "username", (char *) ctx->username.data);
    }

    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_game_http_send_json(ctx->request, status, body);
    json_decref(body);

    return rc;
}


ngx_int_t
ngx_game_auth_device_handler(ngx_http_request_t *r)
{
    return ngx_game_auth_post_json(r, ngx_game_auth_device_body);
}


/*
 * The device id is the guest's only credential, so it must be a
 * generated secret (a UUID or longer), not a guessable serial number.
 */

static void
ngx_game_auth_device_body(ngx_http_request_t *r, json_t *body)
{
    u_char               *p;
    ngx_str_t             device;
    ngx_game_pg_query_t  *q;
    ngx_game_auth_ctx_t  *ctx;

    ctx = ngx_game_auth_ctx(r);

    if (ngx_game_auth_field(r, body, "device_id", &device, 1, 255) != NGX_OK) {
        ngx_game_auth_finalize(ctx,
            ngx_game_http_send_error(r, NGX_HTTP_BAD_REQUEST,
                                     "invalid_request", ctx->errmsg));
        return;
    }

    for (p = device.data; p < device.data + device.len; p++) {
        if (!(ngx_game_auth_isalnum(*p) || *p == '-' || *p == '_' || *p == '.'
              || *p == ':'))
        {
            break;
        }
    }

    if (device.len < 16 || p != device.data + device.len) {
        ngx_game_auth_finalize(ctx,
            ngx_game_http_send_error(r, NGX_GAME_AUTH_HTTP_UNPROCESSABLE,
                                     "invalid_device_id",
                                     "a device id is 16 to 255 of "
                                     "[A-Za-z0-9._:-]"));
        return;
    }

    game_uuid_generate(ctx->new_id);

    if (ngx_game_auth_refresh_new(ctx) != NGX_OK) {
        ngx_game_auth_finalize(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    q = ngx_game_auth_query(ctx, &ngx_game_auth_device_login,
                            ngx_game_auth_device_done);
    if (q == NULL) {
        ngx_game_auth_finalize(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    q->values[0] = ctx->new_id;
    q->values[1] = (char *) device.data;
    q->values[2] = ctx->refresh_hash;
    q->values[3] = ctx->ttl;

    (void) ngx_game_auth_run(ctx, q);
}


static void
ngx_game_auth_device_done(ngx_game_pg_query_t *q, ngx_int_t rc,
    PGresult *res)
{
    ngx_game_auth_ctx_t  *ctx = q->data;

    if (rc != NGX_OK) {
        ngx_game_auth_finalize(ctx,
                               ngx_game_http_send_outcome(ctx->request, rc,
                                                          "the database"));
        return;
    }

    if (PQntuples(res) == 0) {
        ngx_game_auth_finalize(ctx,
            ngx_game_http_send_error(ctx->request, NGX_HTTP_UNAUTHORIZED,
                                     "account_linked",
                                     "this device's account has a password "
                                     "now: log in with it"));
        return;
    }

    /* for a guest, its device id is its authentication */
    if (ngx_game_auth_session_from(ctx, res, 0, 1, 2) != NGX_OK) {
        ngx_game_auth_finalize(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_game_auth_finalize(ctx,
        ngx_game_auth_send_tokens(ctx, ctx->new_id, NGX_HTTP_OK));
}


ngx_int_t
ngx_game_auth_link_handler(ngx_http_request_t *r)
{
    return ngx_game_auth_post_json(r, ngx_game_auth_link_body);
}


static void
ngx_game_auth_link_body(ngx_http_request_t *r, json_t *body)
{
    ngx_game_auth_ctx_t  *ctx;

    ctx = ngx_game_auth_ctx(r);

    if (!ngx_game_auth_is_recent(ctx)) {
        ngx_game_auth_finalize(ctx, ngx_game_auth_send_stale(ctx));
        return;
    }

    if (ngx_game_auth_account_fields(ctx, body) != NGX_OK) {
        return;
    }

    ngx_cpystrn((u_char *) ctx->new_id, ctx->player_id, sizeof(ctx->new_id));

    if (ngx_game_auth_email_seal(ctx, ctx->new_id) != NGX_OK) {
        ngx_game_auth_finalize(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (ngx_game_auth_hash(ctx, ngx_game_auth_link_hashed) != NGX_OK) {
        ngx_game_auth_finalize(ctx,
            ngx_game_http_send_outcome(r, NGX_GAME_UNAVAILABLE,
                                       "the password service"));
    }
}


static void
ngx_game_auth_link_hashed(ngx_game_auth_ctx_t *ctx)
{
    ngx_game_auth_credentials_write(ctx, &ngx_game_auth_link_update,
                                    ngx_game_auth_link_done);
}


static void
ngx_game_auth_link_done(ngx_game_pg_query_t *q, ngx_int_t rc, PGresult *res)
{
    ngx_game_auth_ctx_t  *ctx = q->data;

    if (rc != NGX_OK) {
        ngx_game_auth_finalize(ctx,
                               ngx_game_auth_account_refused(ctx, rc, res));
        return;
    }

    if (ngx_atoi((u_char *) PQcmdTuples(res), ngx_strlen(PQcmdTuples(res)))
        != 1)
    {
        ngx_game_auth_finalize(ctx,
            ngx_game_http_send_error(ctx->request, NGX_HTTP_CONFLICT,
                                     "already_linked",
                                     "this account already has a password"));
        return;
    }

    ngx_game_auth_profile_invalidate(ctx, ctx->new_id,
                                     ngx_game_auth_link_respond);
}


static void
ngx_game_auth_link_respond(ngx_game_auth_ctx_t *ctx)
{
    ngx_game_auth_finalize(ctx, ngx_game_auth_send_account(ctx, NGX_HTTP_OK));
}
