
/*
 * Seasons, removals and rebuilds, on a timer in every worker.
 *
 * Each tick, every worker asks PostgreSQL which season of each board is
 * live (lb_seasons_tick; with game_lb_clock test, by the test clock), so
 * that reads and writes agree on it.  One worker of all nginx instances
 * also holds the maintenance lease (a fenced lease in Redis, as the
 * matcher's) and does the work that must happen once:
 *
 *   - archive every season that is over (UTC boundaries): PostgreSQL
 *     moves it to leaderboard_archive with its final ranks in one
 *     transaction, and its Redis keys are dropped;
 *   - drop from Redis the entries PostgreSQL removed (leaderboard_outbox:
 *     erased players, admin removals);
 *   - look at every live season's meta in Redis: a season Redis lost
 *     (FLUSHALL, a restart without persistence, a recompute) is rebuilt
 *     from PostgreSQL, one batch per step (game_lb_rebuild_batch rows: one
 *     read, one script), readers answering 503 until it is done.  Writes
 *     from matches go on meanwhile: versions decide (ngx_game_lb_redis.c).
 *
 * A rebuild runs beside the ticks, which keep renewing the lease; it stops
 * when the lease is lost, and the next holder begins it again under its
 * own fence.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_game_lb.h"


#define NGX_GAME_LB_OUTBOX_BATCH  200


typedef struct {
    ngx_game_lb_main_conf_t    *lmcf;
    ngx_event_t                 timer;
    ngx_log_t                  *log;

    ngx_pool_t                 *pass;           /* a tick in flight */
    ngx_uint_t                  holder;         /* of the lease */
    u_char                      fence[NGX_INT64_LEN + 1];
    ngx_uint_t                  next_board;     /* of the meta checks */
    ngx_str_t                   outbox_ids;     /* taken, to delete */

    /* a rebuild in flight, and the boards waiting for one */
    ngx_pool_t                 *rb;
    ngx_uint_t                 *rb_wanted;
    ngx_uint_t                  rb_board;
    u_char                      rb_season[NGX_GAME_LB_SEASON_MAX];
    size_t                      rb_season_len;
    u_char                      rb_region[65];
    u_char                      rb_player[37];
    ngx_uint_t                  rb_rows;
    ngx_msec_t                  rb_start;
} ngx_game_lb_maint_t;


static void ngx_game_lb_tick(ngx_event_t *ev);
static void ngx_game_lb_leased(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply);
static void ngx_game_lb_seasons(ngx_game_lb_maint_t *m);
static void ngx_game_lb_seasons_got(ngx_game_pg_query_t *q, ngx_int_t rc,
    PGresult *res);
static void ngx_game_lb_archived(ngx_game_lb_maint_t *m, json_t *archived);
static void ngx_game_lb_outbox(ngx_game_lb_maint_t *m);
static void ngx_game_lb_outbox_got(ngx_game_pg_query_t *q, ngx_int_t rc,
    PGresult *res);
static void ngx_game_lb_outbox_put(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply);
static void ngx_game_lb_outbox_done(ngx_game_pg_query_t *q, ngx_int_t rc,
    PGresult *res);
static void ngx_game_lb_check(ngx_game_lb_maint_t *m);
static void ngx_game_lb_checked(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply);
static void ngx_game_lb_alive(ngx_game_lb_maint_t *m);
static void ngx_game_lb_pass_end(ngx_game_lb_maint_t *m);
static void ngx_game_lb_pass_end_cmd(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply);
static void ngx_game_lb_rebuild_next(ngx_game_lb_maint_t *m);
static void ngx_game_lb_rebuild_read(ngx_game_lb_maint_t *m);
static void ngx_game_lb_rebuild_got(ngx_game_pg_query_t *q, ngx_int_t rc,
    PGresult *res);
static void ngx_game_lb_rebuild_put(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply);
static void ngx_game_lb_rebuild_ended(ngx_game_redis_cmd_t *cmd,
    ngx_int_t rc, redisReply *reply);
static void ngx_game_lb_rebuild_stop(ngx_game_lb_maint_t *m);
static ngx_int_t ngx_game_lb_eval(ngx_game_lb_maint_t *m, ngx_pool_t *pool,
    ngx_game_redis_script_t *script, ngx_game_redis_handler_pt handler,
    ngx_uint_t argc, const char **argv, size_t *argvlen);
