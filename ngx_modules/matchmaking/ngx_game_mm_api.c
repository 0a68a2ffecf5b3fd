
/*
 * The matchmaking endpoints.
 *
 *   POST   /matchmaking/join    {game_mode, regions:[{region, latency_ms}]}
 *                               202 {ticket_id, status:"queued", ...}
 *   GET    /matchmaking/status  the player's latest ticket
 *   DELETE /matchmaking/ticket  withdraw a queued ticket
 *
 * Joining reads the player's rating for the mode from PostgreSQL (new
 * players start at 1500), then runs join.lua: one active ticket per
 * player (409), a bounded queue (503).  Nothing here scans a queue.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <openssl/rand.h>

#include "ngx_game_mm.h"


typedef struct {
    ngx_http_request_t         *request;
    ngx_game_mm_mode_t         *mode;
    ngx_str_t                  *region;
    ngx_str_t                   player;     /* NUL-terminated */
    ngx_str_t                   members;    /* "id,id,...": the ticket's */
    u_char                      party[37];
    u_char                      ticket[37];
    u_char                      rating[32];
} ngx_game_mm_join_t;


static ngx_int_t ngx_game_mm_player(ngx_http_request_t *r, ngx_str_t *id);
static void ngx_game_mm_join_body(ngx_http_request_t *r, json_t *body);
static ngx_str_t *ngx_game_mm_pick_region(ngx_game_mm_mode_t *mode,
    json_t *regions, const char **err);
static void ngx_game_mm_join_party(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply);
static void ngx_game_mm_join_rate(ngx_game_mm_join_t *j);
static void ngx_game_mm_join_rated(ngx_game_pg_query_t *q, ngx_int_t rc,
    PGresult *res);
static void ngx_game_mm_join_done(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply);
static void ngx_game_mm_status_done(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply);
static void ngx_game_mm_cancel_done(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply);
static ngx_int_t ngx_game_mm_too_many(ngx_http_request_t *r,
    redisReply *ms);


/* a ticket's rating: the mean of its players', newcomers at the default */
static ngx_game_pg_stmt_t  ngx_game_mm_rating_stmt = {
    "game_mm_rating",
    "SELECT avg(coalesce(r.rating, $3::float8)) "
    "FROM unnest($1::uuid[]) AS m(id) "
    "LEFT JOIN player_ratings r ON r.player_id = m.id AND r.mode = $2",
    3
};


/*
 * The player named by game_mm_player, which must be a UUID: anything else
 * means the location is not behind the guard, or the guard let a request
 * through without a player.
 */

static ngx_int_t
ngx_game_mm_player(ngx_http_request_t *r, ngx_str_t *id)
{
    ngx_str_t                 v;
    ngx_game_mm_main_conf_t  *mmcf;

    mmcf = ngx_http_get_module_main_conf(r, ngx_game_mm_module);

    if (ngx_http_complex_value(r, mmcf->player, &v) != NGX_OK) {
        return NGX_ERROR;
    }

    if (!game_uuid_valid(v.data, v.len)) {
        return NGX_DECLINED;
    }

    id->data = ngx_pnalloc(r->pool, 37);
    if (id->data == NULL) {
        return NGX_ERROR;
    }

    *ngx_cpymem(id->data, v.data, 36) = '\0';
    id->len = 36;

    return NGX_OK;
}


ngx_int_t
ngx_game_mm_who(ngx_http_request_t *r, ngx_str_t *id)
{
    return ngx_game_mm_player(r, id);
}


/*
 * The answer to a request ngx_game_mm_who() refused (NGX_DECLINED: nobody
 * signed in, the location is not behind the guard).  Who only says why: a
 * helper that sent the answer itself would return what the send returned,
 * often NGX_OK, and its caller would carry on with no player.
 */

ngx_int_t
ngx_game_mm_refuse(ngx_http_request_t *r, ngx_int_t why)
{
    if (why == NGX_DECLINED) {
        return ngx_game_http_send_error(r, NGX_HTTP_UNAUTHORIZED,
                                        "unauthorized",
                                        "a signed-in player is required");
    }

    return NGX_HTTP_INTERNAL_SERVER_ERROR;
}


