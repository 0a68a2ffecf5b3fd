
/*
 * A player's access token, checked one way for every service
 * (ngx_game_core.h has the contract).  The check is the auth module's:
 * its key set, issuer, audience, leeway, its table of verified tokens and
 * its list of revoked sessions.  The auth module lends that very check to
 * the core at configuration time; a service that meets a token outside
 * the game_auth_jwt guard (a WebSocket's) asks the core, and so holds the
 * token to exactly what the guard holds it to.  Admins' secrets are
 * ngx_game_admin.c's.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_game_core_internal.h"


/* access tokens */

void
ngx_game_access_lend(ngx_conf_t *cf, ngx_game_access_verify_pt verify,
    ngx_game_access_revoked_pt revoked, void *data)
{
    ngx_game_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_game_core_module);

    cmcf->access.verify = verify;
    cmcf->access.revoked = revoked;
    cmcf->access.data = data;
}


ngx_game_access_verifier_t *
ngx_game_access_verifier(ngx_conf_t *cf)
{
    ngx_game_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_game_core_module);

    return &cmcf->access;
}


ngx_int_t
ngx_game_access_verify(ngx_game_access_verifier_t *v, u_char *token,
    size_t len, ngx_game_access_t *a)
{
    if (v->verify == NULL) {
        return NGX_DECLINED;
    }

    ngx_memzero(a, sizeof(ngx_game_access_t));

    return v->verify(v->data, token, len, a);
}


ngx_uint_t
ngx_game_access_revoked(ngx_game_access_verifier_t *v, ngx_game_access_t *a)
{
    if (v->revoked == NULL) {
        return 0;
    }

    return v->revoked(v->data, a);
}


/*
 * "Authorization: Bearer <token>": the token, without the scheme and the
 * spaces after it, or NGX_DECLINED when there is no such header.
 */

ngx_int_t
ngx_game_access_bearer(ngx_http_request_t *r, ngx_str_t *token)
{
    u_char     *p, *end;
    ngx_str_t  *auth;

    if (r->headers_in.authorization == NULL) {
        return NGX_DECLINED;
    }

    auth = &r->headers_in.authorization->value;

    if (auth->len <= 7
        || ngx_strncasecmp(auth->data, (u_char *) "Bearer ", 7) != 0)
    {
        return NGX_DECLINED;
    }

    end = auth->data + auth->len;
    for (p = auth->data + 7; p < end && *p == ' '; p++) { /* void */ }

    if (p == end) {
        return NGX_DECLINED;
    }

    token->data = p;
    token->len = end - p;

    return NGX_OK;
}