static ngx_int_t ngx_game_lb_sql(ngx_game_lb_maint_t *m, ngx_pool_t *pool,
    ngx_game_pg_pool_t *pg, ngx_game_pg_stmt_t *stmt, const char **values,
    ngx_game_pg_handler_pt handler);
static ngx_str_t *ngx_game_lb_live_meta(ngx_game_lb_maint_t *m,
    ngx_pool_t *pool, ngx_uint_t i);


static ngx_game_pg_stmt_t  ngx_game_lb_seasons_stmt = {
    "game_lb_seasons_tick",
    "SELECT lb_seasons_tick($1::jsonb, $2::boolean, $3::boolean)",
    3
};

static ngx_game_pg_stmt_t  ngx_game_lb_outbox_stmt = {
    "game_lb_outbox_read",
    "SELECT lb_outbox_read($1::integer)",
    1
};

static ngx_game_pg_stmt_t  ngx_game_lb_outbox_done_stmt = {
    "game_lb_outbox_done",
    "SELECT lb_outbox_done($1::jsonb)",
    1
};

static ngx_game_pg_stmt_t  ngx_game_lb_rebuild_stmt = {
    "game_lb_rebuild_batch",
    "SELECT * FROM lb_rebuild_batch($1, $2, $3, $4::uuid, $5::integer)",
    5
};


static ngx_game_lb_maint_t  ngx_game_lb_maint;


ngx_int_t
ngx_game_lb_maint_start(ngx_cycle_t *cycle, ngx_game_lb_main_conf_t *lmcf)
{
    ngx_game_lb_maint_t  *m = &ngx_game_lb_maint;

    ngx_memzero(m, sizeof(ngx_game_lb_maint_t));
    m->lmcf = lmcf;
    m->log = cycle->log;

    m->rb_wanted = ngx_pcalloc(cycle->pool,
                               lmcf->boards.nelts * sizeof(ngx_uint_t));
    if (m->rb_wanted == NULL) {
        return NGX_ERROR;
    }

    m->timer.handler = ngx_game_lb_tick;
    m->timer.log = cycle->log;
    m->timer.data = m;
    /* idle work: an old worker may exit while it waits */
    m->timer.cancelable = 1;

    ngx_add_timer(&m->timer, 50 + ngx_random() % 100);

    return NGX_OK;
}


static void
ngx_game_lb_tick(ngx_event_t *ev)
{
    u_char                  ms[NGX_INT_T_LEN];
    const char             *argv[4];
    size_t                  argvlen[4];
    ngx_game_lb_maint_t    *m = ev->data;

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    ngx_add_timer(ev, m->lmcf->tick);

    if (m->pass) {
        return;     /* the last one is still on its way */
    }

    m->pass = ngx_create_pool(4096, m->log);
    if (m->pass == NULL) {
        return;
    }

    argv[0] = "lb:lease";
    argv[1] = "lb:fence";
    argv[2] = (char *) ngx_game_instance_id()->data;
    argv[3] = (char *) ms;
    argvlen[0] = 8;
    argvlen[1] = 8;
    argvlen[2] = ngx_game_instance_id()->len;
    argvlen[3] = ngx_sprintf(ms, "%M", 3 * m->lmcf->tick) - ms;

    if (ngx_game_lb_eval(m, m->pass, &ngx_game_lb_lease_lua,
                         ngx_game_lb_leased, 4, argv, argvlen)
        != NGX_AGAIN)
    {
        /* Redis away: the seasons are still worth knowing */
        m->holder = 0;
        ngx_game_lb_seasons(m);
    }
}


static void
ngx_game_lb_leased(ngx_game_redis_cmd_t *cmd, ngx_int_t rc, redisReply *reply)
{
    ngx_game_lb_maint_t  *m = cmd->data;
    redisReply           *f;
    ngx_uint_t            was;

    was = m->holder;
    m->holder = 0;

    if (rc == NGX_OK && reply->type == REDIS_REPLY_ARRAY
        && reply->elements == 2
        && reply->element[0]->type == REDIS_REPLY_STRING
        && reply->element[0]->len == 2
        && ngx_strncmp(reply->element[0]->str, "OK", 2) == 0
        && reply->element[1]->type == REDIS_REPLY_STRING
        && reply->element[1]->len < sizeof(m->fence))
    {
        f = reply->element[1];

        if (!was || ngx_strncmp(m->fence, f->str, f->len + 1) != 0) {
            ngx_cpystrn(m->fence, (u_char *) f->str, f->len + 1);
            ngx_log_error(NGX_LOG_INFO, m->log, 0,
                          "game lb: maintenance lease taken (fence %s)",
                          m->fence);
        }

        m->holder = 1;
    }

    ngx_game_lb_seasons(m);
}