/* join */

ngx_int_t
ngx_game_mm_join_handler(ngx_http_request_t *r)
{
    ngx_int_t            rc;
    ngx_game_mm_join_t  *j;

    if (r->method != NGX_HTTP_POST) {
        return ngx_game_http_send_error(r, NGX_HTTP_NOT_ALLOWED,
                                        "method_not_allowed",
                                        "join with POST");
    }

    j = ngx_pcalloc(r->pool, sizeof(ngx_game_mm_join_t));
    if (j == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_game_mm_who(r, &j->player);
    if (rc != NGX_OK) {
        return ngx_game_mm_refuse(r, rc);
    }

    j->request = r;
    ngx_http_set_ctx(r, j, ngx_game_mm_module);

    return ngx_game_http_read_json(r, ngx_game_mm_join_body);
}


static void
ngx_game_mm_join_body(ngx_http_request_t *r, json_t *body)
{
    ngx_int_t                 rc;
    ngx_str_t                 name;
    const char               *err, *argv[2];
    size_t                    argvlen[2];
    json_t                   *mode, *party;
    ngx_game_mm_join_t       *j;
    ngx_game_mm_main_conf_t  *mmcf;

    j = ngx_http_get_module_ctx(r, ngx_game_mm_module);
    mmcf = ngx_http_get_module_main_conf(r, ngx_game_mm_module);

    mode = json_object_get(body, "game_mode");
    if (!json_is_string(mode)) {
        ngx_http_finalize_request(r,
            ngx_game_http_send_error(r, NGX_GAME_HTTP_UNPROCESSABLE,
                                     "invalid_field",
                                     "\"game_mode\" must be a string"));
        return;
    }

    name.data = (u_char *) json_string_value(mode);
    name.len = json_string_length(mode);

    j->mode = ngx_game_mm_mode_find(mmcf, &name);
    if (j->mode == NULL) {
        ngx_http_finalize_request(r,
            ngx_game_http_send_error(r, NGX_GAME_HTTP_UNPROCESSABLE,
                                     "unknown_mode",
                                     "no such game mode"));
        return;
    }

    party = json_object_get(body, "party_id");

    if (party != NULL
        && (!json_is_string(party)
            || !game_uuid_valid((u_char *) json_string_value(party),
                                       json_string_length(party))))
    {
        ngx_http_finalize_request(r,
            ngx_game_http_send_error(r, NGX_GAME_HTTP_UNPROCESSABLE,
                                     "invalid_field",
                                     "\"party_id\" must be a party's id"));
        return;
    }

    j->region = ngx_game_mm_pick_region(j->mode,
                                        json_object_get(body, "regions"),
                                        &err);
    if (j->region == NULL) {
        ngx_http_finalize_request(r,
            ngx_game_http_send_error(r, NGX_GAME_HTTP_UNPROCESSABLE,
                                     "no_region", err));
        return;
    }

    if (party == NULL) {
        j->members = j->player;
        ngx_game_mm_join_rate(j);
        return;
    }

    /* a party queues whole, by its leader: read who is in it first */
    ngx_memcpy(j->party, json_string_value(party), 36);

    argv[0] = (char *) mmcf->prefix.data;
    argvlen[0] = mmcf->prefix.len;
    argv[1] = (char *) j->party;
    argvlen[1] = 36;

    rc = ngx_game_mm_script(r, &ngx_game_mm_lua_party_get,
                            ngx_game_mm_join_party, j, 2, argv, argvlen);
    if (rc != NGX_AGAIN) {
        ngx_http_finalize_request(r,
            ngx_game_http_send_outcome(r, rc, "the matchmaker"));
    }
}


static void
ngx_game_mm_join_party(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply)
{
    u_char              *p;
    ngx_uint_t           n;
    ngx_game_mm_join_t  *j = cmd->data;
    ngx_http_request_t  *r = j->request;

    if (rc != NGX_OK) {
        ngx_http_finalize_request(r,
            ngx_game_http_send_outcome(r, rc, "the matchmaker"));
        return;
    }

    if (!ngx_game_mm_reply_is(reply, "OK") || reply->elements != 3) {
        ngx_http_finalize_request(r,
            ngx_game_http_send_error(r, NGX_HTTP_NOT_FOUND, "no_party",
                                     "no such party"));
        return;
    }

    if (reply->element[1]->len != j->player.len
        || ngx_strncmp(reply->element[1]->str, j->player.data,
                       j->player.len) != 0)
    {
        ngx_http_finalize_request(r,
            ngx_game_http_send_error(r, NGX_HTTP_FORBIDDEN, "not_leader",
                                     "only the party's leader queues it"));
        return;
    }

    for (n = 1, p = (u_char *) reply->element[2]->str; *p; p++) {
        n += (*p == ',');
    }

    if (n > j->mode->rules.team_size) {
        ngx_http_finalize_request(r,
            ngx_game_http_send_error(r, NGX_GAME_HTTP_UNPROCESSABLE,
                                     "party_too_large",
                                     "the party does not fit in a team of "
                                     "this mode"));
        return;
    }

    j->members.len = reply->element[2]->len;
    j->members.data = ngx_pnalloc(r->pool, j->members.len + 1);
    if (j->members.data == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }
    ngx_memcpy(j->members.data, reply->element[2]->str, j->members.len + 1);

    ngx_game_mm_join_rate(j);
}


static void
ngx_game_mm_join_rate(ngx_game_mm_join_t *j)
{
    u_char                   *p;
    ngx_int_t                 rc;
    ngx_game_pg_query_t      *q;
    ngx_http_request_t       *r = j->request;
    ngx_game_mm_main_conf_t  *mmcf;

    mmcf = ngx_http_get_module_main_conf(r, ngx_game_mm_module);

    q = ngx_game_pg_request_query(r, &ngx_game_mm_rating_stmt);
    p = ngx_pnalloc(r->pool, j->members.len + 3 + j->mode->name.len + 1
                             + NGX_INT_T_LEN);
    if (q == NULL || p == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* an array literal of UUIDs join checked: a parameter, not SQL text */
    q->values[0] = (char *) p;
    p = ngx_sprintf(p, "{%V}", &j->members);
    *p++ = '\0';

    q->values[1] = (char *) p;
    p = ngx_cpymem(p, j->mode->name.data, j->mode->name.len);
    *p++ = '\0';

    q->values[2] = (char *) p;
    *ngx_sprintf(p, "%d", (int) mmcf->default_rating) = '\0';

    q->handler = ngx_game_mm_join_rated;
    q->data = j;

    rc = ngx_game_pg_query_run(mmcf->pg, q);
    if (rc != NGX_AGAIN) {
        ngx_http_finalize_request(r,
            ngx_game_http_send_outcome(r, rc, "the player database"));
    }
}


/*
 * The lowest-latency region the mode serves, if within its max latency.
 * "regions" is [{"region": "eu", "latency_ms": 35}, ...].
 */

static ngx_str_t *
ngx_game_mm_pick_region(ngx_game_mm_mode_t *mode, json_t *regions,
    const char **err)
{
    size_t       i;
    double       lat, best_lat;
    json_t      *item, *name, *ms;
    ngx_str_t   *served, *best;
    ngx_uint_t   k;

    if (!json_is_array(regions) || json_array_size(regions) == 0
        || json_array_size(regions) > 64)
    {
        *err = "\"regions\" must be a list of 1 to 64 "
               "{\"region\", \"latency_ms\"} objects";
        return NULL;
    }

    best = NULL;
    best_lat = 0;
    served = mode->regions.elts;

    json_array_foreach(regions, i, item) {
        name = json_object_get(item, "region");
        ms = json_object_get(item, "latency_ms");

        if (!json_is_string(name) || !json_is_number(ms)
            || json_number_value(ms) < 0)
        {
            *err = "each region needs a \"region\" name and a "
                   "non-negative \"latency_ms\"";
            return NULL;
        }

        lat = json_number_value(ms);

        if (lat > (double) mode->max_latency) {
            continue;
        }

        for (k = 0; k < mode->regions.nelts; k++) {
            if (served[k].len == json_string_length(name)
                && ngx_strncmp(served[k].data, json_string_value(name),
                               served[k].len) == 0
                && (best == NULL || lat < best_lat))
            {
                best = &served[k];
                best_lat = lat;
            }
        }
    }

    if (best == NULL) {
        *err = "none of these regions serves this mode within its "
               "maximum latency";
    }

    return best;
}


static void
ngx_game_mm_join_rated(ngx_game_pg_query_t *q, ngx_int_t rc, PGresult *res)
{
    int                       argc;
    double                    rating;
    u_char                   *p, *last, queue[80], ttl[NGX_INT_T_LEN],
                              limit[NGX_INT_T_LEN], wait[NGX_INT_T_LEN],
                              joins[NGX_INT_T_LEN], window[NGX_INT_T_LEN];
    ngx_str_t                 member;
    ngx_game_mm_join_t       *j = q->data;
    ngx_http_request_t       *r = j->request;
    ngx_game_mm_main_conf_t  *mmcf;
    const char               *argv[9 + GAME_MM_MAX_TEAM_SIZE];
    size_t                    argvlen[9 + GAME_MM_MAX_TEAM_SIZE];

    if (rc != NGX_OK) {
        ngx_http_finalize_request(r,
            ngx_game_http_send_outcome(r, rc, "the player database"));
        return;
    }

    mmcf = ngx_http_get_module_main_conf(r, ngx_game_mm_module);

    rating = mmcf->default_rating;
    if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 0)) {
        rating = strtod(PQgetvalue(res, 0, 0), NULL);
    }

    game_uuid_generate((char *) j->ticket);
    *ngx_snprintf(j->rating, sizeof(j->rating) - 1, "%.3f", rating) = '\0';

    last = ngx_snprintf(queue, sizeof(queue), "%V:%V", &j->mode->name,
                        j->region);

    argv[0] = (char *) mmcf->prefix.data;
    argvlen[0] = mmcf->prefix.len;
    argv[1] = (char *) j->ticket;
    argvlen[1] = 36;
    argv[2] = (char *) queue;
    argvlen[2] = last - queue;
    argv[3] = (char *) j->rating;
    argvlen[3] = ngx_strlen(j->rating);
    argv[4] = (char *) ttl;
    argvlen[4] = ngx_sprintf(ttl, "%M", mmcf->ticket_ttl) - ttl;
    argv[5] = (char *) limit;
    argvlen[5] = ngx_sprintf(limit, "%ui", j->mode->max_queue) - limit;
    argv[6] = (char *) wait;
    argvlen[6] = ngx_sprintf(wait, "%L", j->mode->rules.max_wait_ms) - wait;
    argv[7] = (char *) joins;
    argvlen[7] = ngx_sprintf(joins, "%ui", mmcf->join_limit) - joins;
    argv[8] = (char *) window;
    argvlen[8] = ngx_sprintf(window, "%M", mmcf->join_window) - window;
    /* one argument per player of the ticket: the party's members, the
     * one who asks (the leader) first */
    argc = 9;
    p = j->members.data;
    last = j->members.data + j->members.len;

    while (argc < 9 + GAME_MM_MAX_TEAM_SIZE
           && ngx_game_mm_next_id(&p, last, &member))
    {
        argv[argc] = (char *) member.data;
        argvlen[argc] = member.len;
        argc++;
    }

    rc = ngx_game_mm_script(r, &ngx_game_mm_lua_join, ngx_game_mm_join_done,
                            j, argc, argv, argvlen);
    if (rc != NGX_AGAIN) {
        ngx_http_finalize_request(r,
            ngx_game_http_send_outcome(r, rc, "the matchmaker"));
    }
}


