/*
 * gs_agent.c: the allocator thread of a game server.
 *
 * Everything here may block on Redis (hiredis' sync API, with a 1 s
 * timeout); none of it runs on the tick loop.  The loop talks to the agent
 * through a mutex-guarded queue and a view of the last heartbeat, both
 * touched for microseconds at a time, and through one atomic: the time of
 * its last tick.
 *
 * Operations are retried, in order, until Redis answers: a Redis restart
 * then delays a state change but never reorders or loses it.  Retrying is
 * safe because every operation is idempotent: asking for the state a
 * server is in is OK, a transition is fenced by the match it is for, and a
 * result is guarded by SET NX on its match id.
 *
 * If the allocator forgot us (EXPIRED: an idle server's key lapsed;
 * NOT_FOUND: the record is gone), we register again, but only while the
 * loop holds no match and nothing it queued is left to run: registering
 * in the middle of a match would offer a busy server for allocation.  A
 * busy server whose key lapsed is not forgotten: heartbeat.lua lets it
 * resume.  The loop takes an allocation (gs_agent_take) under the same
 * lock under which we mark ourselves unregistered, so the two cannot
 * cross: either the loop holds the match and we do not register, or we
 * register and the loop never takes the match the stale view showed.
 *
 * Once the server leaves service (drained by the allocator, or the loop
 * asked for Shutdown or drain) it is never registered again.
 */

#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "gs_agent.h"
#include "gs_log.h"


#define GS_AGENT_QUEUE      32
#define GS_AGENT_TEL_QUEUE  16          /* telemetry batches: 16 s of it */
#define GS_AGENT_BEAT_MS    1000
#define GS_AGENT_RETRY_MS   250
#define GS_AGENT_TIMEOUT_MS 1000
#define GS_AGENT_STALL_MS   2000        /* no tick for longer: no heartbeat */
#define GS_AGENT_RESULT_TTL "604800"    /* the per-match guard: a week */

typedef enum {
    GS_AGENT_SET_STATE, GS_AGENT_PUBLISH, GS_AGENT_DRAIN
} gs_agent_op_e;

typedef struct {
    gs_agent_op_e        kind;
    game_alloc_state_t   state;
    char                 match_id[GAME_ALLOC_NAME_MAX + 1];
    char                *json;          /* PUBLISH: the result */
    char                *seated;        /* SET_STATE Playing: or NULL */
} gs_agent_op_t;

struct gs_agent_s {
    pthread_t            thread;
    pthread_mutex_t      lock;
    pthread_cond_t       cond;

    gs_agent_conf_t      conf;
    char                 token[33];

    gs_agent_op_t        ops[GS_AGENT_QUEUE];
    int                  head, n, poke, stop;
    char                *tel[GS_AGENT_TEL_QUEUE];
    int                  tel_n[GS_AGENT_TEL_QUEUE];
    int                  tel_head, tel_count;
    int64_t              stop_deadline;
    char                 held[GAME_ALLOC_NAME_MAX + 1];  /* "" idle */
    int                  leaving;       /* Shutdown or drain was asked */

    gs_agent_view_t      view;

    atomic_llong         tick_ms;       /* the loop's last tick */
    int                  stalled;       /* said so in the log */

    game_alloc_conn_t   *conn;
    redisContext        *raw;           /* for the results stream */
};


/*
 * SET NX on the match's guard key and XADD in one script: a retry after a
 * lost reply finds the guard and adds nothing, so the stream holds one
 * entry per match id whatever happens between us and Redis.
 */
static const char gs_agent_publish_lua[] =
    "if redis.call('SET', KEYS[1], ARGV[2], 'NX', 'EX', ARGV[4]) then\n"
    "  return redis.call('XADD', KEYS[2], 'MAXLEN', '~', '100000', '*',\n"
    "                    'match_id', ARGV[1], 'server_id', ARGV[2],\n"
    "                    'result', ARGV[3])\n"
    "end\n"
    "return false\n";


static int64_t
gs_agent_now_ms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


static void
gs_agent_sleep_ms(int ms)
{
    struct timespec  ts = { ms / 1000, (long) (ms % 1000) * 1000000L };

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) { /* again */ }
}


