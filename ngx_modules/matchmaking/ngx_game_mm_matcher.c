
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
 * The holder keeps its queue in memory and reads only what happened since
 * its last pass (read.lua): tickets that joined and are still queued, and
 * tickets that left (cancelled).  One pass:
 *
 *   lease -> read -> engine (in a thread pool when one is configured)
 *         -> expire the too old -> per match: match.lua
 *         -> sweep the matches in play (sweep.lua)
 *
 * match.lua claims a match's tickets and allocates its game server in one
 * script, so nothing is ever allocated for a ticket that is not queued at
 * that moment, and a match that finds no server leaves its tickets queued
 * for the next pass.  When a reply is lost (a timeout, Redis gone), the
 * queue is read again from Redis at the next pass: the script either ran
 * entirely (its tickets are matched, with their server, and no longer
 * read) or not at all.  A new lease reads the queue from its start, which
 * returns only tickets still queued.
 *
 * The sweep follows every match of the queue until it ends: it moves the
 * tickets of seated players to "playing", fails the unseated ones
 * ("no_show") as soon as the server starts, and fails every ticket of a
 * match whose server is gone ("server_lost"), so that nobody waits for a
 * result that will never come.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_game_mm.h"


#define NGX_GAME_MM_READ_BATCH      250      /* entries per read.lua */
#define NGX_GAME_MM_READ_MAX        20000    /* entries per pass */
#define NGX_GAME_MM_PG_INFLIGHT     4        /* session writes at once */
#define NGX_GAME_MM_MATCHES_MAX     1000     /* per queue and pass */
#define NGX_GAME_MM_WAVE            64       /* match.lua calls in flight */
#define NGX_GAME_MM_SWEEP_BATCH     200      /* matches per sweep.lua */
#define NGX_GAME_MM_SWEEP_MAX       1000     /* matches per pass */


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

    game_mm_engine_t           *engine;
    size_t                      engine_cap;
    game_mm_result_t            res;            /* of the pass in flight */

    ngx_uint_t                  sweep_from;     /* rank, across passes */
    ngx_uint_t                  swept;          /* matches this pass */

    /* the pass in flight */
    ngx_pool_t                 *pass;
    ngx_uint_t                  pending;
    ngx_uint_t                  passes;
    ngx_uint_t                  next_match;     /* of res, to send next */
    ngx_uint_t                  read;           /* entries this pass */
    ngx_queue_t                 pg_waiting;     /* ngx_game_mm_pg_job_t */
    ngx_uint_t                  pg_inflight;
    ngx_uint_t                  no_server;      /* matches without one */
    unsigned                    lost:1;         /* reread the queue */
} ngx_game_mm_queue_t;


/* a session write waiting for its turn */
typedef struct {
    ngx_queue_t                 link;
    ngx_game_pg_query_t        *query;
} ngx_game_mm_pg_job_t;


/* one match of a pass */
typedef struct {
    ngx_game_mm_queue_t        *queue;
    game_mm_match_t             match;
    game_mm_member_t           *members;
    u_char                      id[37];
    ngx_str_t                   roster;         /* JSON, for PostgreSQL */
} ngx_game_mm_forming_t;


#if (NGX_THREADS)

typedef struct {
    ngx_game_mm_queue_t        *queue;
    int64_t                     now_ms;
    long                        rc;
} ngx_game_mm_engine_task_t;

static void ngx_game_mm_engine_thread(void *data, ngx_log_t *log);
static void ngx_game_mm_engine_done(ngx_event_t *ev);

#endif


static void ngx_game_mm_tick(ngx_event_t *ev);
static void ngx_game_mm_pass(ngx_game_mm_queue_t *mq);
static void ngx_game_mm_leased(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply);
static void ngx_game_mm_read_more(ngx_game_mm_queue_t *mq);
static void ngx_game_mm_read(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply);
static ngx_int_t ngx_game_mm_append(ngx_game_mm_queue_t *mq,
    redisReply **f);
static void ngx_game_mm_drop(ngx_game_mm_queue_t *mq, redisReply *id);
static void ngx_game_mm_compact(ngx_game_mm_queue_t *mq);
static void ngx_game_mm_engine(ngx_game_mm_queue_t *mq);
static void ngx_game_mm_formed(ngx_game_mm_queue_t *mq, long rc);
static void ngx_game_mm_expire(ngx_game_mm_queue_t *mq);
static void ngx_game_mm_expired(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply);
static void ngx_game_mm_next(ngx_game_mm_queue_t *mq);
static void ngx_game_mm_make(ngx_game_mm_forming_t *f);
static void ngx_game_mm_made(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply);
static ngx_int_t ngx_game_mm_roster(ngx_game_mm_forming_t *f);
static void ngx_game_mm_session_open(ngx_game_mm_forming_t *f,
    redisReply *reply);
