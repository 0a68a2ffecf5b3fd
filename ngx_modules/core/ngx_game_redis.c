
/*
 * Redis connection pools, one set of connections per worker.
 *
 * Each connection is a hiredis async context bound to the worker's event
 * loop through the small adapter below.  Commands are pipelined: a
 * connection carries up to max_pending commands in flight, and commands go
 * to the connections in turn.
 *
 * hiredis calls a command's callback exactly once, even after the request
 * that sent it is gone, so its private data cannot live in the request's
 * memory.  It is a "slot" owned by the pool and recycled; a request that
 * goes away merely unhooks itself from its slot.
 *
 * A connection counts as up only once it has answered a PING: a stopped
 * (SIGSTOP) server still accepts TCP connections.  A command that times out
 * closes its connection, since every command behind it would wait as well;
 * the connection reconnects with a backoff of 100 ms doubling to 1 s.
 *
 * A subscription (ngx_game_redis_sub_*, at the end) is a connection of its
 * own to a pool's server, in subscribe mode, never in the pool's turn: a
 * subscribed connection takes no other command.  It is bound to the event
 * loop by the same adapter, reconnects the same way, and tells its owner
 * when it is up again, so that the owner subscribes anew.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <hiredis/async.h>
#include <openssl/sha.h>

#include "ngx_game_core_internal.h"
#include "ngx_game_conn.h"
#include "ngx_game_conf.h"
#include "game_util.h"


typedef enum {
    NGX_GAME_REDIS_CLOSED = 0,
    NGX_GAME_REDIS_CONNECTING,
    NGX_GAME_REDIS_READY
} ngx_game_redis_state_e;


typedef struct ngx_game_redis_slot_s  ngx_game_redis_slot_t;

/* the families every pool counts in (ngx_game_redis_metrics_init) */
typedef struct {
    ngx_game_metric_t          *connections;
    ngx_game_metric_t          *in_flight;
    ngx_game_metric_t          *timeouts;
    ngx_game_metric_t          *reconnects;
    ngx_game_metric_t          *rejected;
} ngx_game_redis_metrics_t;

typedef struct ngx_game_redis_conn_s  ngx_game_redis_conn_t;


struct ngx_game_redis_slot_s {
    ngx_game_redis_cmd_t       *cmd;        /* NULL once its caller left */
    ngx_game_redis_conn_t      *conn;
    ngx_game_redis_slot_t      *next;       /* in the pool's free list */
};


struct ngx_game_redis_conn_s {
    ngx_game_redis_pool_t      *pool;
    ngx_game_redis_sub_t       *sub;        /* a subscription's, or NULL */
    redisAsyncContext          *ac;
    ngx_connection_t           *c;
    ngx_game_redis_state_e      state;
    ngx_uint_t                  pending;
    unsigned                    writing:1;  /* inside hiredis's write */
    unsigned                    closing:1;  /* about to be freed */

    /* connect timeout while connecting, reconnect delay while closed */
    ngx_event_t                 timer;
    ngx_msec_t                  backoff;
};


struct ngx_game_redis_sub_s {
    ngx_game_redis_conn_t       conn;
    ngx_game_redis_sub_handlers_t  handlers;
    unsigned                    stopped:1;
    unsigned                    down:1;     /* said so in the log */
};


struct ngx_game_redis_pool_s {
    ngx_str_t                   name;
    ngx_str_t                   address;
    u_char                     *host;       /* or a unix socket path */
    int                         port;       /* 0 for a unix socket */
    ngx_uint_t                  connections;
    ngx_uint_t                  max_pending;
    ngx_msec_t                  connect_timeout;
    ngx_msec_t                  command_timeout;
    time_t                      keepalive;

    u_char                     *file;
    ngx_uint_t                  line;
    unsigned                    defined:1;

    /* per worker, from ngx_game_redis_pools_start() on */
    ngx_log_t                  *log;
    ngx_game_redis_conn_t      *conns;
    ngx_uint_t                  next;
    ngx_uint_t                  nready;
    ngx_game_redis_slot_t      *free;
    unsigned                    down:1;

    /* its metrics, and its value of their "pool" label */
    ngx_game_redis_metrics_t   *metrics;
    ngx_uint_t                  metric;
};


static ngx_uint_t ngx_game_redis_stopped(ngx_game_redis_conn_t *rc);
static void ngx_game_redis_sub_ready(ngx_game_redis_conn_t *rc);
static void ngx_game_redis_connect(ngx_game_redis_conn_t *rc);
static void ngx_game_redis_on_connect(const redisAsyncContext *ac,
    int status);
static void ngx_game_redis_on_ping(redisAsyncContext *ac, void *r,
    void *data);
static void ngx_game_redis_retry_later(ngx_game_redis_conn_t *rc,
    ngx_uint_t failed);
static void ngx_game_redis_timer_handler(ngx_event_t *ev);
static void ngx_game_redis_on_reply(redisAsyncContext *ac, void *r,
    void *data);
static void ngx_game_redis_cmd_timeout(ngx_event_t *ev);
static void ngx_game_redis_cmd_cleanup(void *data);
static ngx_game_redis_conn_t *ngx_game_redis_pick(ngx_game_redis_pool_t *rp);
static ngx_int_t ngx_game_redis_send(ngx_game_redis_pool_t *rp,
    ngx_game_redis_cmd_t *cmd, int argc, const char **argv,
    const size_t *argvlen);