static void
ngx_game_mm_join_done(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply)
{
    json_t              *body;
    ngx_str_t            ticket;
    ngx_game_mm_join_t  *j = cmd->data;
    ngx_http_request_t  *r = j->request;

    if (rc != NGX_OK) {
        ngx_http_finalize_request(r,
            ngx_game_http_send_outcome(r, rc, "the matchmaker"));
        return;
    }

    if (ngx_game_mm_reply_is(reply, "ACTIVE")) {
        ngx_http_finalize_request(r,
            ngx_game_http_send_error(r, NGX_HTTP_CONFLICT, "ticket_exists",
                                     "the player already has a ticket in "
                                     "play; cancel it or wait for it"));
        return;
    }

    if (ngx_game_mm_reply_is(reply, "LIMITED") && reply->elements == 2) {
        ngx_http_finalize_request(r,
            ngx_game_mm_too_many(r, reply->element[1]));
        return;
    }

    if (ngx_game_mm_reply_is(reply, "FULL")) {
        ngx_http_finalize_request(r,
            ngx_game_http_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                     "queue_full",
                                     "the queue is full, retry later"));
        return;
    }

    if (!ngx_game_mm_reply_is(reply, "OK")) {
        ngx_http_finalize_request(r,
            ngx_game_http_send_outcome(r, NGX_ERROR, "the matchmaker"));
        return;
    }

    /* its players' sockets hear it too (a party's other members) */
    ticket.data = j->ticket;
    ticket.len = 36;
    ngx_game_mm_notify(ngx_http_get_module_main_conf(r, ngx_game_mm_module),
                       &ticket, 1);

    body = json_pack("{s:s#,s:s,s:s#,s:s#}",
                     "ticket_id", (char *) j->ticket, (int) 36,
                     "status", "queued",
                     "game_mode", (char *) j->mode->name.data,
                     (int) j->mode->name.len,
                     "region", (char *) j->region->data,
                     (int) j->region->len);
    if (body == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_finalize_request(r,
        ngx_game_http_send_json(r, NGX_HTTP_ACCEPTED, body));
    json_decref(body);
}


