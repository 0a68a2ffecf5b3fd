/*
 * game_alloc_cli.c: game-allocate, the allocator's command line.
 *
 * For operators and tests: every verb of the library, a listing and a
 * benchmark.  Results go to stdout as JSON, one object per line; errors
 * go to stderr as JSON too, so that scripts can read both.  Exit codes:
 * 0 done, 1 usage or Redis failure, 2 NO_SERVER, 3 any other refusal.
 * A drain that finds the server busy is done (the mark is set): exit 0.
 */

#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "game_alloc.h"
#include "game_alloc_bench.h"


#define GAME_ALLOC_CLI_OPTS_MAX  32

#define GAME_ALLOC_CLI_DONE      0
#define GAME_ALLOC_CLI_FAILED    1
#define GAME_ALLOC_CLI_NO_SERVER 2
#define GAME_ALLOC_CLI_REFUSED   3

typedef struct {
    const char          *name, *value;
} game_alloc_cli_opt_t;

typedef struct {
    char                 host[256];
    int                  port, timeout_ms;
    const char          *prefix;
    game_alloc_conn_t   *conn;
    int                  nopts;
    game_alloc_cli_opt_t opts[GAME_ALLOC_CLI_OPTS_MAX];
} game_alloc_cli_t;

typedef struct {
    const char          *name;
    const char          *options;       /* the --options it takes */
    int                (*handler)(game_alloc_cli_t *cli);
} game_alloc_cli_cmd_t;


static const char game_alloc_cli_usage[] =
"usage: game-allocate [--redis HOST:PORT] [--prefix P] [--timeout MS] CMD\n"
"  allocate   --region R --mode M [--build B] --match ID [--players N]\n"
"  list       [--region R]\n"
"  register   --id ID --addr A --port N --region R --mode M [--build B]\n"
"             [--host H] [--capacity N] [--state Starting|Ready]\n"
"             [--ttl MS] [--token T]\n"
"  heartbeat  --id ID --token T [--repeat N] [--interval MS]\n"
"  set-state  --id ID --token T --state S [--match M] [--seated ID,ID..]\n"
"  deregister --id ID --token T\n"
"  drain      --id ID     (alias: cordon) no new match; a busy server\n"
"             finishes its match, then shuts down\n"
"  reap       [--grace MS]\n"
"  scripts\n"
"  bench      [--servers N] [--requests N] [--concurrency N]\n"
"defaults: --redis 127.0.0.1:6379 --prefix game: --timeout 2000\n";


static const char *
game_alloc_cli_opt(game_alloc_cli_t *cli, const char *name)
{
    int  i;

    for (i = 0; i < cli->nopts; i++) {
        if (strcmp(cli->opts[i].name, name) == 0) {
            return cli->opts[i].value;
        }
    }

    return NULL;
}


static void
game_alloc_cli_print(FILE *f, json_t *obj)
{
    json_dumpf(obj, f, JSON_COMPACT);
    fputc('\n', f);
    fflush(f);
    json_decref(obj);
}


static int
game_alloc_cli_error(int code, const char *error, const char *fmt,
    const char *a, const char *b)
{
    char  msg[512];

    snprintf(msg, sizeof(msg), fmt, a, b);
    game_alloc_cli_print(stderr, json_pack("{s:s, s:s}", "error", error,
                                           "message", msg));
    return code;
}


static int
game_alloc_cli_usage_error(const char *fmt, const char *a)
{
    return game_alloc_cli_error(GAME_ALLOC_CLI_FAILED, "USAGE", fmt, a, "");
}


