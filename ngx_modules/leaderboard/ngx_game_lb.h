
/*
 * The leaderboard module's own declarations, shared by its files.
 *
 * PostgreSQL is the source of truth (sql/007_leaderboards.sql): every
 * score lands there first, in one transaction per match.  Redis holds
 * each live season of each board as a sorted set of members that spell
 * their entries (game_lb_util.h), and a hash from player to member, both
 * rebuilt from PostgreSQL when Redis loses them.  Hot first pages are kept
 * for a moment in shared memory (ngx_game_lb_cache.c).
 *
 * Redis keys (prefix "lb:"):
 *   z:<board>:<season>:<region>   the sorted set ("*": the global board)
 *   h:<board>:<season>:<region>   player -> "<version> <member>", or
 *                                 "<version> -" once removed
 *   meta:<board>:<season>         state=building|ready, fence of the
 *                                 rebuilder; missing: see "alive"
 *   alive                         set once a rebuild after a loss began;
 *                                 gone with everything else on FLUSHALL
 *   lease, fence                  the maintenance lease
 */

#ifndef _NGX_GAME_LB_H_INCLUDED_
#define _NGX_GAME_LB_H_INCLUDED_


#include "ngx_game_core.h"
#include "game_lb_util.h"


typedef enum {
    NGX_GAME_LB_SET = 0,
    NGX_GAME_LB_INCR,
    NGX_GAME_LB_BEST
} ngx_game_lb_op_e;

typedef enum {
    NGX_GAME_LB_NEVER = 0,
    NGX_GAME_LB_DAILY,
    NGX_GAME_LB_WEEKLY,
    NGX_GAME_LB_MONTHLY
} ngx_game_lb_reset_e;


#define NGX_GAME_LB_SEASON_MAX  32


/* a board as game_leaderboard declared it */
typedef struct {
    ngx_str_t                   name;
    ngx_uint_t                  desc;
    ngx_uint_t                  op;             /* ngx_game_lb_op_e */
    ngx_uint_t                  source;         /* game_lb_source_e */
    ngx_str_t                   mode;           /* empty: every mode */
    ngx_uint_t                  reset;          /* ngx_game_lb_reset_e */
    ngx_uint_t                  regions;
    ngx_str_t                   json;           /* its definition, for SQL */
} ngx_game_lb_board_t;


/* what a worker knows of a board: its live season (from each tick) */
typedef struct {
    u_char                      season[NGX_GAME_LB_SEASON_MAX];
    size_t                      season_len;
} ngx_game_lb_live_t;


typedef struct {
    ngx_game_pg_pool_t         *pg;
    ngx_game_pg_pool_t         *pg_maintenance;
    ngx_game_redis_pool_t      *redis;
    ngx_http_complex_value_t   *player;

    ngx_array_t                 boards;         /* ngx_game_lb_board_t */
    ngx_str_t                   boards_json;    /* all of them, for SQL */
    ngx_array_t                 admins;         /* ngx_game_admin_t */

    ngx_str_t                   outcomes;
    ngx_flag_t                  exclude_flagged; /* under review: nothing */
    ngx_game_bus_conf_t         bus;
    ngx_msec_t                  tick;
    ngx_uint_t                  rebuild_batch;
    ngx_uint_t                  test_clock;

    ngx_shm_zone_t             *cache_zone;
    ngx_msec_t                  cache_ttl;
} ngx_game_lb_main_conf_t;


/* one Redis write of an entry: to its sorted set and hash */
typedef struct {
    ngx_game_lb_board_t        *board;
    ngx_str_t                   season;
    ngx_str_t                   region;         /* "*": global */
    ngx_str_t                   player;
    int64_t                     score;
    int64_t                     subscore;
    uint64_t                    reached_ms;
    uint64_t                    version;
    unsigned                    removed:1;
} ngx_game_lb_write_t;


typedef ngx_int_t (*ngx_game_lb_endpoint_pt)(ngx_http_request_t *r);


/* ngx_game_lb_module.c */
ngx_game_lb_board_t *ngx_game_lb_board(ngx_game_lb_main_conf_t *lmcf,
    ngx_str_t *name);
ngx_game_lb_live_t *ngx_game_lb_live(ngx_game_lb_main_conf_t *lmcf,
    ngx_game_lb_board_t *board);

/* ngx_game_lb_redis.c: keys, scripts, writes */
extern ngx_game_redis_script_t  ngx_game_lb_put_lua;
extern ngx_game_redis_script_t  ngx_game_lb_page_lua;
extern ngx_game_redis_script_t  ngx_game_lb_ranks_lua;
extern ngx_game_redis_script_t  ngx_game_lb_lease_lua;
extern ngx_game_redis_script_t  ngx_game_lb_begin_lua;
extern ngx_game_redis_script_t  ngx_game_lb_end_lua;
extern ngx_game_redis_script_t  ngx_game_lb_drop_lua;

void ngx_game_lb_scripts_init(void);
u_char *ngx_game_lb_key(u_char *p, const char *kind, ngx_str_t *board,
    ngx_str_t *season, ngx_str_t *region);
#define NGX_GAME_LB_KEY_LEN  (16 + GAME_LB_NAME_MAX + NGX_GAME_LB_SEASON_MAX \
                              + 64)
ngx_int_t ngx_game_lb_records(ngx_pool_t *pool, ngx_game_lb_write_t *w,
    ngx_uint_t n, ngx_str_t *out);
ngx_int_t ngx_game_lb_write_json(ngx_game_lb_main_conf_t *lmcf, json_t *j,
    ngx_game_lb_write_t *w);
ngx_int_t ngx_game_lb_put(ngx_game_lb_main_conf_t *lmcf, ngx_pool_t *pool,
    ngx_log_t *log, ngx_str_t *records, ngx_game_redis_handler_pt handler,
    void *data);

/* ngx_game_lb_apply.c */
ngx_int_t ngx_game_lb_apply_init(ngx_conf_t *cf,
    ngx_game_lb_main_conf_t *lmcf);

/* ngx_game_lb_maint.c */
ngx_int_t ngx_game_lb_maint_start(ngx_cycle_t *cycle,
    ngx_game_lb_main_conf_t *lmcf);

/* ngx_game_lb_http.c */
ngx_int_t ngx_game_lb_page(ngx_http_request_t *r);
ngx_int_t ngx_game_lb_around(ngx_http_request_t *r);
ngx_int_t ngx_game_lb_stats(ngx_http_request_t *r);
ngx_int_t ngx_game_lb_path_segment(ngx_http_request_t *r, ngx_uint_t n,
    ngx_str_t *seg);
u_char *ngx_game_lb_number(ngx_pool_t *pool, int64_t n);
ngx_str_t *ngx_game_lb_text(ngx_pool_t *pool, const char *s, size_t len);

/* ngx_game_lb_admin.c */
ngx_int_t ngx_game_lb_admin_remove(ngx_http_request_t *r);
ngx_int_t ngx_game_lb_admin_recompute(ngx_http_request_t *r);

/* ngx_game_lb_cache.c: first pages in shared memory */
char *ngx_game_lb_cache_conf(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_game_lb_cache_get(ngx_http_request_t *r, ngx_str_t *key,
    ngx_str_t *body);
void ngx_game_lb_cache_put(ngx_http_request_t *r, ngx_str_t *key,
    ngx_str_t *body);


extern ngx_module_t  ngx_game_lb_module;


#endif /* _NGX_GAME_LB_H_INCLUDED_ */
