
/*
 * The economy module's own declarations, shared by its files.
 *
 * Every endpoint is one call of one SQL function (sql/005, sql/007), which
 * moves money and items in one transaction and answers the HTTP status and
 * body itself: nginx checks the request, asks, and sends the answer as it
 * came.  An idempotent replay is then byte for byte the first answer.
 */

#ifndef _NGX_GAME_ECON_H_INCLUDED_
#define _NGX_GAME_ECON_H_INCLUDED_


#include "ngx_game_core.h"
#include "game_util.h"          /* ids: game_uuid_valid */


/* a reward per match result: win, loss, draw */
typedef enum {
    NGX_GAME_ECON_WIN = 0,
    NGX_GAME_ECON_LOSS,
    NGX_GAME_ECON_DRAW,
    NGX_GAME_ECON_RESULTS
} ngx_game_econ_result_e;


typedef struct {
    ngx_game_pg_pool_t         *pg;
    ngx_game_redis_pool_t      *redis;
    ngx_http_complex_value_t   *player;

    ngx_uint_t                  start_soft;
    ngx_uint_t                  start_hard;
    ngx_msec_t                  catalog_ttl;
    time_t                      inventory_ttl;  /* 0: no cache */

    ngx_array_t                 admins;         /* ngx_game_admin_t */
    ngx_array_t                 webhook_secrets; /* ngx_str_t */
    time_t                      webhook_tolerance;

    ngx_uint_t                  reward_soft[NGX_GAME_ECON_RESULTS];
    ngx_uint_t                  reward_xp[NGX_GAME_ECON_RESULTS];
    ngx_str_t                   outcomes;       /* the stream */
    ngx_game_bus_conf_t         bus;            /* the rewards consumer */

    ngx_game_metric_t          *purchases;      /* ngx_game_econ_metrics.c */
} ngx_game_econ_main_conf_t;


/* a location's endpoint (game_econ NAME) */
typedef ngx_int_t (*ngx_game_econ_endpoint_pt)(ngx_http_request_t *r);


/* one SQL function's answer: {status, body, replayed} */
typedef struct {
    ngx_uint_t                  status;
    ngx_str_t                   body;
    unsigned                    replayed:1;
} ngx_game_econ_answer_t;


/* a write endpoint's request: whose inventory it may change, and why the
 * player's wallet moves when it does ("purchase", "grant"; NULL: it does
 * not), for the player's connected sockets */
typedef struct {
    ngx_str_t                   player;
    ngx_str_t                   key;
    unsigned                    replayed:1;     /* answered from its key */
    const char                 *wallet;
} ngx_game_econ_write_t;


/* an inventory document looked up in the cache (ngx_game_econ_cache.c) */
typedef struct ngx_game_econ_cached_s  ngx_game_econ_cached_t;

struct ngx_game_econ_cached_s {
    ngx_str_t                   player;
    ngx_str_t                   viewer;
    const char                 *view;       /* "own" or "pub" */
    ngx_str_t                   json;       /* a hit */
    ngx_str_t                   version;    /* a miss: store under it */
    void                      (*done)(ngx_http_request_t *r,
                                      ngx_game_econ_cached_t *c);
};


ngx_int_t ngx_game_econ_catalog(ngx_http_request_t *r);
ngx_int_t ngx_game_econ_purchase(ngx_http_request_t *r);
ngx_int_t ngx_game_econ_metrics_init(ngx_conf_t *cf);
ngx_int_t ngx_game_econ_inventory(ngx_http_request_t *r);
ngx_int_t ngx_game_econ_equip(ngx_http_request_t *r);
ngx_int_t ngx_game_econ_unequip(ngx_http_request_t *r);
ngx_int_t ngx_game_econ_wallet(ngx_http_request_t *r);
ngx_int_t ngx_game_econ_transactions(ngx_http_request_t *r);
ngx_int_t ngx_game_econ_achievements(ngx_http_request_t *r);
ngx_int_t ngx_game_econ_webhook(ngx_http_request_t *r);
ngx_int_t ngx_game_econ_admin_grant(ngx_http_request_t *r);
ngx_int_t ngx_game_econ_admin_catalog(ngx_http_request_t *r);

ngx_int_t ngx_game_econ_rewards_init(ngx_conf_t *cf,
    ngx_game_econ_main_conf_t *emcf);

void ngx_game_econ_cache_init(void);
ngx_int_t ngx_game_econ_cache_get(ngx_http_request_t *r,
    ngx_game_econ_cached_t *c);
void ngx_game_econ_cache_put(ngx_http_request_t *r, ngx_game_econ_cached_t *c,
    ngx_str_t *json);
ngx_int_t ngx_game_econ_cache_bump(ngx_http_request_t *r, ngx_str_t *player,
    ngx_game_econ_answer_t *answer);

/* why ngx_game_econ_idempotency_key() refused */
#define NGX_GAME_ECON_NO_KEY    -20
#define NGX_GAME_ECON_BAD_KEY   -21


/* shared by the endpoint files (ngx_game_econ_http.c) */
ngx_int_t ngx_game_econ_who(ngx_http_request_t *r, ngx_str_t *player);
ngx_int_t ngx_game_econ_refuse(ngx_http_request_t *r, ngx_int_t why);
ngx_int_t ngx_game_econ_path_id(ngx_http_request_t *r, ngx_uint_t segment,
    ngx_str_t *id);
ngx_int_t ngx_game_econ_idempotency_key(ngx_http_request_t *r,
    ngx_str_t *key);
ngx_str_t *ngx_game_econ_header(ngx_http_request_t *r, const char *name);
ngx_int_t ngx_game_econ_query(ngx_http_request_t *r, ngx_game_pg_stmt_t *stmt,
    const char **values, ngx_game_pg_handler_pt handler);
void ngx_game_econ_answered(ngx_game_pg_query_t *q, ngx_int_t rc,
    PGresult *res);
void ngx_game_econ_written(ngx_game_pg_query_t *q, ngx_int_t rc,
    PGresult *res);
ngx_int_t ngx_game_econ_send(ngx_http_request_t *r,
    ngx_game_econ_answer_t *a);
u_char *ngx_game_econ_number(ngx_pool_t *pool, ngx_int_t n);

/* ngx_game_econ_push.c */
void ngx_game_econ_push_wallet(ngx_http_request_t *r, ngx_str_t *player,
    const char *reason, ngx_str_t *answer);
ngx_int_t ngx_game_econ_push_balance(ngx_http_request_t *r,
    const char *player, const char *reason, const char *payment,
    ngx_http_handler_pt next);


extern ngx_module_t  ngx_game_econ_module;


#endif /* _NGX_GAME_ECON_H_INCLUDED_ */
