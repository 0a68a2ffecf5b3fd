
/*
 * ngx_game_core_module: the directives every service builds on.
 *
 *   http {
 *       game_pg_pool     main "host=127.0.0.1 port=5432 dbname=game"
 *                        connections=8 query_timeout=3s;
 *       game_redis_pool  main 127.0.0.1:6379 connections=2;
 *
 *       server {
 *           location = /healthz { game_health; }
 *           location = /readyz  { game_ready; }
 *       }
 *   }
 *
 * Pools are per worker: each worker opens its own connections when it
 * starts and closes them when it exits, so a reload brings fresh pools with
 * the new configuration while old workers finish their requests.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <openssl/rand.h>

#include "ngx_game_core_internal.h"


static ngx_int_t ngx_game_core_preconfiguration(ngx_conf_t *cf);
static void *ngx_game_core_create_main_conf(ngx_conf_t *cf);
static ngx_int_t ngx_game_core_postconfiguration(ngx_conf_t *cf);
static void *ngx_game_core_create_loc_conf(ngx_conf_t *cf);
static char *ngx_game_core_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static ngx_int_t ngx_game_core_init_process(ngx_cycle_t *cycle);
static void ngx_game_core_exit_process(ngx_cycle_t *cycle);
static ngx_int_t ngx_game_core_instance_init(ngx_cycle_t *cycle);


/* this worker's name, see ngx_game_instance_id() */
static u_char     ngx_game_core_instance[NGX_MAXHOSTNAMELEN + 48];
static ngx_str_t  ngx_game_core_instance_id;


