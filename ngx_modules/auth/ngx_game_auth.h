
/*
 * The auth module's shared declarations: accounts, sessions, profiles and
 * the JWT guard.  Each file of the module owns one idea:
 *
 *   ngx_game_auth_module.c    directives, configuration, phase handlers
 *   ngx_game_auth_access.c    access tokens: issued, verified, cached; JWKS
 *   ngx_game_auth_revoke.c    revoked sessions, known to every worker
 *   ngx_game_auth_guard.c     the game_auth_jwt guard and $game_player_id
 *   ngx_game_auth_password.c  Argon2id in the thread pool, password policy
 *   ngx_game_auth_crypto.c    email encryption, blind index, token hashes
 *   ngx_game_auth_tokens.c    refresh tokens and the token answer
 *   ngx_game_auth_backoff.c   per-account failed-login back-off in Redis
 *   ngx_game_auth_register.c  POST /auth/register, /auth/device, /auth/link
 *   ngx_game_auth_login.c     POST /auth/login
 *   ngx_game_auth_session.c   POST /auth/refresh, /auth/logout
 *   ngx_game_auth_totp.c      TOTP enrolment and checks
 *   ngx_game_auth_player.c    profiles, /player/me, export and erasure
 */

#ifndef _NGX_GAME_AUTH_H_INCLUDED_
#define _NGX_GAME_AUTH_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <ngx_thread_pool.h>
#include <openssl/evp.h>

#include "ngx_game_core.h"
#include "game_util.h"
#include "game_auth_util.h"


#define NGX_GAME_AUTH_KEY_LEN        32     /* AES-256 and HMAC keys */
#define NGX_GAME_AUTH_REFRESH_LEN    43     /* 256 bits, base64url */
#define NGX_GAME_AUTH_HASH_HEX       (2 + 64)   /* "\x" + SHA-256 hex */
#define NGX_GAME_AUTH_PASSWORD_MAX   1024
#define NGX_GAME_AUTH_ARGON2_MAX     160


/* nginx names no constant for it */
#define NGX_GAME_AUTH_HTTP_UNPROCESSABLE  422


#define ngx_game_auth_isalnum(c)                                             \
    (((c) >= 'a' && (c) <= 'z') || ((c) >= 'A' && (c) <= 'Z')                \
     || ((c) >= '0' && (c) <= '9'))


typedef enum {
    NGX_GAME_AUTH_NONE = 0,
    NGX_GAME_AUTH_REGISTER,
    NGX_GAME_AUTH_LOGIN,
    NGX_GAME_AUTH_DEVICE,
    NGX_GAME_AUTH_LINK,
    NGX_GAME_AUTH_REFRESH,
    NGX_GAME_AUTH_LOGOUT,
    NGX_GAME_AUTH_JWKS,
    NGX_GAME_AUTH_TOTP,
    NGX_GAME_AUTH_TOTP_CONFIRM,
    NGX_GAME_AUTH_PROFILE,
    NGX_GAME_AUTH_ME,
    NGX_GAME_AUTH_EXPORT
} ngx_game_auth_endpoint_e;


typedef struct ngx_game_auth_cache_s    ngx_game_auth_cache_t;
typedef struct ngx_game_auth_revoked_s  ngx_game_auth_revoked_t;


typedef struct {
    ngx_game_jwt_keys_t        *keys;           /* the core's key set */

    ngx_str_t                   issuer;
    ngx_str_t                   audience;
    time_t                      access_ttl;
    time_t                      refresh_ttl;
    time_t                      leeway;
    time_t                      recent_auth;    /* sensitive changes */
    ngx_uint_t                  cache_size;     /* verified tokens */

    ngx_str_t                   pg_name;
    ngx_str_t                   redis_name;
    ngx_game_pg_pool_t         *pg;
    ngx_game_redis_pool_t      *redis;

    ngx_str_t                   thread_pool_name;
    ngx_thread_pool_t          *thread_pool;

    size_t                      argon2_memory;
    ngx_uint_t                  argon2_iterations;
    ngx_uint_t                  argon2_parallelism;
    char                       *dummy_hash;

    ngx_str_t                   email_key_file;
    ngx_str_t                   email_index_key_file;
    u_char                      email_key[NGX_GAME_AUTH_KEY_LEN];
    u_char                      index_key[NGX_GAME_AUTH_KEY_LEN];
    unsigned                    have_email_keys:1;

    ngx_str_t                   common_passwords_file;
    ngx_array_t                 common_passwords;   /* sorted ngx_str_t */

    ngx_uint_t                  backoff_threshold;
    time_t                      backoff_delay;
    time_t                      backoff_max;

    time_t                      profile_cache_ttl;
    ngx_str_t                   totp_issuer;

    /* metrics (ngx_game_auth_metrics.c) */
    ngx_game_metric_t          *logins;
    ngx_game_metric_t          *hashes;

    /* per worker, from init_process on */
    ngx_game_auth_cache_t      *cache;
    ngx_game_auth_revoked_t    *revoked;
} ngx_game_auth_main_conf_t;


