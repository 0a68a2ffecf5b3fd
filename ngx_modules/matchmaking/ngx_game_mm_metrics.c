
/*
 * The matchmaker's metrics.  Events are counted where they happen, by the
 * worker holding a queue's lease: matches formed and the time their
 * tickets waited, per mode, and allocations refused, per reason.  States
 * live in Redis and are read when Prometheus scrapes (metrics.lua):
 * tickets queued and matches in progress per queue, the fleet's servers
 * by region and state, and the players seated in matches being played.
 *
 * Label values are bounded by the configuration: queues and regions are
 * the declared ones, states the allocator's; a server in a region no mode
 * serves counts as region "other".
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_game_mm.h"


typedef struct {
    ngx_game_metrics_scrape_t  *scrape;
    ngx_game_mm_main_conf_t    *mmcf;
} ngx_game_mm_scrape_t;


static const char  *ngx_game_mm_failures[] = {
    "no_server",        /* no Ready server in the region: tickets wait */
    "fenced",           /* the lease moved on mid-pass */
    "gone",             /* tickets cancelled or expired meanwhile */
    "error",            /* Redis failed or answered nonsense */
    NULL
};

/* the allocator's states, and "Lost" for a server without a heartbeat */
static const char  *ngx_game_mm_states[] = {
    "Starting", "Ready", "Allocated", "Playing", "Finished", "Shutdown",
    "Lost", NULL
};


static ngx_int_t ngx_game_mm_metrics_collect(ngx_game_metrics_scrape_t *s,
    void *data);
static void ngx_game_mm_metrics_read(ngx_game_redis_cmd_t *cmd,
    ngx_int_t rc, redisReply *reply);
static u_char *ngx_game_mm_metrics_text(ngx_game_mm_main_conf_t *mmcf,
    json_t *doc, u_char *p, u_char *last);
static ngx_uint_t ngx_game_mm_metrics_region_known(
    ngx_game_mm_main_conf_t *mmcf, const char *region);


ngx_int_t
ngx_game_mm_metrics_init(ngx_conf_t *cf, ngx_game_mm_main_conf_t *mmcf)
{
    ngx_uint_t           i;
    ngx_game_metric_t   *families[2];
    ngx_game_mm_mode_t  *modes;

    mmcf->m_matches = ngx_game_metric_add(cf, NGX_GAME_METRIC_COUNTER,
        "game_mm_matches_total",
        "Matches formed and given a server, by mode", "mode", NULL, NULL);
    mmcf->m_wait = ngx_game_metric_add(cf, NGX_GAME_METRIC_HISTOGRAM,
        "game_mm_time_to_match_seconds",
        "How long the tickets of a formed match waited, by mode",
        "mode", NULL, NULL);
    mmcf->m_failures = ngx_game_metric_add(cf, NGX_GAME_METRIC_COUNTER,
        "game_mm_allocation_failures_total",
        "Matches formed but not placed on a server, by reason",
        NULL, "reason", ngx_game_mm_failures);

    if (mmcf->m_matches == NULL || mmcf->m_wait == NULL
        || mmcf->m_failures == NULL)
    {
        return NGX_ERROR;
    }

    /* a mode's index in the configuration is its label value's */
    families[0] = mmcf->m_matches;
    families[1] = mmcf->m_wait;
    modes = mmcf->modes.elts;

    for (i = 0; i < mmcf->modes.nelts; i++) {
        if (ngx_game_metric_values(cf, families, 2, &modes[i].name)
            != (ngx_int_t) i)
        {
            return NGX_ERROR;
        }
    }

    return ngx_game_metrics_collector_add(cf, ngx_game_mm_metrics_collect,
                                          mmcf);
}


void
ngx_game_mm_metrics_failure(ngx_game_mm_main_conf_t *mmcf,
    ngx_uint_t reason)
{
    ngx_game_metric_inc(mmcf->m_failures, 0, reason, 1);
}


/* a match placed: "enqueued" are its tickets' joining times (ms) */

void
ngx_game_mm_metrics_matched(ngx_game_mm_main_conf_t *mmcf,
    ngx_game_mm_mode_t *mode, int64_t *enqueued, ngx_uint_t n)
{
    int64_t      now;
    ngx_uint_t   i, m;
    ngx_time_t  *tp;

    m = mode - (ngx_game_mm_mode_t *) mmcf->modes.elts;
    tp = ngx_timeofday();
    now = (int64_t) tp->sec * 1000 + tp->msec;

    ngx_game_metric_inc(mmcf->m_matches, m, 0, 1);

    for (i = 0; i < n; i++) {
        ngx_game_metric_observe(mmcf->m_wait, m, 0,
                                (ngx_msec_t) ngx_max(now - enqueued[i], 0));
    }
}


