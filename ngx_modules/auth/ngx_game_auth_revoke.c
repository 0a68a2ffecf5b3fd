
/*
 * Revoked access tokens.  Access tokens are checked without a lookup, so
 * revoking them means telling every worker of every nginx which ones no
 * longer count:
 *
 *   s:<session>   every token of a session (its "sid" claim): logout, and
 *                 a refresh token presented twice
 *   p:<player>    every token of a player issued up to a time: erasure
 *
 * An entry matters only while a token it names can still be valid, so it
 * is dropped game_auth_access_ttl (plus the leeway) after it was made.
 *
 * Each worker keeps the entries in a red-black tree and checks a token
 * against it in memory: no request waits for Redis.  The list itself is
 * the Redis stream game:auth:revoked, trimmed by age on every addition.
 * The worker that revokes adds the entry to its own tree at once and to
 * the stream; every worker reads the stream from where it left off once a
 * second, and a worker that starts reads it from the beginning (trying
 * every 100 ms until Redis answers), so a reload or a new nginx knows what
 * is still revoked.  A stream rather than
 * pub/sub because a worker whose connection blinked reads on from its last
 * entry instead of missing what was said meanwhile.
 */

#include "ngx_game_auth.h"


#define NGX_GAME_AUTH_REVOKED_STREAM  "game:auth:revoked"
#define NGX_GAME_AUTH_REVOKED_POLL    1000
#define NGX_GAME_AUTH_REVOKED_START   100     /* until the first read */
#define NGX_GAME_AUTH_REVOKED_BATCH   256
#define NGX_GAME_AUTH_REVOKED_TEXT    (2 + GAME_UUID_LEN)


typedef struct {
    ngx_str_node_t              sn;         /* sn.str: the text, "s:<id>" */
    ngx_queue_t                 queue;      /* by age */
    time_t                      at;
    time_t                      expires;
    u_char                      text[NGX_GAME_AUTH_REVOKED_TEXT];
} ngx_game_auth_revocation_t;


struct ngx_game_auth_revoked_s {
    ngx_rbtree_t                tree;
    ngx_rbtree_node_t           sentinel;
    ngx_queue_t                 age;        /* oldest first */
    ngx_uint_t                  count;

    ngx_game_auth_main_conf_t  *amcf;
    ngx_log_t                  *log;
    ngx_event_t                 poll;
    ngx_pool_t                 *reading;    /* the XREAD in flight */
    u_char                      last[48];   /* the last entry id read */
    unsigned                    loaded:1;   /* read once to the end */
};


static ngx_game_auth_revocation_t *ngx_game_auth_revoked_find(
    ngx_game_auth_revoked_t *rv, u_char *text);
static void ngx_game_auth_revoked_add(ngx_game_auth_revoked_t *rv,
    u_char *text, time_t at, time_t expires);
static void ngx_game_auth_revoked_expire(ngx_game_auth_revoked_t *rv);
static void ngx_game_auth_revoke_poll(ngx_event_t *ev);
static void ngx_game_auth_revoke_read(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply);
static ngx_msec_t ngx_game_auth_revoke_next(ngx_game_auth_revoked_t *rv,
    ngx_uint_t read);
static ngx_uint_t ngx_game_auth_revoke_entries(ngx_game_auth_revoked_t *rv,
    redisReply *reply);


ngx_int_t
ngx_game_auth_revoke_init(ngx_cycle_t *cycle, ngx_game_auth_main_conf_t *amcf)
{
    ngx_game_auth_revoked_t  *rv;

    rv = ngx_pcalloc(cycle->pool, sizeof(ngx_game_auth_revoked_t));
    if (rv == NULL) {
        return NGX_ERROR;
    }

    ngx_rbtree_init(&rv->tree, &rv->sentinel, ngx_str_rbtree_insert_value);
    ngx_queue_init(&rv->age);

    rv->amcf = amcf;
    rv->log = cycle->log;
    ngx_memcpy(rv->last, "0-0", sizeof("0-0"));

    amcf->revoked = rv;

    /* without Redis this worker knows only what it revoked itself */
    if (amcf->redis == NULL) {
        return NGX_OK;
    }

    /* idle work: it must not keep an old worker from exiting */
    rv->poll.handler = ngx_game_auth_revoke_poll;
    rv->poll.data = rv;
    rv->poll.log = cycle->log;
    rv->poll.cancelable = 1;

    ngx_post_event(&rv->poll, &ngx_posted_events);

    return NGX_OK;
}


