/*
 * game_alloc_proto.c: the transport-free half of the allocator.
 *
 * Builders turn a request into the argv of an EVALSHA command, parsers
 * turn a script's reply into a game_alloc_result_t.  Neither allocates
 * memory nor touches a socket, so the same code serves the blocking
 * client, the nginx module's async pool and the unit tests.
 *
 * Every script replies with a flat array of bulk strings whose first
 * element is a status word; RESP errors are left for real failures
 * (NOSCRIPT, OOM, a bug in a script).  A parser therefore sees only
 * strings, which every Redis client can hand over as (data, len) pairs.
 */

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "game_alloc.h"


static const char *game_alloc_state_names[] = {
    "Starting", "Ready", "Allocated", "Playing", "Finished", "Shutdown"
};

static const char *game_alloc_status_names[] = {
    "OK", "NO_SERVER", "MATCH_GONE", "ILLEGAL", "NOT_OWNER", "NOT_FOUND",
    "EXPIRED", "BAD_ARG", "STALE", "BUSY", "ERROR"
};

#define GAME_ALLOC_NSTATES  (sizeof(game_alloc_state_names) / sizeof(char *))
#define GAME_ALLOC_NSTATUS  (sizeof(game_alloc_status_names) / sizeof(char *))

#define GAME_ALLOC_PREFIX_MAX  64
#define GAME_ALLOC_TTL_MAX     3600000
#define GAME_ALLOC_COUNT_MAX   1000000


const char *
game_alloc_state_name(game_alloc_state_t state)
{
    if ((size_t) state >= GAME_ALLOC_NSTATES) {
        return "Unknown";
    }

    return game_alloc_state_names[state];
}


game_alloc_state_t
game_alloc_state_from(const char *name, size_t len)
{
    size_t  i;

    for (i = 0; i < GAME_ALLOC_NSTATES; i++) {
        if (strlen(game_alloc_state_names[i]) == len
            && memcmp(game_alloc_state_names[i], name, len) == 0)
        {
            return (game_alloc_state_t) i;
        }
    }

    return GAME_ALLOC_STATE_UNKNOWN;
}


const char *
game_alloc_status_name(game_alloc_status_t status)
{
    if ((size_t) status >= GAME_ALLOC_NSTATUS) {
        return "ERROR";
    }

    return game_alloc_status_names[status];
}


/*
 * Names end up inside key names ("game:ready:eu:duel:1.4"), so they are
 * kept to a charset without ':' or glob characters: otherwise region
 * "eu:duel" with mode "x" and region "eu" with mode "duel:x" would share
 * an index.
 */