/* 429 with the seconds until the player's window lets them join again */
static ngx_int_t
ngx_game_mm_too_many(ngx_http_request_t *r, redisReply *ms)
{
    json_t     *body;
    ngx_int_t   rc, wait;

    wait = ngx_atoi((u_char *) ms->str, ms->len);
    wait = (wait == NGX_ERROR) ? 1 : (wait + 999) / 1000;

    body = json_pack("{s:{s:s,s:s}}", "error", "code", "too_many_joins",
                     "message", "this player opened too many tickets "
                     "lately; retry later");
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_game_http_send_json_retry(r, NGX_HTTP_TOO_MANY_REQUESTS, body,
                                       (time_t) ngx_max(wait, 1));
    json_decref(body);

    return rc;
}


/* status */

/*
 * GET /matchmaking/status[?wait=SECONDS]: the player's latest ticket.
 *
 * A ticket matched to a server carries a connection ticket for the player
 * who asks, signed now (ES256, the core's game_jwt_key set): every read
 * gets a fresh one, so a player whose connection dropped can get back in,
 * and the signing costs one request one signature, never a burst on the
 * matcher.
 *
 * With "wait" (at most 30), the answer waits until the ticket changes
 * (its status, or its server arriving) or the time is up.  The ticket is
 * read again every 250 ms from a timer: the worker never waits, and Redis
 * holds no per-request state.  Each read's memory is freed when its reply
 * was looked at, and a client that goes away ends the wait at once.
 */

