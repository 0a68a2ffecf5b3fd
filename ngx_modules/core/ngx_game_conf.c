
/*
 * name=value directive parameters.  See ngx_game_conf.h.
 */

#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_game_conf.h"


static ngx_int_t ngx_game_conf_param_set(ngx_game_param_t *p, ngx_str_t *v,
    void *conf);


char *
ngx_game_conf_params(ngx_conf_t *cf, ngx_command_t *cmd, ngx_uint_t first,
    ngx_game_param_t *params, void *conf)
{
    ngx_str_t         *value, v;
    ngx_uint_t         i;
    ngx_game_param_t  *p;

    value = cf->args->elts;

    for (i = first; i < cf->args->nelts; i++) {

        for (p = params; p->name.len; p++) {
            if (value[i].len > p->name.len
                && ngx_strncmp(value[i].data, p->name.data, p->name.len) == 0)
            {
                break;
            }
        }

        if (p->name.len == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "unknown parameter \"%V\" in \"%V\" directive",
                               &value[i], &cmd->name);
            return NGX_CONF_ERROR;
        }

        v.data = value[i].data + p->name.len;
        v.len = value[i].len - p->name.len;

        if (ngx_game_conf_param_set(p, &v, conf) != NGX_OK) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid value \"%V\" in \"%V\" directive",
                               &value[i], &cmd->name);
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_game_conf_param_set(ngx_game_param_t *p, ngx_str_t *v, void *conf)
{
    ngx_int_t   n;
    u_char     *field = (u_char *) conf + p->offset;

    switch (p->type) {

    case NGX_GAME_PARAM_NUMBER:
        n = ngx_atoi(v->data, v->len);
        if (n == NGX_ERROR || (ngx_uint_t) n < p->min
            || (ngx_uint_t) n > p->max)
        {
            return NGX_ERROR;
        }
        *(ngx_uint_t *) field = n;
        return NGX_OK;

    case NGX_GAME_PARAM_MSEC:
        n = ngx_parse_time(v, 0);
        if (n == NGX_ERROR || n == 0) {
            return NGX_ERROR;
        }
        *(ngx_msec_t *) field = n;
        return NGX_OK;

    case NGX_GAME_PARAM_FLAG:
        if (v->len == 2 && ngx_strncmp(v->data, "on", 2) == 0) {
            *(ngx_flag_t *) field = 1;
            return NGX_OK;
        }
        if (v->len == 3 && ngx_strncmp(v->data, "off", 3) == 0) {
            *(ngx_flag_t *) field = 0;
            return NGX_OK;
        }
        return NGX_ERROR;

    default: /* NGX_GAME_PARAM_SEC */
        n = ngx_parse_time(v, 1);
        if (n == NGX_ERROR) {
            return NGX_ERROR;
        }
        *(time_t *) field = n;
        return NGX_OK;
    }
}
