
/*
 * ngx_game_tel_module: telemetry ingestion and anti-cheat signals.
 *
 *   http {
 *       game_tel_pg              main;
 *       game_tel_writer_pg       telemetry;
 *       game_tel_redis           main;
 *       game_tel_player          $game_player_id;
 *       game_tel_types           conf/telemetry-types.json;
 *       game_tel_rate            100 burst=1000;
 *       game_tel_partitions      day ahead=7;
 *       game_tel_retention       90d drop;
 *       game_tel_mode            dm max_speed=12 arena=100x100 teleport=8;
 *       game_tel_weapon          rifle max_rate=7;
 *       game_tel_admin           ops /run/secrets/tel-admin;
 *
 *       server {
 *           location = /game/telemetry { game_auth_jwt on; game_tel ingest; }
 *       }
 *   }
 *
 * conf/telemetry.locations has every endpoint's location; the SQL is in
 * sql/008_telemetry.sql; the README's Telemetry section says how it all
 * fits.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_game_tel.h"
#include "ngx_game_conf.h"


static void *ngx_game_tel_create_main_conf(ngx_conf_t *cf);
static char *ngx_game_tel_init_main_conf(ngx_conf_t *cf, void *conf);
static char *ngx_game_tel_check(ngx_conf_t *cf,
    ngx_game_tel_main_conf_t *tmcf);
static char *ngx_game_tel_types(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_game_tel_rate(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_game_tel_writer(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_game_tel_partitions(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_game_tel_retention(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_game_tel_mode(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_game_tel_weapon(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_game_tel_rule(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_game_tel_admin(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_game_tel_endpoint(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_game_tel_name(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_str_t *value, char *name);
static ngx_int_t ngx_game_tel_real(u_char *p, u_char *last, double min,
    double *out);
static ngx_int_t ngx_game_tel_param(ngx_str_t *v, const char *name,
    double min, double *out);
static void ngx_game_tel_types_cleanup(void *data);
static ngx_int_t ngx_game_tel_init_process(ngx_cycle_t *cycle);


static ngx_command_t  ngx_game_tel_commands[] = {

    /* the PostgreSQL pool of the admin endpoints */
    { ngx_string("game_tel_pg"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_game_conf_set_pg_pool_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_game_tel_main_conf_t, pg),
      NULL },

    /* the writer's and the maintenance job's pool: large statements, so
     * best a pool of their own (default: game_tel_pg) */
    { ngx_string("game_tel_writer_pg"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_game_conf_set_pg_pool_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_game_tel_main_conf_t, writer_pg),
      NULL },

    /* a copy=on pool: the writer loads its batches with COPY into a
     * staging table, then the same de-duplicating INSERT (default: none,
     * one statement on game_tel_writer_pg) */
    { ngx_string("game_tel_writer_copy_pg"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_game_conf_set_pg_pool_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_game_tel_main_conf_t, copy_pg),
      NULL },

    /* the Redis pool of the streams, rate limits, lease and counters */
    { ngx_string("game_tel_redis"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_game_conf_set_redis_pool_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_game_tel_main_conf_t, redis),
      NULL },

    /* who is sending: normally $game_player_id, set by game_auth_jwt */
    { ngx_string("game_tel_player"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_game_tel_main_conf_t, player),
      NULL },

    /* the prefix of every Redis key: <prefix>events (clients' stream),
     * <prefix>server (game servers'), <prefix>stats, ... */
    { ngx_string("game_tel_prefix"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_game_tel_main_conf_t, prefix),
      NULL },

    /* the JSON file of the event types and their schemas */
    { ngx_string("game_tel_types"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_game_tel_types,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    /* events in one batch, at most (1 to 1000) */
    { ngx_string("game_tel_max_events"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_game_tel_main_conf_t, max_events),
      NULL },

    /* the size of one batch's body, at most */
    { ngx_string("game_tel_max_bytes"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_game_tel_main_conf_t, max_bytes),
      NULL },

    /* how old an event's ts may be (no more than the dedupe window) */
    { ngx_string("game_tel_accept_age"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_game_tel_main_conf_t, accept_age),
      NULL },

    /* how far ahead of our clock an event's ts may be */
    { ngx_string("game_tel_accept_skew"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_game_tel_main_conf_t, accept_skew),
      NULL },

    /* game_tel_rate events_per_second [burst=N] | off: per player */
    { ngx_string("game_tel_rate"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_game_tel_rate,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    /* batches waiting for the writer beyond which ingest answers 503 */
    { ngx_string("game_tel_max_backlog"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_game_tel_main_conf_t, max_backlog),
      NULL },

    /* the writer's tuning: [batch=100] [claim_idle=60s]
     * [max_deliveries=50] [consumer_idle=1h] */
    { ngx_string("game_tel_writer"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_game_tel_writer,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    /* game_tel_partitions day|month [ahead=N]: game_events' partitions,
     * made N periods ahead */
    { ngx_string("game_tel_partitions"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_game_tel_partitions,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    /* game_tel_retention time [drop|detach]: partitions older go */
    { ngx_string("game_tel_retention"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_game_tel_retention,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    /* how long event ids are remembered at least (at most twice that) */
    { ngx_string("game_tel_dedupe_window"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_game_tel_main_conf_t, dedupe_window),
      NULL },

    /* how often the maintenance job runs (one nginx at a time) */
    { ngx_string("game_tel_maintenance_interval"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_game_tel_main_conf_t, maintenance),
      NULL },

    /* game_tel_mode name max_speed=N arena=WxH teleport=N [margin=N]:
     * what a game mode allows ("default": any mode not named) */
    { ngx_string("game_tel_mode"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_2MORE,
      ngx_game_tel_mode,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    /* game_tel_weapon name max_rate=N: shots per second, at most */
    { ngx_string("game_tel_weapon"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_game_tel_weapon,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    /* game_tel_rule speed|teleport|fire_rate|hit_ratio|server_flag
     *               points=N [max_ratio=F] [min_shots=N] [max_count=N] */
    { ngx_string("game_tel_rule"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_2MORE,
      ngx_game_tel_rule,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    /* a suspicion score this high flags the player for review */
    { ngx_string("game_tel_flag_threshold"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_game_tel_main_conf_t, threshold),
      NULL },

    /* game_tel_admin name file: an admin and its secret; repeatable */
    { ngx_string("game_tel_admin"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_game_tel_admin,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    /* game_tel ingest|admin_flagged|admin_review|admin_stats; */
    { ngx_string("game_tel"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_game_tel_endpoint,
      0,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_game_tel_module_ctx = {
    NULL,                                  /* preconfiguration */
    NULL,                                  /* postconfiguration */

    ngx_game_tel_create_main_conf,         /* create main configuration */
    ngx_game_tel_init_main_conf,           /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    NULL,                                  /* create location configuration */
    NULL                                   /* merge location configuration */
};


ngx_module_t  ngx_game_tel_module = {
    NGX_MODULE_V1,
    &ngx_game_tel_module_ctx,              /* module context */
    ngx_game_tel_commands,                 /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_game_tel_init_process,             /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


typedef struct {
    ngx_str_t                   name;
    ngx_game_tel_endpoint_pt    handler;
    unsigned                    player:1;
    unsigned                    admin:1;
} ngx_game_tel_endpoint_t;


static ngx_game_tel_endpoint_t  ngx_game_tel_endpoints[] = {
    { ngx_string("ingest"), ngx_game_tel_ingest, 1, 0 },
    { ngx_string("admin_flagged"), ngx_game_tel_admin_flagged, 0, 1 },
    { ngx_string("admin_review"), ngx_game_tel_admin_review, 0, 1 },
    { ngx_string("admin_stats"), ngx_game_tel_admin_stats, 0, 1 },
    { ngx_null_string, NULL, 0, 0 }
};


/* the rules' points when game_tel_rule does not say */
static ngx_uint_t  ngx_game_tel_default_points[GAME_TEL_RULES] = {
    10,     /* speed */
    10,     /* teleport */
    10,     /* fire_rate */
    20,     /* hit_ratio */
    5       /* server_flag */
};


static void *
ngx_game_tel_create_main_conf(ngx_conf_t *cf)
{
    ngx_uint_t                 i;
    ngx_game_tel_main_conf_t  *tmcf;

    tmcf = ngx_pcalloc(cf->pool, sizeof(ngx_game_tel_main_conf_t));
    if (tmcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&tmcf->admins, cf->pool, 2, sizeof(ngx_game_admin_t))
        != NGX_OK
        || ngx_array_init(&tmcf->modes, cf->pool, 4, sizeof(game_tel_mode_t))
           != NGX_OK
        || ngx_array_init(&tmcf->weapons, cf->pool, 4,
                          sizeof(game_tel_weapon_t))
           != NGX_OK)
    {
        return NULL;
    }

    tmcf->pg = NGX_CONF_UNSET_PTR;
    tmcf->writer_pg = NGX_CONF_UNSET_PTR;
    tmcf->copy_pg = NGX_CONF_UNSET_PTR;
    tmcf->redis = NGX_CONF_UNSET_PTR;
    tmcf->max_events = NGX_CONF_UNSET_UINT;
    tmcf->max_bytes = NGX_CONF_UNSET_SIZE;
    tmcf->accept_age = NGX_CONF_UNSET_MSEC;
    tmcf->accept_skew = NGX_CONF_UNSET_MSEC;
    tmcf->rate = NGX_CONF_UNSET_UINT;
    tmcf->burst = NGX_CONF_UNSET_UINT;
    tmcf->max_backlog = NGX_CONF_UNSET_UINT;
    tmcf->ahead = NGX_CONF_UNSET_UINT;
    tmcf->retention = NGX_CONF_UNSET;
    tmcf->dedupe_window = NGX_CONF_UNSET;
    tmcf->maintenance = NGX_CONF_UNSET_MSEC;
    tmcf->threshold = NGX_CONF_UNSET_UINT;

    tmcf->rules.max_hit_ratio = -1;
    tmcf->rules.min_shots = (unsigned) -1;
    tmcf->rules.max_flag_count = (unsigned) -1;

    for (i = 0; i < GAME_TEL_RULES; i++) {
        tmcf->rules.points[i] = (unsigned) -1;
    }

    return tmcf;
}


static char *
ngx_game_tel_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_game_tel_main_conf_t  *tmcf = conf;

    u_char      *p;
    ngx_uint_t   i;

    ngx_conf_init_ptr_value(tmcf->pg, NULL);
    ngx_conf_init_ptr_value(tmcf->writer_pg, tmcf->pg);
    ngx_conf_init_ptr_value(tmcf->copy_pg, NULL);
    ngx_conf_init_ptr_value(tmcf->redis, NULL);
    ngx_conf_init_uint_value(tmcf->max_events, 500);
    ngx_conf_init_size_value(tmcf->max_bytes, 256 * 1024);
    ngx_conf_init_msec_value(tmcf->accept_age, 24 * 3600 * 1000);
    ngx_conf_init_msec_value(tmcf->accept_skew, 5 * 60 * 1000);
    ngx_conf_init_uint_value(tmcf->rate, 100);
    ngx_conf_init_uint_value(tmcf->burst, 1000);
    ngx_conf_init_uint_value(tmcf->max_backlog, 20000);
    ngx_conf_init_uint_value(tmcf->ahead, 3);
    ngx_conf_init_value(tmcf->retention, 90 * 86400);
    ngx_conf_init_value(tmcf->dedupe_window, 48 * 3600);
    ngx_conf_init_msec_value(tmcf->maintenance, 60000);
    ngx_conf_init_uint_value(tmcf->threshold, 100);

    /* ranges here rather than in ngx_conf_check_num_bounds, whose message
     * does not name the directive */
    if (tmcf->max_events < 1 || tmcf->max_events > 1000) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "invalid value \"%ui\" in \"game_tel_max_events\" "
                      "directive: 1 to 1000 events", tmcf->max_events);
        return NGX_CONF_ERROR;
    }

    if (tmcf->max_backlog < 1 || tmcf->threshold < 1) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"%s\" must be at least 1",
                      tmcf->max_backlog < 1 ? "game_tel_max_backlog"
                                            : "game_tel_flag_threshold");
        return NGX_CONF_ERROR;
    }

    if (tmcf->period.data == NULL) {
        ngx_str_set(&tmcf->period, "month");
    }
    if (tmcf->expire_action.data == NULL) {
        ngx_str_set(&tmcf->expire_action, "drop");
    }
    if (tmcf->prefix.data == NULL) {
        ngx_str_set(&tmcf->prefix, "tel:");
    }

    for (i = 0; i < GAME_TEL_RULES; i++) {
        if (tmcf->rules.points[i] == (unsigned) -1) {
            tmcf->rules.points[i] = ngx_game_tel_default_points[i];
        }
    }
    if (tmcf->rules.max_hit_ratio < 0) {
        tmcf->rules.max_hit_ratio = 0.9;
    }
    if (tmcf->rules.min_shots == (unsigned) -1) {
        tmcf->rules.min_shots = 20;
    }
    if (tmcf->rules.max_flag_count == (unsigned) -1) {
        tmcf->rules.max_flag_count = 3;
    }

    tmcf->rules.modes = tmcf->modes.elts;
    tmcf->rules.nmodes = tmcf->modes.nelts;
    tmcf->rules.weapons = tmcf->weapons.elts;
    tmcf->rules.nweapons = tmcf->weapons.nelts;

    /* the keys: <prefix>events, <prefix>server, <prefix>stats */
    p = ngx_pnalloc(cf->pool, 3 * (tmcf->prefix.len + sizeof("events")));
    if (p == NULL) {
        return NGX_CONF_ERROR;
    }

    tmcf->stream.data = p;
    p = ngx_sprintf(p, "%Vevents%Z", &tmcf->prefix);
    tmcf->stream.len = p - tmcf->stream.data - 1;

    tmcf->server_stream.data = p;
    p = ngx_sprintf(p, "%Vserver%Z", &tmcf->prefix);
    tmcf->server_stream.len = p - tmcf->server_stream.data - 1;

    tmcf->stats.data = p;
    p = ngx_sprintf(p, "%Vstats%Z", &tmcf->prefix);
    tmcf->stats.len = p - tmcf->stats.data - 1;

    if (!tmcf->used) {
        return NGX_CONF_OK;
    }

    if (ngx_game_tel_check(cf, tmcf) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    /* the streams into game_events, through the core's event bus; what
     * happened to the events, for Prometheus */
    if (ngx_game_tel_writer_init(cf, tmcf) != NGX_OK
        || ngx_game_tel_metrics_init(cf, tmcf) != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* what the locations need, and limits that must agree with each other */
static char *
ngx_game_tel_check(ngx_conf_t *cf, ngx_game_tel_main_conf_t *tmcf)
{
    if (tmcf->redis == NULL || tmcf->writer_pg == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "telemetry locations need \"game_tel_redis\" and "
                      "\"game_tel_pg\" (or \"game_tel_writer_pg\")");
        return NGX_CONF_ERROR;
    }

    if (tmcf->types == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "telemetry locations need \"game_tel_types\"");
        return NGX_CONF_ERROR;
    }

    if (tmcf->used_player && tmcf->player == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"game_tel ingest\" needs \"game_tel_player\"");
        return NGX_CONF_ERROR;
    }

    if (tmcf->used_admin && (tmcf->admins.nelts == 0 || tmcf->pg == NULL)) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"game_tel admin_*\" locations need \"game_tel_pg\" "
                      "and at least one \"game_tel_admin\"");
        return NGX_CONF_ERROR;
    }

    if (tmcf->rate && tmcf->burst < tmcf->max_events) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"game_tel_rate\" burst=%ui is less than "
                      "\"game_tel_max_events\" %ui: a full batch could never "
                      "pass", tmcf->burst, tmcf->max_events);
        return NGX_CONF_ERROR;
    }

    if (tmcf->max_bytes < 1024) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"game_tel_max_bytes\" %uz is less than 1k",
                      tmcf->max_bytes);
        return NGX_CONF_ERROR;
    }

    /* a retry is caught only while its event's id is remembered */
    if ((ngx_msec_t) tmcf->dedupe_window * 1000
        < tmcf->accept_age + tmcf->accept_skew)
    {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"game_tel_dedupe_window\" %T s is shorter than "
                      "\"game_tel_accept_age\" plus \"game_tel_accept_skew\" "
                      "(%M ms): a late retry would be written twice",
                      tmcf->dedupe_window,
                      tmcf->accept_age + tmcf->accept_skew);
        return NGX_CONF_ERROR;
    }

    /* a partition events may still be written to is never expired */
    if ((ngx_msec_t) tmcf->retention * 1000
        < tmcf->accept_age + (ngx_msec_t) 31 * 86400 * 1000)
    {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"game_tel_retention\" %T s must exceed "
                      "\"game_tel_accept_age\" by at least 31 days",
                      tmcf->retention);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* game_tel_types file: read, checked and kept at configuration time */
static char *
ngx_game_tel_types(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_game_tel_main_conf_t  *tmcf = conf;

    char                 err[256];
    json_t              *doc;
    ngx_str_t           *value, path;
    json_error_t         jerr;
    ngx_pool_cleanup_t  *cln;

    if (tmcf->types != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;
    path = value[1];

    if (ngx_conf_full_name(cf->cycle, &path, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    doc = json_load_file((char *) path.data, JSON_REJECT_DUPLICATES, &jerr);
    if (doc == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\": \"%V\" line %d: %s", &cmd->name, &path,
                           jerr.line, jerr.text);
        return NGX_CONF_ERROR;
    }

    tmcf->types = game_tel_types_parse(doc, err, sizeof(err));
    json_decref(doc);

    if (tmcf->types == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "\"%V\": \"%V\": %s",
                           &cmd->name, &path, err);
        return NGX_CONF_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        game_tel_types_free(tmcf->types);
        tmcf->types = NULL;
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_game_tel_types_cleanup;
    cln->data = tmcf->types;
    tmcf->types_file = path;

    return NGX_CONF_OK;
}


static void
ngx_game_tel_types_cleanup(void *data)
{
    game_tel_types_free(data);
}


/* game_tel_rate N [burst=N] | off */
static char *
ngx_game_tel_rate(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_game_tel_main_conf_t  *tmcf = conf;

    ngx_int_t   n;
    ngx_str_t  *value;

    if (tmcf->rate != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0 && cf->args->nelts == 2) {
        tmcf->rate = 0;
        return NGX_CONF_OK;
    }

    n = ngx_atoi(value[1].data, value[1].len);
    if (n < 1 || n > 1000000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\" in \"%V\" directive: events "
                           "per second per player, 1 to 1000000, or off",
                           &value[1], &cmd->name);
        return NGX_CONF_ERROR;
    }

    tmcf->rate = n;

    if (cf->args->nelts == 3) {
        n = (value[2].len > 6
             && ngx_strncmp(value[2].data, "burst=", 6) == 0)
            ? ngx_atoi(value[2].data + 6, value[2].len - 6) : NGX_ERROR;

        if (n < 1 || n > 100000000) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid value \"%V\" in \"%V\" directive",
                               &value[2], &cmd->name);
            return NGX_CONF_ERROR;
        }

        tmcf->burst = n;
    }

    return NGX_CONF_OK;
}


static char *
ngx_game_tel_writer(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_game_tel_main_conf_t  *tmcf = conf;

    if (tmcf->bus.batch) {
        return "is duplicate";
    }

    if (ngx_game_bus_conf_params(cf, cmd, 1, &tmcf->bus) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    /* zeros take the defaults; mark the directive as seen */
    if (tmcf->bus.batch == 0) {
        tmcf->bus.batch = 100;
    }

    return NGX_CONF_OK;
}


/* game_tel_partitions day|month [ahead=N] */
static char *
ngx_game_tel_partitions(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_game_tel_main_conf_t  *tmcf = conf;

    ngx_int_t   n;
    ngx_str_t  *value;

    if (tmcf->period.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "day") == 0
        || ngx_strcmp(value[1].data, "daily") == 0)
    {
        ngx_str_set(&tmcf->period, "day");

    } else if (ngx_strcmp(value[1].data, "month") == 0
               || ngx_strcmp(value[1].data, "monthly") == 0)
    {
        ngx_str_set(&tmcf->period, "month");

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\" in \"%V\" directive, "
                           "expected day or month", &value[1], &cmd->name);
        return NGX_CONF_ERROR;
    }

    if (cf->args->nelts == 3) {
        n = (value[2].len > 6
             && ngx_strncmp(value[2].data, "ahead=", 6) == 0)
            ? ngx_atoi(value[2].data + 6, value[2].len - 6) : NGX_ERROR;

        if (n < 1 || n > 366) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid value \"%V\" in \"%V\" directive: "
                               "ahead=1 to 366 periods", &value[2],
                               &cmd->name);
            return NGX_CONF_ERROR;
        }

        tmcf->ahead = n;
    }

    return NGX_CONF_OK;
}


/* game_tel_retention time [drop|detach] */
static char *
ngx_game_tel_retention(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_game_tel_main_conf_t  *tmcf = conf;

    time_t      t;
    ngx_str_t  *value;

    if (tmcf->retention != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    t = ngx_parse_time(&value[1], 1);
    if (t == (time_t) NGX_ERROR || t < 86400) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\" in \"%V\" directive: a time "
                           "of at least a day", &value[1], &cmd->name);
        return NGX_CONF_ERROR;
    }

    tmcf->retention = t;

    if (cf->args->nelts == 3) {
        if (ngx_strcmp(value[2].data, "drop") == 0) {
            ngx_str_set(&tmcf->expire_action, "drop");

        } else if (ngx_strcmp(value[2].data, "detach") == 0) {
            ngx_str_set(&tmcf->expire_action, "detach");

        } else {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid value \"%V\" in \"%V\" directive, "
                               "expected drop or detach", &value[2],
                               &cmd->name);
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


/* game_tel_mode name max_speed=N arena=WxH teleport=N [margin=N] */
static char *
ngx_game_tel_mode(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_game_tel_main_conf_t  *tmcf = conf;

    u_char           *x, *last;
    ngx_str_t        *value;
    ngx_uint_t        i, seen;
    game_tel_mode_t  *m;

    value = cf->args->elts;

    m = tmcf->modes.elts;
    for (i = 0; i < tmcf->modes.nelts; i++) {
        if (ngx_strcmp(m[i].name, value[1].data) == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "duplicate mode \"%V\" in \"%V\" directive",
                               &value[1], &cmd->name);
            return NGX_CONF_ERROR;
        }
    }

    m = ngx_array_push(&tmcf->modes);
    if (m == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(m, sizeof(game_tel_mode_t));
    m->margin = 1;

    if (ngx_game_tel_name(cf, cmd, &value[1], m->name) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    seen = 0;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_game_tel_param(&value[i], "max_speed=", 0, &m->max_speed)
            == NGX_OK)
        {
            seen |= 1;

        } else if (ngx_game_tel_param(&value[i], "teleport=", 0,
                                      &m->teleport)
                   == NGX_OK)
        {
            seen |= 2;

        } else if (ngx_game_tel_param(&value[i], "margin=", 0, &m->margin)
                   == NGX_OK)
        {
            /* optional */

        } else if (value[i].len > 6
                   && ngx_strncmp(value[i].data, "arena=", 6) == 0)
        {
            /* arena=WxH */
            last = value[i].data + value[i].len;
            x = ngx_strlchr(value[i].data + 6, last, 'x');

            if (x == NULL
                || ngx_game_tel_real(value[i].data + 6, x, 1, &m->arena_w)
                   != NGX_OK
                || ngx_game_tel_real(x + 1, last, 1, &m->arena_h) != NGX_OK)
            {
                goto invalid;
            }

            seen |= 4;

        } else {
            goto invalid;
        }
    }

    if (seen != 7) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" \"%V\" needs max_speed=, arena=WxH and "
                           "teleport=", &cmd->name, &value[1]);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid value \"%V\" in \"%V\" directive", &value[i],
                       &cmd->name);
    return NGX_CONF_ERROR;
}


/* game_tel_weapon name max_rate=N */
static char *
ngx_game_tel_weapon(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_game_tel_main_conf_t  *tmcf = conf;

    ngx_str_t          *value;
    ngx_uint_t          i;
    game_tel_weapon_t  *w;

    value = cf->args->elts;

    w = tmcf->weapons.elts;
    for (i = 0; i < tmcf->weapons.nelts; i++) {
        if (ngx_strcmp(w[i].name, value[1].data) == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "duplicate weapon \"%V\" in \"%V\" directive",
                               &value[1], &cmd->name);
            return NGX_CONF_ERROR;
        }
    }

    w = ngx_array_push(&tmcf->weapons);
    if (w == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(w, sizeof(game_tel_weapon_t));

    if (ngx_game_tel_name(cf, cmd, &value[1], w->name) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    if (ngx_game_tel_param(&value[2], "max_rate=", 0.001, &w->max_rate)
        != NGX_OK)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\" in \"%V\" directive, "
                           "expected max_rate=shots per second", &value[2],
                           &cmd->name);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* game_tel_rule name points=N [max_ratio=F] [min_shots=N] [max_count=N] */
static char *
ngx_game_tel_rule(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_game_tel_main_conf_t  *tmcf = conf;

    double           d;
    ngx_int_t        n;
    ngx_str_t       *value;
    ngx_uint_t       i;
    game_tel_rule_e  rule;

    value = cf->args->elts;

    rule = game_tel_rule_find((char *) value[1].data, value[1].len);
    if (rule == GAME_TEL_RULES) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "unknown rule \"%V\" in \"%V\" directive, expected "
                           "speed, teleport, fire_rate, hit_ratio or "
                           "server_flag", &value[1], &cmd->name);
        return NGX_CONF_ERROR;
    }

    if (tmcf->rules.points[rule] != (unsigned) -1) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate rule \"%V\" in \"%V\" directive",
                           &value[1], &cmd->name);
        return NGX_CONF_ERROR;
    }

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "points=", 7) == 0) {
            n = ngx_atoi(value[i].data + 7, value[i].len - 7);
            if (n < 0 || n > 1000000) {
                goto invalid;
            }
            tmcf->rules.points[rule] = n;

        } else if (rule == GAME_TEL_RULE_HIT_RATIO
                   && ngx_strncmp(value[i].data, "max_ratio=", 10) == 0)
        {
            if (ngx_game_tel_param(&value[i], "max_ratio=", 0, &d) != NGX_OK
                || d > 1)
            {
                goto invalid;
            }
            tmcf->rules.max_hit_ratio = d;

        } else if (rule == GAME_TEL_RULE_HIT_RATIO
                   && ngx_strncmp(value[i].data, "min_shots=", 10) == 0)
        {
            n = ngx_atoi(value[i].data + 10, value[i].len - 10);
            if (n < 1 || n > 1000000) {
                goto invalid;
            }
            tmcf->rules.min_shots = n;

        } else if (rule == GAME_TEL_RULE_SERVER_FLAG
                   && ngx_strncmp(value[i].data, "max_count=", 10) == 0)
        {
            n = ngx_atoi(value[i].data + 10, value[i].len - 10);
            if (n < 1 || n > 1000) {
                goto invalid;
            }
            tmcf->rules.max_flag_count = n;

        } else {
            goto invalid;
        }
    }

    if (tmcf->rules.points[rule] == (unsigned) -1) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" \"%V\" needs points= (0 turns it off)",
                           &cmd->name, &value[1]);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid value \"%V\" in \"%V\" directive", &value[i],
                       &cmd->name);
    return NGX_CONF_ERROR;
}


