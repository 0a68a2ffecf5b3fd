
/*
 * COPY on copy=on pools (ngx_game_pg_copy_t).  The connection walks the
 * query through its steps, each one statement sent when the previous one's
 * results have all been read (libpq's PQgetResult() returns NULL): no
 * pipeline, so COPY can run.  The first error is kept in pc->err; the
 * transaction is then rolled back before the handler hears of it, so that
 * the connection is clean for the next query.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_game_pg_internal.h"
#include "ngx_game_conn.h"


static int ngx_game_pg_copy_first(ngx_game_pg_conn_t *pc,
    ngx_game_pg_query_t *q);
static ngx_int_t ngx_game_pg_copy_put(ngx_game_pg_conn_t *pc);
static void ngx_game_pg_copy_next(ngx_game_pg_conn_t *pc);
static void ngx_game_pg_copy_done(ngx_game_pg_conn_t *pc, ngx_int_t rc,
    PGresult *res);


ngx_int_t
ngx_game_pg_copy_send(ngx_game_pg_conn_t *pc, ngx_game_pg_query_t *q)
{
    int                   ok;
    u_char                name[NGX_GAME_PG_APP_LEN + 1];
    size_t                len;
    const char           *values[1];
    ngx_game_pg_entry_t  *e;

    if (ngx_game_pg_trace_name(pc, q, name, &len)) {
        /* named first ("Tracing"): without a pipeline, a round trip of
         * its own, taken only when the sender changes */
        values[0] = (const char *) name;
        ok = PQsendQueryParams(pc->pg, ngx_game_pg_trace_stmt.sql, 1, NULL,
                               values, NULL, NULL, 0);
        if (ok) {
            ngx_memcpy(pc->app, name, len + 1);
            pc->app_len = len;
            pc->named = 1;
            pc->step = NGX_GAME_PG_COPY_TRACE;
        }

    } else {
        ok = ngx_game_pg_copy_first(pc, q);
    }

    if (!ok) {
        ngx_game_pg_break_later(pc);
        return NGX_ERROR;
    }

    e = &pc->inflight[pc->head];
    e->query = q;
    e->stmt = q->stmt;
    e->res = NULL;
    e->results = 0;
    e->prepare = 0;

    pc->count = 1;
    pc->copy = q->copy;
    pc->out = q->copy ? q->copy->data : NULL;
    q->conn = pc;
    q->entry = e;

    if (ngx_game_pg_flush(pc) != NGX_OK) {
        ngx_game_pg_break_later(pc);
    }

    return NGX_OK;
}


/* a query's first step: BEGIN; a plain statement (the readiness check's,
 * say) runs alone, out of any transaction of ours */

static int
ngx_game_pg_copy_first(ngx_game_pg_conn_t *pc, ngx_game_pg_query_t *q)
{
    if (q->copy) {
        pc->step = NGX_GAME_PG_COPY_BEGIN;
        return PQsendQuery(pc->pg, "BEGIN");
    }

    pc->step = NGX_GAME_PG_COPY_RUN;
    return PQsendQueryParams(pc->pg, q->stmt->sql, q->stmt->nparams, NULL,
                             q->values, NULL, NULL, 0);
}


void
ngx_game_pg_copy_collect(ngx_game_pg_conn_t *pc)
{
    PGresult             *res;
    ExecStatusType        status;
    ngx_game_pg_entry_t  *e;

    while (pc->count && pc->state == NGX_GAME_PG_READY && !pc->broken) {

        if (pc->step == NGX_GAME_PG_COPY_DATA) {
            if (ngx_game_pg_copy_put(pc) != NGX_OK) {
                /* the socket is full (a write event resumes), or the
                 * connection was closed */
                return;
            }
            continue;
        }

        if (PQisBusy(pc->pg)) {
            return;
        }

        res = PQgetResult(pc->pg);

        if (res == NULL) {
            /* the step's results are all in: the next step */
            ngx_game_pg_copy_next(pc);
            continue;
        }

        status = PQresultStatus(res);

        if (status == PGRES_COPY_IN) {
            PQclear(res);
            pc->step = NGX_GAME_PG_COPY_DATA;
            continue;
        }

        if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
            if (pc->step == NGX_GAME_PG_COPY_TRACE) {
                /* the query runs all the same */
                ngx_game_pg_trace_failed(pc, res);
                PQclear(res);

            } else if (pc->err == NULL
                       && pc->step != NGX_GAME_PG_COPY_ROLLBACK)
            {
                pc->err = res;

            } else {
                PQclear(res);
            }

            continue;
        }

        e = &pc->inflight[pc->head];

        if (pc->step == NGX_GAME_PG_COPY_RUN && e->res == NULL) {
            e->res = res;
            continue;
        }

        PQclear(res);
    }
}


