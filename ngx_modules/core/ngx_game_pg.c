
/*
 * PostgreSQL connection pools, one set of connections per worker.
 *
 * Every connection is a libpq PGconn in non-blocking pipeline mode whose
 * socket is watched by the worker's event loop; nothing here ever waits.
 * A query goes to the connection with the fewest queries in flight; each
 * connection carries up to "pipeline" queries at once, so that under load
 * one wakeup of a backend serves several requests.  Each query is its own
 * sync group (Prepare if needed, Execute, Sync): an error aborts that query
 * only, never its neighbours.  Statements are prepared the first time a
 * connection runs them and stay prepared for its lifetime.  When every
 * connection is full, queries wait in the pool's queue (max_queue).
 *
 * Host names are refused at configuration time: libpq resolves them with a
 * blocking getaddrinfo() in PQconnectStart(), which would stall the worker
 * (a pool names its server by address, a unix socket directory, or
 * hostaddr= beside the name).
 *
 * Failure rules, chosen so that a request never hangs on a dead database
 * and the database never works for a request that is gone:
 *   - every statement is bounded on the server too: each connection starts
 *     with statement_timeout and lock_timeout set to query_timeout, and
 *     client_connection_check_interval, so that a backend abandons a
 *     statement whose connection we closed (ngx_game_pg_params_init);
 *   - a query that times out takes its connection down with it: the
 *     connection is mid-result and cannot be reused, so it is closed (which
 *     cancels the statement, see above) and reopened, and the other queries
 *     on it fail as unavailable.  PQcancel() is not used: in libpq 15 it
 *     connects and waits, blocking the worker;
 *   - the server giving up on a statement (57014, or 55P03 from
 *     lock_timeout) is a timeout too, unless the query expects that error;
 *   - a connection that breaks fails its queries with NGX_GAME_UNAVAILABLE
 *     and reconnects at once the first time; until a query succeeds on the
 *     new connection, further breaks, timeouts and failed attempts back off
 *     from 100 ms doubling to 1 s, so that a lock incident or a server
 *     that kills its backends does not make us reconnect in a loop;
 *   - while no connection of a pool is up and the last attempt failed, the
 *     pool is "down": queries fail at once instead of queueing.
 *
 * A pool declared with copy=on runs COPY FROM STDIN (bulk loads,
 * ngx_game_pg_copy_t): its connections stay out of pipeline mode, carry
 * one query at a time, and walk a copy query through its steps (BEGIN, the
 * caller's SQL, COPY and its rows, the statement, COMMIT, or ROLLBACK
 * after an error) one round trip each; the failure rules above hold.
 * That walk lives in ngx_game_pg_copy.c, the pools' metrics in
 * ngx_game_pg_metrics.c, the naming of connections for tracing in
 * ngx_game_pg_trace.c.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_game_pg_internal.h"
#include "ngx_game_conn.h"
#include "ngx_game_conf.h"
#include "game_util.h"


static char *ngx_game_pg_params_init(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_game_pg_pool_t *pg);
static char *ngx_game_pg_hosts_check(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_game_pg_pool_t *pg, const char *host, const char *hostaddr);
static ngx_uint_t ngx_game_pg_is_address(u_char *p, size_t len);
static const char *ngx_game_pg_strdup(ngx_conf_t *cf, const char *s);
static void ngx_game_pg_connect(ngx_game_pg_conn_t *pc);
static void ngx_game_pg_connect_poll(ngx_game_pg_conn_t *pc);
static void ngx_game_pg_connected(ngx_game_pg_conn_t *pc);
static void ngx_game_pg_timer_handler(ngx_event_t *ev);
static void ngx_game_pg_read_handler(ngx_event_t *ev);
static void ngx_game_pg_write_handler(ngx_event_t *ev);
static ngx_int_t ngx_game_pg_send(ngx_game_pg_conn_t *pc,
    ngx_game_pg_query_t *q);
static void ngx_game_pg_collect(ngx_game_pg_conn_t *pc);
static void ngx_game_pg_result(ngx_game_pg_conn_t *pc, PGresult *res);
static void ngx_game_pg_complete(ngx_game_pg_conn_t *pc);
static ngx_uint_t ngx_game_pg_expected(ngx_game_pg_query_t *q,
    const char *state);
static void ngx_game_pg_notice(void *data, const PGresult *res);
static size_t ngx_game_pg_text_len(const char *msg);
static ngx_game_pg_conn_t *ngx_game_pg_pick(ngx_game_pg_pool_t *pg);
static void ngx_game_pg_fail_waiting(ngx_game_pg_pool_t *pg);
static void ngx_game_pg_query_timeout(ngx_event_t *ev);
static void ngx_game_pg_query_cleanup(void *data);
static void ngx_game_pg_log_error(ngx_game_pg_conn_t *pc, ngx_uint_t level,
    const char *what);


/* configuration */

