
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
#include <openssl/evp.h>

#include "game_util.h"          /* GAME_UUID_LEN */


/*
 * Outcomes handed to completion handlers, besides NGX_OK.  They map onto
 * HTTP statuses with ngx_game_http_status().
 */
#define NGX_GAME_UNAVAILABLE   -100    /* dependency down or overloaded: 503 */
#define NGX_GAME_TIMEOUT       -101    /* no answer in time: 504 */
#define NGX_GAME_QUERY_ERROR   -102    /* the server refused the statement */
#define NGX_GAME_REFUSED       -103    /* a client's message: see code/message */


/* statuses nginx 1.22 has no constant for */
#define NGX_GAME_HTTP_UNPROCESSABLE   422


#define NGX_GAME_PG_MAX_PARAMS  16


typedef struct ngx_game_pg_pool_s    ngx_game_pg_pool_t;
typedef struct ngx_game_pg_query_s   ngx_game_pg_query_t;
typedef struct ngx_game_redis_pool_s ngx_game_redis_pool_t;
typedef struct ngx_game_redis_cmd_s  ngx_game_redis_cmd_t;

/* what a request's queries and commands took, in ms (see
 * ngx_game_http_spent) */
typedef struct {
    ngx_msec_t                  pg;
    ngx_msec_t                  redis;
} ngx_game_http_spent_t;


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
 * Errors and the log.  A statement that fails reaches its handler as
 * NGX_GAME_QUERY_ERROR with the PGresult, and the pool logs it:
 *
 *   - an SQLSTATE the query expects (its "expect" list) at info, with the
 *     SQLSTATE and the constraint's name only: it is the client's doing,
 *     not the operator's;
 *   - any other at error, with the SQLSTATE, the constraint and
 *     PostgreSQL's primary message.
 *
 * PostgreSQL's DETAIL (which quotes the values: "Key (username)=(alice)
 * already exists"), HINT and CONTEXT are never logged: they may hold
 * personal data.  A handler that needs them reads the PGresult.
 *
 * The server giving up on a statement (57014, and 55P03 from lock_timeout)
 * reaches the handler as NGX_GAME_TIMEOUT, unless the query expects that
 * SQLSTATE (55P03 from a NOWAIT lock, say).
 */


/*
 * Called exactly once per query that ngx_game_pg_query() accepted, unless
 * the owning pool is destroyed first (the request's cleanup cancels the
 * query).  On NGX_OK and NGX_GAME_QUERY_ERROR "res" is valid until the
 * handler returns; otherwise it is NULL.
 */
typedef void (*ngx_game_pg_handler_pt)(ngx_game_pg_query_t *q, ngx_int_t rc,
    PGresult *res);


/*
 * Tracing (pools with trace=on, the default).  PostgreSQL shows each
 * statement under the name of who sent it, as its application_name: in
 * pg_stat_activity, and in the server's log with %a in log_line_prefix.
 *
 *     nginx-game r=<request id>    a request's: nginx's $request_id, as
 *                                  in the JSON access log and X-Request-Id
 *     nginx-game <role>            background work: "writer", "lb-maint"
 *     nginx-game                   a query nobody in particular sent
 *
 * ("nginx-game" is the pool's application_name: the connection string may
 * name another.)  Values never go into SQL text: before a query whose
 * sender is not the one its connection last named, the pool sends
 * "SELECT set_config('application_name', $1, false)" as a sync group of
 * its own, in the same pipeline, ahead of the query's: no round trip is
 * added and nothing waits for it, and a query that fails cannot undo it.
 * On a copy=on pool (no pipeline) it is one more round trip, taken only
 * when the name changes.  An idle connection keeps the last name.
 */


