/*
 * gs_agent.h: the game server's link to the allocator, on its own thread.
 *
 * Like Agones' SDK sidecar, the agent owns every Redis call so that the
 * tick loop never waits on the network: it registers, heartbeats every
 * second, runs the state changes and result publications the loop queues
 * (in order, retried through Redis outages), and exposes the latest
 * heartbeat reply, which is how the server learns it was allocated or
 * drained.
 *
 * The loop tells the agent two things the allocator cannot: that it lives
 * (gs_agent_tick, every tick: no tick for 2 s and the heartbeat stops, so
 * a hung server goes dead in the allocator), and which match it holds
 * (gs_agent_take, gs_agent_release).  The agent registers the server again
 * after a lapse only while the loop holds no match: a server never offers
 * itself as Ready in the middle of a match.
 */
#ifndef GS_AGENT_H
#define GS_AGENT_H

#include <stdint.h>

#include "game_alloc.h"

typedef struct gs_agent_s gs_agent_t;

typedef struct {
    const char          *redis_host, *prefix;
    const char          *tel_stream;    /* telemetry's stream; NULL: none */
    int                  redis_port;
    game_alloc_server_t  server;        /* what to register (Ready) */
} gs_agent_conf_t;

typedef struct {
    int                  registered;    /* registered and heartbeating */
    uint64_t             beats;         /* heartbeat replies so far */
    game_alloc_state_t   state;         /* as the allocator last said */
    char                 match_id[GAME_ALLOC_NAME_MAX + 1];
    char                 mode[GAME_ALLOC_NAME_MAX + 1];
    int                  players;
    int                  drained;       /* drain.lua marked us: sticky */
    int                  pending;       /* queued operations not yet done */
    int                  published;     /* results published (fresh) */
    int                  duplicates;    /* results Redis already had */
    uint64_t             tel_sent;      /* telemetry batches on the stream */
    uint64_t             tel_dropped;   /* batches the full queue refused */
} gs_agent_view_t;

gs_agent_t *gs_agent_start(const gs_agent_conf_t *conf);
void gs_agent_view(gs_agent_t *a, gs_agent_view_t *v);
void gs_agent_poke(gs_agent_t *a);      /* heartbeat now */

/* the loop ticked at now_ms (CLOCK_MONOTONIC): one atomic store */
void gs_agent_tick(gs_agent_t *a, int64_t now_ms);
/* 1: the allocation the view shows for match_id is now the loop's; 0: the
 * view changed meanwhile (e.g. the agent is registering again) */
int gs_agent_take(gs_agent_t *a, const char *match_id);
/* the loop holds no match any more */
void gs_agent_release(gs_agent_t *a);

/* match_id: the match the loop holds, which fences the transition ("":
 * none); seated: Playing only, comma-separated player ids, or NULL */
void gs_agent_set_state(gs_agent_t *a, game_alloc_state_t to,
    const char *match_id, const char *seated);
/* leave service in one script against allocation (drain.lua): the view
 * then says Shutdown, or shows the allocation that came first */
void gs_agent_drain(gs_agent_t *a);
/* takes the JSON text; published once per match id (SET NX + XADD) */
void gs_agent_publish(gs_agent_t *a, const char *match_id, char *json);
/*
 * Takes the JSON text of a telemetry batch ({"events": [...]}) of "n"
 * events, for the telemetry stream.  Batches wait in a queue of their own,
 * behind the allocator's operations, and are retried like them; when it is
 * full the batch is dropped and counted (tel_dropped): the loop never
 * waits, and a match's state matters more than its telemetry.
 */
void gs_agent_telemetry(gs_agent_t *a, char *json, int n);
/* finish the queue (bounded by timeout_ms), deregister, join the thread */
void gs_agent_stop(gs_agent_t *a, int timeout_ms);

#endif /* GS_AGENT_H */
