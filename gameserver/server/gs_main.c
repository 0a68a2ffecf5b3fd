/*
 * gs_main.c: game-server's command line.
 *
 * Everything the fleet manager or an operator decides comes in as an
 * option; nothing is read from the environment, so what a process does is
 * visible in `ps`.
 */

#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gs_defaults.h"
#include "gs_log.h"
#include "gs_server.h"


static const char gs_main_usage[] =
"usage: game-server --id ID --port N --ticket-key KID=pub.pem [options]\n"
"  --addr A            address registered for players (127.0.0.1)\n"
"  --bind A            address to listen on (0.0.0.0)\n"
"  --region R          (local)      --mode M   (dm)\n"
"  --build B           build label  --host H   host label (the address)\n"
"  --redis HOST:PORT   (127.0.0.1:6379)   --prefix P   (game:)\n"
"  --ticket-key KID=F  an ES256 public key (PEM), repeatable\n"
"  --ticket-leeway S   clock skew allowed on exp (5)\n"
"  --tick HZ           1-128 (30)\n"
"  --max-players N     1-64 (16)\n"
"  --match-seconds S   (120)        --score-limit N  (20, 0: none)\n"
"  --join-timeout S    (10)         --join-policy start|abort (by mode:\n"
"                      abort for \"duel\", start for the others)\n"
"  --drain-grace S     on SIGTERM, how long a match may go on (one\n"
"                      match: join timeout + match seconds + 10)\n"
"  --max-matches N     shut down after N matches (0: reuse forever)\n"
"  --max-peers-per-ip N  ENet duplicatePeers (8)\n"
"  --health-file PATH  the tick loop's pulse, for the fleet manager\n"
"  --telemetry STREAM  the backend's telemetry stream for the match's\n"
"                      events, or off (tel:server)\n"
"  --seed N            spawn points (random)\n"
"  --snapshots delta|full  against the client's last ack (delta), or whole\n";


static int
gs_main_int(const char *name, const char *v, int lo, int hi)
{
    char  *end;
    long   n = strtol(v, &end, 10);

    if (*v == '\0' || *end != '\0' || n < lo || n > hi) {
        fprintf(stderr, "game-server: %s must be %d-%d, not \"%s\"\n", name,
                lo, hi, v);
        exit(2);
    }
    return (int) n;
}


