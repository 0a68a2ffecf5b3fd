
/*
 * The event bus consumer: one Redis Streams consumer-group reader that
 * every service uses (the API is in ngx_game_core.h).
 *
 * Every worker of every nginx reads a stream as its own consumer of one
 * group, named by ngx_game_instance_id(), so that Redis hands each entry
 * to one of them.  A pass, on a timer, does one of:
 *
 *   - make the group (XGROUP CREATE ... 0 MKSTREAM) when it is not known
 *     to exist: at the start, and again whenever a command answers
 *     NOGROUP (Redis restarted without its data, or someone deleted it);
 *   - now and then, take over what other consumers left pending for
 *     longer than claim_idle (XAUTOCLAIM): a worker that died, a reload's
 *     old worker killed before it acknowledged;
 *   - when entries of our own wait for a retry and their time has come,
 *     look at their delivery counts (XPENDING), move the ones delivered
 *     max_deliveries times to the dead-letter stream, and deliver the
 *     rest again (XREADGROUP 0).  Retries back off from the pass interval
 *     to a minute while they keep failing: Redis counts every delivery,
 *     and a dependency that is down for minutes must not turn good
 *     entries into dead letters after a few seconds (with the defaults,
 *     ten deliveries take minutes);
 *   - otherwise read new entries (XREADGROUP >), without blocking: the
 *     connection is shared and pipelined, so a blocked read would stall
 *     every command behind it.
 *
 * A full batch schedules the next pass at once, so a backlog drains at
 * the speed of the handlers.  Consumers idle for consumer_idle with
 * nothing pending are deleted from the group, so that the group does not
 * collect one consumer per worker that ever ran.
 *
 * An entry is acknowledged only after its handler said NGX_OK, that is
 * after the handler's own writes committed.  A consumer that sets
 * "delete" has its entries deleted from the stream as they are
 * acknowledged or dead-lettered, in the same script, so that the stream
 * holds only what still waits; a consumer that sets "flush" hears when
 * all entries of a read have been handed out, and can load them together.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_game_core_internal.h"
#include "ngx_game_conf.h"


#define NGX_GAME_BUS_RETRY_MAX       60000   /* ms between retries */
#define NGX_GAME_BUS_DEAD_MAXLEN     "10000"


/* the families every consumer counts in (ngx_game_bus_metrics_add) */
typedef struct {
    ngx_game_metric_t          *delivered;
    ngx_game_metric_t          *acked;
    ngx_game_metric_t          *retried;
    ngx_game_metric_t          *dead_lettered;
} ngx_game_bus_metrics_t;


struct ngx_game_bus_s {
    ngx_game_bus_conf_t         conf;

    /* per worker, from ngx_game_bus_start() on */
    ngx_event_t                 timer;
    ngx_log_t                  *log;
    ngx_pool_t                 *pass;
    ngx_uint_t                  pending;        /* in flight this pass */
    ngx_uint_t                  passes;
    ngx_array_t                *dead;           /* ids not to deliver */
    ngx_msec_t                  next_claim;
    ngx_msec_t                  next_cleanup;
    ngx_msec_t                  next_retry;     /* of our own pending */
    ngx_msec_t                  retry_delay;    /* grows while they fail */
    unsigned                    running:1;
    unsigned                    group_ready:1;
    unsigned                    own_pending:1;  /* ours wait for a retry */
    unsigned                    full:1;         /* a full batch was read */

    /* what happened, for operators */
    ngx_uint_t                  delivered;
    ngx_uint_t                  acked;
    ngx_uint_t                  retried;
    ngx_uint_t                  dead_lettered;

    /* the same, for Prometheus; "metric" is this consumer's label value */
    ngx_game_bus_metrics_t     *metrics;
    ngx_uint_t                  metric;
    ngx_str_t                   consumer;       /* "stream/group" */
};


typedef struct ngx_game_bus_scrape_s  ngx_game_bus_scrape_t;

static ngx_int_t ngx_game_bus_metrics_add(ngx_conf_t *cf,
    ngx_game_core_main_conf_t *cmcf, ngx_game_bus_t *bus);
static ngx_int_t ngx_game_bus_collect(ngx_game_metrics_scrape_t *s,
    void *data);
static void ngx_game_bus_collected(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply);
static void ngx_game_bus_collected_one(ngx_game_bus_scrape_t *bs);


typedef enum {
    NGX_GAME_BUS_READ_NEW,
    NGX_GAME_BUS_READ_OWN,
    NGX_GAME_BUS_CLAIM
} ngx_game_bus_read_e;


static void ngx_game_bus_tick(ngx_event_t *ev);
static void ngx_game_bus_step(ngx_game_bus_t *bus);
static void ngx_game_bus_group_create(ngx_game_bus_t *bus);
static void ngx_game_bus_grouped(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply);
static void ngx_game_bus_read(ngx_game_bus_t *bus, ngx_game_bus_read_e how);
static void ngx_game_bus_got(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply);
static void ngx_game_bus_own(ngx_game_bus_t *bus);
static void ngx_game_bus_own_got(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply);
static void ngx_game_bus_deliver(ngx_game_bus_t *bus, redisReply *entries);
static void ngx_game_bus_deliver_entries(ngx_game_bus_t *bus,
    redisReply *entries);
static void ngx_game_bus_ack(ngx_game_bus_entry_t *e);
static void ngx_game_bus_dead_letter(ngx_game_bus_t *bus, ngx_str_t *ids,
    ngx_uint_t n, const char *reason);
static void ngx_game_bus_cleanup_consumers(ngx_game_bus_t *bus);
static void ngx_game_bus_consumers_got(ngx_game_redis_cmd_t *cmd,
    ngx_int_t rc, redisReply *reply);
static ngx_int_t ngx_game_bus_cmd(ngx_game_bus_t *bus,
    ngx_game_redis_handler_pt handler, void *data, ngx_game_redis_args_t *a);
static ngx_int_t ngx_game_bus_eval(ngx_game_bus_t *bus,
    ngx_game_redis_script_t *script, ngx_game_redis_args_t *a);
