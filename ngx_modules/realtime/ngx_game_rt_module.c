
/*
 * ngx_game_rt_module: players' WebSockets, inside the worker.
 *
 *   http {
 *       game_rt_redis          main;
 *       game_rt_origins        https://play.example.com;
 *       game_rt_admin          ops /run/secrets/rt-admin;
 *
 *       server {
 *           location = /ws            { game_rt websocket; }
 *           location = /admin/notify  { game_rt notify; }
 *       }
 *   }
 *
 * GET /ws upgrades to a WebSocket (subprotocol game.v1) that nginx's own
 * worker terminates: no proxy_pass, no other process.  Services push to
 * players through the core (ngx_game_push(), Redis pub/sub) and never see
 * this module; each worker subscribes once, for all of its players.
 * conf/realtime.locations has the locations; the README's Realtime
 * section has the protocol.
 */

#include "ngx_game_rt.h"


static void *ngx_game_rt_create_main_conf(ngx_conf_t *cf);
static char *ngx_game_rt_init_main_conf(ngx_conf_t *cf, void *conf);
static ngx_int_t ngx_game_rt_postconfiguration(ngx_conf_t *cf);
static char *ngx_game_rt_origins(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_game_rt_rate(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_game_rt_endpoint(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_game_rt_admin(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_game_rt_init_process(ngx_cycle_t *cycle);
static void ngx_game_rt_exit_process(ngx_cycle_t *cycle);


/* what the locations asked for, checked once the http block is read */
typedef struct {
    ngx_game_rt_main_conf_t     conf;
    unsigned                    websocket:1;
    unsigned                    notify:1;
} ngx_game_rt_main_t;


static ngx_command_t  ngx_game_rt_commands[] = {

    /* the Redis pool pushes go through, and whose server each worker
     * subscribes to (a connection of its own) */
    { ngx_string("game_rt_redis"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_game_conf_set_redis_pool_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_game_rt_main_conf_t, redis),
      NULL },

    /* game_rt_origins origin ...: the web pages whose scripts may open a
     * WebSocket ("https://play.example.com"); a request with another
     * Origin is refused (403), one without (a native client) is not */
    { ngx_string("game_rt_origins"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_game_rt_origins,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    /* how long a socket without an Authorization header has to send its
     * "auth" message */
    { ngx_string("game_rt_auth_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_game_rt_main_conf_t, auth_timeout),
      NULL },

    /* a ping after this long without a frame from the client ... */
    { ngx_string("game_rt_ping_interval"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_game_rt_main_conf_t, ping_interval),
      NULL },

    /* ... and the socket is closed when nothing comes back within this */
    { ngx_string("game_rt_pong_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_game_rt_main_conf_t, pong_timeout),
      NULL },

    /* how long our close waits for the client's */
    { ngx_string("game_rt_close_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_game_rt_main_conf_t, close_timeout),
      NULL },

    /* the largest message a client may send, fragments included; larger
     * closes with 1009 */
    { ngx_string("game_rt_max_message"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_game_rt_main_conf_t, max_message),
      NULL },

    /* what may wait to be sent to one client; a client that lets more
     * pile up is closed with 1013 */
    { ngx_string("game_rt_send_queue"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_game_rt_main_conf_t, send_queue),
      NULL },

    /* game_rt_rate Nr/s [burst=M]: messages a client may send */
    { ngx_string("game_rt_rate"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_game_rt_rate,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    /* game_rt_admin name file: who may POST /admin/notify, and the file
     * of their secret (at least 32 characters); repeatable */
    { ngx_string("game_rt_admin"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_game_rt_admin,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    /* game_rt websocket|notify; */
    { ngx_string("game_rt"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_game_rt_endpoint,
      0,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_game_rt_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_game_rt_postconfiguration,         /* postconfiguration */

    ngx_game_rt_create_main_conf,          /* create main configuration */
    ngx_game_rt_init_main_conf,            /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    NULL,                                  /* create location configuration */
    NULL                                   /* merge location configuration */
};


ngx_module_t  ngx_game_rt_module = {
    NGX_MODULE_V1,
    &ngx_game_rt_module_ctx,               /* module context */
    ngx_game_rt_commands,                  /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_game_rt_init_process,              /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_game_rt_exit_process,              /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static void *
ngx_game_rt_create_main_conf(ngx_conf_t *cf)
{
    ngx_game_rt_main_t  *m;

    /* the conf comes first: nginx hands it to the setters */
    m = ngx_pcalloc(cf->pool, sizeof(ngx_game_rt_main_t));
    if (m == NULL) {
        return NULL;
    }

    m->conf.redis = NGX_CONF_UNSET_PTR;
    m->conf.origins = NGX_CONF_UNSET_PTR;
    m->conf.auth_timeout = NGX_CONF_UNSET_MSEC;
    m->conf.ping_interval = NGX_CONF_UNSET_MSEC;
    m->conf.pong_timeout = NGX_CONF_UNSET_MSEC;
    m->conf.close_timeout = NGX_CONF_UNSET_MSEC;
    m->conf.max_message = NGX_CONF_UNSET_SIZE;
    m->conf.send_queue = NGX_CONF_UNSET_SIZE;
    m->conf.rate = NGX_CONF_UNSET_UINT;
    m->conf.burst = NGX_CONF_UNSET_UINT;

    return m;
}


static char *
ngx_game_rt_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_game_rt_main_conf_t  *rmcf = conf;

    ngx_conf_init_ptr_value(rmcf->redis, NULL);
    ngx_conf_init_ptr_value(rmcf->origins, NULL);
    ngx_conf_init_msec_value(rmcf->auth_timeout, 5000);
    ngx_conf_init_msec_value(rmcf->ping_interval, 30000);
    ngx_conf_init_msec_value(rmcf->pong_timeout, 10000);
    ngx_conf_init_msec_value(rmcf->close_timeout, 2000);
    ngx_conf_init_size_value(rmcf->max_message, 4096);
    ngx_conf_init_size_value(rmcf->send_queue, 64 * 1024);
    ngx_conf_init_uint_value(rmcf->rate, 5);
    ngx_conf_init_uint_value(rmcf->burst, 10);

    if (rmcf->auth_timeout == 0 || rmcf->ping_interval == 0
        || rmcf->pong_timeout == 0 || rmcf->close_timeout == 0)
    {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"game_rt_auth_timeout\", \"game_rt_ping_interval\", "
                      "\"game_rt_pong_timeout\" and \"game_rt_close_timeout\" "
                      "must not be 0");
        return NGX_CONF_ERROR;
    }

    /* an "auth" message carries an access token of some 600 bytes */
    if (rmcf->max_message < 1024 || rmcf->max_message > 1024 * 1024) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"game_rt_max_message\" must be 1k to 1m, not %uz",
                      rmcf->max_message);
        return NGX_CONF_ERROR;
    }

    /* the largest message we send (a matchmaking status with its
     * connection ticket) must fit in an empty queue */
    if (rmcf->send_queue < 4096) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"game_rt_send_queue\" must be at least 4k, not %uz",
                      rmcf->send_queue);
        return NGX_CONF_ERROR;
    }

    rmcf->access = ngx_game_access_verifier(cf);
    rmcf->hooks = ngx_game_push_hooks(cf);

    return NGX_CONF_OK;
}


/*
 * Checked after every module's init_main_conf, so that the auth module
 * has lent its check whatever order the modules are loaded in.
 */

static ngx_int_t
ngx_game_rt_postconfiguration(ngx_conf_t *cf)
{
    ngx_game_rt_main_t  *m;

    m = ngx_http_conf_get_module_main_conf(cf, ngx_game_rt_module);

    if ((m->websocket || m->notify) && m->conf.redis == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"game_rt\" locations need \"game_rt_redis\"");
        return NGX_ERROR;
    }

    if (m->websocket && m->conf.access->verify == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"game_rt websocket\" checks access tokens with the "
                      "auth module: load ngx_game_auth_module");
        return NGX_ERROR;
    }

    if (ngx_game_rt_metrics_init(cf, &m->conf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (m->notify && m->conf.admins.nelts == 0) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"game_rt notify\" needs at least one "
                      "\"game_rt_admin\"");
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* "https://play.example.com", "http://127.0.0.1:8080": a scheme, "://",
 * a host and perhaps a port, nothing after; compared without case */
static char *
ngx_game_rt_origins(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_game_rt_main_conf_t  *rmcf = conf;

    u_char      *p, *host;
    ngx_str_t   *value, *origin;
    ngx_uint_t   i;

    if (rmcf->origins != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    rmcf->origins = ngx_array_create(cf->pool, cf->args->nelts - 1,
                                     sizeof(ngx_str_t));
    if (rmcf->origins == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        if (value[i].len > 8
            && ngx_strncasecmp(value[i].data, (u_char *) "https://", 8) == 0)
        {
            host = value[i].data + 8;

        } else if (value[i].len > 7
                   && ngx_strncasecmp(value[i].data, (u_char *) "http://", 7)
                      == 0)
        {
            host = value[i].data + 7;

        } else {
            goto invalid;
        }

        for (p = host; p < value[i].data + value[i].len; p++) {
            if (*p == '/' || *p == '?' || *p == '#' || *p == '@'
                || *p == '*' || *p <= ' ')
            {
                goto invalid;
            }
        }

        origin = ngx_array_push(rmcf->origins);
        if (origin == NULL) {
            return NGX_CONF_ERROR;
        }

        *origin = value[i];
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid origin \"%V\" in \"%V\" directive, expected "
                       "http[s]://host[:port] and nothing after",
                       &value[i], &cmd->name);
    return NGX_CONF_ERROR;
}


/* game_rt_rate 5r/s [burst=10] */
static char *
ngx_game_rt_rate(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_game_rt_main_conf_t  *rmcf = conf;

    ngx_int_t   n;
    ngx_str_t  *value;

    if (rmcf->rate != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    /* "Nr/s": one digit at least */
    if (value[1].len < 4
        || ngx_strncmp(value[1].data + value[1].len - 3, "r/s", 3) != 0)
    {
        goto invalid;
    }

    n = ngx_atoi(value[1].data, value[1].len - 3);
    if (n < 1 || n > 1000000) {
        goto invalid;
    }

    rmcf->rate = n;
    rmcf->burst = n * 2;

    if (cf->args->nelts == 3) {
        if (value[2].len < 7
            || ngx_strncmp(value[2].data, "burst=", 6) != 0)
        {
            goto invalid_burst;
        }

        n = ngx_atoi(value[2].data + 6, value[2].len - 6);
        if (n < 1 || n > 1000000) {
            goto invalid_burst;
        }

        rmcf->burst = n;
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid rate \"%V\" in \"%V\" directive, expected "
                       "1r/s to 1000000r/s", &value[1], &cmd->name);
    return NGX_CONF_ERROR;

invalid_burst:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid value \"%V\" in \"%V\" directive, expected "
                       "burst=1 to burst=1000000", &value[2], &cmd->name);
    return NGX_CONF_ERROR;
}


/* game_rt_admin name file (the core reads and checks it) */
static char *
ngx_game_rt_admin(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_game_rt_main_conf_t  *rmcf = conf;

    return ngx_game_admin_conf(cf, cmd, &rmcf->admins);
}


static char *
ngx_game_rt_endpoint(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_str_t                 *value;
    ngx_game_rt_main_t        *m;
    ngx_http_core_loc_conf_t  *clcf;

    value = cf->args->elts;
    m = ngx_http_conf_get_module_main_conf(cf, ngx_game_rt_module);
    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (value[1].len == 9 && ngx_strncmp(value[1].data, "websocket", 9) == 0)
    {
        clcf->handler = ngx_game_rt_websocket_handler;
        m->websocket = 1;

    } else if (value[1].len == 6
               && ngx_strncmp(value[1].data, "notify", 6) == 0)
    {
        clcf->handler = ngx_game_rt_notify_handler;
        m->notify = 1;

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "unknown endpoint \"%V\" in \"%V\" directive, "
                           "expected websocket or notify", &value[1],
                           &cmd->name);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_game_rt_init_process(ngx_cycle_t *cycle)
{
    ngx_game_rt_main_t  *m;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    m = ngx_http_cycle_get_module_main_conf(cycle, ngx_game_rt_module);

    if (m == NULL || !m->websocket) {
        return NGX_OK;
    }

    return ngx_game_rt_worker_start(cycle, &m->conf);
}


static void
ngx_game_rt_exit_process(ngx_cycle_t *cycle)
{
    ngx_game_rt_main_t  *m;

    m = ngx_http_cycle_get_module_main_conf(cycle, ngx_game_rt_module);

    if (m && m->conf.worker) {
        ngx_game_rt_worker_stop(&m->conf);
    }
}