static void
gs_agent_disconnect(gs_agent_t *a)
{
    game_alloc_close(a->conn);
    a->conn = NULL;
    if (a->raw != NULL) {
        redisFree(a->raw);
        a->raw = NULL;
    }
}


static int
gs_agent_connect(gs_agent_t *a)
{
    struct timeval  tv = { GS_AGENT_TIMEOUT_MS / 1000,
                           (GS_AGENT_TIMEOUT_MS % 1000) * 1000 };
    const char     *why;

    a->conn = game_alloc_connect(a->conf.redis_host, a->conf.redis_port,
                                 a->conf.prefix, GS_AGENT_TIMEOUT_MS);
    if (a->conn == NULL || game_alloc_errstr(a->conn) != NULL) {
        goto failed;
    }

    a->raw = redisConnectWithTimeout(a->conf.redis_host, a->conf.redis_port,
                                     tv);
    if (a->raw == NULL || a->raw->err || redisSetTimeout(a->raw, tv)) {
        goto failed;
    }
    return 0;

failed:
    why = a->conn && game_alloc_errstr(a->conn) ? game_alloc_errstr(a->conn)
          : a->raw ? a->raw->errstr : "out of memory";
    gs_log_event("warn", "redis_unreachable",
                 json_pack("{s:s, s:i, s:o}", "host", a->conf.redis_host,
                           "port", a->conf.redis_port, "error",
                           gs_logline_str(why)),
                 "redis %s:%d unreachable: %s", a->conf.redis_host,
                 a->conf.redis_port, why);
    gs_agent_disconnect(a);
    return -1;
}


static void
gs_agent_free_op(gs_agent_op_t *op)
{
    free(op->json);
    free(op->seated);
}


/* The allocator forgot us: register again once the loop is idle. */
static void
gs_agent_forgotten(gs_agent_t *a, const char *what, game_alloc_status_t st)
{
    gs_log_event("warn", "allocator_forgot",
                 json_pack("{s:s, s:s}", "op", what, "status",
                           game_alloc_status_name(st)),
                 "%s: %s: the allocator forgot this server", what,
                 game_alloc_status_name(st));
    pthread_mutex_lock(&a->lock);
    a->view.registered = 0;
    a->poke = 1;                /* register at once if the loop is idle */
    pthread_mutex_unlock(&a->lock);
}


static void
gs_agent_update_view(gs_agent_t *a, const game_alloc_result_t *res)
{
    pthread_mutex_lock(&a->lock);
    a->view.beats++;
    a->view.state = res->state;
    strcpy(a->view.match_id, res->match_id);
    strcpy(a->view.mode, res->mode);
    a->view.players = res->players;
    if (res->drain && !a->view.drained) {
        a->view.drained = 1;
        gs_log_event("info", "allocator_drained",
                     json_pack("{s:s}", "state",
                               game_alloc_state_name(res->state)),
                     "the allocator marks this server drained (state %s)",
                     game_alloc_state_name(res->state));
    }
    pthread_mutex_unlock(&a->lock);
}


static int
gs_agent_run_set_state(gs_agent_t *a, gs_agent_op_t *op)
{
    game_alloc_result_t   res;
    game_alloc_status_t   st;

    st = game_alloc_set_state(a->conn, a->conf.server.id, a->token,
                              op->state, op->match_id, op->seated, &res);
    switch (st) {

    case GAME_ALLOC_ERROR:
        return -1;

    case GAME_ALLOC_OK:
        if (op->state == GAME_ALLOC_READY && res.state == GAME_ALLOC_READY) {
            gs_log_event("info", "server_ready",
                         json_pack("{s:s, s:s}", "via", "match_end",
                                   "last_match", op->match_id),
                         "Ready again after match %s", op->match_id);
        } else {
            gs_log_event("info", "allocator_state",
                         json_pack("{s:s, s:s, s:s}", "asked",
                                   game_alloc_state_name(op->state),
                                   "state", game_alloc_state_name(res.state),
                                   "match_id", op->match_id),
                         "state %s: %s", game_alloc_state_name(op->state),
                         game_alloc_state_name(res.state));
        }
        /* a drained server's way back to Ready ends in Shutdown */
        if (op->state == GAME_ALLOC_READY
            && res.state == GAME_ALLOC_SHUTDOWN)
        {
            pthread_mutex_lock(&a->lock);
            a->view.drained = 1;
            a->view.state = GAME_ALLOC_SHUTDOWN;
            pthread_mutex_unlock(&a->lock);
        }
        return 0;

    case GAME_ALLOC_EXPIRED:
    case GAME_ALLOC_NOT_FOUND:
        gs_agent_forgotten(a, game_alloc_state_name(op->state), st);
        return 0;

    case GAME_ALLOC_STALE:
        gs_log_event("warn", "allocator_state_stale",
                     json_pack("{s:s, s:s, s:s}", "asked",
                               game_alloc_state_name(op->state), "match_id",
                               op->match_id, "allocator_match",
                               res.match_id),
                     "state %s for match %s: STALE, the allocator has "
                     "match \"%s\"", game_alloc_state_name(op->state),
                     op->match_id, res.match_id);
        return 0;

    default:
        gs_log_event("warn", "allocator_state_refused",
                     json_pack("{s:s, s:s}", "asked",
                               game_alloc_state_name(op->state), "status",
                               game_alloc_status_name(st)),
                     "state %s: %s", game_alloc_state_name(op->state),
                     game_alloc_status_name(st));
        return 0;
    }
}


