
/*
 * The results consumer: game servers publish one entry per match on the
 * stream "<allocator prefix>results" (gameserver/PROTOCOL.md); this module
 * reads it through the core's event bus (ngx_game_bus_add(), group
 * "nginx") and, for each entry:
 *
 *   1. reads the match's record in Redis (match.lua wrote it: queue,
 *      server, roster), if it is still there;
 *   2. applies the result in one PostgreSQL transaction (mm_result_apply,
 *      sql/004): session closed, per-player stats, ratings, experience.
 *      The function opens the session from the Redis record when the
 *      matcher could not (the database was down then), refuses a result
 *      whose server is not the match's server, and answers "duplicate"
 *      for a match already applied: applying is idempotent per match;
 *   3. ends the match's tickets (finish.lua), so that its players may
 *      queue again: "finished", or "failed" with reason "aborted" or
 *      "no_show" for players who never joined;
 *   4. publishes what the match meant for each player (win, loss, draw,
 *      abandoned, flagged, kills, ratings) on mm:outcomes, once per match
 *      (publish.lua): rewards, progression and leaderboards read that.
 *
 * The bus acknowledges the entry after every step (NGX_OK).  A database or
 * Redis outage leaves it pending, delivered again later (NGX_AGAIN); an
 * entry that can never apply (not JSON, a result from the wrong server,
 * refused by the database) goes to the dead-letter stream "<stream>:dead"
 * (NGX_DECLINED).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_game_mm.h"


typedef struct {
    ngx_game_bus_entry_t       *entry;
    ngx_game_mm_main_conf_t    *mmcf;
    u_char                      match[37];
    ngx_str_t                  *server;
    ngx_str_t                  *text;       /* the result, as published */
    json_t                     *result;
    u_char                     *session;    /* JSON from Redis, or NULL */
    ngx_str_t                   outcome;    /* mm_result_apply's answer */
} ngx_game_mm_result_t;


/* how long publish.lua remembers a match it published: a week, like the
 * game servers' guard on their results */
#define NGX_GAME_MM_OUTCOME_GUARD  "604800"


static void ngx_game_mm_result_handler(ngx_game_bus_entry_t *e);
static void ngx_game_mm_result_record(ngx_game_redis_cmd_t *cmd,
    ngx_int_t rc, redisReply *reply);
static void ngx_game_mm_result_apply(ngx_game_mm_result_t *res);
static void ngx_game_mm_result_applied(ngx_game_pg_query_t *q, ngx_int_t rc,
    PGresult *pgres);
static void ngx_game_mm_result_finish(ngx_game_mm_result_t *res);
static void ngx_game_mm_result_finished(ngx_game_redis_cmd_t *cmd,
    ngx_int_t rc, redisReply *reply);
static void ngx_game_mm_result_publish(ngx_game_mm_result_t *res);
static void ngx_game_mm_result_published(ngx_game_redis_cmd_t *cmd,
    ngx_int_t rc, redisReply *reply);
static void ngx_game_mm_result_json_cleanup(void *data);


static ngx_game_pg_stmt_t  ngx_game_mm_result_stmt = {
    "game_mm_result_apply",
    "SELECT mm_result_apply($1::uuid, $2, $3::jsonb, $4::jsonb)",
    4
};


ngx_int_t
ngx_game_mm_results_init(ngx_conf_t *cf, ngx_game_mm_main_conf_t *mmcf)
{
    u_char               *p;
    ngx_game_bus_conf_t   bus;

    if (mmcf->redis == NULL || mmcf->pg == NULL || mmcf->modes.nelts == 0) {
        return NGX_OK;
    }

    bus = mmcf->results;

    p = ngx_pnalloc(cf->pool, mmcf->alloc_prefix.len + sizeof("results"));
    if (p == NULL) {
        return NGX_ERROR;
    }

    bus.stream.data = p;
    bus.stream.len = ngx_sprintf(p, "%Vresults%Z", &mmcf->alloc_prefix)
                     - p - 1;
    ngx_str_set(&bus.group, "nginx");
    bus.redis = mmcf->redis;
    bus.handler = ngx_game_mm_result_handler;
    bus.data = mmcf;
    bus.interval = mmcf->tick;

    return ngx_game_bus_add(cf, &bus) ? NGX_OK : NGX_ERROR;
}


