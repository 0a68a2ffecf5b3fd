
/*
 * The game backend's shared core: what every service module builds on.
 *
 *   - named PostgreSQL pools (libpq, non-blocking, driven by the worker's
 *     event loop) and named Redis pools (hiredis async, pipelined);
 *   - JSON request bodies in, JSON responses and uniform errors out.
 *
 * A service module includes this header only; it never includes another
 * service module.  Pools are declared at http level with game_pg_pool and
 * game_redis_pool, looked up by name at configuration time, and connected
 * by every worker when it starts.
 */

#ifndef _NGX_GAME_CORE_H_INCLUDED_
#define _NGX_GAME_CORE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <libpq-fe.h>
#include <hiredis/hiredis.h>
#include <jansson.h>


/*
 * Outcomes handed to completion handlers, besides NGX_OK.  They map onto
 * HTTP statuses with ngx_game_http_status().
 */
#define NGX_GAME_UNAVAILABLE   -100    /* dependency down or overloaded: 503 */
#define NGX_GAME_TIMEOUT       -101    /* no answer in time: 504 */
#define NGX_GAME_QUERY_ERROR   -102    /* the server refused the statement */


/* statuses nginx 1.22 has no constant for */
#define NGX_GAME_HTTP_UNPROCESSABLE   422


#define NGX_GAME_PG_MAX_PARAMS  16


typedef struct ngx_game_pg_pool_s    ngx_game_pg_pool_t;
typedef struct ngx_game_pg_query_s   ngx_game_pg_query_t;
typedef struct ngx_game_redis_pool_s ngx_game_redis_pool_t;
typedef struct ngx_game_redis_cmd_s  ngx_game_redis_cmd_t;


/*
 * A statement is declared once, statically, by the module that owns it.
 * Each connection prepares it the first time it runs it and keeps it
 * prepared for its lifetime; the name must be unique across modules.
 */
typedef struct {
    const char                 *name;
    const char                 *sql;
    int                         nparams;
} ngx_game_pg_stmt_t;


/*
 * Called exactly once per query that ngx_game_pg_query() accepted, unless
 * the owning pool is destroyed first (the request's cleanup cancels the
 * query).  On NGX_OK and NGX_GAME_QUERY_ERROR "res" is valid until the
 * handler returns; otherwise it is NULL.
 */
typedef void (*ngx_game_pg_handler_pt)(ngx_game_pg_query_t *q, ngx_int_t rc,
    PGresult *res);


struct ngx_game_pg_query_s {
    ngx_game_pg_stmt_t         *stmt;
    /* text-format parameters, NUL-terminated; NULL is SQL NULL */
    const char                 *values[NGX_GAME_PG_MAX_PARAMS];

    ngx_game_pg_handler_pt      handler;
    void                       *data;

    /* private to the pool */
    ngx_game_pg_pool_t         *pool;
    void                       *conn;
    void                       *entry;
    ngx_event_t                 timer;
    ngx_queue_t                 queue;
    ngx_log_t                  *log;
    unsigned                    queued:1;
    unsigned                    done:1;
};


typedef void (*ngx_game_redis_handler_pt)(ngx_game_redis_cmd_t *cmd,
    ngx_int_t rc, redisReply *reply);


/*
 * A Lua script the modules run with ngx_game_redis_eval(): declared
 * statically with its text, hashed once by ngx_game_redis_script_init().
 */
typedef struct {
    const char                 *text;
    size_t                      len;
    char                        sha1[41];
} ngx_game_redis_script_t;


#define NGX_GAME_REDIS_MAX_ARGS  64


struct ngx_game_redis_cmd_s {
    ngx_game_redis_handler_pt   handler;
    void                       *data;

    /* private to the pool */
    ngx_game_redis_pool_t      *pool;
    ngx_pool_t                 *mem;
    void                       *slot;
    ngx_event_t                 timer;
    ngx_log_t                  *log;

    /* a script's command, kept to send it again as EVAL on NOSCRIPT */
    ngx_game_redis_script_t    *script;
    int                         argc;
    const char                 *argv[NGX_GAME_REDIS_MAX_ARGS];
    size_t                      argvlen[NGX_GAME_REDIS_MAX_ARGS];
    unsigned                    evaled:1;

    /* set by a caller that expects and handles an error reply itself
     * (XGROUP CREATE meeting BUSYGROUP): it is not logged */
    unsigned                    quiet:1;
};


/* configuration time: find a pool declared anywhere at http level */
ngx_game_pg_pool_t *ngx_game_pg_pool_lookup(ngx_conf_t *cf, ngx_str_t *name);
ngx_game_redis_pool_t *ngx_game_redis_pool_lookup(ngx_conf_t *cf,
    ngx_str_t *name);

/*
 * Queries and commands.  "pool" is the memory pool that owns the object
 * (normally r->pool): when it is destroyed early, the operation is
 * cancelled and its handler is never called.  NGX_AGAIN means the handler
 * will be called later; any other value is the final outcome and the
 * handler is not called.
 */
ngx_game_pg_query_t *ngx_game_pg_query_create(ngx_pool_t *pool,
    ngx_log_t *log, ngx_game_pg_stmt_t *stmt);
ngx_int_t ngx_game_pg_query_run(ngx_game_pg_pool_t *pg,
    ngx_game_pg_query_t *q);

ngx_game_redis_cmd_t *ngx_game_redis_cmd_create(ngx_pool_t *pool,
    ngx_log_t *log);
ngx_int_t ngx_game_redis_cmd_run(ngx_game_redis_pool_t *rp,
    ngx_game_redis_cmd_t *cmd, int argc, const char **argv,
    const size_t *argvlen);

void ngx_game_redis_script_init(ngx_game_redis_script_t *script);
ngx_int_t ngx_game_redis_eval(ngx_game_redis_pool_t *rp,
    ngx_game_redis_cmd_t *cmd, ngx_game_redis_script_t *script, int nkeys,
    int argc, const char **argv, const size_t *argvlen);

ngx_str_t *ngx_game_pg_pool_name(ngx_game_pg_pool_t *pg);
ngx_str_t *ngx_game_redis_pool_name(ngx_game_redis_pool_t *rp);


/* HTTP helpers */

typedef void (*ngx_game_http_json_handler_pt)(ngx_http_request_t *r,
    json_t *body);

ngx_int_t ngx_game_http_read_json(ngx_http_request_t *r,
    ngx_game_http_json_handler_pt handler);
ngx_int_t ngx_game_http_send_json(ngx_http_request_t *r, ngx_uint_t status,
    json_t *body);
ngx_int_t ngx_game_http_send_json_retry(ngx_http_request_t *r,
    ngx_uint_t status, json_t *body, time_t retry_after);
ngx_int_t ngx_game_http_send_text(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *json);
ngx_int_t ngx_game_http_send_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *code, const char *message);
ngx_int_t ngx_game_http_send_outcome(ngx_http_request_t *r, ngx_int_t rc,
    const char *what);
ngx_uint_t ngx_game_http_status(ngx_int_t rc);


extern ngx_module_t  ngx_game_core_module;


#endif /* _NGX_GAME_CORE_H_INCLUDED_ */
