/*
 * bot_main.c: game-bot's command line and summary.
 *
 * Three ways to reach a server:
 *
 *   --direct     allocate a server through the Redis allocator (as the
 *                matchmaker will), mint each bot's ticket with
 *                --ticket-signing-key (DEV/TEST ONLY: production tickets
 *                come from the backend), connect and play
 *   --server H:P with --server-id and --match: mint for a known server
 *                (no allocation); or with --ticket JWT: one bot, that
 *                exact ticket (tests feed forged or expired ones)
 *   (default)    the HTTP path, as a player: each bot signs in as a fresh
 *                guest at --api, joins --mode's queue, waits for its
 *                match and connects with the connection ticket the
 *                backend gives it (bot_http.c)
 *
 * Prints one JSON summary on stdout; exit 0 if every bot got in and played,
 * 1 if any failed, 2 for usage errors.
 */

#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "bot.h"
#include "game_alloc.h"


static const char bot_usage[] =
"usage: game-bot [--api URL] --mode M [options]\n"
"       game-bot --direct --ticket-signing-key KID=priv.pem [options]\n"
"       game-bot --server HOST:PORT --server-id ID --match M\n"
"                --ticket-signing-key KID=priv.pem [options]\n"
"       game-bot --server HOST:PORT (--ticket JWT | --no-ticket) [options]\n"
"  --redis HOST:PORT    allocator (127.0.0.1:6379)   --prefix P (game:)\n"
"  --region R (local)   --mode M (dm)   --match ID (random)\n"
"  --alloc-wait S       retry NO_SERVER this long (10)\n"
"  --api URL            the HTTP backend (http://127.0.0.1:8080)\n"
"  --match-timeout S    HTTP path: give up waiting for a match (120)\n"
"  --players N          bots in this process (1)\n"
"  --bind ADDR          the bots' local address (any)\n"
"  --cheat speed|firerate|bounds   --cheaters K (all)\n"
"  --fuzz N             malformed packets per bot after joining (0)\n"
"  --duration S         stop after S seconds (300)\n"
"  --connect-timeout S  (5)   --input-hz N (30)   --ticket-ttl S (60)\n"
"  --seed N             --quiet (no progress lines on stderr)\n"
"  --loss PCT           drop PCT %% of inputs and snapshots (0)\n"
"  --latency MS         add MS to the round trip, half each way (0)\n"
"--ticket-signing-key holds a PRIVATE key: for development and tests only.\n";


typedef struct {
    const char   *redis, *prefix, *region, *mode, *match, *server,
                 *server_id, *ticket, *signing_key, *cheat, *url, *bind;
    int           direct, no_ticket, players, cheaters, fuzz, duration,
                  connect_timeout, input_hz, ticket_ttl, alloc_wait,
                  match_timeout, loss, latency;
    unsigned      seed;
} bot_opts_t;


static int
bot_split(const char *hp, char *host, size_t cap, int *port)
{
    const char  *colon = strrchr(hp, ':');

    if (colon == NULL || (size_t) (colon - hp) >= cap) {
        return -1;
    }
    memcpy(host, hp, (size_t) (colon - hp));
    host[colon - hp] = '\0';
    *port = atoi(colon + 1);
    return *port > 0 && *port < 65536 ? 0 : -1;
}


static int
bot_allocate(const bot_opts_t *o, char *host, size_t cap, int *port,
    char *server_id, char *err, size_t errlen)
{
    char                   rhost[256];
    int                    rport, waited = 0;
    game_alloc_conn_t     *c;
    game_alloc_request_t   req = { o->region, o->mode, NULL, o->match,
                                   o->players };
    game_alloc_result_t    res;
    game_alloc_status_t    st;

    if (bot_split(o->redis, rhost, sizeof(rhost), &rport) != 0) {
        snprintf(err, errlen, "--redis HOST:PORT");
        return -1;
    }
    c = game_alloc_connect(rhost, rport, o->prefix, 2000);
    if (c == NULL || game_alloc_errstr(c) != NULL) {
        snprintf(err, errlen, "%s", c ? game_alloc_errstr(c) : "no memory");
        game_alloc_close(c);
        return -1;
    }

    /* a fleet may be starting servers: NO_SERVER is worth a few retries */
    for ( ;; ) {
        st = game_alloc_allocate(c, &req, &res);
        if (st != GAME_ALLOC_NO_SERVER || waited >= o->alloc_wait * 1000) {
            break;
        }
        nanosleep(&(struct timespec) { 0, 200000000L }, NULL);
        waited += 200;
    }

    if (st != GAME_ALLOC_OK) {
        snprintf(err, errlen, "allocate: %s%s%s", game_alloc_status_name(st),
                 game_alloc_errstr(c) ? ": " : "",
                 game_alloc_errstr(c) ? game_alloc_errstr(c) : "");
        game_alloc_close(c);
        return -1;
    }
    snprintf(host, cap, "%s", res.addr);
    *port = res.port;
    strcpy(server_id, res.server_id);
    game_alloc_close(c);
    return 0;
}