static void
ngx_game_mm_result_handler(ngx_game_bus_entry_t *e)
{
    ngx_str_t             *match;
    const char            *argv[2];
    size_t                 argvlen[2];
    ngx_pool_cleanup_t    *cln;
    ngx_game_redis_cmd_t  *cmd;
    ngx_game_mm_result_t  *res;

    match = ngx_game_bus_field(e, "match_id");

    /* a match the matchmaker did not make (a test, a direct bot):
     * nothing of ours to update */
    if (match == NULL || !game_uuid_valid(match->data, match->len)) {
        ngx_game_bus_done(e, NGX_OK, NULL);
        return;
    }

    res = ngx_pcalloc(e->pool, sizeof(ngx_game_mm_result_t));
    cln = ngx_pool_cleanup_add(e->pool, 0);
    if (res == NULL || cln == NULL) {
        ngx_game_bus_done(e, NGX_AGAIN, NULL);
        return;
    }

    res->entry = e;
    res->mmcf = e->data;
    ngx_memcpy(res->match, match->data, 36);
    res->server = ngx_game_bus_field(e, "server_id");
    res->text = ngx_game_bus_field(e, "result");

    if (res->server == NULL || res->text == NULL) {
        ngx_game_bus_done(e, NGX_DECLINED, "no server_id or result");
        return;
    }

    res->result = json_loadb((char *) res->text->data, res->text->len, 0,
                             NULL);
    if (!json_is_object(res->result)) {
        json_decref(res->result);
        ngx_game_bus_done(e, NGX_DECLINED, "the result is not a JSON object");
        return;
    }

    cln->handler = ngx_game_mm_result_json_cleanup;
    cln->data = res->result;

    /* the match's record: its session, should PostgreSQL not have it */
    cmd = ngx_game_redis_cmd_create(e->pool, e->log);
    if (cmd == NULL) {
        ngx_game_bus_done(e, NGX_AGAIN, NULL);
        return;
    }

    cmd->handler = ngx_game_mm_result_record;
    cmd->data = res;

    argv[0] = "HGETALL";
    argvlen[0] = 7;
    argv[1] = ngx_pnalloc(e->pool, res->mmcf->prefix.len + 6 + 36);
    if (argv[1] == NULL) {
        ngx_game_bus_done(e, NGX_AGAIN, NULL);
        return;
    }
    argvlen[1] = ngx_sprintf((u_char *) argv[1], "%Vmatch:%s",
                             &res->mmcf->prefix, res->match)
                 - (u_char *) argv[1];

    if (ngx_game_redis_cmd_run(res->mmcf->redis, cmd, 2, argv, argvlen)
        != NGX_AGAIN)
    {
        ngx_game_bus_done(e, NGX_AGAIN, NULL);
    }
}


/*
 * The session as mm_result_apply wants it when it has to open it:
 * {"mode", "region", "server_id", "server_host", "server_port", "players"},
 * from the record match.lua wrote (queue = "mode:region", roster).
 */

static void
ngx_game_mm_result_record(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply)
{
    size_t                 i, len;
    json_t                *s, *roster;
    const char            *k, *colon;
    redisReply            *v;
    ngx_game_mm_result_t  *res = cmd->data;

    if (rc != NGX_OK || reply->type != REDIS_REPLY_ARRAY) {
        ngx_game_bus_done(res->entry, NGX_AGAIN, NULL);
        return;
    }

    s = json_object();
    if (s == NULL) {
        ngx_game_bus_done(res->entry, NGX_AGAIN, NULL);
        return;
    }

    for (i = 0; i + 1 < reply->elements; i += 2) {
        if (reply->element[i]->type != REDIS_REPLY_STRING
            || reply->element[i + 1]->type != REDIS_REPLY_STRING)
        {
            continue;
        }

        k = reply->element[i]->str;
        v = reply->element[i + 1];

        if (ngx_strcmp(k, "queue") == 0) {
            colon = ngx_strchr(v->str, ':');
            if (colon) {
                json_object_set_new(s, "mode",
                                    json_stringn(v->str, colon - v->str));
                json_object_set_new(s, "region", json_string(colon + 1));
            }

        } else if (ngx_strcmp(k, "server_id") == 0
                   || ngx_strcmp(k, "server_host") == 0
                   || ngx_strcmp(k, "server_port") == 0)
        {
            json_object_set_new(s, k, json_stringn(v->str, v->len));

        } else if (ngx_strcmp(k, "roster") == 0) {
            roster = json_loadb(v->str, v->len, 0, NULL);
            if (json_is_array(roster)) {
                json_object_set_new(s, "players", roster);
            } else {
                json_decref(roster);
            }
        }
    }

    if (json_object_size(s) == 6) {
        len = json_dumpb(s, NULL, 0, JSON_COMPACT);
        res->session = ngx_pnalloc(res->entry->pool, len + 1);
        if (res->session) {
            res->session[json_dumpb(s, (char *) res->session, len,
                                    JSON_COMPACT)] = '\0';
        }
    }

    json_decref(s);

    ngx_game_mm_result_apply(res);
}


