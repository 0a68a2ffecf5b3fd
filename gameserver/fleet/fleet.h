/*
 * fleet.h: game-fleet, the fleet manager.
 *
 * Keeps, per region, a buffer of Ready game servers like Agones' buffer
 * autoscaler: wanted = allocated + buffer, clamped to [min, max].  It
 * spawns game-server processes on free UDP ports, restarts the ones that
 * crash, retires (SIGTERM) idle ones above the buffer, and drains them all
 * on SIGTERM.  It learns servers' states from the allocator, the same
 * place the matchmaker does.
 */
#ifndef FLEET_H
#define FLEET_H

#include <sys/types.h>

#include "game_alloc.h"

#define FLEET_REGIONS_MAX   16
#define FLEET_ARGS_MAX      32
#define FLEET_SERVERS_MAX   512

typedef struct {
    char   name[GAME_ALLOC_NAME_MAX + 1], mode[GAME_ALLOC_NAME_MAX + 1];
    char   addr[GAME_ALLOC_NAME_MAX + 1];
    int    min, max, buffer, port_lo, port_hi;
} fleet_region_t;

typedef struct {
    char             redis_host[256], prefix[GAME_ALLOC_NAME_MAX + 1];
    int              redis_port, reap_s, drain_s;
    char             server[1024], status[1024];
    int              nargs;
    char            *args[FLEET_ARGS_MAX];
    int              nregions;
    fleet_region_t   regions[FLEET_REGIONS_MAX];
} fleet_conf_t;

typedef struct {
    char                 id[GAME_ALLOC_NAME_MAX + 1];
    pid_t                pid;
    int                  port, region, retiring;
    game_alloc_state_t   state;         /* from the allocator */
    int                  seen;          /* registered at least once */
} fleet_server_t;

/* fleet_conf.c: 0, or -1 with err filled (file:line: what) */
int fleet_conf_load(fleet_conf_t *c, const char *path, char *err,
    size_t errlen);

/* fleet_status.c: the status file `game-fleet status` reads */
int fleet_status_write(const char *path, const fleet_conf_t *c,
    const fleet_server_t *s, int n);
int fleet_status_print(const char *path);

#endif /* FLEET_H */