static void ngx_game_bus_args(ngx_game_redis_args_t *a, const char *command,
    const char *sub, ngx_game_bus_t *bus);
static void ngx_game_bus_cmd_done(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply);
static ngx_uint_t ngx_game_bus_nogroup(ngx_game_bus_t *bus, ngx_int_t rc,
    redisReply *reply);
static void ngx_game_bus_step_done(ngx_game_bus_t *bus);


/*
 * Copy entries to the dead-letter stream with why and where from, then
 * acknowledge them (and delete them, for a "delete" consumer): one script,
 * so that an entry is never both lost and acknowledged.  ARGV: stream,
 * group, dead stream, reason, consumer, delete ("1" or "0"), id...
 */
static ngx_game_redis_script_t  ngx_game_bus_dead_script = {
    "local n = 0\n"
    "for i = 7, #ARGV do\n"
    "  local e = redis.call('XRANGE', ARGV[1], ARGV[i], ARGV[i])\n"
    "  local f = {}\n"
    "  if #e == 1 and e[1][2] then f = e[1][2] end\n"
    "  redis.call('XADD', ARGV[3], 'MAXLEN', '~', '"
                  NGX_GAME_BUS_DEAD_MAXLEN "', '*',\n"
    "             'source', ARGV[1], 'source_id', ARGV[i],\n"
    "             'group', ARGV[2], 'reason', ARGV[4],\n"
    "             'consumer', ARGV[5], unpack(f))\n"
    "  n = n + redis.call('XACK', ARGV[1], ARGV[2], ARGV[i])\n"
    "  if ARGV[6] == '1' then redis.call('XDEL', ARGV[1], ARGV[i]) end\n"
    "end\n"
    "return n\n",
    0, ""
};


/*
 * Acknowledge and delete an entry, for a "delete" consumer: the stream
 * keeps only what still waits.  Deleted whatever XACK says: a copy another
 * consumer took over and acknowledged first is done with too.  ARGV:
 * stream, group, id.
 */
static ngx_game_redis_script_t  ngx_game_bus_ack_delete_script = {
    "local n = redis.call('XACK', ARGV[1], ARGV[2], ARGV[3])\n"
    "redis.call('XDEL', ARGV[1], ARGV[3])\n"
    "return n\n",
    0, ""
};


/* configuration */

/* what an operator may tune, as name=value after a service's directive */
static ngx_game_param_t  ngx_game_bus_params[] = {

    { ngx_string("batch="), NGX_GAME_PARAM_NUMBER,
      offsetof(ngx_game_bus_conf_t, batch), 1, 1000 },

    { ngx_string("claim_idle="), NGX_GAME_PARAM_MSEC,
      offsetof(ngx_game_bus_conf_t, claim_idle), 0, 0 },

    { ngx_string("max_deliveries="), NGX_GAME_PARAM_NUMBER,
      offsetof(ngx_game_bus_conf_t, max_deliveries), 1, 1000 },

    { ngx_string("consumer_idle="), NGX_GAME_PARAM_MSEC,
      offsetof(ngx_game_bus_conf_t, consumer_idle), 0, 0 },

    { ngx_null_string, 0, 0, 0, 0 }
};


char *
ngx_game_bus_conf_params(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_uint_t first, ngx_game_bus_conf_t *conf)
{
    return ngx_game_conf_params(cf, cmd, first, ngx_game_bus_params, conf);
}


ngx_game_bus_t *
ngx_game_bus_add(ngx_conf_t *cf, ngx_game_bus_conf_t *conf)
{
    u_char                     *p;
    ngx_game_bus_t             *bus, **slot;
    ngx_game_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_game_core_module);

    bus = ngx_pcalloc(cf->pool, sizeof(ngx_game_bus_t));
    slot = ngx_array_push(&cmcf->buses);
    if (bus == NULL || slot == NULL) {
        return NULL;
    }

    *slot = bus;
    bus->conf = *conf;

    if (bus->conf.interval == 0) {
        bus->conf.interval = 1000;
    }
    if (bus->conf.batch == 0) {
        bus->conf.batch = 50;
    }
    if (bus->conf.claim_idle == 0) {
        bus->conf.claim_idle = 60000;
    }
    if (bus->conf.max_deliveries == 0) {
        bus->conf.max_deliveries = 10;
    }
    if (bus->conf.consumer_idle == 0) {
        bus->conf.consumer_idle = 3600000;
    }

    if (bus->conf.dead_stream.len == 0) {
        p = ngx_pnalloc(cf->pool, conf->stream.len + sizeof(":dead"));
        if (p == NULL) {
            return NULL;
        }
        bus->conf.dead_stream.data = p;
        bus->conf.dead_stream.len = ngx_sprintf(p, "%V:dead%Z", &conf->stream)
                                    - p - 1;
    }

    if (ngx_game_bus_metrics_add(cf, cmcf, bus) != NGX_OK) {
        return NULL;
    }

    return bus;
}


/*
 * Metrics: what each consumer group did, counted by the workers, and its
 * backlog read from Redis at scrape time (XINFO GROUPS: entries not yet
 * delivered to the group, "lag", and delivered but not acknowledged,
 * "pending").  The label is "stream/group".
 */

