
/*
 * ngx_game_auth_module: accounts, sessions, player profiles, and a guard
 * that any location can put in front of itself:
 *
 *     location /api/ {
 *         game_auth_jwt  on;
 *         proxy_set_header  X-Player-Id $game_player_id;
 *         proxy_pass  http://backend;
 *     }
 *
 * Endpoints are chosen with "game_auth <endpoint>;" in a location.  All
 * key material and policy is declared once at http level.
 */

#include <liboath/oath.h>

#include "ngx_game_auth.h"


static void *ngx_game_auth_create_main_conf(ngx_conf_t *cf);
static char *ngx_game_auth_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_game_auth_create_loc_conf(ngx_conf_t *cf);
static char *ngx_game_auth_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_game_auth_endpoint(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_game_auth_needs(ngx_conf_t *cf,
    ngx_game_auth_main_conf_t *amcf, ngx_uint_t endpoint);
static ngx_int_t ngx_game_auth_content_handler(ngx_http_request_t *r);
static void ngx_game_auth_redis_done(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply);
static ngx_int_t ngx_game_auth_preconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_game_auth_postconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_game_auth_init_process(ngx_cycle_t *cycle);


static ngx_conf_enum_t  ngx_game_auth_endpoints[] = {
    { ngx_string("register"), NGX_GAME_AUTH_REGISTER },
    { ngx_string("login"), NGX_GAME_AUTH_LOGIN },
    { ngx_string("device"), NGX_GAME_AUTH_DEVICE },
    { ngx_string("link"), NGX_GAME_AUTH_LINK },
    { ngx_string("refresh"), NGX_GAME_AUTH_REFRESH },
    { ngx_string("logout"), NGX_GAME_AUTH_LOGOUT },
    { ngx_string("jwks"), NGX_GAME_AUTH_JWKS },
    { ngx_string("totp"), NGX_GAME_AUTH_TOTP },
    { ngx_string("totp_confirm"), NGX_GAME_AUTH_TOTP_CONFIRM },
    { ngx_string("profile"), NGX_GAME_AUTH_PROFILE },
    { ngx_string("me"), NGX_GAME_AUTH_ME },
    { ngx_string("export"), NGX_GAME_AUTH_EXPORT },
    { ngx_null_string, 0 }
};


/* indexed by ngx_game_auth_endpoint_e */
static ngx_http_handler_pt  ngx_game_auth_handlers[] = {
    NULL,
    ngx_game_auth_register_handler,
    ngx_game_auth_login_handler,
    ngx_game_auth_device_handler,
    ngx_game_auth_link_handler,
    ngx_game_auth_refresh_handler,
    ngx_game_auth_logout_handler,
    ngx_game_auth_jwks_handler,
    ngx_game_auth_totp_handler,
    ngx_game_auth_totp_confirm_handler,
    ngx_game_auth_profile_handler,
    ngx_game_auth_me_handler,
    ngx_game_auth_export_handler
};


static ngx_command_t  ngx_game_auth_commands[] = {

    /* retired: keys are the core's (game_jwt_key), shared by every
     * service; nginx -t says so */
    { ngx_string("game_auth_jwt_key"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_ANY,
      ngx_game_jwt_key_replaced,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    /* verified tokens each worker remembers (0: none) */
    { ngx_string("game_auth_jwt_cache"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_game_auth_main_conf_t, cache_size),
      NULL },

    /* how recent a login sensitive changes want (TOTP, link, erasure) */
    { ngx_string("game_auth_recent_auth"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_game_auth_main_conf_t, recent_auth),
      NULL },

    { ngx_string("game_auth_jwt_issuer"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_game_auth_main_conf_t, issuer),
      NULL },

    { ngx_string("game_auth_jwt_audience"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_game_auth_main_conf_t, audience),
      NULL },

    { ngx_string("game_auth_jwt_leeway"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_game_auth_main_conf_t, leeway),
      NULL },

    { ngx_string("game_auth_access_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_game_auth_main_conf_t, access_ttl),
      NULL },

    { ngx_string("game_auth_refresh_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_game_auth_main_conf_t, refresh_ttl),
      NULL },

    { ngx_string("game_auth_pg_pool"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_game_auth_main_conf_t, pg_name),
      NULL },

    { ngx_string("game_auth_redis_pool"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_game_auth_main_conf_t, redis_name),
      NULL },

    { ngx_string("game_auth_thread_pool"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_game_auth_main_conf_t, thread_pool_name),
      NULL },

    { ngx_string("game_auth_argon2_memory"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_game_auth_main_conf_t, argon2_memory),
      NULL },

    { ngx_string("game_auth_argon2_iterations"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_game_auth_main_conf_t, argon2_iterations),
      NULL },

    { ngx_string("game_auth_argon2_parallelism"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_game_auth_main_conf_t, argon2_parallelism),
      NULL },

    { ngx_string("game_auth_email_key"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_game_auth_main_conf_t, email_key_file),
      NULL },

    { ngx_string("game_auth_email_index_key"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_game_auth_main_conf_t, email_index_key_file),
      NULL },

    { ngx_string("game_auth_common_passwords"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_game_auth_main_conf_t, common_passwords_file),
      NULL },

    { ngx_string("game_auth_login_backoff_threshold"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_game_auth_main_conf_t, backoff_threshold),
      NULL },

    { ngx_string("game_auth_login_backoff_delay"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_game_auth_main_conf_t, backoff_delay),
      NULL },

    { ngx_string("game_auth_login_backoff_max"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_game_auth_main_conf_t, backoff_max),
      NULL },

    { ngx_string("game_auth_profile_cache_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_game_auth_main_conf_t, profile_cache_ttl),
      NULL },

    { ngx_string("game_auth_totp_issuer"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_game_auth_main_conf_t, totp_issuer),
      NULL },

    { ngx_string("game_auth_jwt"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_HTTP_LIF_CONF
      |NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_game_auth_loc_conf_t, jwt),
      NULL },

    { ngx_string("game_auth"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_game_auth_endpoint,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_game_auth_loc_conf_t, endpoint),
      ngx_game_auth_endpoints },

      ngx_null_command
};


static ngx_http_module_t  ngx_game_auth_module_ctx = {
    ngx_game_auth_preconfiguration,        /* preconfiguration */
    ngx_game_auth_postconfiguration,       /* postconfiguration */

    ngx_game_auth_create_main_conf,        /* create main configuration */
    ngx_game_auth_init_main_conf,          /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_game_auth_create_loc_conf,         /* create location configuration */
    ngx_game_auth_merge_loc_conf           /* merge location configuration */
};


ngx_module_t  ngx_game_auth_module = {
    NGX_MODULE_V1,
    &ngx_game_auth_module_ctx,             /* module context */
    ngx_game_auth_commands,                /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_game_auth_init_process,            /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static void *
ngx_game_auth_create_main_conf(ngx_conf_t *cf)
{
    ngx_game_auth_main_conf_t  *amcf;

    amcf = ngx_pcalloc(cf->pool, sizeof(ngx_game_auth_main_conf_t));
    if (amcf == NULL) {
        return NULL;
    }

    amcf->access_ttl = NGX_CONF_UNSET;
    amcf->refresh_ttl = NGX_CONF_UNSET;
    amcf->leeway = NGX_CONF_UNSET;
    amcf->recent_auth = NGX_CONF_UNSET;
    amcf->cache_size = NGX_CONF_UNSET_UINT;
    amcf->argon2_memory = NGX_CONF_UNSET_SIZE;
    amcf->argon2_iterations = NGX_CONF_UNSET_UINT;
    amcf->argon2_parallelism = NGX_CONF_UNSET_UINT;
    amcf->backoff_threshold = NGX_CONF_UNSET_UINT;
    amcf->backoff_delay = NGX_CONF_UNSET;
    amcf->backoff_max = NGX_CONF_UNSET;
    amcf->profile_cache_ttl = NGX_CONF_UNSET;

    return amcf;
}


/*
 * iss and aud go into tokens through jansson and may be URLs
 * ("https://api.example.com"); the TOTP issuer goes into an otpauth:// URI
 * verbatim, so it may not hold URI delimiters.
 */

static char *
ngx_game_auth_check_plain(ngx_conf_t *cf, const char *directive, ngx_str_t *v,
    ngx_uint_t uri)
{
    u_char      c;
    ngx_uint_t  i;

    for (i = 0; i < v->len; i++) {
        c = v->data[i];

        if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\\'
            || (uri && (c == ':' || c == '&' || c == '?' || c == '#'
                        || c == '%' || c == '/')))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid value \"%V\" in \"%s\" directive: "
                               "use printable ASCII without spaces or "
                               "quotes%s", v, directive,
                               uri ? ", or URI delimiters" : "");
            return NGX_CONF_ERROR;
        }
    }

    if (v->len == 0 || v->len > 128) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%s\" must be 1 to 128 characters", directive);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_game_auth_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_game_auth_main_conf_t  *amcf = conf;

    ngx_conf_init_value(amcf->access_ttl, 900);
    ngx_conf_init_value(amcf->refresh_ttl, 30 * 86400);
    ngx_conf_init_value(amcf->leeway, 30);
    ngx_conf_init_value(amcf->recent_auth, 300);
    /* ~150 bytes each: 32768 is ~5 MB a worker, for ~15,000 players
     * active within an access token's lifetime without thrashing */
    ngx_conf_init_uint_value(amcf->cache_size, 32768);
    /* OWASP's Argon2id recommendation: 19 MiB, 2 iterations, 1 lane */
    ngx_conf_init_size_value(amcf->argon2_memory, 19 * 1024 * 1024);
    ngx_conf_init_uint_value(amcf->argon2_iterations, 2);
    ngx_conf_init_uint_value(amcf->argon2_parallelism, 1);
    ngx_conf_init_uint_value(amcf->backoff_threshold, 5);
    ngx_conf_init_value(amcf->backoff_delay, 5);
    ngx_conf_init_value(amcf->backoff_max, 900);
    ngx_conf_init_value(amcf->profile_cache_ttl, 60);

    if (amcf->issuer.data == NULL) {
        ngx_str_set(&amcf->issuer, "game");
    }
    if (amcf->audience.data == NULL) {
        ngx_str_set(&amcf->audience, "game");
    }
    if (amcf->totp_issuer.data == NULL) {
        ngx_str_set(&amcf->totp_issuer, "game");
    }
    if (amcf->pg_name.data == NULL) {
        ngx_str_set(&amcf->pg_name, "main");
    }
    if (amcf->redis_name.data == NULL) {
        ngx_str_set(&amcf->redis_name, "main");
    }
    if (amcf->thread_pool_name.data == NULL) {
        ngx_str_set(&amcf->thread_pool_name, "default");
    }

    if (ngx_game_auth_check_plain(cf, "game_auth_jwt_issuer", &amcf->issuer,
                                  0)
        != NGX_CONF_OK
        || ngx_game_auth_check_plain(cf, "game_auth_jwt_audience",
                                     &amcf->audience, 0) != NGX_CONF_OK
        || ngx_game_auth_check_plain(cf, "game_auth_totp_issuer",
                                     &amcf->totp_issuer, 1) != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (amcf->access_ttl < 1 || amcf->refresh_ttl < 60) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"game_auth_access_ttl\" must be at least 1s and "
                           "\"game_auth_refresh_ttl\" at least 60s");
        return NGX_CONF_ERROR;
    }

    if (amcf->recent_auth < 1) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"game_auth_recent_auth\" must be at least 1s");
        return NGX_CONF_ERROR;
    }

    if (amcf->cache_size > 16 * 1024 * 1024) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"game_auth_jwt_cache\" must be 0 to 16777216 "
                           "entries");
        return NGX_CONF_ERROR;
    }

    if (amcf->argon2_iterations < 1 || amcf->argon2_iterations > 64) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"game_auth_argon2_iterations\" must be 1 to 64");
        return NGX_CONF_ERROR;
    }

    if (amcf->argon2_parallelism < 1 || amcf->argon2_parallelism > 16) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"game_auth_argon2_parallelism\" must be 1 to 16");
        return NGX_CONF_ERROR;
    }

    if (amcf->backoff_threshold < 1 || amcf->backoff_threshold > 1000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"game_auth_login_backoff_threshold\" must be 1 "
                           "to 1000");
        return NGX_CONF_ERROR;
    }

    if (amcf->argon2_memory < 8 * 1024 * amcf->argon2_parallelism
        || amcf->argon2_memory > (size_t) 4 * 1024 * 1024 * 1024 - 1)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"game_auth_argon2_memory\" must be at least 8k "
                           "per lane of \"game_auth_argon2_parallelism\" "
                           "and below 4g");
        return NGX_CONF_ERROR;
    }

    if (amcf->backoff_delay < 1 || amcf->backoff_max < amcf->backoff_delay) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"game_auth_login_backoff_delay\" must be at "
                           "least 1s and at most "
                           "\"game_auth_login_backoff_max\"");
        return NGX_CONF_ERROR;
    }

    ngx_game_auth_backoff_init();

    if (ngx_game_auth_keys_init(cf, amcf) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    /* the guard's check, lent to services that meet tokens elsewhere (a
     * WebSocket's first frame): one check, one state */
    ngx_game_access_lend(cf, ngx_game_auth_check, ngx_game_auth_revoked,
                         amcf);

    if (amcf->email_key_file.len) {
        if (ngx_game_auth_key_file(cf, "game_auth_email_key",
                                   &amcf->email_key_file,
                                   amcf->email_key) != NGX_CONF_OK)
        {
            return NGX_CONF_ERROR;
        }

        if (amcf->email_index_key_file.len == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"game_auth_email_key\" needs "
                               "\"game_auth_email_index_key\" too");
            return NGX_CONF_ERROR;
        }

        if (ngx_game_auth_key_file(cf, "game_auth_email_index_key",
                                   &amcf->email_index_key_file,
                                   amcf->index_key) != NGX_CONF_OK)
        {
            return NGX_CONF_ERROR;
        }

        if (ngx_memcmp(amcf->email_key, amcf->index_key,
                       NGX_GAME_AUTH_KEY_LEN) == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"game_auth_email_key\" and "
                               "\"game_auth_email_index_key\" must differ");
            return NGX_CONF_ERROR;
        }

        amcf->have_email_keys = 1;
    }

    return ngx_game_auth_passwords_load(cf, amcf);
}


