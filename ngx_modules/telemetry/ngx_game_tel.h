
/*
 * The telemetry module's own declarations, shared by its files.
 *
 *   ingest   POST /game/telemetry: a player's batch, checked event by
 *            event, queued on a Redis stream in one script with the
 *            player's rate limit and the backlog's limit
 *   writer   the streams into game_events, one statement per read, on the
 *            core's event bus; the anti-cheat rules over what servers say
 *   maint    partitions ahead, expiry, the dedupe window: one nginx at a
 *            time, under a fenced lease
 *   admin    the flagged players, their review, the counters
 */

#ifndef _NGX_GAME_TEL_H_INCLUDED_
#define _NGX_GAME_TEL_H_INCLUDED_


#include "ngx_game_core.h"
#include "game_util.h"
#include "game_tel_schema.h"
#include "game_tel_rules.h"


typedef struct ngx_game_tel_writer_s  ngx_game_tel_writer_t;


typedef struct {
    ngx_game_pg_pool_t         *pg;             /* admin endpoints */
    ngx_game_pg_pool_t         *writer_pg;      /* the writer and the job */
    ngx_game_pg_pool_t         *copy_pg;        /* the writer's COPY, or NULL */
    ngx_game_redis_pool_t      *redis;
    ngx_http_complex_value_t   *player;

    ngx_str_t                   prefix;         /* of every Redis key */
    ngx_str_t                   stream;         /* <prefix>events */
    ngx_str_t                   server_stream;  /* <prefix>server */
    ngx_str_t                   stats;          /* <prefix>stats */

    /* ingest */
    game_tel_types_t           *types;
    ngx_str_t                   types_file;
    ngx_uint_t                  max_events;
    size_t                      max_bytes;
    ngx_msec_t                  accept_age;
    ngx_msec_t                  accept_skew;
    ngx_uint_t                  rate;           /* events/s; 0: no limit */
    ngx_uint_t                  burst;
    ngx_uint_t                  max_backlog;    /* stream entries */

    /* writer */
    ngx_game_bus_conf_t         bus;
    ngx_game_tel_writer_t      *writers[2];

    /* anti-cheat */
    ngx_array_t                 modes;          /* game_tel_mode_t */
    ngx_array_t                 weapons;        /* game_tel_weapon_t */
    game_tel_rules_t            rules;
    ngx_uint_t                  threshold;

    /* maintenance */
    ngx_str_t                   period;         /* "day" | "month" */
    ngx_uint_t                  ahead;
    time_t                      retention;
    ngx_str_t                   expire_action;  /* "drop" | "detach" */
    time_t                      dedupe_window;
    ngx_msec_t                  maintenance;

    ngx_array_t                 admins;         /* ngx_game_admin_t */

    unsigned                    used:1;
    unsigned                    used_player:1;
    unsigned                    used_admin:1;
} ngx_game_tel_main_conf_t;


ngx_int_t ngx_game_tel_metrics_init(ngx_conf_t *cf,
    ngx_game_tel_main_conf_t *tmcf);


typedef ngx_int_t (*ngx_game_tel_endpoint_pt)(ngx_http_request_t *r);


ngx_int_t ngx_game_tel_ingest(ngx_http_request_t *r);
ngx_int_t ngx_game_tel_admin_flagged(ngx_http_request_t *r);
ngx_int_t ngx_game_tel_admin_review(ngx_http_request_t *r);
ngx_int_t ngx_game_tel_admin_stats(ngx_http_request_t *r);

void ngx_game_tel_ingest_init(void);

ngx_int_t ngx_game_tel_writer_init(ngx_conf_t *cf,
    ngx_game_tel_main_conf_t *tmcf);

ngx_int_t ngx_game_tel_maint_start(ngx_cycle_t *cycle,
    ngx_game_tel_main_conf_t *tmcf);

/* a number as NUL-terminated text in "pool" */
u_char *ngx_game_tel_number(ngx_pool_t *pool, int64_t n);

/* the time now, in milliseconds since the epoch (the cached clock) */
int64_t ngx_game_tel_now_ms(void);


extern ngx_module_t  ngx_game_tel_module;


#endif /* _NGX_GAME_TEL_H_INCLUDED_ */