static ngx_int_t
ngx_game_bus_metrics_add(ngx_conf_t *cf, ngx_game_core_main_conf_t *cmcf,
    ngx_game_bus_t *bus)
{
    ngx_int_t                v;
    ngx_str_t               *name;
    ngx_game_metric_t       *families[4];
    ngx_game_bus_metrics_t  *m;

    m = cmcf->bus_metrics;

    if (m == NULL) {
        m = ngx_pcalloc(cf->pool, sizeof(ngx_game_bus_metrics_t));
        if (m == NULL) {
            return NGX_ERROR;
        }

        m->delivered = ngx_game_metric_add(cf, NGX_GAME_METRIC_COUNTER,
            "game_bus_delivered_total",
            "Event-bus entries handed to a consumer group's handler",
            "consumer", NULL, NULL);
        m->acked = ngx_game_metric_add(cf, NGX_GAME_METRIC_COUNTER,
            "game_bus_acked_total",
            "Event-bus entries handled and acknowledged", "consumer", NULL,
            NULL);
        m->retried = ngx_game_metric_add(cf, NGX_GAME_METRIC_COUNTER,
            "game_bus_retried_total",
            "Event-bus deliveries put off for a later retry", "consumer",
            NULL, NULL);
        m->dead_lettered = ngx_game_metric_add(cf, NGX_GAME_METRIC_COUNTER,
            "game_bus_dead_lettered_total",
            "Event-bus entries moved to the dead-letter stream", "consumer",
            NULL, NULL);

        if (m->delivered == NULL || m->acked == NULL || m->retried == NULL
            || m->dead_lettered == NULL
            || ngx_game_metrics_collector_add(cf, ngx_game_bus_collect,
                                              &cmcf->buses)
               != NGX_OK)
        {
            return NGX_ERROR;
        }

        cmcf->bus_metrics = m;
    }

    /* "stream/group": two services may name their groups alike */
    name = &bus->consumer;
    name->len = bus->conf.stream.len + 1 + bus->conf.group.len;
    name->data = ngx_pnalloc(cf->pool, name->len);
    if (name->data == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(name->data, "%V/%V", &bus->conf.stream, &bus->conf.group);

    families[0] = m->delivered;
    families[1] = m->acked;
    families[2] = m->retried;
    families[3] = m->dead_lettered;

    v = ngx_game_metric_values(cf, families, 4, name);
    if (v == NGX_ERROR) {
        return NGX_ERROR;
    }

    bus->metrics = m;
    bus->metric = v;

    return NGX_OK;
}


/* one XINFO GROUPS per consumer, all answered before the scrape is */

struct ngx_game_bus_scrape_s {
    ngx_game_metrics_scrape_t  *scrape;
    ngx_array_t                *buses;
    ngx_uint_t                  pending;
    int64_t                    *lag;            /* -1: unknown */
    int64_t                    *unacked;
};


typedef struct {
    ngx_game_bus_scrape_t      *scrape;
    ngx_uint_t                  index;
} ngx_game_bus_scrape_one_t;


static ngx_int_t
ngx_game_bus_collect(ngx_game_metrics_scrape_t *s, void *data)
{
    ngx_array_t *buses = data;

    ngx_int_t                   rc;
    ngx_uint_t                  i;
    ngx_pool_t                 *pool;
    ngx_game_bus_t            **b;
    const char                 *argv[3];
    size_t                      argvlen[3];
    ngx_game_redis_cmd_t       *cmd;
    ngx_game_bus_scrape_t      *bs;
    ngx_game_bus_scrape_one_t  *one;

    pool = ngx_game_metrics_scrape_pool(s);
    b = buses->elts;

    bs = ngx_pcalloc(pool, sizeof(ngx_game_bus_scrape_t));
    if (bs == NULL) {
        return NGX_ERROR;
    }

    bs->scrape = s;
    bs->buses = buses;
    bs->lag = ngx_palloc(pool, buses->nelts * sizeof(int64_t));
    bs->unacked = ngx_palloc(pool, buses->nelts * sizeof(int64_t));
    if (bs->lag == NULL || bs->unacked == NULL) {
        return NGX_ERROR;
    }

    /* one extra count, dropped below, so that an answer arriving before
     * the last command is sent cannot finish the scrape early */
    bs->pending = 1;

    for (i = 0; i < buses->nelts; i++) {
        bs->lag[i] = -1;
        bs->unacked[i] = -1;

        cmd = ngx_game_redis_cmd_create(pool, ngx_cycle->log);
        one = ngx_palloc(pool, sizeof(ngx_game_bus_scrape_one_t));
        if (cmd == NULL || one == NULL) {
            continue;
        }

        one->scrape = bs;
        one->index = i;
        cmd->handler = ngx_game_bus_collected;
        cmd->data = one;
        cmd->quiet = 1;         /* no stream yet is no error */

        argv[0] = "XINFO";
        argvlen[0] = 5;
        argv[1] = "GROUPS";
        argvlen[1] = 6;
        argv[2] = (char *) b[i]->conf.stream.data;
        argvlen[2] = b[i]->conf.stream.len;

        bs->pending++;
        rc = ngx_game_redis_cmd_run(b[i]->conf.redis, cmd, 3, argv, argvlen);
        if (rc != NGX_AGAIN) {
            bs->pending--;
        }
    }

    ngx_game_bus_collected_one(bs);

    return NGX_AGAIN;
}


static void
ngx_game_bus_collected(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply)
{
    ngx_game_bus_scrape_one_t *one = cmd->data;

    size_t                  i, k;
    redisReply             *g, *f, *v;
    ngx_game_bus_t        **b;
    ngx_game_bus_scrape_t  *bs = one->scrape;

    b = bs->buses->elts;

    if (rc == NGX_GAME_QUERY_ERROR && reply
        && ngx_strstr(reply->str, "no such key"))
    {
        /* nothing was ever published: no backlog */
        bs->lag[one->index] = 0;
        bs->unacked[one->index] = 0;
    }

    for (i = 0; rc == NGX_OK && reply && reply->type == REDIS_REPLY_ARRAY
                && i < reply->elements; i++)
    {
        g = reply->element[i];
        if (g->type != REDIS_REPLY_ARRAY) {
            continue;
        }

        /* name, pending and lag among the group's fields */
        f = NULL;
        for (k = 0; k + 1 < g->elements; k += 2) {
            if (g->element[k]->type == REDIS_REPLY_STRING
                && ngx_strcmp(g->element[k]->str, "name") == 0)
            {
                f = g->element[k + 1];
            }
        }

        if (f == NULL || f->type != REDIS_REPLY_STRING
            || f->len != b[one->index]->conf.group.len
            || ngx_strncmp(f->str, b[one->index]->conf.group.data, f->len)
               != 0)
        {
            continue;
        }

        for (k = 0; k + 1 < g->elements; k += 2) {
            v = g->element[k + 1];

            if (g->element[k]->type != REDIS_REPLY_STRING
                || v->type != REDIS_REPLY_INTEGER)
            {
                continue;
            }

            if (ngx_strcmp(g->element[k]->str, "pending") == 0) {
                bs->unacked[one->index] = v->integer;

            } else if (ngx_strcmp(g->element[k]->str, "lag") == 0) {
                bs->lag[one->index] = v->integer;
            }
        }
    }

    ngx_game_bus_collected_one(bs);
}


static void
ngx_game_bus_collected_one(ngx_game_bus_scrape_t *bs)
{
    u_char           *p, *last;
    size_t            size;
    ngx_str_t         text;
    ngx_uint_t        i;
    ngx_game_bus_t  **b;

    if (--bs->pending) {
        return;
    }

    b = bs->buses->elts;
    size = 512;
    for (i = 0; i < bs->buses->nelts; i++) {
        size += 2 * (b[i]->consumer.len + 64);
    }

    p = ngx_pnalloc(ngx_game_metrics_scrape_pool(bs->scrape), size);
    if (p == NULL) {
        ngx_game_metrics_collected(bs->scrape, NULL);
        return;
    }

    text.data = p;
    last = p + size;

    p = ngx_slprintf(p, last,
            "# HELP game_bus_lag Entries of the stream not yet delivered to "
            "the group\n# TYPE game_bus_lag gauge\n");

    for (i = 0; i < bs->buses->nelts; i++) {
        if (bs->lag[i] >= 0) {
            p = ngx_slprintf(p, last, "game_bus_lag{consumer=\"%V\"} %L\n",
                             &b[i]->consumer, bs->lag[i]);
        }
    }

    p = ngx_slprintf(p, last,
            "# HELP game_bus_pending Entries delivered to the group and not "
            "yet acknowledged\n# TYPE game_bus_pending gauge\n");

    for (i = 0; i < bs->buses->nelts; i++) {
        if (bs->unacked[i] >= 0) {
            p = ngx_slprintf(p, last, "game_bus_pending{consumer=\"%V\"} %L\n",
                             &b[i]->consumer, bs->unacked[i]);
        }
    }

    text.len = p - text.data;
    ngx_game_metrics_collected(bs->scrape, &text);
}


/* worker start and stop */

ngx_int_t
ngx_game_bus_start(ngx_cycle_t *cycle, ngx_array_t *buses)
{
    ngx_uint_t        i;
    ngx_game_bus_t  **b, *bus;

    if (ngx_game_bus_dead_script.len == 0) {
        ngx_game_bus_dead_script.len = ngx_strlen(ngx_game_bus_dead_script.text);
        ngx_game_redis_script_init(&ngx_game_bus_dead_script);

        ngx_game_bus_ack_delete_script.len =
                               ngx_strlen(ngx_game_bus_ack_delete_script.text);
        ngx_game_redis_script_init(&ngx_game_bus_ack_delete_script);
    }

    b = buses->elts;

    for (i = 0; i < buses->nelts; i++) {
        bus = b[i];
        bus->log = cycle->log;
        bus->running = 1;
        bus->timer.handler = ngx_game_bus_tick;
        bus->timer.data = bus;
        bus->timer.log = cycle->log;
        /* idle work: an exiting worker does not wait for the next pass,
         * only for the commands a pass has in flight */
        bus->timer.cancelable = 1;

        bus->next_claim = ngx_current_msec + bus->conf.claim_idle / 2;
        bus->next_cleanup = ngx_current_msec + bus->conf.consumer_idle / 2;

        /* workers start together: spread their first passes */
        ngx_add_timer(&bus->timer, 50 + ngx_random() % bus->conf.interval);
    }

    return NGX_OK;
}


void
ngx_game_bus_stop(ngx_array_t *buses)
{
    ngx_uint_t        i;
    ngx_game_bus_t  **b;

    b = buses->elts;

    for (i = 0; i < buses->nelts; i++) {
        b[i]->running = 0;
        if (b[i]->timer.timer_set) {
            ngx_del_timer(&b[i]->timer);
        }
    }
}


/* a pass */

static void
ngx_game_bus_tick(ngx_event_t *ev)
{
    ngx_game_bus_t  *bus = ev->data;

    if (ngx_exiting || ngx_quit || ngx_terminate || !bus->running) {
        return;
    }

    if (bus->pass) {
        /* the previous pass is still at work */
        ngx_add_timer(&bus->timer, bus->conf.interval);
        return;
    }

    bus->pass = ngx_create_pool(4096, bus->log);
    if (bus->pass == NULL) {
        ngx_add_timer(&bus->timer, bus->conf.interval);
        return;
    }

    bus->pending = 0;
    bus->full = 0;
    bus->dead = NULL;
    bus->passes++;

    if (!bus->group_ready) {
        ngx_game_bus_group_create(bus);

    } else {
        ngx_game_bus_step(bus);

        if ((ngx_msec_int_t) (ngx_current_msec - bus->next_cleanup) >= 0) {
            bus->next_cleanup = ngx_current_msec + bus->conf.consumer_idle / 2;
            ngx_game_bus_cleanup_consumers(bus);
        }
    }

    ngx_game_bus_step_done(bus);
}


static void
ngx_game_bus_step(ngx_game_bus_t *bus)
{
    if ((ngx_msec_int_t) (ngx_current_msec - bus->next_claim) >= 0) {
        /* entries idle for claim_idle, checked twice as often */
        bus->next_claim = ngx_current_msec + bus->conf.claim_idle / 2;
        ngx_game_bus_read(bus, NGX_GAME_BUS_CLAIM);

    } else if (bus->own_pending
               && (ngx_msec_int_t) (ngx_current_msec - bus->next_retry) >= 0)
    {
        ngx_game_bus_own(bus);

    } else {
        ngx_game_bus_read(bus, NGX_GAME_BUS_READ_NEW);
    }
}


/*
 * From the start of the stream: entries written before the group existed
 * (before the first nginx came up, or since Redis lost the group) are
 * handled too.  Handlers are idempotent, so a stream read again from its
 * start after a NOGROUP changes nothing that was already applied.
 */

static void
ngx_game_bus_group_create(ngx_game_bus_t *bus)
{
    ngx_game_redis_args_t  a;

    ngx_game_bus_args(&a, "XGROUP", "CREATE", bus);
    ngx_game_redis_arg_lit(&a, "0");
    ngx_game_redis_arg_lit(&a, "MKSTREAM");

    (void) ngx_game_bus_cmd(bus, ngx_game_bus_grouped, bus, &a);
}


static void
ngx_game_bus_grouped(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply)
{
    ngx_game_bus_t  *bus = cmd->data;

    bus->pending--;

    /* BUSYGROUP: another worker made it first, which is as good */
    if (rc == NGX_OK
        || (rc == NGX_GAME_QUERY_ERROR && reply->len >= 9
            && ngx_strncmp(reply->str, "BUSYGROUP", 9) == 0))
    {
        bus->group_ready = 1;
        ngx_game_bus_step(bus);

    } else if (rc == NGX_GAME_QUERY_ERROR) {
        ngx_log_error(NGX_LOG_ERR, bus->log, 0,
                      "game bus: stream \"%V\": cannot create group "
                      "\"%V\": %*s", &bus->conf.stream, &bus->conf.group,
                      (size_t) reply->len, reply->str);
    }

    ngx_game_bus_step_done(bus);
}


static void
ngx_game_bus_read(ngx_game_bus_t *bus, ngx_game_bus_read_e how)
{
    u_char                 count[NGX_INT_T_LEN], idle[NGX_INT_T_LEN];
    ngx_game_redis_args_t  a;

    if (how == NGX_GAME_BUS_CLAIM) {
        ngx_game_bus_args(&a, "XAUTOCLAIM", NULL, bus);
        ngx_game_redis_arg_str(&a, ngx_game_instance_id());
        ngx_game_redis_arg(&a, idle,
                           ngx_sprintf(idle, "%M", bus->conf.claim_idle)
                           - idle);
        ngx_game_redis_arg_lit(&a, "0-0");
        ngx_game_redis_arg_lit(&a, "COUNT");
        ngx_game_redis_arg(&a, count,
                           ngx_sprintf(count, "%ui", bus->conf.batch)
                           - count);

        (void) ngx_game_bus_cmd(bus, ngx_game_bus_got, bus, &a);
        return;
    }

    ngx_memzero(&a, sizeof(ngx_game_redis_args_t));
    ngx_game_redis_arg_lit(&a, "XREADGROUP");
    ngx_game_redis_arg_lit(&a, "GROUP");
    ngx_game_redis_arg_str(&a, &bus->conf.group);
    ngx_game_redis_arg_str(&a, ngx_game_instance_id());
    ngx_game_redis_arg_lit(&a, "COUNT");
    ngx_game_redis_arg(&a, count,
                       ngx_sprintf(count, "%ui", bus->conf.batch) - count);
    ngx_game_redis_arg_lit(&a, "STREAMS");
    ngx_game_redis_arg_str(&a, &bus->conf.stream);
    ngx_game_redis_arg(&a, (how == NGX_GAME_BUS_READ_OWN) ? "0" : ">", 1);

    (void) ngx_game_bus_cmd(bus, ngx_game_bus_got, bus, &a);
}


static void
ngx_game_bus_got(ngx_game_redis_cmd_t *cmd, ngx_int_t rc, redisReply *reply)
{
    redisReply      *entries;
    ngx_game_bus_t  *bus = cmd->data;

    if (rc != NGX_OK) {
        bus->pending--;
        (void) ngx_game_bus_nogroup(bus, rc, reply);
        ngx_game_bus_step_done(bus);
        return;
    }

    entries = NULL;

    if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 3
        && reply->element[0]->type == REDIS_REPLY_STRING)
    {
        /* XAUTOCLAIM: next id, entries, ids deleted meanwhile */
        entries = reply->element[1];

    } else if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 1
               && reply->element[0]->type == REDIS_REPLY_ARRAY
               && reply->element[0]->elements == 2)
    {
        /* XREADGROUP: [[stream, entries]]; nil when nothing is new */
        entries = reply->element[0]->element[1];
    }

    /* the read still counts as pending while its entries are handed
     * out: a handler that ends its entry at once must not end the pass
     * (and free its memory) in the middle of the loop */
    if (entries && entries->type == REDIS_REPLY_ARRAY) {
        bus->full = (entries->elements >= bus->conf.batch);
        ngx_game_bus_deliver(bus, entries);
    }

    bus->pending--;
    ngx_game_bus_step_done(bus);
}


