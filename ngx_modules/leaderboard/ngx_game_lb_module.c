
/*
 * ngx_game_lb_module: leaderboards, seasons and player stats.
 *
 *   http {
 *       game_lb_pg        main;
 *       game_lb_redis     main;
 *       game_lb_player    $game_player_id;
 *       game_lb_admin     ops /run/secrets/lb-admin;
 *
 *       game_leaderboard  rating_duel sort=desc operator=set
 *                         source=rating:duel reset=never;
 *       game_leaderboard  kills sort=desc operator=incr source=kills
 *                         reset=weekly regions=on;
 *
 *       server {
 *           location ~ ^/leaderboards/[^/]+$ { game_lb page; }
 *           ...
 *       }
 *   }
 *
 * conf/leaderboard.locations has every endpoint's location.  Scores come
 * from the matchmaker's outcomes only (ngx_game_lb_apply.c) and the admin
 * API; no endpoint takes a score from a player.  Seasons, the archive and
 * rebuilds of Redis run on a timer under a lease (ngx_game_lb_maint.c).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_game_lb.h"
#include "ngx_game_conf.h"


static void *ngx_game_lb_create_main_conf(ngx_conf_t *cf);
static char *ngx_game_lb_init_main_conf(ngx_conf_t *cf, void *conf);
static char *ngx_game_lb_pool(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
static char *ngx_game_lb_board_conf(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_game_lb_board_param(ngx_game_lb_board_t *b,
    ngx_str_t *v, ngx_uint_t *seen);
static char *ngx_game_lb_admin(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_game_lb_consumer(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_game_lb_endpoint(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_game_lb_boards_json(ngx_conf_t *cf,
    ngx_game_lb_main_conf_t *lmcf);
static char *ngx_game_lb_stock(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_game_lb_init_process(ngx_cycle_t *cycle);


static ngx_conf_enum_t  ngx_game_lb_clocks[] = {
    { ngx_string("real"), 0 },
    { ngx_string("test"), 1 },
    { ngx_null_string, 0 }
};


static ngx_command_t  ngx_game_lb_commands[] = {

    /* the PostgreSQL pool of scores, seasons and stats */
    { ngx_string("game_lb_pg"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_game_lb_pool,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_game_lb_main_conf_t, pg),
      NULL },

    /* a pool for the long statements (archiving a season, recomputing a
     * board, reading a rebuild), so that they never wait in front of a
     * request or meet its query_timeout; game_lb_pg by default */
    { ngx_string("game_lb_maintenance_pg"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_game_lb_pool,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_game_lb_main_conf_t, pg_maintenance),
      NULL },

    /* the Redis pool of the boards and of the event bus */
    { ngx_string("game_lb_redis"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_game_lb_pool,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_game_lb_main_conf_t, redis),
      NULL },

    /* who is asking, for .../around/me: normally $game_player_id */
    { ngx_string("game_lb_player"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_game_lb_main_conf_t, player),
      NULL },

    /* game_leaderboard NAME sort=desc|asc operator=best|set|incr
     *                  source=KIND[:MODE] [reset=never|daily|weekly|monthly]
     *                  [regions=on|off] */
    { ngx_string("game_leaderboard"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_2MORE,
      ngx_game_lb_board_conf,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    /* game_lb_admin name file: an admin and the file of its secret (at
     * least 32 characters); repeatable */
    { ngx_string("game_lb_admin"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_game_lb_admin,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    /* the matchmaker's outcome stream */
    { ngx_string("game_lb_outcomes"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_game_lb_main_conf_t, outcomes),
      NULL },

    /* players the anti-cheat flagged for review (the outcome's
     * "under_review") score nothing from the match, as the server's own
     * flagged */
    { ngx_string("game_lb_exclude_flagged"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_game_lb_main_conf_t, exclude_flagged),
      NULL },

    /* the outcome consumer's tuning: [batch=50] [claim_idle=60s]
     * [max_deliveries=10] [consumer_idle=1h] */
    { ngx_string("game_lb_consumer"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_game_lb_consumer,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    /* how often a worker learns the live seasons, and the lease holder
     * archives, drops removed entries and rebuilds */
    { ngx_string("game_lb_tick"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_game_lb_stock,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_game_lb_main_conf_t, tick),
      NULL },

    /* entries per step of a rebuild: one PostgreSQL read and one Redis
     * script each, so that no step holds the event loop or Redis long */
    { ngx_string("game_lb_rebuild_batch"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_game_lb_stock,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_game_lb_main_conf_t, rebuild_batch),
      NULL },

    /* real: seasons follow PostgreSQL's now(); test: a clock the tests
     * set in the table leaderboard_clock (never in production) */
    { ngx_string("game_lb_clock"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_game_lb_stock,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_game_lb_main_conf_t, test_clock),
      &ngx_game_lb_clocks },

    /* game_lb_cache off | SIZE: a shared-memory zone for first pages */
    { ngx_string("game_lb_cache"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_game_lb_cache_conf,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    /* how long a first page stays in the cache */
    { ngx_string("game_lb_cache_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_game_lb_stock,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_game_lb_main_conf_t, cache_ttl),
      NULL },

    /* game_lb page|around|around_me|stats|admin_remove|admin_recompute; */
    { ngx_string("game_lb"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_game_lb_endpoint,
      0,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_game_lb_module_ctx = {
    NULL,                                  /* preconfiguration */
    NULL,                                  /* postconfiguration */

    ngx_game_lb_create_main_conf,          /* create main configuration */
    ngx_game_lb_init_main_conf,            /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    NULL,                                  /* create location configuration */
    NULL                                   /* merge location configuration */
};


ngx_module_t  ngx_game_lb_module = {
    NGX_MODULE_V1,
    &ngx_game_lb_module_ctx,               /* module context */
    ngx_game_lb_commands,                  /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_game_lb_init_process,              /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


typedef struct {
    ngx_str_t                   name;
    ngx_game_lb_endpoint_pt     handler;
    unsigned                    player:1;   /* needs game_lb_player */
    unsigned                    admin:1;    /* needs game_lb_admin */
} ngx_game_lb_endpoint_t;


static ngx_game_lb_endpoint_t  ngx_game_lb_endpoints[] = {
    { ngx_string("page"), ngx_game_lb_page, 0, 0 },
    { ngx_string("around"), ngx_game_lb_around, 0, 0 },
    { ngx_string("around_me"), ngx_game_lb_around, 1, 0 },
    { ngx_string("stats"), ngx_game_lb_stats, 0, 0 },
    { ngx_string("admin_remove"), ngx_game_lb_admin_remove, 0, 1 },
    { ngx_string("admin_recompute"), ngx_game_lb_admin_recompute, 0, 1 },
    { ngx_null_string, NULL, 0, 0 }
};


/* what the locations need, checked once the http block is read */
static ngx_uint_t  ngx_game_lb_used;
static ngx_uint_t  ngx_game_lb_used_player;
static ngx_uint_t  ngx_game_lb_used_admin;

/* per worker: the live season of each board, by the boards' order */
static ngx_game_lb_live_t  *ngx_game_lb_lives;


static void *
ngx_game_lb_create_main_conf(ngx_conf_t *cf)
{
    ngx_game_lb_main_conf_t  *lmcf;

    lmcf = ngx_pcalloc(cf->pool, sizeof(ngx_game_lb_main_conf_t));
    if (lmcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&lmcf->boards, cf->pool, 4,
                       sizeof(ngx_game_lb_board_t))
        != NGX_OK)
    {
        return NULL;
    }

    lmcf->pg = NGX_CONF_UNSET_PTR;
    lmcf->pg_maintenance = NGX_CONF_UNSET_PTR;
    lmcf->redis = NGX_CONF_UNSET_PTR;
    lmcf->tick = NGX_CONF_UNSET_MSEC;
    lmcf->rebuild_batch = NGX_CONF_UNSET_UINT;
    lmcf->test_clock = NGX_CONF_UNSET_UINT;
    lmcf->cache_ttl = NGX_CONF_UNSET_MSEC;
    lmcf->exclude_flagged = NGX_CONF_UNSET;

    ngx_game_lb_used = 0;
    ngx_game_lb_used_player = 0;
    ngx_game_lb_used_admin = 0;

    return lmcf;
}


static char *
ngx_game_lb_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_game_lb_main_conf_t  *lmcf = conf;

    ngx_conf_init_ptr_value(lmcf->pg, NULL);
    ngx_conf_init_ptr_value(lmcf->pg_maintenance, lmcf->pg);
    ngx_conf_init_ptr_value(lmcf->redis, NULL);
    ngx_conf_init_msec_value(lmcf->tick, 1000);
    ngx_conf_init_uint_value(lmcf->rebuild_batch, 1000);
    ngx_conf_init_uint_value(lmcf->test_clock, 0);
    ngx_conf_init_msec_value(lmcf->cache_ttl, 1000);
    ngx_conf_init_value(lmcf->exclude_flagged, 0);

    if (lmcf->outcomes.data == NULL) {
        ngx_str_set(&lmcf->outcomes, "mm:outcomes");
    }

    if (lmcf->rebuild_batch == 0 || lmcf->rebuild_batch > 100000) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"game_lb_rebuild_batch\" must be 1 to 100000");
        return NGX_CONF_ERROR;
    }

    if (!ngx_game_lb_used && lmcf->boards.nelts == 0) {
        return NGX_CONF_OK;
    }

    if (lmcf->pg == NULL || lmcf->redis == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "leaderboards need \"game_lb_pg\" and "
                      "\"game_lb_redis\"");
        return NGX_CONF_ERROR;
    }

    if (ngx_game_lb_used_player && lmcf->player == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"game_lb around_me\" needs \"game_lb_player\"");
        return NGX_CONF_ERROR;
    }

    if (ngx_game_lb_used_admin && lmcf->admins.nelts == 0) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"game_lb admin_*\" locations need at least one "
                      "\"game_lb_admin\"");
        return NGX_CONF_ERROR;
    }

    if (ngx_game_lb_boards_json(cf, lmcf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    /* the matchmaker's outcomes, through the core's event bus */
    if (ngx_game_lb_apply_init(cf, lmcf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_game_lb_pool(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    void       **field;
    ngx_str_t   *value;

    field = (void **) ((u_char *) conf + cmd->offset);

    if (*field != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (cmd->offset == offsetof(ngx_game_lb_main_conf_t, redis)) {
        *field = ngx_game_redis_pool_lookup(cf, &value[1]);
    } else {
        *field = ngx_game_pg_pool_lookup(cf, &value[1]);
    }

    return *field ? NGX_CONF_OK : NGX_CONF_ERROR;
}


/* the parameters game_leaderboard requires, as bits of "seen" */
#define NGX_GAME_LB_SEEN_SORT    0x01
#define NGX_GAME_LB_SEEN_OP      0x02
#define NGX_GAME_LB_SEEN_SOURCE  0x04
#define NGX_GAME_LB_SEEN_RESET   0x08
#define NGX_GAME_LB_SEEN_REGIONS 0x10


static char *
ngx_game_lb_board_conf(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_game_lb_main_conf_t  *lmcf = conf;

    ngx_str_t            *value;
    ngx_uint_t            i, seen;
    ngx_game_lb_board_t  *b, *boards;

    value = cf->args->elts;

    if (!game_lb_name_valid((char *) value[1].data, value[1].len)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid board name \"%V\" in \"%V\" directive: "
                           "use 1 to 32 of a-z 0-9 _", &value[1],
                           &cmd->name);
        return NGX_CONF_ERROR;
    }

    boards = lmcf->boards.elts;
    for (i = 0; i < lmcf->boards.nelts; i++) {
        if (boards[i].name.len == value[1].len
            && ngx_strncmp(boards[i].name.data, value[1].data,
                           value[1].len) == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "duplicate board \"%V\" in \"%V\" directive",
                               &value[1], &cmd->name);
            return NGX_CONF_ERROR;
        }
    }

    b = ngx_array_push(&lmcf->boards);
    if (b == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(b, sizeof(ngx_game_lb_board_t));
    b->name = value[1];
    seen = 0;

    for (i = 2; i < cf->args->nelts; i++) {
        if (ngx_game_lb_board_param(b, &value[i], &seen) != NGX_OK) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\" in \"%V\" directive",
                               &value[i], &cmd->name);
            return NGX_CONF_ERROR;
        }
    }

    if ((seen & (NGX_GAME_LB_SEEN_SORT|NGX_GAME_LB_SEEN_OP
                 |NGX_GAME_LB_SEEN_SOURCE))
        != (NGX_GAME_LB_SEEN_SORT|NGX_GAME_LB_SEEN_OP
            |NGX_GAME_LB_SEEN_SOURCE))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "board \"%V\" in \"%V\" directive needs sort=, "
                           "operator= and source=", &value[1], &cmd->name);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* one name=value of game_leaderboard; NGX_ERROR: the caller names it */
static ngx_int_t
ngx_game_lb_board_param(ngx_game_lb_board_t *b, ngx_str_t *v,
    ngx_uint_t *seen)
{
    size_t       off, len;
    ngx_uint_t   i, bit;
    ngx_str_t    val;

    static const char *sorts[] = { "asc", "desc", NULL };
    static const char *ops[] = { "set", "incr", "best", NULL };
    static const char *resets[] = { "never", "daily", "weekly", "monthly",
                                    NULL };
    static const char *flags[] = { "off", "on", NULL };

    static struct {
        const char    *name;
        const char   **words;
        size_t         offset;
        ngx_uint_t     bit;
    } params[] = {
        { "sort=", sorts, offsetof(ngx_game_lb_board_t, desc),
          NGX_GAME_LB_SEEN_SORT },
        { "operator=", ops, offsetof(ngx_game_lb_board_t, op),
          NGX_GAME_LB_SEEN_OP },
        { "reset=", resets, offsetof(ngx_game_lb_board_t, reset),
          NGX_GAME_LB_SEEN_RESET },
        { "regions=", flags, offsetof(ngx_game_lb_board_t, regions),
          NGX_GAME_LB_SEEN_REGIONS },
        { NULL, NULL, 0, 0 }
    };

    if (v->len > 7 && ngx_strncmp(v->data, "source=", 7) == 0) {
        if (*seen & NGX_GAME_LB_SEEN_SOURCE) {
            return NGX_ERROR;
        }

        *seen |= NGX_GAME_LB_SEEN_SOURCE;
        b->source = game_lb_source_parse((char *) v->data + 7, v->len - 7,
                                         &off, &len);
        b->mode.data = v->data + 7 + off;
        b->mode.len = len;

        return (b->source == GAME_LB_SOURCE_BAD) ? NGX_ERROR : NGX_OK;
    }

    for (i = 0; params[i].name; i++) {
        len = ngx_strlen(params[i].name);

        if (v->len > len && ngx_strncmp(v->data, params[i].name, len) == 0) {
            break;
        }
    }

    if (params[i].name == NULL || (*seen & params[i].bit)) {
        return NGX_ERROR;
    }

    bit = params[i].bit;
    val.data = v->data + len;
    val.len = v->len - len;

    for (len = 0; params[i].words[len]; len++) {
        if (ngx_strlen(params[i].words[len]) == val.len
            && ngx_strncmp(params[i].words[len], val.data, val.len) == 0)
        {
            *(ngx_uint_t *) ((u_char *) b + params[i].offset) = len;
            *seen |= bit;
            return NGX_OK;
        }
    }

    return NGX_ERROR;
}


/* the boards' definitions as JSON, the way the SQL functions take them */
static ngx_int_t
ngx_game_lb_boards_json(ngx_conf_t *cf, ngx_game_lb_main_conf_t *lmcf)
{
    char                 *text;
    json_t               *all, *one;
    ngx_uint_t            i;
    ngx_game_lb_board_t  *b;

    static const char *ops[] = { "set", "incr", "best" };
    static const char *resets[] = { "never", "daily", "weekly", "monthly" };

    all = json_array();
    if (all == NULL) {
        return NGX_ERROR;
    }

    b = lmcf->boards.elts;

    for (i = 0; i < lmcf->boards.nelts; i++) {
        one = json_pack("{s:s%,s:s,s:s,s:s,s:o,s:s,s:b}",
                        "name", b[i].name.data, b[i].name.len,
                        "sort", b[i].desc ? "desc" : "asc",
                        "op", ops[b[i].op],
                        "source", game_lb_source_names[b[i].source],
                        "mode", b[i].mode.len
                                ? json_stringn((char *) b[i].mode.data,
                                               b[i].mode.len)
                                : json_null(),
                        "reset", resets[b[i].reset],
                        "regions", (int) b[i].regions);
        if (one == NULL) {
            json_decref(all);
            return NGX_ERROR;
        }

        text = json_dumps(one, JSON_COMPACT);
        json_array_append_new(all, one);

        if (text == NULL) {
            json_decref(all);
            return NGX_ERROR;
        }

        b[i].json.len = ngx_strlen(text);
        b[i].json.data = ngx_pnalloc(cf->pool, b[i].json.len + 1);
        if (b[i].json.data == NULL) {
            free(text);
            json_decref(all);
            return NGX_ERROR;
        }
        ngx_memcpy(b[i].json.data, text, b[i].json.len + 1);
        free(text);
    }

    text = json_dumps(all, JSON_COMPACT);
    json_decref(all);

    if (text == NULL) {
        return NGX_ERROR;
    }

    lmcf->boards_json.len = ngx_strlen(text);
    lmcf->boards_json.data = ngx_pnalloc(cf->pool,
                                         lmcf->boards_json.len + 1);
    if (lmcf->boards_json.data == NULL) {
        free(text);
        return NGX_ERROR;
    }

    ngx_memcpy(lmcf->boards_json.data, text, lmcf->boards_json.len + 1);
    free(text);

    return NGX_OK;
}


static char *
ngx_game_lb_admin(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_game_lb_main_conf_t  *lmcf = conf;

    return ngx_game_admin_conf(cf, cmd, &lmcf->admins);
}


static char *
ngx_game_lb_consumer(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_game_lb_main_conf_t  *lmcf = conf;

    if (lmcf->bus.batch) {
        return "is duplicate";
    }

    if (ngx_game_bus_conf_params(cf, cmd, 1, &lmcf->bus) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    /* zeros take the bus's defaults; mark the directive as seen */
    if (lmcf->bus.batch == 0) {
        lmcf->bus.batch = 50;
    }

    return NGX_CONF_OK;
}


static char *
ngx_game_lb_endpoint(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_str_t                 *value;
    ngx_game_lb_endpoint_t    *ep;
    ngx_http_core_loc_conf_t  *clcf;

    value = cf->args->elts;

    for (ep = ngx_game_lb_endpoints; ep->name.len; ep++) {
        if (ep->name.len == value[1].len
            && ngx_strncmp(ep->name.data, value[1].data, value[1].len) == 0)
        {
            break;
        }
    }

    if (ep->name.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "unknown endpoint \"%V\" in \"%V\" directive",
                           &value[1], &cmd->name);
        return NGX_CONF_ERROR;
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ep->handler;

    ngx_game_lb_used = 1;
    ngx_game_lb_used_player |= ep->player;
    ngx_game_lb_used_admin |= ep->admin;

    return NGX_CONF_OK;
}


ngx_game_lb_board_t *
ngx_game_lb_board(ngx_game_lb_main_conf_t *lmcf, ngx_str_t *name)
{
    ngx_uint_t            i;
    ngx_game_lb_board_t  *b;

    b = lmcf->boards.elts;

    for (i = 0; i < lmcf->boards.nelts; i++) {
        if (b[i].name.len == name->len
            && ngx_strncmp(b[i].name.data, name->data, name->len) == 0)
        {
            return &b[i];
        }
    }

    return NULL;
}


/* the worker's knowledge of a board's live season; season_len 0 until
 * the first tick answered */
ngx_game_lb_live_t *
ngx_game_lb_live(ngx_game_lb_main_conf_t *lmcf, ngx_game_lb_board_t *board)
{
    if (ngx_game_lb_lives == NULL) {
        return NULL;
    }

    return &ngx_game_lb_lives[board - (ngx_game_lb_board_t *)
                                      lmcf->boards.elts];
}


/*
 * nginx's stock setters, chosen by the field, with an error that names
 * the directive and the value (theirs name one or the other).
 */
static char *
ngx_game_lb_stock(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char             *rv;
    ngx_str_t        *value;
    ngx_conf_enum_t  *e;

    value = cf->args->elts;

    switch (cmd->offset) {

    case offsetof(ngx_game_lb_main_conf_t, test_clock):
        /* the stock enum setter logs the value alone: check it first */
        for (e = cmd->post; e->name.len; e++) {
            if (e->name.len == value[1].len
                && ngx_strcmp(e->name.data, value[1].data) == 0)
            {
                break;
            }
        }

        rv = e->name.len ? ngx_conf_set_enum_slot(cf, cmd, conf)
                         : "is not \"real\" or \"test\"";
        break;

    case offsetof(ngx_game_lb_main_conf_t, rebuild_batch):
        rv = ngx_conf_set_num_slot(cf, cmd, conf);
        break;

    default:
        rv = ngx_conf_set_msec_slot(cf, cmd, conf);
        break;
    }

    if (rv == NGX_CONF_OK || rv == NGX_CONF_ERROR) {
        return rv;
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid value \"%V\" in \"%V\" directive (%s)",
                       &value[1], &cmd->name, rv);

    return NGX_CONF_ERROR;
}


static ngx_int_t
ngx_game_lb_init_process(ngx_cycle_t *cycle)
{
    ngx_game_lb_main_conf_t  *lmcf;

    lmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_game_lb_module);

    if (lmcf == NULL || lmcf->boards.nelts == 0 || lmcf->redis == NULL
        || lmcf->pg == NULL)
    {
        return NGX_OK;
    }

    ngx_game_lb_scripts_init();

    ngx_game_lb_lives = ngx_pcalloc(cycle->pool,
                                    lmcf->boards.nelts
                                    * sizeof(ngx_game_lb_live_t));
    if (ngx_game_lb_lives == NULL) {
        return NGX_ERROR;
    }

    return ngx_game_lb_maint_start(cycle, lmcf);
}