static void
ngx_game_lb_seasons(ngx_game_lb_maint_t *m)
{
    const char  *values[3];

    values[0] = (char *) m->lmcf->boards_json.data;
    values[1] = m->lmcf->test_clock ? "true" : "false";
    values[2] = m->holder ? "true" : "false";

    /* the holder's archiving may be long: it takes the maintenance pool */
    if (ngx_game_lb_sql(m, m->pass,
                        m->holder ? m->lmcf->pg_maintenance : m->lmcf->pg,
                        &ngx_game_lb_seasons_stmt, values,
                        ngx_game_lb_seasons_got)
        != NGX_AGAIN)
    {
        ngx_game_lb_pass_end(m);
    }
}


static void
ngx_game_lb_seasons_got(ngx_game_pg_query_t *q, ngx_int_t rc, PGresult *res)
{
    size_t                    len;
    json_t                   *answer, *current, *s;
    ngx_uint_t                i;
    json_error_t              err;
    ngx_game_lb_live_t       *live;
    ngx_game_lb_board_t      *b;
    ngx_game_lb_maint_t      *m = q->data;

    if (rc != NGX_OK || PQntuples(res) != 1) {
        ngx_game_lb_pass_end(m);
        return;
    }

    answer = json_loadb(PQgetvalue(res, 0, 0), PQgetlength(res, 0, 0), 0,
                        &err);
    current = answer ? json_object_get(answer, "current") : NULL;

    if (!json_is_object(current)) {
        json_decref(answer);
        ngx_game_lb_pass_end(m);
        return;
    }

    b = m->lmcf->boards.elts;

    for (i = 0; i < m->lmcf->boards.nelts; i++) {
        s = json_object_getn(current, (char *) b[i].name.data,
                             b[i].name.len);
        live = ngx_game_lb_live(m->lmcf, &b[i]);
        len = json_string_length(s);

        if (json_is_string(s) && len < NGX_GAME_LB_SEASON_MAX && live) {
            if (live->season_len != len
                || ngx_strncmp(live->season, json_string_value(s), len) != 0)
            {
                ngx_log_error(NGX_LOG_INFO, m->log, 0,
                              "game lb: board \"%V\" is in season %s",
                              &b[i].name, json_string_value(s));
            }

            ngx_memcpy(live->season, json_string_value(s), len);
            live->season_len = len;
        }
    }

    if (m->holder) {
        ngx_game_lb_archived(m, json_object_get(answer, "archived"));
    }

    json_decref(answer);

    if (!m->holder) {
        ngx_game_lb_pass_end(m);
        return;
    }

    ngx_game_lb_outbox(m);
}


