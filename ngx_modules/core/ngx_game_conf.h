
/*
 * Parameters of the form name=value after a directive's positional
 * arguments, as in "game_pg_pool main '...' connections=8 query_timeout=2s".
 * Each directive describes its parameters in a table, the way nginx's own
 * command tables describe directives.
 */

#ifndef _NGX_GAME_CONF_H_INCLUDED_
#define _NGX_GAME_CONF_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


typedef enum {
    NGX_GAME_PARAM_NUMBER,      /* ngx_uint_t within [min, max] */
    NGX_GAME_PARAM_MSEC,        /* ngx_msec_t, "500ms", "2s"; not zero */
    NGX_GAME_PARAM_SEC,         /* time_t, "30s", "1m"; zero allowed */
    NGX_GAME_PARAM_FLAG         /* ngx_flag_t, "on" or "off" */
} ngx_game_param_type_e;


typedef struct {
    ngx_str_t                   name;       /* including the "=" */
    ngx_game_param_type_e       type;
    size_t                      offset;
    ngx_uint_t                  min;
    ngx_uint_t                  max;
} ngx_game_param_t;


char *ngx_game_conf_params(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_uint_t first, ngx_game_param_t *params, void *conf);


#endif /* _NGX_GAME_CONF_H_INCLUDED_ */