/* Reports a status that is not OK and picks the exit code. */
static int
game_alloc_cli_refused(game_alloc_cli_t *cli, game_alloc_status_t status,
    const game_alloc_result_t *res)
{
    const char  *name;

    name = game_alloc_status_name(status);

    switch (status) {

    case GAME_ALLOC_NO_SERVER:
        return game_alloc_cli_error(GAME_ALLOC_CLI_NO_SERVER, name,
                   "no live Ready server for region %s mode %s",
                   game_alloc_cli_opt(cli, "region"),
                   game_alloc_cli_opt(cli, "mode"));

    case GAME_ALLOC_ILLEGAL:
        return game_alloc_cli_error(GAME_ALLOC_CLI_REFUSED, name,
                   "server is %s, cannot go to %s",
                   game_alloc_state_name(res->state),
                   game_alloc_cli_opt(cli, "state"));

    case GAME_ALLOC_MATCH_GONE:
        return game_alloc_cli_error(GAME_ALLOC_CLI_REFUSED, name,
                   "match %s is over or its server %s is gone",
                   game_alloc_cli_opt(cli, "match"), res->server_id);

    case GAME_ALLOC_STALE:
        return game_alloc_cli_error(GAME_ALLOC_CLI_REFUSED, name,
                   "server holds match \"%s\", not %s", res->match_id,
                   game_alloc_cli_opt(cli, "match"));

    case GAME_ALLOC_BAD_ARG:
        return game_alloc_cli_error(GAME_ALLOC_CLI_FAILED, name,
                   "invalid argument (names: 1-64 of [A-Za-z0-9._-])%s%s",
                   "", "");

    case GAME_ALLOC_ERROR:
        return game_alloc_cli_error(GAME_ALLOC_CLI_FAILED, name, "%s%s",
                   game_alloc_errstr(cli->conn)
                   ? game_alloc_errstr(cli->conn) : "unknown error", "");

    default:
        return game_alloc_cli_error(GAME_ALLOC_CLI_REFUSED, name,
                   "refused for server %s%s",
                   game_alloc_cli_opt(cli, "id"), "");
    }
}


/* An integer option; *out keeps its default when the option is absent. */
static int
game_alloc_cli_int(game_alloc_cli_t *cli, const char *name, int min, int max,
    int *out)
{
    long         n;
    char        *end;
    const char  *v;

    v = game_alloc_cli_opt(cli, name);
    if (v == NULL) {
        return 0;
    }

    errno = 0;
    n = strtol(v, &end, 10);

    if (errno || end == v || *end != '\0' || n < min || n > max) {
        return -1;
    }

    *out = (int) n;

    return 0;
}


static const char *
game_alloc_cli_need(game_alloc_cli_t *cli, const char *name, int *missing)
{
    const char  *v;

    v = game_alloc_cli_opt(cli, name);

    if (v == NULL && *missing == 0) {
        game_alloc_cli_usage_error("--%s is required", name);
        *missing = 1;
    }

    return v;
}


static int
game_alloc_cli_allocate(game_alloc_cli_t *cli)
{
    int                   missing;
    game_alloc_request_t  r;
    game_alloc_result_t   res;
    game_alloc_status_t   status;

    missing = 0;
    r.region = game_alloc_cli_need(cli, "region", &missing);
    r.mode = game_alloc_cli_need(cli, "mode", &missing);
    r.match_id = game_alloc_cli_need(cli, "match", &missing);
    r.build = game_alloc_cli_opt(cli, "build");
    r.players = 0;

    if (missing) {
        return GAME_ALLOC_CLI_FAILED;
    }

    if (game_alloc_cli_int(cli, "players", 0, 1000000, &r.players) != 0) {
        return game_alloc_cli_usage_error("bad --players %s",
                                          game_alloc_cli_opt(cli, "players"));
    }

    status = game_alloc_allocate(cli->conn, &r, &res);
    if (status != GAME_ALLOC_OK) {
        return game_alloc_cli_refused(cli, status, &res);
    }

    game_alloc_cli_print(stdout,
        json_pack("{s:s, s:s, s:i, s:s, s:b}", "server_id", res.server_id,
                  "host", res.addr, "port", res.port,
                  "match_id", res.match_id, "existing", res.existing));

    return GAME_ALLOC_CLI_DONE;
}