static ngx_command_t  ngx_game_core_commands[] = {

    /* game_pg_pool name conninfo [connections=4] [pipeline=8]
     *              [max_queue=1024] [connect_timeout=2s] [query_timeout=5s]
     *              [keepalive=30s] [copy=off] [trace=on] */
    { ngx_string("game_pg_pool"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_2MORE,
      ngx_game_pg_pool_directive,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    /* game_redis_pool name ip:port|unix:/path [connections=1]
     *                 [max_pending=4096] [connect_timeout=1s]
     *                 [command_timeout=1s] [keepalive=30s] */
    { ngx_string("game_redis_pool"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_2MORE,
      ngx_game_redis_pool_directive,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    /* game_jwt_key kid file [use=sign|use=verify]: the one key set that
     * signs and checks access tokens, connection tickets and the JWKS */
    { ngx_string("game_jwt_key"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE23,
      ngx_game_jwt_key_directive,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    /* largest JSON request body accepted; larger ones get 413 */
    { ngx_string("game_body_limit"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_game_core_loc_conf_t, body_limit),
      NULL },

    /* the Retry-After sent with 503 and 429 answers */
    { ngx_string("game_retry_after"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_game_core_loc_conf_t, retry_after),
      NULL },

    /* liveness: 200 while the worker answers */
    { ngx_string("game_health"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_game_health_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    /* readiness: a round trip to every declared pool */
    { ngx_string("game_ready"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_game_ready_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    /* Prometheus' text format: every family every module declared,
     * summed over the workers; restrict it with allow/deny */
    { ngx_string("game_metrics"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_game_metrics_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    /* diagnostics: parse a JSON body like every endpoint, send it back */
    { ngx_string("game_json_echo"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_game_json_echo_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_game_core_module_ctx = {
    ngx_game_core_preconfiguration,        /* preconfiguration */
    ngx_game_core_postconfiguration,       /* postconfiguration */

    ngx_game_core_create_main_conf,        /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_game_core_create_loc_conf,         /* create location configuration */
    ngx_game_core_merge_loc_conf           /* merge location configuration */
};


ngx_module_t  ngx_game_core_module = {
    NGX_MODULE_V1,
    &ngx_game_core_module_ctx,             /* module context */
    ngx_game_core_commands,                /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_game_core_init_process,            /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_game_core_exit_process,            /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


/* $game_endpoint, $game_pg_time, $game_redis_time */
static ngx_int_t
ngx_game_core_preconfiguration(ngx_conf_t *cf)
{
    if (ngx_game_metrics_variables(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_game_http_variables(cf);
}


static void *
ngx_game_core_create_main_conf(ngx_conf_t *cf)
{
    ngx_game_core_main_conf_t  *cmcf;

    cmcf = ngx_pcalloc(cf->pool, sizeof(ngx_game_core_main_conf_t));
    if (cmcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&cmcf->pg_pools, cf->pool, 2, sizeof(void *))
        != NGX_OK
        || ngx_array_init(&cmcf->redis_pools, cf->pool, 2, sizeof(void *))
           != NGX_OK
        || ngx_array_init(&cmcf->buses, cf->pool, 2, sizeof(void *))
           != NGX_OK
        || ngx_array_init(&cmcf->jwt.keys, cf->pool, 2,
                          sizeof(ngx_game_jwt_key_t))
           != NGX_OK
        || ngx_game_metrics_create(cf, cmcf) != NGX_OK
        || ngx_game_push_hooks_init(cf->pool, &cmcf->push) != NGX_OK)
    {
        return NULL;
    }

    return cmcf;
}


/*
 * Every pool a module named must have been declared.  Checked this late
 * because modules may look pools up as late as their own init_main_conf,
 * which runs after ours.
 */

static ngx_int_t
ngx_game_core_postconfiguration(ngx_conf_t *cf)
{
    ngx_game_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_game_core_module);

    if (ngx_game_pg_pools_check(cf, &cmcf->pg_pools) != NGX_CONF_OK
        || ngx_game_redis_pools_check(cf, &cmcf->redis_pools) != NGX_CONF_OK
        || ngx_game_pg_trace_init(cf, cmcf) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_game_pg_metrics_init(cf, &cmcf->pg_pools) != NGX_OK
        || ngx_game_redis_metrics_init(cf, &cmcf->redis_pools) != NGX_OK
        || ngx_game_metrics_init(cf) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_game_http_init(cf);
}


static void *
ngx_game_core_create_loc_conf(ngx_conf_t *cf)
{
    ngx_game_core_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_game_core_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    conf->body_limit = NGX_CONF_UNSET_SIZE;
    conf->retry_after = NGX_CONF_UNSET;
    conf->endpoint = NGX_CONF_UNSET_UINT;

    return conf;
}


static char *
ngx_game_core_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_int_t                  endpoint;
    ngx_http_core_loc_conf_t  *hlcf;
    ngx_game_core_loc_conf_t  *prev = parent;
    ngx_game_core_loc_conf_t  *conf = child;

    ngx_conf_merge_size_value(conf->body_limit, prev->body_limit, 64 * 1024);
    ngx_conf_merge_sec_value(conf->retry_after, prev->retry_after, 1);

    if (conf->retry_after < 1) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"game_retry_after\" must be at least 1s");
        return NGX_CONF_ERROR;
    }

    /* requests are counted by location: "if" and "limit_except" blocks
     * count with the location they are in */
    hlcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (hlcf->noname && prev->endpoint != NGX_CONF_UNSET_UINT) {
        conf->endpoint = prev->endpoint;

    } else {
        endpoint = ngx_game_metrics_endpoint(cf, &hlcf->name);
        if (endpoint == NGX_ERROR) {
            return NGX_CONF_ERROR;
        }

        conf->endpoint = endpoint;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_game_core_init_process(ngx_cycle_t *cycle)
{
    ngx_game_core_main_conf_t  *cmcf;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    cmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_game_core_module);
    if (cmcf == NULL) {
        /* the module is loaded but this configuration has no http block */
        return NGX_OK;
    }

    if (ngx_game_core_instance_init(cycle) != NGX_OK
        || ngx_game_metrics_start(cycle, cmcf) != NGX_OK
        || ngx_game_pg_pools_start(cycle, &cmcf->pg_pools) != NGX_OK
        || ngx_game_redis_pools_start(cycle, &cmcf->redis_pools) != NGX_OK
        || ngx_game_bus_start(cycle, &cmcf->buses) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * hostname:pid alone is not unique: containers on one host can share both.
 * The random part makes a name that no other worker, before or after, has.
 */

static ngx_int_t
ngx_game_core_instance_init(ngx_cycle_t *cycle)
{
    u_char  rnd[6];

    if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "game: no random bytes for the worker's name");
        return NGX_ERROR;
    }

    ngx_game_core_instance_id.data = ngx_game_core_instance;
    ngx_game_core_instance_id.len =
        ngx_snprintf(ngx_game_core_instance, sizeof(ngx_game_core_instance) - 1,
                     "%V:%P:%*xs", &cycle->hostname, ngx_pid,
                     sizeof(rnd), rnd)
        - ngx_game_core_instance;
    ngx_game_core_instance[ngx_game_core_instance_id.len] = '\0';

    return NGX_OK;
}


ngx_str_t *
ngx_game_instance_id(void)
{
    return &ngx_game_core_instance_id;
}


static void
ngx_game_core_exit_process(ngx_cycle_t *cycle)
{
    ngx_game_core_main_conf_t  *cmcf;

    cmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_game_core_module);
    if (cmcf == NULL) {
        return;
    }

    ngx_game_bus_stop(&cmcf->buses);
    ngx_game_pg_pools_stop(&cmcf->pg_pools);
    ngx_game_redis_pools_stop(&cmcf->redis_pools);
    ngx_game_metrics_stop(cmcf);
}