/*
 * Our own pending entries: those delivered max_deliveries times go to the
 * dead-letter stream, the others are delivered again.
 */

static void
ngx_game_bus_own(ngx_game_bus_t *bus)
{
    u_char                 count[NGX_INT_T_LEN];
    ngx_game_redis_args_t  a;

    ngx_game_bus_args(&a, "XPENDING", NULL, bus);
    ngx_game_redis_arg_lit(&a, "-");
    ngx_game_redis_arg_lit(&a, "+");
    ngx_game_redis_arg(&a, count,
                       ngx_sprintf(count, "%ui", bus->conf.batch) - count);
    ngx_game_redis_arg_str(&a, ngx_game_instance_id());

    (void) ngx_game_bus_cmd(bus, ngx_game_bus_own_got, bus, &a);
}


static void
ngx_game_bus_own_got(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply)
{
    size_t           i;
    ngx_str_t       *id;
    redisReply      *row;
    ngx_game_bus_t  *bus = cmd->data;

    bus->pending--;

    if (rc != NGX_OK || reply->type != REDIS_REPLY_ARRAY) {
        (void) ngx_game_bus_nogroup(bus, rc, reply);
        ngx_game_bus_step_done(bus);
        return;
    }

    if (reply->elements == 0) {
        /* nothing of ours waits any more: back to new entries */
        bus->own_pending = 0;
        bus->retry_delay = 0;
        ngx_game_bus_read(bus, NGX_GAME_BUS_READ_NEW);
        ngx_game_bus_step_done(bus);
        return;
    }

    bus->dead = ngx_array_create(bus->pass, 4, sizeof(ngx_str_t));
    if (bus->dead == NULL) {
        ngx_game_bus_step_done(bus);
        return;
    }

    /* rows: [id, consumer, idle ms, deliveries] */
    for (i = 0; i < reply->elements; i++) {
        row = reply->element[i];

        if (row->type != REDIS_REPLY_ARRAY || row->elements != 4
            || row->element[0]->type != REDIS_REPLY_STRING
            || row->element[3]->type != REDIS_REPLY_INTEGER
            || (ngx_uint_t) row->element[3]->integer
               < bus->conf.max_deliveries)
        {
            continue;
        }

        id = ngx_array_push(bus->dead);
        if (id == NULL) {
            break;
        }

        id->len = row->element[0]->len;
        id->data = ngx_pstrdup(bus->pass, &(ngx_str_t) {
                                   id->len,
                                   (u_char *) row->element[0]->str });
        if (id->data == NULL) {
            bus->dead->nelts--;
            break;
        }

        ngx_log_error(NGX_LOG_ERR, bus->log, 0,
                      "game bus: stream \"%V\": entry %V was delivered %i "
                      "times without success: moved to \"%V\"",
                      &bus->conf.stream, id, row->element[3]->integer,
                      &bus->conf.dead_stream);
    }

    if (bus->dead->nelts) {
        ngx_game_bus_dead_letter(bus, bus->dead->elts, bus->dead->nelts,
                                 "max_deliveries");
    }

    ngx_game_bus_read(bus, NGX_GAME_BUS_READ_OWN);
    ngx_game_bus_step_done(bus);
}


