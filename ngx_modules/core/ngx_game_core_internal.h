
/*
 * What the core's own files share with one another, and nobody else.
 */

#ifndef _NGX_GAME_CORE_INTERNAL_H_INCLUDED_
#define _NGX_GAME_CORE_INTERNAL_H_INCLUDED_


#include "ngx_game_core.h"


typedef struct ngx_game_metrics_conf_s  ngx_game_metrics_conf_t;


typedef struct {
    ngx_array_t                 pg_pools;       /* ngx_game_pg_pool_t * */
    ngx_array_t                 redis_pools;    /* ngx_game_redis_pool_t * */
    ngx_array_t                 buses;          /* ngx_game_bus_t * */
    ngx_game_jwt_keys_t         jwt;            /* game_jwt_key */
    ngx_game_metrics_conf_t    *metrics;
    void                       *bus_metrics;    /* ngx_game_bus.c's */
    ngx_game_access_verifier_t  access;         /* lent by the auth module */
    ngx_game_push_hooks_t       push;           /* services' hooks */
    ngx_int_t                   request_id;     /* $request_id's index, or
                                                   NGX_ERROR: no pool traces */
} ngx_game_core_main_conf_t;


typedef struct {
    size_t                      body_limit;
    time_t                      retry_after;
    ngx_uint_t                  endpoint;       /* metrics' label value */
} ngx_game_core_loc_conf_t;


/* reconnect delays: the first retry is quick, later ones back off to 1 s so
 * that a returning dependency is picked up within about two seconds */
#define NGX_GAME_BACKOFF_MIN    100
#define NGX_GAME_BACKOFF_MAX    1000


char *ngx_game_pg_pool_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_game_pg_pools_check(ngx_conf_t *cf, ngx_array_t *pools);
ngx_int_t ngx_game_pg_trace_init(ngx_conf_t *cf,
    ngx_game_core_main_conf_t *cmcf);
ngx_int_t ngx_game_pg_pools_start(ngx_cycle_t *cycle, ngx_array_t *pools);
void ngx_game_pg_pools_stop(ngx_array_t *pools);

char *ngx_game_redis_pool_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_game_redis_pools_check(ngx_conf_t *cf, ngx_array_t *pools);
ngx_int_t ngx_game_redis_pools_start(ngx_cycle_t *cycle, ngx_array_t *pools);
void ngx_game_redis_pools_stop(ngx_array_t *pools);

ngx_int_t ngx_game_push_hooks_init(ngx_pool_t *pool,
    ngx_game_push_hooks_t *hooks);

ngx_int_t ngx_game_bus_start(ngx_cycle_t *cycle, ngx_array_t *buses);
void ngx_game_bus_stop(ngx_array_t *buses);

char *ngx_game_jwt_key_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

char *ngx_game_health_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_game_ready_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_game_json_echo_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* metrics: ngx_game_metrics.c */
ngx_int_t ngx_game_metrics_create(ngx_conf_t *cf,
    ngx_game_core_main_conf_t *cmcf);
ngx_int_t ngx_game_metrics_endpoint(ngx_conf_t *cf, ngx_str_t *location);
ngx_int_t ngx_game_metrics_init(ngx_conf_t *cf);
ngx_int_t ngx_game_metrics_variables(ngx_conf_t *cf);
ngx_int_t ngx_game_http_variables(ngx_conf_t *cf);
ngx_int_t ngx_game_metrics_start(ngx_cycle_t *cycle,
    ngx_game_core_main_conf_t *cmcf);
void ngx_game_metrics_stop(ngx_game_core_main_conf_t *cmcf);
char *ngx_game_metrics_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_game_pg_metrics_init(ngx_conf_t *cf, ngx_array_t *pools);
ngx_int_t ngx_game_redis_metrics_init(ngx_conf_t *cf, ngx_array_t *pools);

/* postconfiguration: the request body filter of ngx_game_http.c */
ngx_int_t ngx_game_http_init(ngx_conf_t *cf);


#endif /* _NGX_GAME_CORE_INTERNAL_H_INCLUDED_ */