static int
game_alloc_valid_name(const char *s)
{
    size_t  n;

    if (s == NULL) {
        return 0;
    }

    for (n = 0; s[n] != '\0'; n++) {
        if (n == GAME_ALLOC_NAME_MAX) {
            return 0;
        }

        if (!((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z')
              || (s[n] >= '0' && s[n] <= '9')
              || s[n] == '-' || s[n] == '_' || s[n] == '.'))
        {
            return 0;
        }
    }

    return n > 0;
}


/*
 * Tokens, addresses, prefixes and hosts: either not part of a key, or at
 * its very end ("game:host:::1"), where they cannot be mistaken for
 * another name.
 */
static int
game_alloc_valid_text(const char *s, size_t max)
{
    size_t  n;

    if (s == NULL) {
        return 0;
    }

    for (n = 0; s[n] != '\0'; n++) {
        if (n == max || s[n] <= ' ' || s[n] == 0x7f) {
            return 0;
        }
    }

    return n > 0;
}


static void
game_alloc_argv_init(game_alloc_argv_t *a, game_alloc_script_e script,
    const char *numkeys)
{
    a->script = script;
    a->argc = 3;
    a->used = 0;
    a->argv[0] = "EVALSHA";
    a->argvlen[0] = sizeof("EVALSHA") - 1;
    a->argv[1] = game_alloc_scripts[script].sha1;
    a->argvlen[1] = 40;
    a->argv[2] = numkeys;
    a->argvlen[2] = strlen(numkeys);
}


/* Arguments the caller owns: argv only points at them. */
static game_alloc_status_t
game_alloc_argv_push(game_alloc_argv_t *a, const char *s)
{
    if (a->argc == GAME_ALLOC_ARGV_MAX) {
        return GAME_ALLOC_BAD_ARG;
    }

    a->argv[a->argc] = s;
    a->argvlen[a->argc] = strlen(s);
    a->argc++;

    return GAME_ALLOC_OK;
}


/* Arguments composed here (keys, numbers) live in a->buf. */
static game_alloc_status_t __attribute__((format(printf, 2, 3)))
game_alloc_argv_fmt(game_alloc_argv_t *a, const char *fmt, ...)
{
    int      len;
    size_t   room;
    va_list  args;

    if (a->argc == GAME_ALLOC_ARGV_MAX) {
        return GAME_ALLOC_BAD_ARG;
    }

    room = sizeof(a->buf) - a->used;

    va_start(args, fmt);
    len = vsnprintf(a->buf + a->used, room, fmt, args);
    va_end(args);

    if (len < 0 || (size_t) len >= room) {
        return GAME_ALLOC_BAD_ARG;
    }

    a->argv[a->argc] = a->buf + a->used;
    a->argvlen[a->argc] = (size_t) len;
    a->argc++;
    a->used += (size_t) len + 1;

    return GAME_ALLOC_OK;
}


/* The two keys of every per-server script: the hash and the heartbeat. */
static game_alloc_status_t
game_alloc_argv_server(game_alloc_argv_t *a, game_alloc_script_e script,
    const char *prefix, const char *id, const char *token)
{
    if (!game_alloc_valid_text(prefix, GAME_ALLOC_PREFIX_MAX)
        || !game_alloc_valid_name(id)
        || !game_alloc_valid_text(token, GAME_ALLOC_NAME_MAX))
    {
        return GAME_ALLOC_BAD_ARG;
    }

    game_alloc_argv_init(a, script, "2");

    if (game_alloc_argv_fmt(a, "%sserver:%s", prefix, id) != GAME_ALLOC_OK
        || game_alloc_argv_fmt(a, "%shb:%s", prefix, id) != GAME_ALLOC_OK
        || game_alloc_argv_push(a, prefix) != GAME_ALLOC_OK
        || game_alloc_argv_push(a, id) != GAME_ALLOC_OK)
    {
        return GAME_ALLOC_BAD_ARG;
    }

    return game_alloc_argv_push(a, token);
}


game_alloc_status_t
game_alloc_argv_register(game_alloc_argv_t *a, const char *prefix,
    const game_alloc_server_t *s)
{
    const char  *host, *build;

    host = s->host ? s->host : s->addr;
    build = s->build ? s->build : "";

    if (!game_alloc_valid_text(s->addr, GAME_ALLOC_NAME_MAX)
        || !game_alloc_valid_name(s->region)
        || !game_alloc_valid_name(s->mode)
        || (build[0] != '\0' && !game_alloc_valid_name(build))
        || !game_alloc_valid_text(host, GAME_ALLOC_NAME_MAX)
        || s->port < 1 || s->port > 65535
        || s->capacity < 0 || s->capacity > GAME_ALLOC_COUNT_MAX
        || s->ttl_ms < 1 || s->ttl_ms > GAME_ALLOC_TTL_MAX
        || (s->state != GAME_ALLOC_STARTING && s->state != GAME_ALLOC_READY))
    {
        return GAME_ALLOC_BAD_ARG;
    }

    if (game_alloc_argv_server(a, GAME_ALLOC_REGISTER, prefix, s->id,
                               s->token) != GAME_ALLOC_OK
        || game_alloc_argv_push(a, s->addr) != GAME_ALLOC_OK
        || game_alloc_argv_fmt(a, "%d", s->port) != GAME_ALLOC_OK
        || game_alloc_argv_push(a, s->region) != GAME_ALLOC_OK
        || game_alloc_argv_push(a, s->mode) != GAME_ALLOC_OK
        || game_alloc_argv_push(a, build) != GAME_ALLOC_OK
        || game_alloc_argv_push(a, host) != GAME_ALLOC_OK
        || game_alloc_argv_fmt(a, "%d", s->capacity) != GAME_ALLOC_OK
        || game_alloc_argv_push(a, game_alloc_state_name(s->state))
           != GAME_ALLOC_OK)
    {
        return GAME_ALLOC_BAD_ARG;
    }

    return game_alloc_argv_fmt(a, "%d", s->ttl_ms);
}


game_alloc_status_t
game_alloc_argv_heartbeat(game_alloc_argv_t *a, const char *prefix,
    const char *id, const char *token)
{
    return game_alloc_argv_server(a, GAME_ALLOC_HEARTBEAT, prefix, id, token);
}


game_alloc_status_t
game_alloc_argv_allocate(game_alloc_argv_t *a, const char *prefix,
    const game_alloc_request_t *r)
{
    const char  *build;

    build = r->build ? r->build : "";

    if (!game_alloc_valid_text(prefix, GAME_ALLOC_PREFIX_MAX)
        || !game_alloc_valid_name(r->region)
        || !game_alloc_valid_name(r->mode)
        || (build[0] != '\0' && !game_alloc_valid_name(build))
        || !game_alloc_valid_name(r->match_id)
        || r->players < 0 || r->players > GAME_ALLOC_COUNT_MAX)
    {
        return GAME_ALLOC_BAD_ARG;
    }

    game_alloc_argv_init(a, GAME_ALLOC_ALLOCATE, "2");

    if (game_alloc_argv_fmt(a, "%smatch:%s", prefix, r->match_id)
        != GAME_ALLOC_OK)
    {
        return GAME_ALLOC_BAD_ARG;
    }

    /* a pinned build has its own index: the any-build one plus ":build" */
    if (game_alloc_argv_fmt(a, "%sready:%s:%s%s%s", prefix, r->region,
                            r->mode, build[0] ? ":" : "", build)
        != GAME_ALLOC_OK
        || game_alloc_argv_push(a, prefix) != GAME_ALLOC_OK
        || game_alloc_argv_push(a, r->match_id) != GAME_ALLOC_OK
        || game_alloc_argv_push(a, r->region) != GAME_ALLOC_OK
        || game_alloc_argv_push(a, r->mode) != GAME_ALLOC_OK
        || game_alloc_argv_push(a, build) != GAME_ALLOC_OK)
    {
        return GAME_ALLOC_BAD_ARG;
    }

    return game_alloc_argv_fmt(a, "%d", r->players);
}


/*
 * The players seated at a match's start end up in the match record as one
 * comma-separated field, which the matchmaker splits again: an id must
 * not contain the separator, nor anything a name could not.
 */
static int
game_alloc_valid_list(const char *s)
{
    size_t  n, ids;

    for (ids = 0; *s != '\0'; ids++) {
        if (ids == GAME_ALLOC_SEATED_MAX) {
            return 0;
        }

        for (n = 0; s[n] != '\0' && s[n] != ','; n++) {
            if (n == GAME_ALLOC_NAME_MAX || s[n] <= ' ' || s[n] == 0x7f) {
                return 0;
            }
        }

        if (n == 0 || (s[n] == ',' && s[n + 1] == '\0')) {
            return 0;               /* "a,,b", ",a" and "a," */
        }

        s += s[n] == ',' ? n + 1 : n;
    }

    return 1;
}


game_alloc_status_t
game_alloc_argv_set_state(game_alloc_argv_t *a, const char *prefix,
    const char *id, const char *token, game_alloc_state_t to,
    const char *match_id, const char *seated)
{
    if (match_id == NULL) {
        match_id = "";
    }

    if ((size_t) to >= GAME_ALLOC_NSTATES
        || (match_id[0] != '\0' && !game_alloc_valid_name(match_id))
        || (seated != NULL
            && (to != GAME_ALLOC_PLAYING || !game_alloc_valid_list(seated)))
        || game_alloc_argv_server(a, GAME_ALLOC_SET_STATE, prefix, id, token)
           != GAME_ALLOC_OK
        || game_alloc_argv_push(a, game_alloc_state_name(to))
           != GAME_ALLOC_OK
        || game_alloc_argv_push(a, match_id) != GAME_ALLOC_OK)
    {
        return GAME_ALLOC_BAD_ARG;
    }

    /* borrowed like every string: 64 ids of 64 bytes would not fit buf */
    return seated ? game_alloc_argv_push(a, seated) : GAME_ALLOC_OK;
}


game_alloc_status_t
game_alloc_argv_deregister(game_alloc_argv_t *a, const char *prefix,
    const char *id, const char *token)
{
    return game_alloc_argv_server(a, GAME_ALLOC_DEREGISTER, prefix, id,
                                  token);
}


game_alloc_status_t
game_alloc_argv_reap(game_alloc_argv_t *a, const char *prefix, int grace_ms)
{
    if (!game_alloc_valid_text(prefix, GAME_ALLOC_PREFIX_MAX)
        || grace_ms > GAME_ALLOC_TTL_MAX)
    {
        return GAME_ALLOC_BAD_ARG;
    }

    game_alloc_argv_init(a, GAME_ALLOC_REAP, "0");

    if (game_alloc_argv_push(a, prefix) != GAME_ALLOC_OK) {
        return GAME_ALLOC_BAD_ARG;
    }

    return grace_ms < 0 ? GAME_ALLOC_OK
                        : game_alloc_argv_fmt(a, "%d", grace_ms);
}


/* No token: draining is an operator's act (see drain.lua). */
game_alloc_status_t
game_alloc_argv_drain(game_alloc_argv_t *a, const char *prefix,
    const char *id)
{
    if (!game_alloc_valid_text(prefix, GAME_ALLOC_PREFIX_MAX)
        || !game_alloc_valid_name(id))
    {
        return GAME_ALLOC_BAD_ARG;
    }

    game_alloc_argv_init(a, GAME_ALLOC_DRAIN, "2");

    if (game_alloc_argv_fmt(a, "%sserver:%s", prefix, id) != GAME_ALLOC_OK
        || game_alloc_argv_fmt(a, "%shb:%s", prefix, id) != GAME_ALLOC_OK
        || game_alloc_argv_push(a, prefix) != GAME_ALLOC_OK)
    {
        return GAME_ALLOC_BAD_ARG;
    }

    return game_alloc_argv_push(a, id);
}


/*
 * A Redis that restarted or ran SCRIPT FLUSH answers EVALSHA with
 * NOSCRIPT; EVAL with the full text both runs the script and caches it,
 * so the next EVALSHA from any client succeeds again.
 */
void
game_alloc_argv_eval(game_alloc_argv_t *a)
{
    a->argv[0] = "EVAL";
    a->argvlen[0] = sizeof("EVAL") - 1;
    a->argv[1] = game_alloc_scripts[a->script].text;
    a->argvlen[1] = game_alloc_scripts[a->script].len;
}


int
game_alloc_is_noscript(const char *err, size_t len)
{
    return len >= 8 && memcmp(err, "NOSCRIPT", 8) == 0;
}


static int
game_alloc_copy(char *dst, const game_alloc_str_t *src)
{
    if (src->len > GAME_ALLOC_NAME_MAX) {
        return -1;
    }

    memcpy(dst, src->data, src->len);
    dst[src->len] = '\0';

    return 0;
}


/* A non-negative decimal no larger than max, or -1. */
static int
game_alloc_number(const game_alloc_str_t *src, int max)
{
    size_t  i;
    long    n;

    if (src->len == 0 || src->len > 10) {
        return -1;
    }

    n = 0;

    for (i = 0; i < src->len; i++) {
        if (src->data[i] < '0' || src->data[i] > '9') {
            return -1;
        }

        n = n * 10 + (src->data[i] - '0');
    }

    return n > max ? -1 : (int) n;
}


/*
 * {'OK', id, addr, port, match, players, mode, state, existing [, drain]}
 * allocate sends nine, heartbeat appends its drain flag: new fields only
 * ever go at the end, so a reader of the first nine keeps working.
 */
static game_alloc_status_t
game_alloc_parse_assignment(const game_alloc_str_t *e, size_t n,
    game_alloc_result_t *res)
{
    if ((n != 9 && n != 10)
        || (n == 10 && (res->drain = game_alloc_number(&e[9], 1)) < 0)
        || game_alloc_copy(res->server_id, &e[1]) != 0
        || game_alloc_copy(res->addr, &e[2]) != 0
        || game_alloc_copy(res->match_id, &e[4]) != 0
        || game_alloc_copy(res->mode, &e[6]) != 0
        || (res->port = game_alloc_number(&e[3], 65535)) <= 0
        || (res->players = game_alloc_number(&e[5], GAME_ALLOC_COUNT_MAX)) < 0
        || (res->existing = game_alloc_number(&e[8], 1)) < 0)
    {
        return GAME_ALLOC_ERROR;
    }

    res->state = game_alloc_state_from(e[7].data, e[7].len);

    return res->state == GAME_ALLOC_STATE_UNKNOWN ? GAME_ALLOC_ERROR
                                                  : GAME_ALLOC_OK;
}


static game_alloc_status_t
game_alloc_parse_ok(game_alloc_script_e script, const game_alloc_str_t *e,
    size_t n, game_alloc_result_t *res)
{
    switch (script) {

    case GAME_ALLOC_ALLOCATE:
    case GAME_ALLOC_HEARTBEAT:
        return game_alloc_parse_assignment(e, n, res);

    case GAME_ALLOC_REGISTER:
    case GAME_ALLOC_SET_STATE:
    case GAME_ALLOC_DRAIN:
        if (n != 2) {
            return GAME_ALLOC_ERROR;
        }

        res->state = game_alloc_state_from(e[1].data, e[1].len);

        return res->state == GAME_ALLOC_STATE_UNKNOWN ? GAME_ALLOC_ERROR
                                                      : GAME_ALLOC_OK;

    case GAME_ALLOC_REAP:
        if (n != 2) {
            return GAME_ALLOC_ERROR;
        }

        res->count = game_alloc_number(&e[1], GAME_ALLOC_COUNT_MAX);

        return res->count < 0 ? GAME_ALLOC_ERROR : GAME_ALLOC_OK;

    case GAME_ALLOC_DEREGISTER:
        return n == 1 ? GAME_ALLOC_OK : GAME_ALLOC_ERROR;

    default:
        return GAME_ALLOC_ERROR;
    }
}


game_alloc_status_t
game_alloc_parse(game_alloc_script_e script, const game_alloc_str_t *elts,
    size_t n, game_alloc_result_t *res)
{
    size_t               i;
    game_alloc_status_t  status;

    memset(res, 0, sizeof(*res));
    res->state = GAME_ALLOC_STATE_UNKNOWN;

    if (n == 0 || (size_t) script >= GAME_ALLOC_NSCRIPTS) {
        return GAME_ALLOC_ERROR;
    }

    status = GAME_ALLOC_ERROR;

    for (i = 0; i < GAME_ALLOC_NSTATUS - 1; i++) {
        if (strlen(game_alloc_status_names[i]) == elts[0].len
            && memcmp(game_alloc_status_names[i], elts[0].data, elts[0].len)
               == 0)
        {
            status = (game_alloc_status_t) i;
            break;
        }
    }

    switch (status) {

    case GAME_ALLOC_OK:
        return game_alloc_parse_ok(script, elts, n, res);

    case GAME_ALLOC_ILLEGAL:
        /* the state the server is really in, for the caller's message */
        if (n == 2) {
            res->state = game_alloc_state_from(elts[1].data, elts[1].len);
        }
        break;

    case GAME_ALLOC_MATCH_GONE:
        /* the server the match had, for the caller's logs */
        if (n != 2 || game_alloc_copy(res->server_id, &elts[1]) != 0) {
            return GAME_ALLOC_ERROR;
        }
        break;

    case GAME_ALLOC_STALE:
        /* the match the server really holds ("" when none) */
        if (n != 2 || game_alloc_copy(res->match_id, &elts[1]) != 0) {
            return GAME_ALLOC_ERROR;
        }
        break;

    case GAME_ALLOC_BUSY:
        /* the state in which the drained server keeps its match */
        if (n != 2) {
            return GAME_ALLOC_ERROR;
        }
        res->state = game_alloc_state_from(elts[1].data, elts[1].len);
        if (res->state == GAME_ALLOC_STATE_UNKNOWN) {
            return GAME_ALLOC_ERROR;
        }
        break;

    default:
        break;
    }

    return status;
}