/*
 * Hand out the entries of a read, then tell a "flush" consumer that they
 * are all out.  The read still counts as pending meanwhile (see
 * ngx_game_bus_got), so the pass cannot end under the flush.
 */

static void
ngx_game_bus_deliver(ngx_game_bus_t *bus, redisReply *entries)
{
    ngx_uint_t  delivered;

    delivered = bus->delivered;

    ngx_game_bus_deliver_entries(bus, entries);

    if (bus->conf.flush && bus->delivered != delivered) {
        bus->conf.flush(bus->conf.data);
    }
}


static void
ngx_game_bus_deliver_entries(ngx_game_bus_t *bus, redisReply *entries)
{
    size_t                 i, k, n;
    ngx_str_t             *dead;
    ngx_uint_t             d, skip;
    redisReply            *entry, *f;
    ngx_game_bus_entry_t  *e;

    for (i = 0; i < entries->elements; i++) {
        entry = entries->element[i];

        if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2
            || entry->element[0]->type != REDIS_REPLY_STRING)
        {
            continue;
        }

        skip = 0;
        dead = bus->dead ? bus->dead->elts : NULL;

        for (d = 0; bus->dead && d < bus->dead->nelts; d++) {
            if (dead[d].len == entry->element[0]->len
                && ngx_strncmp(dead[d].data, entry->element[0]->str,
                               dead[d].len) == 0)
            {
                skip = 1;
            }
        }

        if (skip) {
            continue;
        }

        e = ngx_pcalloc(bus->pass, sizeof(ngx_game_bus_entry_t));
        if (e == NULL) {
            return;
        }

        e->bus = bus;
        e->pool = bus->pass;
        e->log = bus->log;
        e->data = bus->conf.data;
        e->id.len = entry->element[0]->len;
        e->id.data = ngx_pstrdup(bus->pass, &(ngx_str_t) {
                                     e->id.len,
                                     (u_char *) entry->element[0]->str });
        if (e->id.data == NULL) {
            return;
        }

        f = entry->element[1];

        if (f->type != REDIS_REPLY_ARRAY) {
            /* deleted from the stream while pending: nothing to handle */
            bus->pending++;
            ngx_game_bus_ack(e);
            continue;
        }

        n = f->elements / 2;
        e->fields = ngx_pcalloc(bus->pass,
                                (n ? n : 1) * sizeof(ngx_game_bus_field_t));
        if (e->fields == NULL) {
            return;
        }

        for (k = 0; k < n; k++) {
            if (f->element[2 * k]->type != REDIS_REPLY_STRING
                || f->element[2 * k + 1]->type != REDIS_REPLY_STRING)
            {
                continue;
            }

            e->fields[e->nfields].name.len = f->element[2 * k]->len;
            e->fields[e->nfields].name.data = ngx_pstrdup(bus->pass,
                &(ngx_str_t) { f->element[2 * k]->len,
                               (u_char *) f->element[2 * k]->str });
            e->fields[e->nfields].value.len = f->element[2 * k + 1]->len;
            e->fields[e->nfields].value.data = ngx_pnalloc(bus->pass,
                                                f->element[2 * k + 1]->len
                                                + 1);
            if (e->fields[e->nfields].name.data == NULL
                || e->fields[e->nfields].value.data == NULL)
            {
                return;
            }

            /* NUL-terminated, so that values can be SQL parameters */
            ngx_memcpy(e->fields[e->nfields].value.data,
                       f->element[2 * k + 1]->str,
                       f->element[2 * k + 1]->len + 1);
            e->nfields++;
        }

        bus->pending++;
        bus->delivered++;
        ngx_game_metric_inc(bus->metrics->delivered, bus->metric, 0, 1);
        bus->conf.handler(e);
    }
}