/*
 * The rows, as far as the socket takes them, then the end of the data.
 * NGX_OK: all of it is out (or the server ended the COPY itself, with an
 * error that comes as its result): the COPY's result is next.
 * NGX_AGAIN: a write event resumes.  NGX_ERROR: the connection is gone.
 */

static ngx_int_t
ngx_game_pg_copy_put(ngx_game_pg_conn_t *pc)
{
    int          n;
    size_t       len;
    ngx_buf_t   *b;

    for ( ;; ) {
        switch (PQflush(pc->pg)) {

        case 0:
            break;

        case 1:
            if (ngx_game_conn_watch(pc->c, 1, 1) != NGX_OK) {
                ngx_game_pg_broken(pc, "write");
                return NGX_ERROR;
            }
            return NGX_AGAIN;

        default:
            ngx_game_pg_broken(pc, "write");
            return NGX_ERROR;
        }

        if (pc->out == NULL) {
            break;
        }

        b = pc->out->buf;
        len = b->last - b->pos;

        n = len ? PQputCopyData(pc->pg, (const char *) b->pos, (int) len)
                : 1;

        if (n == 0) {
            /* libpq's buffer is full: flushed and tried again above once
             * the socket is writable */
            if (ngx_game_conn_watch(pc->c, 1, 1) != NGX_OK) {
                ngx_game_pg_broken(pc, "write");
                return NGX_ERROR;
            }
            return NGX_AGAIN;
        }

        if (n < 0) {
            goto ended;
        }

        pc->out = pc->out->next;
    }

    n = PQputCopyEnd(pc->pg, NULL);

    if (n == 0) {
        if (ngx_game_conn_watch(pc->c, 1, 1) != NGX_OK) {
            ngx_game_pg_broken(pc, "write");
            return NGX_ERROR;
        }
        return NGX_AGAIN;
    }

    if (n < 0) {
        goto ended;
    }

    pc->step = NGX_GAME_PG_COPY_END;

    if (ngx_game_pg_flush(pc) != NGX_OK) {
        ngx_game_pg_broken(pc, "write");
        return NGX_ERROR;
    }

    return NGX_OK;

ended:

    /* libpq is no longer in COPY: the server ended it with an error (its
     * result is next), or the connection broke */
    if (PQstatus(pc->pg) == CONNECTION_BAD) {
        ngx_game_pg_broken(pc, "COPY");
        return NGX_ERROR;
    }

    pc->step = NGX_GAME_PG_COPY_END;
    return NGX_OK;
}


/* the step after one whose results are all in */

