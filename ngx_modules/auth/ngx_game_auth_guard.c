
/*
 * The guard: "game_auth_jwt on;" in any location (ours, or one that
 * proxies to somebody else's service) lets a request through only with a
 * valid access token, and tells what follows who the caller is through
 * $game_player_id.
 *
 * It is an access-phase handler like auth_basic and follows the same
 * contract: NGX_OK lets the request in, NGX_HTTP_UNAUTHORIZED refuses it,
 * and nginx does the rest, so "satisfy any" with allow/deny and
 * "error_page 401" work as they do with nginx's own checks.  Where no
 * error_page takes the 401 over, nginx would send its HTML page; a pair of
 * filters puts our JSON error in its place, and only in that case: the
 * request was refused by us (nothing let it in later), and the answer is
 * nginx's own error page (r->err_status), not an upstream's 401.
 */

#include "ngx_game_auth.h"


static ngx_int_t ngx_game_auth_guard_handler(ngx_http_request_t *r);
static ngx_int_t ngx_game_auth_guard_passed(ngx_http_request_t *r);
static ngx_int_t ngx_game_auth_guard_refuse(ngx_http_request_t *r,
    ngx_game_auth_ctx_t *ctx);
static ngx_int_t ngx_game_auth_header_filter(ngx_http_request_t *r);
static ngx_int_t ngx_game_auth_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);
static ngx_int_t ngx_game_auth_player_id_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;
static ngx_http_output_body_filter_pt    ngx_http_next_body_filter;


/* what every refusal by the guard says, whichever way it is sent */
static ngx_str_t  ngx_game_auth_refusal = ngx_string(
    "{\"error\":{\"code\":\"invalid_token\",\"message\":\"a valid access "
    "token is required (Authorization: Bearer)\"}}\n");


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


/* postconfiguration: the access check, its witness, the two filters */

ngx_int_t
ngx_game_auth_guard_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_ACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_game_auth_guard_handler;

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_PRECONTENT_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_game_auth_guard_passed;

    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_game_auth_header_filter;

    ngx_http_next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_game_auth_body_filter;

    return NGX_OK;
}


static ngx_int_t
ngx_game_auth_guard_handler(ngx_http_request_t *r)
{
    u_char                     *p, *end;
    ngx_table_elt_t            *h;
    ngx_game_auth_ctx_t        *ctx;
    ngx_game_auth_loc_conf_t   *alcf;

    alcf = ngx_http_get_module_loc_conf(r, ngx_game_auth_module);
    if (!alcf->jwt) {
        return NGX_DECLINED;
    }

    ctx = ngx_game_auth_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ctx->authenticated) {
        return NGX_OK;
    }

    h = r->headers_in.authorization;

    if (h == NULL || h->value.len < 7
        || ngx_strncasecmp(h->value.data, (u_char *) "Bearer ", 7) != 0)
    {
        return ngx_game_auth_guard_refuse(r, ctx);
    }

    end = h->value.data + h->value.len;
    for (p = h->value.data + 7; p < end && *p == ' '; p++) { /* void */ }

    if (ngx_game_auth_verify(ctx->amcf, p, end - p, ctx) != NGX_OK) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "game auth: invalid, expired or revoked access token");
        return ngx_game_auth_guard_refuse(r, ctx);
    }

    ctx->authenticated = 1;
    ctx->refused = 0;

    return NGX_OK;
}


/*
 * The challenge goes in headers_out.www_authenticate, where nginx looks
 * for it: "satisfy any" drops it when another check lets the request in.
 */

static ngx_int_t
ngx_game_auth_guard_refuse(ngx_http_request_t *r, ngx_game_auth_ctx_t *ctx)
{
    ngx_table_elt_t  *h;

    ctx->refused = 1;

    if (r->headers_out.www_authenticate == NULL) {
        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "WWW-Authenticate");
        ngx_str_set(&h->value, "Bearer error=\"invalid_token\"");
        r->headers_out.www_authenticate = h;
    }

    return NGX_HTTP_UNAUTHORIZED;
}


/* past the access phase: whatever the guard said, the request got in */

static ngx_int_t
ngx_game_auth_guard_passed(ngx_http_request_t *r)
{
    ngx_game_auth_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_game_auth_module);
    if (ctx) {
        ctx->refused = 0;
    }

    return NGX_DECLINED;
}


/*
 * nginx's own 401 page for a request the guard refused: our JSON instead.
 * An error_page for 401 redirects the request, which clears our context,
 * so it never gets here.
 */

static ngx_int_t
ngx_game_auth_header_filter(ngx_http_request_t *r)
{
    ngx_game_auth_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_game_auth_module);

    if (ctx == NULL || !ctx->refused || r != r->main
        || r->err_status != NGX_HTTP_UNAUTHORIZED
        || r->headers_out.status != NGX_HTTP_UNAUTHORIZED)
    {
        if (ctx) {
            ctx->refused = 0;
        }

        return ngx_http_next_header_filter(r);
    }

    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;
    r->headers_out.content_length_n = ngx_game_auth_refusal.len;

    if (r->headers_out.content_length) {
        r->headers_out.content_length->hash = 0;
        r->headers_out.content_length = NULL;
    }

    return ngx_http_next_header_filter(r);
}


static ngx_int_t
ngx_game_auth_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    ngx_buf_t            *b;
    ngx_chain_t          *cl, out;
    ngx_game_auth_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_game_auth_module);

    if (ctx == NULL || !ctx->refused || in == NULL) {
        return ngx_http_next_body_filter(r, in);
    }

    /* nginx's page is static memory: skip it whole, send ours once */
    for (cl = in; cl; cl = cl->next) {
        cl->buf->pos = cl->buf->last;
    }

    ctx->refused = 0;

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->memory = 1;
    b->pos = ngx_game_auth_refusal.data;
    b->last = ngx_game_auth_refusal.data + ngx_game_auth_refusal.len;
    b->last_buf = 1;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_next_body_filter(r, &out);
}


/*
 * Endpoints that act on "the caller's account" come with the guard, but
 * "satisfy any" can let a request in without a token: when
 * ctx->authenticated is not set, they refuse with this.
 */

ngx_int_t
ngx_game_auth_send_refusal(ngx_http_request_t *r, ngx_game_auth_ctx_t *ctx)
{
    if (ngx_game_auth_guard_refuse(r, ctx) != NGX_HTTP_UNAUTHORIZED) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->refused = 0;

    return ngx_game_http_send_text(r, NGX_HTTP_UNAUTHORIZED,
                                   &ngx_game_auth_refusal);
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
    v->len = GAME_UUID_LEN;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    return NGX_OK;
}
