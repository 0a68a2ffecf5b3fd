
/*
 * ngx_game_mm_module: matchmaking queues.
 *
 *   http {
 *       game_mm_redis   main;
 *       game_mm_pg      main;
 *       game_mm_player  $game_player_id;
 *       game_mm_mode    duel teams=2 team_size=1 regions=local;
 *
 *       server {
 *           location = /matchmaking/join   { game_auth_jwt on; game_mm_join; }
 *           location = /matchmaking/status { game_auth_jwt on; game_mm_status; }
 *           location = /matchmaking/ticket { game_auth_jwt on; game_mm_cancel; }
 *       }
 *   }
 *
 * The player is whoever the complex value of game_mm_player names: the
 * auth module's guard sets $game_player_id, and this module never sees a
 * token.  The join path is stateless and O(1) in Redis, so any nginx
 * behind a load balancer can take it.  The Redis scripts are in lua/.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_game_mm.h"


static void *ngx_game_mm_create_main_conf(ngx_conf_t *cf);
static char *ngx_game_mm_init_main_conf(ngx_conf_t *cf, void *conf);
static char *ngx_game_mm_handler(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_game_mm_join_limit(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_game_mm_thread_pool(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_game_mm_results(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_game_mm_init_process(ngx_cycle_t *cycle);


static ngx_command_t  ngx_game_mm_commands[] = {

    /* the Redis pool that holds queues, tickets and leases */
    { ngx_string("game_mm_redis"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_game_conf_set_redis_pool_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_game_mm_main_conf_t, redis),
      NULL },

    /* the PostgreSQL pool that holds ratings */
    { ngx_string("game_mm_pg"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_game_conf_set_pg_pool_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_game_mm_main_conf_t, pg),
      NULL },

    /* the prefix of every matchmaking key in Redis */
    { ngx_string("game_mm_prefix"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_game_mm_main_conf_t, prefix),
      NULL },

    /* who is asking: normally $game_player_id, set by game_auth_jwt */
    { ngx_string("game_mm_player"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_game_mm_main_conf_t, player),
      NULL },

    /* how long a ticket and its player's claim on it live in Redis */
    { ngx_string("game_mm_ticket_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_game_mm_main_conf_t, ticket_ttl),
      NULL },

    /* how often the matcher runs a pass over each queue it leads */
    { ngx_string("game_mm_tick"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_game_mm_main_conf_t, tick),
      NULL },

    /* the key prefix of the game server allocator (gameserver/ALLOCATOR.md) */
    { ngx_string("game_mm_allocator_prefix"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_game_mm_main_conf_t, alloc_prefix),
      NULL },

    /* retired: connection tickets are signed by the core's key set
     * (game_jwt_key), whose public halves the game servers hold */
    { ngx_string("game_mm_ticket_key"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_ANY,
      ngx_game_jwt_key_replaced,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    /* the longest party chat line, in characters */
    { ngx_string("game_mm_party_chat_max"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_game_mm_main_conf_t, chat_max),
      NULL },

    /* how long a connection ticket may be used to join its server */
    { ngx_string("game_mm_connect_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_game_mm_main_conf_t, connect_ttl),
      NULL },

    /* how long a match's record, and its tickets while it is played,
     * live in Redis: longer than any match lasts */
    { ngx_string("game_mm_match_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_game_mm_main_conf_t, match_ttl),
      NULL },

    /* game_mm_join_limit number time: tickets a player may open per
     * window; more answer 429 with Retry-After */
    { ngx_string("game_mm_join_limit"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_game_mm_join_limit,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    /* the nginx thread_pool the matching engine runs in, off the event
     * loop; without it the engine runs on the loop */
    { ngx_string("game_mm_thread_pool"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_game_mm_thread_pool,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    /* a match whose server has been without a heartbeat this long is
     * lost: its players are released */
    { ngx_string("game_mm_server_lost_after"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_game_mm_main_conf_t, lost_after),
      NULL },

    /* the results consumer on the event bus: game_mm_results [batch=50]
     * [claim_idle=60s] [max_deliveries=5] [consumer_idle=1h] */
    { ngx_string("game_mm_results"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_game_mm_results,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    /* game_mm_mode name teams=N team_size=N regions=a,b [window=100]
     *     [widen=50] [widen_every=5s] [window_cap=600] [max_wait=120s]
     *     [max_queue=100000] [max_latency=150] [server_mode=name] */
    { ngx_string("game_mm_mode"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_2MORE,
      ngx_game_mm_mode_directive,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    /* POST: queue the player */
    { ngx_string("game_mm_join"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_game_mm_handler,
      0,
      0,
      ngx_game_mm_join_handler },

    /* GET: the player's latest ticket */
    { ngx_string("game_mm_status"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_game_mm_handler,
      0,
      0,
      ngx_game_mm_status_handler },

    /* DELETE: withdraw a queued ticket */
    { ngx_string("game_mm_cancel"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_game_mm_handler,
      0,
      0,
      ngx_game_mm_cancel_handler },

    /* POST /party, POST /party/{id}/join, GET /party/{id} */
    { ngx_string("game_mm_party"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_game_mm_handler,
      0,
      0,
      ngx_game_mm_party_handler },

      ngx_null_command
};


static ngx_http_module_t  ngx_game_mm_module_ctx = {
    NULL,                                  /* preconfiguration */
    NULL,                                  /* postconfiguration */

    ngx_game_mm_create_main_conf,          /* create main configuration */
    ngx_game_mm_init_main_conf,            /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    NULL,                                  /* create location configuration */
    NULL                                   /* merge location configuration */
};


ngx_module_t  ngx_game_mm_module = {
    NGX_MODULE_V1,
    &ngx_game_mm_module_ctx,               /* module context */
    ngx_game_mm_commands,                  /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_game_mm_init_process,              /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


/* set when a location serves the API, so that a missing pool or player
 * is a configuration error and not a 500 at run time */
static ngx_uint_t  ngx_game_mm_used;


static void *
ngx_game_mm_create_main_conf(ngx_conf_t *cf)
{
    ngx_game_mm_main_conf_t  *mmcf;

    mmcf = ngx_pcalloc(cf->pool, sizeof(ngx_game_mm_main_conf_t));
    if (mmcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&mmcf->modes, cf->pool, 4, sizeof(ngx_game_mm_mode_t))
        != NGX_OK)
    {
        return NULL;
    }

    mmcf->redis = NGX_CONF_UNSET_PTR;
    mmcf->pg = NGX_CONF_UNSET_PTR;
    mmcf->ticket_ttl = NGX_CONF_UNSET_MSEC;
    mmcf->tick = NGX_CONF_UNSET_MSEC;
    mmcf->connect_ttl = NGX_CONF_UNSET;
    mmcf->match_ttl = NGX_CONF_UNSET_MSEC;
    mmcf->join_limit = NGX_CONF_UNSET_UINT;
    mmcf->join_window = NGX_CONF_UNSET_MSEC;
    mmcf->lost_after = NGX_CONF_UNSET_MSEC;
    mmcf->chat_max = NGX_CONF_UNSET_UINT;
    mmcf->default_rating = 1500.0;

    ngx_game_mm_used = 0;

    return mmcf;
}


static char *
ngx_game_mm_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_game_mm_main_conf_t  *mmcf = conf;

    ngx_conf_init_ptr_value(mmcf->redis, NULL);
    ngx_conf_init_ptr_value(mmcf->pg, NULL);
    ngx_conf_init_msec_value(mmcf->ticket_ttl, 600000);
    ngx_conf_init_msec_value(mmcf->tick, 1000);
    ngx_conf_init_value(mmcf->connect_ttl, 60);
    ngx_conf_init_msec_value(mmcf->match_ttl, 2 * 3600 * 1000);
    ngx_conf_init_uint_value(mmcf->join_limit, 30);
    ngx_conf_init_msec_value(mmcf->join_window, 60000);
    ngx_conf_init_msec_value(mmcf->lost_after, 10000);
    ngx_conf_init_uint_value(mmcf->chat_max, 500);

    if (mmcf->prefix.data == NULL) {
        ngx_str_set(&mmcf->prefix, "mm:");
    }

    if (mmcf->alloc_prefix.data == NULL) {
        ngx_str_set(&mmcf->alloc_prefix, "game:");
    }

    if (mmcf->tick < 50 || mmcf->tick > 60000) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"game_mm_tick\" must be between 50ms and 60s");
        return NGX_CONF_ERROR;
    }

    if (!ngx_game_mm_used) {
        return NGX_CONF_OK;
    }

    if (mmcf->redis == NULL || mmcf->pg == NULL || mmcf->player == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "matchmaking locations need \"game_mm_redis\", "
                      "\"game_mm_pg\" and \"game_mm_player\"");
        return NGX_CONF_ERROR;
    }

    if (mmcf->modes.nelts == 0) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "matchmaking locations need at least one "
                      "\"game_mm_mode\"");
        return NGX_CONF_ERROR;
    }

    if (mmcf->ticket_ttl < 60000) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"game_mm_ticket_ttl\" must be at least 1m");
        return NGX_CONF_ERROR;
    }

    if (mmcf->match_ttl < mmcf->ticket_ttl) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"game_mm_match_ttl\" must be at least "
                      "\"game_mm_ticket_ttl\"");
        return NGX_CONF_ERROR;
    }

    /* connection tickets are signed with the core's key set */
    mmcf->keys = ngx_game_jwt_keys(cf);
    if (mmcf->keys == NULL) {
        return NGX_CONF_ERROR;
    }

    /* the game servers' results, through the core's event bus */
    if (ngx_game_mm_results_init(cf, mmcf) != NGX_OK
        || ngx_game_mm_metrics_init(cf, mmcf) != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (mmcf->chat_max < 1 || mmcf->chat_max > 4000) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"game_mm_party_chat_max\" must be 1 to 4000 "
                      "characters, not %ui", mmcf->chat_max);
        return NGX_CONF_ERROR;
    }

    /* players' sockets (the realtime module, if any) hear of their
     * tickets when they connect, and party chat is ours to answer */
    if (ngx_game_push_on_resume(cf, ngx_game_mm_resume, mmcf) != NGX_OK
        || ngx_game_push_on_message(cf, "party.chat", ngx_game_mm_party_chat,
                                    mmcf)
           != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_game_mm_handler(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = (ngx_http_handler_pt) cmd->post;
    ngx_game_mm_used = 1;

    return NGX_CONF_OK;
}


/* game_mm_join_limit 30 1m; */
static char *
ngx_game_mm_join_limit(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_game_mm_main_conf_t  *mmcf = conf;

    ngx_int_t   n;
    ngx_str_t  *value;

    if (mmcf->join_limit != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    n = ngx_atoi(value[1].data, value[1].len);
    if (n < 1 || n > 1000000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid number \"%V\" in \"%V\" directive, "
                           "expected 1 to 1000000", &value[1], &cmd->name);
        return NGX_CONF_ERROR;
    }

    mmcf->join_limit = n;
    mmcf->join_window = ngx_parse_time(&value[2], 0);

    if (mmcf->join_window == (ngx_msec_t) NGX_ERROR
        || mmcf->join_window < 1000)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid time \"%V\" in \"%V\" directive, "
                           "expected 1s or more", &value[2], &cmd->name);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_game_mm_results(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_game_mm_main_conf_t  *mmcf = conf;

    if (mmcf->results.batch) {
        return "is duplicate";
    }

    if (ngx_game_bus_conf_params(cf, cmd, 1, &mmcf->results)
        != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    /* zeros take the bus's defaults; mark the directive as seen */
    if (mmcf->results.batch == 0) {
        mmcf->results.batch = 50;
    }

    return NGX_CONF_OK;
}


static char *
ngx_game_mm_thread_pool(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
#if (NGX_THREADS)
    ngx_game_mm_main_conf_t  *mmcf = conf;

    ngx_str_t  *value;

    if (mmcf->thread_pool) {
        return "is duplicate";
    }

    value = cf->args->elts;

    mmcf->thread_pool = ngx_thread_pool_add(cf, &value[1]);

    return mmcf->thread_pool ? NGX_CONF_OK : NGX_CONF_ERROR;
#else
    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "\"%V\" needs nginx built with threads", &cmd->name);
    return NGX_CONF_ERROR;
#endif
}


static ngx_int_t
ngx_game_mm_init_process(ngx_cycle_t *cycle)
{
    ngx_game_mm_main_conf_t  *mmcf;
    ngx_game_redis_script_init(&ngx_game_mm_lua_join);
    ngx_game_redis_script_init(&ngx_game_mm_lua_cancel);
    ngx_game_redis_script_init(&ngx_game_mm_lua_status);
    ngx_game_redis_script_init(&ngx_game_mm_lua_lease);
    ngx_game_redis_script_init(&ngx_game_mm_lua_read);
    ngx_game_redis_script_init(&ngx_game_mm_lua_match);
    ngx_game_redis_script_init(&ngx_game_mm_lua_sweep);
    ngx_game_redis_script_init(&ngx_game_mm_lua_expire);
    ngx_game_redis_script_init(&ngx_game_mm_lua_party_create);
    ngx_game_redis_script_init(&ngx_game_mm_lua_party_join);
    ngx_game_redis_script_init(&ngx_game_mm_lua_party_get);
    ngx_game_redis_script_init(&ngx_game_mm_lua_finish);
    ngx_game_redis_script_init(&ngx_game_mm_lua_publish);
    ngx_game_redis_script_init(&ngx_game_mm_lua_metrics);
    ngx_game_redis_script_init(&ngx_game_mm_lua_party_leave);
    ngx_game_redis_script_init(&ngx_game_mm_lua_party_of);
    ngx_game_redis_script_init(&ngx_game_mm_lua_notify);

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    mmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_game_mm_module);
    if (mmcf == NULL) {
        return NGX_OK;
    }

    return ngx_game_mm_matcher_start(cycle, mmcf);
}
