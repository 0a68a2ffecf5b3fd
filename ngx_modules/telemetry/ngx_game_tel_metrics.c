
/*
 * Telemetry's metrics, read from Redis when Prometheus scrapes: the
 * counters every nginx and the writer keep in <prefix>stats (events
 * accepted, rejected, refused for the backlog or the rate, written,
 * duplicates, dead-lettered, servers' events rejected) and the length of
 * the streams.  They are global, like the queues: every nginx reports the
 * same numbers (aggregate with max).  The label's values are this list,
 * whatever else the hash may hold.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_game_tel.h"


static const char  *ngx_game_tel_outcomes[] = {
    "accepted", "rejected", "refused_backlog", "refused_rate", "written",
    "duplicates", "dead_lettered", "server_rejected", NULL
};


typedef struct {
    ngx_game_metrics_scrape_t  *scrape;
    ngx_game_tel_main_conf_t   *tmcf;
} ngx_game_tel_scrape_t;


static ngx_int_t ngx_game_tel_metrics_collect(ngx_game_metrics_scrape_t *s,
    void *data);
static void ngx_game_tel_metrics_read(ngx_game_redis_cmd_t *cmd,
    ngx_int_t rc, redisReply *reply);


static ngx_game_redis_script_t  ngx_game_tel_metrics_lua = {
    "return {redis.call('HGETALL', ARGV[1]),\n"
    "        redis.call('XLEN', ARGV[2]), redis.call('XLEN', ARGV[3])}\n",
    0, ""
};


ngx_int_t
ngx_game_tel_metrics_init(ngx_conf_t *cf, ngx_game_tel_main_conf_t *tmcf)
{
    if (tmcf->redis == NULL) {
        return NGX_OK;
    }

    return ngx_game_metrics_collector_add(cf, ngx_game_tel_metrics_collect,
                                          tmcf);
}


static ngx_int_t
ngx_game_tel_metrics_collect(ngx_game_metrics_scrape_t *s, void *data)
{
    ngx_game_tel_main_conf_t *tmcf = data;

    ngx_int_t               rc;
    ngx_pool_t             *pool;
    ngx_game_redis_cmd_t   *cmd;
    ngx_game_redis_args_t   a;
    ngx_game_tel_scrape_t  *ts;

    if (ngx_game_tel_metrics_lua.len == 0) {
        ngx_game_tel_metrics_lua.len = ngx_strlen(ngx_game_tel_metrics_lua.text);
        ngx_game_redis_script_init(&ngx_game_tel_metrics_lua);
    }

    pool = ngx_game_metrics_scrape_pool(s);
    ts = ngx_palloc(pool, sizeof(ngx_game_tel_scrape_t));
    cmd = ngx_game_redis_cmd_create(pool, ngx_cycle->log);
    if (ts == NULL || cmd == NULL) {
        return NGX_ERROR;
    }

    ts->scrape = s;
    ts->tmcf = tmcf;
    cmd->handler = ngx_game_tel_metrics_read;
    cmd->data = ts;

    ngx_memzero(&a, sizeof(ngx_game_redis_args_t));
    ngx_game_redis_arg_str(&a, &tmcf->stats);
    ngx_game_redis_arg_str(&a, &tmcf->stream);
    ngx_game_redis_arg_str(&a, &tmcf->server_stream);

    rc = ngx_game_redis_eval(tmcf->redis, cmd, &ngx_game_tel_metrics_lua, 0,
                             a.argc, a.argv, a.argvlen);
    if (rc == NGX_AGAIN) {
        return NGX_AGAIN;
    }

    ngx_game_tel_metrics_read(cmd, NGX_ERROR, NULL);

    return NGX_OK;
}


static void
ngx_game_tel_metrics_read(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply)
{
    ngx_game_tel_scrape_t *ts = cmd->data;

    u_char      *p, *last;
    size_t       size, k;
    ngx_str_t    text;
    ngx_uint_t   i, ok;
    long long    n;
    redisReply  *h;

    size = 2048;
    p = ngx_pnalloc(ngx_game_metrics_scrape_pool(ts->scrape), size);
    if (p == NULL) {
        ngx_game_metrics_collected(ts->scrape, NULL);
        return;
    }

    text.data = p;
    last = p + size;

    ok = rc == NGX_OK && reply && reply->type == REDIS_REPLY_ARRAY
         && reply->elements == 3
         && reply->element[0]->type == REDIS_REPLY_ARRAY;

    p = ngx_slprintf(p, last,
            "# HELP game_tel_collector_up Whether telemetry's Redis answered "
            "this scrape\n# TYPE game_tel_collector_up gauge\n"
            "game_tel_collector_up %d\n", ok);

    if (!ok) {
        text.len = p - text.data;
        ngx_game_metrics_collected(ts->scrape, &text);
        return;
    }

    h = reply->element[0];

    p = ngx_slprintf(p, last,
            "# HELP game_tel_events_total Telemetry events by what became "
            "of them\n# TYPE game_tel_events_total counter\n");

    for (i = 0; ngx_game_tel_outcomes[i]; i++) {
        n = 0;
        for (k = 0; k + 1 < h->elements; k += 2) {
            if (ngx_strcmp(h->element[k]->str, ngx_game_tel_outcomes[i])
                == 0)
            {
                n = strtoll(h->element[k + 1]->str, NULL, 10);
            }
        }

        p = ngx_slprintf(p, last,
                         "game_tel_events_total{outcome=\"%s\"} %L\n",
                         ngx_game_tel_outcomes[i], (int64_t) n);
    }

    p = ngx_slprintf(p, last,
            "# HELP game_tel_stream_entries Batches waiting in telemetry's "
            "streams (trimmed as the writer acknowledges them)\n"
            "# TYPE game_tel_stream_entries gauge\n"
            "game_tel_stream_entries{stream=\"clients\"} %L\n"
            "game_tel_stream_entries{stream=\"servers\"} %L\n",
            (int64_t) reply->element[1]->integer,
            (int64_t) reply->element[2]->integer);

    text.len = p - text.data;
    ngx_game_metrics_collected(ts->scrape, &text);
}
