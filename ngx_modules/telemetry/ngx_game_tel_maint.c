
/*
 * The maintenance job: game_events' partitions made ahead and expired past
 * the retention, and the dedupe window moved on (sql/008: tel_maintain,
 * tel_maintain_dedupe).  Every worker of every nginx runs the timer; one
 * of them does the work: the one holding the lease in Redis (the script
 * below, after matchmaking's lease.lua).  Each new lease comes with a
 * fencing token from a counter that never goes back, and PostgreSQL
 * refuses a token older than the newest it saw: a holder that stalled
 * past its lease (a frozen worker, a partition) and wakes up cannot drop
 * or create anything another holder already decided on.
 *
 * Should Redis lose the counter (a restart without its data), the tokens
 * start again below PostgreSQL's; PostgreSQL then answers with its own,
 * and the counter is raised past it (and our lease let go), so that the
 * next lease is fresh and every older holder stays refused.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_game_tel.h"


typedef struct {
    ngx_game_tel_main_conf_t   *tmcf;
    ngx_event_t                 timer;
    ngx_pool_t                 *pass;
    ngx_uint_t                  pending;
    u_char                      fence[NGX_INT64_LEN + 1];
    u_char                      lease_key[128];
    u_char                      fence_key[128];
    ngx_str_t                   lease;
    ngx_str_t                   counter;
} ngx_game_tel_maint_t;


static void ngx_game_tel_maint_tick(ngx_event_t *ev);
static void ngx_game_tel_maint_leased(ngx_game_redis_cmd_t *cmd,
    ngx_int_t rc, redisReply *reply);
static ngx_int_t ngx_game_tel_maint_query(ngx_game_tel_maint_t *m,
    ngx_game_pg_stmt_t *stmt, const char **values);
static void ngx_game_tel_maint_done(ngx_game_pg_query_t *q, ngx_int_t rc,
    PGresult *res);
static void ngx_game_tel_maint_stale(ngx_game_tel_maint_t *m,
    const char *fence);
static void ngx_game_tel_maint_raised(ngx_game_redis_cmd_t *cmd,
    ngx_int_t rc, redisReply *reply);
static void ngx_game_tel_maint_step_done(ngx_game_tel_maint_t *m);


/* ARGV: lease key, fence key, holder, ttl ms.  {'OK', fence} | {'HELD'} */
static ngx_game_redis_script_t  ngx_game_tel_lease_lua = {
    "local cur = redis.call('HMGET', ARGV[1], 'holder', 'fence')\n"
    "if cur[1] == ARGV[3] then\n"
    "  redis.call('PEXPIRE', ARGV[1], ARGV[4])\n"
    "  return {'OK', cur[2]}\n"
    "end\n"
    "if cur[1] then return {'HELD', cur[1]} end\n"
    "local fence = tostring(redis.call('INCR', ARGV[2]))\n"
    "redis.call('HSET', ARGV[1], 'holder', ARGV[3], 'fence', fence)\n"
    "redis.call('PEXPIRE', ARGV[1], ARGV[4])\n"
    "return {'OK', fence}\n",
    0, ""
};


/* ARGV: lease key, fence key, holder, PostgreSQL's fence: the counter
 * goes past it, and a lease of ours is let go */
static ngx_game_redis_script_t  ngx_game_tel_raise_lua = {
    "if (tonumber(redis.call('GET', ARGV[2])) or 0) < tonumber(ARGV[4])\n"
    "then redis.call('SET', ARGV[2], ARGV[4]) end\n"
    "if redis.call('HGET', ARGV[1], 'holder') == ARGV[3] then\n"
    "  redis.call('DEL', ARGV[1])\n"
    "end\n"
    "return 1\n",
    0, ""
};


static ngx_game_pg_stmt_t  ngx_game_tel_maintain_stmt = {
    "game_tel_maintain",
    "SELECT tel_maintain($1::bigint, $2, $3::integer, "
    "($4 || ' milliseconds')::interval, ($5 || ' seconds')::interval, $6)",
    6
};

static ngx_game_pg_stmt_t  ngx_game_tel_maintain_dedupe_stmt = {
    "game_tel_maintain_dedupe",
    "SELECT tel_maintain_dedupe($1::bigint, ($2 || ' seconds')::interval)",
    2
};


static ngx_game_tel_maint_t  ngx_game_tel_maint;


