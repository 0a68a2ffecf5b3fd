
/*
 * The results consumer: game servers publish one entry per match on the
 * stream "<allocator prefix>results" (gameserver/PROTOCOL.md); this timer
 * turns each into ratings, experience and the game session's end, in one
 * PostgreSQL transaction per match (mm_result_apply, sql/003), and
 * acknowledges the entry only after that transaction committed.
 *
 * All workers of all nginx instances read through one consumer group, so
 * that Redis hands each entry to one of them.  An entry whose transaction
 * failed for want of the database stays pending and is read again (our
 * own pending entries come first in every pass); the entries of a consumer
 * that died are claimed by another after a minute.  mm_result_apply is
 * idempotent per match, so an entry applied twice changes nothing.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_game_mm.h"


#define NGX_GAME_MM_RESULTS_BATCH   "50"
#define NGX_GAME_MM_RESULTS_GROUP   "nginx"
#define NGX_GAME_MM_RESULTS_IDLE    "60000"   /* ms before claiming */


typedef struct {
    ngx_game_mm_main_conf_t    *mmcf;
    ngx_pool_t                 *pass;
    ngx_uint_t                  pending;
    ngx_uint_t                  passes;
    ngx_str_t                   stream;
    ngx_str_t                   consumer;
    unsigned                    group_ready:1;
    unsigned                    quiet:1;
    unsigned                    own_done:1;     /* no pending of our own */
} ngx_game_mm_results_t;


typedef struct {
    ngx_game_mm_results_t      *res;
    u_char                      id[64];
    size_t                      id_len;
    u_char                      match[37];
    json_t                     *result;     /* parsed, owned by the pass */
} ngx_game_mm_result_entry_t;


static void ngx_game_mm_results_tick(ngx_event_t *ev);
static void ngx_game_mm_results_grouped(ngx_game_redis_cmd_t *cmd,
    ngx_int_t rc, redisReply *reply);
static void ngx_game_mm_results_read(ngx_game_mm_results_t *res,
    const char *from);
static void ngx_game_mm_results_got(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply);
static void ngx_game_mm_results_entries(ngx_game_mm_results_t *res,
    redisReply *entries);
static void ngx_game_mm_results_applied(ngx_game_pg_query_t *q, ngx_int_t rc,
    PGresult *pgres);
static void ngx_game_mm_results_finish(ngx_game_mm_result_entry_t *e);
static void ngx_game_mm_results_finished(ngx_game_redis_cmd_t *cmd,
    ngx_int_t rc, redisReply *reply);
static ngx_int_t ngx_game_mm_results_eval(ngx_game_mm_results_t *res,
    ngx_game_redis_script_t *script, ngx_game_redis_handler_pt handler,
    void *data, int argc, const char **argv, size_t *argvlen);
static void ngx_game_mm_results_ack(ngx_game_mm_result_entry_t *e);
static void ngx_game_mm_results_json_cleanup(void *data);
static void ngx_game_mm_results_acked(ngx_game_redis_cmd_t *cmd,
    ngx_int_t rc, redisReply *reply);
static ngx_int_t ngx_game_mm_results_cmd(ngx_game_mm_results_t *res,
    ngx_game_redis_handler_pt handler, void *data, int argc,
    const char **argv, size_t *argvlen);
static void ngx_game_mm_results_step_done(ngx_game_mm_results_t *res);


static ngx_game_pg_stmt_t  ngx_game_mm_result_stmt = {
    "game_mm_result_apply",
    "SELECT mm_result_apply($1::uuid, $2::jsonb)",
    2
};


static ngx_event_t             ngx_game_mm_results_timer;
static ngx_game_mm_results_t   ngx_game_mm_results;


