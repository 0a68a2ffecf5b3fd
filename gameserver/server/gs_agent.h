/*
 * gs_agent.h: the game server's link to the allocator, on its own thread.
 *
 * Like Agones' SDK sidecar, the agent owns every Redis call so that the
 * tick loop never waits on the network: it registers, heartbeats every
 * second, runs the state changes and result publications the loop queues
 * (in order, retried through Redis outages), and exposes the latest
 * heartbeat reply, which is how the server learns it was allocated.
 */
#ifndef GS_AGENT_H
#define GS_AGENT_H

#include <stdint.h>

#include "game_alloc.h"

typedef struct gs_agent_s gs_agent_t;

typedef struct {
    const char          *redis_host, *prefix;
    int                  redis_port;
    game_alloc_server_t  server;        /* what to register (Ready) */
} gs_agent_conf_t;

typedef struct {
    int                  registered;    /* registered and heartbeating */
    uint64_t             beats;         /* heartbeat replies so far */
    game_alloc_state_t   state;
    char                 match_id[GAME_ALLOC_NAME_MAX + 1];
    char                 mode[GAME_ALLOC_NAME_MAX + 1];
    int                  players;
    int                  pending;       /* queued operations not yet done */
    int                  published;     /* results published (fresh) */
    int                  duplicates;    /* results Redis already had */
} gs_agent_view_t;

gs_agent_t *gs_agent_start(const gs_agent_conf_t *conf);
void gs_agent_view(gs_agent_t *a, gs_agent_view_t *v);
void gs_agent_poke(gs_agent_t *a);      /* heartbeat now */
/* match_id: the match the loop holds (fences the transition), "" none */
void gs_agent_set_state(gs_agent_t *a, game_alloc_state_t to,
    const char *match_id);
/* takes the JSON text; published once per match id (SET NX + XADD) */
void gs_agent_publish(gs_agent_t *a, const char *match_id, char *json);
/* finish the queue (bounded by timeout_ms), deregister, join the thread */
void gs_agent_stop(gs_agent_t *a, int timeout_ms);

#endif /* GS_AGENT_H */
