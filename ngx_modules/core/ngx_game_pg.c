
/*
 * PostgreSQL connection pools, one set of connections per worker.
 *
 * Every connection is a libpq PGconn in non-blocking mode whose socket is
 * watched by the worker's event loop; nothing here ever waits.  A query
 * takes an idle connection or waits in the pool's queue (bounded by
 * max_queue and by the query timeout).  Statements are prepared the first
 * time a connection runs them and stay prepared for its lifetime.
 *
 * Failure rules, chosen so that a request never hangs on a dead database:
 *   - a query that times out takes its connection down with it: the
 *     connection is mid-result and cannot be reused, so it is closed and
 *     reopened;
 *   - a connection that breaks fails its query with NGX_GAME_UNAVAILABLE
 *     and reconnects with a backoff of 100 ms doubling to 1 s;
 *   - while no connection of a pool is up and the last attempt failed, the
 *     pool is "down": queries fail at once instead of queueing.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_game_core_internal.h"
#include "ngx_game_conn.h"
#include "ngx_game_conf.h"
#include "game_util.h"


#define NGX_GAME_PG_MAX_STMTS   256


typedef enum {
    NGX_GAME_PG_CLOSED = 0,
    NGX_GAME_PG_CONNECTING,
    NGX_GAME_PG_IDLE,
    NGX_GAME_PG_PREPARING,
    NGX_GAME_PG_EXECUTING
} ngx_game_pg_state_e;


typedef struct {
    ngx_game_pg_pool_t         *pool;
    PGconn                     *pg;
    ngx_connection_t           *c;
    ngx_game_pg_state_e         state;
    ngx_game_pg_query_t        *query;
    ngx_game_pg_stmt_t         *stmt;       /* in flight, even if cancelled */
    PGresult                   *res;

    /* connect timeout while connecting, reconnect delay while closed */
    ngx_event_t                 timer;
    ngx_msec_t                  backoff;

    ngx_queue_t                 idle;

    ngx_uint_t                  nprepared;
    ngx_game_pg_stmt_t         *prepared[NGX_GAME_PG_MAX_STMTS];
} ngx_game_pg_conn_t;


struct ngx_game_pg_pool_s {
    ngx_str_t                   name;
    ngx_str_t                   conninfo;
    ngx_uint_t                  connections;
    ngx_uint_t                  max_queue;
    ngx_msec_t                  connect_timeout;
    ngx_msec_t                  query_timeout;
    time_t                      keepalive;

    u_char                     *file;
    ngx_uint_t                  line;
    unsigned                    defined:1;

    /* per worker, from ngx_game_pg_pools_start() on */
    ngx_log_t                  *log;
    ngx_game_pg_conn_t         *conns;
    ngx_queue_t                 idle;
    ngx_queue_t                 waiting;
    ngx_uint_t                  nwaiting;
    ngx_uint_t                  nconnected;
    unsigned                    down:1;
};


static void ngx_game_pg_connect(ngx_game_pg_conn_t *pc);
static void ngx_game_pg_connect_poll(ngx_game_pg_conn_t *pc);
static void ngx_game_pg_connected(ngx_game_pg_conn_t *pc);
static void ngx_game_pg_close(ngx_game_pg_conn_t *pc, ngx_uint_t failed);
static void ngx_game_pg_broken(ngx_game_pg_conn_t *pc, const char *what);
static void ngx_game_pg_timer_handler(ngx_event_t *ev);
static void ngx_game_pg_read_handler(ngx_event_t *ev);
static void ngx_game_pg_write_handler(ngx_event_t *ev);
static ngx_int_t ngx_game_pg_send(ngx_game_pg_conn_t *pc,
    ngx_game_pg_query_t *q);
static ngx_int_t ngx_game_pg_flush(ngx_game_pg_conn_t *pc);
static void ngx_game_pg_collect(ngx_game_pg_conn_t *pc);
static void ngx_game_pg_step_done(ngx_game_pg_conn_t *pc);
static void ngx_game_pg_release(ngx_game_pg_conn_t *pc);
static void ngx_game_pg_fail_waiting(ngx_game_pg_pool_t *pg);
static void ngx_game_pg_deliver(ngx_game_pg_query_t *q, ngx_int_t rc,
    PGresult *res);