static void
ngx_game_pg_copy_next(ngx_game_pg_conn_t *pc)
{
    int                   ok;
    ngx_int_t             rc;
    PGresult             *err;
    ngx_game_pg_entry_t  *e;
    ngx_game_pg_query_t  *q;

    e = &pc->inflight[pc->head];

    if (pc->step == NGX_GAME_PG_COPY_START && pc->err == NULL) {
        /* the statement was no COPY FROM STDIN */
        pc->err = PQmakeEmptyPGresult(pc->pg, PGRES_FATAL_ERROR);
        if (pc->err == NULL) {
            ngx_game_pg_broken(pc, "COPY");
            return;
        }

        ngx_log_error(NGX_LOG_ALERT, pc->pool->log, 0,
                      "game: PostgreSQL pool \"%V\": statement \"%s\": "
                      "its \"copy\" started no COPY FROM STDIN",
                      &pc->pool->name, e->stmt->name);
    }

    if (pc->err) {
        if (pc->step == NGX_GAME_PG_COPY_ROLLBACK
            || pc->step == NGX_GAME_PG_COPY_COMMIT
            || PQtransactionStatus(pc->pg) == PQTRANS_IDLE)
        {
            /* rolled back, or nothing left to roll back */
            err = pc->err;
            pc->err = NULL;
            q = e->query;

            rc = ngx_game_pg_outcome(pc, e, q, err);
            if (rc == NGX_OK || rc == NGX_AGAIN) {
                rc = NGX_GAME_QUERY_ERROR;
            }

            ngx_game_pg_copy_done(pc, rc, rc == NGX_GAME_TIMEOUT ? NULL : err);
            PQclear(err);
            return;
        }

        pc->step = NGX_GAME_PG_COPY_ROLLBACK;
        ok = PQsendQuery(pc->pg, "ROLLBACK");
        goto sent;
    }

    switch (pc->step) {

    case NGX_GAME_PG_COPY_TRACE:
        if (e->query == NULL) {
            /* a plain query, cancelled (a cancelled copy query broke its
             * connection): its values are gone, and nothing is to run */
            ngx_game_pg_copy_done(pc, NGX_OK, NULL);
            return;
        }

        ok = ngx_game_pg_copy_first(pc, e->query);
        break;

    case NGX_GAME_PG_COPY_BEGIN:
        if (pc->copy->begin) {
            pc->step = NGX_GAME_PG_COPY_PRE;
            ok = PQsendQuery(pc->pg, pc->copy->begin);
            break;
        }

        /* fall through */

    case NGX_GAME_PG_COPY_PRE:
        pc->step = NGX_GAME_PG_COPY_START;
        ok = PQsendQuery(pc->pg, pc->copy->copy);
        break;

    case NGX_GAME_PG_COPY_END:
        pc->step = NGX_GAME_PG_COPY_RUN;
        /* a cancelled copy query broke its connection: e->query is set */
        ok = PQsendQueryParams(pc->pg, e->stmt->sql, e->stmt->nparams, NULL,
                               e->query->values, NULL, NULL, 0);
        break;

    case NGX_GAME_PG_COPY_RUN:
        if (pc->copy == NULL) {
            /* a plain statement: done */
            pc->backoff = 0;
            ngx_game_pg_copy_done(pc, NGX_OK, e->res);
            return;
        }

        pc->step = NGX_GAME_PG_COPY_COMMIT;
        ok = PQsendQuery(pc->pg, "COMMIT");
        break;

    case NGX_GAME_PG_COPY_COMMIT:
        /* committed */
        pc->backoff = 0;
        ngx_game_pg_copy_done(pc, NGX_OK, e->res);
        return;

    default:
        ngx_log_error(NGX_LOG_ALERT, pc->pool->log, 0,
                      "game: PostgreSQL pool \"%V\": COPY out of step",
                      &pc->pool->name);
        ngx_game_pg_close(pc, NGX_GAME_PG_BROKE);
        return;
    }

sent:

    if (!ok || ngx_game_pg_flush(pc) != NGX_OK) {
        ngx_game_pg_broken(pc, "send");
    }
}


static void
ngx_game_pg_copy_done(ngx_game_pg_conn_t *pc, ngx_int_t rc, PGresult *res)
{
    ngx_game_pg_entry_t  *e;
    ngx_game_pg_query_t  *q;

    e = &pc->inflight[pc->head];
    q = e->query;

    e->query = NULL;
    pc->count = 0;
    pc->step = NGX_GAME_PG_COPY_IDLE;
    pc->copy = NULL;
    pc->out = NULL;

    if (q) {
        ngx_game_pg_deliver(q, rc, res);
    }

    if (e->res) {
        PQclear(e->res);
        e->res = NULL;
    }

    /* the handler may have closed this connection by sending on it */
    if (pc->state == NGX_GAME_PG_READY && !pc->broken) {
        ngx_game_pg_fill(pc);
    }
}