ngx_int_t
ngx_game_mm_results_start(ngx_cycle_t *cycle, ngx_game_mm_main_conf_t *mmcf)
{
    u_char                 *p;
    ngx_game_mm_results_t  *res = &ngx_game_mm_results;

    if (mmcf->redis == NULL || mmcf->pg == NULL || mmcf->modes.nelts == 0) {
        return NGX_OK;
    }

    ngx_memzero(res, sizeof(ngx_game_mm_results_t));
    res->mmcf = mmcf;

    p = ngx_pnalloc(cycle->pool, mmcf->alloc_prefix.len + sizeof("results"));
    if (p == NULL) {
        return NGX_ERROR;
    }
    res->stream.data = p;
    res->stream.len = ngx_sprintf(p, "%Vresults", &mmcf->alloc_prefix) - p;

    p = ngx_pnalloc(cycle->pool, cycle->hostname.len + NGX_INT_T_LEN + 2);
    if (p == NULL) {
        return NGX_ERROR;
    }
    res->consumer.data = p;
    res->consumer.len = ngx_sprintf(p, "%V:%P", &cycle->hostname, ngx_pid)
                        - p;

    ngx_game_mm_results_timer.handler = ngx_game_mm_results_tick;
    ngx_game_mm_results_timer.log = cycle->log;
    ngx_game_mm_results_timer.data = res;
    ngx_game_mm_results_timer.cancelable = 1;

    ngx_add_timer(&ngx_game_mm_results_timer,
                  100 + ngx_random() % mmcf->tick);

    return NGX_OK;
}


static void
ngx_game_mm_results_tick(ngx_event_t *ev)
{
    ngx_game_mm_results_t  *res = ev->data;
    const char             *argv[6];
    size_t                  argvlen[6];

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    ngx_add_timer(ev, res->mmcf->tick);

    if (res->pass) {
        return;     /* the previous pass is still at work */
    }

    res->pass = ngx_create_pool(4096, ev->log);
    if (res->pass == NULL) {
        return;
    }

    res->pending = 0;
    res->passes++;

    if (!res->group_ready) {
        /* from the start of the stream: results written before the first
         * nginx came up are applied too (idempotently) */
        argv[0] = "XGROUP";
        argv[1] = "CREATE";
        argv[2] = (char *) res->stream.data;
        argv[3] = NGX_GAME_MM_RESULTS_GROUP;
        argv[4] = "0";
        argv[5] = "MKSTREAM";
        argvlen[0] = 6;
        argvlen[1] = 6;
        argvlen[2] = res->stream.len;
        argvlen[3] = sizeof(NGX_GAME_MM_RESULTS_GROUP) - 1;
        argvlen[4] = 1;
        argvlen[5] = 8;

        /* BUSYGROUP is the usual answer after the first worker */
        res->quiet = 1;
        (void) ngx_game_mm_results_cmd(res, ngx_game_mm_results_grouped, res,
                                       6, argv, argvlen);
        res->quiet = 0;
        ngx_game_mm_results_step_done(res);
        return;
    }

    /* our own unacknowledged entries first, then new ones */
    ngx_game_mm_results_read(res, res->own_done ? ">" : "0");
    ngx_game_mm_results_step_done(res);
}


static void
ngx_game_mm_results_grouped(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply)
{
    ngx_game_mm_results_t  *res = cmd->data;

    res->pending--;

    /* BUSYGROUP: another worker made it first, which is as good */
    if (rc == NGX_OK
        || (rc == NGX_GAME_QUERY_ERROR && reply && reply->len >= 9
            && ngx_strncmp(reply->str, "BUSYGROUP", 9) == 0))
    {
        res->group_ready = 1;
        ngx_game_mm_results_read(res, "0");
    }

    ngx_game_mm_results_step_done(res);
}