static void ngx_game_pg_query_timeout(ngx_event_t *ev);
static void ngx_game_pg_query_cleanup(void *data);
static ngx_uint_t ngx_game_pg_is_prepared(ngx_game_pg_conn_t *pc,
    ngx_game_pg_stmt_t *stmt);
static void ngx_game_pg_log_error(ngx_game_pg_conn_t *pc, ngx_uint_t level,
    const char *what);


/* configuration */

static ngx_game_param_t  ngx_game_pg_params[] = {

    { ngx_string("connections="), NGX_GAME_PARAM_NUMBER,
      offsetof(ngx_game_pg_pool_t, connections), 1, 512 },

    { ngx_string("max_queue="), NGX_GAME_PARAM_NUMBER,
      offsetof(ngx_game_pg_pool_t, max_queue), 0, 1000000 },

    { ngx_string("connect_timeout="), NGX_GAME_PARAM_MSEC,
      offsetof(ngx_game_pg_pool_t, connect_timeout), 0, 0 },

    { ngx_string("query_timeout="), NGX_GAME_PARAM_MSEC,
      offsetof(ngx_game_pg_pool_t, query_timeout), 0, 0 },

    /* TCP keepalive idle time; 0 turns keepalive probes off */
    { ngx_string("keepalive="), NGX_GAME_PARAM_SEC,
      offsetof(ngx_game_pg_pool_t, keepalive), 0, 0 },

    { ngx_null_string, 0, 0, 0, 0 }
};


static ngx_game_pg_pool_t *
ngx_game_pg_pool_add(ngx_conf_t *cf, ngx_str_t *name)
{
    ngx_uint_t                  i;
    ngx_game_pg_pool_t        **pools, *pg, **slot;
    ngx_game_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_game_core_module);

    pools = cmcf->pg_pools.elts;
    for (i = 0; i < cmcf->pg_pools.nelts; i++) {
        if (pools[i]->name.len == name->len
            && ngx_strncmp(pools[i]->name.data, name->data, name->len) == 0)
        {
            return pools[i];
        }
    }

    pg = ngx_pcalloc(cf->pool, sizeof(ngx_game_pg_pool_t));
    if (pg == NULL) {
        return NULL;
    }

    slot = ngx_array_push(&cmcf->pg_pools);
    if (slot == NULL) {
        return NULL;
    }

    *slot = pg;
    pg->name = *name;
    pg->file = cf->conf_file->file.name.data;
    pg->line = cf->conf_file->line;

    return pg;
}


ngx_game_pg_pool_t *
ngx_game_pg_pool_lookup(ngx_conf_t *cf, ngx_str_t *name)
{
    return ngx_game_pg_pool_add(cf, name);
}


ngx_str_t *
ngx_game_pg_pool_name(ngx_game_pg_pool_t *pg)
{
    return &pg->name;
}


/*
 * game_pg_pool name conninfo [connections=N] [max_queue=N]
 *              [connect_timeout=time] [query_timeout=time] [keepalive=time];
 */

char *
ngx_game_pg_pool_directive(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_str_t           *value;
    ngx_game_pg_pool_t  *pg;

    value = cf->args->elts;

    pg = ngx_game_pg_pool_add(cf, &value[1]);
    if (pg == NULL) {
        return NGX_CONF_ERROR;
    }

    if (pg->defined) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate \"%V\" pool \"%V\"",
                           &cmd->name, &value[1]);
        return NGX_CONF_ERROR;
    }

    pg->defined = 1;
    pg->file = cf->conf_file->file.name.data;
    pg->line = cf->conf_file->line;

    /* libpq wants a C string */
    pg->conninfo.len = value[2].len;
    pg->conninfo.data = ngx_pnalloc(cf->pool, value[2].len + 1);
    if (pg->conninfo.data == NULL) {
        return NGX_CONF_ERROR;
    }
    ngx_memcpy(pg->conninfo.data, value[2].data, value[2].len);
    pg->conninfo.data[value[2].len] = '\0';

    pg->connections = 4;
    pg->max_queue = 1024;
    pg->connect_timeout = 2000;
    pg->query_timeout = 5000;
    pg->keepalive = 30;

    if (ngx_game_conf_params(cf, cmd, 3, ngx_game_pg_params, pg)
        != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    /* a malformed connection string is a configuration error, not an
     * outage to retry forever */
    {
        char               *err = NULL;
        PQconninfoOption   *opts;

        opts = PQconninfoParse((char *) pg->conninfo.data, &err);
        if (opts == NULL) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid connection string \"%V\" in \"%V\" "
                               "directive: %s", &value[2], &cmd->name,
                               err ? err : "out of memory");
            if (err) {
                PQfreemem(err);
            }
            return NGX_CONF_ERROR;
        }
        PQconninfoFree(opts);
    }

    return NGX_CONF_OK;
}


