
/*
 * The matcher: forms matches out of the queues, inside nginx, on a timer.
 *
 * Every worker of every nginx runs the timer, but a queue (a mode in a
 * region) is matched by one of them only: the one holding its lease in
 * Redis (lease.lua).  Each lease carries a fencing token, and every write
 * the matcher makes is refused once its token is stale, so a matcher that
 * stalled past its lease cannot place a ticket that another already placed.
 * A crashed holder's lease lapses after three ticks and another worker,
 * here or on another nginx, takes over.
 *
 * The holder keeps its queue in memory and reads only what joined since
 * the last pass (XRANGE from the last id seen).  One pass:
 *
 *   lease -> read new tickets -> engine -> expire the too old ones
 *         -> per match: allocate a server (the allocator's script, which is
 *            idempotent per match id) -> claim the tickets (all or nothing)
 *            -> tell them their server (assign.lua)
 *
 * A match that finds no Ready server is not claimed: its tickets stay
 * queued and are matched again at the next pass.  If a ticket was
 * cancelled between the pass and the claim, the claim fails, the other
 * tickets stay queued, and the server allocated for nothing is released by
 * its own join timeout.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <openssl/rand.h>

#include "ngx_game_mm.h"
#include "game_alloc.h"


#define NGX_GAME_MM_READ_BATCH      10000
#define NGX_GAME_MM_MATCHES_MAX     1000     /* per queue and pass */


typedef struct {
    u_char                      id[37];
    u_char                      players[GAME_MM_MAX_TEAM_SIZE * 37];
    unsigned                    gone:1;
} ngx_game_mm_entry_t;


typedef struct {
    ngx_game_mm_main_conf_t    *mmcf;
    ngx_game_mm_mode_t         *mode;
    ngx_str_t                  *region;
    ngx_str_t                   name;           /* "mode:region" */

    u_char                      fence[NGX_INT64_LEN + 1];
    u_char                      last_id[64];

    game_mm_ticket_t           *tickets;
    ngx_game_mm_entry_t        *entries;
    size_t                      n;
    size_t                      cap;

    /* the pass in flight */
    ngx_pool_t                 *pass;
    ngx_uint_t                  pending;
    ngx_uint_t                  passes;
    unsigned                    lost:1;
} ngx_game_mm_queue_t;


/* one match of a pass, from allocation to assignment */
typedef struct {
    ngx_game_mm_queue_t        *queue;
    game_mm_match_t             match;
    game_mm_member_t            members[GAME_MM_MAX_MEMBERS];
    u_char                      id[37];
    game_alloc_argv_t           alloc;
    game_alloc_result_t         server;
} ngx_game_mm_forming_t;


static void ngx_game_mm_tick(ngx_event_t *ev);
static void ngx_game_mm_pass(ngx_game_mm_queue_t *mq);
static void ngx_game_mm_leased(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply);
static void ngx_game_mm_read(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply);
static ngx_int_t ngx_game_mm_append(ngx_game_mm_queue_t *mq,
    redisReply *entry);
static void ngx_game_mm_form(ngx_game_mm_queue_t *mq);
static void ngx_game_mm_expire(ngx_game_mm_queue_t *mq,
    game_mm_result_t *res);
static void ngx_game_mm_allocate(ngx_game_mm_forming_t *f);
static void ngx_game_mm_allocated(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply);
static void ngx_game_mm_claimed(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply);
static void ngx_game_mm_done(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply);
static void ngx_game_mm_session_open(ngx_game_mm_forming_t *f);
static void ngx_game_mm_session_opened(ngx_game_pg_query_t *q, ngx_int_t rc,
    PGresult *res);
static ngx_int_t ngx_game_mm_tickets(ngx_game_mm_forming_t *f,
    ngx_game_mm_entry_t *e, const char **argv, size_t *argvlen, size_t *n);
static ngx_int_t ngx_game_mm_send(ngx_game_mm_queue_t *mq,
    ngx_game_redis_script_t *script, ngx_game_redis_handler_pt handler,
    void *data, int argc, const char **argv, size_t *argvlen);
static void ngx_game_mm_step_done(ngx_game_mm_queue_t *mq);
static void ngx_game_mm_reset(ngx_game_mm_queue_t *mq);
static ngx_int_t ngx_game_mm_is(redisReply *reply, const char *word);


static ngx_game_pg_stmt_t  ngx_game_mm_session_stmt = {
    "game_mm_session_open",
    "SELECT mm_session_open($1::uuid, $2, $3, $4, $5, $6::integer, $7::jsonb)",
    7
};