/* Our own drain, on SIGTERM while idle: Shutdown, or the allocation won. */
static int
gs_agent_run_drain(gs_agent_t *a)
{
    game_alloc_result_t   res;
    game_alloc_status_t   st;

    st = game_alloc_drain(a->conn, a->conf.server.id, &res);
    if (st == GAME_ALLOC_ERROR) {
        return -1;
    }

    pthread_mutex_lock(&a->lock);
    if (st == GAME_ALLOC_BUSY) {
        /* an allocation came first: the next heartbeat shows it */
        a->poke = 1;
    } else {
        a->view.state = GAME_ALLOC_SHUTDOWN;
    }
    pthread_mutex_unlock(&a->lock);

    gs_log_event("info", "allocator_drain",
                 json_pack("{s:s, s:s}", "status", game_alloc_status_name(st),
                           "state", st == GAME_ALLOC_BUSY
                                    ? game_alloc_state_name(res.state)
                                    : "Shutdown"),
                 "drain: %s%s%s", game_alloc_status_name(st),
                 st == GAME_ALLOC_BUSY ? ", keeps its match: " : "",
                 st == GAME_ALLOC_BUSY ? game_alloc_state_name(res.state)
                                       : "");
    return 0;
}


static int
gs_agent_run_publish(gs_agent_t *a, gs_agent_op_t *op)
{
    redisReply  *r;
    char         guard[256], stream[128];

    snprintf(guard, sizeof(guard), "%sresult:%s", a->conf.prefix,
             op->match_id);
    snprintf(stream, sizeof(stream), "%sresults", a->conf.prefix);
    r = redisCommand(a->raw, "EVAL %s 2 %s %s %s %s %s %s",
                     gs_agent_publish_lua, guard, stream, op->match_id,
                     a->conf.server.id, op->json, GS_AGENT_RESULT_TTL);
    if (r == NULL) {
        return -1;
    }

    pthread_mutex_lock(&a->lock);
    if (r->type == REDIS_REPLY_STRING) {
        a->view.published++;
        gs_log_event("info", "result_published",
                     json_pack("{s:s, s:s}", "match_id", op->match_id,
                               "entry", r->str),
                     "result of match %s published as %s", op->match_id,
                     r->str);
    } else if (r->type == REDIS_REPLY_NIL) {
        a->view.duplicates++;
        gs_log_event("warn", "result_duplicate",
                     json_pack("{s:s}", "match_id", op->match_id),
                     "result of match %s was already published",
                     op->match_id);
    } else {
        gs_log_event("error", "result_publish_failed",
                     json_pack("{s:s, s:o}", "match_id", op->match_id,
                               "error", gs_logline_str(
                                   r->type == REDIS_REPLY_ERROR ? r->str
                                                                : "?")),
                     "publishing the result of match %s: %s",
                     op->match_id, r->type == REDIS_REPLY_ERROR ? r->str
                                                                : "?");
    }
    pthread_mutex_unlock(&a->lock);
    freeReplyObject(r);
    return 0;
}