static ngx_game_param_t  ngx_game_pg_params[] = {

    { ngx_string("connections="), NGX_GAME_PARAM_NUMBER,
      offsetof(ngx_game_pg_pool_t, connections), 1, 512 },

    /* queries in flight on one connection at once */
    { ngx_string("pipeline="), NGX_GAME_PARAM_NUMBER,
      offsetof(ngx_game_pg_pool_t, pipeline), 1, 256 },

    { ngx_string("max_queue="), NGX_GAME_PARAM_NUMBER,
      offsetof(ngx_game_pg_pool_t, max_queue), 0, 1000000 },

    { ngx_string("connect_timeout="), NGX_GAME_PARAM_MSEC,
      offsetof(ngx_game_pg_pool_t, connect_timeout), 0, 0 },

    { ngx_string("query_timeout="), NGX_GAME_PARAM_MSEC,
      offsetof(ngx_game_pg_pool_t, query_timeout), 0, 0 },

    /* TCP keepalive idle time; 0 turns keepalive probes off */
    { ngx_string("keepalive="), NGX_GAME_PARAM_SEC,
      offsetof(ngx_game_pg_pool_t, keepalive), 0, 0 },

    /* COPY FROM STDIN (ngx_game_pg_copy_t): no pipeline, one query at a
     * time */
    { ngx_string("copy="), NGX_GAME_PARAM_FLAG,
      offsetof(ngx_game_pg_pool_t, copy), 0, 0 },

    /* statements run under their sender's application_name ("Tracing" in
     * ngx_game_core.h) */
    { ngx_string("trace="), NGX_GAME_PARAM_FLAG,
      offsetof(ngx_game_pg_pool_t, trace), 0, 0 },

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


char *
ngx_game_conf_set_pg_pool_slot(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    void       **field;
    ngx_str_t   *value;

    field = (void **) ((u_char *) conf + cmd->offset);

    if (*field != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;
    *field = ngx_game_pg_pool_lookup(cf, &value[1]);

    return *field ? NGX_CONF_OK : NGX_CONF_ERROR;
}


ngx_str_t *
ngx_game_pg_pool_name(ngx_game_pg_pool_t *pg)
{
    return &pg->name;
}


/*
 * game_pg_pool name conninfo [connections=N] [max_queue=N]
 *              [connect_timeout=time] [query_timeout=time] [keepalive=time]
 *              [copy=on|off] [trace=on|off];
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
    pg->pipeline = 8;
    pg->max_queue = 1024;
    pg->connect_timeout = 2000;
    pg->query_timeout = 5000;
    pg->keepalive = 30;
    pg->trace = 1;

    if (ngx_game_conf_params(cf, cmd, 3, ngx_game_pg_params, pg)
        != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (pg->copy) {
        /* one copy query at a time: COPY cannot share a connection */
        pg->pipeline = 1;
    }

    return ngx_game_pg_params_init(cf, cmd, pg);
}


/*
 * libpq's connection parameters, built once: our defaults for what the
 * connection string leaves unset, then everything it sets.  A malformed
 * string is a configuration error, not an outage to retry forever; so is
 * a host libpq would resolve with a blocking call, and a service file
 * (read at every connect, and it may name hosts).
 *
 * Every backend starts with the pool's bounds (the server's "options"),
 * ahead of any the connection string gives, which therefore win:
 *   statement_timeout, lock_timeout = query_timeout: the server never
 *     works on, or waits for a lock for, a statement longer than we wait
 *     for its answer (our wait also counts the queue, so ours ends first);
 *   client_connection_check_interval (PostgreSQL 14 and later): a backend
 *     running a statement notices within it that we closed the connection
 *     (which is what a query timeout does) and abandons the statement.
 */