static void
game_alloc_cli_list_one(const game_alloc_server_t *s, int alive, void *data)
{
    game_alloc_cli_print(stdout,
        json_pack("{s:s, s:s, s:{s:s, s:s, s:s}, s:s, s:s, s:i, s:i, s:s,"
                  " s:b, s:b}",
                  "id", s->id, "region", s->region,
                  "labels", "mode", s->mode, "build", s->build,
                  "host", s->host,
                  "state", game_alloc_state_name(s->state),
                  "address", s->addr, "port", s->port,
                  "capacity", s->capacity, "match_id", s->match_id,
                  "alive", alive, "drain", s->drain));
}


static int
game_alloc_cli_list(game_alloc_cli_t *cli)
{
    game_alloc_status_t  status;

    status = game_alloc_list(cli->conn, game_alloc_cli_opt(cli, "region"),
                             game_alloc_cli_list_one, NULL);

    return status == GAME_ALLOC_OK ? GAME_ALLOC_CLI_DONE
                                   : game_alloc_cli_refused(cli, status, NULL);
}


/* A token nobody else guesses, so that only this server can speak for it. */
static int
game_alloc_cli_token(char *buf, size_t size)
{
    int            fd;
    size_t         i;
    unsigned char  raw[16];

    fd = open("/dev/urandom", O_RDONLY);
    if (fd == -1) {
        return -1;
    }

    if (read(fd, raw, sizeof(raw)) != (ssize_t) sizeof(raw)) {
        close(fd);
        return -1;
    }

    close(fd);

    for (i = 0; i < sizeof(raw) && 2 * i + 2 < size; i++) {
        snprintf(buf + 2 * i, 3, "%02x", raw[i]);
    }

    return 0;
}


static int
game_alloc_cli_register(game_alloc_cli_t *cli)
{
    int                  missing;
    char                 token[40];
    const char          *state;
    game_alloc_server_t  s;
    game_alloc_status_t  status;

    memset(&s, 0, sizeof(s));
    missing = 0;
    s.id = game_alloc_cli_need(cli, "id", &missing);
    s.addr = game_alloc_cli_need(cli, "addr", &missing);
    s.region = game_alloc_cli_need(cli, "region", &missing);
    s.mode = game_alloc_cli_need(cli, "mode", &missing);
    game_alloc_cli_need(cli, "port", &missing);
    s.build = game_alloc_cli_opt(cli, "build");
    s.host = game_alloc_cli_opt(cli, "host");
    s.token = game_alloc_cli_opt(cli, "token");
    s.ttl_ms = 3000;
    s.state = GAME_ALLOC_READY;

    if (missing) {
        return GAME_ALLOC_CLI_FAILED;
    }

    if (game_alloc_cli_int(cli, "port", 1, 65535, &s.port) != 0
        || game_alloc_cli_int(cli, "capacity", 0, 1000000, &s.capacity) != 0
        || game_alloc_cli_int(cli, "ttl", 1, 3600000, &s.ttl_ms) != 0)
    {
        return game_alloc_cli_usage_error("bad number in --port, --capacity"
                                          " or --ttl%s", "");
    }

    state = game_alloc_cli_opt(cli, "state");
    if (state) {
        s.state = game_alloc_state_from(state, strlen(state));
    }

    if (s.token == NULL) {
        if (game_alloc_cli_token(token, sizeof(token)) != 0) {
            return game_alloc_cli_usage_error("cannot read /dev/urandom%s",
                                              "");
        }
        s.token = token;
    }

    status = game_alloc_register(cli->conn, &s);
    if (status != GAME_ALLOC_OK) {
        return game_alloc_cli_refused(cli, status, NULL);
    }

    game_alloc_cli_print(stdout,
        json_pack("{s:s, s:s, s:s}", "server_id", s.id,
                  "state", game_alloc_state_name(s.state), "token", s.token));

    return GAME_ALLOC_CLI_DONE;
}