static void ngx_game_redis_ev_add_read(void *data);
static void ngx_game_redis_ev_del_read(void *data);
static void ngx_game_redis_ev_add_write(void *data);
static void ngx_game_redis_ev_del_write(void *data);
static void ngx_game_redis_ev_cleanup(void *data);
static void ngx_game_redis_read_handler(ngx_event_t *ev);
static void ngx_game_redis_write_handler(ngx_event_t *ev);


/* configuration */

static ngx_game_param_t  ngx_game_redis_params[] = {

    { ngx_string("connections="), NGX_GAME_PARAM_NUMBER,
      offsetof(ngx_game_redis_pool_t, connections), 1, 64 },

    { ngx_string("max_pending="), NGX_GAME_PARAM_NUMBER,
      offsetof(ngx_game_redis_pool_t, max_pending), 1, 1000000 },

    { ngx_string("connect_timeout="), NGX_GAME_PARAM_MSEC,
      offsetof(ngx_game_redis_pool_t, connect_timeout), 0, 0 },

    { ngx_string("command_timeout="), NGX_GAME_PARAM_MSEC,
      offsetof(ngx_game_redis_pool_t, command_timeout), 0, 0 },

    /* TCP keepalive probes: 0 turns them off, any other time turns on
     * hiredis's own fixed interval */
    { ngx_string("keepalive="), NGX_GAME_PARAM_SEC,
      offsetof(ngx_game_redis_pool_t, keepalive), 0, 0 },

    { ngx_null_string, 0, 0, 0, 0 }
};


static ngx_game_redis_pool_t *
ngx_game_redis_pool_add(ngx_conf_t *cf, ngx_str_t *name)
{
    ngx_uint_t                  i;
    ngx_game_redis_pool_t     **pools, *rp, **slot;
    ngx_game_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_game_core_module);

    pools = cmcf->redis_pools.elts;
    for (i = 0; i < cmcf->redis_pools.nelts; i++) {
        if (pools[i]->name.len == name->len
            && ngx_strncmp(pools[i]->name.data, name->data, name->len) == 0)
        {
            return pools[i];
        }
    }

    rp = ngx_pcalloc(cf->pool, sizeof(ngx_game_redis_pool_t));
    if (rp == NULL) {
        return NULL;
    }

    slot = ngx_array_push(&cmcf->redis_pools);
    if (slot == NULL) {
        return NULL;
    }

    *slot = rp;
    rp->name = *name;
    rp->file = cf->conf_file->file.name.data;
    rp->line = cf->conf_file->line;

    return rp;
}


ngx_game_redis_pool_t *
ngx_game_redis_pool_lookup(ngx_conf_t *cf, ngx_str_t *name)
{
    return ngx_game_redis_pool_add(cf, name);
}


char *
ngx_game_conf_set_redis_pool_slot(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    void       **field;
    ngx_str_t   *value;

    field = (void **) ((u_char *) conf + cmd->offset);

    if (*field != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;
    *field = ngx_game_redis_pool_lookup(cf, &value[1]);

    return *field ? NGX_CONF_OK : NGX_CONF_ERROR;
}


ngx_str_t *
ngx_game_redis_pool_name(ngx_game_redis_pool_t *rp)
{
    return &rp->name;
}


/*
 * game_redis_pool name host:port|unix:/path [connections=N]
 *                 [max_pending=N] [connect_timeout=time]
 *                 [command_timeout=time] [keepalive=time];
 */

char *
ngx_game_redis_pool_directive(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    u_char                 *colon;
    ngx_int_t               port;
    ngx_str_t              *value, host;
    ngx_game_redis_pool_t  *rp;

    value = cf->args->elts;

    rp = ngx_game_redis_pool_add(cf, &value[1]);
    if (rp == NULL) {
        return NGX_CONF_ERROR;
    }

    if (rp->defined) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate \"%V\" pool \"%V\"",
                           &cmd->name, &value[1]);
        return NGX_CONF_ERROR;
    }

    rp->defined = 1;
    rp->file = cf->conf_file->file.name.data;
    rp->line = cf->conf_file->line;
    rp->address = value[2];

    if (value[2].len > 5 && ngx_strncmp(value[2].data, "unix:", 5) == 0) {
        host.data = value[2].data + 5;
        host.len = value[2].len - 5;
        rp->port = 0;

    } else {
        /* hiredis resolves names with a blocking getaddrinfo(): take
         * addresses only, so that connecting never stalls a worker */
        colon = ngx_strlchr(value[2].data, value[2].data + value[2].len, ':');
        if (colon == NULL) {
            goto invalid;
        }

        host.data = value[2].data;
        host.len = colon - value[2].data;
        port = ngx_atoi(colon + 1, value[2].data + value[2].len - colon - 1);

        if (port < 1 || port > 65535
            || (ngx_inet_addr(host.data, host.len) == INADDR_NONE
                && !(host.len > 2 && host.data[0] == '['))) /* IPv6 */
        {
            goto invalid;
        }

        if (host.data[0] == '[') {
            host.data++;
            host.len -= 2;
        }

        rp->port = port;
    }

    rp->host = ngx_pnalloc(cf->pool, host.len + 1);
    if (rp->host == NULL) {
        return NGX_CONF_ERROR;
    }
    *ngx_cpymem(rp->host, host.data, host.len) = '\0';

    rp->connections = 1;
    rp->max_pending = 4096;
    rp->connect_timeout = 1000;
    rp->command_timeout = 1000;
    rp->keepalive = 30;

    return ngx_game_conf_params(cf, cmd, 3, ngx_game_redis_params, rp);

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid address \"%V\" in \"%V\" directive, "
                       "expected IP:port or unix:/path",
                       &value[2], &cmd->name);
    return NGX_CONF_ERROR;
}


