
/*
 * What the PostgreSQL pool's files share with one another, and nobody
 * else: ngx_game_pg.c (pools, connections, the pipeline), ngx_game_pg_copy.c
 * (COPY FROM STDIN on copy=on pools) and ngx_game_pg_metrics.c (the pools'
 * metrics).
 */

#ifndef _NGX_GAME_PG_INTERNAL_H_INCLUDED_
#define _NGX_GAME_PG_INTERNAL_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_game_core_internal.h"


/* every statement of every module fits, with room to spare */
#define NGX_GAME_PG_MAX_STMTS   256

/* PostgreSQL keeps application_name to NAMEDATALEN - 1 bytes */
#define NGX_GAME_PG_APP_LEN     63


typedef enum {
    NGX_GAME_PG_CLOSED = 0,
    NGX_GAME_PG_CONNECTING,
    NGX_GAME_PG_READY
} ngx_game_pg_state_e;


/* why a connection is closed: decides when it is opened again */
typedef enum {
    NGX_GAME_PG_BROKE = 0,      /* a connection that worked went away */
    NGX_GAME_PG_FAILED,         /* connecting failed */
    NGX_GAME_PG_STUCK           /* a query timed out on it */
} ngx_game_pg_why_e;


/* where a copy query is (copy=on pools) */
typedef enum {
    NGX_GAME_PG_COPY_IDLE = 0,
    NGX_GAME_PG_COPY_TRACE,
    NGX_GAME_PG_COPY_BEGIN,
    NGX_GAME_PG_COPY_PRE,
    NGX_GAME_PG_COPY_START,
    NGX_GAME_PG_COPY_DATA,
    NGX_GAME_PG_COPY_END,
    NGX_GAME_PG_COPY_RUN,
    NGX_GAME_PG_COPY_COMMIT,
    NGX_GAME_PG_COPY_ROLLBACK
} ngx_game_pg_copy_step_e;


/* the families every pool counts in (ngx_game_pg_metrics_init) */
typedef struct {
    ngx_game_metric_t          *connections;
    ngx_game_metric_t          *in_flight;
    ngx_game_metric_t          *queued;
    ngx_game_metric_t          *timeouts;
    ngx_game_metric_t          *reconnects;
    ngx_game_metric_t          *rejected;
} ngx_game_pg_metrics_t;


/* a query in flight: outlives its request, whose results must be read */
typedef struct {
    ngx_game_pg_query_t        *query;      /* NULL once cancelled */
    ngx_game_pg_stmt_t         *stmt;
    PGresult                   *res;        /* what the handler will get */
    ngx_uint_t                  results;    /* results seen so far */
    unsigned                    prepare:1;  /* a Prepare went first */

    /* a sync group naming the connection goes first (ngx_game_pg_trace_*),
     * its Prepare first if "trace_prepare"; cleared at its Sync */
    unsigned                    trace:1;
    unsigned                    trace_prepare:1;
} ngx_game_pg_entry_t;


typedef struct {
    ngx_game_pg_pool_t         *pool;
    PGconn                     *pg;
    ngx_connection_t           *c;
    ngx_game_pg_state_e         state;

    /* ring of queries in flight, oldest at "head" */
    ngx_game_pg_entry_t        *inflight;
    ngx_uint_t                  head;
    ngx_uint_t                  count;

    /* connect timeout while connecting, reconnect delay while closed */
    ngx_event_t                 timer;
    ngx_msec_t                  backoff;

    /* a send failed: closed from a posted event, see ngx_game_pg_send() */
    unsigned                    broken:1;

    /* copy=on: the query's step, the rows still to send, its first error
     * (copied before anything else runs) */
    ngx_game_pg_copy_step_e     step;
    ngx_chain_t                *out;
    ngx_game_pg_copy_t         *copy;
    PGresult                   *err;

    /* the application_name the connection carries once what was sent
     * has run, valid while "named" (a failed set_config clears it) */
    u_char                      app[NGX_GAME_PG_APP_LEN + 1];
    size_t                      app_len;
    unsigned                    named:1;

    ngx_uint_t                  nprepared;
    ngx_game_pg_stmt_t         *prepared[NGX_GAME_PG_MAX_STMTS];
} ngx_game_pg_conn_t;


