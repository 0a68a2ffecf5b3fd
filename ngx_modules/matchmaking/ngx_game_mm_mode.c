
/*
 * game_mm_mode: a game mode's matching rules, declared in nginx.conf.
 *
 *   game_mm_mode squad teams=2 team_size=3 regions=eu,us
 *                window=100 widen=50 widen_every=5s window_cap=600
 *                max_wait=120s max_queue=100000 max_latency=150;
 *
 * The skill window starts at "window" rating points either side, grows by
 * "widen" every "widen_every" of waiting, up to "window_cap"; a ticket
 * that waited "max_wait" expires.  A player queues in the region of lowest
 * latency among the mode's regions, if that latency is at most
 * "max_latency" milliseconds.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_game_mm.h"
#include "ngx_game_conf.h"


/* what the parameters fill before they become engine rules */
typedef struct {
    ngx_uint_t                  teams;
    ngx_uint_t                  team_size;
    ngx_uint_t                  window;
    ngx_uint_t                  widen;
    ngx_msec_t                  widen_every;
    ngx_uint_t                  window_cap;
    ngx_msec_t                  max_wait;
    ngx_uint_t                  max_queue;
    ngx_uint_t                  max_latency;
} ngx_game_mm_mode_params_t;


static ngx_game_param_t  ngx_game_mm_mode_params[] = {

    { ngx_string("teams="), NGX_GAME_PARAM_NUMBER,
      offsetof(ngx_game_mm_mode_params_t, teams), 1, GAME_MM_MAX_TEAMS },

    { ngx_string("team_size="), NGX_GAME_PARAM_NUMBER,
      offsetof(ngx_game_mm_mode_params_t, team_size), 1,
      GAME_MM_MAX_TEAM_SIZE },

    { ngx_string("window="), NGX_GAME_PARAM_NUMBER,
      offsetof(ngx_game_mm_mode_params_t, window), 0, 100000 },

    { ngx_string("widen="), NGX_GAME_PARAM_NUMBER,
      offsetof(ngx_game_mm_mode_params_t, widen), 0, 100000 },

    { ngx_string("widen_every="), NGX_GAME_PARAM_MSEC,
      offsetof(ngx_game_mm_mode_params_t, widen_every), 0, 0 },

    { ngx_string("window_cap="), NGX_GAME_PARAM_NUMBER,
      offsetof(ngx_game_mm_mode_params_t, window_cap), 0, 100000 },

    { ngx_string("max_wait="), NGX_GAME_PARAM_MSEC,
      offsetof(ngx_game_mm_mode_params_t, max_wait), 0, 0 },

    { ngx_string("max_queue="), NGX_GAME_PARAM_NUMBER,
      offsetof(ngx_game_mm_mode_params_t, max_queue), 1, 10000000 },

    { ngx_string("max_latency="), NGX_GAME_PARAM_NUMBER,
      offsetof(ngx_game_mm_mode_params_t, max_latency), 1, 10000 },

    { ngx_null_string, 0, 0, 0, 0 }
};


static char *ngx_game_mm_mode_regions(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_game_mm_mode_t *mode, ngx_str_t *list);
static ngx_uint_t ngx_game_mm_name_valid(ngx_str_t *name);