/*
 * A telemetry batch onto its stream, as the backend's writer reads it:
 * s "server:<id>" (who says so: the writer trusts the players it names
 * only because a server holding our Redis credential said it), n, b.
 * Sent again after a lost reply, it is written once: every event has its
 * own id.  0 done, -1 transport failure: retry.
 */
static int
gs_agent_run_telemetry(gs_agent_t *a, const char *json, int n)
{
    redisReply  *r;
    char         source[GAME_ALLOC_NAME_MAX + 16], count[16];

    snprintf(source, sizeof(source), "server:%s", a->conf.server.id);
    snprintf(count, sizeof(count), "%d", n);
    r = redisCommand(a->raw, "XADD %s * s %s n %s b %s", a->conf.tel_stream,
                     source, count, json);
    if (r == NULL) {
        return -1;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        gs_log_event("error", "telemetry_error",
                     json_pack("{s:o}", "error", gs_logline_str(r->str)),
                     "telemetry: %s", r->str);
    }
    pthread_mutex_lock(&a->lock);
    a->view.tel_sent += r->type == REDIS_REPLY_STRING;
    pthread_mutex_unlock(&a->lock);
    freeReplyObject(r);
    return 0;
}


/* what failed is retried, in order, once Redis answers again */
static void
gs_agent_redis_error(gs_agent_t *a, const char *retrying, const char *why)
{
    gs_log_event("warn", "redis_error",
                 json_pack("{s:o, s:s}", "error", gs_logline_str(why),
                           "retrying", retrying),
                 "redis: %s; retrying %s", why, retrying);
}


/* 0 done (whatever Redis said), -1 transport failure: retry */
static int
gs_agent_run_op(gs_agent_t *a, gs_agent_op_t *op)
{
    switch (op->kind) {
    case GS_AGENT_SET_STATE:
        return gs_agent_run_set_state(a, op);
    case GS_AGENT_DRAIN:
        return gs_agent_run_drain(a);
    default:
        return gs_agent_run_publish(a, op);
    }
}


static int
gs_agent_register(gs_agent_t *a)
{
    game_alloc_server_t  s = a->conf.server;
    game_alloc_status_t  st;

    s.token = a->token;
    s.state = GAME_ALLOC_READY;
    st = game_alloc_register(a->conn, &s);
    if (st == GAME_ALLOC_ERROR) {
        return -1;
    }
    if (st != GAME_ALLOC_OK) {
        gs_log_event("error", "register_failed",
                     json_pack("{s:s}", "status", game_alloc_status_name(st)),
                     "register %s: %s", s.id, game_alloc_status_name(st));
        return 1;
    }
    gs_log_event("info", "server_ready",
                 json_pack("{s:s, s:s, s:i, s:s, s:s}", "via", "register",
                           "addr", s.addr, "port", s.port, "region", s.region,
                           "mode", s.mode),
                 "registered %s at %s:%d region %s mode %s: Ready", s.id,
                 s.addr, s.port, s.region, s.mode);
    pthread_mutex_lock(&a->lock);
    a->view.registered = 1;
    a->view.state = GAME_ALLOC_READY;
    a->view.match_id[0] = '\0';
    a->view.players = 0;
    pthread_mutex_unlock(&a->lock);
    return 0;
}


/*
 * A heartbeat proves that the tick loop lives, not only this thread: while
 * the loop is silent the key is left to lapse, and a hung server goes dead
 * in the allocator.  One log line when that starts, one when it ends.
 */
static int
gs_agent_loop_alive(gs_agent_t *a, int64_t now)
{
    int64_t  silent;

    silent = now - (int64_t) atomic_load_explicit(&a->tick_ms,
                                                  memory_order_relaxed);
    if (silent > GS_AGENT_STALL_MS) {
        if (!a->stalled) {
            a->stalled = 1;
            gs_log_event("error", "tick_loop_stalled",
                         json_pack("{s:I}", "silent_ms", (json_int_t) silent),
                         "tick loop silent for %lld ms: heartbeat withheld",
                         (long long) silent);
        }
        return 0;
    }

    if (a->stalled) {
        a->stalled = 0;
        gs_log_event("info", "tick_loop_resumed", NULL,
                     "tick loop back: heartbeat resumes");
    }
    return 1;
}


