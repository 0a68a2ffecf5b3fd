
/*
 * Tracing: PostgreSQL shows each statement under the name of the request
 * or the background job that sent it (see "Tracing" in ngx_game_core.h).
 * The pool's send and result paths (ngx_game_pg.c, ngx_game_pg_copy.c)
 * call in here.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_game_pg_internal.h"


/* names a connection for the query behind it: see "Tracing" */
ngx_game_pg_stmt_t  ngx_game_pg_trace_stmt = {
    "game_core_trace", "SELECT set_config('application_name', $1, false)", 1
};


/* the index of $request_id, which requests' queries carry, if any pool
 * traces */

ngx_int_t
ngx_game_pg_trace_init(ngx_conf_t *cf, ngx_game_core_main_conf_t *cmcf)
{
    ngx_str_t             name = ngx_string("request_id");
    ngx_uint_t            i;
    ngx_game_pg_pool_t  **pg;

    cmcf->request_id = NGX_ERROR;

    pg = cmcf->pg_pools.elts;
    for (i = 0; i < cmcf->pg_pools.nelts; i++) {
        if (pg[i]->trace) {
            cmcf->request_id = ngx_http_get_variable_index(cf, &name);
            return cmcf->request_id == NGX_ERROR ? NGX_ERROR : NGX_OK;
        }
    }

    return NGX_OK;
}


ngx_game_pg_query_t *
ngx_game_pg_request_query(ngx_http_request_t *r, ngx_game_pg_stmt_t *stmt)
{
    u_char                     *p;
    ngx_game_pg_query_t        *q;
    ngx_http_variable_value_t  *id;
    ngx_game_http_spent_t      *spent;
    ngx_game_core_main_conf_t  *cmcf;

    q = ngx_game_pg_query_create(r->pool, r->connection->log, stmt);
    if (q == NULL) {
        return NULL;
    }

    spent = ngx_game_http_spent(r);
    if (spent == NULL) {
        return NULL;
    }

    q->spent = &spent->pg;

    cmcf = ngx_http_get_module_main_conf(r, ngx_game_core_module);
    if (cmcf->request_id == NGX_ERROR) {
        return q;
    }

    /* the main request's: the id its access log line and X-Request-Id
     * carry (nginx makes it once per request, on first use) */
    id = ngx_http_get_indexed_variable(r->main, cmcf->request_id);
    if (id == NULL || id->not_found || id->len == 0) {
        return q;
    }

    p = ngx_pnalloc(r->pool, sizeof("r=") - 1 + id->len);
    if (p == NULL) {
        return NULL;
    }

    q->trace.data = p;
    p = ngx_cpymem(p, "r=", sizeof("r=") - 1);
    p = ngx_cpymem(p, id->data, id->len);
    q->trace.len = p - q->trace.data;

    return q;
}


/*
 * Tracing (see ngx_game_core.h).  A connection remembers the name it was
 * last given in the order of its pipeline, so a query from the same sender
 * as the one before it costs nothing; one from another sender has a sync
 * group of its own go first, in the same pipeline:
 *
 *     [Prepare game_core_trace,] Execute game_core_trace (name), Sync
 *
 * Its own group, not the query's: a failing statement rolls its implicit
 * transaction back, and with it a set_config() made inside.
 */

ngx_uint_t
ngx_game_pg_trace_name(ngx_game_pg_conn_t *pc, ngx_game_pg_query_t *q,
    u_char *name, size_t *len)
{
    u_char              *p;
    size_t               base, trace;
    ngx_game_pg_pool_t  *pg = pc->pool;

    if (!pg->trace) {
        return 0;
    }

    /* cut the pool's part, not the sender's, to fit */
    trace = ngx_min(q->trace.len, NGX_GAME_PG_APP_LEN - 1);
    base = ngx_min(pg->app.len, NGX_GAME_PG_APP_LEN - 1 - trace);

    p = ngx_cpymem(name, pg->app.data, base);

    if (trace) {
        if (base) {
            *p++ = ' ';
        }
        p = ngx_cpymem(p, q->trace.data, trace);
    }

    *p = '\0';
    *len = p - name;

    if (pc->named && *len == pc->app_len
        && ngx_memcmp(name, pc->app, *len) == 0)
    {
        return 0;
    }

    return 1;
}


/* the group naming the connection for q, if it needs one: NGX_ERROR is a
 * failed send, like the query's own */

ngx_int_t
ngx_game_pg_trace_send(ngx_game_pg_conn_t *pc, ngx_game_pg_query_t *q,
    ngx_game_pg_entry_t *e)
{
    u_char               name[NGX_GAME_PG_APP_LEN + 1];
    size_t               len;
    ngx_uint_t           prepare;
    const char          *values[1];
    ngx_game_pg_stmt_t  *stmt = &ngx_game_pg_trace_stmt;

    e->trace = 0;
    e->trace_prepare = 0;

    if (!ngx_game_pg_trace_name(pc, q, name, &len)) {
        return NGX_OK;
    }

    prepare = !ngx_game_pg_is_prepared(pc, stmt);

    if (prepare) {
        if (!PQsendPrepare(pc->pg, stmt->name, stmt->sql, stmt->nparams,
                           NULL))
        {
            return NGX_ERROR;
        }

        if (pc->nprepared < NGX_GAME_PG_MAX_STMTS) {
            pc->prepared[pc->nprepared++] = stmt;
        }
    }

    /* libpq copies the value into its buffer at once */
    values[0] = (const char *) name;

    if (!PQsendQueryPrepared(pc->pg, stmt->name, 1, values, NULL, NULL, 0)
        || !PQpipelineSync(pc->pg))
    {
        return NGX_ERROR;
    }

    ngx_memcpy(pc->app, name, len + 1);
    pc->app_len = len;
    pc->named = 1;

    e->trace = 1;
    e->trace_prepare = prepare;
    e->results = 0;

    return NGX_OK;
}


/* a result of the naming group: dropped; its Sync hands over to the
 * query's own group */

void
ngx_game_pg_trace_result(ngx_game_pg_conn_t *pc, ngx_game_pg_entry_t *e,
    PGresult *res)
{
    switch (PQresultStatus(res)) {

    case PGRES_PIPELINE_SYNC:
        e->trace = 0;
        e->results = 0;
        break;

    case PGRES_COMMAND_OK:
    case PGRES_TUPLES_OK:
    case PGRES_PIPELINE_ABORTED:
        e->results++;
        break;

    default:
        if (e->trace_prepare && e->results == 0) {
            ngx_game_pg_forget(pc, &ngx_game_pg_trace_stmt);
        }

        e->results++;
        ngx_game_pg_trace_failed(pc, res);
        break;
    }

    PQclear(res);
}


/*
 * set_config() failed (the server is in trouble: nothing else makes it
 * fail).  The query behind it runs all the same, under whatever name the
 * connection has; the next query names it again.
 */

void
ngx_game_pg_trace_failed(ngx_game_pg_conn_t *pc, PGresult *res)
{
    pc->named = 0;
    ngx_game_pg_log_result(pc, &ngx_game_pg_trace_stmt, res, 0);
}
