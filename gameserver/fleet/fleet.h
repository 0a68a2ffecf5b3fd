/*
 * fleet.h: game-fleet, the fleet manager.
 *
 * Keeps, per region, a buffer of Ready game servers like Agones' buffer
 * autoscaler: wanted = allocated + buffer, clamped to [min, max].  It
 * spawns game-server processes on free UDP ports, replaces the ones that
 * crash, hang or never register (backing off when a region crash-loops),
 * scales down through the allocator's drain script (never by signalling a
 * server that may have been allocated meanwhile), adopts the servers of
 * an earlier fleet process on restart, and drains them all on SIGTERM.
 * It learns servers' states from the allocator, the same place the
 * matchmaker does, and their loops' pulse from their health files.
 */
#ifndef FLEET_H
#define FLEET_H

#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "game_alloc.h"

#define FLEET_REGIONS_MAX   16
#define FLEET_ARGS_MAX      32
#define FLEET_SERVERS_MAX   512
#define FLEET_PATH_MAX      1024

typedef struct {
    char   name[GAME_ALLOC_NAME_MAX + 1], mode[GAME_ALLOC_NAME_MAX + 1];
    char   addr[GAME_ALLOC_NAME_MAX + 1];
    int    min, max, buffer, port_lo, port_hi;
} fleet_region_t;

typedef struct {
    char             name[GAME_ALLOC_NAME_MAX + 1];    /* in every log line */
    char             redis_host[256], prefix[GAME_ALLOC_NAME_MAX + 1];
    int              redis_port, reap_s, reap_grace_s;
    int              drain_s;           /* -1 until fleet_conf_check */
    int              grace_s;           /* the servers' drain grace */
    int              hung_s, register_s;
    char             server[FLEET_PATH_MAX], status[FLEET_PATH_MAX];
    int              nargs;
    char            *args[FLEET_ARGS_MAX];
    int              nregions;
    fleet_region_t   regions[FLEET_REGIONS_MAX];
} fleet_conf_t;

typedef struct {
    char                 id[GAME_ALLOC_NAME_MAX + 1];
    pid_t                pid;
    int                  port, region;
    int                  retiring;      /* on its way out: not counted */
    int                  adopted;       /* an earlier fleet's: no child */
    game_alloc_state_t   state;         /* from the allocator */
    int                  seen;          /* registered at least once */
    int64_t              spawned_ms;    /* CLOCK_MONOTONIC */
    int64_t              spawned_at_ms; /* wall clock, for the state file */
    int64_t              retire_by_ms;  /* drained idle: SIGTERM after */
    int64_t              busy_ms;       /* unseen, last seen holding a
                                           match in its health file */
    const char          *killed;        /* why we SIGKILLed it, or NULL */
} fleet_server_t;

typedef struct {
    int                  delay_ms;      /* 0: respawn at once */
    int64_t              not_before_ms;
} fleet_backoff_t;

/* what happened, per region, for fleet_metrics.c */
typedef struct {
    long long            spawns[FLEET_REGIONS_MAX];
    long long            crashes[FLEET_REGIONS_MAX];
    long long            kills[FLEET_REGIONS_MAX];
    long long            drains[FLEET_REGIONS_MAX];
} fleet_metrics_t;

typedef struct {
    fleet_conf_t         conf;
    fleet_server_t       servers[FLEET_SERVERS_MAX];
    int                  n;
    unsigned             seq;
    char                 health_dir[FLEET_PATH_MAX];
    fleet_backoff_t      backoff[FLEET_REGIONS_MAX];
    game_alloc_conn_t   *conn;
    fleet_metrics_t      metrics;
} fleet_t;

/*
 * fleet_main.c.  The log: one JSON object per line on stderr, which the
 * servers share (gs_logline.h: time, level, service "game-fleet", fleet
 * (the configured name), pid, event, msg, fields), each written whole in
 * one write(2) of at most 4 KiB (PIPE_BUF), so the servers' lines never
 * cut into ours.  Level: "error", "warn", "info" or "debug"; fields: a
 * JSON object (json_pack), stolen, or NULL.
 */
void fleet_log_init(const char *name);
void fleet_log(const char *level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void fleet_log_event(const char *level, const char *event, json_t *fields,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
int64_t fleet_now_ms(void);         /* CLOCK_MONOTONIC */
int64_t fleet_wall_ms(void);
void fleet_health_path(const fleet_t *f, const char *id, char *buf,
    size_t size);

/* fleet_conf.c: 0, or -1 with err filled (file:line: what) */
int fleet_conf_load(fleet_conf_t *c, const char *path, char *err,
    size_t errlen);
/* after the command line is merged: the servers' grace against `drain` */
int fleet_conf_check(fleet_conf_t *c, char *err, size_t errlen);

/* fleet_status.c: the status file, which is also the fleet's memory of
 * what it spawned (read back by fleet_adopt) */
int fleet_status_write(const char *path, const fleet_conf_t *c,
    const fleet_server_t *s, int n);
int fleet_status_print(const char *path);
/* entries of an earlier fleet: *n filled, region set to -1 when the
 * region is not configured; -1 when there is no status file */
int fleet_status_load(const char *path, const fleet_conf_t *c,
    fleet_server_t *s, int max, int *n,
    char regions[][GAME_ALLOC_NAME_MAX + 1]);

/* fleet_adopt.c */
void fleet_adopt(fleet_t *f);
int fleet_pid_alive(pid_t pid);

/* fleet_metrics.c: "<status>.prom", Prometheus' text format */
int fleet_metrics_write(const fleet_t *f);

#endif /* FLEET_H */
