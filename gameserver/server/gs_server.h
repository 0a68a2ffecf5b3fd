/*
 * gs_server.h: the game server's loop (ENet, ticks, lifecycle).
 */
#ifndef GS_SERVER_H
#define GS_SERVER_H

#include "gs_agent.h"
#include "gs_sim.h"
#include "gs_ticket.h"

typedef struct {
    const char        *id, *addr, *bind, *region, *mode, *build, *host;
    const char        *redis_host, *prefix;
    const char        *health_file;         /* NULL: none */
    const char        *tel_stream;          /* telemetry; NULL: off */
    int                port, redis_port;
    int                tick_hz, max_players, match_seconds, score_limit;
    int                join_timeout_s, drain_grace_s, max_matches;
    int                max_peers_per_ip, ticket_leeway_s;
    int                abort_if_short;      /* join policy: 1 abort, 0 start */
    int                full_snapshots;      /* no deltas, no interest */
    unsigned           seed;
    gs_ticket_keys_t  *keys;
} gs_server_conf_t;

/* runs until SIGTERM/SIGINT, a drain by the allocator, or max_matches;
 * the exit status */
int gs_server_run(const gs_server_conf_t *conf);

#endif /* GS_SERVER_H */