static char *
ngx_game_pg_params_init(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_game_pg_pool_t *pg)
{
    char               *err, *rv;
    u_char             *p;
    size_t              len;
    ngx_uint_t          i, n;
    const char         *host, *hostaddr, *options;
    PQconninfoOption   *opts, *o;

    /* keyword, default: the keepalive values follow the pool's keepalive */
    static const char  *defaults[] = {
        "application_name", "nginx-game",
        /* GSS encryption would be negotiated first when the worker finds
         * Kerberos credentials, with calls that may block */
        "gssencmode", "disable",
        "keepalives", NULL,
        "keepalives_idle", NULL,
        NULL
    };

    err = NULL;
    opts = PQconninfoParse((char *) pg->conninfo.data, &err);

    if (opts == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid connection string \"%V\" in \"%V\" "
                           "directive: %s", &pg->conninfo, &cmd->name,
                           err ? err : "out of memory");
        if (err) {
            PQfreemem(err);
        }
        return NGX_CONF_ERROR;
    }

    rv = NGX_CONF_ERROR;
    host = NULL;
    hostaddr = NULL;
    options = NULL;
    n = sizeof(defaults) / sizeof(defaults[0]) / 2 + 1;

    for (o = opts; o->keyword; o++) {
        if (o->val == NULL) {
            continue;
        }

        if (ngx_strcmp(o->keyword, "service") == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"service\" in the connection string of "
                               "\"%V\" pool \"%V\": libpq would read the "
                               "service file at every connect; give its "
                               "parameters in the connection string",
                               &cmd->name, &pg->name);
            goto done;
        }

        if (ngx_strcmp(o->keyword, "host") == 0) {
            host = o->val;

        } else if (ngx_strcmp(o->keyword, "hostaddr") == 0) {
            hostaddr = o->val;

        } else if (ngx_strcmp(o->keyword, "options") == 0) {
            options = o->val;
        }

        n++;
    }

    if (ngx_game_pg_hosts_check(cf, cmd, pg, host, hostaddr) != NGX_CONF_OK) {
        goto done;
    }

    pg->keys = ngx_pcalloc(cf->pool, (n + 1) * sizeof(char *));
    pg->values = ngx_pcalloc(cf->pool, (n + 1) * sizeof(char *));
    if (pg->keys == NULL || pg->values == NULL) {
        goto done;
    }

    len = sizeof("-c statement_timeout= -c lock_timeout= "
                 "-c client_connection_check_interval= ") - 1
          + 3 * NGX_INT_T_LEN + (options ? ngx_strlen(options) : 0);

    p = ngx_pnalloc(cf->pool, len + 1);
    if (p == NULL) {
        goto done;
    }

    *ngx_snprintf(p, len, "-c statement_timeout=%M -c lock_timeout=%M "
                  "-c client_connection_check_interval=%M %s",
                  pg->query_timeout, pg->query_timeout,
                  ngx_min(pg->query_timeout, (ngx_msec_t) 1000),
                  options ? options : "")
        = '\0';

    pg->keys[0] = "options";
    pg->values[0] = (const char *) p;
    n = 1;

    for (i = 0; defaults[i]; i += 2) {
        for (o = opts; o->keyword; o++) {
            if (o->val && ngx_strcmp(o->keyword, defaults[i]) == 0) {
                break;
            }
        }

        if (o->keyword) {
            /* the connection string says */
            continue;
        }

        pg->keys[n] = defaults[i];
        pg->values[n] = defaults[i + 1];

        if (ngx_strcmp(defaults[i], "keepalives") == 0) {
            pg->values[n] = pg->keepalive ? "1" : "0";

        } else if (ngx_strcmp(defaults[i], "keepalives_idle") == 0) {
            p = ngx_pnalloc(cf->pool, NGX_TIME_T_LEN + 1);
            if (p == NULL) {
                goto done;
            }
            *ngx_sprintf(p, "%T", pg->keepalive) = '\0';
            pg->values[n] = (const char *) p;
        }

        n++;
    }

    for (o = opts; o->keyword; o++) {
        if (o->val == NULL || ngx_strcmp(o->keyword, "options") == 0) {
            continue;
        }

        pg->keys[n] = ngx_game_pg_strdup(cf, o->keyword);
        pg->values[n] = ngx_game_pg_strdup(cf, o->val);
        if (pg->keys[n] == NULL || pg->values[n] == NULL) {
            goto done;
        }

        n++;
    }

    /* the name a connection starts with: ours, or the string's */
    for (i = 0; i < n; i++) {
        if (ngx_strcmp(pg->keys[i], "application_name") == 0) {
            pg->app.data = (u_char *) pg->values[i];
            pg->app.len = ngx_min(ngx_strlen(pg->values[i]),
                                  NGX_GAME_PG_APP_LEN);
        }
    }

    rv = NGX_CONF_OK;

done:

    PQconninfoFree(opts);

    return rv;
}


/*
 * Every server of the (comma-separated) host list must be reachable
 * without a name lookup: an IP address, a unix socket directory ("/..."
 * or "@..."), the default local socket (empty), or a name with its
 * address in the matching hostaddr entry.
 */

static char *
ngx_game_pg_hosts_check(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_game_pg_pool_t *pg, const char *host, const char *hostaddr)
{
    u_char  *h, *he, *a, *ae, *hend, *aend;

    h = (u_char *) (host ? host : "");
    a = (u_char *) (hostaddr ? hostaddr : "");
    hend = h + ngx_strlen(h);
    aend = a + ngx_strlen(a);

    for ( ;; ) {
        he = ngx_strlchr(h, hend, ',');
        if (he == NULL) {
            he = hend;
        }

        ae = ngx_strlchr(a, aend, ',');
        if (ae == NULL) {
            ae = aend;
        }

        if (ae > a) {
            if (!ngx_game_pg_is_address(a, ae - a)) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid hostaddr \"%*s\" in \"%V\" "
                                   "pool \"%V\": an IP address is expected",
                                   ae - a, a, &cmd->name, &pg->name);
                return NGX_CONF_ERROR;
            }

        } else if (he > h && h[0] != '/' && h[0] != '@'
                   && !ngx_game_pg_is_address(h, he - h))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "host \"%*s\" in \"%V\" pool \"%V\" is a "
                               "name, which libpq resolves with a blocking "
                               "call: give its IP address, as host= or as "
                               "hostaddr= beside the name",
                               he - h, h, &cmd->name, &pg->name);
            return NGX_CONF_ERROR;
        }

        if (he == hend && ae == aend) {
            return NGX_CONF_OK;
        }

        h = (he == hend) ? hend : he + 1;
        a = (ae == aend) ? aend : ae + 1;
    }
}


