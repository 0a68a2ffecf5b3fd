/*
 * game_alloc_bench.c: how fast is allocation, next to doing nothing?
 *
 * Concurrency is threads, one blocking hiredis connection each, so that
 * every request is a real round trip like a matchmaker's.  Two phases run
 * against the same Redis in one go:
 *
 *   allocate          each worker sends, in one pipelined round trip, the
 *                     release of the server it got last time (set_state
 *                     Finished, then Ready) followed by its next allocate.
 *                     A small fleet thus serves any number of requests,
 *                     at one round trip per allocation like the baseline,
 *                     while Redis runs three scripts per round trip: the
 *                     figures are a lower bound for allocate alone.
 *   evalsha_baseline  each worker sends EVALSHA of "return 1": the floor
 *                     set by the network, hiredis and the script engine.
 *
 * Output, one line per phase: NAME REQ_PER_S P99_MS.  Keys live under
 * PREFIX "bench:" PID ":" and are removed at the end.
 *
 * The workers also check that no server is held by two of them at once.
 * The window they can watch is short (reply to next send), so this is a
 * smoke test; the integration tests prove exclusivity.
 */

#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "game_alloc.h"
#include "game_alloc_bench.h"


#define GAME_ALLOC_BENCH_PER_HOST  4
#define GAME_ALLOC_BENCH_TOKEN     "bench-token"
#define GAME_ALLOC_BENCH_LABEL     "bench"

static const char game_alloc_bench_nop[] = "return 1";

typedef struct {
    const game_alloc_bench_conf_t  *conf;
    char                            prefix[GAME_ALLOC_NAME_MAX + 1];
    char                            nop_sha[41];
    atomic_int                     *held;
    atomic_int                      violations;
} game_alloc_bench_t;

typedef struct {
    game_alloc_bench_t  *bench;
    pthread_t            thread;
    int                  index, n, done, no_server, errors, baseline;
    int                  prev;              /* server to release, or -1 */
    char                 prev_match[48];    /* and the match it holds */
    int                  started;
    double              *lat;               /* milliseconds */
} game_alloc_bench_worker_t;


static double
game_alloc_bench_now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}


static redisContext *
game_alloc_bench_redis(const game_alloc_bench_conf_t *conf)
{
    struct timeval   tv;
    redisContext    *rc;

    tv.tv_sec = conf->timeout_ms / 1000;
    tv.tv_usec = (conf->timeout_ms % 1000) * 1000;

    rc = redisConnectWithTimeout(conf->host, conf->port, tv);

    if (rc == NULL || rc->err) {
        fprintf(stderr, "bench: redis %s:%d: %s\n", conf->host, conf->port,
                rc ? rc->errstr : "out of memory");
        if (rc) {
            redisFree(rc);
        }
        return NULL;
    }

    redisSetTimeout(rc, tv);

    return rc;
}


static void
game_alloc_bench_server_id(char *buf, size_t size, int i)
{
    snprintf(buf, size, "s%05d", i);
}


/* Queues Finished then Ready for the server this worker got last. */
static int
game_alloc_bench_release(game_alloc_bench_worker_t *w, redisContext *rc)
{
    char                id[16];
    game_alloc_argv_t   a;
    game_alloc_state_t  to[2] = { GAME_ALLOC_FINISHED, GAME_ALLOC_READY };
    int                 i;

    game_alloc_bench_server_id(id, sizeof(id), w->prev);

    /* from here on another worker may legitimately get it */
    atomic_store(&w->bench->held[w->prev], 0);

    for (i = 0; i < 2; i++) {
        if (game_alloc_argv_set_state(&a, w->bench->prefix, id,
                                      GAME_ALLOC_BENCH_TOKEN, to[i],
                                      w->prev_match, NULL)
            != GAME_ALLOC_OK
            || redisAppendCommandArgv(rc, a.argc, a.argv, a.argvlen)
               != REDIS_OK)
        {
            return -1;
        }
    }

    return 0;
}