static void
ngx_game_mm_result_apply(ngx_game_mm_result_t *res)
{
    ngx_game_pg_query_t   *q;
    ngx_game_bus_entry_t  *e = res->entry;

    q = ngx_game_pg_query_create(e->pool, e->log, &ngx_game_mm_result_stmt);
    if (q == NULL) {
        ngx_game_bus_done(e, NGX_AGAIN, NULL);
        return;
    }

    ngx_str_set(&q->trace, "mm-results");

    /* the bus keeps field values NUL-terminated */
    q->values[0] = (char *) res->match;
    q->values[1] = (char *) res->server->data;
    q->values[2] = (char *) res->text->data;
    q->values[3] = (char *) res->session;
    q->handler = ngx_game_mm_result_applied;
    q->data = res;

    if (ngx_game_pg_query_run(res->mmcf->pg, q) != NGX_AGAIN) {
        ngx_game_bus_done(e, NGX_AGAIN, NULL);
    }
}


static void
ngx_game_mm_result_applied(ngx_game_pg_query_t *q, ngx_int_t rc,
    PGresult *pgres)
{
    size_t                 len;
    json_t                *answer, *outcome;
    const char            *what;
    ngx_game_mm_result_t  *res = q->data;
    ngx_game_bus_entry_t  *e = res->entry;

    if (rc != NGX_OK) {
        /* refused for good, or the database is away: retried later */
        ngx_game_bus_failed(e, rc);
        return;
    }

    answer = PQntuples(pgres) ? json_loads(PQgetvalue(pgres, 0, 0), 0, NULL)
                              : NULL;
    outcome = json_object_get(answer, "outcome");
    what = json_is_string(outcome) ? json_string_value(outcome) : "?";

    if (ngx_strcmp(what, "wrong_server") == 0) {
        ngx_log_error(NGX_LOG_WARN, e->log, 0,
                      "game mm: result %V of match %s comes from server "
                      "\"%V\", which does not hold that match", &e->id,
                      res->match, res->server);
        json_decref(answer);
        ngx_game_bus_done(e, NGX_DECLINED, "wrong_server");
        return;
    }

    ngx_log_error(NGX_LOG_INFO, e->log, 0, "game mm: result %V of match %s: %s",
                  &e->id, res->match, what);

    /* what the match meant for its players, to publish once the tickets
     * are ended: kept in the entry's memory, as the reply goes */
    if (ngx_strcmp(what, "applied") == 0 || ngx_strcmp(what, "duplicate") == 0)
    {
        len = ngx_strlen(PQgetvalue(pgres, 0, 0));
        res->outcome.data = ngx_pnalloc(e->pool, len + 1);
        if (res->outcome.data == NULL) {
            json_decref(answer);
            ngx_game_bus_done(e, NGX_AGAIN, NULL);
            return;
        }
        ngx_memcpy(res->outcome.data, PQgetvalue(pgres, 0, 0), len + 1);
        res->outcome.len = len;
    }

    json_decref(answer);

    ngx_game_mm_result_finish(res);
}