/* drop the Redis keys of the seasons PostgreSQL just archived */
static void
ngx_game_lb_archived(ngx_game_lb_maint_t *m, json_t *archived)
{
    size_t                 i, k, n;
    json_t                *a, *regions, *r;
    u_char                *p;
    ngx_str_t              board, season, region, *key;
    const char           **argv;
    size_t                *argvlen;
    ngx_game_redis_cmd_t  *cmd;

    for (i = 0; i < json_array_size(archived); i++) {
        a = json_array_get(archived, i);
        regions = json_object_get(a, "regions");

        if (!json_is_string(json_object_get(a, "b"))
            || !json_is_string(json_object_get(a, "s")))
        {
            continue;
        }

        board.data = (u_char *) json_string_value(json_object_get(a, "b"));
        board.len = ngx_strlen(board.data);
        season.data = (u_char *) json_string_value(json_object_get(a, "s"));
        season.len = ngx_strlen(season.data);

        ngx_log_error(NGX_LOG_NOTICE, m->log, 0,
                      "game lb: season %V of board \"%V\" archived",
                      &season, &board);

        n = 2 + 2 * json_array_size(regions);
        argv = ngx_palloc(m->pass, n * sizeof(char *));
        argvlen = ngx_palloc(m->pass, n * sizeof(size_t));
        key = ngx_palloc(m->pass, n * sizeof(ngx_str_t));
        if (argv == NULL || argvlen == NULL || key == NULL) {
            return;
        }

        argv[0] = "UNLINK";
        argvlen[0] = 6;
        k = 1;

        for (n = 0; n <= json_array_size(regions); n++) {
            p = ngx_pnalloc(m->pass, 2 * NGX_GAME_LB_KEY_LEN);
            if (p == NULL) {
                return;
            }

            argv[k] = (char *) p;

            if (n == json_array_size(regions)) {
                p = ngx_game_lb_key(p, "meta", &board, &season, NULL);
                argvlen[k] = p - (u_char *) argv[k];
                k++;
                break;
            }

            r = json_array_get(regions, n);
            region.data = (u_char *) json_string_value(r);
            region.len = json_string_length(r);

            p = ngx_game_lb_key(p, "z", &board, &season, &region);
            argvlen[k] = p - (u_char *) argv[k];
            argv[k + 1] = (char *) p;
            p = ngx_game_lb_key(p, "h", &board, &season, &region);
            argvlen[k + 1] = p - (u_char *) argv[k + 1];
            k += 2;
        }

        cmd = ngx_game_redis_cmd_create(m->pass, m->log);
        if (cmd == NULL) {
            return;
        }

        /* nobody waits for it; the pass's pool outlives it (it ends
         * after the steps below, which go to the same connection) */
        cmd->handler = ngx_game_lb_pass_end_cmd;
        cmd->data = NULL;

        (void) ngx_game_redis_cmd_run(m->lmcf->redis, cmd, k, argv, argvlen);
    }
}


static void
ngx_game_lb_outbox(ngx_game_lb_maint_t *m)
{
    u_char      *n;
    const char  *values[1];

    n = ngx_game_lb_number(m->pass, NGX_GAME_LB_OUTBOX_BATCH);
    if (n == NULL) {
        ngx_game_lb_pass_end(m);
        return;
    }

    values[0] = (char *) n;

    if (ngx_game_lb_sql(m, m->pass, m->lmcf->pg, &ngx_game_lb_outbox_stmt,
                        values, ngx_game_lb_outbox_got)
        != NGX_AGAIN)
    {
        ngx_game_lb_check(m);
    }
}


static void
ngx_game_lb_outbox_got(ngx_game_pg_query_t *q, ngx_int_t rc, PGresult *res)
{
    char                     *text;
    size_t                    i, n;
    json_t                   *rows, *ids;
    ngx_str_t                 records;
    ngx_uint_t                k;
    json_error_t              err;
    ngx_game_lb_live_t       *live;
    ngx_game_lb_write_t      *w;
    ngx_game_lb_maint_t      *m = q->data;

    if (rc != NGX_OK || PQntuples(res) != 1) {
        ngx_game_lb_check(m);
        return;
    }

    rows = json_loadb(PQgetvalue(res, 0, 0), PQgetlength(res, 0, 0), 0,
                      &err);
    n = json_array_size(rows);

    if (n == 0) {
        json_decref(rows);
        ngx_game_lb_check(m);
        return;
    }

    w = ngx_pcalloc(m->pass, n * sizeof(ngx_game_lb_write_t));
    ids = json_array();
    if (w == NULL || ids == NULL) {
        json_decref(ids);
        json_decref(rows);
        ngx_game_lb_check(m);
        return;
    }

    k = 0;
    for (i = 0; i < n; i++) {
        json_array_append(ids, json_object_get(json_array_get(rows, i),
                                               "id"));

        if (ngx_game_lb_write_json(m->lmcf, json_array_get(rows, i), &w[k])
            != NGX_OK)
        {
            continue;
        }

        /* archived seasons are not in Redis any more */
        live = ngx_game_lb_live(m->lmcf, w[k].board);
        if (live && live->season_len == w[k].season.len
            && ngx_strncmp(live->season, w[k].season.data,
                           w[k].season.len) == 0)
        {
            k++;
        }
    }

    text = json_dumps(ids, JSON_COMPACT);
    json_decref(ids);

    if (text == NULL
        || ngx_game_lb_records(m->pass, w, k, &records) != NGX_OK)
    {
        free(text);
        json_decref(rows);
        ngx_game_lb_check(m);
        return;
    }

    json_decref(rows);

    m->outbox_ids.len = ngx_strlen(text);
    m->outbox_ids.data = ngx_pnalloc(m->pass, m->outbox_ids.len + 1);
    if (m->outbox_ids.data == NULL) {
        free(text);
        ngx_game_lb_check(m);
        return;
    }
    ngx_memcpy(m->outbox_ids.data, text, m->outbox_ids.len + 1);
    free(text);

    if (k == 0) {
        ngx_game_lb_outbox_put(NULL, NGX_OK, NULL);
        return;
    }

    if (ngx_game_lb_put(m->lmcf, m->pass, m->log, &records,
                        ngx_game_lb_outbox_put, m)
        != NGX_AGAIN)
    {
        ngx_game_lb_check(m);
    }
}