static int
game_alloc_bench_released(redisContext *rc)
{
    int                   i, rv;
    redisReply           *r;
    game_alloc_result_t   res;

    rv = 0;

    for (i = 0; i < 2; i++) {
        if (redisGetReply(rc, (void **) &r) != REDIS_OK) {
            return -1;
        }

        if (game_alloc_parse_reply(GAME_ALLOC_SET_STATE, r, &res)
            != GAME_ALLOC_OK)
        {
            rv = -1;
        }

        freeReplyObject(r);
    }

    return rv;
}


/* One round trip: release the previous server, allocate the next. */
static int
game_alloc_bench_allocate_one(game_alloc_bench_worker_t *w, redisContext *rc,
    int i)
{
    int                    releasing;
    char                   match[48];
    redisReply            *r;
    game_alloc_argv_t      a;
    game_alloc_request_t   req;
    game_alloc_result_t    res;
    game_alloc_status_t    status;

    snprintf(match, sizeof(match), "m%d-%d", w->index, i);

    req.region = GAME_ALLOC_BENCH_LABEL;
    req.mode = GAME_ALLOC_BENCH_LABEL;
    req.build = NULL;
    req.match_id = match;
    req.players = 2;

    releasing = w->prev >= 0;

    if ((releasing && game_alloc_bench_release(w, rc) != 0)
        || game_alloc_argv_allocate(&a, w->bench->prefix, &req)
           != GAME_ALLOC_OK
        || redisAppendCommandArgv(rc, a.argc, a.argv, a.argvlen) != REDIS_OK
        || (releasing && game_alloc_bench_released(rc) != 0)
        || redisGetReply(rc, (void **) &r) != REDIS_OK)
    {
        return -1;
    }

    w->prev = -1;
    status = game_alloc_parse_reply(GAME_ALLOC_ALLOCATE, r, &res);
    freeReplyObject(r);

    if (status == GAME_ALLOC_NO_SERVER) {
        w->no_server++;
        return 0;
    }

    if (status != GAME_ALLOC_OK || res.existing) {
        return -1;
    }

    w->prev = atoi(res.server_id + 1);
    snprintf(w->prev_match, sizeof(w->prev_match), "%s", match);

    if (w->prev < 0 || w->prev >= w->bench->conf->servers) {
        return -1;
    }

    if (atomic_exchange(&w->bench->held[w->prev], 1) != 0) {
        atomic_fetch_add(&w->bench->violations, 1);
    }

    return 0;
}


static int
game_alloc_bench_nop_one(game_alloc_bench_worker_t *w, redisContext *rc)
{
    int          ok;
    redisReply  *r;

    r = redisCommand(rc, "EVALSHA %s 0", w->bench->nop_sha);
    if (r == NULL) {
        return -1;
    }

    ok = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
    freeReplyObject(r);

    return ok ? 0 : -1;
}


static void *
game_alloc_bench_worker(void *data)
{
    int                         i, rv;
    double                      t0;
    redisContext               *rc;
    game_alloc_bench_worker_t  *w = data;

    rc = game_alloc_bench_redis(w->bench->conf);
    if (rc == NULL) {
        w->errors = w->n;
        return NULL;
    }

    w->prev = -1;

    for (i = 0; i < w->n; i++) {
        t0 = game_alloc_bench_now();

        rv = w->baseline ? game_alloc_bench_nop_one(w, rc)
                         : game_alloc_bench_allocate_one(w, rc, i);

        if (rv != 0) {
            w->errors++;
            if (rc->err) {
                break;
            }
            continue;
        }

        w->lat[w->done++] = game_alloc_bench_now() - t0;
    }

    /* hand the last server back so that cleanup finds the fleet idle */
    if (w->prev >= 0 && !rc->err
        && (game_alloc_bench_release(w, rc) != 0
            || game_alloc_bench_released(rc) != 0))
    {
        w->errors++;
    }

    redisFree(rc);

    return NULL;
}


static int
game_alloc_bench_cmp(const void *one, const void *two)
{
    double  a = *(const double *) one, b = *(const double *) two;

    return (a > b) - (a < b);
}