char *
ngx_game_mm_mode_directive(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_game_mm_main_conf_t  *mmcf = conf;

    char                       *rv;
    ngx_str_t                  *value, regions;
    ngx_uint_t                  i, k;
    const char                 *err;
    ngx_game_mm_mode_t         *mode;
    ngx_game_mm_mode_params_t   p;

    value = cf->args->elts;

    if (!ngx_game_mm_name_valid(&value[1])) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid mode name \"%V\" in \"%V\" directive: "
                           "use lowercase letters, digits, \"_\" and \"-\"",
                           &value[1], &cmd->name);
        return NGX_CONF_ERROR;
    }

    if (ngx_game_mm_mode_find(mmcf, &value[1]) != NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate mode \"%V\" in \"%V\" directive",
                           &value[1], &cmd->name);
        return NGX_CONF_ERROR;
    }

    mode = ngx_array_push(&mmcf->modes);
    if (mode == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(mode, sizeof(ngx_game_mm_mode_t));
    mode->name = value[1];

    if (ngx_array_init(&mode->regions, cf->pool, 2, sizeof(ngx_str_t))
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    /* the defaults: FlexMatch-like widening, two minutes at most */
    p.teams = 2;
    p.team_size = 1;
    p.window = 100;
    p.widen = 50;
    p.widen_every = 5000;
    p.window_cap = 600;
    p.max_wait = 120000;
    p.max_queue = 100000;
    p.max_latency = 150;

    ngx_str_null(&regions);

    /* the allocator's mode label defaults to the mode's name */
    mode->server_mode = mode->name;

    /* "regions=" and "server_mode=" are words, not numbers: take them
     * out of the way of the numeric parameters */
    for (i = 2, k = 2; i < cf->args->nelts; i++) {
        if (value[i].len > 8
            && ngx_strncmp(value[i].data, "regions=", 8) == 0)
        {
            regions.data = value[i].data + 8;
            regions.len = value[i].len - 8;
            continue;
        }

        if (value[i].len > 12
            && ngx_strncmp(value[i].data, "server_mode=", 12) == 0)
        {
            mode->server_mode.data = value[i].data + 12;
            mode->server_mode.len = value[i].len - 12;

            if (!ngx_game_mm_name_valid(&mode->server_mode)) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid \"%V\" in \"%V\" directive",
                                   &value[i], &cmd->name);
                return NGX_CONF_ERROR;
            }
            continue;
        }

        value[k++] = value[i];
    }
    cf->args->nelts = k;

    rv = ngx_game_conf_params(cf, cmd, 2, ngx_game_mm_mode_params, &p);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    if (regions.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "mode \"%V\" in \"%V\" directive needs "
                           "\"regions=\"", &mode->name, &cmd->name);
        return NGX_CONF_ERROR;
    }

    rv = ngx_game_mm_mode_regions(cf, cmd, mode, &regions);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    mode->rules.teams = (uint32_t) p.teams;
    mode->rules.team_size = (uint32_t) p.team_size;
    mode->rules.window_base = (double) p.window;
    mode->rules.window_step = (double) p.widen;
    mode->rules.window_every_ms = (int64_t) p.widen_every;
    mode->rules.window_cap = (double) p.window_cap;
    mode->rules.max_wait_ms = (int64_t) p.max_wait;
    mode->max_queue = p.max_queue;
    mode->max_latency = p.max_latency;

    /* one script (match.lua) claims a whole match, two arguments a
     * ticket, and a ticket may hold a single player */
    if (p.teams * p.team_size > NGX_GAME_MM_MAX_PLAYERS) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "mode \"%V\" in \"%V\" directive: at most %d "
                           "players a match", &mode->name, &cmd->name,
                           NGX_GAME_MM_MAX_PLAYERS);
        return NGX_CONF_ERROR;
    }

    err = game_mm_rules_check(&mode->rules);
    if (err) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "mode \"%V\" in \"%V\" directive: %s",
                           &mode->name, &cmd->name, err);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_game_mm_mode_regions(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_game_mm_mode_t *mode, ngx_str_t *list)
{
    u_char     *p, *last, *comma;
    ngx_str_t  *region;

    p = list->data;
    last = list->data + list->len;

    while (p <= last) {
        comma = ngx_strlchr(p, last, ',');
        if (comma == NULL) {
            comma = last;
        }

        region = ngx_array_push(&mode->regions);
        if (region == NULL) {
            return NGX_CONF_ERROR;
        }

        /* a copy of its own, NUL-terminated: it goes to libpq as is */
        region->len = comma - p;
        region->data = ngx_pnalloc(cf->pool, region->len + 1);
        if (region->data == NULL) {
            return NGX_CONF_ERROR;
        }
        *ngx_cpymem(region->data, p, region->len) = '\0';

        if (!ngx_game_mm_name_valid(region)) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid region \"%V\" in \"%V\" directive",
                               region, &cmd->name);
            return NGX_CONF_ERROR;
        }

        p = comma + 1;
    }

    return NGX_CONF_OK;
}


/* names become Redis keys and database values: keep them plain */
static ngx_uint_t
ngx_game_mm_name_valid(ngx_str_t *name)
{
    size_t  i;

    if (name->len == 0 || name->len > 32) {
        return 0;
    }

    for (i = 0; i < name->len; i++) {
        u_char  c = name->data[i];

        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
              || c == '_' || c == '-'))
        {
            return 0;
        }
    }

    return 1;
}


ngx_game_mm_mode_t *
ngx_game_mm_mode_find(ngx_game_mm_main_conf_t *mmcf, ngx_str_t *name)
{
    ngx_uint_t           i;
    ngx_game_mm_mode_t  *modes;

    modes = mmcf->modes.elts;

    for (i = 0; i < mmcf->modes.nelts; i++) {
        if (modes[i].name.len == name->len
            && ngx_strncmp(modes[i].name.data, name->data, name->len) == 0)
        {
            return &modes[i];
        }
    }

    return NULL;
}
