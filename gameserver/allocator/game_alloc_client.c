/*
 * game_alloc_client.c: the blocking client on hiredis' sync API.
 *
 * It serves processes that may wait on Redis: a game server's heartbeat
 * thread, the fleet manager, the CLI.  nginx workers must not use it;
 * they drive the same builders and parsers from their async pool.
 *
 * A connection is used by one thread at a time.  After an I/O error
 * hiredis cannot tell which replies are still in flight, so the
 * connection stays failed and the caller reconnects.
 */

#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>

#include "game_alloc.h"


#define GAME_ALLOC_REPLY_MAX  16

struct game_alloc_conn_s {
    redisContext  *redis;
    char           prefix[GAME_ALLOC_NAME_MAX + 1];
    char           err[160];
};


game_alloc_conn_t *
game_alloc_connect(const char *host, int port, const char *prefix,
    int timeout_ms)
{
    struct timeval      tv;
    game_alloc_conn_t  *c;

    c = calloc(1, sizeof(game_alloc_conn_t));
    if (c == NULL) {
        return NULL;
    }

    if (prefix == NULL) {
        prefix = "game:";
    }

    if (strlen(prefix) > GAME_ALLOC_NAME_MAX) {
        snprintf(c->err, sizeof(c->err), "prefix too long");
        return c;
    }

    strcpy(c->prefix, prefix);

    tv.tv_sec = timeout_ms / 1000;
    tv.tv_usec = (timeout_ms % 1000) * 1000;

    c->redis = redisConnectWithTimeout(host, port, tv);

    if (c->redis == NULL) {
        snprintf(c->err, sizeof(c->err), "out of memory");

    } else if (c->redis->err) {
        snprintf(c->err, sizeof(c->err), "redis %s:%d: %s", host, port,
                 c->redis->errstr);

    } else if (redisSetTimeout(c->redis, tv) != REDIS_OK) {
        snprintf(c->err, sizeof(c->err), "redis: cannot set timeout");
    }

    return c;
}


const char *
game_alloc_errstr(game_alloc_conn_t *c)
{
    return c->err[0] ? c->err : NULL;
}


void
game_alloc_close(game_alloc_conn_t *c)
{
    if (c == NULL) {
        return;
    }

    if (c->redis) {
        redisFree(c->redis);
    }

    free(c);
}


game_alloc_status_t
game_alloc_parse_reply(game_alloc_script_e script, const struct redisReply *r,
    game_alloc_result_t *res)
{
    size_t            i;
    game_alloc_str_t  elts[GAME_ALLOC_REPLY_MAX];

    /* an empty array makes the parser reset res and report an error */
    if (r == NULL || r->type != REDIS_REPLY_ARRAY
        || r->elements > GAME_ALLOC_REPLY_MAX)
    {
        return game_alloc_parse(script, NULL, 0, res);
    }

    for (i = 0; i < r->elements; i++) {
        if (r->element[i]->type != REDIS_REPLY_STRING
            && r->element[i]->type != REDIS_REPLY_STATUS)
        {
            return game_alloc_parse(script, NULL, 0, res);
        }

        elts[i].data = r->element[i]->str;
        elts[i].len = r->element[i]->len;
    }

    return game_alloc_parse(script, elts, r->elements, res);
}


static game_alloc_status_t
game_alloc_fail(game_alloc_conn_t *c, const char *what, const char *detail)
{
    snprintf(c->err, sizeof(c->err), "%s: %s", what, detail);
    return GAME_ALLOC_ERROR;
}


/*
 * Runs a script by its SHA1 and, if this Redis has not seen it yet,
 * by its text.
 */
static game_alloc_status_t
game_alloc_run(game_alloc_conn_t *c, game_alloc_argv_t *a,
    game_alloc_result_t *res)
{
    redisReply           *r;
    game_alloc_result_t   scratch;
    game_alloc_status_t   status;
    const char           *name;

    name = game_alloc_scripts[a->script].name;

    if (c->redis == NULL || c->redis->err) {
        return GAME_ALLOC_ERROR;    /* c->err says why */
    }

    c->err[0] = '\0';

    r = redisCommandArgv(c->redis, a->argc, a->argv, a->argvlen);

    if (r && r->type == REDIS_REPLY_ERROR
        && game_alloc_is_noscript(r->str, r->len))
    {
        freeReplyObject(r);
        game_alloc_argv_eval(a);
        r = redisCommandArgv(c->redis, a->argc, a->argv, a->argvlen);
    }

    if (r == NULL) {
        return game_alloc_fail(c, name, c->redis->errstr);
    }

    if (r->type == REDIS_REPLY_ERROR) {
        game_alloc_fail(c, name, r->str);
        freeReplyObject(r);
        return GAME_ALLOC_ERROR;
    }

    status = game_alloc_parse_reply(a->script, r, res ? res : &scratch);

    if (status == GAME_ALLOC_ERROR) {
        game_alloc_fail(c, name, "unexpected reply");
    }

    freeReplyObject(r);

    return status;
}