/* on every guarded request: two lookups in memory, none when empty */

ngx_uint_t
ngx_game_auth_revoked(void *data, ngx_game_access_t *a)
{
    ngx_game_auth_main_conf_t *amcf = data;

    u_char                       text[NGX_GAME_AUTH_REVOKED_TEXT];
    ngx_game_auth_revoked_t     *rv;
    ngx_game_auth_revocation_t  *e;

    rv = amcf->revoked;

    if (rv == NULL || rv->count == 0) {
        return 0;
    }

    if (a->sid[0]) {
        text[0] = 's';
        text[1] = ':';
        ngx_memcpy(text + 2, a->sid, GAME_UUID_LEN);

        if (ngx_game_auth_revoked_find(rv, text)) {
            return 1;
        }
    }

    text[0] = 'p';
    text[1] = ':';
    ngx_memcpy(text + 2, a->player_id, GAME_UUID_LEN);

    e = ngx_game_auth_revoked_find(rv, text);

    return e && a->iat <= e->at;
}


static ngx_game_auth_revocation_t *
ngx_game_auth_revoked_find(ngx_game_auth_revoked_t *rv, u_char *text)
{
    ngx_str_t  s;

    s.data = text;
    s.len = NGX_GAME_AUTH_REVOKED_TEXT;

    return (ngx_game_auth_revocation_t *)
           ngx_str_rbtree_lookup(&rv->tree, &s, ngx_crc32_short(text, s.len));
}


static void
ngx_game_auth_revoked_add(ngx_game_auth_revoked_t *rv, u_char *text,
    time_t at, time_t expires)
{
    ngx_game_auth_revocation_t  *e;

    e = ngx_game_auth_revoked_find(rv, text);

    if (e) {
        /* heard again (our own entry read back, a second erasure) */
        e->at = ngx_max(e->at, at);
        e->expires = ngx_max(e->expires, expires);
        ngx_queue_remove(&e->queue);
        ngx_queue_insert_tail(&rv->age, &e->queue);
        return;
    }

    e = ngx_alloc(sizeof(ngx_game_auth_revocation_t), rv->log);
    if (e == NULL) {
        return;
    }

    ngx_memcpy(e->text, text, NGX_GAME_AUTH_REVOKED_TEXT);
    e->sn.str.data = e->text;
    e->sn.str.len = NGX_GAME_AUTH_REVOKED_TEXT;
    e->sn.node.key = ngx_crc32_short(e->text, NGX_GAME_AUTH_REVOKED_TEXT);
    e->at = at;
    e->expires = expires;

    ngx_rbtree_insert(&rv->tree, &e->sn.node);
    ngx_queue_insert_tail(&rv->age, &e->queue);
    rv->count++;
}


/* entries are made with one lifetime, so the oldest expire first */

static void
ngx_game_auth_revoked_expire(ngx_game_auth_revoked_t *rv)
{
    time_t                       now;
    ngx_queue_t                 *q;
    ngx_game_auth_revocation_t  *e;

    now = ngx_time();

    while (!ngx_queue_empty(&rv->age)) {
        q = ngx_queue_head(&rv->age);
        e = ngx_queue_data(q, ngx_game_auth_revocation_t, queue);

        if (e->expires >= now) {
            break;
        }

        ngx_queue_remove(q);
        ngx_rbtree_delete(&rv->tree, &e->sn.node);
        rv->count--;
        ngx_free(e);
    }
}