/*
 * COPY FROM STDIN, for bulk loads.  COPY cannot run in pipeline mode, so
 * it runs only on a pool declared with copy=on, whose connections are not
 * in pipeline mode and carry one query at a time (a plain query runs there
 * too, alone, not prepared).  A copy query is one transaction, each step
 * one round trip:
 *
 *   BEGIN; "begin" (simple protocol: several statements, no parameters,
 *   NULL for none); "copy" (a COPY ... FROM STDIN) fed with "data" (rows
 *   in COPY's text format, escaped by the caller; the chain and its
 *   buffers must live as long as the query); then the query's own
 *   statement with its values (not prepared); COMMIT.
 *
 * Nothing waits: the rows go out as the socket takes them (PQputCopyData
 * and PQflush, resumed on write events).  The handler gets the
 * statement's result after COMMIT; the first error of any step rolls the
 * transaction back and reaches it as NGX_GAME_QUERY_ERROR (logged as
 * usual), a broken connection as NGX_GAME_UNAVAILABLE.
 */
typedef struct {
    const char                 *begin;
    const char                 *copy;
    ngx_chain_t                *data;
} ngx_game_pg_copy_t;


struct ngx_game_pg_query_s {
    ngx_game_pg_stmt_t         *stmt;
    /* text-format parameters, NUL-terminated; NULL is SQL NULL */
    const char                 *values[NGX_GAME_PG_MAX_PARAMS];

    ngx_game_pg_handler_pt      handler;
    void                       *data;

    /*
     * The SQLSTATEs this query fails with in normal operation, errors the
     * handler turns into an answer to the client, separated by spaces:
     * "23505" where a taken username answers 409.  NULL (the default):
     * every error is unexpected.  Like a Redis command's "quiet".
     */
    const char                 *expect;

    /* a COPY on a copy=on pool (see ngx_game_pg_copy_t); NULL otherwise */
    ngx_game_pg_copy_t         *copy;

    /*
     * Who sent it, for PostgreSQL (see "Tracing" below): "r=<request id>"
     * for a request's query (ngx_game_pg_request_query() sets it), a short
     * role for background work ("writer", "lb-maint"); empty: nobody in
     * particular.  Borrowed: it must live as long as the query.
     */
    ngx_str_t                   trace;

    /* where the time to its answer adds up (a request's: set by
     * ngx_game_pg_request_query()); NULL: nowhere */
    ngx_msec_t                 *spent;

    /* private to the pool */
    ngx_game_pg_pool_t         *pool;
    ngx_msec_t                  sent;
    void                       *conn;
    void                       *entry;
    ngx_event_t                 timer;
    ngx_queue_t                 queue;
    ngx_log_t                  *log;
    unsigned                    queued:1;
    unsigned                    done:1;
    unsigned                    retried:1;
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


/*
 * A command's arguments, built in order, for ngx_game_redis_cmd_run() and
 * ngx_game_redis_eval().  The strings are borrowed: they must live until
 * that call returns (hiredis formats a command at once; eval copies its
 * arguments).  Past NGX_GAME_REDIS_MAX_ARGS arguments "overflow" is set
 * and the command must not be sent.
 */
typedef struct {
    int                         argc;
    const char                 *argv[NGX_GAME_REDIS_MAX_ARGS];
    size_t                      argvlen[NGX_GAME_REDIS_MAX_ARGS];
    unsigned                    overflow:1;
} ngx_game_redis_args_t;


static ngx_inline void
ngx_game_redis_arg(ngx_game_redis_args_t *a, const void *s, size_t len)
{
    if (a->argc == NGX_GAME_REDIS_MAX_ARGS) {
        a->overflow = 1;
        return;
    }

    a->argv[a->argc] = s;
    a->argvlen[a->argc] = len;
    a->argc++;
}

#define ngx_game_redis_arg_str(a, v)    ngx_game_redis_arg(a, (v)->data, (v)->len)
#define ngx_game_redis_arg_lit(a, s)    ngx_game_redis_arg(a, s, sizeof(s) - 1)
#define ngx_game_redis_arg_cstr(a, s)   ngx_game_redis_arg(a, s, ngx_strlen(s))


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