static void ngx_game_mm_sweep(ngx_game_mm_queue_t *mq);
static void ngx_game_mm_swept(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply);
static void ngx_game_mm_session_mark(ngx_game_mm_queue_t *mq,
    ngx_game_pg_stmt_t *stmt, redisReply *match);
static void ngx_game_mm_pg(ngx_game_mm_queue_t *mq, ngx_game_pg_query_t *q);
static void ngx_game_mm_pg_done(ngx_game_pg_query_t *q, ngx_int_t rc,
    PGresult *res);
static void ngx_game_mm_done(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply);
static ngx_int_t ngx_game_mm_send(ngx_game_mm_queue_t *mq,
    ngx_game_redis_script_t *script, ngx_game_redis_handler_pt handler,
    void *data, ngx_game_redis_args_t *a);
static void ngx_game_mm_args(ngx_game_redis_args_t *a,
    ngx_game_mm_queue_t *mq, ngx_uint_t fenced);
static void ngx_game_mm_step_done(ngx_game_mm_queue_t *mq);
static void ngx_game_mm_reset(ngx_game_mm_queue_t *mq);


static ngx_game_pg_stmt_t  ngx_game_mm_session_stmt = {
    "game_mm_session_open",
    "SELECT mm_session_open($1::uuid, $2, $3, $4, $5, $6::integer, $7::jsonb)",
    7
};

static ngx_game_pg_stmt_t  ngx_game_mm_lost_stmt = {
    "game_mm_session_lost",
    "SELECT mm_session_lost($1::uuid)",
    1
};

static ngx_game_pg_stmt_t  ngx_game_mm_started_stmt = {
    "game_mm_session_started",
    "SELECT mm_session_started($1::uuid)",
    1
};


static ngx_event_t            ngx_game_mm_timer;
static ngx_array_t            ngx_game_mm_queues;   /* ngx_game_mm_queue_t */
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
    u_char                 ms[NGX_INT_T_LEN];
    ngx_game_redis_args_t  a;

    mq->pass = ngx_create_pool(4096, ngx_game_mm_log);
    if (mq->pass == NULL) {
        return;
    }

    mq->pending = 0;
    mq->lost = 0;
    mq->no_server = 0;
    mq->next_match = 0;
    mq->read = 0;
    mq->swept = 0;
    mq->pg_inflight = 0;
    ngx_queue_init(&mq->pg_waiting);
    mq->passes++;

    ngx_game_mm_args(&a, mq, 0);
    ngx_game_redis_arg_str(&a, ngx_game_instance_id());
    ngx_game_redis_arg(&a, ms, ngx_sprintf(ms, "%M", 3 * mq->mmcf->tick) - ms);

    (void) ngx_game_mm_send(mq, &ngx_game_mm_lua_lease, ngx_game_mm_leased,
                            mq, &a);
    ngx_game_mm_step_done(mq);
}