/* Redis dropped them: so may PostgreSQL's outbox */
static void
ngx_game_lb_outbox_put(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply)
{
    const char           *values[1];
    ngx_game_lb_maint_t  *m = &ngx_game_lb_maint;

    if (rc != NGX_OK) {
        ngx_game_lb_check(m);
        return;
    }

    values[0] = (char *) m->outbox_ids.data;

    if (ngx_game_lb_sql(m, m->pass, m->lmcf->pg,
                        &ngx_game_lb_outbox_done_stmt, values,
                        ngx_game_lb_outbox_done)
        != NGX_AGAIN)
    {
        ngx_game_lb_check(m);
    }
}


static void
ngx_game_lb_outbox_done(ngx_game_pg_query_t *q, ngx_int_t rc, PGresult *res)
{
    ngx_game_lb_check(q->data);
}


/* every live season's meta, one board at a time (begin) */
static void
ngx_game_lb_check(ngx_game_lb_maint_t *m)
{
    m->next_board = 0;
    ngx_game_lb_checked(NULL, NGX_DECLINED, NULL);
}


static void
ngx_game_lb_checked(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply)
{
    const char            *argv[3];
    size_t                 argvlen[3];
    ngx_str_t             *meta;
    ngx_uint_t             i;
    ngx_game_lb_maint_t   *m = &ngx_game_lb_maint;

    if (rc == NGX_OK && reply->type == REDIS_REPLY_STRING
        && reply->len == 5 && ngx_strncmp(reply->str, "START", 5) == 0)
    {
        i = m->next_board - 1;

        /* a rebuild of this board in flight is stale now */
        if (m->rb && m->rb_board == i) {
            ngx_game_lb_rebuild_stop(m);
        }

        m->rb_wanted[i] = 1;

    } else if (rc == NGX_OK && reply->type == REDIS_REPLY_STRING
               && reply->len == 4 && ngx_strncmp(reply->str, "MINE", 4) == 0)
    {
        /* ours and in flight, or ours and forgotten: begin it again */
        i = m->next_board - 1;
        if (m->rb == NULL || m->rb_board != i) {
            m->rb_wanted[i] = 1;
        }

    } else if (cmd && rc != NGX_OK) {
        ngx_game_lb_pass_end(m);
        return;
    }

    while (m->next_board < m->lmcf->boards.nelts) {
        i = m->next_board++;

        meta = ngx_game_lb_live_meta(m, m->pass, i);
        if (meta == NULL) {
            continue;       /* no season known yet */
        }

        argv[0] = (char *) meta->data;
        argvlen[0] = meta->len;
        argv[1] = "lb:alive";
        argvlen[1] = 8;
        argv[2] = (char *) m->fence;
        argvlen[2] = ngx_strlen(m->fence);

        if (ngx_game_lb_eval(m, m->pass, &ngx_game_lb_begin_lua,
                             ngx_game_lb_checked, 3, argv, argvlen)
            != NGX_AGAIN)
        {
            ngx_game_lb_pass_end(m);
        }

        return;
    }

    ngx_game_lb_alive(m);
}