static int
game_alloc_cli_heartbeat(game_alloc_cli_t *cli)
{
    int                   i, missing, repeat, interval;
    const char           *id, *token;
    struct timespec       ts;
    game_alloc_result_t   res;
    game_alloc_status_t   status;

    missing = 0;
    id = game_alloc_cli_need(cli, "id", &missing);
    token = game_alloc_cli_need(cli, "token", &missing);
    repeat = 1;
    interval = 1000;

    if (missing) {
        return GAME_ALLOC_CLI_FAILED;
    }

    if (game_alloc_cli_int(cli, "repeat", 1, INT_MAX, &repeat) != 0
        || game_alloc_cli_int(cli, "interval", 1, 3600000, &interval) != 0)
    {
        return game_alloc_cli_usage_error("bad --repeat or --interval%s", "");
    }

    for (i = 0; i < repeat; i++) {
        if (i > 0) {
            ts.tv_sec = interval / 1000;
            ts.tv_nsec = (long) (interval % 1000) * 1000000;
            nanosleep(&ts, NULL);
        }

        status = game_alloc_heartbeat(cli->conn, id, token, &res);
        if (status != GAME_ALLOC_OK) {
            return game_alloc_cli_refused(cli, status, &res);
        }

        game_alloc_cli_print(stdout,
            json_pack("{s:s, s:s, s:s, s:i, s:s, s:b}", "server_id", id,
                      "state", game_alloc_state_name(res.state),
                      "match_id", res.match_id, "players", res.players,
                      "mode", res.mode, "drain", res.drain));
    }

    return GAME_ALLOC_CLI_DONE;
}


static int
game_alloc_cli_set_state(game_alloc_cli_t *cli)
{
    int                   missing;
    const char           *id, *token, *state;
    game_alloc_state_t    to;
    game_alloc_result_t   res;
    game_alloc_status_t   status;

    missing = 0;
    id = game_alloc_cli_need(cli, "id", &missing);
    token = game_alloc_cli_need(cli, "token", &missing);
    state = game_alloc_cli_need(cli, "state", &missing);

    if (missing) {
        return GAME_ALLOC_CLI_FAILED;
    }

    to = game_alloc_state_from(state, strlen(state));
    if (to == GAME_ALLOC_STATE_UNKNOWN) {
        return game_alloc_cli_usage_error("unknown state %s", state);
    }

    status = game_alloc_set_state(cli->conn, id, token, to,
                                  game_alloc_cli_opt(cli, "match"),
                                  game_alloc_cli_opt(cli, "seated"), &res);
    if (status != GAME_ALLOC_OK) {
        return game_alloc_cli_refused(cli, status, &res);
    }

    game_alloc_cli_print(stdout,
        json_pack("{s:s, s:s}", "server_id", id,
                  "state", game_alloc_state_name(res.state)));

    return GAME_ALLOC_CLI_DONE;
}


static int
game_alloc_cli_deregister(game_alloc_cli_t *cli)
{
    int                  missing;
    const char          *id, *token;
    game_alloc_status_t  status;

    missing = 0;
    id = game_alloc_cli_need(cli, "id", &missing);
    token = game_alloc_cli_need(cli, "token", &missing);

    if (missing) {
        return GAME_ALLOC_CLI_FAILED;
    }

    status = game_alloc_deregister(cli->conn, id, token);
    if (status != GAME_ALLOC_OK) {
        return game_alloc_cli_refused(cli, status, NULL);
    }

    game_alloc_cli_print(stdout,
        json_pack("{s:s, s:b}", "server_id", id, "deregistered", 1));

    return GAME_ALLOC_CLI_DONE;
}