static void
ngx_game_mm_results_read(ngx_game_mm_results_t *res, const char *from)
{
    const char  *argv[10];
    size_t       argvlen[10];

    if (res->passes % 60 == 0) {
        /* now and then, take over what dead consumers left pending */
        argv[0] = "XAUTOCLAIM";
        argv[1] = (char *) res->stream.data;
        argv[2] = NGX_GAME_MM_RESULTS_GROUP;
        argv[3] = (char *) res->consumer.data;
        argv[4] = NGX_GAME_MM_RESULTS_IDLE;
        argv[5] = "0-0";
        argv[6] = "COUNT";
        argv[7] = NGX_GAME_MM_RESULTS_BATCH;
        argvlen[0] = 10;
        argvlen[1] = res->stream.len;
        argvlen[2] = sizeof(NGX_GAME_MM_RESULTS_GROUP) - 1;
        argvlen[3] = res->consumer.len;
        argvlen[4] = sizeof(NGX_GAME_MM_RESULTS_IDLE) - 1;
        argvlen[5] = 3;
        argvlen[6] = 5;
        argvlen[7] = sizeof(NGX_GAME_MM_RESULTS_BATCH) - 1;

        (void) ngx_game_mm_results_cmd(res, ngx_game_mm_results_got, res, 8,
                                       argv, argvlen);
        return;
    }

    argv[0] = "XREADGROUP";
    argv[1] = "GROUP";
    argv[2] = NGX_GAME_MM_RESULTS_GROUP;
    argv[3] = (char *) res->consumer.data;
    argv[4] = "COUNT";
    argv[5] = NGX_GAME_MM_RESULTS_BATCH;
    argv[6] = "STREAMS";
    argv[7] = (char *) res->stream.data;
    argv[8] = from;
    argvlen[0] = 10;
    argvlen[1] = 5;
    argvlen[2] = sizeof(NGX_GAME_MM_RESULTS_GROUP) - 1;
    argvlen[3] = res->consumer.len;
    argvlen[4] = 5;
    argvlen[5] = sizeof(NGX_GAME_MM_RESULTS_BATCH) - 1;
    argvlen[6] = 7;
    argvlen[7] = res->stream.len;
    argvlen[8] = ngx_strlen(from);

    (void) ngx_game_mm_results_cmd(res, ngx_game_mm_results_got, res, 9,
                                   argv, argvlen);
}


static void
ngx_game_mm_results_got(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply)
{
    redisReply             *entries;
    ngx_game_mm_results_t  *res = cmd->data;

    res->pending--;

    if (rc != NGX_OK || reply->type != REDIS_REPLY_ARRAY) {
        /* nothing new (nil) or Redis away: the next pass tries again */
        if (rc == NGX_OK && reply->type == REDIS_REPLY_NIL) {
            res->own_done = 1;
        }
        ngx_game_mm_results_step_done(res);
        return;
    }

    entries = NULL;

    if (reply->elements == 3 && reply->element[0]->type == REDIS_REPLY_STRING)
    {
        /* XAUTOCLAIM: next id, entries, deleted ids */
        entries = reply->element[1];

    } else if (reply->elements == 1
               && reply->element[0]->type == REDIS_REPLY_ARRAY
               && reply->element[0]->elements == 2)
    {
        /* XREADGROUP: [[stream, entries]] */
        entries = reply->element[0]->element[1];
    }

    if (entries && entries->type == REDIS_REPLY_ARRAY) {
        /* reading our own pending entries ("0") until none is left */
        if (entries->elements == 0) {
            res->own_done = 1;
        }
        ngx_game_mm_results_entries(res, entries);
    }

    ngx_game_mm_results_step_done(res);
}