/* every live season has its meta now: "alive" may be set */
static void
ngx_game_lb_alive(ngx_game_lb_maint_t *m)
{
    ngx_str_t    *meta;
    ngx_uint_t    i, k, n;
    const char  **argv;
    size_t       *argvlen;

    n = m->lmcf->boards.nelts;
    argv = ngx_palloc(m->pass, (n + 3) * sizeof(char *));
    argvlen = ngx_palloc(m->pass, (n + 3) * sizeof(size_t));
    if (argv == NULL || argvlen == NULL) {
        ngx_game_lb_pass_end(m);
        return;
    }

    argv[0] = "";
    argvlen[0] = 0;
    argv[1] = (char *) m->fence;
    argvlen[1] = ngx_strlen(m->fence);
    argv[2] = "lb:alive";
    argvlen[2] = 8;
    k = 3;

    for (i = 0; i < n; i++) {
        meta = ngx_game_lb_live_meta(m, m->pass, i);
        if (meta == NULL) {
            ngx_game_lb_pass_end(m);
            return;
        }

        argv[k] = (char *) meta->data;
        argvlen[k] = meta->len;
        k++;
    }

    if (ngx_game_lb_eval(m, m->pass, &ngx_game_lb_end_lua,
                         ngx_game_lb_pass_end_cmd, k, argv, argvlen)
        != NGX_AGAIN)
    {
        ngx_game_lb_pass_end(m);
    }
}


static void
ngx_game_lb_pass_end_cmd(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply)
{
    /* the archive's UNLINKs answer here too, and end nothing */
    if (cmd->data) {
        ngx_game_lb_pass_end(cmd->data);
    }
}


static void
ngx_game_lb_pass_end(ngx_game_lb_maint_t *m)
{
    if (m->pass) {
        ngx_destroy_pool(m->pass);
        m->pass = NULL;
    }

    if (m->holder && m->rb == NULL) {
        ngx_game_lb_rebuild_next(m);
    }
}


/*
 * Rebuilds: one board's live season at a time, from the first entry in
 * key order, "game_lb_rebuild_batch" entries a step.
 */

static void
ngx_game_lb_rebuild_next(ngx_game_lb_maint_t *m)
{
    ngx_uint_t           i;
    ngx_game_lb_live_t  *live;

    for (i = 0; i < m->lmcf->boards.nelts; i++) {
        if (!m->rb_wanted[i]) {
            continue;
        }

        m->rb_wanted[i] = 0;
        live = ngx_game_lb_live(m->lmcf,
                                &((ngx_game_lb_board_t *)
                                  m->lmcf->boards.elts)[i]);
        if (live == NULL || live->season_len == 0) {
            continue;
        }

        m->rb = ngx_create_pool(4096, m->log);
        if (m->rb == NULL) {
            return;
        }

        m->rb_board = i;
        ngx_memcpy(m->rb_season, live->season, live->season_len);
        m->rb_season_len = live->season_len;
        m->rb_region[0] = '\0';
        ngx_cpystrn(m->rb_player, (u_char *)
                    "00000000-0000-0000-0000-000000000000", 37);
        m->rb_rows = 0;
        m->rb_start = ngx_current_msec;

        ngx_log_error(NGX_LOG_NOTICE, m->log, 0,
                      "game lb: rebuilding board \"%V\" season %*s from "
                      "PostgreSQL",
                      &((ngx_game_lb_board_t *) m->lmcf->boards.elts)[i].name,
                      m->rb_season_len, m->rb_season);

        ngx_game_lb_rebuild_read(m);
        return;
    }
}


static void
ngx_game_lb_rebuild_read(ngx_game_lb_maint_t *m)
{
    u_char               *n;
    ngx_pool_t           *pool;
    const char           *values[5];
    ngx_game_lb_board_t  *b;

    if (!m->holder) {
        ngx_game_lb_rebuild_stop(m);    /* the next holder does it */
        return;
    }

    /* each step's memory goes with the step before it (the core touches
     * no command or query after calling its handler) */
    pool = ngx_create_pool(4096, m->log);
    if (pool == NULL) {
        ngx_game_lb_rebuild_stop(m);
        return;
    }

    ngx_destroy_pool(m->rb);
    m->rb = pool;

    b = &((ngx_game_lb_board_t *) m->lmcf->boards.elts)[m->rb_board];

    n = ngx_game_lb_number(m->rb, m->lmcf->rebuild_batch);
    values[0] = (char *) ngx_game_lb_text(m->rb, (char *) b->name.data,
                                          b->name.len)->data;
    values[1] = (char *) ngx_game_lb_text(m->rb, (char *) m->rb_season,
                                          m->rb_season_len)->data;
    values[2] = (char *) m->rb_region;
    values[3] = (char *) m->rb_player;
    values[4] = (char *) n;

    if (n == NULL
        || ngx_game_lb_sql(m, m->rb, m->lmcf->pg_maintenance,
                           &ngx_game_lb_rebuild_stmt, values,
                           ngx_game_lb_rebuild_got)
           != NGX_AGAIN)
    {
        ngx_game_lb_rebuild_stop(m);
    }
}