typedef struct {
    ngx_flag_t                  jwt;
    ngx_uint_t                  endpoint;
} ngx_game_auth_loc_conf_t;


typedef struct ngx_game_auth_ctx_s  ngx_game_auth_ctx_t;

ngx_int_t ngx_game_auth_metrics_init(ngx_conf_t *cf,
    ngx_game_auth_main_conf_t *amcf);

typedef void (*ngx_game_auth_step_pt)(ngx_game_auth_ctx_t *ctx);


/* one per request; the guard creates it, the endpoints extend it */
struct ngx_game_auth_ctx_s {
    ngx_http_request_t         *request;
    ngx_game_auth_main_conf_t  *amcf;

    /* set by the guard: who, in which session, authenticated when */
    u_char                      player_id[GAME_UUID_LEN + 1];
    u_char                      sid[GAME_UUID_LEN + 1];     /* or "" */
    time_t                      iat;
    time_t                      auth_time;                  /* or 0 */
    unsigned                    authenticated:1;
    unsigned                    refused:1;

    char                        errmsg[128];

    /* request fields, NUL-terminated, from the JSON body */
    ngx_str_t                   login;
    ngx_str_t                   username;
    ngx_str_t                   email;
    ngx_str_t                   password;
    ngx_str_t                   otp;

    /* derived values, ready to be SQL parameters */
    char                        new_id[GAME_UUID_LEN + 1];
    char                        session[GAME_UUID_LEN + 1]; /* family */
    char                       *email_ct;       /* "\x..." bytea text */
    char                       *email_ix;
    char                        backoff_key[64 + 1];
    char                        backoff_n[NGX_INT_T_LEN + 1];
    u_char                      refresh[NGX_GAME_AUTH_REFRESH_LEN + 1];
    char                        refresh_hash[NGX_GAME_AUTH_HASH_HEX + 1];
    char                        ttl[NGX_INT_T_LEN + 1];

    /* Argon2id work, done in the thread pool: the thread works on a task
     * of its own (ngx_game_auth_password.c); the outcome lands here */
    const char                 *stored_hash;
    char                        hash[NGX_GAME_AUTH_ARGON2_MAX];
    unsigned                    hash_ok:1;
    unsigned                    rehashed:1;
    unsigned                    hash_failed:1;
    ngx_game_auth_step_pt       hash_done;      /* or the next step */
    const char                 *redis_failed;
    time_t                      issued_auth_time;   /* for the answer */

    /* login state */
    unsigned                    found:1;
    unsigned                    totp_enabled:1;
    char                        totp_step[NGX_INT64_LEN + 1];
    char                       *totp_secret_ct;
    int64_t                     totp_last_step;
};


extern ngx_module_t  ngx_game_auth_module;


/* ngx_game_auth_module.c */
ngx_game_auth_ctx_t *ngx_game_auth_ctx(ngx_http_request_t *r);
ngx_int_t ngx_game_auth_post_json(ngx_http_request_t *r,
    ngx_game_http_json_handler_pt handler);
ngx_int_t ngx_game_auth_send_retry(ngx_http_request_t *r, time_t seconds,
    const char *code, const char *message);
void ngx_game_auth_finalize(ngx_game_auth_ctx_t *ctx, ngx_int_t rc);
ngx_int_t ngx_game_auth_field(ngx_http_request_t *r, json_t *body,
    const char *name, ngx_str_t *out, ngx_uint_t required, size_t max);
ngx_game_pg_query_t *ngx_game_auth_query(ngx_game_auth_ctx_t *ctx,
    ngx_game_pg_stmt_t *stmt, ngx_game_pg_handler_pt handler);
ngx_int_t ngx_game_auth_run(ngx_game_auth_ctx_t *ctx, ngx_game_pg_query_t *q);
ngx_int_t ngx_game_auth_redis(ngx_game_auth_ctx_t *ctx,
    ngx_game_redis_handler_pt handler, int argc, const char **argv,
    const size_t *argvlen);
void ngx_game_auth_redis_then(ngx_game_auth_ctx_t *ctx,
    ngx_game_redis_args_t *a, const char *failed, ngx_game_auth_step_pt next);
const char *ngx_game_auth_sqlstate(PGresult *res);
const char *ngx_game_auth_constraint(PGresult *res);

/* ngx_game_auth_access.c */
char *ngx_game_auth_keys_init(ngx_conf_t *cf, ngx_game_auth_main_conf_t *amcf);
ngx_int_t ngx_game_auth_sign(ngx_game_auth_ctx_t *ctx, const char *sub,
    ngx_str_t *token);
ngx_int_t ngx_game_auth_cache_init(ngx_cycle_t *cycle,
    ngx_game_auth_main_conf_t *amcf);
ngx_int_t ngx_game_auth_verify(ngx_game_auth_main_conf_t *amcf, u_char *token,
    size_t len, ngx_game_auth_ctx_t *ctx);
ngx_int_t ngx_game_auth_check(void *data, u_char *token, size_t len,
    ngx_game_access_t *a);