/* the allocator's own allocation script (gameserver/allocator) */
static ngx_game_redis_script_t  ngx_game_mm_alloc_script;


static ngx_event_t            ngx_game_mm_timer;
static ngx_array_t            ngx_game_mm_queues;   /* ngx_game_mm_queue_t */
static game_mm_engine_t      *ngx_game_mm_engine;
static size_t                 ngx_game_mm_engine_cap;
static u_char                 ngx_game_mm_holder[NGX_MAXHOSTNAMELEN + 32];
static size_t                 ngx_game_mm_holder_len;
static ngx_log_t             *ngx_game_mm_log;


ngx_int_t
ngx_game_mm_matcher_start(ngx_cycle_t *cycle, ngx_game_mm_main_conf_t *mmcf)
{
    ngx_uint_t            i, k;
    ngx_game_mm_mode_t   *modes;
    ngx_game_mm_queue_t  *mq;
    ngx_str_t            *regions;

    if (mmcf->redis == NULL || mmcf->modes.nelts == 0) {
        return NGX_OK;
    }

    ngx_game_mm_log = cycle->log;

    ngx_game_mm_alloc_script.text = game_alloc_scripts[GAME_ALLOC_ALLOCATE].text;
    ngx_game_mm_alloc_script.len = game_alloc_scripts[GAME_ALLOC_ALLOCATE].len;
    ngx_game_redis_script_init(&ngx_game_mm_alloc_script);

    if (ngx_array_init(&ngx_game_mm_queues, cycle->pool, 4,
                       sizeof(ngx_game_mm_queue_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    modes = mmcf->modes.elts;

    for (i = 0; i < mmcf->modes.nelts; i++) {
        regions = modes[i].regions.elts;

        for (k = 0; k < modes[i].regions.nelts; k++) {
            mq = ngx_array_push(&ngx_game_mm_queues);
            if (mq == NULL) {
                return NGX_ERROR;
            }

            ngx_memzero(mq, sizeof(ngx_game_mm_queue_t));
            mq->mmcf = mmcf;
            mq->mode = &modes[i];
            mq->region = &regions[k];

            mq->name.data = ngx_pnalloc(cycle->pool,
                                        modes[i].name.len + regions[k].len
                                        + 2);
            if (mq->name.data == NULL) {
                return NGX_ERROR;
            }

            mq->name.len = ngx_sprintf(mq->name.data, "%V:%V",
                                       &modes[i].name, &regions[k])
                           - mq->name.data;
            mq->name.data[mq->name.len] = '\0';
        }
    }

    /* the lease holder's name: this worker, on this host */
    ngx_game_mm_holder_len = ngx_snprintf(ngx_game_mm_holder,
                                          sizeof(ngx_game_mm_holder),
                                          "%V:%P", &cycle->hostname, ngx_pid)
                             - ngx_game_mm_holder;

    ngx_game_mm_timer.handler = ngx_game_mm_tick;
    ngx_game_mm_timer.log = cycle->log;
    ngx_game_mm_timer.data = mmcf;
    ngx_game_mm_timer.cancelable = 1;

    /* workers start together: spread their first passes over a tick */
    ngx_add_timer(&ngx_game_mm_timer, 100 + ngx_random() % mmcf->tick);

    return NGX_OK;
}


static void
ngx_game_mm_tick(ngx_event_t *ev)
{
    ngx_uint_t                i;
    ngx_game_mm_queue_t      *mq;
    ngx_game_mm_main_conf_t  *mmcf = ev->data;

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    mq = ngx_game_mm_queues.elts;

    for (i = 0; i < ngx_game_mm_queues.nelts; i++) {
        if (mq[i].pass == NULL) {
            ngx_game_mm_pass(&mq[i]);
        }
    }

    ngx_add_timer(ev, mmcf->tick);
}


static void
ngx_game_mm_pass(ngx_game_mm_queue_t *mq)
{
    u_char       ms[NGX_INT_T_LEN];
    const char  *argv[4];
    size_t       argvlen[4];

    mq->pass = ngx_create_pool(4096, ngx_game_mm_log);
    if (mq->pass == NULL) {
        return;
    }

    mq->pending = 0;
    mq->lost = 0;
    mq->passes++;

    argv[0] = (char *) mq->mmcf->prefix.data;
    argvlen[0] = mq->mmcf->prefix.len;
    argv[1] = (char *) mq->name.data;
    argvlen[1] = mq->name.len;
    argv[2] = (char *) ngx_game_mm_holder;
    argvlen[2] = ngx_game_mm_holder_len;
    argv[3] = (char *) ms;
    argvlen[3] = ngx_sprintf(ms, "%M", 3 * mq->mmcf->tick) - ms;

    if (ngx_game_mm_send(mq, &ngx_game_mm_lua_lease, ngx_game_mm_leased, mq,
                         4, argv, argvlen)
        != NGX_OK)
    {
        ngx_game_mm_step_done(mq);
    }
}


static void
ngx_game_mm_leased(ngx_game_redis_cmd_t *cmd, ngx_int_t rc, redisReply *reply)
{
    redisReply           *fence;
    ngx_game_mm_queue_t  *mq = cmd->data;
    ngx_game_redis_cmd_t *read;
    const char           *argv[6];
    size_t                argvlen[6];
    u_char                key[160], from[80], count[NGX_INT_T_LEN];

    mq->pending--;

    if (rc != NGX_OK || !ngx_game_mm_is(reply, "OK") || reply->elements < 2) {
        /* held by another matcher, or Redis is away: forget the queue,
         * the holder has it */
        ngx_game_mm_reset(mq);
        ngx_game_mm_step_done(mq);
        return;
    }

    fence = reply->element[1];

    if (fence->len >= sizeof(mq->fence)
        || ngx_strncmp(mq->fence, fence->str, fence->len + 1) != 0)
    {
        /* a new lease: whatever we knew may be stale, read it all again */
        ngx_game_mm_reset(mq);
        ngx_cpystrn(mq->fence, (u_char *) fence->str,
                    ngx_min(fence->len + 1, sizeof(mq->fence)));
        ngx_log_error(NGX_LOG_INFO, ngx_game_mm_log, 0,
                      "game mm: matching queue \"%V\" (fence %s)",
                      &mq->name, mq->fence);
    }

    read = ngx_game_redis_cmd_create(mq->pass, ngx_game_mm_log);
    if (read == NULL) {
        ngx_game_mm_step_done(mq);
        return;
    }

    read->handler = ngx_game_mm_read;
    read->data = mq;

    argv[0] = "XRANGE";
    argvlen[0] = 6;
    argv[1] = (char *) key;
    argvlen[1] = ngx_snprintf(key, sizeof(key), "%Vqueue:%V",
                              &mq->mmcf->prefix, &mq->name) - key;
    argv[2] = (char *) from;
    argvlen[2] = mq->last_id[0]
                 ? (size_t) (ngx_snprintf(from, sizeof(from), "(%s",
                                          mq->last_id) - from)
                 : 1;
    if (mq->last_id[0] == '\0') {
        from[0] = '-';
    }
    argv[3] = "+";
    argvlen[3] = 1;
    argv[4] = "COUNT";
    argvlen[4] = 5;
    argv[5] = (char *) count;
    argvlen[5] = ngx_sprintf(count, "%d", NGX_GAME_MM_READ_BATCH) - count;

    mq->pending++;

    if (ngx_game_redis_cmd_run(mq->mmcf->redis, read, 6, argv, argvlen)
        != NGX_AGAIN)
    {
        mq->pending--;
    }

    ngx_game_mm_step_done(mq);
}


static void
ngx_game_mm_read(ngx_game_redis_cmd_t *cmd, ngx_int_t rc, redisReply *reply)
{
    size_t                i;
    ngx_game_mm_queue_t  *mq = cmd->data;

    mq->pending--;

    if (rc != NGX_OK || reply->type != REDIS_REPLY_ARRAY) {
        ngx_game_mm_step_done(mq);
        return;
    }

    for (i = 0; i < reply->elements; i++) {
        if (ngx_game_mm_append(mq, reply->element[i]) != NGX_OK) {
            break;
        }
    }

    ngx_game_mm_form(mq);
    ngx_game_mm_step_done(mq);
}


/* one stream entry: id, [ticket, ID, rating, R, size, N, at, MS, players, P] */
static ngx_int_t
ngx_game_mm_append(ngx_game_mm_queue_t *mq, redisReply *entry)
{
    size_t                k, cap;
    redisReply           *id, *f, *name, *value;
    game_mm_ticket_t     *t;
    ngx_game_mm_entry_t  *e;

    if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2) {
        return NGX_ERROR;
    }

    id = entry->element[0];
    f = entry->element[1];

    if (id->type != REDIS_REPLY_STRING || id->len >= sizeof(mq->last_id)
        || f->type != REDIS_REPLY_ARRAY)
    {
        return NGX_ERROR;
    }

    ngx_cpystrn(mq->last_id, (u_char *) id->str, id->len + 1);

    if (mq->n == mq->cap) {
        if (mq->cap >= mq->mode->max_queue) {
            return NGX_ERROR;
        }

        cap = mq->cap ? mq->cap * 2 : 1024;
        t = ngx_alloc(cap * sizeof(game_mm_ticket_t), ngx_game_mm_log);
        e = ngx_alloc(cap * sizeof(ngx_game_mm_entry_t), ngx_game_mm_log);
        if (t == NULL || e == NULL) {
            if (t) {
                ngx_free(t);
            }
            if (e) {
                ngx_free(e);
            }
            return NGX_ERROR;
        }

        if (mq->n) {
            ngx_memcpy(t, mq->tickets, mq->n * sizeof(game_mm_ticket_t));
            ngx_memcpy(e, mq->entries, mq->n * sizeof(ngx_game_mm_entry_t));
            ngx_free(mq->tickets);
            ngx_free(mq->entries);
        }

        mq->tickets = t;
        mq->entries = e;
        mq->cap = cap;
    }

    t = &mq->tickets[mq->n];
    e = &mq->entries[mq->n];
    ngx_memzero(t, sizeof(game_mm_ticket_t));
    ngx_memzero(e, sizeof(ngx_game_mm_entry_t));

    for (k = 0; k + 1 < f->elements; k += 2) {
        name = f->element[k];
        value = f->element[k + 1];

        if (name->type != REDIS_REPLY_STRING
            || value->type != REDIS_REPLY_STRING)
        {
            continue;
        }

        if (ngx_strcmp(name->str, "ticket") == 0 && value->len == 36) {
            ngx_memcpy(e->id, value->str, 37);

        } else if (ngx_strcmp(name->str, "rating") == 0) {
            t->rating = strtod(value->str, NULL);

        } else if (ngx_strcmp(name->str, "size") == 0) {
            t->size = (uint32_t) strtoul(value->str, NULL, 10);

        } else if (ngx_strcmp(name->str, "at") == 0) {
            t->enqueued_ms = strtoll(value->str, NULL, 10);

        } else if (ngx_strcmp(name->str, "players") == 0
                   && value->len < sizeof(e->players))
        {
            ngx_memcpy(e->players, value->str, value->len + 1);
        }
    }

    if (e->id[0] == '\0' || t->size == 0) {
        /* not ours to match: skip it, keep reading */
        return NGX_OK;
    }

    t->id = mq->n;
    mq->n++;

    return NGX_OK;
}


static void
ngx_game_mm_form(ngx_game_mm_queue_t *mq)
{
    size_t                  i, cap;
    ngx_time_t             *tp;
    game_mm_result_t        res;
    ngx_game_mm_forming_t  *f;

    if (mq->n == 0) {
        return;
    }

    if (ngx_game_mm_engine_cap < mq->n) {
        cap = ngx_max(mq->cap, 1024);
        game_mm_engine_destroy(ngx_game_mm_engine);
        ngx_game_mm_engine = game_mm_engine_create(cap);
        ngx_game_mm_engine_cap = ngx_game_mm_engine ? cap : 0;
        if (ngx_game_mm_engine == NULL) {
            return;
        }
    }

    ngx_memzero(&res, sizeof(res));
    res.max_matches = NGX_GAME_MM_MATCHES_MAX;
    res.max_members = NGX_GAME_MM_MATCHES_MAX * GAME_MM_MAX_MEMBERS;
    res.max_expired = mq->n;
    res.matches = ngx_palloc(mq->pass,
                             res.max_matches * sizeof(game_mm_match_t));
    res.members = ngx_palloc(mq->pass,
                             res.max_members * sizeof(game_mm_member_t));
    res.expired = ngx_palloc(mq->pass, res.max_expired * sizeof(uint32_t));

    if (res.matches == NULL || res.members == NULL || res.expired == NULL) {
        return;
    }

    tp = ngx_timeofday();

    if (game_mm_engine_run(ngx_game_mm_engine, &mq->mode->rules, mq->tickets,
                           mq->n, (int64_t) tp->sec * 1000 + tp->msec, &res)
        < 0)
    {
        return;
    }

    ngx_game_mm_expire(mq, &res);

    for (i = 0; i < res.nmatches; i++) {
        f = ngx_pcalloc(mq->pass, sizeof(ngx_game_mm_forming_t));
        if (f == NULL) {
            return;
        }

        f->queue = mq;
        f->match = res.matches[i];
        ngx_memcpy(f->members, &res.members[f->match.first],
                   f->match.count * sizeof(game_mm_member_t));

        ngx_game_mm_allocate(f);
    }
}


static void
ngx_game_mm_expire(ngx_game_mm_queue_t *mq, game_mm_result_t *res)
{
    size_t       i, n;
    u_char       minid[NGX_INT64_LEN + 3];
    int64_t      oldest;
    ngx_time_t  *tp;
    const char **argv;
    size_t      *argvlen;

    /* trim the stream now and then even when nothing expired */
    if (res->nexpired == 0 && mq->passes % 30 != 0) {
        return;
    }

    n = 4 + ngx_min(res->nexpired, NGX_GAME_REDIS_MAX_ARGS - 8);

    argv = ngx_palloc(mq->pass, n * sizeof(char *));
    argvlen = ngx_palloc(mq->pass, n * sizeof(size_t));
    if (argv == NULL || argvlen == NULL) {
        return;
    }

    /* the stream keeps what the longest wait could still need */
    tp = ngx_timeofday();
    oldest = (int64_t) tp->sec * 1000 + tp->msec
             - mq->mode->rules.max_wait_ms - 60000;

    argv[0] = (char *) mq->mmcf->prefix.data;
    argvlen[0] = mq->mmcf->prefix.len;
    argv[1] = (char *) mq->name.data;
    argvlen[1] = mq->name.len;
    argv[2] = (char *) mq->fence;
    argvlen[2] = ngx_strlen(mq->fence);
    argv[3] = ngx_pnalloc(mq->pass, sizeof(minid));
    if (argv[3] == NULL) {
        return;
    }
    argvlen[3] = ngx_sprintf((u_char *) argv[3], "%L-0", oldest)
                 - (u_char *) argv[3];

    for (i = 0; i + 4 < n; i++) {
        argv[i + 4] = (char *) mq->entries[res->expired[i]].id;
        argvlen[i + 4] = 36;
        mq->entries[res->expired[i]].gone = 1;
    }

    (void) ngx_game_mm_send(mq, &ngx_game_mm_lua_expire, ngx_game_mm_done,
                            mq, (int) n, argv, argvlen);
}


static void
ngx_game_mm_allocate(ngx_game_mm_forming_t *f)
{
    u_char                mode[64], region[64];
    ngx_uint_t            i;
    ngx_game_mm_queue_t  *mq = f->queue;
    ngx_game_redis_cmd_t *cmd;
    game_alloc_request_t  req;

    /* the match id is the game session's id; the allocator is
     * idempotent per match id */
    ngx_game_mm_uuid(f->id);

    ngx_cpystrn(mode, mq->mode->server_mode.data,
                ngx_min(mq->mode->server_mode.len + 1, sizeof(mode)));
    ngx_cpystrn(region, mq->region->data,
                ngx_min(mq->region->len + 1, sizeof(region)));

    req.region = (char *) region;
    req.mode = (char *) mode;
    req.build = NULL;
    req.match_id = (char *) f->id;
    req.players = 0;

    for (i = 0; i < f->match.count; i++) {
        req.players += mq->tickets[f->members[i].ticket].size;
    }

    if (game_alloc_argv_allocate(&f->alloc,
                                 (char *) mq->mmcf->alloc_prefix.data, &req)
        != GAME_ALLOC_OK)
    {
        return;
    }

    cmd = ngx_game_redis_cmd_create(mq->pass, ngx_game_mm_log);
    if (cmd == NULL) {
        return;
    }

    cmd->handler = ngx_game_mm_allocated;
    cmd->data = f;

    mq->pending++;

    /* the builder made "EVALSHA sha numkeys keys... args...": the core
     * runs the rest by the same script, and resends its text on NOSCRIPT */
    if (ngx_game_redis_eval(mq->mmcf->redis, cmd, &ngx_game_mm_alloc_script,
                            (int) ngx_atoi((u_char *) f->alloc.argv[2],
                                           f->alloc.argvlen[2]),
                            f->alloc.argc - 3,
                            f->alloc.argv + 3, f->alloc.argvlen + 3)
        != NGX_AGAIN)
    {
        mq->pending--;
    }
}


static void
ngx_game_mm_allocated(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply)
{
    size_t                  i, n;
    ngx_uint_t              k;
    game_alloc_str_t        elts[16];
    ngx_game_mm_forming_t  *f = cmd->data;
    ngx_game_mm_queue_t    *mq = f->queue;
    const char            **argv;
    size_t                 *argvlen;

    mq->pending--;

    if (rc != NGX_OK || reply->type != REDIS_REPLY_ARRAY) {
        ngx_game_mm_step_done(mq);
        return;
    }

    n = ngx_min(reply->elements, 16);
    for (i = 0; i < n; i++) {
        elts[i].data = reply->element[i]->str;
        elts[i].len = reply->element[i]->str ? reply->element[i]->len : 0;
    }

    if (game_alloc_parse(GAME_ALLOC_ALLOCATE, elts, n, &f->server)
        != GAME_ALLOC_OK)
    {
        /* no Ready server: the tickets stay queued for the next pass */
        ngx_log_error(NGX_LOG_INFO, ngx_game_mm_log, 0,
                      "game mm: queue \"%V\": no server for a match yet",
                      &mq->name);
        ngx_game_mm_step_done(mq);
        return;
    }

    n = 4 + 2 * f->match.count;

    argv = ngx_palloc(mq->pass, n * sizeof(char *));
    argvlen = ngx_palloc(mq->pass, n * sizeof(size_t));
    if (argv == NULL || argvlen == NULL) {
        ngx_game_mm_step_done(mq);
        return;
    }

    argv[0] = (char *) mq->mmcf->prefix.data;
    argvlen[0] = mq->mmcf->prefix.len;
    argv[1] = (char *) mq->name.data;
    argvlen[1] = mq->name.len;
    argv[2] = (char *) mq->fence;
    argvlen[2] = ngx_strlen(mq->fence);
    argv[3] = (char *) f->id;
    argvlen[3] = 36;

    for (k = 0; k < f->match.count; k++) {
        argv[4 + 2 * k] = (char *) mq->entries[f->members[k].ticket].id;
        argvlen[4 + 2 * k] = 36;
        argv[5 + 2 * k] = f->members[k].team ? "1" : "0";
        argvlen[5 + 2 * k] = 1;

        if (f->members[k].team > 1) {
            argv[5 + 2 * k] = ngx_pnalloc(mq->pass, NGX_INT_T_LEN);
            if (argv[5 + 2 * k] == NULL) {
                ngx_game_mm_step_done(mq);
                return;
            }
            argvlen[5 + 2 * k] = ngx_sprintf((u_char *) argv[5 + 2 * k],
                                             "%uD", f->members[k].team)
                                 - (u_char *) argv[5 + 2 * k];
        }
    }

    (void) ngx_game_mm_send(mq, &ngx_game_mm_lua_claim, ngx_game_mm_claimed,
                            f, (int) n, argv, argvlen);
    ngx_game_mm_step_done(mq);
}


static void
ngx_game_mm_claimed(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply)
{
    size_t                  i, k, n;
    u_char                  port[NGX_INT_T_LEN];
    ngx_game_mm_forming_t  *f = cmd->data;
    ngx_game_mm_queue_t    *mq = f->queue;
    const char            **argv;
    size_t                 *argvlen;
    ngx_game_mm_entry_t    *e;

    mq->pending--;

    if (rc != NGX_OK) {
        ngx_game_mm_step_done(mq);
        return;
    }

    if (ngx_game_mm_is(reply, "FENCED")) {
        mq->lost = 1;
        ngx_game_mm_step_done(mq);
        return;
    }

    if (ngx_game_mm_is(reply, "GONE")) {
        /* cancelled or expired meanwhile: drop those, keep the others */
        for (i = 1; i < reply->elements; i++) {
            for (k = 0; k < f->match.count; k++) {
                e = &mq->entries[f->members[k].ticket];
                if (reply->element[i]->len == 36
                    && ngx_strncmp(e->id, reply->element[i]->str, 36) == 0)
                {
                    e->gone = 1;
                }
            }
        }

        ngx_game_mm_step_done(mq);
        return;
    }

    if (!ngx_game_mm_is(reply, "OK")) {
        ngx_game_mm_step_done(mq);
        return;
    }

    ngx_log_error(NGX_LOG_INFO, ngx_game_mm_log, 0,
                  "game mm: queue \"%V\": match %s on server %s "
                  "(%ui tickets, spread %.0f)", &mq->name, f->id,
                  f->server.server_id, (ngx_uint_t) f->match.count,
                  f->match.spread);

    n = 6 + 3 * f->match.count * GAME_MM_MAX_TEAM_SIZE;

    argv = ngx_palloc(mq->pass, n * sizeof(char *));
    argvlen = ngx_palloc(mq->pass, n * sizeof(size_t));
    if (argv == NULL || argvlen == NULL) {
        ngx_game_mm_step_done(mq);
        return;
    }

    argv[0] = (char *) mq->mmcf->prefix.data;
    argvlen[0] = mq->mmcf->prefix.len;
    argv[1] = (char *) mq->name.data;
    argvlen[1] = mq->name.len;
    argv[2] = (char *) mq->fence;
    argvlen[2] = ngx_strlen(mq->fence);
    argv[3] = f->server.server_id;
    argvlen[3] = ngx_strlen(f->server.server_id);
    argv[4] = f->server.addr;
    argvlen[4] = ngx_strlen(f->server.addr);
    argv[5] = (char *) port;
    argvlen[5] = ngx_sprintf(port, "%d", f->server.port) - port;

    n = 6;

    for (k = 0; k < f->match.count; k++) {
        e = &mq->entries[f->members[k].ticket];
        e->gone = 1;

        if (ngx_game_mm_tickets(f, e, argv, argvlen, &n) != NGX_OK) {
            ngx_log_error(NGX_LOG_ERR, ngx_game_mm_log, 0,
                          "game mm: queue \"%V\": could not sign the "
                          "connection tickets of match %s",
                          &mq->name, f->id);
        }
    }

    (void) ngx_game_mm_send(mq, &ngx_game_mm_lua_assign, ngx_game_mm_done,
                            mq, (int) n, argv, argvlen);

    ngx_game_mm_session_open(f);
    ngx_game_mm_step_done(mq);
}


/*
 * Record the match in PostgreSQL (mm_session_open, sql/003): the session,
 * its server and its players with their teams and ratings before.  The
 * result consumer closes it.  A failure here is logged and the match goes
 * on: playing matters more than its bookkeeping.
 */

static void
ngx_game_mm_session_open(ngx_game_mm_forming_t *f)
{
    u_char               *p, *id, *last, *port, *json, *end;
    size_t                size;
    ngx_str_t             player;
    ngx_uint_t            k;
    ngx_game_mm_queue_t  *mq = f->queue;
    ngx_game_pg_query_t  *q;
    ngx_game_mm_entry_t  *e;

    if (mq->mmcf->pg == NULL) {
        return;
    }

    size = 2 + f->match.count * GAME_MM_MAX_TEAM_SIZE * 80;
    json = ngx_pnalloc(mq->pass, size);
    port = ngx_pnalloc(mq->pass, NGX_INT_T_LEN + 1);
    q = ngx_game_pg_query_create(mq->pass, ngx_game_mm_log,
                                 &ngx_game_mm_session_stmt);
    if (json == NULL || port == NULL || q == NULL) {
        return;
    }

    end = json + size - 2;
    p = json;
    *p++ = '[';

    for (k = 0; k < f->match.count; k++) {
        e = &mq->entries[f->members[k].ticket];
        id = e->players;
        last = e->players + ngx_strlen(e->players);

        while (ngx_game_mm_next_id(&id, last, &player)) {
            /* player ids are UUIDs (join checks): no escaping needed */
            p = ngx_slprintf(p, end, "%s{\"player_id\":\"%V\",\"team\":%uD}",
                             p == json + 1 ? "" : ",", &player,
                             f->members[k].team);
        }
    }

    *p++ = ']';
    *p = '\0';

    *ngx_sprintf(port, "%d", f->server.port) = '\0';

    q->values[0] = (char *) f->id;
    q->values[1] = (char *) mq->mode->name.data;
    q->values[2] = (char *) mq->region->data;
    q->values[3] = f->server.server_id;
    q->values[4] = f->server.addr;
    q->values[5] = (char *) port;
    q->values[6] = (char *) json;
    q->handler = ngx_game_mm_session_opened;
    q->data = mq;

    mq->pending++;

    if (ngx_game_pg_query_run(mq->mmcf->pg, q) != NGX_AGAIN) {
        mq->pending--;
        ngx_log_error(NGX_LOG_WARN, ngx_game_mm_log, 0,
                      "game mm: match %s: no session record, the database "
                      "is unavailable", f->id);
    }
}


static void
ngx_game_mm_session_opened(ngx_game_pg_query_t *q, ngx_int_t rc,
    PGresult *res)
{
    ngx_game_mm_queue_t  *mq = q->data;

    mq->pending--;

    if (rc != NGX_OK) {
        ngx_log_error(NGX_LOG_WARN, ngx_game_mm_log, 0,
                      "game mm: queue \"%V\": a match has no session record",
                      &mq->name);
    }

    ngx_game_mm_step_done(mq);
}


static void
ngx_game_mm_done(ngx_game_redis_cmd_t *cmd, ngx_int_t rc, redisReply *reply)
{
    ngx_game_mm_queue_t  *mq = cmd->data;

    mq->pending--;

    if (rc == NGX_OK && ngx_game_mm_is(reply, "FENCED")) {
        mq->lost = 1;
    }

    ngx_game_mm_step_done(mq);
}


/*
 * The connection tickets of one matchmaking ticket: for each of its
 * players, (ticket id, player id, signed token) go to assign.lua.  The
 * token is what the game server checks: who, which match, which server,
 * until when (PROTOCOL.md).
 */

static ngx_int_t
ngx_game_mm_tickets(ngx_game_mm_forming_t *f, ngx_game_mm_entry_t *e,
    const char **argv, size_t *argvlen, size_t *n)
{
    u_char                   *p, *last, claims[512], jti[16];
    time_t                    now;
    ngx_str_t                 payload, token, player;
    ngx_game_mm_main_conf_t  *mmcf = f->queue->mmcf;

    if (mmcf->ticket_key == NULL) {
        return NGX_OK;
    }

    now = ngx_time();
    p = e->players;
    last = e->players + ngx_strlen(e->players);

    while (*n + 3 <= 6 + 3 * GAME_MM_MAX_MEMBERS
           && ngx_game_mm_next_id(&p, last, &player))
    {

        if (RAND_bytes(jti, sizeof(jti)) != 1) {
            return NGX_ERROR;
        }

        payload.data = claims;
        payload.len = ngx_snprintf(claims, sizeof(claims),
                          "{\"sub\":\"%V\",\"match_id\":\"%s\","
                          "\"server_id\":\"%s\",\"iat\":%T,\"nbf\":%T,"
                          "\"exp\":%T,\"jti\":\"%*xs\"}",
                          &player, f->id, f->server.server_id, now, now,
                          now + mmcf->connect_ttl, sizeof(jti), jti)
                      - claims;

        if (ngx_game_jwt_sign(mmcf->ticket_key, f->queue->pass, &payload,
                              &token)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        argv[*n] = (char *) e->id;
        argvlen[*n] = 36;
        argv[*n + 1] = (char *) player.data;
        argvlen[*n + 1] = player.len;
        argv[*n + 2] = (char *) token.data;
        argvlen[*n + 2] = token.len;
        *n += 3;
    }

    return NGX_OK;
}


/*
 * A step of the pass ended.  When none is left in flight, the queue drops
 * what left it (matched, expired, gone) and the pass ends.
 */

static void
ngx_game_mm_step_done(ngx_game_mm_queue_t *mq)
{
    size_t  i, kept;

    if (mq->pending || mq->pass == NULL) {
        return;
    }

    if (mq->lost) {
        ngx_game_mm_reset(mq);

    } else {
        for (i = 0, kept = 0; i < mq->n; i++) {
            if (mq->entries[i].gone) {
                continue;
            }
            if (kept != i) {
                mq->tickets[kept] = mq->tickets[i];
                mq->entries[kept] = mq->entries[i];
            }
            mq->tickets[kept].id = kept;
            kept++;
        }
        mq->n = kept;
    }

    ngx_destroy_pool(mq->pass);
    mq->pass = NULL;
}


static void
ngx_game_mm_reset(ngx_game_mm_queue_t *mq)
{
    mq->n = 0;
    mq->fence[0] = '\0';
    mq->last_id[0] = '\0';
}


static ngx_int_t
ngx_game_mm_send(ngx_game_mm_queue_t *mq, ngx_game_redis_script_t *script,
    ngx_game_redis_handler_pt handler, void *data, int argc,
    const char **argv, size_t *argvlen)
{
    ngx_game_redis_cmd_t  *cmd;

    cmd = ngx_game_redis_cmd_create(mq->pass, ngx_game_mm_log);
    if (cmd == NULL) {
        return NGX_ERROR;
    }

    cmd->handler = handler;
    cmd->data = data;

    mq->pending++;

    if (ngx_game_redis_eval(mq->mmcf->redis, cmd, script, 0, argc, argv,
                            argvlen)
        != NGX_AGAIN)
    {
        mq->pending--;
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_game_mm_is(redisReply *reply, const char *word)
{
    return reply && reply->type == REDIS_REPLY_ARRAY && reply->elements > 0
           && reply->element[0]->type == REDIS_REPLY_STRING
           && ngx_strcmp(reply->element[0]->str, word) == 0;
}