static void
ngx_game_lb_rebuild_got(ngx_game_pg_query_t *q, ngx_int_t rc, PGresult *res)
{
    int                       i, rows;
    u_char                   *p;
    ngx_str_t                 records, meta, board, season;
    ngx_game_lb_write_t      *w;
    ngx_game_lb_board_t      *b;
    ngx_game_lb_maint_t      *m = q->data;
    const char               *argv[3];
    size_t                    argvlen[3];

    if (rc != NGX_OK || PQnfields(res) != 6) {
        ngx_game_lb_rebuild_stop(m);
        return;
    }

    b = &((ngx_game_lb_board_t *) m->lmcf->boards.elts)[m->rb_board];
    season.data = m->rb_season;
    season.len = m->rb_season_len;
    rows = PQntuples(res);

    if (rows == 0) {
        /* done: ready, if it is still ours */
        board = b->name;
        p = ngx_pnalloc(m->rb, NGX_GAME_LB_KEY_LEN);
        if (p == NULL) {
            ngx_game_lb_rebuild_stop(m);
            return;
        }

        meta.data = p;
        meta.len = ngx_game_lb_key(p, "meta", &board, &season, NULL) - p;

        argv[0] = (char *) meta.data;
        argvlen[0] = meta.len;
        argv[1] = (char *) m->fence;
        argvlen[1] = ngx_strlen(m->fence);
        argv[2] = "lb:alive";
        argvlen[2] = 8;

        if (ngx_game_lb_eval(m, m->rb, &ngx_game_lb_end_lua,
                             ngx_game_lb_rebuild_ended, 3, argv, argvlen)
            != NGX_AGAIN)
        {
            ngx_game_lb_rebuild_stop(m);
        }

        return;
    }

    w = ngx_pcalloc(m->rb, rows * sizeof(ngx_game_lb_write_t));
    if (w == NULL) {
        ngx_game_lb_rebuild_stop(m);
        return;
    }

    for (i = 0; i < rows; i++) {
        w[i].board = b;
        w[i].season = season;
        w[i].region.data = (u_char *) PQgetvalue(res, i, 0);
        w[i].region.len = PQgetlength(res, i, 0);
        w[i].player.data = (u_char *) PQgetvalue(res, i, 1);
        w[i].player.len = PQgetlength(res, i, 1);
        w[i].score = ngx_atoof((u_char *) PQgetvalue(res, i, 2),
                               PQgetlength(res, i, 2));
        if (PQgetvalue(res, i, 2)[0] == '-') {
            w[i].score = -ngx_atoof((u_char *) PQgetvalue(res, i, 2) + 1,
                                    PQgetlength(res, i, 2) - 1);
        }
        w[i].subscore = ngx_atoof((u_char *) PQgetvalue(res, i, 3),
                                  PQgetlength(res, i, 3));
        if (PQgetvalue(res, i, 3)[0] == '-') {
            w[i].subscore = -ngx_atoof((u_char *) PQgetvalue(res, i, 3) + 1,
                                       PQgetlength(res, i, 3) - 1);
        }
        w[i].reached_ms = ngx_atoof((u_char *) PQgetvalue(res, i, 4),
                                    PQgetlength(res, i, 4));
        w[i].version = ngx_atoof((u_char *) PQgetvalue(res, i, 5),
                                 PQgetlength(res, i, 5));

        if (w[i].player.len != 36 || w[i].region.len > 64) {
            ngx_game_lb_rebuild_stop(m);
            return;
        }
    }

    /* the next batch starts after the last of this one */
    ngx_cpystrn(m->rb_region, w[rows - 1].region.data,
                w[rows - 1].region.len + 1);
    ngx_cpystrn(m->rb_player, w[rows - 1].player.data, 37);
    m->rb_rows += rows;

    if (ngx_game_lb_records(m->rb, w, rows, &records) != NGX_OK
        || ngx_game_lb_put(m->lmcf, m->rb, m->log, &records,
                           ngx_game_lb_rebuild_put, m)
           != NGX_AGAIN)
    {
        ngx_game_lb_rebuild_stop(m);
    }
}