ngx_uint_t ngx_game_auth_is_recent(ngx_game_auth_ctx_t *ctx);
ngx_int_t ngx_game_auth_send_stale(ngx_game_auth_ctx_t *ctx);

/* ngx_game_auth_revoke.c */
ngx_int_t ngx_game_auth_revoke_init(ngx_cycle_t *cycle,
    ngx_game_auth_main_conf_t *amcf);
ngx_uint_t ngx_game_auth_revoked(void *data, ngx_game_access_t *a);
void ngx_game_auth_revoke(ngx_game_auth_ctx_t *ctx, char kind,
    const char *id, ngx_game_auth_step_pt next);

/* ngx_game_auth_guard.c */
ngx_int_t ngx_game_auth_guard_init(ngx_conf_t *cf);
ngx_int_t ngx_game_auth_add_variables(ngx_conf_t *cf);
ngx_int_t ngx_game_auth_send_refusal(ngx_http_request_t *r,
    ngx_game_auth_ctx_t *ctx);

/* ngx_game_auth_password.c */
char *ngx_game_auth_passwords_load(ngx_conf_t *cf,
    ngx_game_auth_main_conf_t *amcf);
char *ngx_game_auth_dummy_hash(ngx_conf_t *cf,
    ngx_game_auth_main_conf_t *amcf);
const char *ngx_game_auth_password_weak(ngx_game_auth_main_conf_t *amcf,
    ngx_str_t *password);
ngx_int_t ngx_game_auth_hash(ngx_game_auth_ctx_t *ctx,
    ngx_game_auth_step_pt done);

/* ngx_game_auth_crypto.c */
char *ngx_game_auth_key_file(ngx_conf_t *cf, const char *directive,
    ngx_str_t *file, u_char *key);
ngx_int_t ngx_game_auth_email_seal(ngx_game_auth_ctx_t *ctx, const char *aad_id);
ngx_int_t ngx_game_auth_secret_seal(ngx_game_auth_main_conf_t *amcf,
    ngx_pool_t *pool, const char *purpose, const char *id, u_char *plain,
    size_t len, char **out);
ngx_int_t ngx_game_auth_secret_open(ngx_game_auth_main_conf_t *amcf,
    ngx_pool_t *pool, const char *purpose, const char *id, const char *hex,
    ngx_str_t *plain);
char *ngx_game_auth_blind_index(ngx_game_auth_main_conf_t *amcf,
    ngx_pool_t *pool, const char *kind, ngx_str_t *value);
void ngx_game_auth_lower(ngx_str_t *s);
char *ngx_game_auth_token_hash(ngx_pool_t *pool, ngx_str_t *token);

/* ngx_game_auth_tokens.c */
ngx_int_t ngx_game_auth_refresh_new(ngx_game_auth_ctx_t *ctx);
ngx_int_t ngx_game_auth_send_tokens(ngx_game_auth_ctx_t *ctx,
    const char *player_id, ngx_uint_t status);
ngx_int_t ngx_game_auth_session_from(ngx_game_auth_ctx_t *ctx, PGresult *res,
    int player, int family, int auth_time);

/* ngx_game_auth_backoff.c */
void ngx_game_auth_backoff_init(void);
void ngx_game_auth_backoff_reserve(ngx_game_auth_ctx_t *ctx,
    ngx_game_auth_step_pt next);
void ngx_game_auth_backoff_fail(ngx_game_auth_ctx_t *ctx);
void ngx_game_auth_backoff_succeed(ngx_game_auth_ctx_t *ctx,
    ngx_game_auth_step_pt next);

/* endpoints */
ngx_int_t ngx_game_auth_register_handler(ngx_http_request_t *r);
ngx_int_t ngx_game_auth_device_handler(ngx_http_request_t *r);
ngx_int_t ngx_game_auth_link_handler(ngx_http_request_t *r);
ngx_int_t ngx_game_auth_login_handler(ngx_http_request_t *r);
ngx_int_t ngx_game_auth_refresh_handler(ngx_http_request_t *r);
ngx_int_t ngx_game_auth_logout_handler(ngx_http_request_t *r);
ngx_int_t ngx_game_auth_jwks_handler(ngx_http_request_t *r);
ngx_int_t ngx_game_auth_totp_handler(ngx_http_request_t *r);
ngx_int_t ngx_game_auth_totp_confirm_handler(ngx_http_request_t *r);
ngx_int_t ngx_game_auth_totp_check(ngx_game_auth_ctx_t *ctx, const char *id);
ngx_int_t ngx_game_auth_profile_handler(ngx_http_request_t *r);
ngx_int_t ngx_game_auth_me_handler(ngx_http_request_t *r);
ngx_int_t ngx_game_auth_export_handler(ngx_http_request_t *r);
void ngx_game_auth_profile_invalidate(ngx_game_auth_ctx_t *ctx,
    const char *player_id, ngx_game_auth_step_pt next);


#endif /* _NGX_GAME_AUTH_H_INCLUDED_ */
