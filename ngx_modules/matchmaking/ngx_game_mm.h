
/*
 * The matchmaking module's own declarations, shared by its files.
 */

#ifndef _NGX_GAME_MM_H_INCLUDED_
#define _NGX_GAME_MM_H_INCLUDED_


#include "ngx_game_core.h"
#include "game_util.h"        /* ids: game_uuid_generate, game_uuid_valid */
#include "game_mm_engine.h"


/* match.lua takes 11 arguments and two a ticket; EVAL adds three */
#define NGX_GAME_MM_MAX_PLAYERS  ((NGX_GAME_REDIS_MAX_ARGS - 3 - 11) / 2)


/* a game mode: its matching rules and the regions that serve it */
typedef struct {
    ngx_str_t                   name;
    game_mm_rules_t             rules;
    ngx_array_t                 regions;        /* ngx_str_t */
    ngx_uint_t                  max_queue;
    ngx_uint_t                  max_latency;    /* milliseconds */
    ngx_str_t                   server_mode;    /* the allocator's label */
} ngx_game_mm_mode_t;


typedef struct {
    ngx_array_t                 modes;          /* ngx_game_mm_mode_t */
    ngx_game_redis_pool_t      *redis;
    ngx_game_pg_pool_t         *pg;
    ngx_str_t                   prefix;
    ngx_http_complex_value_t   *player;
    double                      default_rating;
    ngx_msec_t                  ticket_ttl;
    ngx_msec_t                  tick;
    ngx_str_t                   alloc_prefix;
    ngx_game_jwt_keys_t        *keys;           /* signs tickets */
    time_t                      connect_ttl;
    ngx_msec_t                  match_ttl;
    ngx_uint_t                  join_limit;     /* tickets per window */
    ngx_msec_t                  join_window;
    ngx_thread_pool_t          *thread_pool;    /* the engine's, or NULL */
    ngx_msec_t                  lost_after;     /* server gone for this */
    ngx_game_bus_conf_t         results;        /* the consumer's tuning */

    /* metrics (ngx_game_mm_metrics.c) */
    ngx_game_metric_t          *m_matches;
    ngx_game_metric_t          *m_wait;
    ngx_game_metric_t          *m_failures;
    ngx_uint_t                  chat_max;       /* characters a line */
} ngx_game_mm_main_conf_t;


/* game_mm_allocation_failures_total's reasons */
#define NGX_GAME_MM_FAIL_NO_SERVER  0
#define NGX_GAME_MM_FAIL_FENCED     1
#define NGX_GAME_MM_FAIL_GONE       2
#define NGX_GAME_MM_FAIL_ERROR      3


char *ngx_game_mm_mode_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_game_mm_mode_t *ngx_game_mm_mode_find(ngx_game_mm_main_conf_t *mmcf,
    ngx_str_t *name);

ngx_int_t ngx_game_mm_matcher_start(ngx_cycle_t *cycle,
    ngx_game_mm_main_conf_t *mmcf);
ngx_int_t ngx_game_mm_results_init(ngx_conf_t *cf,
    ngx_game_mm_main_conf_t *mmcf);

ngx_int_t ngx_game_mm_metrics_init(ngx_conf_t *cf,
    ngx_game_mm_main_conf_t *mmcf);
void ngx_game_mm_metrics_failure(ngx_game_mm_main_conf_t *mmcf,
    ngx_uint_t reason);
void ngx_game_mm_metrics_matched(ngx_game_mm_main_conf_t *mmcf,
    ngx_game_mm_mode_t *mode, int64_t *enqueued, ngx_uint_t n);

ngx_int_t ngx_game_mm_join_handler(ngx_http_request_t *r);
ngx_int_t ngx_game_mm_status_handler(ngx_http_request_t *r);
ngx_int_t ngx_game_mm_cancel_handler(ngx_http_request_t *r);
ngx_int_t ngx_game_mm_party_handler(ngx_http_request_t *r);

/* shared by the API files */
/* NGX_OK, NGX_DECLINED (nobody signed in) or NGX_ERROR; sends nothing */
ngx_int_t ngx_game_mm_who(ngx_http_request_t *r, ngx_str_t *id);
ngx_int_t ngx_game_mm_refuse(ngx_http_request_t *r, ngx_int_t why);
ngx_int_t ngx_game_mm_script(ngx_http_request_t *r,
    ngx_game_redis_script_t *script, ngx_game_redis_handler_pt handler,
    void *data, int argc, const char **argv, const size_t *argvlen);
ngx_int_t ngx_game_mm_reply_is(redisReply *reply, const char *word);
ngx_uint_t ngx_game_mm_next_id(u_char **p, u_char *last, ngx_str_t *id);

/* players hear of it (ngx_game_mm_notify.c) */
json_t *ngx_game_mm_status_json(ngx_game_mm_main_conf_t *mmcf,
    ngx_pool_t *pool, ngx_str_t *player, redisReply *id, redisReply **kv,
    size_t n);
void ngx_game_mm_notify(ngx_game_mm_main_conf_t *mmcf, ngx_str_t *ids,
    ngx_uint_t n);
void ngx_game_mm_notify_reply(ngx_game_mm_main_conf_t *mmcf,
    redisReply *list);
void ngx_game_mm_resume(void *data, ngx_str_t *player);
void ngx_game_mm_party_event(ngx_game_mm_main_conf_t *mmcf, u_char *party,
    const char *event, ngx_str_t *player, ngx_str_t *leader,
    ngx_str_t *members);
ngx_int_t ngx_game_mm_party_chat(void *data, ngx_str_t *player, json_t *msg,
    const char **code, const char **message);


extern ngx_module_t             ngx_game_mm_module;

extern ngx_game_redis_script_t  ngx_game_mm_lua_join;
extern ngx_game_redis_script_t  ngx_game_mm_lua_cancel;
extern ngx_game_redis_script_t  ngx_game_mm_lua_status;
extern ngx_game_redis_script_t  ngx_game_mm_lua_lease;
extern ngx_game_redis_script_t  ngx_game_mm_lua_read;
extern ngx_game_redis_script_t  ngx_game_mm_lua_match;
extern ngx_game_redis_script_t  ngx_game_mm_lua_sweep;
extern ngx_game_redis_script_t  ngx_game_mm_lua_expire;
extern ngx_game_redis_script_t  ngx_game_mm_lua_party_create;
extern ngx_game_redis_script_t  ngx_game_mm_lua_party_join;
extern ngx_game_redis_script_t  ngx_game_mm_lua_party_get;
extern ngx_game_redis_script_t  ngx_game_mm_lua_finish;
extern ngx_game_redis_script_t  ngx_game_mm_lua_publish;
extern ngx_game_redis_script_t  ngx_game_mm_lua_metrics;
extern ngx_game_redis_script_t  ngx_game_mm_lua_party_leave;
extern ngx_game_redis_script_t  ngx_game_mm_lua_party_of;
extern ngx_game_redis_script_t  ngx_game_mm_lua_notify;


#endif /* _NGX_GAME_MM_H_INCLUDED_ */
