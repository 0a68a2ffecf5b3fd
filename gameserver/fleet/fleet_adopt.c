/*
 * fleet_adopt.c: a restarted fleet takes over the servers that still run.
 *
 * The fleet no longer ties its servers' lives to its own (no
 * PR_SET_PDEATHSIG): restarting the fleet manager, to upgrade it or after
 * a crash, must not drain every match in the region.  The status file says
 * what the last fleet spawned; an entry is adopted when its pid is alive
 * and /proc/PID/cmdline shows the configured server started with that
 * --id, so a pid reused by another program is never taken for a server.
 * Adopted servers are not our children: their exit is seen by polling
 * (fleet_pid_alive), and their exit status is unknown.
 */

#define _XOPEN_SOURCE 700

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fleet.h"


/* Alive and not a zombie: an adopted server's parent is init, which may
 * be slow to reap it (or, in a container, never do it). */
int
fleet_pid_alive(pid_t pid)
{
    char   path[64], buf[256], *paren;
    FILE  *f;
    int    alive;

    if (kill(pid, 0) != 0 && errno != EPERM) {
        return 0;
    }

    snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
    f = fopen(path, "r");
    if (f == NULL) {
        return 0;
    }
    alive = 1;
    if (fgets(buf, sizeof(buf), f) != NULL) {
        /* "pid (comm) S ...": comm may hold spaces and parens */
        paren = strrchr(buf, ')');
        alive = paren == NULL || paren[1] == '\0' || paren[2] != 'Z';
    }
    fclose(f);
    return alive;
}


/*
 * The process runs our server with --id id: argv[0] is the configured
 * server (or argv[1], for a script run by its interpreter), or its
 * executable is the same file.
 */
static int
fleet_pid_runs(pid_t pid, const char *server, const char *id)
{
    char     path[64], buf[8192], exe[PATH_MAX], want[PATH_MAX];
    char    *argv[256];
    ssize_t  n;
    int      fd, argc, i, ours;

    snprintf(path, sizeof(path), "/proc/%d/cmdline", (int) pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
        return 0;
    }
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0) {
        return 0;
    }
    buf[n] = '\0';

    for (argc = 0, i = 0; i < n && argc < 256; argc++) {
        argv[argc] = buf + i;
        i += (int) strlen(buf + i) + 1;
    }

    ours = strcmp(argv[0], server) == 0
           || (argc > 1 && strcmp(argv[1], server) == 0);
    if (!ours) {
        snprintf(path, sizeof(path), "/proc/%d/exe", (int) pid);
        ours = realpath(path, exe) != NULL && realpath(server, want) != NULL
               && strcmp(exe, want) == 0;
    }
    if (!ours) {
        return 0;
    }

    for (i = 0; i + 1 < argc; i++) {
        if (strcmp(argv[i], "--id") == 0 && strcmp(argv[i + 1], id) == 0) {
            return 1;
        }
    }
    return 0;
}


void
fleet_adopt(fleet_t *f)
{
    static fleet_server_t  old[FLEET_SERVERS_MAX];
    static char            regions[FLEET_SERVERS_MAX][GAME_ALLOC_NAME_MAX + 1];
    fleet_server_t        *o, *s;
    char                   health[FLEET_PATH_MAX + 80];
    int                    i, n;
    int64_t                now;

    if (fleet_status_load(f->conf.status, &f->conf, old, FLEET_SERVERS_MAX,
                          &n, regions) != 0)
    {
        return;     /* a first start */
    }

    now = fleet_now_ms();

    for (i = 0; i < n; i++) {
        o = &old[i];

        if (!fleet_pid_alive(o->pid)) {
            fleet_log_event("info", "adopt_gone",
                            json_pack("{s:s, s:i}", "server", o->id,
                                      "server_pid", (int) o->pid),
                            "%s (pid %d) of the last run is gone", o->id,
                            (int) o->pid);
            fleet_health_path(f, o->id, health, sizeof(health));
            unlink(health);
            continue;
        }
        if (!fleet_pid_runs(o->pid, f->conf.server, o->id)) {
            fleet_log_event("warn", "adopt_refused",
                            json_pack("{s:s, s:i, s:s}", "server", o->id,
                                      "server_pid", (int) o->pid, "why",
                                      "pid runs something else"),
                            "not adopting %s: pid %d runs something else",
                            o->id, (int) o->pid);
            continue;
        }
        if (o->region < 0) {
            /* it would never be counted or scaled: let it drain itself */
            fleet_log_event("warn", "adopt_refused",
                            json_pack("{s:s, s:i, s:s, s:s, s:s}", "server",
                                      o->id, "server_pid", (int) o->pid,
                                      "region", regions[i], "why",
                                      "region not configured", "action",
                                      "SIGTERM"),
                            "%s (pid %d) is of region %s, not configured: "
                            "SIGTERM", o->id, (int) o->pid, regions[i]);
            kill(o->pid, SIGTERM);
            continue;
        }

        s = &f->servers[f->n++];
        *s = *o;
        s->adopted = 1;
        s->state = GAME_ALLOC_STARTING;
        /* Our clocks for it (register timeout, crash loop, back-off
         * reset) start now: what it did before is not known to us. */
        s->spawned_ms = now;
        fleet_log_event("info", "server_adopt",
                        json_pack("{s:s, s:s, s:i, s:i}", "region",
                                  f->conf.regions[s->region].name, "server",
                                  s->id, "server_pid", (int) s->pid, "port",
                                  s->port),
                        "region %s: adopted %s pid %d udp %d",
                        f->conf.regions[s->region].name, s->id, (int) s->pid,
                        s->port);
    }
}