ngx_str_t *
ngx_game_bus_field(ngx_game_bus_entry_t *e, const char *name)
{
    size_t      len;
    ngx_uint_t  i;

    len = ngx_strlen(name);

    for (i = 0; i < e->nfields; i++) {
        if (e->fields[i].name.len == len
            && ngx_strncmp(e->fields[i].name.data, name, len) == 0)
        {
            return &e->fields[i].value;
        }
    }

    return NULL;
}


void
ngx_game_bus_done(ngx_game_bus_entry_t *e, ngx_int_t rc, const char *reason)
{
    ngx_game_bus_t  *bus = e->bus;

    if (e->done) {
        ngx_log_error(NGX_LOG_ALERT, bus->log, 0,
                      "game bus: entry %V of \"%V\" ended twice",
                      &e->id, &bus->conf.stream);
        return;
    }

    e->done = 1;

    switch (rc) {

    case NGX_OK:
        bus->retry_delay = 0;
        ngx_game_bus_ack(e);
        return;

    case NGX_DECLINED:
        ngx_log_error(NGX_LOG_ERR, bus->log, 0,
                      "game bus: stream \"%V\": entry %V refused (%s): "
                      "moved to \"%V\"", &bus->conf.stream, &e->id,
                      reason ? reason : "no reason", &bus->conf.dead_stream);
        ngx_game_bus_dead_letter(bus, &e->id, 1, reason ? reason : "refused");
        break;

    default:
        /* stays pending: delivered again, later and later while the
         * retries keep failing */
        bus->retried++;
        ngx_game_metric_inc(bus->metrics->retried, bus->metric, 0, 1);
        if (!bus->own_pending || bus->next_retry == 0
            || (ngx_msec_int_t) (ngx_current_msec - bus->next_retry) >= 0)
        {
            bus->retry_delay = bus->retry_delay
                               ? ngx_min(2 * bus->retry_delay,
                                         NGX_GAME_BUS_RETRY_MAX)
                               : bus->conf.interval;
            bus->next_retry = ngx_current_msec + bus->retry_delay;
        }
        bus->own_pending = 1;
        break;
    }

    bus->pending--;
    ngx_game_bus_step_done(bus);
}