/* Runs one phase and prints its line; returns the number of errors. */
static int
game_alloc_bench_phase(game_alloc_bench_t *b, const char *name, int baseline)
{
    int                         i, n, errors, no_server;
    double                      t0, elapsed, p99, *all;
    game_alloc_bench_worker_t  *w;
    const game_alloc_bench_conf_t  *conf = b->conf;

    w = calloc(conf->concurrency, sizeof(game_alloc_bench_worker_t));
    all = malloc(sizeof(double) * conf->requests);

    if (w == NULL || all == NULL) {
        free(w);
        free(all);
        return 1;
    }

    for (i = 0; i < conf->concurrency; i++) {
        w[i].bench = b;
        w[i].index = i;
        w[i].baseline = baseline;
        w[i].n = conf->requests / conf->concurrency
                 + (i < conf->requests % conf->concurrency);
        w[i].lat = malloc(sizeof(double) * (w[i].n + 1));
    }

    t0 = game_alloc_bench_now();

    for (i = 0; i < conf->concurrency; i++) {
        w[i].started = w[i].lat != NULL
                       && pthread_create(&w[i].thread, NULL,
                                         game_alloc_bench_worker, &w[i]) == 0;
    }

    n = errors = no_server = 0;

    for (i = 0; i < conf->concurrency; i++) {
        if (!w[i].started) {
            errors += w[i].n;
            free(w[i].lat);
            continue;
        }

        pthread_join(w[i].thread, NULL);
        memcpy(all + n, w[i].lat, sizeof(double) * w[i].done);
        n += w[i].done;
        errors += w[i].errors;
        no_server += w[i].no_server;
        free(w[i].lat);
    }

    elapsed = game_alloc_bench_now() - t0;

    qsort(all, n, sizeof(double), game_alloc_bench_cmp);
    p99 = n ? all[(int) ceil(n * 0.99) - 1] : 0;

    printf("%s %.1f %.3f\n", name, n ? n / (elapsed / 1e3) : 0.0, p99);
    fflush(stdout);

    fprintf(stderr, "# %s: %d replies, %d no_server, %d errors in %.0f ms\n",
            name, n, no_server, errors, elapsed);

    /* while each worker holds at most one server, the fleet never runs dry */
    if (!baseline && no_server && conf->concurrency <= conf->servers) {
        fprintf(stderr, "bench: NO_SERVER with a fleet larger than the"
                " number of workers: servers leak\n");
        errors++;
    }

    free(w);
    free(all);

    return errors;
}


static int
game_alloc_bench_setup(game_alloc_bench_t *b, game_alloc_conn_t *c,
    redisContext *rc)
{
    int                   i;
    char                  id[16], host[16];
    redisReply           *r;
    game_alloc_server_t   s;

    /* scripts first, so that no worker takes the NOSCRIPT detour */
    for (i = 0; i < GAME_ALLOC_NSCRIPTS; i++) {
        r = redisCommand(rc, "SCRIPT LOAD %b", game_alloc_scripts[i].text,
                         game_alloc_scripts[i].len);

        if (r == NULL || r->type != REDIS_REPLY_STRING
            || strcmp(r->str, game_alloc_scripts[i].sha1) != 0)
        {
            fprintf(stderr, "bench: SCRIPT LOAD %s: sha1 differs\n",
                    game_alloc_scripts[i].name);
            if (r) {
                freeReplyObject(r);
            }
            return -1;
        }

        freeReplyObject(r);
    }

    r = redisCommand(rc, "SCRIPT LOAD %s", game_alloc_bench_nop);
    if (r == NULL || r->type != REDIS_REPLY_STRING || r->len != 40) {
        fprintf(stderr, "bench: cannot load the baseline script\n");
        if (r) {
            freeReplyObject(r);
        }
        return -1;
    }

    memcpy(b->nop_sha, r->str, 41);
    freeReplyObject(r);

    memset(&s, 0, sizeof(s));
    s.id = id;
    s.token = GAME_ALLOC_BENCH_TOKEN;
    s.addr = "127.0.0.1";
    s.host = host;
    s.region = GAME_ALLOC_BENCH_LABEL;
    s.mode = GAME_ALLOC_BENCH_LABEL;
    s.capacity = 16;
    s.state = GAME_ALLOC_READY;
    s.ttl_ms = 600000;      /* no heartbeats during the run */

    for (i = 0; i < b->conf->servers; i++) {
        game_alloc_bench_server_id(id, sizeof(id), i);
        snprintf(host, sizeof(host), "h%d", i / GAME_ALLOC_BENCH_PER_HOST);
        s.port = 20000 + i % 40000;

        if (game_alloc_register(c, &s) != GAME_ALLOC_OK) {
            fprintf(stderr, "bench: register %s: %s\n", id,
                    game_alloc_errstr(c) ? game_alloc_errstr(c) : "refused");
            return -1;
        }
    }

    return 0;
}