/* the scrape */

static ngx_int_t
ngx_game_mm_metrics_collect(ngx_game_metrics_scrape_t *s, void *data)
{
    ngx_game_mm_main_conf_t *mmcf = data;

    int                    argc;
    u_char                *p;
    size_t                 len;
    ngx_int_t              rc;
    ngx_uint_t             i, k, n;
    ngx_pool_t            *pool;
    ngx_str_t             *regions;
    const char           **argv;
    size_t                *argvlen;
    ngx_game_mm_mode_t    *modes;
    ngx_game_redis_cmd_t  *cmd;
    ngx_game_mm_scrape_t  *ms;

    if (mmcf->redis == NULL) {
        return NGX_ERROR;
    }

    pool = ngx_game_metrics_scrape_pool(s);
    modes = mmcf->modes.elts;

    n = 0;
    for (i = 0; i < mmcf->modes.nelts; i++) {
        n += modes[i].regions.nelts;
    }

    /* the queues beyond what one command carries are left out */
    n = ngx_min(n, NGX_GAME_REDIS_MAX_ARGS - 5);

    argv = ngx_palloc(pool, (n + 2) * sizeof(char *));
    argvlen = ngx_palloc(pool, (n + 2) * sizeof(size_t));
    ms = ngx_palloc(pool, sizeof(ngx_game_mm_scrape_t));
    cmd = ngx_game_redis_cmd_create(pool, ngx_cycle->log);
    if (argv == NULL || argvlen == NULL || ms == NULL || cmd == NULL) {
        return NGX_ERROR;
    }

    argv[0] = (char *) mmcf->prefix.data;
    argvlen[0] = mmcf->prefix.len;
    argv[1] = (char *) mmcf->alloc_prefix.data;
    argvlen[1] = mmcf->alloc_prefix.len;
    argc = 2;

    for (i = 0; i < mmcf->modes.nelts; i++) {
        regions = modes[i].regions.elts;

        for (k = 0; k < modes[i].regions.nelts && (ngx_uint_t) argc < n + 2;
             k++)
        {
            len = modes[i].name.len + 1 + regions[k].len;
            p = ngx_pnalloc(pool, len);
            if (p == NULL) {
                return NGX_ERROR;
            }

            ngx_sprintf(p, "%V:%V", &modes[i].name, &regions[k]);
            argv[argc] = (char *) p;
            argvlen[argc++] = len;
        }
    }

    ms->scrape = s;
    ms->mmcf = mmcf;
    cmd->handler = ngx_game_mm_metrics_read;
    cmd->data = ms;

    rc = ngx_game_redis_eval(mmcf->redis, cmd, &ngx_game_mm_lua_metrics, 0,
                             argc, argv, argvlen);
    if (rc == NGX_AGAIN) {
        return NGX_AGAIN;
    }

    ngx_game_mm_metrics_read(cmd, rc == NGX_OK ? NGX_ERROR : rc, NULL);

    return NGX_OK;
}


static void
ngx_game_mm_metrics_read(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply)
{
    ngx_game_mm_scrape_t *ms = cmd->data;

    u_char        *p, *last;
    size_t         size;
    json_t        *doc;
    ngx_str_t      text;
    json_error_t   err;

    doc = NULL;

    if (rc == NGX_OK && reply && reply->type == REDIS_REPLY_STRING) {
        doc = json_loadb(reply->str, reply->len, 0, &err);
    }

    /* every line fits in 256 bytes: names are short, label values are
     * ids of at most 64 characters (the allocator's rule) */
    size = 1024 + (reply && reply->type == REDIS_REPLY_STRING
                   ? 8 * reply->len : 0);

    p = ngx_pnalloc(ngx_game_metrics_scrape_pool(ms->scrape), size);
    if (p == NULL) {
        json_decref(doc);
        ngx_game_metrics_collected(ms->scrape, NULL);
        return;
    }

    last = p + size;
    text.data = p;

    p = ngx_slprintf(p, last,
            "# HELP game_mm_collector_up Whether the matchmaker's Redis "
            "answered this scrape\n"
            "# TYPE game_mm_collector_up gauge\n"
            "game_mm_collector_up %d\n", doc != NULL);

    if (doc) {
        p = ngx_game_mm_metrics_text(ms->mmcf, doc, p, last);
        json_decref(doc);
    }

    text.len = p - text.data;
    ngx_game_metrics_collected(ms->scrape, &text);
}