static void
ngx_game_mm_results_entries(ngx_game_mm_results_t *res, redisReply *entries)
{
    size_t                       i, k;
    ngx_int_t                    rc;
    redisReply                  *entry, *fields, *match, *result;
    ngx_pool_cleanup_t          *cln;
    ngx_game_pg_query_t         *q;
    ngx_game_mm_result_entry_t  *e;

    for (i = 0; i < entries->elements; i++) {
        entry = entries->element[i];

        if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2
            || entry->element[0]->type != REDIS_REPLY_STRING
            || entry->element[0]->len >= sizeof(e->id))
        {
            continue;
        }

        e = ngx_pcalloc(res->pass, sizeof(ngx_game_mm_result_entry_t));
        if (e == NULL) {
            return;
        }

        e->res = res;
        e->id_len = entry->element[0]->len;
        ngx_memcpy(e->id, entry->element[0]->str, e->id_len);

        fields = entry->element[1];
        match = result = NULL;

        for (k = 0; fields->type == REDIS_REPLY_ARRAY
                    && k + 1 < fields->elements; k += 2)
        {
            if (fields->element[k]->type != REDIS_REPLY_STRING
                || fields->element[k + 1]->type != REDIS_REPLY_STRING)
            {
                continue;
            }

            if (ngx_strcmp(fields->element[k]->str, "match_id") == 0) {
                match = fields->element[k + 1];

            } else if (ngx_strcmp(fields->element[k]->str, "result") == 0) {
                result = fields->element[k + 1];
            }
        }

        /* a match the matchmaker did not make (a test, a direct bot):
         * nothing of ours to update */
        if (match == NULL || result == NULL
            || !ngx_game_mm_uuid_valid((u_char *) match->str, match->len))
        {
            ngx_game_mm_results_ack(e);
            continue;
        }

        ngx_memcpy(e->match, match->str, 36);

        /* the players to release afterwards; a result that is not JSON
         * goes to PostgreSQL all the same, which refuses it for good */
        e->result = json_loadb(result->str, result->len, 0, NULL);
        if (e->result) {
            cln = ngx_pool_cleanup_add(res->pass, 0);
            if (cln == NULL) {
                json_decref(e->result);
                return;
            }
            cln->handler = ngx_game_mm_results_json_cleanup;
            cln->data = e->result;
        }

        q = ngx_game_pg_query_create(res->pass, ngx_game_mm_results_timer.log,
                                     &ngx_game_mm_result_stmt);
        if (q == NULL) {
            return;
        }

        q->values[0] = (char *) ngx_pstrdup(res->pass,
                                      &(ngx_str_t) { match->len + 1,
                                                     (u_char *) match->str });
        q->values[1] = (char *) ngx_pstrdup(res->pass,
                                      &(ngx_str_t) { result->len + 1,
                                                     (u_char *) result->str });
        if (q->values[0] == NULL || q->values[1] == NULL) {
            return;
        }

        q->handler = ngx_game_mm_results_applied;
        q->data = e;

        res->pending++;
        rc = ngx_game_pg_query_run(res->mmcf->pg, q);
        if (rc != NGX_AGAIN) {
            res->pending--;
        }
    }
}


static void
ngx_game_mm_results_applied(ngx_game_pg_query_t *q, ngx_int_t rc,
    PGresult *pgres)
{
    ngx_game_mm_result_entry_t  *e = q->data;
    ngx_game_mm_results_t       *res = e->res;

    res->pending--;

    if (rc == NGX_OK) {
        ngx_log_error(NGX_LOG_INFO, ngx_game_mm_results_timer.log, 0,
                      "game mm: result %*s: %s", e->id_len, e->id,
                      PQntuples(pgres) ? PQgetvalue(pgres, 0, 0) : "?");
        ngx_game_mm_results_finish(e);

    } else if (rc == NGX_GAME_QUERY_ERROR) {
        /* the database refused this result for good (the core logged
         * why): retrying cannot help, so it is acknowledged and dropped */
        ngx_log_error(NGX_LOG_ERR, ngx_game_mm_results_timer.log, 0,
                      "game mm: result %*s refused by the database, "
                      "dropped", e->id_len, e->id);
        ngx_game_mm_results_ack(e);

    } else {
        /* unavailable or timed out: it stays pending; read our pending
         * entries again from the next pass on */
        res->own_done = 0;
    }

    ngx_game_mm_results_step_done(res);
}


/*
 * End the players' tickets (finish.lua) so that they may queue again, then
 * acknowledge.  Both steps are idempotent: if Redis fails between them,
 * the entry comes back and is applied and finished again, changing
 * nothing.
 */