    /* where the time to its reply adds up (a request's: set by
     * ngx_game_redis_request_cmd()); NULL: nowhere */
    ngx_msec_t                 *spent;
    ngx_msec_t                  sent;           /* private to the pool */
};


/* configuration time: find a pool declared anywhere at http level */
ngx_game_pg_pool_t *ngx_game_pg_pool_lookup(ngx_conf_t *cf, ngx_str_t *name);
ngx_game_redis_pool_t *ngx_game_redis_pool_lookup(ngx_conf_t *cf,
    ngx_str_t *name);

/*
 * Setters for a service's "use this pool" directive, like nginx's stock
 * ngx_conf_set_*_slot: the field at cmd->offset is a pool pointer, set to
 * NGX_CONF_UNSET_PTR by create_main_conf; a second use is "is duplicate".
 * A pool named but never declared fails nginx -t, naming the place.
 */
char *ngx_game_conf_set_pg_pool_slot(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_game_conf_set_redis_pool_slot(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/*
 * Queries and commands.  "pool" is the memory pool that owns the object
 * (normally r->pool): when it is destroyed early, the operation is
 * cancelled and its handler is never called.  NGX_AGAIN means the handler
 * will be called later; any other value is the final outcome and the
 * handler is not called.
 */
ngx_game_pg_query_t *ngx_game_pg_query_create(ngx_pool_t *pool,
    ngx_log_t *log, ngx_game_pg_stmt_t *stmt);
/* a query for request r: its pool and log, its $request_id as "trace",
 * its time counted in $game_pg_time; every query a request sends is made
 * here (the readiness probe's alone goes by "ready") */
ngx_game_pg_query_t *ngx_game_pg_request_query(ngx_http_request_t *r,
    ngx_game_pg_stmt_t *stmt);
ngx_int_t ngx_game_pg_query_run(ngx_game_pg_pool_t *pg,
    ngx_game_pg_query_t *q);

/* a command for request r: its pool and log, its time counted in
 * $game_redis_time.  Only for a command whose memory is the request's. */
ngx_game_redis_cmd_t *ngx_game_redis_request_cmd(ngx_http_request_t *r);
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


/*
 * Prometheus metrics (ngx_game_metrics.c).  A module declares its families
 * at configuration time, with label values all known then, and counts from
 * any worker without locks; the location with "game_metrics" serves them.
 * Indexes i and j are the values of the first and second label (0 when a
 * family has no such label).
 */
typedef struct ngx_game_metric_s  ngx_game_metric_t;

#define NGX_GAME_METRIC_COUNTER     0
#define NGX_GAME_METRIC_GAUGE       1
#define NGX_GAME_METRIC_HISTOGRAM   2   /* of durations, in seconds */

typedef void (*ngx_game_metrics_sampler_pt)(void *data);

ngx_game_metric_t *ngx_game_metric_add(ngx_conf_t *cf, ngx_uint_t type,
    const char *name, const char *help, const char *label1,
    const char *label2, const char **values2);
ngx_int_t ngx_game_metric_value(ngx_conf_t *cf, ngx_game_metric_t *m,
    ngx_uint_t label, ngx_str_t *value);
ngx_int_t ngx_game_metric_values(ngx_conf_t *cf, ngx_game_metric_t **families,
    ngx_uint_t n, ngx_str_t *value);
/* called every second in each worker, and before a scrape, to set gauges */
ngx_int_t ngx_game_metrics_sampler_add(ngx_conf_t *cf,
    ngx_game_metrics_sampler_pt handler, void *data);

/*
 * What lives elsewhere (queues and the fleet, in Redis) is read at scrape
 * time: a collector starts its reads and returns NGX_AGAIN (or NGX_OK once
 * it has answered, NGX_ERROR for nothing), and answers exactly once with
 * ngx_game_metrics_collected(), giving text in the exposition format
 * allocated from ngx_game_metrics_scrape_pool(), or NULL.
 */
typedef struct ngx_game_metrics_scrape_s  ngx_game_metrics_scrape_t;
typedef ngx_int_t (*ngx_game_metrics_collector_pt)(
    ngx_game_metrics_scrape_t *s, void *data);

ngx_int_t ngx_game_metrics_collector_add(ngx_conf_t *cf,
    ngx_game_metrics_collector_pt handler, void *data);
ngx_pool_t *ngx_game_metrics_scrape_pool(ngx_game_metrics_scrape_t *s);
void ngx_game_metrics_collected(ngx_game_metrics_scrape_t *s,
    ngx_str_t *text);

void ngx_game_metric_inc(ngx_game_metric_t *m, ngx_uint_t i, ngx_uint_t j,
    int64_t delta);
void ngx_game_metric_set(ngx_game_metric_t *m, ngx_uint_t i, ngx_uint_t j,
    int64_t value);
void ngx_game_metric_observe(ngx_game_metric_t *m, ngx_uint_t i,
    ngx_uint_t j, ngx_msec_t ms);


/*
 * A subscription: one connection in Redis's subscribe mode to the server
 * of a pool, per worker that asks for it, never one per client.  Bound to
 * the event loop like the pools' connections and reconnected by itself
 * (100 ms doubling to 1 s).  Redis forgets a connection's channels with
 * the connection, so the owner subscribes in "ready", which is called
 * each time the connection is up, the first time too; "lost" says that
 * nothing is subscribed until the next "ready"; "subscribed" confirms a
 * channel of a SUBSCRIBE; "message" hands over a message, valid until it
 * returns.  Handlers must not stop the subscription.
 */

typedef struct ngx_game_redis_sub_s  ngx_game_redis_sub_t;

typedef struct {
    void                      (*ready)(ngx_game_redis_sub_t *sub,
                                       void *data);
    void                      (*lost)(ngx_game_redis_sub_t *sub,
                                      void *data);
    void                      (*subscribed)(ngx_game_redis_sub_t *sub,
                                            void *data, ngx_str_t *channel);
    void                      (*message)(ngx_game_redis_sub_t *sub,
                                         void *data, ngx_str_t *channel,
                                         ngx_str_t *payload);
    void                       *data;
} ngx_game_redis_sub_handlers_t;


/* init_process: connect now (the handlers are copied) */
ngx_game_redis_sub_t *ngx_game_redis_sub_start(ngx_cycle_t *cycle,
    ngx_game_redis_pool_t *rp, ngx_game_redis_sub_handlers_t *handlers);

/* (UN)SUBSCRIBE n channels in one command: NGX_OK sent,
 * NGX_GAME_UNAVAILABLE not up (subscribe again in "ready") */
ngx_int_t ngx_game_redis_sub_send(ngx_game_redis_sub_t *sub,
    ngx_uint_t subscribe, ngx_str_t *channels, ngx_uint_t n);
ngx_uint_t ngx_game_redis_sub_ready_now(ngx_game_redis_sub_t *sub);

/* exit_process: close quietly; no handler is called */
void ngx_game_redis_sub_stop(ngx_game_redis_sub_t *sub);


/*
 * Pushing to players.  Any worker of any nginx pushes a message (a JSON
 * object with a "type") to a player, or to everyone connected, and the
 * worker that holds the player's WebSocket delivers it (the realtime
 * module; a service never needs to know it).  The way is Redis pub/sub,
 * with these channels:
 *
 *     game:push:<player id>     one player's messages
 *     game:push:all             everyone's
 *
 * A push is fire and forget: a player who is not connected misses it.
 * Services keep their own truth and tell a connecting player what matters
 * at once (resume, below), so a missed push costs a delay, never a state.
 *
 * Presence: a player is online while some worker holds a socket of theirs,
 * which is exactly while some worker subscribes to the player's channel:
 *
 *     PUBSUB NUMSUB game:push:<player id>      > 0: online
 *
 * (ngx_game_presence_query(), or a Lua script of a service's own, or any
 * Redis client.)  A crashed worker's subscriptions end with its
 * connection, so presence never outlives the sockets it stands for.
 */

#define NGX_GAME_PUSH_PREFIX    "game:push:"
#define NGX_GAME_PUSH_ALL       "game:push:all"

/* fire and forget, memory of its own; NGX_OK sent, else logged at warn */
ngx_int_t ngx_game_push(ngx_game_redis_pool_t *rp, ngx_str_t *player,
    json_t *msg);

/* the same with the caller's command, whose handler hears PUBLISH's answer
 * (the number of workers that took the message); NGX_AGAIN as always */
ngx_int_t ngx_game_push_run(ngx_game_redis_pool_t *rp,
    ngx_game_redis_cmd_t *cmd, ngx_str_t *player, json_t *msg);

/* PUBSUB NUMSUB of up to 62 players' channels; then, in the handler,
 * ngx_game_presence_online(reply, i): 1, 0, or NGX_ERROR */
ngx_int_t ngx_game_presence_query(ngx_game_redis_pool_t *rp,
    ngx_game_redis_cmd_t *cmd, ngx_str_t *players, ngx_uint_t n);
ngx_int_t ngx_game_presence_online(redisReply *reply, ngx_uint_t i);


/*
 * Taking part in players' connections.  At configuration time a service
 * registers
 *
 *   - a resume handler: called (in a worker) when a player's connection is
 *     ready to receive, to push what the player must know at once (the
 *     matchmaker: the ticket's status, a fresh connection ticket);
 *   - a message handler per client message type it answers (the
 *     matchmaker: "party.chat"): called with the sender and the message,
 *     it returns NGX_OK (taken: what follows is pushed) or
 *     NGX_GAME_REFUSED with an error "code" and "message" (static strings)
 *     for the sender.  The message is borrowed.
 *
 * The realtime module calls them through the hooks.
 */

typedef void (*ngx_game_push_resume_pt)(void *data, ngx_str_t *player);
typedef ngx_int_t (*ngx_game_push_message_pt)(void *data, ngx_str_t *player,
    json_t *msg, const char **code, const char **message);

typedef struct {
    ngx_array_t                 resume;     /* handlers, private */
    ngx_array_t                 messages;   /* handlers by type, private */
} ngx_game_push_hooks_t;

ngx_int_t ngx_game_push_on_resume(ngx_conf_t *cf,
    ngx_game_push_resume_pt handler, void *data);
ngx_int_t ngx_game_push_on_message(ngx_conf_t *cf, const char *type,
    ngx_game_push_message_pt handler, void *data);

ngx_game_push_hooks_t *ngx_game_push_hooks(ngx_conf_t *cf);
void ngx_game_push_resume(ngx_game_push_hooks_t *hooks, ngx_str_t *player);
/* NGX_DECLINED: no service answers this type */
ngx_int_t ngx_game_push_message(ngx_game_push_hooks_t *hooks,
    ngx_str_t *type, ngx_str_t *player, json_t *msg, const char **code,
    const char **message);


/*
 * This worker's name, unique across workers, nginx instances, hosts and
 * containers: "hostname:pid:random".  Leases and stream consumers carry
 * it, so two workers never pass for one (two containers can share a host
 * name and a pid).  Valid from the worker's start.
 */
ngx_str_t *ngx_game_instance_id(void);


/*
 * The event bus: Redis Streams read through consumer groups, by every
 * worker of every nginx, so that each entry is handled once.  A service
 * declares a consumer at configuration time with ngx_game_bus_add(); the
 * core runs it in every worker (ngx_game_bus.c says how: own pending
 * entries first, stale ones of dead consumers taken over, the group made
 * again when Redis lost it, poison entries moved to a dead-letter stream).
 *
 * The handler is called once per delivery of an entry and must end it,
 * now or later, with exactly one ngx_game_bus_done():
 *   NGX_OK        handled (committed): the entry is acknowledged;
 *   NGX_AGAIN     not now (a dependency is down): it stays pending and is
 *                 delivered again to this worker, after a delay that
 *                 grows from the pass interval to a minute;
 *   NGX_DECLINED  never: it goes to the dead-letter stream, with "reason".
 * An entry delivered max_deliveries times without NGX_OK goes to the
 * dead-letter stream by itself.  Handlers must be idempotent: an entry can
 * be delivered again after a crash or a lost acknowledgement.
 */

typedef struct ngx_game_bus_s        ngx_game_bus_t;
typedef struct ngx_game_bus_entry_s  ngx_game_bus_entry_t;

typedef void (*ngx_game_bus_handler_pt)(ngx_game_bus_entry_t *e);
typedef void (*ngx_game_bus_flush_pt)(void *data);


typedef struct {
    ngx_str_t                   name;
    ngx_str_t                   value;
} ngx_game_bus_field_t;


struct ngx_game_bus_entry_s {
    ngx_str_t                   id;             /* the stream entry id */
    ngx_game_bus_field_t       *fields;
    ngx_uint_t                  nfields;

    /* lives until the entry is done: copies, queries and commands */
    ngx_pool_t                 *pool;
    ngx_log_t                  *log;
    void                       *data;           /* the consumer's */

    /* private to the bus */
    ngx_game_bus_t             *bus;
    unsigned                    done:1;
};


typedef struct {
    ngx_str_t                   stream;
    ngx_str_t                   group;
    ngx_game_redis_pool_t      *redis;
    ngx_game_bus_handler_pt     handler;
    void                       *data;

    ngx_msec_t                  interval;       /* between passes: 1s */
    ngx_uint_t                  batch;          /* entries per read: 50 */
    ngx_msec_t                  claim_idle;     /* take over after: 60s */
    ngx_uint_t                  max_deliveries; /* then dead-letter: 10 */
    ngx_msec_t                  consumer_idle;  /* forget consumers: 1h */
    ngx_str_t                   dead_stream;    /* "<stream>:dead" */

    /*
     * Called once every entry of a read has been handed to "handler", with
     * "data": a consumer that loads many entries with one statement
     * gathers them in its handler and sends them here.  NULL: none.
     */
    ngx_game_bus_flush_pt       flush;

    /*
     * Entries are deleted from the stream when they are acknowledged or
     * dead-lettered (XACK and XDEL in one script), so that the stream's
     * length is what still waits: a producer can refuse work when it is
     * too long.  Only for a stream that this one group reads.
     */
    unsigned                    delete:1;
} ngx_game_bus_conf_t;


/* configuration time; zero fields take the defaults above */
ngx_game_bus_t *ngx_game_bus_add(ngx_conf_t *cf, ngx_game_bus_conf_t *conf);

/* batch=N claim_idle=T max_deliveries=N consumer_idle=T from a service's
 * directive, arguments "first" on; errors name the directive */
char *ngx_game_bus_conf_params(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_uint_t first, ngx_game_bus_conf_t *conf);

/* the value of a field of the entry, or NULL */
ngx_str_t *ngx_game_bus_field(ngx_game_bus_entry_t *e, const char *name);

void ngx_game_bus_done(ngx_game_bus_entry_t *e, ngx_int_t rc,
    const char *reason);

/*
 * A handler's query or command ended with "rc", not NGX_OK: refused by
 * the server (NGX_GAME_QUERY_ERROR, logged by the pool) the entry can
 * never apply and goes to the dead letters; anything else (unavailable,
 * timed out) is "not now".
 */
void ngx_game_bus_failed(ngx_game_bus_entry_t *e, ngx_int_t rc);


/*
 * Keys and signed tokens.  One set of ES256 (EC P-256) keys per http
 * block, declared once with
 *
 *     game_jwt_key  kid  file.pem  [use=sign|use=verify];
 *
 * and shared by every service: access tokens (auth), connection tickets
 * (matchmaking) and the JWKS document are all signed by, and checked
 * against, this one set.  Every key verifies and is published; one key
 * signs: the one with use=sign, or else the last key with a private part
 * that is not use=verify.  A file with only a public key verifies.
 *
 * Rotation: add the new key (last, or with use=verify first so that
 * verifiers fetch it before it signs), reload; it signs, and tokens of
 * the old key still verify.  Remove the old key once its tokens have
 * expired, reload: its tokens stop verifying at once.
 *
 * Tokens of different types never pass for one another: the JOSE header
 * names the type ("typ"), and a token is only accepted for the type whose
 * header it carries, byte for byte.
 */

typedef enum {
    NGX_GAME_JWT_ACCESS = 0,        /* typ "at+jwt": access tokens */
    NGX_GAME_JWT_TICKET,            /* typ "JWT": game-server tickets */
    NGX_GAME_JWT_NTYPES
} ngx_game_jwt_type_e;


typedef enum {
    NGX_GAME_JWT_USE_AUTO = 0,
    NGX_GAME_JWT_USE_SIGN,
    NGX_GAME_JWT_USE_VERIFY
} ngx_game_jwt_use_e;


typedef struct {
    ngx_str_t                   kid;
    EVP_PKEY                   *pkey;
    EVP_PKEY_CTX               *verify;     /* prepared once */
    /* the base64url JOSE header of each type: what we sign with and the
     * only header we accept under this kid */
    ngx_str_t                   header[NGX_GAME_JWT_NTYPES];
    ngx_uint_t                  use;        /* ngx_game_jwt_use_e */
    unsigned                    private:1;
} ngx_game_jwt_key_t;


typedef struct {
    ngx_array_t                 keys;       /* ngx_game_jwt_key_t */
    ngx_game_jwt_key_t         *signer;     /* NULL: none can sign */
    ngx_str_t                   jwks;       /* the JWKS document */
    unsigned                    ready:1;
} ngx_game_jwt_keys_t;


/* configuration time, once all directives are read (init_main_conf,
 * merge_loc_conf): the complete key set, or NULL with an error logged */
ngx_game_jwt_keys_t *ngx_game_jwt_keys(ngx_conf_t *cf);

/* the setter of a service's retired key directive: fails nginx -t and
 * names game_jwt_key */
char *ngx_game_jwt_key_replaced(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* header.payload.signature of "claims" (serialised by jansson), in "pool" */
ngx_int_t ngx_game_jwt_sign(ngx_game_jwt_keys_t *keys, ngx_uint_t type,
    json_t *claims, ngx_pool_t *pool, ngx_str_t *token);

/* NGX_OK with the claims of a token signed by one of the keys as "type"
 * (the caller decrefs them), NGX_DECLINED for anything else, NGX_ERROR
 * when out of memory.  The claims themselves are not checked. */
ngx_int_t ngx_game_jwt_verify(ngx_game_jwt_keys_t *keys, ngx_uint_t type,
    u_char *token, size_t len, json_t **claims);


/*
 * A player's access token, checked one way for every service
 * (ngx_game_access.c).  The auth module owns the check (its key set,
 * issuer, audience, leeway, verified-token table and revoked sessions) and
 * lends it to the core at configuration time with ngx_game_access_lend().
 * A service that meets a token outside the game_auth_jwt guard (a
 * WebSocket's first frame) finds the check with ngx_game_access_verifier()
 * at configuration time and calls ngx_game_access_verify(): the very
 * function the guard calls, with the same state.  Without the auth module
 * nothing verifies and every token is refused.
 */

typedef struct {
    u_char                      player_id[GAME_UUID_LEN + 1];
    u_char                      sid[GAME_UUID_LEN + 1];     /* or "" */
    time_t                      iat;
    time_t                      exp;
    time_t                      auth_time;                  /* or 0 */
} ngx_game_access_t;


/* NGX_OK with "a" filled, NGX_DECLINED for any token the guard refuses */
typedef ngx_int_t (*ngx_game_access_verify_pt)(void *data, u_char *token,
    size_t len, ngx_game_access_t *a);

/* 1 once the session or the player of a token verified earlier has been
 * revoked: a long-lived connection asks again now and then */
typedef ngx_uint_t (*ngx_game_access_revoked_pt)(void *data,
    ngx_game_access_t *a);


typedef struct {
    ngx_game_access_verify_pt   verify;
    ngx_game_access_revoked_pt  revoked;
    void                       *data;
} ngx_game_access_verifier_t;


/* configuration time */
void ngx_game_access_lend(ngx_conf_t *cf, ngx_game_access_verify_pt verify,
    ngx_game_access_revoked_pt revoked, void *data);
ngx_game_access_verifier_t *ngx_game_access_verifier(ngx_conf_t *cf);

/* in a worker */
ngx_int_t ngx_game_access_verify(ngx_game_access_verifier_t *v,
    u_char *token, size_t len, ngx_game_access_t *a);
ngx_uint_t ngx_game_access_revoked(ngx_game_access_verifier_t *v,
    ngx_game_access_t *a);

/* the token of "Authorization: Bearer <token>", or NGX_DECLINED */
ngx_int_t ngx_game_access_bearer(ngx_http_request_t *r, ngx_str_t *token);


/*
 * Admin credentials (ngx_game_admin.c): a name and the SHA-256 of a secret
 * the admin sends as "Authorization: Bearer <secret>".  A service keeps
 * its admins in an ngx_array_t (zeroed; the first admin initialises it)
 * filled by its "name file" directive through ngx_game_admin_conf(), and
 * asks ngx_game_admin_who() who sent a request: NULL for nobody, and the
 * caller answers 401.
 */

typedef struct {
    ngx_str_t                   name;
    u_char                      hash[32];
} ngx_game_admin_t;

char *ngx_game_admin_conf(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_array_t *admins);
ngx_game_admin_t *ngx_game_admin_who(ngx_http_request_t *r,
    ngx_array_t *admins);

/* a secret's first line from a file, at least 32 characters, in cf->pool;
 * errors name the directive and the file, never the secret */
ngx_int_t ngx_game_conf_read_secret(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_str_t *file, ngx_str_t *secret);


/* HTTP helpers */

typedef void (*ngx_game_http_json_handler_pt)(ngx_http_request_t *r,
    json_t *body);

/*
 * A check of a raw body before it is parsed: NGX_OK lets it be parsed; an
 * HTTP status refuses it, and the core answers that status with the
 * error's "code" and "message" (static strings).
 */
typedef ngx_int_t (*ngx_game_http_body_check_pt)(ngx_http_request_t *r,
    ngx_str_t *body, const char **code, const char **message);

/*
 * Where the time a request waited on PostgreSQL and Redis adds up, for
 * $game_pg_time and $game_redis_time (of the main request); NULL when
 * out of memory.  ngx_game_pg_request_query() and
 * ngx_game_redis_request_cmd() point their queries and commands here.
 */
ngx_game_http_spent_t *ngx_game_http_spent(ngx_http_request_t *r);

ngx_int_t ngx_game_http_read_json(ngx_http_request_t *r,
    ngx_game_http_json_handler_pt handler);
ngx_int_t ngx_game_http_read_json_checked(ngx_http_request_t *r,
    ngx_game_http_body_check_pt check, ngx_game_http_json_handler_pt handler);
/* with "limit" in place of the location's game_body_limit */
ngx_int_t ngx_game_http_read_json_limited(ngx_http_request_t *r,
    size_t limit, ngx_game_http_body_check_pt check,
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