/*
 * Revoke "kind" ('s' a session, 'p' a player) "id" now: in this worker at
 * once, in the others through the stream.  "next" runs when Redis has
 * answered; a failure is logged, not the caller's: the refresh tokens are
 * revoked in PostgreSQL already, and the access tokens expire by
 * themselves.
 */

void
ngx_game_auth_revoke(ngx_game_auth_ctx_t *ctx, char kind, const char *id,
    ngx_game_auth_step_pt next)
{
    u_char                      text[NGX_GAME_AUTH_REVOKED_TEXT];
    u_char                      minid[NGX_INT64_LEN + 2];
    u_char                      at[NGX_TIME_T_LEN + 1], x[NGX_TIME_T_LEN + 1];
    time_t                      now, life;
    ngx_game_redis_args_t       a;
    ngx_game_auth_main_conf_t  *amcf = ctx->amcf;

    now = ngx_time();
    life = amcf->access_ttl + amcf->leeway;

    text[0] = kind;
    text[1] = ':';
    ngx_memcpy(text + 2, id, GAME_UUID_LEN);

    if (amcf->revoked) {
        ngx_game_auth_revoked_add(amcf->revoked, text, now, now + life);
    }

    *ngx_sprintf(minid, "%L", (int64_t) (now - life) * 1000) = '\0';
    *ngx_sprintf(at, "%T", now) = '\0';
    *ngx_sprintf(x, "%T", now + life) = '\0';

    ngx_memzero(&a, sizeof(a));
    ngx_game_redis_arg_lit(&a, "XADD");
    ngx_game_redis_arg_lit(&a, NGX_GAME_AUTH_REVOKED_STREAM);
    ngx_game_redis_arg_lit(&a, "MINID");
    ngx_game_redis_arg_lit(&a, "~");
    ngx_game_redis_arg_cstr(&a, (char *) minid);
    ngx_game_redis_arg_lit(&a, "*");
    ngx_game_redis_arg_lit(&a, "k");
    ngx_game_redis_arg(&a, text, sizeof(text));
    ngx_game_redis_arg_lit(&a, "t");
    ngx_game_redis_arg_cstr(&a, (char *) at);
    ngx_game_redis_arg_lit(&a, "x");
    ngx_game_redis_arg_cstr(&a, (char *) x);

    ngx_game_auth_redis_then(ctx, &a, "a revocation did not reach Redis: "
                             "other nginx instances accept the session's "
                             "access tokens until they expire", next);
}


/* XREAD from where this worker left off, without blocking */

static void
ngx_game_auth_revoke_poll(ngx_event_t *ev)
{
    u_char                    count[NGX_INT_T_LEN + 1];
    ngx_int_t                 rc;
    ngx_game_redis_cmd_t     *cmd;
    ngx_game_redis_args_t     a;
    ngx_game_auth_revoked_t  *rv = ev->data;

    ngx_game_auth_revoked_expire(rv);

    if (ngx_exiting || ngx_quit || rv->reading) {
        return;
    }

    rv->reading = ngx_create_pool(4096, rv->log);
    if (rv->reading == NULL) {
        ngx_add_timer(&rv->poll, ngx_game_auth_revoke_next(rv, 0));
        return;
    }

    cmd = ngx_game_redis_cmd_create(rv->reading, rv->log);
    if (cmd == NULL) {
        goto failed;
    }

    cmd->handler = ngx_game_auth_revoke_read;
    cmd->data = rv;

    *ngx_sprintf(count, "%ui", (ngx_uint_t) NGX_GAME_AUTH_REVOKED_BATCH) = '\0';

    ngx_memzero(&a, sizeof(a));
    ngx_game_redis_arg_lit(&a, "XREAD");
    ngx_game_redis_arg_lit(&a, "COUNT");
    ngx_game_redis_arg_cstr(&a, (char *) count);
    ngx_game_redis_arg_lit(&a, "STREAMS");
    ngx_game_redis_arg_lit(&a, NGX_GAME_AUTH_REVOKED_STREAM);
    ngx_game_redis_arg_cstr(&a, (char *) rv->last);

    rc = ngx_game_redis_cmd_run(rv->amcf->redis, cmd, a.argc, a.argv,
                                a.argvlen);
    if (rc == NGX_AGAIN) {
        return;
    }

failed:

    ngx_destroy_pool(rv->reading);
    rv->reading = NULL;
    ngx_add_timer(&rv->poll, ngx_game_auth_revoke_next(rv, 0));
}


