
/*
 * Match rewards: the matchmaker publishes what each finished match meant
 * for its players on a stream (mm:outcomes, sql/006); the economy reads it
 * through the core's event bus, as its own consumer group ("economy"), and
 * applies every player's rewards of a match in one transaction
 * (econ_match_rewards, sql/005): soft currency and experience by result
 * (game_econ_match_reward), per-mode stats, achievements.  Flagged players
 * and abandoned matches get nothing; with game_econ_exclude_flagged, nor
 * do players the anti-cheat flagged for review (the outcome's
 * "under_review", mm_outcome_review_excluded, sql/008).  A (match,
 * player) is rewarded once, so an outcome delivered twice changes
 * nothing.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_game_econ.h"


static void ngx_game_econ_rewards_handler(ngx_game_bus_entry_t *e);
static void ngx_game_econ_rewarded(ngx_game_pg_query_t *q, ngx_int_t rc,
    PGresult *res);


static ngx_game_pg_stmt_t  ngx_game_econ_rewards_stmt = {
    "game_econ_match_rewards",
    "SELECT econ_match_rewards(CASE WHEN $5::boolean "
    "THEN mm_outcome_review_excluded($1::jsonb) ELSE $1::jsonb END, "
    "$2::jsonb, $3::bigint, $4::bigint)",
    5
};


ngx_int_t
ngx_game_econ_rewards_init(ngx_conf_t *cf, ngx_game_econ_main_conf_t *emcf)
{
    ngx_game_bus_conf_t  bus;

    if (emcf->redis == NULL || emcf->pg == NULL) {
        return NGX_OK;
    }

    bus = emcf->bus;
    bus.stream = emcf->outcomes;
    ngx_str_set(&bus.group, "economy");
    bus.redis = emcf->redis;
    bus.handler = ngx_game_econ_rewards_handler;
    bus.data = emcf;

    return ngx_game_bus_add(cf, &bus) ? NGX_OK : NGX_ERROR;
}


static void
ngx_game_econ_rewards_handler(ngx_game_bus_entry_t *e)
{
    char                       *text;
    json_t                     *rewards;
    ngx_str_t                  *outcome;
    ngx_game_pg_query_t        *q;
    ngx_game_econ_main_conf_t  *emcf = e->data;
    static const char          *names[] = { "win", "loss", "draw" };
    ngx_uint_t                  i;

    outcome = ngx_game_bus_field(e, "outcome");
    if (outcome == NULL) {
        ngx_game_bus_done(e, NGX_DECLINED, "no outcome");
        return;
    }

    /* what each result is worth, from the configuration */
    rewards = json_object();
    if (rewards == NULL) {
        ngx_game_bus_done(e, NGX_AGAIN, NULL);
        return;
    }

    for (i = 0; i < NGX_GAME_ECON_RESULTS; i++) {
        json_object_set_new(rewards, names[i],
                            json_pack("{s:I,s:I}",
                                      "soft", (json_int_t)
                                              emcf->reward_soft[i],
                                      "xp", (json_int_t)
                                            emcf->reward_xp[i]));
    }

    text = json_dumps(rewards, JSON_COMPACT);
    json_decref(rewards);

    q = ngx_game_pg_query_create(e->pool, e->log,
                                 &ngx_game_econ_rewards_stmt);
    if (text == NULL || q == NULL) {
        free(text);
        ngx_game_bus_done(e, NGX_AGAIN, NULL);
        return;
    }

    ngx_str_set(&q->trace, "econ-rewards");

    /* the bus keeps field values NUL-terminated for as long as the entry */
    q->values[0] = (char *) outcome->data;
    q->values[1] = (char *) ngx_pstrdup(e->pool, &(ngx_str_t) {
                                            ngx_strlen(text) + 1,
                                            (u_char *) text });
    q->values[2] = (char *) ngx_game_econ_number(e->pool, emcf->start_soft);
    q->values[3] = (char *) ngx_game_econ_number(e->pool, emcf->start_hard);
    q->values[4] = emcf->exclude_flagged ? "t" : "f";
    free(text);

    if (q->values[1] == NULL || q->values[2] == NULL || q->values[3] == NULL)
    {
        ngx_game_bus_done(e, NGX_AGAIN, NULL);
        return;
    }

    q->handler = ngx_game_econ_rewarded;
    q->data = e;

    if (ngx_game_pg_query_run(emcf->pg, q) != NGX_AGAIN) {
        ngx_game_bus_done(e, NGX_AGAIN, NULL);
    }
}


static void
ngx_game_econ_rewarded(ngx_game_pg_query_t *q, ngx_int_t rc, PGresult *res)
{
    ngx_game_bus_entry_t  *e = q->data;

    if (rc != NGX_OK) {
        /* an outcome the database cannot take, or the database is away */
        ngx_game_bus_failed(e, rc);
        return;
    }

    ngx_log_error(NGX_LOG_INFO, e->log, 0,
                  "game econ: rewards of outcome %V: %s", &e->id,
                  PQntuples(res) ? PQgetvalue(res, 0, 0) : "?");

    ngx_game_bus_done(e, NGX_OK, NULL);
}