static void *
ngx_game_auth_create_loc_conf(ngx_conf_t *cf)
{
    ngx_game_auth_loc_conf_t  *alcf;

    alcf = ngx_pcalloc(cf->pool, sizeof(ngx_game_auth_loc_conf_t));
    if (alcf == NULL) {
        return NULL;
    }

    alcf->jwt = NGX_CONF_UNSET;
    alcf->endpoint = NGX_CONF_UNSET_UINT;

    return alcf;
}


static char *
ngx_game_auth_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_game_auth_loc_conf_t *prev = parent;
    ngx_game_auth_loc_conf_t *conf = child;

    ngx_game_auth_main_conf_t  *amcf;

    /* an endpoint belongs to its own location and is never inherited */
    if (conf->endpoint == NGX_CONF_UNSET_UINT) {
        conf->endpoint = NGX_GAME_AUTH_NONE;
    }

    switch (conf->endpoint) {

    case NGX_GAME_AUTH_LINK:
    case NGX_GAME_AUTH_TOTP:
    case NGX_GAME_AUTH_TOTP_CONFIRM:
    case NGX_GAME_AUTH_ME:
    case NGX_GAME_AUTH_EXPORT:
        /* these act on "the caller's account": the guard comes with them */
        conf->jwt = 1;
        break;

    default:
        break;
    }

    ngx_conf_merge_value(conf->jwt, prev->jwt, 0);

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_game_auth_module);

    if (conf->jwt && amcf->keys->keys.nelts == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"game_auth_jwt\" needs at least one "
                           "\"game_jwt_key\" at http level");
        return NGX_CONF_ERROR;
    }

    if (conf->endpoint != NGX_GAME_AUTH_NONE) {
        return ngx_game_auth_needs(cf, amcf, conf->endpoint);
    }

    return NGX_CONF_OK;
}