static ngx_uint_t
ngx_game_pg_is_address(u_char *p, size_t len)
{
#if (NGX_HAVE_INET6)
    u_char  addr6[16];

    if (ngx_inet6_addr(p, len, addr6) == NGX_OK) {
        return 1;
    }
#endif

    return ngx_inet_addr(p, len) != INADDR_NONE;
}


static const char *
ngx_game_pg_strdup(ngx_conf_t *cf, const char *s)
{
    size_t   len;
    u_char  *p;

    len = ngx_strlen(s);

    p = ngx_pnalloc(cf->pool, len + 1);
    if (p == NULL) {
        return NULL;
    }

    ngx_memcpy(p, s, len + 1);

    return (const char *) p;
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
        ngx_queue_init(&pg->waiting);

        pg->conns = ngx_pcalloc(cycle->pool,
                                pg->connections * sizeof(ngx_game_pg_conn_t));
        if (pg->conns == NULL) {
            return NGX_ERROR;
        }

        for (k = 0; k < pg->connections; k++) {
            pc = &pg->conns[k];
            pc->pool = pg;

            pc->inflight = ngx_pcalloc(cycle->pool,
                                  pg->pipeline * sizeof(ngx_game_pg_entry_t));
            if (pc->inflight == NULL) {
                return NGX_ERROR;
            }

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
                    ngx_game_conn_unbind(pc->c, PQsocket(pc->pg) == -1);
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
    ngx_game_pg_pool_t  *pg = pc->pool;

    if (ngx_exiting || ngx_terminate || ngx_quit) {
        return;
    }

    pc->pg = PQconnectStartParams(pg->keys, pg->values, 0);

    if (pc->pg == NULL || PQstatus(pc->pg) == CONNECTION_BAD) {
        ngx_game_pg_log_error(pc, NGX_LOG_ERR, "PQconnectStart()");
        ngx_game_pg_close(pc, NGX_GAME_PG_FAILED);
        return;
    }

    (void) PQsetNoticeReceiver(pc->pg, ngx_game_pg_notice, pc);

    pc->c = ngx_game_conn_bind(PQsocket(pc->pg), pg->log,
                               ngx_game_pg_read_handler,
                               ngx_game_pg_write_handler, pc);
    if (pc->c == NULL) {
        ngx_game_pg_close(pc, NGX_GAME_PG_FAILED);
        return;
    }

    pc->state = NGX_GAME_PG_CONNECTING;
    ngx_add_timer(&pc->timer, pg->connect_timeout);

    /* libpq: start as if PQconnectPoll() had asked for writability */
    if (ngx_game_conn_watch(pc->c, 0, 1) != NGX_OK) {
        ngx_game_pg_close(pc, NGX_GAME_PG_FAILED);
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
        ngx_game_pg_close(pc, NGX_GAME_PG_FAILED);
        return;
    }

    if (rc != NGX_OK) {
        ngx_game_pg_close(pc, NGX_GAME_PG_FAILED);
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
        || (!pg->copy && PQenterPipelineMode(pc->pg) != 1)
        || ngx_game_conn_watch(pc->c, 1, 0) != NGX_OK)
    {
        ngx_game_pg_log_error(pc, NGX_LOG_ERR, "entering pipeline mode");
        ngx_game_pg_close(pc, NGX_GAME_PG_FAILED);
        return;
    }

    if (pg->down) {
        ngx_log_error(NGX_LOG_NOTICE, pg->log, 0,
                      "game: PostgreSQL pool \"%V\" is up again", &pg->name);
    }

    ngx_log_debug1(NGX_LOG_DEBUG_EVENT, pg->log, 0,
                   "game pg \"%V\": connected", &pg->name);

    pc->state = NGX_GAME_PG_READY;
    pc->broken = 0;
    pc->nprepared = 0;
    pg->down = 0;
    pg->nconnected++;

    /* the name it connected with */
    ngx_memcpy(pc->app, pg->app.data, pg->app.len);
    pc->app[pg->app.len] = '\0';
    pc->app_len = pg->app.len;
    pc->named = 1;

    ngx_game_pg_fill(pc);
}


/*
 * Close a connection and open it again: at once after a connection that
 * worked broke, after a growing delay when connecting "failed".  The
 * queries on it fail as unavailable; when no connection of the pool is up
 * after a failed attempt, the pool is down and its waiting queries fail.
 */

void
ngx_game_pg_close(ngx_game_pg_conn_t *pc, ngx_uint_t why)
{
    ngx_uint_t            i, n;
    ngx_msec_t            delay;
    ngx_game_pg_pool_t   *pg = pc->pool;
    ngx_game_pg_query_t  *q;
    ngx_game_pg_entry_t  *e;

    if (pc->state == NGX_GAME_PG_READY) {
        pg->nconnected--;
    }

    /* closed first, so that handlers called below cannot pick it */
    pc->state = NGX_GAME_PG_CLOSED;
    pc->broken = 0;
    pc->named = 0;

    pc->step = NGX_GAME_PG_COPY_IDLE;
    pc->out = NULL;
    pc->copy = NULL;

    if (pc->err) {
        PQclear(pc->err);
        pc->err = NULL;
    }

    if (pc->timer.timer_set) {
        ngx_del_timer(&pc->timer);
    }

    if (pc->c) {
        /* libpq closes the socket itself when it sees the server go */
        ngx_game_conn_unbind(pc->c, pc->pg == NULL || PQsocket(pc->pg) == -1);
        pc->c = NULL;
    }

    if (pc->pg) {
        PQfinish(pc->pg);
        pc->pg = NULL;
    }

    /* the backoff is reset only when a query succeeds on a connection */

    if (why == NGX_GAME_PG_BROKE && pc->backoff == 0) {
        delay = 1;
        pc->backoff = NGX_GAME_BACKOFF_MIN / 2;

    } else {
        pc->backoff = game_backoff_next(pc->backoff, NGX_GAME_BACKOFF_MIN,
                                        NGX_GAME_BACKOFF_MAX);
        delay = pc->backoff;
    }

    if (why == NGX_GAME_PG_FAILED) {
        /* a connection attempt failed: the database is likely down */

        if (pg->nconnected == 0 && !pg->down) {
            ngx_log_error(NGX_LOG_ERR, pg->log, 0,
                          "game: PostgreSQL pool \"%V\" is down",
                          &pg->name);
            pg->down = 1;
        }
    }

    if (!ngx_exiting && !ngx_terminate && !ngx_quit) {
        ngx_add_timer(&pc->timer, delay);
        ngx_game_metric_inc(pg->metrics->reconnects, pg->metric, 0, 1);
    }

    n = pc->count;
    pc->count = 0;

    for (i = 0; i < n; i++) {
        e = &pc->inflight[(pc->head + i) % pg->pipeline];
        q = e->query;
        e->query = NULL;

        if (e->res) {
            PQclear(e->res);
            e->res = NULL;
        }

        if (q) {
            ngx_game_pg_deliver(q, NGX_GAME_UNAVAILABLE, NULL);
        }
    }

    pc->head = 0;

    if (pg->down) {
        ngx_game_pg_fail_waiting(pg);
    }
}


void
ngx_game_pg_broken(ngx_game_pg_conn_t *pc, const char *what)
{
    ngx_game_pg_log_error(pc, NGX_LOG_WARN, what);

    /* the server went away under us: try again at once, then back off */
    ngx_game_pg_close(pc, NGX_GAME_PG_BROKE);
}


/*
 * A send failed where closing at once would call completion handlers from
 * within the code that is sending: the connection is taken out of use now
 * and closed from its write handler, posted to run later in this event
 * loop iteration.
 */

void
ngx_game_pg_break_later(ngx_game_pg_conn_t *pc)
{
    pc->broken = 1;

    if (!pc->c->write->posted) {
        ngx_post_event(pc->c->write, &ngx_posted_events);
    }
}


static void
ngx_game_pg_timer_handler(ngx_event_t *ev)
{
    ngx_game_pg_conn_t  *pc = ev->data;

    if (pc->state == NGX_GAME_PG_CONNECTING) {
        ngx_log_error(NGX_LOG_ERR, pc->pool->log, 0,
                      "game: PostgreSQL pool \"%V\": connect timed out",
                      &pc->pool->name);
        ngx_game_pg_close(pc, NGX_GAME_PG_FAILED);
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

    /* after a failed send libpq's idea of the pipeline is not ours:
     * nothing more is read from it */
    if (pc->broken) {
        ngx_game_pg_broken(pc, "send");
        return;
    }

    if (!PQconsumeInput(pc->pg) || PQstatus(pc->pg) == CONNECTION_BAD) {
        ngx_game_pg_broken(pc, "read");
        return;
    }

    if (pc->pool->copy) {
        ngx_game_pg_copy_collect(pc);
        return;
    }

    /* with nothing in flight, input is a notice or a parameter status */
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

    if (pc->broken) {
        ngx_game_pg_broken(pc, "write");
        return;
    }

    if (pc->step == NGX_GAME_PG_COPY_DATA) {
        /* the socket takes more rows */
        ngx_game_pg_copy_collect(pc);
        return;
    }

    if (ngx_game_pg_flush(pc) != NGX_OK) {
        ngx_game_pg_broken(pc, "write");
    }
}


ngx_int_t
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


/*
 * Queue one query on the connection: Prepare (first use on this
 * connection), Execute, Sync, behind the group that names the connection
 * for it if it needs one (ngx_game_pg_trace_send()).  The statement counts
 * as prepared from now on, so that a query right behind it in the pipeline
 * does not prepare it again; if the Prepare fails, ngx_game_pg_result()
 * forgets it.
 *
 * NGX_ERROR: the query is not in the pipeline and its caller fails it.
 * NGX_OK: the query is in flight, and its handler will be called, once.
 * That holds when the flush after it fails too: the connection then
 * breaks later (ngx_game_pg_break_later()) and its close fails the query
 * with the others in flight.  Either way the connection is not used again.
 */

static ngx_int_t
ngx_game_pg_send(ngx_game_pg_conn_t *pc, ngx_game_pg_query_t *q)
{
    ngx_uint_t            prepare;
    ngx_game_pg_stmt_t   *stmt = q->stmt;
    ngx_game_pg_entry_t  *e;

    if (pc->pool->copy) {
        return ngx_game_pg_copy_send(pc, q);
    }

    e = &pc->inflight[(pc->head + pc->count) % pc->pool->pipeline];

    if (ngx_game_pg_trace_send(pc, q, e) != NGX_OK) {
        ngx_game_pg_break_later(pc);
        return NGX_ERROR;
    }

    prepare = !ngx_game_pg_is_prepared(pc, stmt);

    if (prepare) {
        if (!PQsendPrepare(pc->pg, stmt->name, stmt->sql, stmt->nparams,
                           NULL))
        {
            ngx_game_pg_break_later(pc);
            return NGX_ERROR;
        }

        if (pc->nprepared < NGX_GAME_PG_MAX_STMTS) {
            pc->prepared[pc->nprepared++] = stmt;
        }
    }

    if (!PQsendQueryPrepared(pc->pg, stmt->name, stmt->nparams, q->values,
                             NULL, NULL, 0)
        || !PQpipelineSync(pc->pg))
    {
        ngx_game_pg_break_later(pc);
        return NGX_ERROR;
    }

    e->query = q;
    e->stmt = stmt;
    e->res = NULL;
    e->results = 0;
    e->prepare = prepare;

    pc->count++;
    q->conn = pc;
    q->entry = e;

    if (ngx_game_pg_flush(pc) != NGX_OK) {
        ngx_game_pg_break_later(pc);
    }

    return NGX_OK;
}


static void
ngx_game_pg_collect(ngx_game_pg_conn_t *pc)
{
    PGresult    *res;
    ngx_uint_t   ended;

    ended = 0;

    while (pc->count && pc->state == NGX_GAME_PG_READY
           && !PQisBusy(pc->pg))
    {
        res = PQgetResult(pc->pg);

        if (res != NULL) {
            ngx_game_pg_result(pc, res);
            ended = 0;
            continue;
        }

        /* NULL ends one statement's results within the sync group; a
         * second one in a row means libpq has nothing in flight while we
         * do: the two disagree, and the connection cannot be trusted */
        if (ended++) {
            ngx_log_error(NGX_LOG_ERR, pc->pool->log, 0,
                          "game: PostgreSQL pool \"%V\": the pipeline is "
                          "out of step, closing the connection",
                          &pc->pool->name);
            ngx_game_pg_close(pc, NGX_GAME_PG_BROKE);
            return;
        }
    }
}


/*
 * One result of the oldest query in flight.  Its sync group yields, in
 * order: the Prepare's result (if any), the Execute's result, a
 * PIPELINE_SYNC marker; the group naming the connection, if it was sent,
 * yields the same first.  After an error, the rest of the group comes back
 * as PIPELINE_ABORTED.  The handler gets the Execute's result, or the
 * first error.
 */

static void
ngx_game_pg_result(ngx_game_pg_conn_t *pc, PGresult *res)
{
    ExecStatusType        status;
    ngx_game_pg_entry_t  *e;

    e = &pc->inflight[pc->head];

    if (e->trace) {
        ngx_game_pg_trace_result(pc, e, res);
        return;
    }

    status = PQresultStatus(res);

    if (status == PGRES_PIPELINE_SYNC) {
        PQclear(res);
        ngx_game_pg_complete(pc);
        return;
    }

    if (status == PGRES_PIPELINE_ABORTED) {
        PQclear(res);
        return;
    }

    if (e->prepare && e->results++ == 0) {
        if (status == PGRES_COMMAND_OK) {
            PQclear(res);
            return;
        }

        ngx_game_pg_forget(pc, e->stmt);
    }

    if (e->res == NULL) {
        e->res = res;
        return;
    }

    /* a statement yields one result; anything more is not ours to keep */
    PQclear(res);
}


static void
ngx_game_pg_complete(ngx_game_pg_conn_t *pc)
{
    ngx_int_t             rc;
    PGresult             *res;
    ngx_game_pg_pool_t   *pg = pc->pool;
    ngx_game_pg_query_t  *q;
    ngx_game_pg_entry_t  *e;

    e = &pc->inflight[pc->head];
    q = e->query;
    res = e->res;

    e->query = NULL;
    e->res = NULL;
    pc->head = (pc->head + 1) % pg->pipeline;
    pc->count--;

    if (res) {
        /* the server answered: the connection works, reconnects after
         * its next failure start quick again */
        pc->backoff = 0;
    }

    rc = ngx_game_pg_outcome(pc, e, q, res);

    if (rc == NGX_AGAIN) {
        /* sent again, first in line: its Prepare goes with it this time */
        q->conn = NULL;
        q->entry = NULL;
        q->retried = 1;
        q->queued = 1;
        ngx_queue_insert_head(&pg->waiting, &q->queue);
        pg->nwaiting++;

    } else if (q) {
        ngx_game_pg_deliver(q, rc, rc == NGX_GAME_TIMEOUT ? NULL : res);
    }

    if (res) {
        PQclear(res);
    }

    /* the handler may have closed this connection by sending on it */
    if (pc->state == NGX_GAME_PG_READY) {
        ngx_game_pg_fill(pc);
    }
}


/*
 * What a finished statement means for its caller.  The server giving up
 * on it (statement_timeout, lock_timeout: see ngx_game_pg_params_init) is
 * a timeout like our own.
 *
 * NGX_AGAIN: run it again.  A query sent right behind the first use of
 * its statement on a connection relies on that Prepare; when the Prepare
 * failed (a lock timeout, say), the query's Execute found no statement
 * (26000) and never ran, so it is safe to send once more, with a Prepare.
 */

ngx_int_t
ngx_game_pg_outcome(ngx_game_pg_conn_t *pc, ngx_game_pg_entry_t *e,
    ngx_game_pg_query_t *q, PGresult *res)
{
    ngx_uint_t           expected;
    const char          *state;
    ExecStatusType       status;
    ngx_game_pg_stmt_t  *stmt = e->stmt;
    ngx_game_pg_pool_t  *pg = pc->pool;

    status = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;

    if (status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK) {
        return NGX_OK;
    }

    state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

    if (state && ngx_strcmp(state, "26000") == 0 /* no such statement */
        && !e->prepare && q && !q->retried)
    {
        ngx_log_debug2(NGX_LOG_DEBUG_EVENT, pg->log, 0,
                       "game pg \"%V\": \"%s\" again, its Prepare failed",
                       &pg->name, stmt->name);
        return NGX_AGAIN;
    }

    expected = ngx_game_pg_expected(q, state);

    if (state && !expected
        && (ngx_strcmp(state, "57014") == 0     /* query_canceled */
            || ngx_strcmp(state, "55P03") == 0)) /* lock_not_available */
    {
        ngx_log_error(NGX_LOG_WARN, pg->log, 0,
                      "game: PostgreSQL pool \"%V\": statement \"%s\" "
                      "ran out of time on the server (%s)",
                      &pg->name, stmt->name, state);
        return NGX_GAME_TIMEOUT;
    }

    ngx_game_pg_log_result(pc, stmt, res, expected);

    return NGX_GAME_QUERY_ERROR;
}


/* is "state" in the query's list of expected SQLSTATEs? */

static ngx_uint_t
ngx_game_pg_expected(ngx_game_pg_query_t *q, const char *state)
{
    size_t       len;
    const char  *p;

    if (q == NULL || q->expect == NULL || state == NULL) {
        return 0;
    }

    len = ngx_strlen(state);

    for (p = q->expect; *p; /* void */) {
        if (ngx_strncmp(p, state, len) == 0
            && (p[len] == '\0' || p[len] == ' ' || p[len] == ','))
        {
            return 1;
        }

        while (*p && *p != ' ' && *p != ',') {
            p++;
        }

        while (*p == ' ' || *p == ',') {
            p++;
        }
    }

    return 0;
}


/*
 * A failed statement in the log: never PostgreSQL's DETAIL, HINT or
 * CONTEXT, which quote values (a duplicate key's username, a failing row);
 * an expected error at info without even the primary message.
 */

void
ngx_game_pg_log_result(ngx_game_pg_conn_t *pc, ngx_game_pg_stmt_t *stmt,
    PGresult *res, ngx_uint_t expected)
{
    size_t               len;
    const char          *state, *constraint, *msg;
    ngx_game_pg_pool_t  *pg = pc->pool;

    state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    constraint = res ? PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME)
                     : NULL;

    if (expected) {
        ngx_log_error(NGX_LOG_INFO, pg->log, 0,
                      "game: PostgreSQL pool \"%V\": statement \"%s\": "
                      "expected error %s%s%s",
                      &pg->name, stmt->name, state,
                      constraint ? " on " : "", constraint ? constraint : "");
        return;
    }

    msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (msg == NULL) {
        msg = res ? "no message" : "no result";
    }

    len = ngx_game_pg_text_len(msg);

    ngx_log_error(NGX_LOG_ERR, pg->log, 0,
                  "game: PostgreSQL pool \"%V\": statement \"%s\" failed: "
                  "%s%s%s%s%s: %*s",
                  &pg->name, stmt->name,
                  state ? "SQLSTATE " : "", state ? state : "",
                  constraint ? " (" : "", constraint ? constraint : "",
                  constraint ? ")" : "", len, msg);
}


/*
 * What the server (or libpq) says outside of results: a warning, a
 * notice, or libpq's own complaints.  libpq would print them on stderr;
 * they go to the log, without their DETAIL.
 */

static void
ngx_game_pg_notice(void *data, const PGresult *res)
{
    ngx_game_pg_conn_t  *pc = data;

    const char  *severity, *msg;

    severity = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
    msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

    if (msg == NULL) {
        /* libpq's own notices have only the message text */
        msg = PQresultErrorMessage(res);
    }

    ngx_log_error(NGX_LOG_WARN, pc->pool->log, 0,
                  "game: PostgreSQL pool \"%V\": %s: %*s",
                  &pc->pool->name, severity ? severity : "notice",
                  ngx_game_pg_text_len(msg), msg);
}


/* hand the oldest waiting queries to a connection with room */

void
ngx_game_pg_fill(ngx_game_pg_conn_t *pc)
{
    ngx_queue_t          *head;
    ngx_game_pg_pool_t   *pg = pc->pool;
    ngx_game_pg_query_t  *q;

    while (pc->count < pg->pipeline && !pc->broken
           && !ngx_queue_empty(&pg->waiting))
    {
        head = ngx_queue_head(&pg->waiting);
        q = ngx_queue_data(head, ngx_game_pg_query_t, queue);
        ngx_queue_remove(head);
        pg->nwaiting--;
        q->queued = 0;

        if (ngx_game_pg_send(pc, q) != NGX_OK) {
            ngx_game_pg_deliver(q, NGX_GAME_UNAVAILABLE, NULL);
            return;
        }
    }
}


/* the ready connection with the fewest queries in flight and room left */

static ngx_game_pg_conn_t *
ngx_game_pg_pick(ngx_game_pg_pool_t *pg)
{
    ngx_uint_t           i;
    ngx_game_pg_conn_t  *pc, *best;

    best = NULL;

    for (i = 0; i < pg->connections; i++) {
        pc = &pg->conns[i];

        if (pc->state != NGX_GAME_PG_READY || pc->broken
            || pc->count >= pg->pipeline)
        {
            continue;
        }

        if (pc->count == 0) {
            return pc;
        }

        if (best == NULL || pc->count < best->count) {
            best = pc;
        }
    }

    return best;
}


ngx_uint_t
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


void
ngx_game_pg_forget(ngx_game_pg_conn_t *pc, ngx_game_pg_stmt_t *stmt)
{
    ngx_uint_t  i;

    for (i = 0; i < pc->nprepared; i++) {
        if (pc->prepared[i] == stmt) {
            pc->prepared[i] = pc->prepared[--pc->nprepared];
            return;
        }
    }
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
    ngx_game_pg_conn_t  *pc;

    q->pool = pg;

    if (pg->conns == NULL) {
        /* not started: a pool used only in the master, or a bug */
        return NGX_GAME_UNAVAILABLE;
    }

    if (q->copy && !pg->copy) {
        ngx_log_error(NGX_LOG_ALERT, q->log, 0,
                      "game: PostgreSQL pool \"%V\": statement \"%s\" is "
                      "a COPY, and the pool is not copy=on",
                      &pg->name, q->stmt->name);
        return NGX_GAME_UNAVAILABLE;
    }

    q->done = 0;
    q->retried = 0;
    q->sent = ngx_current_msec;
    q->conn = NULL;
    q->entry = NULL;

    pc = ngx_game_pg_pick(pg);

    if (pc) {
        if (ngx_game_pg_send(pc, q) != NGX_OK) {
            q->done = 1;
            return NGX_GAME_UNAVAILABLE;
        }

        ngx_add_timer(&q->timer, pg->query_timeout);
        return NGX_AGAIN;
    }

    if (pg->down || pg->nwaiting >= pg->max_queue) {
        q->done = 1;
        ngx_game_metric_inc(pg->metrics->rejected, pg->metric, 0, 1);

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


void
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
    q->entry = NULL;
    q->done = 1;

    if (q->spent) {
        *q->spent += ngx_current_msec - q->sent;
    }

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

    ngx_game_metric_inc(q->pool->metrics->timeouts, q->pool->metric, 0, 1);

    if (pc) {
        /* mid-result: the connection cannot be reused.  It is taken out of
         * use now and closed once this query's handler has run: closing
         * fails the other queries on it, and their handlers may end the
         * request that owns this one */
        ((ngx_game_pg_entry_t *) q->entry)->query = NULL;
        pc->broken = 1;
    }

    ngx_game_pg_deliver(q, NGX_GAME_TIMEOUT, NULL);

    if (pc && pc->state != NGX_GAME_PG_CLOSED) {
        ngx_game_pg_close(pc, NGX_GAME_PG_STUCK);
    }
}


static void
ngx_game_pg_query_cleanup(void *data)
{
    ngx_game_pg_query_t  *q = data;

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

    if (q->entry) {
        /* the statement runs to its end; its result is dropped */
        ((ngx_game_pg_entry_t *) q->entry)->query = NULL;

        if (q->copy) {
            /* but a COPY's rows and SQL belong to the memory going away:
             * its transaction is given up with its connection */
            ngx_game_pg_break_later(q->conn);
        }
    }

    q->conn = NULL;
    q->entry = NULL;
    q->done = 1;
}


static void
ngx_game_pg_log_error(ngx_game_pg_conn_t *pc, ngx_uint_t level,
    const char *what)
{
    const char  *msg;

    msg = pc->pg ? PQerrorMessage(pc->pg) : "out of memory";

    ngx_log_error(level, pc->pool->log, 0,
                  "game: PostgreSQL pool \"%V\": %s failed: %*s",
                  &pc->pool->name, what, ngx_game_pg_text_len(msg), msg);
}


/*
 * The first line of a libpq message: the rest is an explanation ("This
 * probably means the server terminated abnormally") or PostgreSQL's
 * DETAIL, which may quote values.
 */

static size_t
ngx_game_pg_text_len(const char *msg)
{
    size_t  len;

    for (len = 0; msg[len] && msg[len] != '\n' && msg[len] != '\r'; len++) {
        /* void */
    }

    return len;
}