#define NGX_GAME_MM_POLL_MS     250
#define NGX_GAME_MM_WAIT_MAX    30


typedef struct {
    ngx_http_request_t         *request;
    ngx_str_t                   player;
    ngx_msec_t                  deadline;       /* 0: answer at once */
    ngx_event_t                 timer;
    ngx_pool_t                 *poll;           /* the read in flight */
    u_char                      seen[64];       /* status + server flag */
} ngx_game_mm_status_t;


static ngx_int_t ngx_game_mm_status_ask(ngx_game_mm_status_t *st);
static void ngx_game_mm_status_poll(ngx_event_t *ev);
static void ngx_game_mm_status_cleanup(void *data);


ngx_int_t
ngx_game_mm_status_handler(ngx_http_request_t *r)
{
    ngx_int_t              rc, wait;
    ngx_str_t              arg;
    ngx_pool_cleanup_t    *cln;
    ngx_game_mm_status_t  *st;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return ngx_game_http_send_error(r, NGX_HTTP_NOT_ALLOWED,
                                        "method_not_allowed",
                                        "read the status with GET");
    }

    st = ngx_pcalloc(r->pool, sizeof(ngx_game_mm_status_t));
    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (st == NULL || cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_game_mm_who(r, &st->player);
    if (rc != NGX_OK) {
        return ngx_game_mm_refuse(r, rc);
    }

    wait = 0;

    if (ngx_http_arg(r, (u_char *) "wait", 4, &arg) == NGX_OK) {
        wait = ngx_atoi(arg.data, arg.len);
        if (wait == NGX_ERROR || wait > NGX_GAME_MM_WAIT_MAX) {
            return ngx_game_http_send_error(r, NGX_HTTP_BAD_REQUEST,
                                            "invalid_wait",
                                            "\"wait\" is a number of seconds "
                                            "from 0 to 30");
        }
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    st->request = r;
    st->deadline = wait ? ngx_current_msec + wait * 1000 : 0;
    st->timer.handler = ngx_game_mm_status_poll;
    st->timer.data = st;
    st->timer.log = r->connection->log;

    cln->handler = ngx_game_mm_status_cleanup;
    cln->data = st;

    /* the reply handler needs to know whose connection ticket to show */
    ngx_http_set_ctx(r, st, ngx_game_mm_module);

    rc = ngx_game_mm_status_ask(st);
    if (rc != NGX_AGAIN) {
        return ngx_game_http_send_outcome(r, rc, "the matchmaker");
    }

    if (wait) {
        /* a client that closes its connection ends the wait: nginx reads
         * the connection's end and finalizes the request, whose cleanup
         * stops the timer and the read in flight */
        r->read_event_handler = ngx_http_test_reading;
    }

    r->main->count++;
    return NGX_DONE;
}


static ngx_int_t
ngx_game_mm_status_ask(ngx_game_mm_status_t *st)
{
    ngx_int_t                 rc;
    const char               *argv[2];
    size_t                    argvlen[2];
    ngx_game_redis_cmd_t     *cmd;
    ngx_game_http_spent_t    *spent;
    ngx_game_mm_main_conf_t  *mmcf;

    mmcf = ngx_http_get_module_main_conf(st->request, ngx_game_mm_module);

    /* one small pool per read, freed after its reply: a 25 s wait costs
     * one read's memory, not a hundred */
    st->poll = ngx_create_pool(1024, st->request->connection->log);
    if (st->poll == NULL) {
        return NGX_ERROR;
    }

    cmd = ngx_game_redis_cmd_create(st->poll, st->request->connection->log);
    if (cmd == NULL) {
        return NGX_ERROR;
    }

    /* counted in $game_redis_time: the read pool dies with the request
     * (ngx_game_mm_status_cleanup), so the reply never outlives it */
    spent = ngx_game_http_spent(st->request);
    if (spent == NULL) {
        return NGX_ERROR;
    }

    cmd->spent = &spent->redis;
    cmd->handler = ngx_game_mm_status_done;
    cmd->data = st->request;

    argv[0] = (char *) mmcf->prefix.data;
    argvlen[0] = mmcf->prefix.len;
    argv[1] = (char *) st->player.data;
    argvlen[1] = st->player.len;

    rc = ngx_game_redis_eval(mmcf->redis, cmd, &ngx_game_mm_lua_status, 0, 2,
                             argv, argvlen);
    if (rc != NGX_AGAIN) {
        ngx_destroy_pool(st->poll);
        st->poll = NULL;
    }

    return rc;
}


static void
ngx_game_mm_status_poll(ngx_event_t *ev)
{
    ngx_int_t              rc;
    ngx_game_mm_status_t  *st = ev->data;

    rc = ngx_game_mm_status_ask(st);
    if (rc != NGX_AGAIN) {
        ngx_http_finalize_request(st->request,
            ngx_game_http_send_outcome(st->request, rc, "the matchmaker"));
    }
}


static void
ngx_game_mm_status_cleanup(void *data)
{
    ngx_game_mm_status_t  *st = data;

    if (st->timer.timer_set) {
        ngx_del_timer(&st->timer);
    }

    if (st->poll) {
        /* unhooks the read in flight: its reply is never handled */
        ngx_destroy_pool(st->poll);
        st->poll = NULL;
    }
}


static void
ngx_game_mm_status_done(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply)
{
    u_char                 seen[64], *last;
    json_t                *body, *status;
    ngx_msec_t             left;
    ngx_pool_t            *poll;
    ngx_http_request_t    *r = cmd->data;
    ngx_game_mm_status_t  *st;

    st = ngx_http_get_module_ctx(r, ngx_game_mm_module);

    /* the read's memory goes once its reply is read; the reply itself
     * belongs to hiredis until we return */
    poll = st->poll;
    st->poll = NULL;

    /* finalizing below may close the connection and free its log, which
     * the pool and the command still name when they go at "done": an
     * nginx built --with-debug reads pool->log in ngx_destroy_pool(), and
     * that read of freed memory crashed workers under load */
    if (poll) {
        poll->log = ngx_cycle->log;
    }
    cmd->log = ngx_cycle->log;

    if (rc != NGX_OK) {
        ngx_http_finalize_request(r,
            ngx_game_http_send_outcome(r, rc, "the matchmaker"));
        goto done;
    }

    if (ngx_game_mm_reply_is(reply, "NONE")) {
        ngx_http_finalize_request(r,
            ngx_game_http_send_error(r, NGX_HTTP_NOT_FOUND, "no_ticket",
                                     "the player has no ticket"));
        goto done;
    }

    body = NULL;

    if (ngx_game_mm_reply_is(reply, "TICKET") && reply->elements >= 2
        && reply->element[1]->type == REDIS_REPLY_STRING)
    {
        body = ngx_game_mm_status_json(
                   ngx_http_get_module_main_conf(r, ngx_game_mm_module),
                   r->pool, &st->player, reply->element[1],
                   &reply->element[2], reply->elements - 2);
    }

    if (body == NULL) {
        ngx_http_finalize_request(r,
            ngx_game_http_send_outcome(r, NGX_ERROR, "the matchmaker"));
        goto done;
    }

    if (st->deadline) {
        status = json_object_get(body, "status");
        last = ngx_snprintf(seen, sizeof(seen) - 1, "%s/%d",
                            json_is_string(status)
                            ? json_string_value(status) : "",
                            json_object_get(body, "server") != NULL);
        *last = '\0';

        if (st->seen[0] == '\0') {
            ngx_memcpy(st->seen, seen, last - seen + 1);
        }

        left = (ngx_msec_int_t) (st->deadline - ngx_current_msec) > 0
               ? st->deadline - ngx_current_msec : 0;

        if (ngx_strcmp(st->seen, seen) == 0 && left > 0) {
            /* nothing new yet: look again shortly */
            json_decref(body);
            ngx_add_timer(&st->timer, ngx_min(left, NGX_GAME_MM_POLL_MS));
            goto done;
        }
    }

    ngx_http_finalize_request(r, ngx_game_http_send_json(r, NGX_HTTP_OK,
                                                         body));
    json_decref(body);

done:

    if (poll) {
        ngx_destroy_pool(poll);
    }
}


/* cancel */

ngx_int_t
ngx_game_mm_cancel_handler(ngx_http_request_t *r)
{
    ngx_int_t                 rc;
    ngx_str_t                 player;
    const char               *argv[2];
    size_t                    argvlen[2];
    ngx_game_mm_main_conf_t  *mmcf;

    if (r->method != NGX_HTTP_DELETE) {
        return ngx_game_http_send_error(r, NGX_HTTP_NOT_ALLOWED,
                                        "method_not_allowed",
                                        "cancel with DELETE");
    }

    rc = ngx_game_mm_who(r, &player);
    if (rc != NGX_OK) {
        return ngx_game_mm_refuse(r, rc);
    }

    mmcf = ngx_http_get_module_main_conf(r, ngx_game_mm_module);

    argv[0] = (char *) mmcf->prefix.data;
    argvlen[0] = mmcf->prefix.len;
    argv[1] = (char *) player.data;
    argvlen[1] = player.len;

    rc = ngx_game_mm_script(r, &ngx_game_mm_lua_cancel,
                            ngx_game_mm_cancel_done, r, 2, argv, argvlen);
    if (rc != NGX_AGAIN) {
        return ngx_game_http_send_outcome(r, rc, "the matchmaker");
    }

    r->main->count++;
    return NGX_DONE;
}


static void
ngx_game_mm_cancel_done(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply)
{
    json_t              *body;
    ngx_str_t            ticket;
    ngx_http_request_t  *r = cmd->data;

    if (rc != NGX_OK) {
        ngx_http_finalize_request(r,
            ngx_game_http_send_outcome(r, rc, "the matchmaker"));
        return;
    }

    if (ngx_game_mm_reply_is(reply, "MATCHED")) {
        ngx_http_finalize_request(r,
            ngx_game_http_send_error(r, NGX_HTTP_CONFLICT, "already_matched",
                                     "the ticket is already in a match"));
        return;
    }

    if (!ngx_game_mm_reply_is(reply, "OK") || reply->elements < 2) {
        ngx_http_finalize_request(r,
            ngx_game_http_send_error(r, NGX_HTTP_NOT_FOUND, "no_ticket",
                                     "the player has no queued ticket"));
        return;
    }

    ticket.data = (u_char *) reply->element[1]->str;
    ticket.len = reply->element[1]->len;
    ngx_game_mm_notify(ngx_http_get_module_main_conf(r, ngx_game_mm_module),
                       &ticket, 1);

    body = json_pack("{s:s#,s:s}", "ticket_id", reply->element[1]->str,
                     (int) reply->element[1]->len, "status", "cancelled");
    if (body == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_finalize_request(r, ngx_game_http_send_json(r, NGX_HTTP_OK,
                                                         body));
    json_decref(body);
}


/* helpers */

ngx_int_t
ngx_game_mm_script(ngx_http_request_t *r, ngx_game_redis_script_t *script,
    ngx_game_redis_handler_pt handler, void *data, int argc,
    const char **argv, const size_t *argvlen)
{
    ngx_game_redis_cmd_t     *cmd;
    ngx_game_mm_main_conf_t  *mmcf;

    mmcf = ngx_http_get_module_main_conf(r, ngx_game_mm_module);

    cmd = ngx_game_redis_request_cmd(r);
    if (cmd == NULL) {
        return NGX_ERROR;
    }

    cmd->handler = handler;
    cmd->data = data;

    return ngx_game_redis_eval(mmcf->redis, cmd, script, 0, argc, argv,
                               argvlen);
}


/* the first element of a script's reply is its verdict */
ngx_int_t
ngx_game_mm_reply_is(redisReply *reply, const char *word)
{
    return reply && reply->type == REDIS_REPLY_ARRAY && reply->elements > 0
           && reply->element[0]->type == REDIS_REPLY_STRING
           && ngx_strcmp(reply->element[0]->str, word) == 0;
}


/*
 * The next item of a comma-separated list of ids (a ticket's players, a
 * party's members): 0 when the list is used up.
 */

ngx_uint_t
ngx_game_mm_next_id(u_char **p, u_char *last, ngx_str_t *id)
{
    u_char  *comma;

    if (*p >= last) {
        return 0;
    }

    comma = ngx_strlchr(*p, last, ',');
    if (comma == NULL) {
        comma = last;
    }

    id->data = *p;
    id->len = comma - *p;
    *p = comma + 1;

    return 1;
}