static char *
ngx_game_tel_admin(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_game_tel_main_conf_t  *tmcf = conf;

    return ngx_game_admin_conf(cf, cmd, &tmcf->admins);
}


static char *
ngx_game_tel_endpoint(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_str_t                 *value;
    ngx_game_tel_endpoint_t   *ep;
    ngx_http_core_loc_conf_t  *clcf;
    ngx_game_tel_main_conf_t  *tmcf;

    value = cf->args->elts;

    for (ep = ngx_game_tel_endpoints; ep->name.len; ep++) {
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

    tmcf = ngx_http_conf_get_module_main_conf(cf, ngx_game_tel_module);
    tmcf->used = 1;
    tmcf->used_player |= ep->player;
    tmcf->used_admin |= ep->admin;

    return NGX_CONF_OK;
}


/* a mode's or a weapon's name: 1 to 64 printable characters, no quotes */
static char *
ngx_game_tel_name(ngx_conf_t *cf, ngx_command_t *cmd, ngx_str_t *value,
    char *name)
{
    u_char  *p;

    if (value->len == 0 || value->len > GAME_TEL_NAME_MAX) {
        goto invalid;
    }

    for (p = value->data; p < value->data + value->len; p++) {
        if (*p <= 0x20 || *p >= 0x7f || *p == '"' || *p == '\\') {
            goto invalid;
        }
    }

    ngx_memcpy(name, value->data, value->len);
    name[value->len] = '\0';

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid name \"%V\" in \"%V\" directive", value,
                       &cmd->name);
    return NGX_CONF_ERROR;
}