/* how well the bot's prediction matched the server (bot_predict.c) */
static json_t *
bot_summary_predict(const bot_t *b)
{
    const bot_predict_t  *pr = &b->predict;

    return json_pack("{s:I, s:I, s:f, s:f, s:I}",
                     "checks", (json_int_t) pr->checks,
                     "corrections", (json_int_t) pr->corrections,
                     "error_avg", pr->checks ? pr->err_sum / pr->checks : 0.0,
                     "error_max", pr->err_max,
                     "snapshots_undecodable", (json_int_t) b->undecodable);
}


static json_t *
bot_summary_one(const bot_t *b)
{
    json_t  *o;

    o = json_pack(
        "{s:s, s:b, s:o, s:o, s:f, s:I, s:I, s:I, s:I, s:I, s:f, s:f,"
        " s:o, s:o, s:o, s:o, s:o}",
        "player", b->player, "ok", b->failure == NULL,
        "failure", b->failure ? json_string(b->failure) : json_null(),
        "refused", b->refused && !b->welcomed
                   ? json_string(gs_proto_refuse_name(b->refused))
                              : json_null(),
        "connect_ms", b->welcomed ? b->connect_us / 1000.0 : -1.0,
        "snapshots", (json_int_t) b->snapshots,
        "events", (json_int_t) b->events,
        "inputs_sent", (json_int_t) b->inputs,
        "last_ack", (json_int_t) b->last_ack,
        "fuzz_sent", (json_int_t) b->fuzz_sent,
        "rtt_ms", b->rtt_n ? (double) b->rtt_sum / b->rtt_n : -1.0,
        "max_speed", (double) b->max_speed,
        "match_end", b->ended ? json_pack("{s:s}", "reason",
                                          gs_proto_end_name(b->end_reason))
                              : json_null(),
        "won", b->ended ? json_boolean(b->winner == b->slot) : json_null(),
        "time_to_match_ms", b->match_us >= 0 ? json_real(b->match_us / 1000.0)
                                             : json_null(),
        "match_id", b->match_id[0] ? json_string(b->match_id) : json_null(),
        "error", b->error[0] ? json_string(b->error) : json_null());
    if (o != NULL) {
        json_object_set_new(o, "prediction", bot_summary_predict(b));
    }
    return o;
}


/*
 * The HTTP path's top level: bots may have landed in different matches
 * (each bot's own match_id says which), so the match and server shown
 * here are the first matched bot's, null if none was matched.
 */
static json_t *
bot_summary_http(const bot_opts_t *o, const bot_run_t *run, int failed,
    json_t *bots)
{
    const bot_t  *first = NULL;
    int           i;

    for (i = 0; i < run->nbots && first == NULL; i++) {
        if (run->bots[i].port != 0) {
            first = &run->bots[i];
        }
    }
    return json_pack("{s:b, s:s, s:s, s:o, s:o, s:o, s:i, s:o}",
        "ok", failed == 0, "api", o->url, "game_mode", o->mode,
        "match_id", first ? json_string(first->match_id) : json_null(),
        "server", first ? json_string(first->host) : json_null(),
        "port", first ? json_integer(first->port) : json_null(),
        "failed", failed, "bots", bots);
}