/* a new worker's list is incomplete until its first read: retry soon */

static ngx_msec_t
ngx_game_auth_revoke_next(ngx_game_auth_revoked_t *rv, ngx_uint_t read)
{
    if (read == NGX_GAME_AUTH_REVOKED_BATCH) {
        return 1;
    }

    return rv->loaded ? NGX_GAME_AUTH_REVOKED_POLL
                      : NGX_GAME_AUTH_REVOKED_START;
}


static void
ngx_game_auth_revoke_read(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply)
{
    ngx_uint_t                n;
    ngx_game_auth_revoked_t  *rv = cmd->data;

    n = 0;

    /* [[stream, [[id, [field, value, ...]], ...]]], or nil when none */
    if (rc == NGX_OK && reply->type == REDIS_REPLY_ARRAY
        && reply->elements == 1
        && reply->element[0]->type == REDIS_REPLY_ARRAY
        && reply->element[0]->elements == 2)
    {
        n = ngx_game_auth_revoke_entries(rv, reply->element[0]->element[1]);
    }

    /* a full batch: more is waiting, read on at once */
    if (rc == NGX_OK && n < NGX_GAME_AUTH_REVOKED_BATCH) {
        rv->loaded = 1;
    }

    ngx_destroy_pool(rv->reading);
    rv->reading = NULL;

    if (ngx_exiting || ngx_quit) {
        return;
    }

    ngx_add_timer(&rv->poll, ngx_game_auth_revoke_next(rv, n));
}


static ngx_uint_t
ngx_game_auth_revoke_entries(ngx_game_auth_revoked_t *rv, redisReply *list)
{
    time_t       now, at, x;
    size_t       i, j;
    u_char      *text;
    redisReply  *e, *f, *k, *v;

    if (list->type != REDIS_REPLY_ARRAY) {
        return 0;
    }

    now = ngx_time();

    for (i = 0; i < list->elements; i++) {
        e = list->element[i];

        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2
            || e->element[0]->type != REDIS_REPLY_STRING
            || e->element[0]->len >= sizeof(rv->last)
            || e->element[1]->type != REDIS_REPLY_ARRAY)
        {
            continue;
        }

        ngx_memcpy(rv->last, e->element[0]->str, e->element[0]->len);
        rv->last[e->element[0]->len] = '\0';

        f = e->element[1];
        text = NULL;
        at = NGX_ERROR;
        x = NGX_ERROR;

        for (j = 0; j + 1 < f->elements; j += 2) {
            k = f->element[j];
            v = f->element[j + 1];

            if (k->type != REDIS_REPLY_STRING || k->len != 1
                || v->type != REDIS_REPLY_STRING)
            {
                continue;
            }

            switch (k->str[0]) {

            case 'k':
                if (v->len == NGX_GAME_AUTH_REVOKED_TEXT
                    && (v->str[0] == 's' || v->str[0] == 'p')
                    && v->str[1] == ':'
                    && game_uuid_valid((u_char *) v->str + 2, GAME_UUID_LEN))
                {
                    text = (u_char *) v->str;
                }
                break;

            case 't':
                at = ngx_atotm((u_char *) v->str, v->len);
                break;

            case 'x':
                x = ngx_atotm((u_char *) v->str, v->len);
                break;
            }
        }

        if (text && at != NGX_ERROR && x != NGX_ERROR && x >= now) {
            ngx_game_auth_revoked_add(rv, text, at, x);
        }
    }

    return list->elements;
}