/* "name=12.5": 1 when "v" is the parameter "name=", its number in "out" */
static ngx_int_t
ngx_game_tel_param(ngx_str_t *v, const char *name, double min, double *out)
{
    size_t  len;

    len = ngx_strlen(name);

    if (v->len <= len || ngx_strncmp(v->data, name, len) != 0) {
        return NGX_DECLINED;
    }

    return ngx_game_tel_real(v->data + len, v->data + v->len, min, out);
}


/* a decimal number (digits, one optional point) of at least "min" */
static ngx_int_t
ngx_game_tel_real(u_char *p, u_char *last, double min, double *out)
{
    double      d, scale;
    ngx_uint_t  digits;

    d = 0;
    scale = 0;
    digits = 0;

    for ( /* void */ ; p < last; p++) {
        if (*p == '.' && scale == 0) {
            scale = 1;
            continue;
        }

        if (*p < '0' || *p > '9' || digits > 12) {
            return NGX_ERROR;
        }

        d = d * 10 + (*p - '0');
        if (scale) {
            scale *= 10;
        }
        digits++;
    }

    if (digits == 0) {
        return NGX_ERROR;
    }

    if (scale) {
        d /= scale;
    }

    if (d < min) {
        return NGX_ERROR;
    }

    *out = d;
    return NGX_OK;
}


u_char *
ngx_game_tel_number(ngx_pool_t *pool, int64_t n)
{
    u_char  *p;

    p = ngx_pnalloc(pool, NGX_INT64_LEN + 1);
    if (p == NULL) {
        return NULL;
    }

    *ngx_sprintf(p, "%L", n) = '\0';

    return p;
}


int64_t
ngx_game_tel_now_ms(void)
{
    ngx_time_t  *tp;

    tp = ngx_timeofday();

    return (int64_t) tp->sec * 1000 + tp->msec;
}


static ngx_int_t
ngx_game_tel_init_process(ngx_cycle_t *cycle)
{
    ngx_game_tel_main_conf_t  *tmcf;

    tmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_game_tel_module);
    if (tmcf == NULL || !tmcf->used) {
        return NGX_OK;
    }

    ngx_game_tel_ingest_init();

    return ngx_game_tel_maint_start(cycle, tmcf);
}
