
/*
 * Scores from match results: the matchmaker publishes what each finished
 * match meant for its players on a stream (mm:outcomes, sql/006); the
 * leaderboards read it through the core's event bus, as their own
 * consumer group ("leaderboard"), never game:results itself.
 *
 * One outcome is one transaction (lb_apply_outcome, sql/007) on every
 * board at once, then one Redis script with the entries as they now are.
 * The entry is acknowledged only once Redis took them: when Redis is away
 * the outcome stays pending and comes again, PostgreSQL says the match
 * was taken already (it changes nothing twice) and answers the entries
 * again, and Redis takes them then.  Flagged players, abandoned results
 * and barred players get nothing; with game_lb_exclude_flagged, nor do
 * players the anti-cheat flagged for review (the outcome's
 * "under_review", mm_outcome_review_excluded, sql/008).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_game_lb.h"


static void ngx_game_lb_apply_handler(ngx_game_bus_entry_t *e);
static void ngx_game_lb_applied(ngx_game_pg_query_t *q, ngx_int_t rc,
    PGresult *res);
static void ngx_game_lb_apply_put(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply);


static ngx_game_pg_stmt_t  ngx_game_lb_apply_stmt = {
    "game_lb_apply_outcome",
    "SELECT lb_apply_outcome(CASE WHEN $4::boolean "
    "THEN mm_outcome_review_excluded($1::jsonb) ELSE $1::jsonb END, "
    "$2::jsonb, $3::boolean)",
    4
};


ngx_int_t
ngx_game_lb_apply_init(ngx_conf_t *cf, ngx_game_lb_main_conf_t *lmcf)
{
    ngx_game_bus_conf_t  bus;

    if (lmcf->boards.nelts == 0) {
        return NGX_OK;
    }

    bus = lmcf->bus;
    bus.stream = lmcf->outcomes;
    ngx_str_set(&bus.group, "leaderboard");
    bus.redis = lmcf->redis;
    bus.handler = ngx_game_lb_apply_handler;
    bus.data = lmcf;

    return ngx_game_bus_add(cf, &bus) ? NGX_OK : NGX_ERROR;
}


static void
ngx_game_lb_apply_handler(ngx_game_bus_entry_t *e)
{
    ngx_str_t                *outcome;
    ngx_game_pg_query_t      *q;
    ngx_game_lb_main_conf_t  *lmcf = e->data;

    outcome = ngx_game_bus_field(e, "outcome");
    if (outcome == NULL) {
        ngx_game_bus_done(e, NGX_DECLINED, "no outcome");
        return;
    }

    q = ngx_game_pg_query_create(e->pool, e->log, &ngx_game_lb_apply_stmt);
    if (q == NULL) {
        ngx_game_bus_done(e, NGX_AGAIN, NULL);
        return;
    }

    ngx_str_set(&q->trace, "lb-apply");

    /* the bus keeps field values NUL-terminated for as long as the entry */
    q->values[0] = (char *) outcome->data;
    q->values[1] = (char *) lmcf->boards_json.data;
    q->values[2] = lmcf->test_clock ? "true" : "false";
    q->values[3] = lmcf->exclude_flagged ? "true" : "false";
    q->handler = ngx_game_lb_applied;
    q->data = e;

    if (ngx_game_pg_query_run(lmcf->pg, q) != NGX_AGAIN) {
        ngx_game_bus_done(e, NGX_AGAIN, NULL);
    }
}


static void
ngx_game_lb_applied(ngx_game_pg_query_t *q, ngx_int_t rc, PGresult *res)
{
    size_t                    i, n;
    json_t                   *answer, *updates;
    ngx_int_t                 rv;
    ngx_str_t                 records;
    ngx_uint_t                k;
    json_error_t              err;
    ngx_game_lb_write_t      *w;
    ngx_game_bus_entry_t     *e = q->data;
    ngx_game_lb_main_conf_t  *lmcf = e->data;

    if (rc == NGX_GAME_QUERY_ERROR) {
        /* an outcome the database cannot take (the core logged why) */
        ngx_game_bus_done(e, NGX_DECLINED, "refused by the database");
        return;
    }

    if (rc != NGX_OK || PQntuples(res) != 1) {
        ngx_game_bus_done(e, NGX_AGAIN, NULL);
        return;
    }

    answer = json_loadb(PQgetvalue(res, 0, 0), PQgetlength(res, 0, 0), 0,
                        &err);
    updates = answer ? json_object_get(answer, "updates") : NULL;

    if (!json_is_array(updates)) {
        json_decref(answer);
        ngx_game_bus_done(e, NGX_DECLINED, "bad answer from the database");
        return;
    }

    n = json_array_size(updates);
    w = ngx_pcalloc(e->pool, (n + 1) * sizeof(ngx_game_lb_write_t));
    if (w == NULL) {
        json_decref(answer);
        ngx_game_bus_done(e, NGX_AGAIN, NULL);
        return;
    }

    k = 0;
    for (i = 0; i < n; i++) {
        rv = ngx_game_lb_write_json(lmcf, json_array_get(updates, i), &w[k]);
        if (rv == NGX_OK) {
            k++;

        } else if (rv == NGX_ERROR) {
            json_decref(answer);
            ngx_game_bus_done(e, NGX_DECLINED, "bad entry from the database");
            return;
        }
    }

    if (k == 0) {
        json_decref(answer);
        ngx_game_bus_done(e, NGX_OK, NULL);
        return;
    }

    /* the writes point into the answer: make the records before it goes */
    rv = ngx_game_lb_records(e->pool, w, k, &records);
    json_decref(answer);

    if (rv != NGX_OK) {
        ngx_game_bus_done(e, NGX_DECLINED, "an entry cannot be written");
        return;
    }

    if (ngx_game_lb_put(lmcf, e->pool, e->log, &records,
                        ngx_game_lb_apply_put, e)
        != NGX_AGAIN)
    {
        ngx_game_bus_done(e, NGX_AGAIN, NULL);
    }
}


static void
ngx_game_lb_apply_put(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply)
{
    ngx_game_bus_entry_t  *e = cmd->data;

    /* not taken: the outcome comes again and writes the entries again */
    ngx_game_bus_done(e, rc == NGX_OK ? NGX_OK : NGX_AGAIN, NULL);
}