char *
ngx_game_redis_pools_check(ngx_conf_t *cf, ngx_array_t *pools)
{
    ngx_uint_t               i;
    ngx_game_redis_pool_t  **rp;

    rp = pools->elts;
    for (i = 0; i < pools->nelts; i++) {
        if (!rp[i]->defined) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "Redis pool \"%V\" is used in %s:%ui but "
                          "not declared with \"game_redis_pool\"",
                          &rp[i]->name, rp[i]->file, rp[i]->line);
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


/* worker start and stop */

ngx_int_t
ngx_game_redis_pools_start(ngx_cycle_t *cycle, ngx_array_t *pools)
{
    ngx_uint_t               i, k;
    ngx_game_redis_conn_t   *rc;
    ngx_game_redis_pool_t  **rps, *rp;

    rps = pools->elts;
    for (i = 0; i < pools->nelts; i++) {
        rp = rps[i];
        rp->log = cycle->log;

        rp->conns = ngx_pcalloc(cycle->pool,
                            rp->connections * sizeof(ngx_game_redis_conn_t));
        if (rp->conns == NULL) {
            return NGX_ERROR;
        }

        for (k = 0; k < rp->connections; k++) {
            rc = &rp->conns[k];
            rc->pool = rp;
            rc->timer.handler = ngx_game_redis_timer_handler;
            rc->timer.data = rc;
            rc->timer.log = cycle->log;
            rc->timer.cancelable = 1;

            ngx_game_redis_connect(rc);
        }
    }

    return NGX_OK;
}


void
ngx_game_redis_pools_stop(ngx_array_t *pools)
{
    ngx_uint_t               i, k;
    ngx_game_redis_conn_t   *conns, *rc;
    ngx_game_redis_pool_t  **rps, *rp;

    rps = pools->elts;
    for (i = 0; i < pools->nelts; i++) {
        rp = rps[i];
        conns = rp->conns;

        /* the worker ends: a pool without connections never reconnects,
         * calls no handler of the commands that hiredis fails below (their
         * requests are gone or going), and has lost nothing worth a line
         * in the log */
        rp->conns = NULL;

        for (k = 0; conns && k < rp->connections; k++) {
            rc = &conns[k];

            if (rc->timer.timer_set) {
                ngx_del_timer(&rc->timer);
            }

            if (rc->ac) {
                redisAsyncFree(rc->ac);
            }
        }
    }
}


/* connecting */

/* the worker ends, or the connection's owner let it go: no reconnects */
static ngx_uint_t
ngx_game_redis_stopped(ngx_game_redis_conn_t *rc)
{
    if (ngx_exiting || ngx_terminate || ngx_quit) {
        return 1;
    }

    return rc->sub ? rc->sub->stopped : rc->pool->conns == NULL;
}


static void
ngx_game_redis_connect(ngx_game_redis_conn_t *rc)
{
    redisAsyncContext      *ac;
    ngx_game_redis_pool_t  *rp = rc->pool;

    if (ngx_game_redis_stopped(rc)) {
        return;
    }

    if (rp->port) {
        ac = redisAsyncConnect((char *) rp->host, rp->port);
    } else {
        ac = redisAsyncConnectUnix((char *) rp->host);
    }

    if (ac == NULL || ac->err) {
        ngx_log_error(NGX_LOG_ERR, rp->log, 0,
                      "game: Redis pool \"%V\": connect to %V failed: %s",
                      &rp->name, &rp->address,
                      ac ? ac->errstr : "out of memory");
        if (ac) {
            redisAsyncFree(ac);
        }
        ngx_game_redis_retry_later(rc, 1);
        return;
    }

    rc->c = ngx_game_conn_bind(ac->c.fd, rp->log,
                               ngx_game_redis_read_handler,
                               ngx_game_redis_write_handler, rc);
    if (rc->c == NULL) {
        redisAsyncFree(ac);
        ngx_game_redis_retry_later(rc, 1);
        return;
    }

    rc->ac = ac;
    rc->state = NGX_GAME_REDIS_CONNECTING;
    ac->data = rc;

    if (rp->port && rp->keepalive) {
        /* hiredis 0.14 exposes only its own probe interval (15 s) */
        (void) redisEnableKeepAlive(&ac->c);
    }

    ac->ev.data = rc;
    ac->ev.addRead = ngx_game_redis_ev_add_read;
    ac->ev.delRead = ngx_game_redis_ev_del_read;
    ac->ev.addWrite = ngx_game_redis_ev_add_write;
    ac->ev.delWrite = ngx_game_redis_ev_del_write;
    ac->ev.cleanup = ngx_game_redis_ev_cleanup;

    ngx_add_timer(&rc->timer, rp->connect_timeout);

    /* hiredis learns that the connect finished from the first write
     * event, which setting this callback asks for */
    (void) redisAsyncSetConnectCallback(ac, ngx_game_redis_on_connect);
}


static void
ngx_game_redis_on_connect(const redisAsyncContext *ac, int status)
{
    ngx_game_redis_conn_t  *rc = ac->data;

    if (status != REDIS_OK) {
        ngx_log_error(NGX_LOG_ERR, rc->pool->log, 0,
                      "game: Redis pool \"%V\": connect to %V failed: %s",
                      &rc->pool->name, &rc->pool->address, ac->errstr);
        /* hiredis frees the context next, and the cleanup hook retries */
        return;
    }

    (void) redisAsyncCommand((redisAsyncContext *) ac,
                             ngx_game_redis_on_ping, rc, "PING");
}


static void
ngx_game_redis_on_ping(redisAsyncContext *ac, void *r, void *data)
{
    redisReply             *reply = r;
    ngx_game_redis_conn_t  *rc = data;
    ngx_game_redis_pool_t  *rp = rc->pool;

    if (reply == NULL || reply->type != REDIS_REPLY_STATUS
        || rc->state != NGX_GAME_REDIS_CONNECTING)
    {
        /* the context is going away or the server said no (LOADING,
         * a password wanted): the connect timer will retry */
        if (reply && reply->type == REDIS_REPLY_ERROR) {
            ngx_log_error(NGX_LOG_ERR, rp->log, 0,
                          "game: Redis pool \"%V\": PING answered \"%*s\"",
                          &rp->name, (size_t) reply->len, reply->str);
        }
        return;
    }

    if (rc->timer.timer_set) {
        ngx_del_timer(&rc->timer);
    }

    if (rc->sub) {
        ngx_game_redis_sub_ready(rc);
        return;
    }

    if (rp->down) {
        ngx_log_error(NGX_LOG_NOTICE, rp->log, 0,
                      "game: Redis pool \"%V\" is up again", &rp->name);
    }

    rc->state = NGX_GAME_REDIS_READY;
    rc->backoff = 0;
    rp->nready++;
    rp->down = 0;
}


/*
 * Called from the cleanup hook, once hiredis has failed every command of
 * the context: reopen at once after a connection that worked, after a
 * growing delay when connecting "failed".
 */

static void
ngx_game_redis_retry_later(ngx_game_redis_conn_t *rc, ngx_uint_t failed)
{
    ngx_msec_t              delay;
    ngx_game_redis_pool_t  *rp = rc->pool;

    rc->state = NGX_GAME_REDIS_CLOSED;

    if (rc->timer.timer_set) {
        ngx_del_timer(&rc->timer);
    }

    if (!failed) {
        rc->backoff = 0;
        delay = 1;

    } else {
        rc->backoff = game_backoff_next(rc->backoff, NGX_GAME_BACKOFF_MIN,
                                        NGX_GAME_BACKOFF_MAX);
        delay = rc->backoff;

        if (rc->sub) {
            if (!rc->sub->down) {
                ngx_log_error(NGX_LOG_ERR, rp->log, 0,
                              "game: Redis pool \"%V\": the subscription "
                              "cannot connect to %V", &rp->name,
                              &rp->address);
                rc->sub->down = 1;
            }

        } else if (rp->nready == 0 && !rp->down) {
            ngx_log_error(NGX_LOG_ERR, rp->log, 0,
                          "game: Redis pool \"%V\" is down", &rp->name);
            rp->down = 1;
        }
    }

    if (!ngx_game_redis_stopped(rc)) {
        ngx_add_timer(&rc->timer, delay);

        if (rc->sub == NULL) {
            ngx_game_metric_inc(rp->metrics->reconnects, rp->metric, 0, 1);
        }
    }
}


static void
ngx_game_redis_timer_handler(ngx_event_t *ev)
{
    ngx_game_redis_conn_t  *rc = ev->data;

    if (rc->state == NGX_GAME_REDIS_CONNECTING) {
        ngx_log_error(NGX_LOG_ERR, rc->pool->log, 0,
                      "game: Redis pool \"%V\": no answer from %V in time",
                      &rc->pool->name, &rc->pool->address);
        redisAsyncFree(rc->ac);
        return;
    }

    if (rc->state == NGX_GAME_REDIS_CLOSED) {
        ngx_game_redis_connect(rc);
    }
}


/* commands */

ngx_game_redis_cmd_t *
ngx_game_redis_cmd_create(ngx_pool_t *pool, ngx_log_t *log)
{
    ngx_pool_cleanup_t    *cln;
    ngx_game_redis_cmd_t  *cmd;

    cmd = ngx_pcalloc(pool, sizeof(ngx_game_redis_cmd_t));
    if (cmd == NULL) {
        return NULL;
    }

    cln = ngx_pool_cleanup_add(pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    cln->handler = ngx_game_redis_cmd_cleanup;
    cln->data = cmd;

    cmd->mem = pool;
    cmd->log = log;
    cmd->timer.handler = ngx_game_redis_cmd_timeout;
    cmd->timer.data = cmd;
    cmd->timer.log = log;

    return cmd;
}


ngx_game_redis_cmd_t *
ngx_game_redis_request_cmd(ngx_http_request_t *r)
{
    ngx_game_redis_cmd_t   *cmd;
    ngx_game_http_spent_t  *spent;

    cmd = ngx_game_redis_cmd_create(r->pool, r->connection->log);
    if (cmd == NULL) {
        return NULL;
    }

    spent = ngx_game_http_spent(r);
    if (spent == NULL) {
        return NULL;
    }

    cmd->spent = &spent->redis;

    return cmd;
}


ngx_int_t
ngx_game_redis_cmd_run(ngx_game_redis_pool_t *rp, ngx_game_redis_cmd_t *cmd,
    int argc, const char **argv, const size_t *argvlen)
{
    ngx_int_t  rc;

    cmd->pool = rp;
    cmd->sent = ngx_current_msec;

    rc = ngx_game_redis_send(rp, cmd, argc, argv, argvlen);

    if (rc == NGX_AGAIN) {
        ngx_add_timer(&cmd->timer, rp->command_timeout);
    }

    return rc;
}


/*
 * Run a Lua script by its SHA1, as EVALSHA; when Redis does not know it
 * (a restarted or flushed server), the reply handler sends it once more as
 * EVAL with its text, which also caches it again.  The caller's arguments
 * are copied: the retry happens after the caller has moved on.
 */

ngx_int_t
ngx_game_redis_eval(ngx_game_redis_pool_t *rp, ngx_game_redis_cmd_t *cmd,
    ngx_game_redis_script_t *script, int nkeys, int argc, const char **argv,
    const size_t *argvlen)
{
    int          i;
    u_char      *p;
    ngx_int_t    rc;

    cmd->pool = rp;
    cmd->sent = ngx_current_msec;

    if (argc > NGX_GAME_REDIS_MAX_ARGS - 3) {
        return NGX_ERROR;
    }

    cmd->script = script;
    cmd->argc = argc + 3;
    cmd->argv[0] = "EVALSHA";
    cmd->argvlen[0] = 7;
    cmd->argv[1] = script->sha1;
    cmd->argvlen[1] = 40;

    p = ngx_pnalloc(cmd->mem, NGX_INT_T_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }
    cmd->argv[2] = (char *) p;
    cmd->argvlen[2] = ngx_sprintf(p, "%d", nkeys) - p;

    for (i = 0; i < argc; i++) {
        p = ngx_pnalloc(cmd->mem, argvlen[i] + 1);
        if (p == NULL) {
            return NGX_ERROR;
        }
        ngx_memcpy(p, argv[i], argvlen[i]);
        cmd->argv[i + 3] = (char *) p;
        cmd->argvlen[i + 3] = argvlen[i];
    }

    rc = ngx_game_redis_send(rp, cmd, cmd->argc, cmd->argv, cmd->argvlen);

    if (rc == NGX_AGAIN) {
        ngx_add_timer(&cmd->timer, rp->command_timeout);
    }

    return rc;
}


void
ngx_game_redis_script_init(ngx_game_redis_script_t *script)
{
    u_char  md[SHA_DIGEST_LENGTH];

    (void) SHA1((const u_char *) script->text, script->len, md);
    ngx_hex_dump((u_char *) script->sha1, md, SHA_DIGEST_LENGTH);
    script->sha1[40] = '\0';
}


static ngx_int_t
ngx_game_redis_send(ngx_game_redis_pool_t *rp, ngx_game_redis_cmd_t *cmd,
    int argc, const char **argv, const size_t *argvlen)
{
    ngx_game_redis_conn_t  *rc;
    ngx_game_redis_slot_t  *slot;

    if (rp->conns == NULL) {
        return NGX_GAME_UNAVAILABLE;
    }

    rc = ngx_game_redis_pick(rp);
    if (rc == NULL) {
        ngx_game_metric_inc(rp->metrics->rejected, rp->metric, 0, 1);
        return NGX_GAME_UNAVAILABLE;
    }

    slot = rp->free;
    if (slot) {
        rp->free = slot->next;

    } else {
        slot = ngx_alloc(sizeof(ngx_game_redis_slot_t), rp->log);
        if (slot == NULL) {
            return NGX_ERROR;
        }
    }

    slot->cmd = cmd;
    slot->conn = rc;

    if (redisAsyncCommandArgv(rc->ac, ngx_game_redis_on_reply, slot, argc,
                              argv, argvlen)
        != REDIS_OK)
    {
        slot->next = rp->free;
        rp->free = slot;
        return NGX_GAME_UNAVAILABLE;
    }

    rc->pending++;
    cmd->slot = slot;

    return NGX_AGAIN;
}


/*
 * The next ready connection in turn with room in its pipeline.  While a
 * pool has never been up (a worker just started), commands may also queue
 * on a connection still connecting: hiredis sends them once it is up.
 */

static ngx_game_redis_conn_t *
ngx_game_redis_pick(ngx_game_redis_pool_t *rp)
{
    ngx_uint_t              i, k;
    ngx_game_redis_conn_t  *rc;

    for (i = 0; i < rp->connections; i++) {
        k = (rp->next + i) % rp->connections;
        rc = &rp->conns[k];

        if (rc->pending >= rp->max_pending || rc->closing) {
            continue;
        }

        if (rc->state == NGX_GAME_REDIS_READY
            || (rc->state == NGX_GAME_REDIS_CONNECTING && rp->nready == 0
                && !rp->down))
        {
            rp->next = k + 1;
            return rc;
        }
    }

    return NULL;
}


static void
ngx_game_redis_on_reply(redisAsyncContext *ac, void *r, void *data)
{
    ngx_int_t               rc;
    redisReply             *reply = r;
    ngx_game_redis_cmd_t   *cmd;
    ngx_game_redis_slot_t  *slot = data;
    ngx_game_redis_pool_t  *rp;

    slot->conn->pending--;
    rp = slot->conn->pool;
    cmd = slot->cmd;

    slot->next = rp->free;
    rp->free = slot;

    if (cmd == NULL || rp->conns == NULL) {
        return;
    }

    cmd->slot = NULL;

    if (reply && reply->type == REDIS_REPLY_ERROR && cmd->script
        && !cmd->evaled && reply->len >= 8
        && ngx_strncmp(reply->str, "NOSCRIPT", 8) == 0)
    {
        /* the server lost its script cache: send the text, same timer */
        cmd->evaled = 1;
        cmd->argv[0] = "EVAL";
        cmd->argvlen[0] = 4;
        cmd->argv[1] = cmd->script->text;
        cmd->argvlen[1] = cmd->script->len;

        if (ngx_game_redis_send(rp, cmd, cmd->argc, cmd->argv, cmd->argvlen)
            == NGX_AGAIN)
        {
            return;
        }

        reply = NULL;
    }

    if (cmd->timer.timer_set) {
        ngx_del_timer(&cmd->timer);
    }

    if (reply == NULL) {
        rc = NGX_GAME_UNAVAILABLE;

    } else if (reply->type == REDIS_REPLY_ERROR) {
        rc = NGX_GAME_QUERY_ERROR;

        if (!cmd->quiet) {
            ngx_log_error(NGX_LOG_ERR, cmd->log, 0,
                          "game: Redis pool \"%V\": command failed: %*s",
                          &rp->name, (size_t) reply->len, reply->str);
        }

    } else {
        rc = NGX_OK;
    }

    if (cmd->spent) {
        *cmd->spent += ngx_current_msec - cmd->sent;
    }

    cmd->handler(cmd, rc, reply);
}


/*
 * Whatever is queued behind a command that timed out waits as long: its
 * connection is freed, which fails the other commands on it.  It is taken
 * out of use first and freed once this command's handler has run, since
 * the other handlers may end the request that owns this command.
 */

static void
ngx_game_redis_cmd_timeout(ngx_event_t *ev)
{
    ngx_game_redis_cmd_t   *cmd = ev->data;
    ngx_game_redis_conn_t  *rc = NULL;
    ngx_game_redis_slot_t  *slot = cmd->slot;

    ngx_log_error(NGX_LOG_WARN, cmd->log, 0,
                  "game: Redis pool \"%V\": command timed out",
                  &cmd->pool->name);

    ngx_game_metric_inc(cmd->pool->metrics->timeouts, cmd->pool->metric, 0,
                        1);

    cmd->slot = NULL;

    if (slot) {
        slot->cmd = NULL;

        if (slot->conn->ac) {
            rc = slot->conn;
            rc->closing = 1;
        }
    }

    if (cmd->spent) {
        *cmd->spent += ngx_current_msec - cmd->sent;
    }

    cmd->handler(cmd, NGX_GAME_TIMEOUT, NULL);

    if (rc && rc->ac) {
        redisAsyncFree(rc->ac);
    }
}


static void
ngx_game_redis_cmd_cleanup(void *data)
{
    ngx_game_redis_cmd_t  *cmd = data;

    if (cmd->slot) {
        ((ngx_game_redis_slot_t *) cmd->slot)->cmd = NULL;
        cmd->slot = NULL;
    }

    if (cmd->timer.timer_set) {
        ngx_del_timer(&cmd->timer);
    }
}


/* the hiredis event adapter */

static void
ngx_game_redis_ev_add_read(void *data)
{
    ngx_game_redis_conn_t  *rc = data;

    (void) ngx_game_conn_watch(rc->c, 1, rc->c->write->active);
}


static void
ngx_game_redis_ev_del_read(void *data)
{
    ngx_game_redis_conn_t  *rc = data;

    (void) ngx_game_conn_watch(rc->c, 0, rc->c->write->active);
}


/*
 * hiredis asks to write after every command.  Rather than asking the
 * kernel to watch the socket (two epoll_ctl calls per command), the write
 * is posted to run once at the end of this event loop iteration, when it
 * sends every command the iteration produced in one write().  Only when
 * the socket is full does the kernel watch it.
 */

static void
ngx_game_redis_ev_add_write(void *data)
{
    ngx_game_redis_conn_t  *rc = data;

    if (rc->writing || rc->state == NGX_GAME_REDIS_CONNECTING) {
        /* the socket is full, or the connect is not done: wait for it */
        (void) ngx_game_conn_watch(rc->c, rc->c->read->active, 1);
        return;
    }

    if (!rc->c->write->posted && !rc->c->write->active) {
        ngx_post_event(rc->c->write, &ngx_posted_events);
    }
}


static void
ngx_game_redis_ev_del_write(void *data)
{
    ngx_game_redis_conn_t  *rc = data;

    if (rc->c->write->posted) {
        ngx_delete_posted_event(rc->c->write);
    }

    (void) ngx_game_conn_watch(rc->c, rc->c->read->active, 0);
}


/*
 * hiredis is freeing the context (a broken connection, a failed connect,
 * or redisAsyncFree()): the descriptor closes right after this returns.
 */

static void
ngx_game_redis_ev_cleanup(void *data)
{
    ngx_game_redis_conn_t  *rc = data;
    ngx_uint_t              was_ready;

    if (rc->c) {
        ngx_game_conn_unbind(rc->c, 0);
        rc->c = NULL;
    }

    rc->ac = NULL;
    rc->writing = 0;
    rc->closing = 0;

    if (rc->sub ? rc->sub->stopped : rc->pool->conns == NULL) {
        /* ngx_game_redis_pools_stop(), ngx_game_redis_sub_stop() */
        rc->state = NGX_GAME_REDIS_CLOSED;
        return;
    }

    was_ready = (rc->state == NGX_GAME_REDIS_READY);

    if (was_ready && rc->sub) {
        ngx_log_error(NGX_LOG_WARN, rc->pool->log, 0,
                      "game: Redis pool \"%V\": the subscription to %V "
                      "was lost", &rc->pool->name, &rc->pool->address);

        rc->state = NGX_GAME_REDIS_CLOSED;
        rc->sub->handlers.lost(rc->sub, rc->sub->handlers.data);

    } else if (was_ready) {
        rc->pool->nready--;
        ngx_log_error(NGX_LOG_WARN, rc->pool->log, 0,
                      "game: Redis pool \"%V\": connection to %V lost",
                      &rc->pool->name, &rc->pool->address);
    }

    ngx_game_redis_retry_later(rc, !was_ready);
}


static void
ngx_game_redis_read_handler(ngx_event_t *ev)
{
    ngx_connection_t       *c = ev->data;
    ngx_game_redis_conn_t  *rc = c->data;

    redisAsyncHandleRead(rc->ac);
}


static void
ngx_game_redis_write_handler(ngx_event_t *ev)
{
    ngx_connection_t       *c = ev->data;
    ngx_game_redis_conn_t  *rc = c->data;

    rc->writing = 1;
    redisAsyncHandleWrite(rc->ac);

    /* the context may be gone: a failed write frees it */
    if (rc->ac) {
        rc->writing = 0;
    }
}


/*
 * Subscriptions.  One connection in subscribe mode, bound and reconnected
 * like a pool's, to the server of pool "rp".  Its owner subscribes once the
 * connection says it is ready, and again after every reconnect: Redis
 * forgets a connection's channels with the connection.
 *
 * hiredis keeps one callback per channel; every channel here has the same
 * one, which hands confirmations and messages to the owner.  A subscribed
 * hiredis context takes no command but (P)(UN)SUBSCRIBE (a PING would be
 * answered in a shape hiredis 0.14 cannot match to it), so the connection
 * is checked with a PING before it subscribes to anything.
 */

static void ngx_game_redis_sub_on_reply(redisAsyncContext *ac, void *r,
    void *data);


ngx_game_redis_sub_t *
ngx_game_redis_sub_start(ngx_cycle_t *cycle, ngx_game_redis_pool_t *rp,
    ngx_game_redis_sub_handlers_t *handlers)
{
    ngx_game_redis_sub_t   *sub;
    ngx_game_redis_conn_t  *rc;

    sub = ngx_pcalloc(cycle->pool, sizeof(ngx_game_redis_sub_t));
    if (sub == NULL) {
        return NULL;
    }

    sub->handlers = *handlers;

    rc = &sub->conn;
    rc->pool = rp;
    rc->sub = sub;
    rc->timer.handler = ngx_game_redis_timer_handler;
    rc->timer.data = rc;
    rc->timer.log = cycle->log;
    /* reconnecting is idle work: it must not keep a leaving worker */
    rc->timer.cancelable = 1;

    ngx_game_redis_connect(rc);

    return sub;
}


static void
ngx_game_redis_sub_ready(ngx_game_redis_conn_t *rc)
{
    ngx_game_redis_sub_t  *sub = rc->sub;

    if (sub->down) {
        ngx_log_error(NGX_LOG_NOTICE, rc->pool->log, 0,
                      "game: Redis pool \"%V\": the subscription is up "
                      "again", &rc->pool->name);
        sub->down = 0;
    }

    rc->state = NGX_GAME_REDIS_READY;
    rc->backoff = 0;

    sub->handlers.ready(sub, sub->handlers.data);
}


ngx_uint_t
ngx_game_redis_sub_ready_now(ngx_game_redis_sub_t *sub)
{
    return sub->conn.state == NGX_GAME_REDIS_READY && sub->conn.ac
           && !sub->conn.closing;
}


/*
 * SUBSCRIBE or UNSUBSCRIBE "n" channels in one command.  NGX_OK: sent
 * (SUBSCRIBE is confirmed channel by channel to the "subscribed"
 * handler); NGX_GAME_UNAVAILABLE: the connection is not up, and the owner
 * subscribes when "ready" says it is.
 */

ngx_int_t
ngx_game_redis_sub_send(ngx_game_redis_sub_t *sub, ngx_uint_t subscribe,
    ngx_str_t *channels, ngx_uint_t n)
{
    int                     rc;
    size_t                 *argvlen;
    ngx_uint_t              i;
    const char            **argv;
    ngx_game_redis_conn_t  *conn = &sub->conn;

    if (n == 0) {
        return NGX_OK;
    }

    if (!ngx_game_redis_sub_ready_now(sub)) {
        return NGX_GAME_UNAVAILABLE;
    }

    argv = ngx_alloc((n + 1) * (sizeof(char *) + sizeof(size_t)),
                     conn->pool->log);
    if (argv == NULL) {
        return NGX_ERROR;
    }

    argvlen = (size_t *) (argv + n + 1);

    argv[0] = subscribe ? "SUBSCRIBE" : "UNSUBSCRIBE";
    argvlen[0] = subscribe ? 9 : 11;

    for (i = 0; i < n; i++) {
        argv[i + 1] = (const char *) channels[i].data;
        argvlen[i + 1] = channels[i].len;
    }

    /* hiredis formats the command at once and registers the callback for
     * every channel of a SUBSCRIBE; an UNSUBSCRIBE has none of its own */
    rc = redisAsyncCommandArgv(conn->ac,
                               subscribe ? ngx_game_redis_sub_on_reply : NULL,
                               sub, (int) n + 1, argv, argvlen);
    ngx_free(argv);

    return rc == REDIS_OK ? NGX_OK : NGX_GAME_UNAVAILABLE;
}


/* ["subscribe", channel, count] | ["message", channel, payload] | NULL */
static void
ngx_game_redis_sub_on_reply(redisAsyncContext *ac, void *r, void *data)
{
    ngx_str_t              kind, channel, payload;
    redisReply            *reply = r;
    ngx_game_redis_sub_t  *sub = data;

    /* the context is going away: every channel's callback hears NULL */
    if (reply == NULL || sub->stopped
        || reply->type != REDIS_REPLY_ARRAY || reply->elements != 3
        || reply->element[0]->type != REDIS_REPLY_STRING
        || reply->element[1]->type != REDIS_REPLY_STRING)
    {
        return;
    }

    kind.data = (u_char *) reply->element[0]->str;
    kind.len = reply->element[0]->len;
    channel.data = (u_char *) reply->element[1]->str;
    channel.len = reply->element[1]->len;

    if (kind.len == 7 && ngx_strncmp(kind.data, "message", 7) == 0
        && reply->element[2]->type == REDIS_REPLY_STRING)
    {
        payload.data = (u_char *) reply->element[2]->str;
        payload.len = reply->element[2]->len;

        sub->handlers.message(sub, sub->handlers.data, &channel, &payload);
        return;
    }

    if (kind.len == 9 && ngx_strncmp(kind.data, "subscribe", 9) == 0) {
        sub->handlers.subscribed(sub, sub->handlers.data, &channel);
    }
}


/* the worker ends: close quietly, call no handler */
void
ngx_game_redis_sub_stop(ngx_game_redis_sub_t *sub)
{
    ngx_game_redis_conn_t  *rc = &sub->conn;

    sub->stopped = 1;

    if (rc->timer.timer_set) {
        ngx_del_timer(&rc->timer);
    }

    if (rc->ac) {
        redisAsyncFree(rc->ac);
    }
}


/* metrics: the pools' families, and a sampler for their gauges */

static void ngx_game_redis_metrics_sample(void *data);


ngx_int_t
ngx_game_redis_metrics_init(ngx_conf_t *cf, ngx_array_t *pools)
{
    ngx_int_t                  v;
    ngx_uint_t                 i;
    ngx_game_metric_t         *families[5];
    ngx_game_redis_pool_t    **rp;
    ngx_game_redis_metrics_t  *m;

    m = ngx_pcalloc(cf->pool, sizeof(ngx_game_redis_metrics_t));
    if (m == NULL) {
        return NGX_ERROR;
    }

    m->connections = ngx_game_metric_add(cf, NGX_GAME_METRIC_GAUGE,
        "game_redis_pool_connections",
        "Redis connections up, summed over the workers",
        "pool", NULL, NULL);
    m->in_flight = ngx_game_metric_add(cf, NGX_GAME_METRIC_GAUGE,
        "game_redis_pool_commands_in_flight",
        "Commands sent and not yet answered", "pool", NULL, NULL);
    m->timeouts = ngx_game_metric_add(cf, NGX_GAME_METRIC_COUNTER,
        "game_redis_pool_timeouts_total",
        "Commands that got no answer within command_timeout",
        "pool", NULL, NULL);
    m->reconnects = ngx_game_metric_add(cf, NGX_GAME_METRIC_COUNTER,
        "game_redis_pool_reconnects_total",
        "Connections lost or failed, each followed by a new attempt",
        "pool", NULL, NULL);
    m->rejected = ngx_game_metric_add(cf, NGX_GAME_METRIC_COUNTER,
        "game_redis_pool_rejected_total",
        "Commands refused at once: no connection up or all full (503)",
        "pool", NULL, NULL);

    families[0] = m->connections;
    families[1] = m->in_flight;
    families[2] = m->timeouts;
    families[3] = m->reconnects;
    families[4] = m->rejected;

    rp = pools->elts;

    for (i = 0; i < pools->nelts; i++) {
        v = ngx_game_metric_values(cf, families, 5, &rp[i]->name);
        if (v == NGX_ERROR) {
            return NGX_ERROR;
        }

        rp[i]->metrics = m;
        rp[i]->metric = v;
    }

    return ngx_game_metrics_sampler_add(cf, ngx_game_redis_metrics_sample,
                                        pools);
}


static void
ngx_game_redis_metrics_sample(void *data)
{
    ngx_array_t *pools = data;

    ngx_uint_t                 i, k, n;
    ngx_game_redis_pool_t    **rp;

    rp = pools->elts;

    for (i = 0; i < pools->nelts; i++) {
        n = 0;

        for (k = 0; rp[i]->conns && k < rp[i]->connections; k++) {
            n += rp[i]->conns[k].pending;
        }

        ngx_game_metric_set(rp[i]->metrics->connections, rp[i]->metric, 0,
                            rp[i]->nready);
        ngx_game_metric_set(rp[i]->metrics->in_flight, rp[i]->metric, 0, n);
    }
}