game_alloc_status_t
game_alloc_register(game_alloc_conn_t *c, const game_alloc_server_t *s)
{
    game_alloc_argv_t  a;

    if (game_alloc_argv_register(&a, c->prefix, s) != GAME_ALLOC_OK) {
        return GAME_ALLOC_BAD_ARG;
    }

    return game_alloc_run(c, &a, NULL);
}


game_alloc_status_t
game_alloc_heartbeat(game_alloc_conn_t *c, const char *id, const char *token,
    game_alloc_result_t *res)
{
    game_alloc_argv_t  a;

    if (game_alloc_argv_heartbeat(&a, c->prefix, id, token) != GAME_ALLOC_OK) {
        return GAME_ALLOC_BAD_ARG;
    }

    return game_alloc_run(c, &a, res);
}


game_alloc_status_t
game_alloc_allocate(game_alloc_conn_t *c, const game_alloc_request_t *r,
    game_alloc_result_t *res)
{
    game_alloc_argv_t  a;

    if (game_alloc_argv_allocate(&a, c->prefix, r) != GAME_ALLOC_OK) {
        return GAME_ALLOC_BAD_ARG;
    }

    return game_alloc_run(c, &a, res);
}


game_alloc_status_t
game_alloc_set_state(game_alloc_conn_t *c, const char *id, const char *token,
    game_alloc_state_t to, const char *match_id, const char *seated,
    game_alloc_result_t *res)
{
    game_alloc_argv_t  a;

    if (game_alloc_argv_set_state(&a, c->prefix, id, token, to, match_id,
                                  seated)
        != GAME_ALLOC_OK)
    {
        return GAME_ALLOC_BAD_ARG;
    }

    return game_alloc_run(c, &a, res);
}


game_alloc_status_t
game_alloc_deregister(game_alloc_conn_t *c, const char *id, const char *token)
{
    game_alloc_argv_t  a;

    if (game_alloc_argv_deregister(&a, c->prefix, id, token) != GAME_ALLOC_OK) {
        return GAME_ALLOC_BAD_ARG;
    }

    return game_alloc_run(c, &a, NULL);
}


game_alloc_status_t
game_alloc_reap(game_alloc_conn_t *c, int grace_ms, int *reaped)
{
    game_alloc_argv_t     a;
    game_alloc_result_t   res;
    game_alloc_status_t   status;

    if (game_alloc_argv_reap(&a, c->prefix, grace_ms) != GAME_ALLOC_OK) {
        return GAME_ALLOC_BAD_ARG;
    }

    status = game_alloc_run(c, &a, &res);

    if (reaped) {
        *reaped = status == GAME_ALLOC_OK ? res.count : 0;
    }

    return status;
}


game_alloc_status_t
game_alloc_drain(game_alloc_conn_t *c, const char *id,
    game_alloc_result_t *res)
{
    game_alloc_argv_t  a;

    if (game_alloc_argv_drain(&a, c->prefix, id) != GAME_ALLOC_OK) {
        return GAME_ALLOC_BAD_ARG;
    }

    return game_alloc_run(c, &a, res);
}


/*
 * Listing is for people and tests, never on the allocation path, so it
 * reads without a script and is not a snapshot: a server may change
 * state between two lines.  One round trip for the ids, then one
 * pipelined round trip for all records and heartbeats.
 */

static const char *game_alloc_list_fields[] = {
    "state", "addr", "port", "region", "mode", "build", "host",
    "capacity", "match", "drain"
};

#define GAME_ALLOC_LIST_NFIELDS  10


static int
game_alloc_list_cmp(const void *one, const void *two)
{
    const redisReply  *a = *(redisReply * const *) one;
    const redisReply  *b = *(redisReply * const *) two;

    return strcmp(a->str, b->str);
}