char *
ngx_game_pg_pools_check(ngx_conf_t *cf, ngx_array_t *pools)
{
    ngx_uint_t            i;
    ngx_game_pg_pool_t  **pg;

    pg = pools->elts;
    for (i = 0; i < pools->nelts; i++) {
        if (!pg[i]->defined) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "PostgreSQL pool \"%V\" is used in %s:%ui but "
                          "not declared with \"game_pg_pool\"",
                          &pg[i]->name, pg[i]->file, pg[i]->line);
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


/* worker start and stop */

ngx_int_t
ngx_game_pg_pools_start(ngx_cycle_t *cycle, ngx_array_t *pools)
{
    ngx_uint_t            i, k;
    ngx_game_pg_pool_t  **pgs, *pg;
    ngx_game_pg_conn_t   *pc;

    pgs = pools->elts;
    for (i = 0; i < pools->nelts; i++) {
        pg = pgs[i];
        pg->log = cycle->log;
        ngx_queue_init(&pg->idle);
        ngx_queue_init(&pg->waiting);

        pg->conns = ngx_pcalloc(cycle->pool,
                                pg->connections * sizeof(ngx_game_pg_conn_t));
        if (pg->conns == NULL) {
            return NGX_ERROR;
        }

        for (k = 0; k < pg->connections; k++) {
            pc = &pg->conns[k];
            pc->pool = pg;
            pc->timer.handler = ngx_game_pg_timer_handler;
            pc->timer.data = pc;
            pc->timer.log = cycle->log;
            /* reconnect timers must not keep an old worker alive */
            pc->timer.cancelable = 1;

            ngx_game_pg_connect(pc);
        }
    }

    return NGX_OK;
}


void
ngx_game_pg_pools_stop(ngx_array_t *pools)
{
    ngx_uint_t            i, k;
    ngx_game_pg_pool_t  **pgs, *pg;
    ngx_game_pg_conn_t   *pc;

    pgs = pools->elts;
    for (i = 0; i < pools->nelts; i++) {
        pg = pgs[i];
        if (pg->conns == NULL) {
            continue;
        }

        for (k = 0; k < pg->connections; k++) {
            pc = &pg->conns[k];

            if (pc->timer.timer_set) {
                ngx_del_timer(&pc->timer);
            }

            if (pc->pg) {
                if (pc->c) {
                    ngx_game_conn_unbind(pc->c);
                    pc->c = NULL;
                }
                PQfinish(pc->pg);
                pc->pg = NULL;
            }
        }
    }
}


/* connecting */

static void
ngx_game_pg_connect(ngx_game_pg_conn_t *pc)
{
    char                 keepalive[NGX_INT_T_LEN + 1];
    ngx_game_pg_pool_t  *pg = pc->pool;

    /* our defaults first: with expand_dbname, the pool's connection
     * string comes last and overrides any of them */
    const char  *keys[] = { "application_name", "keepalives",
                            "keepalives_idle", "dbname", NULL };
    const char  *vals[] = { "nginx-game", "1", keepalive,
                            (const char *) pg->conninfo.data, NULL };

    if (ngx_exiting || ngx_terminate || ngx_quit) {
        return;
    }

    *ngx_snprintf((u_char *) keepalive, sizeof(keepalive) - 1, "%T",
                  pg->keepalive) = '\0';

    if (pg->keepalive == 0) {
        vals[1] = "0";
        vals[2] = "0";
    }

    pc->pg = PQconnectStartParams(keys, vals, 1);

    if (pc->pg == NULL || PQstatus(pc->pg) == CONNECTION_BAD) {
        ngx_game_pg_log_error(pc, NGX_LOG_ERR, "PQconnectStart()");
        ngx_game_pg_close(pc, 1);
        return;
    }

    pc->c = ngx_game_conn_bind(PQsocket(pc->pg), pg->log,
                               ngx_game_pg_read_handler,
                               ngx_game_pg_write_handler, pc);
    if (pc->c == NULL) {
        ngx_game_pg_close(pc, 1);
        return;
    }

    pc->state = NGX_GAME_PG_CONNECTING;
    ngx_add_timer(&pc->timer, pg->connect_timeout);

    /* libpq: start as if PQconnectPoll() had asked for writability */
    if (ngx_game_conn_watch(pc->c, 0, 1) != NGX_OK) {
        ngx_game_pg_close(pc, 1);
    }
}


static void
ngx_game_pg_connect_poll(ngx_game_pg_conn_t *pc)
{
    ngx_int_t                  rc;
    PostgresPollingStatusType  status;

    /* libpq may close and reopen its socket between polls (another host
     * address, a refused SSL negotiation), so we re-learn it every time */
    (void) ngx_game_conn_watch(pc->c, 0, 0);

    status = PQconnectPoll(pc->pg);

    if (PQsocket(pc->pg) != -1) {
        pc->c->fd = PQsocket(pc->pg);
    }

    switch (status) {

    case PGRES_POLLING_READING:
        rc = ngx_game_conn_watch(pc->c, 1, 0);
        break;

    case PGRES_POLLING_WRITING:
        rc = ngx_game_conn_watch(pc->c, 0, 1);
        break;

    case PGRES_POLLING_OK:
        ngx_game_pg_connected(pc);
        return;

    default: /* PGRES_POLLING_FAILED */
        ngx_game_pg_log_error(pc, NGX_LOG_ERR, "connect");
        ngx_game_pg_close(pc, 1);
        return;
    }

    if (rc != NGX_OK) {
        ngx_game_pg_close(pc, 1);
    }
}


static void
ngx_game_pg_connected(ngx_game_pg_conn_t *pc)
{
    ngx_game_pg_pool_t  *pg = pc->pool;

    if (pc->timer.timer_set) {
        ngx_del_timer(&pc->timer);
    }

    if (PQsetnonblocking(pc->pg, 1) != 0
        || ngx_game_conn_watch(pc->c, 1, 0) != NGX_OK)
    {
        ngx_game_pg_log_error(pc, NGX_LOG_ERR, "PQsetnonblocking()");
        ngx_game_pg_close(pc, 1);
        return;
    }

    if (pg->down) {
        ngx_log_error(NGX_LOG_NOTICE, pg->log, 0,
                      "game: PostgreSQL pool \"%V\" is up again", &pg->name);
    }

    ngx_log_debug1(NGX_LOG_DEBUG_EVENT, pg->log, 0,
                   "game pg \"%V\": connected", &pg->name);

    pc->backoff = 0;
    pc->nprepared = 0;
    pg->down = 0;
    pg->nconnected++;

    ngx_game_pg_release(pc);
}


/*
 * Close a connection and open it again: at once after a connection that
 * worked broke, after a growing delay when connecting "failed".  Any query
 * still on it fails as unavailable; when no connection of the pool is up
 * after a failed attempt, the pool is down and its waiting queries fail.
 */

static void
ngx_game_pg_close(ngx_game_pg_conn_t *pc, ngx_uint_t failed)
{
    ngx_msec_t            delay;
    ngx_game_pg_query_t  *q;
    ngx_game_pg_pool_t   *pg = pc->pool;

    if (pc->state >= NGX_GAME_PG_IDLE) {
        pg->nconnected--;
    }

    if (pc->state == NGX_GAME_PG_IDLE) {
        ngx_queue_remove(&pc->idle);
    }

    if (pc->timer.timer_set) {
        ngx_del_timer(&pc->timer);
    }

    if (pc->res) {
        PQclear(pc->res);
        pc->res = NULL;
    }

    if (pc->c) {
        ngx_game_conn_unbind(pc->c);
        pc->c = NULL;
    }

    if (pc->pg) {
        PQfinish(pc->pg);
        pc->pg = NULL;
    }

    pc->state = NGX_GAME_PG_CLOSED;

    q = pc->query;
    pc->query = NULL;
    pc->stmt = NULL;

    if (!failed) {
        pc->backoff = 0;
        delay = 1;

    } else {
        /* a connection attempt failed: the database is likely down */
        pc->backoff = game_backoff_next(pc->backoff, NGX_GAME_BACKOFF_MIN,
                                        NGX_GAME_BACKOFF_MAX);
        delay = pc->backoff;

        if (pg->nconnected == 0 && !pg->down) {
            ngx_log_error(NGX_LOG_ERR, pg->log, 0,
                          "game: PostgreSQL pool \"%V\" is down",
                          &pg->name);
            pg->down = 1;
        }
    }

    if (!ngx_exiting && !ngx_terminate && !ngx_quit) {
        ngx_add_timer(&pc->timer, delay);
    }

    if (q) {
        ngx_game_pg_deliver(q, NGX_GAME_UNAVAILABLE, NULL);
    }

    if (pg->down) {
        ngx_game_pg_fail_waiting(pg);
    }
}


static void
ngx_game_pg_broken(ngx_game_pg_conn_t *pc, const char *what)
{
    ngx_game_pg_log_error(pc, NGX_LOG_WARN, what);

    /* the server went away under us: try again at once, then back off */
    ngx_game_pg_close(pc, 0);
}


static void
ngx_game_pg_timer_handler(ngx_event_t *ev)
{
    ngx_game_pg_conn_t  *pc = ev->data;

    if (pc->state == NGX_GAME_PG_CONNECTING) {
        ngx_log_error(NGX_LOG_ERR, pc->pool->log, 0,
                      "game: PostgreSQL pool \"%V\": connect timed out",
                      &pc->pool->name);
        ngx_game_pg_close(pc, 1);
        return;
    }

    if (pc->state == NGX_GAME_PG_CLOSED) {
        ngx_game_pg_connect(pc);
    }
}


/* I/O */

static void
ngx_game_pg_read_handler(ngx_event_t *ev)
{
    ngx_connection_t    *c = ev->data;
    ngx_game_pg_conn_t  *pc = c->data;

    if (pc->state == NGX_GAME_PG_CONNECTING) {
        ngx_game_pg_connect_poll(pc);
        return;
    }

    if (!PQconsumeInput(pc->pg) || PQstatus(pc->pg) == CONNECTION_BAD) {
        ngx_game_pg_broken(pc, "read");
        return;
    }

    if (pc->state == NGX_GAME_PG_IDLE) {
        /* a notice or parameter status between queries: nothing to do */
        return;
    }

    ngx_game_pg_collect(pc);
}


static void
ngx_game_pg_write_handler(ngx_event_t *ev)
{
    ngx_connection_t    *c = ev->data;
    ngx_game_pg_conn_t  *pc = c->data;

    if (pc->state == NGX_GAME_PG_CONNECTING) {
        ngx_game_pg_connect_poll(pc);
        return;
    }

    if (ngx_game_pg_flush(pc) != NGX_OK) {
        ngx_game_pg_broken(pc, "write");
    }
}


static ngx_int_t
ngx_game_pg_flush(ngx_game_pg_conn_t *pc)
{
    switch (PQflush(pc->pg)) {

    case 0:
        return ngx_game_conn_watch(pc->c, 1, 0);

    case 1:
        return ngx_game_conn_watch(pc->c, 1, 1);

    default:
        return NGX_ERROR;
    }
}


static ngx_int_t
ngx_game_pg_send(ngx_game_pg_conn_t *pc, ngx_game_pg_query_t *q)
{
    int                  ok;
    ngx_game_pg_stmt_t  *stmt = q->stmt;

    pc->stmt = stmt;

    if (ngx_game_pg_is_prepared(pc, stmt)) {
        pc->state = NGX_GAME_PG_EXECUTING;
        ok = PQsendQueryPrepared(pc->pg, stmt->name, stmt->nparams,
                                 q->values, NULL, NULL, 0);

    } else {
        pc->state = NGX_GAME_PG_PREPARING;
        ok = PQsendPrepare(pc->pg, stmt->name, stmt->sql, stmt->nparams,
                           NULL);
    }

    if (!ok) {
        return NGX_ERROR;
    }

    return ngx_game_pg_flush(pc);
}


static void
ngx_game_pg_collect(ngx_game_pg_conn_t *pc)
{
    PGresult  *res;

    while (!PQisBusy(pc->pg)) {
        res = PQgetResult(pc->pg);

        if (res == NULL) {
            ngx_game_pg_step_done(pc);
            return;
        }

        /* one statement gives one result; keep the last to be safe */
        if (pc->res) {
            PQclear(pc->res);
        }
        pc->res = res;
    }
}


static void
ngx_game_pg_step_done(ngx_game_pg_conn_t *pc)
{
    ngx_int_t             rc;
    PGresult             *res;
    ExecStatusType        status;
    ngx_game_pg_query_t  *q;

    res = pc->res;
    pc->res = NULL;
    status = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    q = pc->query;

    if (pc->state == NGX_GAME_PG_PREPARING && status == PGRES_COMMAND_OK) {
        PQclear(res);

        /* the table holds every statement the modules declare, with
         * room to spare; were it ever full, the next PREPARE of a name the
         * server knows fails loudly with "already exists" */
        if (pc->nprepared < NGX_GAME_PG_MAX_STMTS) {
            pc->prepared[pc->nprepared++] = pc->stmt;
        }

        if (q == NULL) {
            /* the request went away; the statement stays prepared */
            ngx_game_pg_release(pc);
            return;
        }

        if (ngx_game_pg_send(pc, q) != NGX_OK) {
            ngx_game_pg_broken(pc, "send");
        }
        return;
    }

    if (status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK) {
        rc = NGX_OK;

    } else {
        rc = NGX_GAME_QUERY_ERROR;
        ngx_log_error(NGX_LOG_ERR, pc->pool->log, 0,
                      "game: PostgreSQL pool \"%V\": statement \"%s\" "
                      "failed: %s", &pc->pool->name,
                      q ? q->stmt->name : "(cancelled)",
                      res ? PQresultErrorMessage(res) : "no result");
    }

    pc->query = NULL;
    pc->stmt = NULL;
    pc->state = NGX_GAME_PG_IDLE;
    ngx_queue_insert_head(&pc->pool->idle, &pc->idle);

    if (q) {
        ngx_game_pg_deliver(q, rc, res);
    }

    if (res) {
        PQclear(res);
    }

    /* the handler may have run a new query on this very connection */
    if (pc->state == NGX_GAME_PG_IDLE) {
        ngx_queue_remove(&pc->idle);
        ngx_game_pg_release(pc);
    }
}


static ngx_uint_t
ngx_game_pg_is_prepared(ngx_game_pg_conn_t *pc, ngx_game_pg_stmt_t *stmt)
{
    ngx_uint_t  i;

    for (i = 0; i < pc->nprepared; i++) {
        if (pc->prepared[i] == stmt) {
            return 1;
        }
    }

    return 0;
}


/*
 * A connection is free: hand it the oldest waiting query, or park it.
 */

static void
ngx_game_pg_release(ngx_game_pg_conn_t *pc)
{
    ngx_queue_t          *head;
    ngx_game_pg_pool_t   *pg = pc->pool;
    ngx_game_pg_query_t  *q;

    pc->state = NGX_GAME_PG_IDLE;

    while (!ngx_queue_empty(&pg->waiting)) {
        head = ngx_queue_head(&pg->waiting);
        q = ngx_queue_data(head, ngx_game_pg_query_t, queue);
        ngx_queue_remove(head);
        pg->nwaiting--;
        q->queued = 0;

        if (ngx_game_pg_send(pc, q) != NGX_OK) {
            pc->query = q;
            q->conn = pc;
            ngx_game_pg_broken(pc, "send");
            return;
        }

        pc->query = q;
        q->conn = pc;
        return;
    }

    ngx_queue_insert_head(&pg->idle, &pc->idle);
}


static void
ngx_game_pg_fail_waiting(ngx_game_pg_pool_t *pg)
{
    ngx_queue_t          *head;
    ngx_game_pg_query_t  *q;

    while (!ngx_queue_empty(&pg->waiting)) {
        head = ngx_queue_head(&pg->waiting);
        q = ngx_queue_data(head, ngx_game_pg_query_t, queue);
        ngx_game_pg_deliver(q, NGX_GAME_UNAVAILABLE, NULL);
    }
}


/* queries */

ngx_game_pg_query_t *
ngx_game_pg_query_create(ngx_pool_t *pool, ngx_log_t *log,
    ngx_game_pg_stmt_t *stmt)
{
    ngx_pool_cleanup_t   *cln;
    ngx_game_pg_query_t  *q;

    q = ngx_pcalloc(pool, sizeof(ngx_game_pg_query_t));
    if (q == NULL) {
        return NULL;
    }

    cln = ngx_pool_cleanup_add(pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    cln->handler = ngx_game_pg_query_cleanup;
    cln->data = q;

    q->stmt = stmt;
    q->log = log;
    q->timer.handler = ngx_game_pg_query_timeout;
    q->timer.data = q;
    q->timer.log = log;
    q->done = 1;

    return q;
}


ngx_int_t
ngx_game_pg_query_run(ngx_game_pg_pool_t *pg, ngx_game_pg_query_t *q)
{
    ngx_queue_t         *head;
    ngx_game_pg_conn_t  *pc;

    q->pool = pg;

    if (pg->conns == NULL) {
        /* not started: a pool used only in the master, or a bug */
        return NGX_GAME_UNAVAILABLE;
    }

    q->done = 0;
    q->conn = NULL;

    if (!ngx_queue_empty(&pg->idle)) {
        head = ngx_queue_head(&pg->idle);
        pc = ngx_queue_data(head, ngx_game_pg_conn_t, idle);
        ngx_queue_remove(head);

        if (ngx_game_pg_send(pc, q) != NGX_OK) {
            q->done = 1;
            ngx_game_pg_broken(pc, "send");
            return NGX_GAME_UNAVAILABLE;
        }

        pc->query = q;
        q->conn = pc;
        ngx_add_timer(&q->timer, pg->query_timeout);
        return NGX_AGAIN;
    }

    if (pg->down || pg->nwaiting >= pg->max_queue) {
        q->done = 1;

        if (!pg->down) {
            ngx_log_error(NGX_LOG_WARN, q->log, 0,
                          "game: PostgreSQL pool \"%V\": %ui queries "
                          "waiting, max_queue reached",
                          &pg->name, pg->nwaiting);
        }

        return NGX_GAME_UNAVAILABLE;
    }

    ngx_queue_insert_tail(&pg->waiting, &q->queue);
    pg->nwaiting++;
    q->queued = 1;
    ngx_add_timer(&q->timer, pg->query_timeout);

    return NGX_AGAIN;
}


static void
ngx_game_pg_deliver(ngx_game_pg_query_t *q, ngx_int_t rc, PGresult *res)
{
    if (q->queued) {
        ngx_queue_remove(&q->queue);
        q->pool->nwaiting--;
        q->queued = 0;
    }

    if (q->timer.timer_set) {
        ngx_del_timer(&q->timer);
    }

    q->conn = NULL;
    q->done = 1;
    q->handler(q, rc, res);
}


static void
ngx_game_pg_query_timeout(ngx_event_t *ev)
{
    ngx_game_pg_query_t  *q = ev->data;
    ngx_game_pg_conn_t   *pc = q->conn;

    ngx_log_error(NGX_LOG_WARN, q->log, 0,
                  "game: PostgreSQL pool \"%V\": statement \"%s\" timed out",
                  &q->pool->name, q->stmt->name);

    if (pc) {
        /* mid-result: the connection cannot be reused */
        pc->query = NULL;
        ngx_game_pg_close(pc, 0);
    }

    ngx_game_pg_deliver(q, NGX_GAME_TIMEOUT, NULL);
}


static void
ngx_game_pg_query_cleanup(void *data)
{
    ngx_game_pg_query_t  *q = data;
    ngx_game_pg_conn_t   *pc = q->conn;

    if (q->done) {
        return;
    }

    if (q->queued) {
        ngx_queue_remove(&q->queue);
        q->pool->nwaiting--;
        q->queued = 0;
    }

    if (q->timer.timer_set) {
        ngx_del_timer(&q->timer);
    }

    q->done = 1;

    if (pc) {
        /* let the statement finish; its result is dropped */
        pc->query = NULL;
        q->conn = NULL;
    }
}


static void
ngx_game_pg_log_error(ngx_game_pg_conn_t *pc, ngx_uint_t level,
    const char *what)
{
    size_t       len;
    const char  *msg;

    msg = pc->pg ? PQerrorMessage(pc->pg) : "out of memory";
    len = ngx_strlen(msg);

    /* libpq ends its messages with a newline */
    while (len && (msg[len - 1] == '\n' || msg[len - 1] == '\r')) {
        len--;
    }

    ngx_log_error(level, pc->pool->log, 0,
                  "game: PostgreSQL pool \"%V\": %s failed: %*s",
                  &pc->pool->name, what, len, msg);
}