/*
 * What an endpoint depends on is looked up when the first location that
 * uses it is merged, so that a configuration which only guards locations
 * needs nothing but keys.
 */

static char *
ngx_game_auth_needs(ngx_conf_t *cf, ngx_game_auth_main_conf_t *amcf,
    ngx_uint_t endpoint)
{
    if (endpoint == NGX_GAME_AUTH_JWKS) {
        if (amcf->keys->keys.nelts == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"game_auth jwks\" needs at least one "
                               "\"game_jwt_key\"");
            return NGX_CONF_ERROR;
        }
        return NGX_CONF_OK;
    }

    if (amcf->keys->signer == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"game_auth\" endpoints need a \"game_jwt_key\" "
                           "with a private part to sign with");
        return NGX_CONF_ERROR;
    }

    if (!amcf->have_email_keys) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"game_auth\" endpoints need "
                           "\"game_auth_email_key\" and "
                           "\"game_auth_email_index_key\"");
        return NGX_CONF_ERROR;
    }

    if (amcf->pg == NULL) {
        amcf->pg = ngx_game_pg_pool_lookup(cf, &amcf->pg_name);
        if (amcf->pg == NULL) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "unknown PostgreSQL pool \"%V\" in "
                               "\"game_auth_pg_pool\"", &amcf->pg_name);
            return NGX_CONF_ERROR;
        }

        amcf->redis = ngx_game_redis_pool_lookup(cf, &amcf->redis_name);
        if (amcf->redis == NULL) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "unknown Redis pool \"%V\" in "
                               "\"game_auth_redis_pool\"", &amcf->redis_name);
            return NGX_CONF_ERROR;
        }
    }

    if (amcf->thread_pool == NULL) {
        amcf->thread_pool = ngx_thread_pool_add(cf, &amcf->thread_pool_name);
        if (amcf->thread_pool == NULL) {
            return NGX_CONF_ERROR;
        }

        if (ngx_game_auth_dummy_hash(cf, amcf) != NGX_CONF_OK) {
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


static char *
ngx_game_auth_endpoint(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char                      *rv;
    ngx_http_core_loc_conf_t  *clcf;

    rv = ngx_conf_set_enum_slot(cf, cmd, conf);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_game_auth_content_handler;

    return NGX_CONF_OK;
}


/*
 * The endpoints that act on "the caller's account" come with the guard,
 * but "satisfy any" may have let the request in without a token.
 */

static ngx_int_t
ngx_game_auth_content_handler(ngx_http_request_t *r)
{
    ngx_game_auth_ctx_t       *ctx;
    ngx_game_auth_loc_conf_t  *alcf;

    alcf = ngx_http_get_module_loc_conf(r, ngx_game_auth_module);

    switch (alcf->endpoint) {

    case NGX_GAME_AUTH_LINK:
    case NGX_GAME_AUTH_TOTP:
    case NGX_GAME_AUTH_TOTP_CONFIRM:
    case NGX_GAME_AUTH_ME:
    case NGX_GAME_AUTH_EXPORT:
        ctx = ngx_game_auth_ctx(r);
        if (ctx == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (!ctx->authenticated) {
            return ngx_game_auth_send_refusal(r, ctx);
        }

        break;

    default:
        break;
    }

    return ngx_game_auth_handlers[alcf->endpoint](r);
}


static ngx_int_t
ngx_game_auth_preconfiguration(ngx_conf_t *cf)
{
    return ngx_game_auth_add_variables(cf);
}


static ngx_int_t
ngx_game_auth_postconfiguration(ngx_conf_t *cf)
{
    ngx_game_auth_main_conf_t  *amcf;

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_game_auth_module);

    if (ngx_game_auth_metrics_init(cf, amcf) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_game_auth_guard_init(cf);
}


static ngx_int_t
ngx_game_auth_init_process(ngx_cycle_t *cycle)
{
    ngx_game_auth_main_conf_t  *amcf;

    /* liboath's global state: set up once per worker, before any request */
    if (oath_init() != OATH_OK) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0, "oath_init() failed");
        return NGX_ERROR;
    }

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    amcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_game_auth_module);
    if (amcf == NULL) {
        return NGX_OK;
    }

    if (ngx_game_auth_cache_init(cycle, amcf) != NGX_OK
        || ngx_game_auth_revoke_init(cycle, amcf) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* the endpoints that take a JSON body: POST only, the request's context
 * made, the body read and handed to "handler" */

ngx_int_t
ngx_game_auth_post_json(ngx_http_request_t *r,
    ngx_game_http_json_handler_pt handler)
{
    if (r->method != NGX_HTTP_POST) {
        return ngx_game_http_send_error(r, NGX_HTTP_NOT_ALLOWED,
                                        "method_not_allowed", "use POST");
    }

    if (ngx_game_auth_ctx(r) == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_game_http_read_json(r, handler);
}


ngx_game_auth_ctx_t *
ngx_game_auth_ctx(ngx_http_request_t *r)
{
    ngx_game_auth_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_game_auth_module);
    if (ctx) {
        return ctx;
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_game_auth_ctx_t));
    if (ctx == NULL) {
        return NULL;
    }

    ctx->request = r;
    ctx->amcf = ngx_http_get_module_main_conf(r, ngx_game_auth_module);
    ngx_http_set_ctx(r, ctx, ngx_game_auth_module);

    return ctx;
}


void
ngx_game_auth_finalize(ngx_game_auth_ctx_t *ctx, ngx_int_t rc)
{
    ngx_http_finalize_request(ctx->request, rc);
}


/*
 * A 429 whose Retry-After is the time left on this account's lock rather
 * than the location's fixed game_retry_after, so it is sent here.
 */

ngx_int_t
ngx_game_auth_send_retry(ngx_http_request_t *r, time_t seconds,
    const char *code, const char *message)
{
    json_t     *body;
    ngx_int_t   rc;

    body = json_pack("{s:{s:s,s:s,s:I}}", "error", "code", code,
                     "message", message, "retry_after", (json_int_t) seconds);
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_game_http_send_json_retry(r, NGX_HTTP_TOO_MANY_REQUESTS, body,
                                       seconds);
    json_decref(body);

    return rc;
}


/*
 * One string field of a JSON body, copied NUL-terminated.  NGX_DECLINED
 * with ctx->errmsg set when it is missing (and required), not a string,
 * empty, or longer than "max" bytes.
 */

ngx_int_t
ngx_game_auth_field(ngx_http_request_t *r, json_t *body, const char *name,
    ngx_str_t *out, ngx_uint_t required, size_t max)
{
    size_t                len;
    const char           *value;
    ngx_game_auth_ctx_t  *ctx;

    ctx = ngx_game_auth_ctx(r);

    out->len = 0;
    out->data = NULL;

    if (game_auth_field(body, name, required, max, &value, &len, ctx->errmsg,
                        sizeof(ctx->errmsg))
        != 0)
    {
        return NGX_DECLINED;
    }

    if (value == NULL) {
        return NGX_OK;
    }

    out->data = ngx_pnalloc(r->pool, len + 1);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(out->data, value, len);
    out->data[len] = '\0';
    out->len = len;

    return NGX_OK;
}


ngx_game_pg_query_t *
ngx_game_auth_query(ngx_game_auth_ctx_t *ctx, ngx_game_pg_stmt_t *stmt,
    ngx_game_pg_handler_pt handler)
{
    ngx_game_pg_query_t  *q;

    q = ngx_game_pg_request_query(ctx->request, stmt);
    if (q == NULL) {
        return NULL;
    }

    q->handler = handler;
    q->data = ctx;

    return q;
}


/* run a query; an immediate outcome goes to its handler all the same */

ngx_int_t
ngx_game_auth_run(ngx_game_auth_ctx_t *ctx, ngx_game_pg_query_t *q)
{
    ngx_int_t  rc;

    rc = ngx_game_pg_query_run(ctx->amcf->pg, q);
    if (rc != NGX_AGAIN) {
        q->handler(q, rc, NULL);
    }

    return NGX_OK;
}


ngx_int_t
ngx_game_auth_redis(ngx_game_auth_ctx_t *ctx, ngx_game_redis_handler_pt handler,
    int argc, const char **argv, const size_t *argvlen)
{
    ngx_int_t              rc;
    ngx_game_redis_cmd_t  *cmd;

    cmd = ngx_game_redis_request_cmd(ctx->request);
    if (cmd == NULL) {
        return NGX_ERROR;
    }

    cmd->handler = handler;
    cmd->data = ctx;

    rc = ngx_game_redis_cmd_run(ctx->amcf->redis, cmd, argc, argv, argvlen);
    if (rc != NGX_AGAIN) {
        handler(cmd, rc, NULL);
    }

    return NGX_OK;
}


/*
 * A Redis command whose failure costs only a warning ("failed" says what
 * is lost: a cache entry that expires by itself, a revocation that other
 * nginx instances learn late).  "next" runs once it has been answered.
 */

void
ngx_game_auth_redis_then(ngx_game_auth_ctx_t *ctx, ngx_game_redis_args_t *a,
    const char *failed, ngx_game_auth_step_pt next)
{
    ctx->hash_done = next;
    ctx->redis_failed = failed;

    if (ctx->amcf->redis == NULL
        || ngx_game_auth_redis(ctx, ngx_game_auth_redis_done, a->argc,
                               a->argv, a->argvlen) != NGX_OK)
    {
        next(ctx);
    }
}


static void
ngx_game_auth_redis_done(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply)
{
    ngx_game_auth_ctx_t  *ctx = cmd->data;

    if (rc != NGX_OK) {
        ngx_log_error(NGX_LOG_WARN, ctx->request->connection->log, 0,
                      "game auth: %s", ctx->redis_failed);
    }

    ctx->hash_done(ctx);
}


const char *
ngx_game_auth_sqlstate(PGresult *res)
{
    const char  *s;

    s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

    return s ? s : "";
}


const char *
ngx_game_auth_constraint(PGresult *res)
{
    const char  *s;

    s = res ? PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME) : NULL;

    return s ? s : "";
}
