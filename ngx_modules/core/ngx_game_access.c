
/*
 * Who is calling: the two kinds of credential every service may meet, and
 * one check of each, shared (ngx_game_core.h has the contract).
 *
 *   - A player's access token is the auth module's to check: its key set,
 *     issuer, audience, leeway, its table of verified tokens and its list
 *     of revoked sessions.  The auth module lends that very check to the
 *     core at configuration time; a service that meets a token outside
 *     the game_auth_jwt guard (a WebSocket's) asks the core, and so holds
 *     the token to exactly what the guard holds it to.
 *
 *   - An admin's secret (game_admin name file): its SHA-256 is compared,
 *     in constant time, with every admin's.  Players' access tokens are
 *     ES256 JWTs, never an admin's secret.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

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


/* admins */

/*
 * game_admin name file: an admin, and the file of its secret (at least 32
 * characters); repeatable.  Services name it in their own directive tables
 * too (game_econ_admin) with this setter: there is one list.
 */

char *
ngx_game_conf_set_admin(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    u_char                     *p;
    ngx_str_t                  *value, secret;
    ngx_uint_t                  i;
    ngx_game_admin_t           *admin, *admins;
    ngx_game_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_game_core_module);
    value = cf->args->elts;

    if (value[1].len == 0 || value[1].len > 64) {
        goto invalid;
    }

    for (p = value[1].data; p < value[1].data + value[1].len; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
              || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'
              || *p == '.'))
        {
            goto invalid;
        }
    }

    admins = cmcf->admins.elts;
    for (i = 0; i < cmcf->admins.nelts; i++) {
        if (admins[i].name.len == value[1].len
            && ngx_strncmp(admins[i].name.data, value[1].data,
                           value[1].len) == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "duplicate admin \"%V\" in \"%V\" directive",
                               &value[1], &cmd->name);
            return NGX_CONF_ERROR;
        }
    }

    if (ngx_game_conf_read_secret(cf, cmd, &value[2], &secret) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    admin = ngx_array_push(&cmcf->admins);
    if (admin == NULL) {
        return NGX_CONF_ERROR;
    }

    /* the name is NUL-terminated (a configuration argument): it goes into
     * SQL parameters as it is */
    admin->name = value[1];
    (void) SHA256(secret.data, secret.len, admin->hash);
    ngx_explicit_memzero(secret.data, secret.len);

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid admin name \"%V\" in \"%V\" directive: use 1 "
                       "to 64 of A-Z a-z 0-9 _ - .", &value[1], &cmd->name);
    return NGX_CONF_ERROR;
}


ngx_uint_t
ngx_game_admins_declared(ngx_conf_t *cf)
{
    ngx_game_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_game_core_module);

    return cmcf->admins.nelts;
}


/*
 * The admin whose secret the request carries as its bearer token, or
 * NULL.  Every admin's hash is compared, always, in constant time: how
 * long it takes says nothing about which secret was close.
 */

ngx_game_admin_t *
ngx_game_admin_who(ngx_http_request_t *r)
{
    u_char                      hash[SHA256_DIGEST_LENGTH];
    ngx_str_t                  *auth;
    ngx_uint_t                  i;
    ngx_game_admin_t           *admins, *found;
    ngx_game_core_main_conf_t  *cmcf;

    cmcf = ngx_http_get_module_main_conf(r, ngx_game_core_module);

    if (r->headers_in.authorization == NULL) {
        return NULL;
    }

    auth = &r->headers_in.authorization->value;

    if (auth->len <= 7
        || ngx_strncasecmp(auth->data, (u_char *) "Bearer ", 7) != 0)
    {
        return NULL;
    }

    (void) SHA256(auth->data + 7, auth->len - 7, hash);

    found = NULL;
    admins = cmcf->admins.elts;

    for (i = 0; i < cmcf->admins.nelts; i++) {
        if (CRYPTO_memcmp(hash, admins[i].hash, sizeof(hash)) == 0) {
            found = &admins[i];
        }
    }

    return found;
}


/*
 * A secret from a file: its first line, without surrounding white space,
 * at least 32 characters, in the configuration's memory.  Errors name the
 * directive and the file, never the secret.
 */

ngx_int_t
ngx_game_conf_read_secret(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_str_t *file, ngx_str_t *secret)
{
    u_char     *p, *last, buf[1024];
    ssize_t     n;
    ngx_fd_t    fd;
    ngx_str_t   path;

    path = *file;
    if (ngx_conf_full_name(cf->cycle, &path, 1) != NGX_OK) {
        return NGX_ERROR;
    }

    fd = ngx_open_file(path.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "\"%V\" cannot open \"%V\"", &cmd->name, &path);
        return NGX_ERROR;
    }

    n = ngx_read_fd(fd, buf, sizeof(buf));
    ngx_close_file(fd);

    if (n < 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "\"%V\" cannot read \"%V\"", &cmd->name, &path);
        return NGX_ERROR;
    }

    p = buf;
    last = buf + n;

    while (p < last && (*p == ' ' || *p == '\t')) {
        p++;
    }

    secret->data = p;
    while (p < last && *p != '\n' && *p != '\r') {
        p++;
    }
    while (p > secret->data && (p[-1] == ' ' || p[-1] == '\t')) {
        p--;
    }

    secret->len = p - secret->data;

    if (secret->len < 32) {
        ngx_explicit_memzero(buf, sizeof(buf));
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\": the secret in \"%V\" must be at least 32 "
                           "characters", &cmd->name, &path);
        return NGX_ERROR;
    }

    p = ngx_pnalloc(cf->pool, secret->len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(p, secret->data, secret->len);
    secret->data = p;
    ngx_explicit_memzero(buf, sizeof(buf));

    return NGX_OK;
}