ngx_int_t
ngx_game_tel_maint_start(ngx_cycle_t *cycle, ngx_game_tel_main_conf_t *tmcf)
{
    ngx_game_tel_maint_t  *m = &ngx_game_tel_maint;

    if (ngx_game_tel_lease_lua.len == 0) {
        ngx_game_tel_lease_lua.len = ngx_strlen(ngx_game_tel_lease_lua.text);
        ngx_game_redis_script_init(&ngx_game_tel_lease_lua);
        ngx_game_tel_raise_lua.len = ngx_strlen(ngx_game_tel_raise_lua.text);
        ngx_game_redis_script_init(&ngx_game_tel_raise_lua);
    }

    ngx_memzero(m, sizeof(ngx_game_tel_maint_t));
    m->tmcf = tmcf;

    m->lease.data = m->lease_key;
    m->lease.len = ngx_snprintf(m->lease_key, sizeof(m->lease_key),
                                "%Vmaint:lease", &tmcf->prefix)
                   - m->lease_key;
    m->counter.data = m->fence_key;
    m->counter.len = ngx_snprintf(m->fence_key, sizeof(m->fence_key),
                                  "%Vmaint:fence", &tmcf->prefix)
                     - m->fence_key;

    m->timer.handler = ngx_game_tel_maint_tick;
    m->timer.data = m;
    m->timer.log = cycle->log;
    /* idle work: an exiting worker does not wait for the next pass */
    m->timer.cancelable = 1;

    /* workers start together: spread the first passes over a second */
    ngx_add_timer(&m->timer, 100 + ngx_random() % 1000);

    return NGX_OK;
}


static void
ngx_game_tel_maint_tick(ngx_event_t *ev)
{
    u_char                     ttl[NGX_INT_T_LEN];
    ngx_game_redis_cmd_t      *cmd;
    ngx_game_redis_args_t      a;
    ngx_game_tel_maint_t      *m = ev->data;
    ngx_game_tel_main_conf_t  *tmcf = m->tmcf;

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    ngx_add_timer(ev, tmcf->maintenance);

    if (m->pass) {
        /* the last pass is still at work */
        return;
    }

    m->pass = ngx_create_pool(1024, ev->log);
    if (m->pass == NULL) {
        return;
    }

    m->pending = 0;

    ngx_memzero(&a, sizeof(ngx_game_redis_args_t));
    ngx_game_redis_arg_str(&a, &m->lease);
    ngx_game_redis_arg_str(&a, &m->counter);
    ngx_game_redis_arg_str(&a, ngx_game_instance_id());
    ngx_game_redis_arg(&a, ttl, ngx_sprintf(ttl, "%M", 3 * tmcf->maintenance)
                                - ttl);

    cmd = ngx_game_redis_cmd_create(m->pass, ev->log);
    if (cmd != NULL) {
        cmd->handler = ngx_game_tel_maint_leased;
        cmd->data = m;

        if (ngx_game_redis_eval(tmcf->redis, cmd, &ngx_game_tel_lease_lua, 0,
                                a.argc, a.argv, a.argvlen)
            == NGX_AGAIN)
        {
            m->pending++;
        }
    }

    ngx_game_tel_maint_step_done(m);
}


static void
ngx_game_tel_maint_leased(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply)
{
    u_char                    *p;
    const char                *values[6];
    redisReply                *fence;
    ngx_game_tel_maint_t      *m = cmd->data;
    ngx_game_tel_main_conf_t  *tmcf = m->tmcf;

    m->pending--;

    if (rc != NGX_OK || reply->type != REDIS_REPLY_ARRAY
        || reply->elements != 2
        || reply->element[0]->type != REDIS_REPLY_STRING
        || ngx_strcmp(reply->element[0]->str, "OK") != 0
        || reply->element[1]->type != REDIS_REPLY_STRING
        || reply->element[1]->len > NGX_INT64_LEN)
    {
        /* another holds it, or Redis is away: its holder does the work */
        ngx_game_tel_maint_step_done(m);
        return;
    }

    fence = reply->element[1];
    p = ngx_cpymem(m->fence, fence->str, fence->len);
    *p = '\0';

    values[0] = (char *) m->fence;
    values[1] = (char *) tmcf->period.data;
    values[2] = (char *) ngx_game_tel_number(m->pass, tmcf->ahead);
    values[3] = (char *) ngx_game_tel_number(m->pass, tmcf->accept_age
                                                      + tmcf->accept_skew);
    values[4] = (char *) ngx_game_tel_number(m->pass, tmcf->retention);
    values[5] = (char *) tmcf->expire_action.data;

    if (values[2] && values[3] && values[4]) {
        (void) ngx_game_tel_maint_query(m, &ngx_game_tel_maintain_stmt,
                                        values);
    }

    values[1] = (char *) ngx_game_tel_number(m->pass, tmcf->dedupe_window);

    if (values[1]) {
        (void) ngx_game_tel_maint_query(m, &ngx_game_tel_maintain_dedupe_stmt,
                                        values);
    }

    ngx_game_tel_maint_step_done(m);
}