/* A beat; -1 when the connection failed. */
static int
gs_agent_beat(gs_agent_t *a)
{
    game_alloc_result_t   res;
    game_alloc_status_t   st;

    st = game_alloc_heartbeat(a->conn, a->conf.server.id, a->token, &res);

    if (st == GAME_ALLOC_OK) {
        gs_agent_update_view(a, &res);
        return 0;
    }

    if (st == GAME_ALLOC_ERROR) {
        gs_log_event("warn", "heartbeat_failed",
                     json_pack("{s:o}", "error", gs_logline_str(
                         game_alloc_errstr(a->conn)
                         ? game_alloc_errstr(a->conn) : "error")),
                     "heartbeat: %s",
                     game_alloc_errstr(a->conn) ? game_alloc_errstr(a->conn)
                                                : "error");
        return -1;
    }

    gs_agent_forgotten(a, "heartbeat", st);
    return 0;
}


static void *
gs_agent_main(void *arg)
{
    gs_agent_t           *a = arg;
    gs_agent_op_t         op;
    game_alloc_status_t   st;
    int64_t               next_beat = 0, now;
    int                   have_op, stopping, poke, registered, rc;
    int                   have_tel, tel_n = 0;
    char                 *tel = NULL;
    int                   may_register;
    struct timespec       until;

    for ( ;; ) {
        pthread_mutex_lock(&a->lock);
        for ( ;; ) {
            now = gs_agent_now_ms();
            if (a->stop || a->n > 0 || a->tel_count > 0 || a->poke
                || now >= next_beat)
            {
                break;
            }
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_nsec += (long) (next_beat - now) * 1000000L;
            until.tv_sec += until.tv_nsec / 1000000000L;
            until.tv_nsec %= 1000000000L;
            pthread_cond_timedwait(&a->cond, &a->lock, &until);
        }
        stopping = a->stop;
        have_op = a->n > 0;
        if (have_op) {
            op = a->ops[a->head];
        }
        /* telemetry goes when the allocator's operations are done */
        have_tel = !have_op && a->tel_count > 0;
        if (have_tel) {
            tel = a->tel[a->tel_head];
            tel_n = a->tel_n[a->tel_head];
        }
        poke = a->poke;
        a->poke = 0;
        registered = a->view.registered;
        /* idle, nothing of the last match left to run, still in service */
        may_register = a->held[0] == '\0' && a->n == 0 && !a->leaving
                       && !a->view.drained;
        pthread_mutex_unlock(&a->lock);

        if (stopping && now > a->stop_deadline) {
            gs_log_event("warn", "allocator_work_dropped", NULL,
                         "allocator work left undone at exit");
            break;
        }

        if (a->conn == NULL && gs_agent_connect(a) != 0) {
            gs_agent_sleep_ms(GS_AGENT_RETRY_MS);
            continue;
        }

        if (!registered && !stopping && may_register
            && gs_agent_loop_alive(a, now))
        {
            rc = gs_agent_register(a);
            if (rc != 0) {
                if (rc < 0) {
                    gs_agent_disconnect(a);
                }
                gs_agent_sleep_ms(GS_AGENT_RETRY_MS);
                continue;
            }
            registered = 1;
            next_beat = 0;
        }

        if (have_op) {
            if (gs_agent_run_op(a, &op) != 0) {
                gs_agent_redis_error(a, "allocator",
                                     a->raw && a->raw->err ? a->raw->errstr
                                     : game_alloc_errstr(a->conn)
                                     ? game_alloc_errstr(a->conn) : "error");
                gs_agent_disconnect(a);
                gs_agent_sleep_ms(GS_AGENT_RETRY_MS);
                continue;
            }
            /* a poke the op left (forgotten: register; drain BUSY: beat)
             * stays set, so the next round starts at once */
            gs_agent_free_op(&op);
            pthread_mutex_lock(&a->lock);
            a->head = (a->head + 1) % GS_AGENT_QUEUE;
            a->n--;
            a->view.pending = a->n;
            registered = a->view.registered;
            pthread_mutex_unlock(&a->lock);
        }

        if (have_tel) {
            if (gs_agent_run_telemetry(a, tel, tel_n) != 0) {
                gs_agent_redis_error(a, "telemetry",
                                     a->raw && a->raw->err ? a->raw->errstr
                                                           : "error");
                gs_agent_disconnect(a);
                gs_agent_sleep_ms(GS_AGENT_RETRY_MS);
                continue;
            }
            pthread_mutex_lock(&a->lock);
            free(a->tel[a->tel_head]);
            a->tel[a->tel_head] = NULL;
            a->tel_head = (a->tel_head + 1) % GS_AGENT_TEL_QUEUE;
            a->tel_count--;
            pthread_mutex_unlock(&a->lock);
        }

        /* the clock moves on even when there is nothing to send, so that
         * an unregistered agent waits instead of spinning */
        now = gs_agent_now_ms();
        if (poke || now >= next_beat) {
            next_beat = now + GS_AGENT_BEAT_MS;
            if (registered && !gs_agent_loop_alive(a, now)) {
                next_beat = now + GS_AGENT_RETRY_MS;
            } else if (registered && gs_agent_beat(a) != 0) {
                gs_agent_disconnect(a);
                continue;
            }
        }

        if (stopping && !have_op) {
            pthread_mutex_lock(&a->lock);
            have_op = a->n > 0 || a->tel_count > 0;
            pthread_mutex_unlock(&a->lock);
            if (!have_op) {
                st = game_alloc_deregister(a->conn, a->conf.server.id,
                                           a->token);
                if (st == GAME_ALLOC_ERROR) {
                    gs_agent_disconnect(a);
                    continue;
                }
                gs_log_event("info", "server_deregistered",
                             json_pack("{s:s}", "status",
                                       game_alloc_status_name(st)),
                             "deregistered: %s", game_alloc_status_name(st));
                break;
            }
        }
    }

    gs_agent_disconnect(a);
    return NULL;
}


