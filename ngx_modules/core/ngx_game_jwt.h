
/*
 * ES256 JSON Web Tokens signed inside nginx, for tokens that other parts
 * of the system check with the public key only: the connection tickets
 * that dedicated game servers accept (gameserver/PROTOCOL.md).
 */

#ifndef _NGX_GAME_JWT_H_INCLUDED_
#define _NGX_GAME_JWT_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <openssl/evp.h>


typedef struct {
    ngx_str_t                   kid;
    EVP_PKEY                   *pkey;
    ngx_str_t                   header;     /* base64url, with alg, kid, typ */
} ngx_game_jwt_key_t;


/* load a P-256 private key from a PEM file; errors name the directive */
char *ngx_game_jwt_key_load(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_game_jwt_key_t *key, ngx_str_t *kid, ngx_str_t *file,
    const char *typ);

/* header.payload.signature, with "payload" the JSON claims */
ngx_int_t ngx_game_jwt_sign(ngx_game_jwt_key_t *key, ngx_pool_t *pool,
    ngx_str_t *payload, ngx_str_t *token);


#endif /* _NGX_GAME_JWT_H_INCLUDED_ */
