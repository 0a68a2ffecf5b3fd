
/*
 * The auth service's metrics: logins by outcome, and the password hashes
 * waiting for or running on the thread pool, which is what a login storm
 * fills first.
 *
 * A login's outcome is read off its answer, in the log phase, so that
 * every path that ends a login (a lock, a bad password, the database
 * gone) is counted once without a counter on each of them.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_game_auth.h"


typedef enum {
    NGX_GAME_AUTH_OUT_SUCCESS = 0,
    NGX_GAME_AUTH_OUT_FAILURE,      /* 401: bad credentials or code */
    NGX_GAME_AUTH_OUT_LOCKED,       /* 429: backoff or edge limit */
    NGX_GAME_AUTH_OUT_INVALID,      /* other 4xx: a malformed request */
    NGX_GAME_AUTH_OUT_UNAVAILABLE,  /* 503, 504: a dependency */
    NGX_GAME_AUTH_OUT_ERROR         /* anything else */
} ngx_game_auth_outcome_e;


static const char  *ngx_game_auth_outcomes[] = {
    "success", "failure", "locked", "invalid", "unavailable", "error", NULL
};


static ngx_int_t ngx_game_auth_metrics_log(ngx_http_request_t *r);


ngx_int_t
ngx_game_auth_metrics_init(ngx_conf_t *cf, ngx_game_auth_main_conf_t *amcf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    amcf->logins = ngx_game_metric_add(cf, NGX_GAME_METRIC_COUNTER,
                       "game_auth_logins_total",
                       "Password logins by outcome", NULL, "outcome",
                       ngx_game_auth_outcomes);
    amcf->hashes = ngx_game_metric_add(cf, NGX_GAME_METRIC_GAUGE,
                       "game_auth_hash_tasks",
                       "Password hashes queued or running in the thread "
                       "pools", NULL, NULL, NULL);

    if (amcf->logins == NULL || amcf->hashes == NULL) {
        return NGX_ERROR;
    }

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_game_auth_metrics_log;

    return NGX_OK;
}


static ngx_int_t
ngx_game_auth_metrics_log(ngx_http_request_t *r)
{
    ngx_uint_t                  status, outcome;
    ngx_game_auth_loc_conf_t   *alcf;
    ngx_game_auth_main_conf_t  *amcf;

    alcf = ngx_http_get_module_loc_conf(r, ngx_game_auth_module);
    if (r != r->main || alcf->endpoint != NGX_GAME_AUTH_LOGIN) {
        return NGX_OK;
    }

    amcf = ngx_http_get_module_main_conf(r, ngx_game_auth_module);
    status = r->err_status ? r->err_status : r->headers_out.status;

    if (status == NGX_HTTP_OK) {
        outcome = NGX_GAME_AUTH_OUT_SUCCESS;

    } else if (status == NGX_HTTP_UNAUTHORIZED) {
        outcome = NGX_GAME_AUTH_OUT_FAILURE;

    } else if (status == NGX_HTTP_TOO_MANY_REQUESTS) {
        outcome = NGX_GAME_AUTH_OUT_LOCKED;

    } else if (status == NGX_HTTP_SERVICE_UNAVAILABLE
               || status == NGX_HTTP_GATEWAY_TIME_OUT)
    {
        outcome = NGX_GAME_AUTH_OUT_UNAVAILABLE;

    } else if (status >= 400 && status < 500) {
        outcome = NGX_GAME_AUTH_OUT_INVALID;

    } else {
        outcome = NGX_GAME_AUTH_OUT_ERROR;
    }

    ngx_game_metric_inc(amcf->logins, 0, outcome, 1);

    return NGX_OK;
}
