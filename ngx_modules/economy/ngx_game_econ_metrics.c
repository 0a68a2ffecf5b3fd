
/*
 * The economy's metrics: purchases by outcome.  Read off the answer in the
 * log phase, like the auth service's logins, so that every way a purchase
 * ends (sold, replayed, refused by the SQL function, the database gone)
 * counts once.  Amounts are not metrics: the ledger (econ_transactions)
 * is where money is counted.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_game_econ.h"


typedef enum {
    NGX_GAME_ECON_OUT_COMPLETED = 0,
    NGX_GAME_ECON_OUT_REPLAYED,     /* a retry answered from its key */
    NGX_GAME_ECON_OUT_REFUSED,      /* 4xx: funds, limits, a bad request */
    NGX_GAME_ECON_OUT_LIMITED,      /* 429 */
    NGX_GAME_ECON_OUT_UNAVAILABLE,  /* 503, 504 */
    NGX_GAME_ECON_OUT_ERROR
} ngx_game_econ_outcome_e;


static const char  *ngx_game_econ_outcomes[] = {
    "completed", "replayed", "refused", "limited", "unavailable", "error",
    NULL
};


static ngx_int_t ngx_game_econ_metrics_log(ngx_http_request_t *r);


ngx_int_t
ngx_game_econ_metrics_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;
    ngx_game_econ_main_conf_t  *emcf;

    emcf = ngx_http_conf_get_module_main_conf(cf, ngx_game_econ_module);

    emcf->purchases = ngx_game_metric_add(cf, NGX_GAME_METRIC_COUNTER,
                          "game_econ_purchases_total",
                          "Store purchases by outcome", NULL, "outcome",
                          ngx_game_econ_outcomes);
    if (emcf->purchases == NULL) {
        return NGX_ERROR;
    }

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_game_econ_metrics_log;

    return NGX_OK;
}


static ngx_int_t
ngx_game_econ_metrics_log(ngx_http_request_t *r)
{
    ngx_uint_t                  status, outcome;
    ngx_game_econ_write_t      *w;
    ngx_http_core_loc_conf_t   *clcf;
    ngx_game_econ_main_conf_t  *emcf;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);
    if (r != r->main || clcf->handler != ngx_game_econ_purchase) {
        return NGX_OK;
    }

    emcf = ngx_http_get_module_main_conf(r, ngx_game_econ_module);
    w = ngx_http_get_module_ctx(r, ngx_game_econ_module);
    status = r->err_status ? r->err_status : r->headers_out.status;

    if (status >= 200 && status < 300) {
        outcome = (w && w->replayed) ? NGX_GAME_ECON_OUT_REPLAYED
                                     : NGX_GAME_ECON_OUT_COMPLETED;

    } else if (status == NGX_HTTP_TOO_MANY_REQUESTS) {
        outcome = NGX_GAME_ECON_OUT_LIMITED;

    } else if (status == NGX_HTTP_SERVICE_UNAVAILABLE
               || status == NGX_HTTP_GATEWAY_TIME_OUT)
    {
        outcome = NGX_GAME_ECON_OUT_UNAVAILABLE;

    } else if (status >= 400 && status < 500) {
        outcome = NGX_GAME_ECON_OUT_REFUSED;

    } else {
        outcome = NGX_GAME_ECON_OUT_ERROR;
    }

    ngx_game_metric_inc(emcf->purchases, 0, outcome, 1);

    return NGX_OK;
}