static void
ngx_game_lb_rebuild_put(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply)
{
    ngx_game_lb_maint_t  *m = cmd->data;

    if (rc != NGX_OK) {
        ngx_game_lb_rebuild_stop(m);
        return;
    }

    ngx_game_lb_rebuild_read(m);
}


static void
ngx_game_lb_rebuild_ended(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply)
{
    ngx_game_lb_maint_t  *m = cmd->data;

    ngx_log_error(NGX_LOG_NOTICE, m->log, 0,
                  "game lb: rebuilt board \"%V\" season %*s: %ui entries in "
                  "%M ms%s",
                  &((ngx_game_lb_board_t *)
                    m->lmcf->boards.elts)[m->rb_board].name,
                  m->rb_season_len, m->rb_season, m->rb_rows,
                  ngx_current_msec - m->rb_start,
                  (rc == NGX_OK && reply->type == REDIS_REPLY_INTEGER
                   && reply->integer == 1)
                  ? "" : " (no longer ours)");

    ngx_game_lb_rebuild_stop(m);
    ngx_game_lb_rebuild_next(m);
}


static void
ngx_game_lb_rebuild_stop(ngx_game_lb_maint_t *m)
{
    if (m->rb) {
        ngx_destroy_pool(m->rb);
        m->rb = NULL;
    }
}


static ngx_int_t
ngx_game_lb_eval(ngx_game_lb_maint_t *m, ngx_pool_t *pool,
    ngx_game_redis_script_t *script, ngx_game_redis_handler_pt handler,
    ngx_uint_t argc, const char **argv, size_t *argvlen)
{
    ngx_game_redis_cmd_t  *cmd;

    cmd = ngx_game_redis_cmd_create(pool, m->log);
    if (cmd == NULL) {
        return NGX_ERROR;
    }

    cmd->handler = handler;
    cmd->data = m;

    return ngx_game_redis_eval(m->lmcf->redis, cmd, script, 0, argc, argv,
                               argvlen);
}


static ngx_int_t
ngx_game_lb_sql(ngx_game_lb_maint_t *m, ngx_pool_t *pool,
    ngx_game_pg_pool_t *pg, ngx_game_pg_stmt_t *stmt, const char **values,
    ngx_game_pg_handler_pt handler)
{
    int                   i;
    ngx_game_pg_query_t  *q;

    q = ngx_game_pg_query_create(pool, m->log, stmt);
    if (q == NULL) {
        return NGX_ERROR;
    }

    ngx_str_set(&q->trace, "lb-maint");

    for (i = 0; i < stmt->nparams; i++) {
        q->values[i] = values[i];
    }

    q->handler = handler;
    q->data = m;

    return ngx_game_pg_query_run(pg, q);
}


/* "lb:meta:<board>:<live season>", or NULL before the season is known */
static ngx_str_t *
ngx_game_lb_live_meta(ngx_game_lb_maint_t *m, ngx_pool_t *pool, ngx_uint_t i)
{
    u_char               *p;
    ngx_str_t            *s, season;
    ngx_game_lb_live_t   *live;
    ngx_game_lb_board_t  *b;

    b = &((ngx_game_lb_board_t *) m->lmcf->boards.elts)[i];
    live = ngx_game_lb_live(m->lmcf, b);

    if (live == NULL || live->season_len == 0) {
        return NULL;
    }

    s = ngx_palloc(pool, sizeof(ngx_str_t));
    p = ngx_pnalloc(pool, NGX_GAME_LB_KEY_LEN);
    if (s == NULL || p == NULL) {
        return NULL;
    }

    season.data = live->season;
    season.len = live->season_len;

    s->data = p;
    s->len = ngx_game_lb_key(p, "meta", &b->name, &season, NULL) - p;

    return s;
}
