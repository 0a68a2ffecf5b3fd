
/*
 * The guard: "game_auth_jwt on;" in any location (ours, or one that
 * proxies to somebody else's service) lets a request through only with a
 * valid access token, and tells what follows who the caller is through
 * $game_player_id.  It runs in the access phase, after limit_req.
 */

#include "ngx_game_auth.h"


static ngx_int_t ngx_game_auth_player_id_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_game_auth_guard_refuse(ngx_http_request_t *r,
    const char *message);


static ngx_http_variable_t  ngx_game_auth_vars[] = {

    { ngx_string("game_player_id"), NULL,
      ngx_game_auth_player_id_variable, 0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


ngx_int_t
ngx_game_auth_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_game_auth_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


ngx_int_t
ngx_game_auth_guard_handler(ngx_http_request_t *r)
{
    u_char                     *p, *end;
    ngx_table_elt_t            *h;
    ngx_game_auth_ctx_t        *ctx;
    ngx_game_auth_loc_conf_t   *alcf;
    ngx_game_auth_main_conf_t  *amcf;

    alcf = ngx_http_get_module_loc_conf(r, ngx_game_auth_module);
    if (!alcf->jwt) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_game_auth_module);
    if (ctx && ctx->authenticated) {
        return NGX_DECLINED;        /* e.g. after an internal redirect */
    }

    h = r->headers_in.authorization;
    if (h == NULL) {
        return ngx_game_auth_guard_refuse(r, "an access token is required");
    }

    p = h->value.data;
    end = p + h->value.len;

    if (h->value.len < 7 || ngx_strncasecmp(p, (u_char *) "Bearer ", 7) != 0) {
        return ngx_game_auth_guard_refuse(r, "use the Bearer scheme");
    }

    for (p += 7; p < end && *p == ' '; p++) { /* void */ }

    ctx = ngx_game_auth_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    amcf = ctx->amcf;

    if (ngx_game_auth_verify(amcf, p, end - p, ctx->player_id) != NGX_OK) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "game auth: invalid access token");
        return ngx_game_auth_guard_refuse(r,
                                          "the access token is invalid or "
                                          "expired");
    }

    ctx->authenticated = 1;

    return NGX_DECLINED;
}


/*
 * Sent from the access phase: the JSON answer is complete here, so the
 * request is finalized now and the phase engine told to stop (NGX_DONE).
 */

static ngx_int_t
ngx_game_auth_guard_refuse(ngx_http_request_t *r, const char *message)
{
    ngx_int_t         rc;
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "WWW-Authenticate");
    ngx_str_set(&h->value, "Bearer error=\"invalid_token\"");

    rc = ngx_game_http_send_error(r, NGX_HTTP_UNAUTHORIZED, "invalid_token",
                                  message);
    ngx_http_finalize_request(r, rc);

    return NGX_DONE;
}


static ngx_int_t
ngx_game_auth_player_id_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_game_auth_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_game_auth_module);

    if (ctx == NULL || !ctx->authenticated) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->data = ctx->player_id;
    v->len = GAME_AUTH_UUID_LEN;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    return NGX_OK;
}