int
main(int argc, char **argv)
{
    gs_server_conf_t  c;
    char              redis[256], err[256], *colon;
    const char       *o, *v;
    int               i;

    memset(&c, 0, sizeof(c));
    c.addr = "127.0.0.1";
    c.bind = "0.0.0.0";
    c.region = "local";
    c.mode = "dm";
    c.prefix = "game:";
    c.tel_stream = "tel:server";
    c.redis_host = "127.0.0.1";
    c.redis_port = 6379;
    c.tick_hz = 30;
    c.max_players = 16;
    c.match_seconds = GS_DEFAULT_MATCH_SECONDS;
    c.score_limit = 20;
    c.join_timeout_s = GS_DEFAULT_JOIN_TIMEOUT_S;
    c.drain_grace_s = -1;           /* one match: see below */
    c.max_peers_per_ip = 8;
    c.ticket_leeway_s = 5;
    c.abort_if_short = -1;
    c.keys = gs_ticket_keys_new();

    for (i = 1; i < argc; i++) {
        o = argv[i];
        if (strcmp(o, "-h") == 0 || strcmp(o, "--help") == 0) {
            fputs(gs_main_usage, stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "game-server: %s needs a value\n%s", o,
                    gs_main_usage);
            return 2;
        }
        v = argv[++i];

        if (strcmp(o, "--id") == 0) c.id = v;
        else if (strcmp(o, "--port") == 0) c.port = gs_main_int(o, v, 1, 65535);
        else if (strcmp(o, "--addr") == 0) c.addr = v;
        else if (strcmp(o, "--bind") == 0) c.bind = v;
        else if (strcmp(o, "--region") == 0) c.region = v;
        else if (strcmp(o, "--mode") == 0) c.mode = v;
        else if (strcmp(o, "--build") == 0) c.build = v;
        else if (strcmp(o, "--host") == 0) c.host = v;
        else if (strcmp(o, "--prefix") == 0) c.prefix = v;
        else if (strcmp(o, "--redis") == 0) {
            snprintf(redis, sizeof(redis), "%s", v);
            colon = strrchr(redis, ':');
            if (colon == NULL) {
                fprintf(stderr, "game-server: --redis HOST:PORT\n");
                return 2;
            }
            *colon = '\0';
            c.redis_host = redis;
            c.redis_port = gs_main_int(o, colon + 1, 1, 65535);
        }
        else if (strcmp(o, "--ticket-key") == 0) {
            if (gs_ticket_keys_load(c.keys, v, err, sizeof(err)) != 0) {
                fprintf(stderr, "game-server: --ticket-key: %s\n", err);
                return 2;
            }
        }
        else if (strcmp(o, "--ticket-leeway") == 0)
            c.ticket_leeway_s = gs_main_int(o, v, 0, 300);
        else if (strcmp(o, "--tick") == 0) c.tick_hz = gs_main_int(o, v, 1, 128);
        else if (strcmp(o, "--max-players") == 0)
            c.max_players = gs_main_int(o, v, 1, GS_MAX_PLAYERS);
        else if (strcmp(o, "--match-seconds") == 0)
            c.match_seconds = gs_main_int(o, v, 1, 3600);
        else if (strcmp(o, "--score-limit") == 0)
            c.score_limit = gs_main_int(o, v, 0, 10000);
        else if (strcmp(o, "--join-timeout") == 0)
            c.join_timeout_s = gs_main_int(o, v, 1, 600);
        else if (strcmp(o, "--join-policy") == 0) {
            if (strcmp(v, "start") != 0 && strcmp(v, "abort") != 0) {
                fprintf(stderr, "game-server: --join-policy start|abort\n");
                return 2;
            }
            c.abort_if_short = strcmp(v, "abort") == 0;
        }
        else if (strcmp(o, "--drain-grace") == 0)
            c.drain_grace_s = gs_main_int(o, v, 0, 3600);
        else if (strcmp(o, "--max-matches") == 0)
            c.max_matches = gs_main_int(o, v, 0, 1000000);
        else if (strcmp(o, "--max-peers-per-ip") == 0)
            c.max_peers_per_ip = gs_main_int(o, v, 1, 4095);
        else if (strcmp(o, "--health-file") == 0) c.health_file = v;
        else if (strcmp(o, "--telemetry") == 0)
            c.tel_stream = strcmp(v, "off") == 0 ? NULL : v;
        else if (strcmp(o, "--seed") == 0)
            c.seed = (unsigned) gs_main_int(o, v, 0, 2147483647);
        else if (strcmp(o, "--snapshots") == 0) {
            if (strcmp(v, "delta") != 0 && strcmp(v, "full") != 0) {
                fprintf(stderr, "game-server: --snapshots delta|full\n");
                return 2;
            }
            c.full_snapshots = strcmp(v, "full") == 0;
        }
        else {
            fprintf(stderr, "game-server: unknown option %s\n%s", o,
                    gs_main_usage);
            return 2;
        }
    }

    if (c.id == NULL || c.port == 0) {
        fprintf(stderr, "game-server: --id and --port are required\n%s",
                gs_main_usage);
        return 2;
    }
    /* a drain lets the match in progress finish, by default */
    if (c.drain_grace_s < 0) {
        c.drain_grace_s = gs_drain_grace_default(c.join_timeout_s,
                                                 c.match_seconds);
    }
    if (gs_ticket_keys_count(c.keys) == 0) {
        fprintf(stderr, "game-server: at least one --ticket-key is needed: "
                "without it no player could join\n");
        return 2;
    }

    gs_log_init(c.id);
    if (gs_log_start() != 0) {
        gs_log("warn", "no log writer thread: the log may block the loop");
    }
    i = gs_server_run(&c);
    gs_log_stop();
    gs_ticket_keys_free(c.keys);
    return i;
}