/*
 * Deregisters the fleet, then sweeps what the scripts leave behind on
 * purpose (match tombstones).  The sweep may SCAN by pattern because the
 * prefix carries our pid: nobody else writes under it.
 */
static int
game_alloc_bench_cleanup(game_alloc_bench_t *b, game_alloc_conn_t *c,
    redisContext *rc)
{
    int          i, rv;
    char         id[16], pattern[2 * GAME_ALLOC_NAME_MAX + 2], *p;
    const char  *q;
    size_t       j;
    redisReply  *r;
    long long    cursor;

    rv = 0;

    for (i = 0; i < b->conf->servers; i++) {
        game_alloc_bench_server_id(id, sizeof(id), i);
        game_alloc_deregister(c, id, GAME_ALLOC_BENCH_TOKEN);
    }

    for (p = pattern, q = b->prefix; *q; q++) {
        if (strchr("*?[]\\", *q)) {
            *p++ = '\\';
        }
        *p++ = *q;
    }
    *p++ = '*';
    *p = '\0';

    cursor = 0;

    do {
        r = redisCommand(rc, "SCAN %lld MATCH %s COUNT 1000", cursor,
                         pattern);

        if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
            fprintf(stderr, "bench: cleanup: SCAN failed\n");
            rv = -1;
            break;
        }

        cursor = strtoll(r->element[0]->str, NULL, 10);

        for (j = 0; j < r->element[1]->elements; j++) {
            freeReplyObject(redisCommand(rc, "DEL %b",
                                         r->element[1]->element[j]->str,
                                         r->element[1]->element[j]->len));
        }

        freeReplyObject(r);

    } while (cursor != 0);

    return rv;
}


int
game_alloc_bench(const game_alloc_bench_conf_t *conf)
{
    int                  errors, i;
    redisContext        *rc;
    game_alloc_conn_t   *c;
    game_alloc_bench_t   b;

    memset(&b, 0, sizeof(b));
    b.conf = conf;

    if (snprintf(b.prefix, sizeof(b.prefix), "%sbench:%d:", conf->prefix,
                 (int) getpid()) >= (int) sizeof(b.prefix))
    {
        fprintf(stderr, "bench: prefix too long\n");
        return -1;
    }

    b.held = calloc(conf->servers, sizeof(atomic_int));
    if (b.held == NULL) {
        return -1;
    }

    for (i = 0; i < conf->servers; i++) {
        atomic_init(&b.held[i], 0);
    }

    atomic_init(&b.violations, 0);

    rc = game_alloc_bench_redis(conf);
    c = game_alloc_connect(conf->host, conf->port, b.prefix, conf->timeout_ms);

    if (rc == NULL || c == NULL || game_alloc_errstr(c)) {
        if (c && game_alloc_errstr(c)) {
            fprintf(stderr, "bench: %s\n", game_alloc_errstr(c));
        }
        errors = 1;
        goto done;
    }

    fprintf(stderr, "# bench: %d servers, %d requests, %d threads with one"
            " connection each, prefix %s\n", conf->servers, conf->requests,
            conf->concurrency, b.prefix);

    errors = game_alloc_bench_setup(&b, c, rc) != 0;

    if (errors == 0) {
        errors += game_alloc_bench_phase(&b, "allocate", 0);
        errors += game_alloc_bench_phase(&b, "evalsha_baseline", 1);
    }

    if (atomic_load(&b.violations)) {
        fprintf(stderr, "bench: %d servers held by two workers at once\n",
                atomic_load(&b.violations));
        errors++;
    }

    errors += game_alloc_bench_cleanup(&b, c, rc) != 0;

done:

    if (rc) {
        redisFree(rc);
    }

    game_alloc_close(c);
    free(b.held);

    return errors ? -1 : 0;
}
