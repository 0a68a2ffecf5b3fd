
/*
 * Admin credentials, shared by every service that has admin endpoints.
 *
 * An admin is a name (written wherever the admin's acts are recorded) and
 * a secret in a file, declared by a service's own directive ("name file",
 * e.g. game_econ_admin, game_lb_admin).  Only the secret's SHA-256 is
 * kept.  An admin sends "Authorization: Bearer <secret>"; the request's
 * hash is compared with every admin's, always all of them, in constant
 * time, so that how long it takes says nothing about which secret was
 * close.  Players' access tokens (ES256 JWTs) are never an admin secret:
 * admin locations must not be behind game_auth_jwt.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "ngx_game_core.h"


/* "name file" of the directive being read, into "admins" */
char *
ngx_game_admin_conf(ngx_conf_t *cf, ngx_command_t *cmd, ngx_array_t *admins)
{
    u_char            *p;
    ngx_str_t         *value, secret;
    ngx_uint_t         i;
    ngx_game_admin_t  *admin, *a;

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

    if (admins->elts == NULL
        && ngx_array_init(admins, cf->pool, 2, sizeof(ngx_game_admin_t))
           != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    a = admins->elts;
    for (i = 0; i < admins->nelts; i++) {
        if (a[i].name.len == value[1].len
            && ngx_strncmp(a[i].name.data, value[1].data, value[1].len) == 0)
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

    admin = ngx_array_push(admins);
    if (admin == NULL) {
        return NGX_CONF_ERROR;
    }

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


/* the admin whose secret the request carries, or NULL */
ngx_game_admin_t *
ngx_game_admin_who(ngx_http_request_t *r, ngx_array_t *admins)
{
    u_char             hash[SHA256_DIGEST_LENGTH];
    ngx_str_t         *auth;
    ngx_uint_t         i;
    ngx_game_admin_t  *a, *found;

    if (r->headers_in.authorization == NULL || admins->nelts == 0) {
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
    a = admins->elts;

    for (i = 0; i < admins->nelts; i++) {
        if (CRYPTO_memcmp(hash, a[i].hash, sizeof(hash)) == 0) {
            found = &a[i];
        }
    }

    return found;
}


/*
 * A secret from a file: its first line, without surrounding white space,
 * at least 32 characters, in cf->pool.  Errors name the directive and the
 * file, never the secret.
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