void
ngx_game_bus_failed(ngx_game_bus_entry_t *e, ngx_int_t rc)
{
    if (rc == NGX_GAME_QUERY_ERROR) {
        ngx_game_bus_done(e, NGX_DECLINED, "refused by the database");
        return;
    }

    ngx_game_bus_done(e, NGX_AGAIN, NULL);
}


/* called with the entry counted in bus->pending; uncounts it */
static void
ngx_game_bus_ack(ngx_game_bus_entry_t *e)
{
    ngx_int_t               rc;
    ngx_game_bus_t         *bus = e->bus;
    ngx_game_redis_args_t   a;

    if (bus->conf.delete) {
        ngx_memzero(&a, sizeof(ngx_game_redis_args_t));
        ngx_game_redis_arg_str(&a, &bus->conf.stream);
        ngx_game_redis_arg_str(&a, &bus->conf.group);
        ngx_game_redis_arg_str(&a, &e->id);

        rc = ngx_game_bus_eval(bus, &ngx_game_bus_ack_delete_script, &a);

    } else {
        ngx_game_bus_args(&a, "XACK", NULL, bus);
        ngx_game_redis_arg_str(&a, &e->id);

        rc = ngx_game_bus_cmd(bus, ngx_game_bus_cmd_done, bus, &a);
    }

    if (rc == NGX_OK) {
        bus->acked++;
        ngx_game_metric_inc(bus->metrics->acked, bus->metric, 0, 1);

    } else {
        /* Redis went away: the entry stays pending and comes back */
        bus->own_pending = 1;
    }

    bus->pending--;
    ngx_game_bus_step_done(bus);
}


static void
ngx_game_bus_dead_letter(ngx_game_bus_t *bus, ngx_str_t *ids, ngx_uint_t n,
    const char *reason)
{
    ngx_int_t               rc;
    ngx_uint_t              i;
    ngx_game_redis_cmd_t   *cmd;
    ngx_game_redis_args_t   a;

    cmd = ngx_game_redis_cmd_create(bus->pass, bus->log);
    if (cmd == NULL) {
        return;
    }

    ngx_memzero(&a, sizeof(ngx_game_redis_args_t));
    ngx_game_redis_arg_str(&a, &bus->conf.stream);
    ngx_game_redis_arg_str(&a, &bus->conf.group);
    ngx_game_redis_arg_str(&a, &bus->conf.dead_stream);
    ngx_game_redis_arg_cstr(&a, reason);
    ngx_game_redis_arg_str(&a, ngx_game_instance_id());
    ngx_game_redis_arg(&a, bus->conf.delete ? "1" : "0", 1);

    /* EVAL takes three arguments of its own */
    for (i = 0; i < n && a.argc < NGX_GAME_REDIS_MAX_ARGS - 3; i++) {
        ngx_game_redis_arg_str(&a, &ids[i]);
    }

    cmd->handler = ngx_game_bus_cmd_done;
    cmd->data = bus;

    bus->pending++;

    rc = ngx_game_redis_eval(bus->conf.redis, cmd, &ngx_game_bus_dead_script,
                             0, a.argc, a.argv, a.argvlen);
    if (rc != NGX_AGAIN) {
        /* the entries stay pending and are tried again */
        bus->pending--;
        bus->own_pending = 1;
        return;
    }

    bus->dead_lettered += i;
    ngx_game_metric_inc(bus->metrics->dead_lettered, bus->metric, 0, i);
}


/*
 * Forget consumers that have been idle for consumer_idle with nothing
 * pending: workers that exited.  Redis (before 7.2) does not count a read
 * that found nothing as activity, so a live worker on a quiet stream is
 * forgotten too; that is harmless: a consumer with nothing pending holds
 * no state, and its next read makes it again.
 */

static void
ngx_game_bus_cleanup_consumers(ngx_game_bus_t *bus)
{
    ngx_game_redis_args_t  a;

    ngx_game_bus_args(&a, "XINFO", "CONSUMERS", bus);

    (void) ngx_game_bus_cmd(bus, ngx_game_bus_consumers_got, bus, &a);
}