gs_agent_t *
gs_agent_start(const gs_agent_conf_t *conf)
{
    gs_agent_t     *a;
    unsigned char   rnd[16];
    FILE           *f;
    int             i;

    a = calloc(1, sizeof(gs_agent_t));
    if (a == NULL) {
        return NULL;
    }
    a->conf = *conf;
    a->view.state = GAME_ALLOC_STARTING;
    /* the loop starts right after us: count its silence from now */
    atomic_init(&a->tick_ms, gs_agent_now_ms());

    /* the token proves ownership of the record: make it unguessable */
    f = fopen("/dev/urandom", "r");
    if (f == NULL || fread(rnd, 1, sizeof(rnd), f) != sizeof(rnd)) {
        if (f) fclose(f);
        free(a);
        return NULL;
    }
    fclose(f);
    for (i = 0; i < 16; i++) {
        snprintf(a->token + 2 * i, 3, "%02x", rnd[i]);
    }

    pthread_mutex_init(&a->lock, NULL);
    pthread_cond_init(&a->cond, NULL);
    if (pthread_create(&a->thread, NULL, gs_agent_main, a) != 0) {
        free(a);
        return NULL;
    }
    return a;
}


void
gs_agent_view(gs_agent_t *a, gs_agent_view_t *v)
{
    pthread_mutex_lock(&a->lock);
    *v = a->view;
    pthread_mutex_unlock(&a->lock);
}


void
gs_agent_poke(gs_agent_t *a)
{
    pthread_mutex_lock(&a->lock);
    a->poke = 1;
    pthread_cond_signal(&a->cond);
    pthread_mutex_unlock(&a->lock);
}


void
gs_agent_tick(gs_agent_t *a, int64_t now_ms)
{
    atomic_store_explicit(&a->tick_ms, now_ms, memory_order_relaxed);
}


int
gs_agent_take(gs_agent_t *a, const char *match_id)
{
    int  ok;

    pthread_mutex_lock(&a->lock);
    ok = a->view.registered && a->view.state == GAME_ALLOC_ALLOCATED
         && strcmp(a->view.match_id, match_id) == 0;
    if (ok) {
        snprintf(a->held, sizeof(a->held), "%s", match_id);
    }
    pthread_mutex_unlock(&a->lock);

    return ok;
}


void
gs_agent_release(gs_agent_t *a)
{
    pthread_mutex_lock(&a->lock);
    a->held[0] = '\0';
    if (!a->view.registered) {
        a->poke = 1;            /* the wait for registering is over */
    }
    pthread_cond_signal(&a->cond);
    pthread_mutex_unlock(&a->lock);
}