static ngx_int_t
ngx_game_tel_maint_query(ngx_game_tel_maint_t *m, ngx_game_pg_stmt_t *stmt,
    const char **values)
{
    int                   i;
    ngx_game_pg_query_t  *q;

    q = ngx_game_pg_query_create(m->pass, m->timer.log, stmt);
    if (q == NULL) {
        return NGX_ERROR;
    }

    ngx_str_set(&q->trace, "tel-maint");

    for (i = 0; i < stmt->nparams; i++) {
        q->values[i] = values[i];
    }

    q->handler = ngx_game_tel_maint_done;
    q->data = m;

    if (ngx_game_pg_query_run(m->tmcf->writer_pg, q) != NGX_AGAIN) {
        return NGX_ERROR;
    }

    m->pending++;

    return NGX_OK;
}


static void
ngx_game_tel_maint_done(ngx_game_pg_query_t *q, ngx_int_t rc, PGresult *res)
{
    char                  *text;
    json_t                *report, *outcome;
    json_error_t           err;
    ngx_game_tel_maint_t  *m = q->data;

    m->pending--;

    if (rc != NGX_OK || PQntuples(res) != 1) {
        ngx_log_error(NGX_LOG_WARN, m->timer.log, 0,
                      "game tel: maintenance (%s) did not run; the next "
                      "pass tries again", q->stmt->name);
        ngx_game_tel_maint_step_done(m);
        return;
    }

    text = PQgetvalue(res, 0, 0);
    report = json_loads(text, 0, &err);
    outcome = json_object_get(report, "outcome");

    if (json_is_string(outcome)
        && ngx_strcmp(json_string_value(outcome), "stale") == 0)
    {
        ngx_game_tel_maint_stale(m, json_string_value(
                                        json_object_get(report, "fence")));

    } else if (json_integer_value(json_object_get(report, "created")) > 0
               || json_array_size(json_object_get(report, "expired")) > 0
               || json_is_integer(json_object_get(report, "rotated_to")))
    {
        ngx_log_error(NGX_LOG_NOTICE, m->timer.log, 0,
                      "game tel: maintenance (fence %s): %s", m->fence, text);

    } else {
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, m->timer.log, 0,
                       "game tel: maintenance (fence %s): %s", m->fence, text);
    }

    json_decref(report);
    ngx_game_tel_maint_step_done(m);
}


static void
ngx_game_tel_maint_stale(ngx_game_tel_maint_t *m, const char *fence)
{
    ngx_game_redis_cmd_t   *cmd;
    ngx_game_redis_args_t   a;

    ngx_log_error(NGX_LOG_WARN, m->timer.log, 0,
                  "game tel: maintenance fence %s is stale (PostgreSQL has "
                  "%s): the lease counter is raised", m->fence,
                  fence ? fence : "a newer one");

    if (fence == NULL) {
        return;
    }

    ngx_memzero(&a, sizeof(ngx_game_redis_args_t));
    ngx_game_redis_arg_str(&a, &m->lease);
    ngx_game_redis_arg_str(&a, &m->counter);
    ngx_game_redis_arg_str(&a, ngx_game_instance_id());
    ngx_game_redis_arg_cstr(&a, fence);

    cmd = ngx_game_redis_cmd_create(m->pass, m->timer.log);
    if (cmd == NULL) {
        return;
    }

    cmd->handler = ngx_game_tel_maint_raised;
    cmd->data = m;

    if (ngx_game_redis_eval(m->tmcf->redis, cmd, &ngx_game_tel_raise_lua, 0,
                            a.argc, a.argv, a.argvlen)
        == NGX_AGAIN)
    {
        m->pending++;
    }
}


static void
ngx_game_tel_maint_raised(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply)
{
    ngx_game_tel_maint_t  *m = cmd->data;

    m->pending--;
    ngx_game_tel_maint_step_done(m);
}


static void
ngx_game_tel_maint_step_done(ngx_game_tel_maint_t *m)
{
    if (m->pending || m->pass == NULL) {
        return;
    }

    ngx_destroy_pool(m->pass);
    m->pass = NULL;
}