/* drain and cordon: one script, see drain.lua */
static int
game_alloc_cli_drain(game_alloc_cli_t *cli)
{
    int                   missing;
    const char           *id;
    game_alloc_result_t   res;
    game_alloc_status_t   status;

    missing = 0;
    id = game_alloc_cli_need(cli, "id", &missing);

    if (missing) {
        return GAME_ALLOC_CLI_FAILED;
    }

    status = game_alloc_drain(cli->conn, id, &res);
    if (status != GAME_ALLOC_OK && status != GAME_ALLOC_BUSY) {
        return game_alloc_cli_refused(cli, status, &res);
    }

    game_alloc_cli_print(stdout,
        json_pack("{s:s, s:s, s:s}", "server_id", id,
                  "status", game_alloc_status_name(status),
                  "state", game_alloc_state_name(res.state)));

    return GAME_ALLOC_CLI_DONE;
}


static int
game_alloc_cli_reap(game_alloc_cli_t *cli)
{
    int                  n, grace;
    game_alloc_status_t  status;

    grace = -1;
    if (game_alloc_cli_int(cli, "grace", 0, 3600000, &grace) != 0) {
        return game_alloc_cli_usage_error("bad --grace %s",
                                          game_alloc_cli_opt(cli, "grace"));
    }

    status = game_alloc_reap(cli->conn, grace, &n);
    if (status != GAME_ALLOC_OK) {
        return game_alloc_cli_refused(cli, status, NULL);
    }

    game_alloc_cli_print(stdout, json_pack("{s:i}", "reaped", n));

    return GAME_ALLOC_CLI_DONE;
}


static int
game_alloc_cli_scripts(game_alloc_cli_t *cli)
{
    int                         i;
    const game_alloc_script_t  *s;

    for (i = 0; i < GAME_ALLOC_NSCRIPTS; i++) {
        s = &game_alloc_scripts[i];
        game_alloc_cli_print(stdout,
            json_pack("{s:s, s:s, s:i}", "name", s->name, "sha1", s->sha1,
                      "bytes", (int) s->len));
    }

    return GAME_ALLOC_CLI_DONE;
}


static int
game_alloc_cli_bench(game_alloc_cli_t *cli)
{
    game_alloc_bench_conf_t  conf;

    conf.host = cli->host;
    conf.port = cli->port;
    conf.prefix = cli->prefix;
    conf.timeout_ms = cli->timeout_ms;
    conf.servers = 50;
    conf.requests = 20000;
    conf.concurrency = 32;

    if (game_alloc_cli_int(cli, "servers", 1, 100000, &conf.servers) != 0
        || game_alloc_cli_int(cli, "requests", 1, 10000000, &conf.requests)
           != 0
        || game_alloc_cli_int(cli, "concurrency", 1, 1024, &conf.concurrency)
           != 0)
    {
        return game_alloc_cli_usage_error("bad --servers, --requests or"
                                          " --concurrency%s", "");
    }

    return game_alloc_bench(&conf) == 0 ? GAME_ALLOC_CLI_DONE
                                        : GAME_ALLOC_CLI_FAILED;
}


static const game_alloc_cli_cmd_t game_alloc_cli_cmds[] = {
    { "allocate", " region mode build match players ",
      game_alloc_cli_allocate },
    { "list", " region ", game_alloc_cli_list },
    { "register", " id addr port region mode build host capacity state ttl"
                  " token ", game_alloc_cli_register },
    { "heartbeat", " id token repeat interval ", game_alloc_cli_heartbeat },
    { "set-state", " id token state match seated ",
      game_alloc_cli_set_state },
    { "deregister", " id token ", game_alloc_cli_deregister },
    { "drain", " id ", game_alloc_cli_drain },
    { "cordon", " id ", game_alloc_cli_drain },
    { "reap", " grace ", game_alloc_cli_reap },
    { "scripts", " ", game_alloc_cli_scripts },
    { "bench", " servers requests concurrency ", game_alloc_cli_bench },
    { NULL, NULL, NULL }
};


static int
game_alloc_cli_redis(game_alloc_cli_t *cli, const char *addr)
{
    long         port;
    char        *end;
    const char  *colon;

    colon = strrchr(addr, ':');

    if (colon == NULL || colon == addr
        || (size_t) (colon - addr) >= sizeof(cli->host))
    {
        return -1;
    }

    port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || port < 1 || port > 65535) {
        return -1;
    }

    memcpy(cli->host, addr, colon - addr);
    cli->host[colon - addr] = '\0';
    cli->port = (int) port;

    return 0;
}


