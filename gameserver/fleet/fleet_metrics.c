/*
 * fleet_metrics.c: what the fleet manager did, in Prometheus' text format,
 * written beside the status file as "<status>.prom" every pass.
 *
 * A fleet manager is a daemon without an HTTP listener of its own; the
 * textfile collector of node_exporter (--collector.textfile.directory) is
 * how Prometheus reads such a process: point it at the file's folder, or
 * copy the file there.  Counters start again from 0 when the fleet
 * manager restarts, which Prometheus' rate() takes as a reset.  Written to
 * a temporary name and renamed, so a reader never sees half a file.
 */

#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <string.h>

#include "fleet.h"
#include "gs_health.h"


static const char *fleet_metrics_states[] = {
    "Starting", "Ready", "Allocated", "Playing", "Finished", "Shutdown"
};


static void
fleet_metrics_counter(FILE *out, const fleet_t *f, const char *name,
    const char *help, const long long *per_region)
{
    int  r;

    fprintf(out, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
    for (r = 0; r < f->conf.nregions; r++) {
        fprintf(out, "%s{region=\"%s\"} %lld\n", name,
                f->conf.regions[r].name, per_region[r]);
    }
}


int
fleet_metrics_write(const fleet_t *f)
{
    char         path[FLEET_PATH_MAX + 8], tmp[FLEET_PATH_MAX + 16];
    char         hpath[FLEET_PATH_MAX * 2];
    FILE        *out;
    gs_health_t  h;
    uint32_t     worst;
    int          r, st, i, n;
    const char  *state;

    snprintf(path, sizeof(path), "%s.prom", f->conf.status);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);

    out = fopen(tmp, "w");
    if (out == NULL) {
        return -1;
    }

    fleet_metrics_counter(out, f, "game_fleet_manager_spawns_total",
                          "Game servers the fleet manager started",
                          f->metrics.spawns);
    fleet_metrics_counter(out, f, "game_fleet_manager_crashes_total",
                          "Game servers that exited on their own with a "
                          "failure", f->metrics.crashes);
    fleet_metrics_counter(out, f, "game_fleet_manager_kills_total",
                          "Game servers SIGKILLed: hung, or never "
                          "registered", f->metrics.kills);
    fleet_metrics_counter(out, f, "game_fleet_manager_drains_total",
                          "Game servers drained to scale down",
                          f->metrics.drains);

    fprintf(out, "# HELP game_fleet_manager_servers Game servers this fleet "
                 "manager runs, by region and state\n"
                 "# TYPE game_fleet_manager_servers gauge\n");
    for (r = 0; r < f->conf.nregions; r++) {
        for (st = 0; st < 6; st++) {
            n = 0;
            for (i = 0; i < f->n; i++) {
                state = f->servers[i].seen
                        ? game_alloc_state_name(f->servers[i].state)
                        : "Starting";
                if (f->servers[i].region == r
                    && strcmp(state, fleet_metrics_states[st]) == 0)
                {
                    n++;
                }
            }
            fprintf(out, "game_fleet_manager_servers{region=\"%s\","
                         "state=\"%s\"} %d\n", f->conf.regions[r].name,
                    fleet_metrics_states[st], n);
        }
    }

    /* what the servers publish in their health files: players connected
     * now, the fleet's share of the concurrent users (CCU) */
    fprintf(out, "# HELP game_fleet_manager_players Players connected to "
                 "this fleet manager's game servers, by region\n"
                 "# TYPE game_fleet_manager_players gauge\n");
    for (r = 0; r < f->conf.nregions; r++) {
        n = 0;
        for (i = 0; i < f->n; i++) {
            if (f->servers[i].region == r) {
                fleet_health_path(f, f->servers[i].id, hpath, sizeof(hpath));
                if (gs_health_read(hpath, &h) == 0) {
                    n += (int) h.players;
                }
            }
        }
        fprintf(out, "game_fleet_manager_players{region=\"%s\"} %d\n",
                f->conf.regions[r].name, n);
    }

    /* the slowest of the servers' recent tick p99s, per region: what
     * an alert on the tick budget watches */
    fprintf(out, "# HELP game_fleet_manager_tick_p99_seconds The highest "
                 "recent tick time p99 among this fleet manager's game "
                 "servers, by region\n"
                 "# TYPE game_fleet_manager_tick_p99_seconds gauge\n");
    for (r = 0; r < f->conf.nregions; r++) {
        worst = 0;
        for (i = 0; i < f->n; i++) {
            if (f->servers[i].region == r) {
                fleet_health_path(f, f->servers[i].id, hpath, sizeof(hpath));
                if (gs_health_read(hpath, &h) == 0 && h.tick_p99_us > worst) {
                    worst = h.tick_p99_us;
                }
            }
        }
        fprintf(out, "game_fleet_manager_tick_p99_seconds{region=\"%s\"} "
                     "%.6f\n", f->conf.regions[r].name, worst / 1e6);
    }

    if (fclose(out) != 0) {
        return -1;
    }
    return rename(tmp, path);
}