static void
ngx_game_bus_consumers_got(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply)
{
    size_t           i, k;
    long long               pending, idle;
    ngx_str_t              *me;
    redisReply             *c, *name;
    ngx_game_bus_t         *bus = cmd->data;
    ngx_game_redis_args_t   a;

    bus->pending--;

    if (rc != NGX_OK || reply->type != REDIS_REPLY_ARRAY) {
        (void) ngx_game_bus_nogroup(bus, rc, reply);
        ngx_game_bus_step_done(bus);
        return;
    }

    me = ngx_game_instance_id();

    for (i = 0; i < reply->elements; i++) {
        c = reply->element[i];
        if (c->type != REDIS_REPLY_ARRAY) {
            continue;
        }

        /* [name, N, pending, N, idle, N, ...] */
        name = NULL;
        pending = idle = -1;

        for (k = 0; k + 1 < c->elements; k += 2) {
            if (c->element[k]->type != REDIS_REPLY_STRING) {
                continue;
            }
            if (ngx_strcmp(c->element[k]->str, "name") == 0) {
                name = c->element[k + 1];
            } else if (ngx_strcmp(c->element[k]->str, "pending") == 0) {
                pending = c->element[k + 1]->integer;
            } else if (ngx_strcmp(c->element[k]->str, "idle") == 0) {
                idle = c->element[k + 1]->integer;
            }
        }

        if (name == NULL || name->type != REDIS_REPLY_STRING
            || pending != 0 || idle < (long long) bus->conf.consumer_idle
            || (name->len == me->len
                && ngx_strncmp(name->str, me->data, me->len) == 0))
        {
            continue;
        }

        ngx_game_bus_args(&a, "XGROUP", "DELCONSUMER", bus);
        ngx_game_redis_arg(&a, name->str, name->len);

        ngx_log_error(NGX_LOG_INFO, bus->log, 0,
                      "game bus: stream \"%V\": forgetting consumer \"%*s\", "
                      "idle for %L ms", &bus->conf.stream,
                      (size_t) name->len, name->str, (int64_t) idle);

        (void) ngx_game_bus_cmd(bus, ngx_game_bus_cmd_done, bus, &a);
    }

    ngx_game_bus_step_done(bus);
}


/* plumbing */

static ngx_int_t
ngx_game_bus_cmd(ngx_game_bus_t *bus, ngx_game_redis_handler_pt handler,
    void *data, ngx_game_redis_args_t *a)
{
    ngx_game_redis_cmd_t  *cmd;

    if (a->overflow) {
        return NGX_ERROR;
    }

    cmd = ngx_game_redis_cmd_create(bus->pass, bus->log);
    if (cmd == NULL) {
        return NGX_ERROR;
    }

    cmd->handler = handler;
    cmd->data = data;
    /* errors are ours to read: NOGROUP and BUSYGROUP are expected */
    cmd->quiet = 1;

    bus->pending++;

    if (ngx_game_redis_cmd_run(bus->conf.redis, cmd, a->argc, a->argv,
                               a->argvlen)
        != NGX_AGAIN)
    {
        bus->pending--;
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* a script of the bus's own, its reply read like a command's */
static ngx_int_t
ngx_game_bus_eval(ngx_game_bus_t *bus, ngx_game_redis_script_t *script,
    ngx_game_redis_args_t *a)
{
    ngx_game_redis_cmd_t  *cmd;

    if (a->overflow) {
        return NGX_ERROR;
    }

    cmd = ngx_game_redis_cmd_create(bus->pass, bus->log);
    if (cmd == NULL) {
        return NGX_ERROR;
    }

    cmd->handler = ngx_game_bus_cmd_done;
    cmd->data = bus;
    cmd->quiet = 1;

    bus->pending++;

    if (ngx_game_redis_eval(bus->conf.redis, cmd, script, 0, a->argc,
                            a->argv, a->argvlen)
        != NGX_AGAIN)
    {
        bus->pending--;
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* "COMMAND [SUBCOMMAND] stream group": how most stream commands begin */
static void
ngx_game_bus_args(ngx_game_redis_args_t *a, const char *command,
    const char *sub, ngx_game_bus_t *bus)
{
    ngx_memzero(a, sizeof(ngx_game_redis_args_t));

    ngx_game_redis_arg_cstr(a, command);
    if (sub) {
        ngx_game_redis_arg_cstr(a, sub);
    }
    ngx_game_redis_arg_str(a, &bus->conf.stream);
    ngx_game_redis_arg_str(a, &bus->conf.group);
}


static void
ngx_game_bus_cmd_done(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply)
{
    ngx_game_bus_t  *bus = cmd->data;

    bus->pending--;

    if (rc != NGX_OK && !ngx_game_bus_nogroup(bus, rc, reply)) {
        /* an acknowledgement or a dead letter that did not happen: the
         * entries stay pending and come back */
        bus->own_pending = 1;
    }

    ngx_game_bus_step_done(bus);
}


/* NOGROUP: Redis lost the group (and likely the stream): make it again */
static ngx_uint_t
ngx_game_bus_nogroup(ngx_game_bus_t *bus, ngx_int_t rc, redisReply *reply)
{
    if (rc != NGX_GAME_QUERY_ERROR || reply == NULL) {
        return 0;
    }

    if (reply->len >= 7 && ngx_strncmp(reply->str, "NOGROUP", 7) == 0) {
        if (bus->group_ready) {
            ngx_log_error(NGX_LOG_WARN, bus->log, 0,
                          "game bus: stream \"%V\" lost group \"%V\": "
                          "making it again", &bus->conf.stream,
                          &bus->conf.group);
        }
        bus->group_ready = 0;
        bus->own_pending = 0;
        return 1;
    }

    ngx_log_error(NGX_LOG_ERR, bus->log, 0,
                  "game bus: stream \"%V\": %*s", &bus->conf.stream,
                  (size_t) reply->len, reply->str);
    return 0;
}


static void
ngx_game_bus_step_done(ngx_game_bus_t *bus)
{
    if (bus->pending || bus->pass == NULL) {
        return;
    }

    ngx_destroy_pool(bus->pass);
    bus->pass = NULL;
    bus->dead = NULL;

    if (!bus->running || ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    /* a full batch: more is waiting, read on at once */
    if (bus->full || !bus->group_ready) {
        if (bus->timer.timer_set) {
            ngx_del_timer(&bus->timer);
        }
        ngx_add_timer(&bus->timer, bus->group_ready ? 1 : bus->conf.interval);
        return;
    }

    if (!bus->timer.timer_set) {
        ngx_add_timer(&bus->timer, bus->conf.interval);
    }
}