static int
game_alloc_list_append(game_alloc_conn_t *c, const redisReply *id)
{
    int          i;
    const char  *argv[2 + GAME_ALLOC_LIST_NFIELDS];
    size_t       argvlen[2 + GAME_ALLOC_LIST_NFIELDS];
    char         key[2 * GAME_ALLOC_NAME_MAX + 16];

    snprintf(key, sizeof(key), "%sserver:%s", c->prefix, id->str);

    argv[0] = "HMGET";
    argvlen[0] = 5;
    argv[1] = key;
    argvlen[1] = strlen(key);

    for (i = 0; i < GAME_ALLOC_LIST_NFIELDS; i++) {
        argv[2 + i] = game_alloc_list_fields[i];
        argvlen[2 + i] = strlen(game_alloc_list_fields[i]);
    }

    if (redisAppendCommandArgv(c->redis, 2 + GAME_ALLOC_LIST_NFIELDS, argv,
                               argvlen) != REDIS_OK)
    {
        return -1;
    }

    return redisAppendCommand(c->redis, "EXISTS %s%s%s", c->prefix, "hb:",
                              id->str);
}


static const char *
game_alloc_list_field(const redisReply *rec, int i)
{
    return rec->element[i]->type == REDIS_REPLY_STRING ? rec->element[i]->str
                                                       : "";
}


/* Reads the two replies of one server and hands the server on. */
static int
game_alloc_list_one(game_alloc_conn_t *c, const redisReply *id,
    const char *region, game_alloc_list_pt handler, void *data)
{
    int                  rc;
    redisReply          *rec, *hb;
    game_alloc_server_t  s;

    if (redisGetReply(c->redis, (void **) &rec) != REDIS_OK) {
        return -1;
    }

    if (redisGetReply(c->redis, (void **) &hb) != REDIS_OK) {
        freeReplyObject(rec);
        return -1;
    }

    rc = -1;

    if (rec->type != REDIS_REPLY_ARRAY
        || rec->elements != GAME_ALLOC_LIST_NFIELDS
        || hb->type != REDIS_REPLY_INTEGER)
    {
        goto done;
    }

    rc = 0;

    /* gone between SMEMBERS and HMGET: deregistered meanwhile */
    if (rec->element[0]->type != REDIS_REPLY_STRING) {
        goto done;
    }

    memset(&s, 0, sizeof(s));
    s.id = id->str;
    s.state = game_alloc_state_from(rec->element[0]->str,
                                    rec->element[0]->len);
    s.addr = game_alloc_list_field(rec, 1);
    s.port = atoi(game_alloc_list_field(rec, 2));
    s.region = game_alloc_list_field(rec, 3);
    s.mode = game_alloc_list_field(rec, 4);
    s.build = game_alloc_list_field(rec, 5);
    s.host = game_alloc_list_field(rec, 6);
    s.capacity = atoi(game_alloc_list_field(rec, 7));
    s.match_id = game_alloc_list_field(rec, 8);
    s.drain = strcmp(game_alloc_list_field(rec, 9), "1") == 0;

    if (region == NULL || strcmp(region, s.region) == 0) {
        handler(&s, hb->integer == 1, data);
    }

done:

    freeReplyObject(rec);
    freeReplyObject(hb);

    return rc;
}


game_alloc_status_t
game_alloc_list(game_alloc_conn_t *c, const char *region,
    game_alloc_list_pt handler, void *data)
{
    size_t               i, n;
    redisReply          *ids;
    game_alloc_status_t  status;

    if (c->redis == NULL || c->redis->err) {
        return GAME_ALLOC_ERROR;
    }

    ids = redisCommand(c->redis, "SMEMBERS %sservers", c->prefix);

    if (ids == NULL) {
        return game_alloc_fail(c, "list", c->redis->errstr);
    }

    if (ids->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(ids);
        return game_alloc_fail(c, "list", "unexpected reply");
    }

    /* stable output: people diff it, tests compare it */
    qsort(ids->element, ids->elements, sizeof(redisReply *),
          game_alloc_list_cmp);

    status = GAME_ALLOC_OK;
    n = 0;

    for (i = 0; i < ids->elements; i++, n++) {
        if (game_alloc_list_append(c, ids->element[i]) != REDIS_OK) {
            status = game_alloc_fail(c, "list", "cannot queue command");
            break;
        }
    }

    /* every queued command is answered, even after a failure */
    for (i = 0; i < n; i++) {
        if (game_alloc_list_one(c, ids->element[i], region, handler, data)
            != 0 && status == GAME_ALLOC_OK)
        {
            status = game_alloc_fail(c, "list", c->redis->err
                                     ? c->redis->errstr : "unexpected reply");
            if (c->redis->err) {
                break;
            }
        }
    }

    freeReplyObject(ids);

    return status;
}