int
main(int argc, char **argv)
{
    bot_opts_t     o;
    bot_run_t      run;
    bot_signer_t  *signer = NULL;
    char           host[256], server_id[GAME_ALLOC_NAME_MAX + 1],
                   match[GAME_ALLOC_NAME_MAX + 1], err[512], tag[9];
    const char    *a, *v;
    json_t        *out, *bots;
    int            i, failed = 0, port = 0, http = 0;
    unsigned char  rnd;

    memset(&o, 0, sizeof(o));
    o.redis = "127.0.0.1:6379";
    o.prefix = "game:";
    o.region = "local";
    o.mode = "dm";
    o.players = 1;
    o.cheaters = -1;
    o.duration = 300;
    o.connect_timeout = 5;
    o.input_hz = 30;
    o.ticket_ttl = 60;
    o.alloc_wait = 10;
    o.match_timeout = 120;
    o.seed = (unsigned) time(NULL) ^ (unsigned) getpid();
    o.url = "http://127.0.0.1:8080";

    for (i = 1; i < argc; i++) {
        a = argv[i];
        if (strcmp(a, "--direct") == 0) { o.direct = 1; continue; }
        if (strcmp(a, "--no-ticket") == 0) { o.no_ticket = 1; continue; }
        if (strcmp(a, "--quiet") == 0) { bot_progress_quiet(1); continue; }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(bot_usage, stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "game-bot: %s needs a value\n%s", a, bot_usage);
            return 2;
        }
        v = argv[++i];
        if (strcmp(a, "--redis") == 0) o.redis = v;
        else if (strcmp(a, "--prefix") == 0) o.prefix = v;
        else if (strcmp(a, "--region") == 0) o.region = v;
        else if (strcmp(a, "--mode") == 0) o.mode = v;
        else if (strcmp(a, "--match") == 0) o.match = v;
        else if (strcmp(a, "--server") == 0) o.server = v;
        else if (strcmp(a, "--server-id") == 0) o.server_id = v;
        else if (strcmp(a, "--ticket") == 0) o.ticket = v;
        else if (strcmp(a, "--ticket-signing-key") == 0) o.signing_key = v;
        else if (strcmp(a, "--cheat") == 0) o.cheat = v;
        else if (strcmp(a, "--api") == 0 || strcmp(a, "--url") == 0)
            o.url = v;
        else if (strcmp(a, "--match-timeout") == 0)
            o.match_timeout = atoi(v);
        else if (strcmp(a, "--players") == 0) o.players = atoi(v);
        else if (strcmp(a, "--bind") == 0) o.bind = v;
        else if (strcmp(a, "--cheaters") == 0) o.cheaters = atoi(v);
        else if (strcmp(a, "--fuzz") == 0) o.fuzz = atoi(v);
        else if (strcmp(a, "--duration") == 0) o.duration = atoi(v);
        else if (strcmp(a, "--connect-timeout") == 0)
            o.connect_timeout = atoi(v);
        else if (strcmp(a, "--input-hz") == 0) o.input_hz = atoi(v);
        else if (strcmp(a, "--ticket-ttl") == 0) o.ticket_ttl = atoi(v);
        else if (strcmp(a, "--alloc-wait") == 0) o.alloc_wait = atoi(v);
        else if (strcmp(a, "--seed") == 0) o.seed = (unsigned) atoi(v);
        else if (strcmp(a, "--loss") == 0) o.loss = atoi(v);
        else if (strcmp(a, "--latency") == 0) o.latency = atoi(v);
        else {
            fprintf(stderr, "game-bot: unknown option %s\n%s", a, bot_usage);
            return 2;
        }
    }

    if (o.players < 1 || o.players > 4000 || o.duration < 1
        || o.input_hz < 1 || o.input_hz > 1000 || o.connect_timeout < 1
        || o.loss < 0 || o.loss > 100 || o.latency < 0 || o.latency > 10000
        || o.match_timeout < 1
        || (o.cheat && strcmp(o.cheat, "speed") && strcmp(o.cheat, "firerate")
            && strcmp(o.cheat, "bounds"))
        || ((o.ticket || o.no_ticket) && o.players != 1 && !o.server))
    {
        fprintf(stderr, "game-bot: bad option values\n%s", bot_usage);
        return 2;
    }

    /* the match id: given, or random so that runs never collide */
    if (o.match == NULL) {
        srand(o.seed);
        for (i = 0; i < 8; i++) {
            rnd = (unsigned char) (rand() & 15);
            tag[i] = "0123456789abcdef"[rnd];
        }
        tag[8] = '\0';
        snprintf(match, sizeof(match), "bot-%s", tag);
        o.match = match;
    }

    if (o.direct) {
        if (bot_allocate(&o, host, sizeof(host), &port, server_id, err,
                         sizeof(err)) != 0)
        {
            fprintf(stderr, "game-bot: %s\n", err);
            printf("{\"ok\":false,\"error\":\"%s\"}\n",
                   strstr(err, "NO_SERVER") ? "NO_SERVER" : "allocate");
            return 1;
        }
    } else if (o.server != NULL) {
        if (bot_split(o.server, host, sizeof(host), &port) != 0) {
            fprintf(stderr, "game-bot: --server HOST:PORT\n");
            return 2;
        }
        snprintf(server_id, sizeof(server_id), "%s",
                 o.server_id ? o.server_id : "");
    } else {
        http = 1;       /* each bot's server comes from matchmaking */
        host[0] = '\0';
        server_id[0] = '\0';
    }

    if (!http && !o.ticket && !o.no_ticket) {
        if (o.signing_key == NULL || server_id[0] == '\0') {
            fprintf(stderr, "game-bot: minting tickets needs "
                    "--ticket-signing-key (and --server-id with --server)\n");
            return 2;
        }
        signer = bot_signer_load(o.signing_key, err, sizeof(err));
        if (signer == NULL) {
            fprintf(stderr, "game-bot: --ticket-signing-key: %s\n", err);
            return 2;
        }
    }

    memset(&run, 0, sizeof(run));
    run.host = host;
    run.port = port;
    run.input_hz = o.input_hz;
    run.duration_s = o.duration;
    run.connect_timeout_s = o.connect_timeout;
    run.nbots = o.players;
    run.seed = o.seed;
    run.bind = o.bind;
    run.loss_pct = o.loss;
    run.latency_ms = o.latency;
    run.bots = calloc((size_t) o.players, sizeof(bot_t));
    if (run.bots == NULL) {
        return 1;
    }

    for (i = 0; i < o.players; i++) {
        bot_t  *b = &run.bots[i];

        snprintf(b->player, sizeof(b->player), "%s-p%d", o.match, i);
        b->index = i;
        b->match_us = -1;
        b->fuzz = o.fuzz;
        if (o.cheat && (o.cheaters < 0 || i < o.cheaters)) {
            b->cheat = strcmp(o.cheat, "speed") == 0 ? BOT_CHEAT_SPEED
                     : strcmp(o.cheat, "firerate") == 0 ? BOT_CHEAT_FIRERATE
                     : BOT_CHEAT_BOUNDS;
        }
        if (o.ticket) {
            snprintf(b->ticket, sizeof(b->ticket), "%s", o.ticket);
        } else if (signer != NULL
                   && bot_signer_mint(signer, b->player, o.match, server_id,
                                      o.ticket_ttl, b->ticket,
                                      sizeof(b->ticket)) < 0)
        {
            fprintf(stderr, "game-bot: cannot sign a ticket\n");
            return 1;
        }
    }
    bot_signer_free(signer);

    if (http) {
        bot_http_conf_t  hc = { o.url, o.mode, o.region, o.match_timeout };

        if (bot_http_matchmake(&hc, run.bots, o.players) != 0) {
            fprintf(stderr, "game-bot: cannot start libcurl\n");
            return 1;
        }
    }

    if (enet_initialize() != 0 || bot_play(&run) != 0) {
        fprintf(stderr, "game-bot: cannot start ENet towards %s:%d\n",
                http ? "the matched servers" : host, port);
        return 1;
    }

    bots = json_array();
    for (i = 0; i < o.players; i++) {
        failed += run.bots[i].failure != NULL;
        json_array_append_new(bots, bot_summary_one(&run.bots[i]));
    }
    out = http ? bot_summary_http(&o, &run, failed, bots)
               : json_pack("{s:b, s:s, s:s, s:s, s:i, s:i, s:o}",
                           "ok", failed == 0, "match_id", o.match,
                           "server_id", server_id, "server", host,
                           "port", port, "failed", failed, "bots", bots);
    json_dumpf(out, stdout, JSON_COMPACT);
    putchar('\n');
    json_decref(out);
    enet_deinitialize();
    free(run.bots);
    return failed ? 1 : 0;
}