static void
gs_agent_push(gs_agent_t *a, gs_agent_op_t *op)
{
    pthread_mutex_lock(&a->lock);
    if (a->n == GS_AGENT_QUEUE) {
        /* cannot happen at a few operations per match; never block */
        gs_log_event("error", "allocator_queue_full", NULL,
                     "allocator queue full, operation dropped");
        gs_agent_free_op(op);
    } else {
        a->ops[(a->head + a->n) % GS_AGENT_QUEUE] = *op;
        a->n++;
        a->view.pending = a->n;
        if (op->kind == GS_AGENT_DRAIN
            || (op->kind == GS_AGENT_SET_STATE
                && op->state == GAME_ALLOC_SHUTDOWN))
        {
            a->leaving = 1;
        }
        pthread_cond_signal(&a->cond);
    }
    pthread_mutex_unlock(&a->lock);
}


void
gs_agent_set_state(gs_agent_t *a, game_alloc_state_t to,
    const char *match_id, const char *seated)
{
    gs_agent_op_t  op;

    memset(&op, 0, sizeof(op));
    op.kind = GS_AGENT_SET_STATE;
    op.state = to;
    snprintf(op.match_id, sizeof(op.match_id), "%s", match_id);
    if (seated != NULL && (op.seated = strdup(seated)) == NULL) {
        gs_log_event("error", "out_of_memory",
                     json_pack("{s:s}", "what", "seated list"),
                     "out of memory: state %s without its seated list",
                     game_alloc_state_name(to));
    }
    gs_agent_push(a, &op);
}


void
gs_agent_drain(gs_agent_t *a)
{
    gs_agent_op_t  op;

    memset(&op, 0, sizeof(op));
    op.kind = GS_AGENT_DRAIN;
    gs_agent_push(a, &op);
}


void
gs_agent_publish(gs_agent_t *a, const char *match_id, char *json)
{
    gs_agent_op_t  op;

    memset(&op, 0, sizeof(op));
    op.kind = GS_AGENT_PUBLISH;
    snprintf(op.match_id, sizeof(op.match_id), "%s", match_id);
    op.json = json;
    gs_agent_push(a, &op);
}


void
gs_agent_telemetry(gs_agent_t *a, char *json, int n)
{
    pthread_mutex_lock(&a->lock);
    if (a->conf.tel_stream == NULL || a->tel_count == GS_AGENT_TEL_QUEUE) {
        if (a->conf.tel_stream != NULL) {
            a->view.tel_dropped++;
            if ((a->view.tel_dropped & (a->view.tel_dropped - 1)) == 0) {
                gs_log_event("warn", "telemetry_dropped",
                             json_pack("{s:I}", "batches",
                                       (json_int_t) a->view.tel_dropped),
                             "telemetry queue full: %llu batches dropped",
                             (unsigned long long) a->view.tel_dropped);
            }
        }
        free(json);
    } else {
        a->tel[(a->tel_head + a->tel_count) % GS_AGENT_TEL_QUEUE] = json;
        a->tel_n[(a->tel_head + a->tel_count) % GS_AGENT_TEL_QUEUE] = n;
        a->tel_count++;
        pthread_cond_signal(&a->cond);
    }
    pthread_mutex_unlock(&a->lock);
}


void
gs_agent_stop(gs_agent_t *a, int timeout_ms)
{
    pthread_mutex_lock(&a->lock);
    a->stop = 1;
    a->stop_deadline = gs_agent_now_ms() + timeout_ms;
    pthread_cond_signal(&a->cond);
    pthread_mutex_unlock(&a->lock);

    pthread_join(a->thread, NULL);
    while (a->n > 0) {
        gs_agent_free_op(&a->ops[a->head]);
        a->head = (a->head + 1) % GS_AGENT_QUEUE;
        a->n--;
    }
    while (a->tel_count > 0) {
        free(a->tel[a->tel_head]);
        a->tel_head = (a->tel_head + 1) % GS_AGENT_TEL_QUEUE;
        a->tel_count--;
    }
    gs_agent_disconnect(a);
    pthread_mutex_destroy(&a->lock);
    pthread_cond_destroy(&a->cond);
    free(a);
}