struct ngx_game_pg_pool_s {
    ngx_str_t                   name;
    ngx_str_t                   conninfo;

    /* libpq's connection parameters, NULL-terminated: our defaults, then
     * what the pool's connection string sets (ngx_game_pg_params_init) */
    const char                **keys;
    const char                **values;

    ngx_uint_t                  connections;
    ngx_uint_t                  pipeline;
    ngx_uint_t                  max_queue;
    ngx_msec_t                  connect_timeout;
    ngx_msec_t                  query_timeout;
    time_t                      keepalive;
    ngx_flag_t                  copy;
    ngx_flag_t                  trace;

    /* the application_name it connects with, "nginx-game" unless the
     * connection string says; queries' names start with it */
    ngx_str_t                   app;

    u_char                     *file;
    ngx_uint_t                  line;
    unsigned                    defined:1;

    /* per worker, from ngx_game_pg_pools_start() on */
    ngx_log_t                  *log;
    ngx_game_pg_conn_t         *conns;
    ngx_queue_t                 waiting;
    ngx_uint_t                  nwaiting;
    ngx_uint_t                  nconnected;
    unsigned                    down:1;

    /* its metrics, and its value of their "pool" label */
    ngx_game_pg_metrics_t      *metrics;
    ngx_uint_t                  metric;
};


/* ngx_game_pg.c, for the copy path */
void ngx_game_pg_close(ngx_game_pg_conn_t *pc, ngx_uint_t why);
void ngx_game_pg_broken(ngx_game_pg_conn_t *pc, const char *what);
void ngx_game_pg_break_later(ngx_game_pg_conn_t *pc);
ngx_int_t ngx_game_pg_flush(ngx_game_pg_conn_t *pc);
ngx_int_t ngx_game_pg_outcome(ngx_game_pg_conn_t *pc,
    ngx_game_pg_entry_t *e, ngx_game_pg_query_t *q, PGresult *res);
void ngx_game_pg_fill(ngx_game_pg_conn_t *pc);
void ngx_game_pg_deliver(ngx_game_pg_query_t *q, ngx_int_t rc,
    PGresult *res);
ngx_uint_t ngx_game_pg_is_prepared(ngx_game_pg_conn_t *pc,
    ngx_game_pg_stmt_t *stmt);
void ngx_game_pg_forget(ngx_game_pg_conn_t *pc, ngx_game_pg_stmt_t *stmt);
void ngx_game_pg_log_result(ngx_game_pg_conn_t *pc, ngx_game_pg_stmt_t *stmt,
    PGresult *res, ngx_uint_t expected);

/* ngx_game_pg_trace.c: the statement, the group naming a connection
 * ahead of a query and its results, the name a query needs its connection
 * to carry (0: none to set), and a set_config() that failed */
extern ngx_game_pg_stmt_t  ngx_game_pg_trace_stmt;
ngx_int_t ngx_game_pg_trace_send(ngx_game_pg_conn_t *pc,
    ngx_game_pg_query_t *q, ngx_game_pg_entry_t *e);
void ngx_game_pg_trace_result(ngx_game_pg_conn_t *pc, ngx_game_pg_entry_t *e,
    PGresult *res);
ngx_uint_t ngx_game_pg_trace_name(ngx_game_pg_conn_t *pc,
    ngx_game_pg_query_t *q, u_char *name, size_t *len);
void ngx_game_pg_trace_failed(ngx_game_pg_conn_t *pc, PGresult *res);

/* ngx_game_pg_copy.c: a copy=on pool's connection sends and reads here */
ngx_int_t ngx_game_pg_copy_send(ngx_game_pg_conn_t *pc,
    ngx_game_pg_query_t *q);
void ngx_game_pg_copy_collect(ngx_game_pg_conn_t *pc);


#endif /* _NGX_GAME_PG_INTERNAL_H_INCLUDED_ */
