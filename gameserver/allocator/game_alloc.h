/*
 * game_alloc.h: hand game servers to matches through Redis.
 *
 * The core is transport-free: the Lua scripts, EVALSHA argv builders and
 * reply parsers, for any Redis client (the nginx matchmaking module runs
 * them on its async pool).  The blocking client below is for the game
 * servers, the fleet manager and the CLI.  Keys, states, replies:
 * gameserver/ALLOCATOR.md.
 */
#ifndef GAME_ALLOC_H
#define GAME_ALLOC_H

#include <stddef.h>

#define GAME_ALLOC_NAME_MAX  64     /* ids, labels, tokens, addresses */
#define GAME_ALLOC_ARGV_MAX  20
#define GAME_ALLOC_ARGBUF    768
#define GAME_ALLOC_SEATED_MAX 64    /* player ids in one set_state Playing */

typedef enum {
    GAME_ALLOC_STARTING, GAME_ALLOC_READY, GAME_ALLOC_ALLOCATED,
    GAME_ALLOC_PLAYING, GAME_ALLOC_FINISHED, GAME_ALLOC_SHUTDOWN,
    GAME_ALLOC_STATE_UNKNOWN
} game_alloc_state_t;

typedef enum {
    GAME_ALLOC_OK, GAME_ALLOC_NO_SERVER, GAME_ALLOC_MATCH_GONE,
    GAME_ALLOC_ILLEGAL, GAME_ALLOC_NOT_OWNER, GAME_ALLOC_NOT_FOUND,
    GAME_ALLOC_EXPIRED, GAME_ALLOC_BAD_ARG, GAME_ALLOC_STALE,
    GAME_ALLOC_BUSY, GAME_ALLOC_ERROR
} game_alloc_status_t;

typedef enum {
    GAME_ALLOC_REGISTER, GAME_ALLOC_HEARTBEAT, GAME_ALLOC_ALLOCATE,
    GAME_ALLOC_SET_STATE, GAME_ALLOC_DEREGISTER, GAME_ALLOC_REAP,
    GAME_ALLOC_DRAIN, GAME_ALLOC_NSCRIPTS
} game_alloc_script_e;

typedef struct {                /* strings are borrowed, not copied */
    const char *id, *token, *addr, *region, *mode, *build, *host, *match_id;
    int port, capacity, ttl_ms; /* capacity 0: any; host NULL: addr */
    game_alloc_state_t state;   /* STARTING or READY when registering */
    int drain;                  /* game_alloc_list only: drain.lua marked it */
} game_alloc_server_t;

typedef struct {
    const char *region, *mode, *build, *match_id;   /* build NULL: any */
    int players;
} game_alloc_request_t;

typedef struct {                /* what a reply said; owns its strings */
    char server_id[GAME_ALLOC_NAME_MAX + 1], addr[GAME_ALLOC_NAME_MAX + 1];
    char match_id[GAME_ALLOC_NAME_MAX + 1], mode[GAME_ALLOC_NAME_MAX + 1];
    int port, players, existing, count;
    game_alloc_state_t state;   /* STALE: match_id is the server's match */
    int drain;                  /* heartbeat: drain.lua marked the server */
} game_alloc_result_t;

/* transport-free core */

typedef struct { const char *data; size_t len; } game_alloc_str_t;
typedef struct { const char *name, *text; size_t len; const char *sha1; }
    game_alloc_script_t;
extern const game_alloc_script_t game_alloc_scripts[GAME_ALLOC_NSCRIPTS];

typedef struct {                /* EVALSHA sha numkeys key... arg... */
    game_alloc_script_e script;
    int argc;
    const char *argv[GAME_ALLOC_ARGV_MAX];
    size_t argvlen[GAME_ALLOC_ARGV_MAX], used;
    char buf[GAME_ALLOC_ARGBUF];
} game_alloc_argv_t;

game_alloc_status_t game_alloc_argv_register(game_alloc_argv_t *a,
    const char *prefix, const game_alloc_server_t *s);
game_alloc_status_t game_alloc_argv_heartbeat(game_alloc_argv_t *a,
    const char *prefix, const char *id, const char *token);
game_alloc_status_t game_alloc_argv_allocate(game_alloc_argv_t *a,
    const char *prefix, const game_alloc_request_t *r);
/* match_id: the match the caller believes the server holds, fencing
 * Playing, Finished and a release to Ready (NULL or "": no check);
 * seated: Playing only, comma-separated player ids (NULL: not told) */
game_alloc_status_t game_alloc_argv_set_state(game_alloc_argv_t *a,
    const char *prefix, const char *id, const char *token,
    game_alloc_state_t to, const char *match_id, const char *seated);
game_alloc_status_t game_alloc_argv_deregister(game_alloc_argv_t *a,
    const char *prefix, const char *id, const char *token);
/* grace_ms < 0: the script's default (30 s) */
game_alloc_status_t game_alloc_argv_reap(game_alloc_argv_t *a,
    const char *prefix, int grace_ms);
game_alloc_status_t game_alloc_argv_drain(game_alloc_argv_t *a,
    const char *prefix, const char *id);
void game_alloc_argv_eval(game_alloc_argv_t *a);    /* after NOSCRIPT */
int game_alloc_is_noscript(const char *err, size_t len);
game_alloc_status_t game_alloc_parse(game_alloc_script_e script,
    const game_alloc_str_t *elts, size_t n, game_alloc_result_t *res);
const char *game_alloc_state_name(game_alloc_state_t state);
game_alloc_state_t game_alloc_state_from(const char *name, size_t len);
const char *game_alloc_status_name(game_alloc_status_t status);

/* blocking client (hiredis) */

typedef struct game_alloc_conn_s game_alloc_conn_t;
typedef void (*game_alloc_list_pt)(const game_alloc_server_t *s, int alive,
    void *data);
struct redisReply;

game_alloc_conn_t *game_alloc_connect(const char *host, int port,
    const char *prefix, int timeout_ms);    /* NULL prefix: "game:" */
const char *game_alloc_errstr(game_alloc_conn_t *c);   /* NULL: no error */
void game_alloc_close(game_alloc_conn_t *c);
game_alloc_status_t game_alloc_register(game_alloc_conn_t *c,
    const game_alloc_server_t *s);
game_alloc_status_t game_alloc_heartbeat(game_alloc_conn_t *c,
    const char *id, const char *token, game_alloc_result_t *res);
game_alloc_status_t game_alloc_allocate(game_alloc_conn_t *c,
    const game_alloc_request_t *r, game_alloc_result_t *res);
game_alloc_status_t game_alloc_set_state(game_alloc_conn_t *c,
    const char *id, const char *token, game_alloc_state_t to,
    const char *match_id, const char *seated, game_alloc_result_t *res);
game_alloc_status_t game_alloc_deregister(game_alloc_conn_t *c,
    const char *id, const char *token);
game_alloc_status_t game_alloc_reap(game_alloc_conn_t *c, int grace_ms,
    int *reaped);
/* OK: the server is Shutdown; BUSY: it keeps its match (res->state) and
 * shuts down after it */
game_alloc_status_t game_alloc_drain(game_alloc_conn_t *c, const char *id,
    game_alloc_result_t *res);
game_alloc_status_t game_alloc_list(game_alloc_conn_t *c, const char *region,
    game_alloc_list_pt handler, void *data);
game_alloc_status_t game_alloc_parse_reply(game_alloc_script_e script,
    const struct redisReply *r, game_alloc_result_t *res);

#endif /* GAME_ALLOC_H */