static void
ngx_game_mm_results_finish(ngx_game_mm_result_entry_t *e)
{
    int           argc;
    size_t        i;
    json_t       *players, *p, *id, *reason;
    const char   *argv[3 + GAME_MM_MAX_MEMBERS];
    size_t        argvlen[3 + GAME_MM_MAX_MEMBERS];
    ngx_game_mm_results_t  *res = e->res;

    reason = json_object_get(e->result, "reason");

    argv[0] = (char *) res->mmcf->prefix.data;
    argvlen[0] = res->mmcf->prefix.len;
    argv[1] = (char *) e->match;
    argvlen[1] = 36;
    argv[2] = (json_is_string(reason)
               && ngx_strcmp(json_string_value(reason), "abort") == 0)
              ? "failed" : "finished";
    argvlen[2] = ngx_strlen(argv[2]);
    argc = 3;

    players = json_object_get(e->result, "players");

    json_array_foreach(players, i, p) {
        id = json_object_get(p, "id");
        if (argc < 3 + GAME_MM_MAX_MEMBERS && json_is_string(id)) {
            argv[argc] = json_string_value(id);
            argvlen[argc] = json_string_length(id);
            argc++;
        }
    }

    res->pending++;

    if (ngx_game_mm_results_eval(res, &ngx_game_mm_lua_finish,
                                 ngx_game_mm_results_finished, e, argc, argv,
                                 argvlen)
        != NGX_OK)
    {
        res->pending--;
        res->own_done = 0;
    }
}


static void
ngx_game_mm_results_finished(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply)
{
    ngx_game_mm_result_entry_t  *e = cmd->data;
    ngx_game_mm_results_t       *res = e->res;

    res->pending--;

    if (rc == NGX_OK) {
        ngx_game_mm_results_ack(e);

    } else {
        res->own_done = 0;
    }

    ngx_game_mm_results_step_done(res);
}


static ngx_int_t
ngx_game_mm_results_eval(ngx_game_mm_results_t *res,
    ngx_game_redis_script_t *script, ngx_game_redis_handler_pt handler,
    void *data, int argc, const char **argv, size_t *argvlen)
{
    ngx_game_redis_cmd_t  *cmd;

    cmd = ngx_game_redis_cmd_create(res->pass, ngx_game_mm_results_timer.log);
    if (cmd == NULL) {
        return NGX_ERROR;
    }

    cmd->handler = handler;
    cmd->data = data;

    return ngx_game_redis_eval(res->mmcf->redis, cmd, script, 0, argc, argv,
                               argvlen) == NGX_AGAIN ? NGX_OK : NGX_ERROR;
}


static void
ngx_game_mm_results_ack(ngx_game_mm_result_entry_t *e)
{
    const char  *argv[4];
    size_t       argvlen[4];

    argv[0] = "XACK";
    argv[1] = (char *) e->res->stream.data;
    argv[2] = NGX_GAME_MM_RESULTS_GROUP;
    argv[3] = (char *) e->id;
    argvlen[0] = 4;
    argvlen[1] = e->res->stream.len;
    argvlen[2] = sizeof(NGX_GAME_MM_RESULTS_GROUP) - 1;
    argvlen[3] = e->id_len;

    (void) ngx_game_mm_results_cmd(e->res, ngx_game_mm_results_acked, e->res,
                                   4, argv, argvlen);
}


static void
ngx_game_mm_results_acked(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply)
{
    ngx_game_mm_results_t  *res = cmd->data;

    res->pending--;
    ngx_game_mm_results_step_done(res);
}


static ngx_int_t
ngx_game_mm_results_cmd(ngx_game_mm_results_t *res,
    ngx_game_redis_handler_pt handler, void *data, int argc,
    const char **argv, size_t *argvlen)
{
    ngx_game_redis_cmd_t  *cmd;

    cmd = ngx_game_redis_cmd_create(res->pass, ngx_game_mm_results_timer.log);
    if (cmd == NULL) {
        return NGX_ERROR;
    }

    cmd->handler = handler;
    cmd->data = data;
    cmd->quiet = res->quiet;

    res->pending++;

    if (ngx_game_redis_cmd_run(res->mmcf->redis, cmd, argc, argv, argvlen)
        != NGX_AGAIN)
    {
        res->pending--;
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_game_mm_results_step_done(ngx_game_mm_results_t *res)
{
    if (res->pending || res->pass == NULL) {
        return;
    }

    ngx_destroy_pool(res->pass);
    res->pass = NULL;
}


static void
ngx_game_mm_results_json_cleanup(void *data)
{
    json_decref(data);
}