static void
ngx_game_mm_result_finish(ngx_game_mm_result_t *res)
{
    int                    argc;
    size_t                 i;
    json_t                *players, *p, *id, *reason;
    const char            *argv[3 + GAME_MM_MAX_MEMBERS];
    size_t                 argvlen[3 + GAME_MM_MAX_MEMBERS];
    ngx_game_redis_cmd_t  *cmd;
    ngx_game_bus_entry_t  *e = res->entry;

    reason = json_object_get(res->result, "reason");

    argv[0] = (char *) res->mmcf->prefix.data;
    argvlen[0] = res->mmcf->prefix.len;
    argv[1] = (char *) res->match;
    argvlen[1] = 36;
    argv[2] = (json_is_string(reason)
               && ngx_strcmp(json_string_value(reason), "abort") == 0)
              ? "aborted" : "finished";
    argvlen[2] = ngx_strlen(argv[2]);
    argc = 3;

    /* the players who joined the server */
    players = json_object_get(res->result, "players");

    json_array_foreach(players, i, p) {
        id = json_object_get(p, "id");
        if (argc < 3 + GAME_MM_MAX_MEMBERS && json_is_string(id)) {
            argv[argc] = json_string_value(id);
            argvlen[argc] = json_string_length(id);
            argc++;
        }
    }

    cmd = ngx_game_redis_cmd_create(e->pool, e->log);
    if (cmd == NULL) {
        ngx_game_bus_done(e, NGX_AGAIN, NULL);
        return;
    }

    cmd->handler = ngx_game_mm_result_finished;
    cmd->data = res;

    if (ngx_game_redis_eval(res->mmcf->redis, cmd, &ngx_game_mm_lua_finish, 0,
                            argc, argv, argvlen)
        != NGX_AGAIN)
    {
        ngx_game_bus_done(e, NGX_AGAIN, NULL);
    }
}


static void
ngx_game_mm_result_finished(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply)
{
    ngx_game_mm_result_t  *res = cmd->data;

    if (rc != NGX_OK) {
        /* applying again is harmless: PostgreSQL answers "duplicate" */
        ngx_game_bus_done(res->entry, NGX_AGAIN, NULL);
        return;
    }

    /* {'OK', tickets ended, {ticket, ...}}: their players hear it */
    if (ngx_game_mm_reply_is(reply, "OK") && reply->elements == 3) {
        ngx_game_mm_notify_reply(res->mmcf, reply->element[2]);
    }

    ngx_game_mm_result_publish(res);
}


/*
 * mm:outcomes gets what the match meant for each player (publish.lua, once
 * per match): economy and leaderboards read it, never the game server's
 * raw result.  A match that was not ours has nothing to publish.
 */

static void
ngx_game_mm_result_publish(ngx_game_mm_result_t *res)
{
    ngx_game_redis_cmd_t   *cmd;
    ngx_game_bus_entry_t   *e = res->entry;
    ngx_game_redis_args_t   a;

    if (res->outcome.len == 0) {
        ngx_game_bus_done(e, NGX_OK, NULL);
        return;
    }

    cmd = ngx_game_redis_cmd_create(e->pool, e->log);
    if (cmd == NULL) {
        ngx_game_bus_done(e, NGX_AGAIN, NULL);
        return;
    }

    cmd->handler = ngx_game_mm_result_published;
    cmd->data = res;

    ngx_memzero(&a, sizeof(ngx_game_redis_args_t));
    ngx_game_redis_arg_str(&a, &res->mmcf->prefix);
    ngx_game_redis_arg(&a, res->match, 36);
    ngx_game_redis_arg_str(&a, &res->outcome);
    /* as long as a late result could still come for the match */
    ngx_game_redis_arg_lit(&a, NGX_GAME_MM_OUTCOME_GUARD);

    if (ngx_game_redis_eval(res->mmcf->redis, cmd, &ngx_game_mm_lua_publish,
                            0, a.argc, a.argv, a.argvlen)
        != NGX_AGAIN)
    {
        ngx_game_bus_done(e, NGX_AGAIN, NULL);
    }
}


static void
ngx_game_mm_result_published(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply)
{
    ngx_game_mm_result_t  *res = cmd->data;

    ngx_game_bus_done(res->entry, rc == NGX_OK ? NGX_OK : NGX_AGAIN, NULL);
}


static void
ngx_game_mm_result_json_cleanup(void *data)
{
    json_decref(data);
}