static u_char *
ngx_game_mm_metrics_text(ngx_game_mm_main_conf_t *mmcf, json_t *doc,
    u_char *p, u_char *last)
{
    json_t       *queues, *servers, *seated, *v, *states;
    const char   *key, *region;
    ngx_uint_t    s;
    json_int_t    other[sizeof(ngx_game_mm_states) / sizeof(char *)];
    json_int_t    n, other_seated;

    queues = json_object_get(doc, "queues");
    servers = json_object_get(doc, "servers");
    seated = json_object_get(doc, "seated");

    p = ngx_slprintf(p, last,
            "# HELP game_mm_tickets_queued Tickets waiting in a queue\n"
            "# TYPE game_mm_tickets_queued gauge\n");

    json_object_foreach(queues, key, v) {
        p = ngx_slprintf(p, last, "game_mm_tickets_queued{queue=\"%s\"} %L\n",
                         key, (int64_t) json_integer_value(
                                            json_array_get(v, 0)));
    }

    p = ngx_slprintf(p, last,
            "# HELP game_mm_matches_active Matches of a queue not yet over\n"
            "# TYPE game_mm_matches_active gauge\n");

    json_object_foreach(queues, key, v) {
        p = ngx_slprintf(p, last, "game_mm_matches_active{queue=\"%s\"} %L\n",
                         key, (int64_t) json_integer_value(
                                            json_array_get(v, 1)));
    }

    p = ngx_slprintf(p, last,
            "# HELP game_fleet_servers Game servers registered with the "
            "allocator, by region and state\n"
            "# TYPE game_fleet_servers gauge\n");

    ngx_memzero(other, sizeof(other));

    json_object_foreach(servers, region, states) {
        for (s = 0; ngx_game_mm_states[s]; s++) {
            n = json_integer_value(json_object_get(states,
                                                   ngx_game_mm_states[s]));

            if (!ngx_game_mm_metrics_region_known(mmcf, region)) {
                other[s] += n;
                continue;
            }

            p = ngx_slprintf(p, last,
                             "game_fleet_servers{region=\"%s\",state=\"%s\"}"
                             " %L\n", region, ngx_game_mm_states[s],
                             (int64_t) n);
        }

    }

    for (s = 0; ngx_game_mm_states[s]; s++) {
        if (other[s]) {
            p = ngx_slprintf(p, last,
                             "game_fleet_servers{region=\"other\","
                             "state=\"%s\"} %L\n", ngx_game_mm_states[s],
                             (int64_t) other[s]);
        }
    }

    p = ngx_slprintf(p, last,
            "# HELP game_fleet_players_seated Players seated in matches "
            "being played, by region\n"
            "# TYPE game_fleet_players_seated gauge\n");

    other_seated = 0;

    json_object_foreach(seated, region, v) {
        if (!ngx_game_mm_metrics_region_known(mmcf, region)) {
            other_seated += json_integer_value(v);
            continue;
        }

        p = ngx_slprintf(p, last,
                         "game_fleet_players_seated{region=\"%s\"} %L\n",
                         region, (int64_t) json_integer_value(v));
    }

    if (other_seated) {
        p = ngx_slprintf(p, last,
                         "game_fleet_players_seated{region=\"other\"} %L\n",
                         (int64_t) other_seated);
    }

    return p;
}


static ngx_uint_t
ngx_game_mm_metrics_region_known(ngx_game_mm_main_conf_t *mmcf,
    const char *region)
{
    size_t               len;
    ngx_str_t           *regions;
    ngx_uint_t           i, k;
    ngx_game_mm_mode_t  *modes;

    len = ngx_strlen(region);
    modes = mmcf->modes.elts;

    for (i = 0; i < mmcf->modes.nelts; i++) {
        regions = modes[i].regions.elts;

        for (k = 0; k < modes[i].regions.nelts; k++) {
            if (regions[k].len == len
                && ngx_strncmp(regions[k].data, region, len) == 0)
            {
                return 1;
            }
        }
    }

    return 0;
}