/*
 * Options are "--name value" pairs and may come before or after the
 * command; --redis, --prefix and --timeout belong to every command.
 */
static const game_alloc_cli_cmd_t *
game_alloc_cli_parse(game_alloc_cli_t *cli, int argc, char **argv)
{
    int                          i;
    char                         word[64];
    const char                  *name;
    const game_alloc_cli_cmd_t  *cmd;

    cmd = NULL;

    for (i = 1; i < argc; i++) {
        if (strncmp(argv[i], "--", 2) != 0) {
            for (cmd = game_alloc_cli_cmds; cmd->name; cmd++) {
                if (strcmp(cmd->name, argv[i]) == 0) {
                    break;
                }
            }

            if (cmd->name == NULL) {
                game_alloc_cli_usage_error("unknown command %s", argv[i]);
                return NULL;
            }

            continue;
        }

        name = argv[i] + 2;

        if (i + 1 == argc) {
            game_alloc_cli_usage_error("--%s needs a value", name);
            return NULL;
        }

        if (strcmp(name, "redis") == 0) {
            if (game_alloc_cli_redis(cli, argv[i + 1]) != 0) {
                game_alloc_cli_usage_error("bad --redis %s", argv[i + 1]);
                return NULL;
            }

        } else if (strcmp(name, "prefix") == 0) {
            cli->prefix = argv[i + 1];

        } else if (strcmp(name, "timeout") == 0) {
            cli->timeout_ms = atoi(argv[i + 1]);

        } else if (cli->nopts == GAME_ALLOC_CLI_OPTS_MAX) {
            game_alloc_cli_usage_error("too many options%s", "");
            return NULL;

        } else {
            cli->opts[cli->nopts].name = name;
            cli->opts[cli->nopts].value = argv[i + 1];
            cli->nopts++;
        }

        i++;
    }

    if (cmd == NULL || cmd->name == NULL) {
        fputs(game_alloc_cli_usage, stderr);
        return NULL;
    }

    for (i = 0; i < cli->nopts; i++) {
        snprintf(word, sizeof(word), " %s ", cli->opts[i].name);

        if (strstr(cmd->options, word) == NULL) {
            game_alloc_cli_usage_error("unknown option --%s",
                                       cli->opts[i].name);
            return NULL;
        }
    }

    if (cli->timeout_ms < 1) {
        cli->timeout_ms = 2000;
    }

    return cmd;
}


int
main(int argc, char **argv)
{
    int                          rc;
    game_alloc_cli_t             cli;
    const game_alloc_cli_cmd_t  *cmd;

    memset(&cli, 0, sizeof(cli));
    strcpy(cli.host, "127.0.0.1");
    cli.port = 6379;
    cli.prefix = "game:";
    cli.timeout_ms = 2000;

    cmd = game_alloc_cli_parse(&cli, argc, argv);
    if (cmd == NULL) {
        return GAME_ALLOC_CLI_FAILED;
    }

    if (cmd->handler == game_alloc_cli_scripts
        || cmd->handler == game_alloc_cli_bench)
    {
        return cmd->handler(&cli);      /* they bring their own Redis */
    }

    cli.conn = game_alloc_connect(cli.host, cli.port, cli.prefix,
                                  cli.timeout_ms);
    if (cli.conn == NULL) {
        return GAME_ALLOC_CLI_FAILED;
    }

    if (game_alloc_errstr(cli.conn)) {
        rc = game_alloc_cli_error(GAME_ALLOC_CLI_FAILED, "ERROR", "%s%s",
                                  game_alloc_errstr(cli.conn), "");
    } else {
        rc = cmd->handler(&cli);
    }

    game_alloc_close(cli.conn);

    return rc;
}