static void
ngx_game_mm_leased(ngx_game_redis_cmd_t *cmd, ngx_int_t rc, redisReply *reply)
{
    redisReply           *fence;
    ngx_game_mm_queue_t  *mq = cmd->data;

    mq->pending--;

    if (rc != NGX_OK || !ngx_game_mm_reply_is(reply, "OK")
        || reply->elements < 2 || reply->element[1]->type != REDIS_REPLY_STRING)
    {
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

    ngx_game_mm_read_more(mq);
    ngx_game_mm_step_done(mq);
}


/* read.lua from the last entry read on */
static void
ngx_game_mm_read_more(ngx_game_mm_queue_t *mq)
{
    u_char                 from[80], count[NGX_INT_T_LEN];
    ngx_game_redis_args_t  a;

    ngx_game_mm_args(&a, mq, 0);

    if (mq->last_id[0]) {
        ngx_game_redis_arg(&a, from,
                           ngx_snprintf(from, sizeof(from), "(%s",
                                        mq->last_id) - from);
    } else {
        ngx_game_redis_arg_lit(&a, "-");
    }

    ngx_game_redis_arg(&a, count,
                       ngx_sprintf(count, "%d", NGX_GAME_MM_READ_BATCH)
                       - count);

    (void) ngx_game_mm_send(mq, &ngx_game_mm_lua_read, ngx_game_mm_read, mq,
                            &a);
}


/* {last id, {ticket, rating, size, at, players, ...}, {gone id, ...}, n} */
static void
ngx_game_mm_read(ngx_game_redis_cmd_t *cmd, ngx_int_t rc, redisReply *reply)
{
    size_t                i;
    redisReply           *last, *live, *gone;
    ngx_game_mm_queue_t  *mq = cmd->data;

    if (rc != NGX_OK || reply->type != REDIS_REPLY_ARRAY
        || reply->elements != 4
        || reply->element[0]->type != REDIS_REPLY_STRING
        || reply->element[1]->type != REDIS_REPLY_ARRAY
        || reply->element[2]->type != REDIS_REPLY_ARRAY
        || reply->element[3]->type != REDIS_REPLY_INTEGER)
    {
        mq->pending--;
        mq->lost = 1;
        ngx_game_mm_step_done(mq);
        return;
    }

    last = reply->element[0];
    live = reply->element[1];
    gone = reply->element[2];

    if (last->len && last->len < sizeof(mq->last_id)) {
        ngx_cpystrn(mq->last_id, (u_char *) last->str, last->len + 1);
    }

    for (i = 0; i + 5 <= live->elements; i += 5) {
        if (ngx_game_mm_append(mq, &live->element[i]) != NGX_OK) {
            break;
        }
    }

    for (i = 0; i < gone->elements; i++) {
        ngx_game_mm_drop(mq, gone->element[i]);
    }

    /* the engine must not see them */
    ngx_game_mm_compact(mq);

    mq->read += reply->element[3]->integer;

    /* the read stays pending until the next step is under way, so that
     * the pass cannot end in between */
    if (reply->element[3]->integer >= NGX_GAME_MM_READ_BATCH
        && mq->read < NGX_GAME_MM_READ_MAX)
    {
        ngx_game_mm_read_more(mq);

    } else {
        ngx_game_mm_engine(mq);
    }

    mq->pending--;
    ngx_game_mm_step_done(mq);
}


/* one live ticket: id, rating, size, at, players */
static ngx_int_t
ngx_game_mm_append(ngx_game_mm_queue_t *mq, redisReply **f)
{
    size_t                k, cap;
    game_mm_ticket_t     *t;
    ngx_game_mm_entry_t  *e;

    for (k = 0; k < 5; k++) {
        if (f[k]->type != REDIS_REPLY_STRING) {
            return NGX_OK;
        }
    }

    if (f[0]->len != 36 || f[4]->len >= sizeof(e->players)) {
        /* not ours to match: skip it, keep reading */
        return NGX_OK;
    }

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
        }

        if (mq->tickets) {
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

    ngx_memcpy(e->id, f[0]->str, 36);
    t->rating = strtod(f[1]->str, NULL);
    t->size = (uint32_t) strtoul(f[2]->str, NULL, 10);
    t->enqueued_ms = strtoll(f[3]->str, NULL, 10);
    ngx_memcpy(e->players, f[4]->str, f[4]->len + 1);

    if (t->size == 0 || t->size > GAME_MM_MAX_TEAM_SIZE) {
        return NGX_OK;
    }

    t->id = mq->n;
    mq->n++;

    return NGX_OK;
}


/* a ticket left the queue (cancelled): forget it before matching */
static void
ngx_game_mm_drop(ngx_game_mm_queue_t *mq, redisReply *id)
{
    size_t  i;

    if (id->type != REDIS_REPLY_STRING || id->len != 36) {
        return;
    }

    for (i = 0; i < mq->n; i++) {
        if (ngx_strncmp(mq->entries[i].id, id->str, 36) == 0) {
            mq->entries[i].gone = 1;
        }
    }
}


/* close the gaps that tickets which left the queue made */
static void
ngx_game_mm_compact(ngx_game_mm_queue_t *mq)
{
    size_t  i, kept;

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


/*
 * One engine run over the queue.  The engine re-sorts the whole queue: at
 * tens of thousands of tickets that is tens of milliseconds, which a
 * thread pool keeps off the event loop.  The queue's arrays are not
 * touched while the pass is in flight, so the thread reads them safely.
 */

static void
ngx_game_mm_engine(ngx_game_mm_queue_t *mq)
{
    size_t                      cap;
    ngx_time_t                 *tp;
    game_mm_result_t           *res = &mq->res;
#if (NGX_THREADS)
    ngx_thread_task_t          *task;
    ngx_game_mm_engine_task_t  *ctx;
#endif

    if (mq->n == 0) {
        ngx_game_mm_sweep(mq);
        return;
    }

    if (mq->engine_cap < mq->n) {
        cap = ngx_max(mq->cap, 1024);
        game_mm_engine_destroy(mq->engine);
        mq->engine = game_mm_engine_create(cap);
        mq->engine_cap = mq->engine ? cap : 0;
        if (mq->engine == NULL) {
            return;
        }
    }

    ngx_memzero(res, sizeof(game_mm_result_t));
    res->max_matches = NGX_GAME_MM_MATCHES_MAX;
    res->max_members = NGX_GAME_MM_MATCHES_MAX * GAME_MM_MAX_MEMBERS;
    res->max_expired = mq->n;
    res->matches = ngx_palloc(mq->pass,
                              res->max_matches * sizeof(game_mm_match_t));
    res->members = ngx_palloc(mq->pass,
                              res->max_members * sizeof(game_mm_member_t));
    res->expired = ngx_palloc(mq->pass, res->max_expired * sizeof(uint32_t));

    if (res->matches == NULL || res->members == NULL
        || res->expired == NULL)
    {
        return;
    }

    tp = ngx_timeofday();

#if (NGX_THREADS)

    if (mq->mmcf->thread_pool) {
        task = ngx_thread_task_alloc(mq->pass,
                                     sizeof(ngx_game_mm_engine_task_t));
        if (task == NULL) {
            return;
        }

        ctx = task->ctx;
        ctx->queue = mq;
        ctx->now_ms = (int64_t) tp->sec * 1000 + tp->msec;

        task->handler = ngx_game_mm_engine_thread;
        task->event.handler = ngx_game_mm_engine_done;
        task->event.data = ctx;

        mq->pending++;

        if (ngx_thread_task_post(mq->mmcf->thread_pool, task) != NGX_OK) {
            /* the pool's queue is full: match next time */
            mq->pending--;
        }

        return;
    }

#endif

    ngx_game_mm_formed(mq, game_mm_engine_run(mq->engine, &mq->mode->rules,
                                              mq->tickets, mq->n,
                                              (int64_t) tp->sec * 1000
                                              + tp->msec, res));
}


#if (NGX_THREADS)

static void
ngx_game_mm_engine_thread(void *data, ngx_log_t *log)
{
    ngx_game_mm_engine_task_t  *ctx = data;
    ngx_game_mm_queue_t        *mq = ctx->queue;

    ctx->rc = game_mm_engine_run(mq->engine, &mq->mode->rules, mq->tickets,
                                 mq->n, ctx->now_ms, &mq->res);
}


static void
ngx_game_mm_engine_done(ngx_event_t *ev)
{
    ngx_game_mm_engine_task_t  *ctx = ev->data;
    ngx_game_mm_queue_t        *mq = ctx->queue;

    ngx_game_mm_formed(mq, ctx->rc);

    mq->pending--;
    ngx_game_mm_step_done(mq);
}

#endif


static void
ngx_game_mm_formed(ngx_game_mm_queue_t *mq, long rc)
{
    ngx_uint_t  i;

    if (rc < 0) {
        ngx_game_mm_sweep(mq);
        return;
    }

    ngx_game_mm_expire(mq);

    for (i = 0; i < NGX_GAME_MM_WAVE; i++) {
        ngx_game_mm_next(mq);
    }

    ngx_game_mm_sweep(mq);
}


/*
 * Matches go to Redis a wave at a time, the next one as a reply comes
 * back: a burst of a thousand matches never builds a thousand scripts in
 * one turn of the event loop, and once the region has no Ready server
 * left, the rest of the pass's matches are not even tried (their tickets
 * stay queued for the next pass).
 */

static void
ngx_game_mm_next(ngx_game_mm_queue_t *mq)
{
    ngx_game_mm_forming_t  *f;
    game_mm_result_t       *res = &mq->res;

    if (mq->next_match >= res->nmatches || mq->no_server || mq->lost) {
        return;
    }

    f = ngx_pcalloc(mq->pass, sizeof(ngx_game_mm_forming_t));
    if (f == NULL) {
        return;
    }

    f->queue = mq;
    f->match = res->matches[mq->next_match++];
    f->members = &res->members[f->match.first];

    ngx_game_mm_make(f);
}


static void
ngx_game_mm_expire(ngx_game_mm_queue_t *mq)
{
    size_t                 i;
    u_char                 minid[NGX_INT64_LEN + 3];
    int64_t                oldest;
    ngx_time_t            *tp;
    game_mm_result_t      *res = &mq->res;
    ngx_game_redis_args_t  a;

    /* trim the stream now and then even when nothing expired */
    if (res->nexpired == 0 && mq->passes % 30 != 0) {
        return;
    }

    /* the stream keeps what the longest wait could still need */
    tp = ngx_timeofday();
    oldest = (int64_t) tp->sec * 1000 + tp->msec
             - mq->mode->rules.max_wait_ms - 60000;

    ngx_game_mm_args(&a, mq, 1);
    ngx_game_redis_arg(&a, minid, ngx_sprintf(minid, "%L-0", oldest) - minid);

    /* as many as fit in a script; the others expire at the next pass */
    for (i = 0; i < res->nexpired && a.argc < NGX_GAME_REDIS_MAX_ARGS - 3;
         i++)
    {
        ngx_game_redis_arg(&a, mq->entries[res->expired[i]].id, 36);
        mq->entries[res->expired[i]].gone = 1;
    }

    (void) ngx_game_mm_send(mq, &ngx_game_mm_lua_expire, ngx_game_mm_expired,
                            mq, &a);
}


/* {'OK', expired count, {ticket, ...}} | {'FENCED'} */
static void
ngx_game_mm_expired(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply)
{
    ngx_game_mm_queue_t  *mq = cmd->data;

    if (rc == NGX_OK && ngx_game_mm_reply_is(reply, "OK")
        && reply->elements == 3)
    {
        ngx_game_mm_notify_reply(mq->mmcf, reply->element[2]);
    }

    ngx_game_mm_done(cmd, rc, reply);
}


/*
 * match.lua for one match.  The match id is the game session's id.  Its
 * tickets leave the in-memory queue whatever the outcome but NO_SERVER:
 * matched, gone, or (after a lost reply) read again from Redis.
 */

static void
ngx_game_mm_make(ngx_game_mm_forming_t *f)
{
    u_char                 *p;
    ngx_uint_t              k, players;
    ngx_game_mm_queue_t    *mq = f->queue;
    ngx_game_redis_args_t   a;

    game_uuid_generate((char *) f->id);

    if (ngx_game_mm_roster(f) != NGX_OK) {
        return;
    }

    /* numbers live in the pass's memory: eval copies them, but only once
     * the whole list is built */
    p = ngx_pnalloc(mq->pass, 2 * NGX_INT_T_LEN + f->match.count * 4);
    if (p == NULL) {
        return;
    }

    players = 0;
    for (k = 0; k < f->match.count; k++) {
        players += mq->tickets[f->members[k].ticket].size;
    }

    ngx_game_mm_args(&a, mq, 1);
    ngx_game_redis_arg(&a, f->id, 36);
    ngx_game_redis_arg_str(&a, &mq->mmcf->alloc_prefix);
    ngx_game_redis_arg_str(&a, mq->region);
    ngx_game_redis_arg_str(&a, &mq->mode->server_mode);
    ngx_game_redis_arg_lit(&a, "");             /* any build */
    ngx_game_redis_arg(&a, p, ngx_sprintf(p, "%ui", players) - p);
    p += a.argvlen[a.argc - 1];
    ngx_game_redis_arg_str(&a, &f->roster);
    ngx_game_redis_arg(&a, p, ngx_sprintf(p, "%M", mq->mmcf->match_ttl) - p);
    p += a.argvlen[a.argc - 1];

    for (k = 0; k < f->match.count; k++) {
        ngx_game_redis_arg(&a, mq->entries[f->members[k].ticket].id, 36);
        ngx_game_redis_arg(&a, p, ngx_sprintf(p, "%uD", f->members[k].team)
                                  - p);
        p += a.argvlen[a.argc - 1];
    }

    (void) ngx_game_mm_send(mq, &ngx_game_mm_lua_match, ngx_game_mm_made, f,
                            &a);
}


static void
ngx_game_mm_made(ngx_game_redis_cmd_t *cmd, ngx_int_t rc, redisReply *reply)
{
    size_t                  i;
    int64_t                 waited[GAME_MM_MAX_MEMBERS];
    ngx_str_t               ids[GAME_MM_MAX_MEMBERS];
    ngx_uint_t              k;
    ngx_game_mm_forming_t  *f = cmd->data;
    ngx_game_mm_queue_t    *mq = f->queue;
    ngx_game_mm_entry_t    *e;

    mq->pending--;

    if (rc != NGX_OK) {
        /* the script ran entirely or not at all: read the queue again */
        ngx_game_mm_metrics_failure(mq->mmcf, NGX_GAME_MM_FAIL_ERROR);
        mq->lost = 1;
        ngx_game_mm_next(mq);
        ngx_game_mm_step_done(mq);
        return;
    }

    if (ngx_game_mm_reply_is(reply, "NO_SERVER")) {
        /* the tickets stay queued for the next pass */
        ngx_game_mm_metrics_failure(mq->mmcf, NGX_GAME_MM_FAIL_NO_SERVER);
        mq->no_server++;
        ngx_game_mm_next(mq);
        ngx_game_mm_step_done(mq);
        return;
    }

    if (ngx_game_mm_reply_is(reply, "FENCED")) {
        ngx_game_mm_metrics_failure(mq->mmcf, NGX_GAME_MM_FAIL_FENCED);
        mq->lost = 1;
        ngx_game_mm_next(mq);
        ngx_game_mm_step_done(mq);
        return;
    }

    if (ngx_game_mm_reply_is(reply, "GONE")) {
        /* cancelled or expired meanwhile: drop those, keep the others */
        ngx_game_mm_metrics_failure(mq->mmcf, NGX_GAME_MM_FAIL_GONE);
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

        ngx_game_mm_next(mq);
        ngx_game_mm_step_done(mq);
        return;
    }

    if (!ngx_game_mm_reply_is(reply, "OK") || reply->elements != 5) {
        ngx_log_error(NGX_LOG_ERR, ngx_game_mm_log, 0,
                      "game mm: queue \"%V\": match %s: unexpected answer "
                      "from the allocator%s%*s", &mq->name, f->id,
                      reply->elements ? ": " : "",
                      (size_t) (reply->elements ? reply->element[0]->len : 0),
                      reply->elements ? reply->element[0]->str : "");
        ngx_game_mm_metrics_failure(mq->mmcf, NGX_GAME_MM_FAIL_ERROR);
        mq->lost = 1;
        ngx_game_mm_next(mq);
        ngx_game_mm_step_done(mq);
        return;
    }

    for (k = 0; k < f->match.count; k++) {
        e = &mq->entries[f->members[k].ticket];
        e->gone = 1;
        ids[k].data = e->id;
        ids[k].len = 36;
        waited[k] = mq->tickets[f->members[k].ticket].enqueued_ms;
    }

    ngx_game_mm_metrics_matched(mq->mmcf, mq->mode, waited,
                                f->match.count);

    /* the players hear of their server without asking */
    ngx_game_mm_notify(mq->mmcf, ids, f->match.count);

    ngx_log_error(NGX_LOG_INFO, ngx_game_mm_log, 0,
                  "game mm: queue \"%V\": match %s on server %*s "
                  "(%ui tickets, spread %.0f)", &mq->name, f->id,
                  (size_t) reply->element[1]->len, reply->element[1]->str,
                  (ngx_uint_t) f->match.count, f->match.spread);

    ngx_game_mm_session_open(f, reply);
    ngx_game_mm_next(mq);
    ngx_game_mm_step_done(mq);
}


/* [{"player_id": "...", "team": 0}, ...], built with jansson */
static ngx_int_t
ngx_game_mm_roster(ngx_game_mm_forming_t *f)
{
    u_char               *p, *last;
    size_t                len;
    json_t               *roster, *item;
    ngx_str_t             player;
    ngx_uint_t            k;
    ngx_game_mm_entry_t  *e;

    roster = json_array();
    if (roster == NULL) {
        return NGX_ERROR;
    }

    for (k = 0; k < f->match.count; k++) {
        e = &f->queue->entries[f->members[k].ticket];
        p = e->players;
        last = e->players + ngx_strlen(e->players);

        while (ngx_game_mm_next_id(&p, last, &player)) {
            item = json_pack("{s:s#,s:i}", "player_id", player.data,
                             (int) player.len, "team",
                             (int) f->members[k].team);
            if (item == NULL || json_array_append_new(roster, item) != 0) {
                json_decref(roster);
                return NGX_ERROR;
            }
        }
    }

    len = json_dumpb(roster, NULL, 0, JSON_COMPACT);
    f->roster.data = ngx_pnalloc(f->queue->pass, len + 1);
    if (f->roster.data == NULL) {
        json_decref(roster);
        return NGX_ERROR;
    }

    f->roster.len = json_dumpb(roster, (char *) f->roster.data, len,
                               JSON_COMPACT);
    f->roster.data[f->roster.len] = '\0';
    json_decref(roster);

    return NGX_OK;
}


/*
 * Record the match in PostgreSQL (mm_session_open): the session, its
 * server and its players with their teams and ratings before.  A failure
 * here is logged and the match goes on: the results consumer opens the
 * session from the match's record in Redis if it is missing.
 */

static void
ngx_game_mm_session_open(ngx_game_mm_forming_t *f, redisReply *reply)
{
    ngx_game_mm_queue_t  *mq = f->queue;
    ngx_game_pg_query_t  *q;
    ngx_uint_t            i;
    u_char               *v[3];

    if (mq->mmcf->pg == NULL) {
        return;
    }

    q = ngx_game_pg_query_create(mq->pass, ngx_game_mm_log,
                                 &ngx_game_mm_session_stmt);
    if (q == NULL) {
        return;
    }

    ngx_str_set(&q->trace, "mm-matcher");

    /* server id, host, port */
    for (i = 0; i < 3; i++) {
        v[i] = ngx_pstrdup(mq->pass, &(ngx_str_t) {
                               reply->element[1 + i]->len + 1,
                               (u_char *) reply->element[1 + i]->str });
        if (v[i] == NULL) {
            return;
        }
    }

    q->values[0] = (char *) f->id;
    q->values[1] = (char *) mq->mode->name.data;
    q->values[2] = (char *) mq->region->data;
    q->values[3] = (char *) v[0];
    q->values[4] = (char *) v[1];
    q->values[5] = (char *) v[2];
    q->values[6] = (char *) f->roster.data;
    q->handler = ngx_game_mm_pg_done;
    q->data = mq;

    ngx_game_mm_pg(mq, q);
}


static void
ngx_game_mm_sweep(ngx_game_mm_queue_t *mq)
{
    u_char                 from[NGX_INT_T_LEN], lost[NGX_INT_T_LEN],
                           count[NGX_INT_T_LEN];
    ngx_game_redis_args_t  a;

    ngx_game_mm_args(&a, mq, 1);
    ngx_game_redis_arg_str(&a, &mq->mmcf->alloc_prefix);
    ngx_game_redis_arg(&a, lost,
                       ngx_sprintf(lost, "%M", mq->mmcf->lost_after) - lost);
    ngx_game_redis_arg(&a, from,
                       ngx_sprintf(from, "%ui", mq->sweep_from) - from);
    ngx_game_redis_arg(&a, count,
                       ngx_sprintf(count, "%d", NGX_GAME_MM_SWEEP_BATCH)
                       - count);

    (void) ngx_game_mm_send(mq, &ngx_game_mm_lua_sweep, ngx_game_mm_swept,
                            mq, &a);
}


/* {'OK', next from, {lost match, ...}, {started match, ...},
 *  {ticket whose status changed, ...}} */
static void
ngx_game_mm_swept(ngx_game_redis_cmd_t *cmd, ngx_int_t rc, redisReply *reply)
{
    size_t                i;
    redisReply           *lost, *started;
    ngx_game_mm_queue_t  *mq = cmd->data;

    mq->pending--;

    if (rc != NGX_OK || !ngx_game_mm_reply_is(reply, "OK")
        || reply->elements != 5
        || reply->element[2]->type != REDIS_REPLY_ARRAY
        || reply->element[3]->type != REDIS_REPLY_ARRAY)
    {
        if (rc == NGX_OK && ngx_game_mm_reply_is(reply, "FENCED")) {
            mq->lost = 1;
        }
        ngx_game_mm_step_done(mq);
        return;
    }

    mq->sweep_from = ngx_atoi((u_char *) reply->element[1]->str,
                              reply->element[1]->len);
    if (mq->sweep_from == (ngx_uint_t) NGX_ERROR) {
        mq->sweep_from = 0;
    }

    lost = reply->element[2];
    started = reply->element[3];

    ngx_game_mm_notify_reply(mq->mmcf, reply->element[4]);

    for (i = 0; i < lost->elements; i++) {
        ngx_log_error(NGX_LOG_WARN, ngx_game_mm_log, 0,
                      "game mm: queue \"%V\": match %*s lost its server; "
                      "its players may queue again", &mq->name,
                      (size_t) lost->element[i]->len, lost->element[i]->str);
        ngx_game_mm_session_mark(mq, &ngx_game_mm_lost_stmt,
                                 lost->element[i]);
    }

    for (i = 0; i < started->elements; i++) {
        ngx_game_mm_session_mark(mq, &ngx_game_mm_started_stmt,
                                 started->element[i]);
    }

    /* more matches in play: on, in short scripts, up to a bound per pass
     * (the rest is the next pass's) */
    mq->swept += NGX_GAME_MM_SWEEP_BATCH;

    if (mq->sweep_from && mq->swept < NGX_GAME_MM_SWEEP_MAX && !mq->lost) {
        ngx_game_mm_sweep(mq);
    }

    ngx_game_mm_step_done(mq);
}


/* the session's state follows what the sweep saw; best effort */
static void
ngx_game_mm_session_mark(ngx_game_mm_queue_t *mq, ngx_game_pg_stmt_t *stmt,
    redisReply *match)
{
    u_char               *id;
    ngx_game_pg_query_t  *q;

    if (mq->mmcf->pg == NULL || match->type != REDIS_REPLY_STRING
        || !game_uuid_valid((u_char *) match->str, match->len))
    {
        return;
    }

    q = ngx_game_pg_query_create(mq->pass, ngx_game_mm_log, stmt);
    id = ngx_pnalloc(mq->pass, 37);
    if (q == NULL || id == NULL) {
        return;
    }

    ngx_str_set(&q->trace, "mm-matcher");

    *ngx_cpymem(id, match->str, 36) = '\0';

    q->values[0] = (char *) id;
    q->handler = ngx_game_mm_pg_done;
    q->data = mq;

    ngx_game_mm_pg(mq, q);
}


/*
 * The matcher's writes share the API's PostgreSQL pool: a burst of a
 * thousand matches must not put a thousand statements ahead of every
 * player's request.  A few run at a time; the others wait their turn
 * here, in the pass's memory.
 */

static void
ngx_game_mm_pg(ngx_game_mm_queue_t *mq, ngx_game_pg_query_t *q)
{
    ngx_game_mm_pg_job_t  *job;

    if (mq->pg_inflight >= NGX_GAME_MM_PG_INFLIGHT) {
        job = ngx_palloc(mq->pass, sizeof(ngx_game_mm_pg_job_t));
        if (job == NULL) {
            return;
        }

        job->query = q;
        ngx_queue_insert_tail(&mq->pg_waiting, &job->link);
        mq->pending++;
        return;
    }

    mq->pending++;
    mq->pg_inflight++;

    if (ngx_game_pg_query_run(mq->mmcf->pg, q) != NGX_AGAIN) {
        mq->pending--;
        mq->pg_inflight--;
        ngx_log_error(NGX_LOG_WARN, ngx_game_mm_log, 0,
                      "game mm: queue \"%V\": %s did not run, the database "
                      "is unavailable", &mq->name, q->stmt->name);
    }
}


static void
ngx_game_mm_pg_done(ngx_game_pg_query_t *q, ngx_int_t rc, PGresult *res)
{
    ngx_queue_t           *next;
    ngx_game_mm_queue_t   *mq = q->data;
    ngx_game_mm_pg_job_t  *job;

    mq->pending--;
    mq->pg_inflight--;

    if (rc != NGX_OK) {
        ngx_log_error(NGX_LOG_WARN, ngx_game_mm_log, 0,
                      "game mm: queue \"%V\": %s did not run",
                      &mq->name, q->stmt->name);
    }

    /* a write that fails at once frees its place too: loop */
    while (mq->pg_inflight < NGX_GAME_MM_PG_INFLIGHT
           && !ngx_queue_empty(&mq->pg_waiting))
    {
        next = ngx_queue_head(&mq->pg_waiting);
        ngx_queue_remove(next);
        job = ngx_queue_data(next, ngx_game_mm_pg_job_t, link);

        /* it was counted as pending while it waited */
        mq->pending--;
        ngx_game_mm_pg(mq, job->query);
    }

    ngx_game_mm_step_done(mq);
}


static void
ngx_game_mm_done(ngx_game_redis_cmd_t *cmd, ngx_int_t rc, redisReply *reply)
{
    ngx_game_mm_queue_t  *mq = cmd->data;

    mq->pending--;

    if (rc == NGX_OK && ngx_game_mm_reply_is(reply, "FENCED")) {
        mq->lost = 1;
    }

    ngx_game_mm_step_done(mq);
}


/*
 * A step of the pass ended.  When none is left in flight, the queue drops
 * what left it (matched, expired, gone) and the pass ends.
 */

static void
ngx_game_mm_step_done(ngx_game_mm_queue_t *mq)
{
    if (mq->pending || mq->pass == NULL) {
        return;
    }

    if (mq->no_server) {
        ngx_log_error(NGX_LOG_INFO, ngx_game_mm_log, 0,
                      "game mm: queue \"%V\": no Ready server for %ui "
                      "of %uz match(es); their tickets stay queued",
                      &mq->name, mq->res.nmatches - mq->next_match
                                 + mq->no_server,
                      mq->res.nmatches);
    }

    if (mq->lost) {
        ngx_game_mm_reset(mq);

    } else {
        ngx_game_mm_compact(mq);
    }

    ngx_destroy_pool(mq->pass);
    mq->pass = NULL;
}


/* forget the in-memory queue: the next read starts from the stream's start
 * under the current lease, or a new one */
static void
ngx_game_mm_reset(ngx_game_mm_queue_t *mq)
{
    mq->n = 0;
    mq->last_id[0] = '\0';
    mq->sweep_from = 0;

    if (!mq->lost) {
        mq->fence[0] = '\0';
    }
}


static ngx_int_t
ngx_game_mm_send(ngx_game_mm_queue_t *mq, ngx_game_redis_script_t *script,
    ngx_game_redis_handler_pt handler, void *data, ngx_game_redis_args_t *a)
{
    ngx_game_redis_cmd_t  *cmd;

    if (a->overflow) {
        return NGX_ERROR;
    }

    cmd = ngx_game_redis_cmd_create(mq->pass, ngx_game_mm_log);
    if (cmd == NULL) {
        return NGX_ERROR;
    }

    cmd->handler = handler;
    cmd->data = data;

    mq->pending++;

    if (ngx_game_redis_eval(mq->mmcf->redis, cmd, script, 0, a->argc,
                            a->argv, a->argvlen)
        != NGX_AGAIN)
    {
        mq->pending--;
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* every script of a queue begins "prefix, queue", the fenced ones go on
 * with the lease's fencing token */
static void
ngx_game_mm_args(ngx_game_redis_args_t *a, ngx_game_mm_queue_t *mq,
    ngx_uint_t fenced)
{
    ngx_memzero(a, sizeof(ngx_game_redis_args_t));

    ngx_game_redis_arg_str(a, &mq->mmcf->prefix);
    ngx_game_redis_arg_str(a, &mq->name);

    if (fenced) {
        ngx_game_redis_arg_cstr(a, mq->fence);
    }
}
