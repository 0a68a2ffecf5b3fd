
/*
 * The PostgreSQL pools' metrics: the families every pool counts in, and a
 * sampler for their gauges.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_game_pg_internal.h"


static void ngx_game_pg_metrics_sample(void *data);


ngx_int_t
ngx_game_pg_metrics_init(ngx_conf_t *cf, ngx_array_t *pools)
{
    ngx_int_t               v;
    ngx_uint_t              i;
    ngx_game_metric_t      *families[6];
    ngx_game_pg_pool_t    **pg;
    ngx_game_pg_metrics_t  *m;

    m = ngx_pcalloc(cf->pool, sizeof(ngx_game_pg_metrics_t));
    if (m == NULL) {
        return NGX_ERROR;
    }

    m->connections = ngx_game_metric_add(cf, NGX_GAME_METRIC_GAUGE,
        "game_pg_pool_connections",
        "PostgreSQL connections up, summed over the workers",
        "pool", NULL, NULL);
    m->in_flight = ngx_game_metric_add(cf, NGX_GAME_METRIC_GAUGE,
        "game_pg_pool_queries_in_flight",
        "Queries sent and not yet answered", "pool", NULL, NULL);
    m->queued = ngx_game_metric_add(cf, NGX_GAME_METRIC_GAUGE,
        "game_pg_pool_queries_queued",
        "Queries waiting for a connection", "pool", NULL, NULL);
    m->timeouts = ngx_game_metric_add(cf, NGX_GAME_METRIC_COUNTER,
        "game_pg_pool_timeouts_total",
        "Queries that got no answer within query_timeout",
        "pool", NULL, NULL);
    m->reconnects = ngx_game_metric_add(cf, NGX_GAME_METRIC_COUNTER,
        "game_pg_pool_reconnects_total",
        "Connections lost or failed, each followed by a new attempt",
        "pool", NULL, NULL);
    m->rejected = ngx_game_metric_add(cf, NGX_GAME_METRIC_COUNTER,
        "game_pg_pool_rejected_total",
        "Queries refused at once: the pool down or its queue full (503)",
        "pool", NULL, NULL);

    families[0] = m->connections;
    families[1] = m->in_flight;
    families[2] = m->queued;
    families[3] = m->timeouts;
    families[4] = m->reconnects;
    families[5] = m->rejected;

    pg = pools->elts;

    for (i = 0; i < pools->nelts; i++) {
        v = ngx_game_metric_values(cf, families, 6, &pg[i]->name);
        if (v == NGX_ERROR) {
            return NGX_ERROR;
        }

        pg[i]->metrics = m;
        pg[i]->metric = v;
    }

    return ngx_game_metrics_sampler_add(cf, ngx_game_pg_metrics_sample,
                                        pools);
}


static void
ngx_game_pg_metrics_sample(void *data)
{
    ngx_array_t *pools = data;

    ngx_uint_t              i, k, n;
    ngx_game_pg_pool_t    **pg;
    ngx_game_pg_metrics_t  *m;

    pg = pools->elts;

    for (i = 0; i < pools->nelts; i++) {
        m = pg[i]->metrics;
        n = 0;

        for (k = 0; pg[i]->conns && k < pg[i]->connections; k++) {
            n += pg[i]->conns[k].count;
        }

        ngx_game_metric_set(m->connections, pg[i]->metric, 0,
                            pg[i]->nconnected);
        ngx_game_metric_set(m->in_flight, pg[i]->metric, 0, n);
        ngx_game_metric_set(m->queued, pg[i]->metric, 0, pg[i]->nwaiting);
    }
}
