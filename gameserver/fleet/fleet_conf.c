/*
 * fleet_conf.c: the fleet's configuration file.
 *
 * One directive per line, words separated by blanks, '#' starts a comment:
 *
 *   name        NAME                      the fleet's name in its log lines
 *                                         (the host name)
 *   redis       HOST:PORT                 (127.0.0.1:6379)
 *   prefix      P                         (game:)
 *   server      PATH                      game-server; relative paths are
 *                                         relative to this file
 *   status      PATH                      status and state file
 *                                         (/tmp/game-fleet.status; a
 *                                         relative path is relative to
 *                                         this file); the
 *                                         health files go next to it, in
 *                                         PATH.health/
 *   reap        SECONDS                   between allocator reaps (10)
 *   reap-grace  SECONDS                   reap only servers silent longer
 *                                         than this (30)
 *   drain       SECONDS                   on SIGTERM, wait this long for
 *                                         the servers, then SIGKILL; must
 *                                         be at least their drain grace +
 *                                         5 (default: grace + 15)
 *   hung        SECONDS                   a loop silent this long is hung:
 *                                         SIGKILL, replace (5)
 *   register-timeout SECONDS              a server not registered this long
 *                                         after its spawn is replaced (15)
 *   server-arg  WORD                      passed to every server, repeatable
 *   region NAME min N max N buffer N ports LO-HI [mode M] [addr A]
 *
 * The servers' drain grace is what their --drain-grace says among the
 * server-arg words, or one match (--join-timeout + --match-seconds + 10,
 * game-server's defaults where absent): see fleet_conf_check.
 *
 * Errors name the file, the line and the bad value.
 */

#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fleet.h"
#include "gs_defaults.h"


#define FLEET_DRAIN_MARGIN_S  5     /* result, goodbye, exit after grace */
#define FLEET_DRAIN_SLACK_S   15    /* the default on top of the grace */


static int
fleet_conf_num(const char *v, int lo, int hi, int *out)
{
    char  *end;
    long   n = strtol(v, &end, 10);

    if (*v == '\0' || *end != '\0' || n < lo || n > hi) {
        return -1;
    }
    *out = (int) n;
    return 0;
}


static int
fleet_conf_region(fleet_conf_t *c, char **w, int n, char *err, size_t len)
{
    fleet_region_t  *r;
    int              i;
    char            *dash;

    if (c->nregions == FLEET_REGIONS_MAX || n < 2 || n % 2 != 0) {
        snprintf(err, len, "region NAME min N max N buffer N ports LO-HI");
        return -1;
    }
    r = &c->regions[c->nregions];
    memset(r, 0, sizeof(*r));
    snprintf(r->name, sizeof(r->name), "%s", w[1]);
    strcpy(r->mode, "dm");
    strcpy(r->addr, "127.0.0.1");
    r->max = -1;

    for (i = 2; i < n; i += 2) {
        if (strcmp(w[i], "min") == 0) {
            if (fleet_conf_num(w[i + 1], 0, FLEET_SERVERS_MAX, &r->min)) break;
        } else if (strcmp(w[i], "max") == 0) {
            if (fleet_conf_num(w[i + 1], 0, FLEET_SERVERS_MAX, &r->max)) break;
        } else if (strcmp(w[i], "buffer") == 0) {
            if (fleet_conf_num(w[i + 1], 0, FLEET_SERVERS_MAX, &r->buffer))
                break;
        } else if (strcmp(w[i], "ports") == 0) {
            dash = strchr(w[i + 1], '-');
            if (dash == NULL) break;
            *dash = '\0';
            if (fleet_conf_num(w[i + 1], 1, 65535, &r->port_lo)
                || fleet_conf_num(dash + 1, r->port_lo, 65535, &r->port_hi))
                break;
        } else if (strcmp(w[i], "mode") == 0) {
            snprintf(r->mode, sizeof(r->mode), "%s", w[i + 1]);
        } else if (strcmp(w[i], "addr") == 0) {
            snprintf(r->addr, sizeof(r->addr), "%s", w[i + 1]);
        } else {
            break;
        }
    }
    if (i < n) {
        snprintf(err, len, "invalid \"%s %s\" in region %s", w[i],
                 w[i + 1], r->name);
        return -1;
    }
    if (r->port_lo == 0 || r->max < r->min
        || r->max > r->port_hi - r->port_lo + 1)
    {
        snprintf(err, len, "region %s: needs ports, and min <= max <= "
                 "number of ports", r->name);
        return -1;
    }
    c->nregions++;
    return 0;
}


int
fleet_conf_load(fleet_conf_t *c, const char *path, char *err, size_t errlen)
{
    FILE   *f;
    char    line[1024], *w[32], *p, *colon, dir[1024], msg[256];
    int     n, lineno = 0, rc = 0;

    memset(c, 0, sizeof(*c));
    if (gethostname(c->name, sizeof(c->name) - 1) != 0 || c->name[0] == '\0') {
        strcpy(c->name, "game-fleet");
    }
    strcpy(c->redis_host, "127.0.0.1");
    c->redis_port = 6379;
    strcpy(c->prefix, "game:");
    strcpy(c->status, "/tmp/game-fleet.status");
    c->reap_s = 10;
    c->reap_grace_s = 30;
    c->drain_s = -1;
    c->hung_s = 5;
    c->register_s = 15;

    snprintf(dir, sizeof(dir), "%s", path);
    p = strrchr(dir, '/');
    if (p != NULL) {
        *p = '\0';
    } else {
        strcpy(dir, ".");
    }

    f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, errlen, "%s: cannot open", path);
        return -1;
    }

    while (rc == 0 && fgets(line, sizeof(line), f) != NULL) {
        lineno++;
        if ((p = strchr(line, '#')) != NULL) {
            *p = '\0';
        }
        n = 0;
        for (p = strtok(line, " \t\r\n"); p && n < 32;
             p = strtok(NULL, " \t\r\n"))
        {
            w[n++] = p;
        }
        if (n == 0) {
            continue;
        }
        msg[0] = '\0';

        if (strcmp(w[0], "region") == 0) {
            if (fleet_conf_region(c, w, n, msg, sizeof(msg)) != 0) rc = -1;
        } else if (n != 2) {
            snprintf(msg, sizeof(msg), "\"%s\" takes one value", w[0]);
            rc = -1;
        } else if (strcmp(w[0], "redis") == 0) {
            colon = strrchr(w[1], ':');
            if (colon == NULL
                || fleet_conf_num(colon + 1, 1, 65535, &c->redis_port))
            {
                snprintf(msg, sizeof(msg), "invalid redis \"%s\"", w[1]);
                rc = -1;
            } else {
                *colon = '\0';
                snprintf(c->redis_host, sizeof(c->redis_host), "%s", w[1]);
            }
        } else if (strcmp(w[0], "name") == 0) {
            snprintf(c->name, sizeof(c->name), "%s", w[1]);
        } else if (strcmp(w[0], "prefix") == 0) {
            snprintf(c->prefix, sizeof(c->prefix), "%s", w[1]);
        } else if (strcmp(w[0], "server") == 0) {
            if (w[1][0] == '/') {
                snprintf(c->server, sizeof(c->server), "%s", w[1]);
            } else {
                snprintf(c->server, sizeof(c->server), "%.500s/%.500s", dir,
                         w[1]);
            }
        } else if (strcmp(w[0], "status") == 0) {
            /* relative to this file, like server: `game-fleet status`
             * finds the running fleet's file from any directory */
            if (w[1][0] == '/') {
                snprintf(c->status, sizeof(c->status), "%s", w[1]);
            } else {
                snprintf(c->status, sizeof(c->status), "%.500s/%.500s", dir,
                         w[1]);
            }
        } else if (strcmp(w[0], "reap") == 0) {
            if (fleet_conf_num(w[1], 1, 3600, &c->reap_s)) rc = -1;
        } else if (strcmp(w[0], "reap-grace") == 0) {
            if (fleet_conf_num(w[1], 0, 3600, &c->reap_grace_s)) rc = -1;
        } else if (strcmp(w[0], "drain") == 0) {
            if (fleet_conf_num(w[1], 0, 86400, &c->drain_s)) rc = -1;
        } else if (strcmp(w[0], "hung") == 0) {
            if (fleet_conf_num(w[1], 1, 3600, &c->hung_s)) rc = -1;
        } else if (strcmp(w[0], "register-timeout") == 0) {
            if (fleet_conf_num(w[1], 1, 3600, &c->register_s)) rc = -1;
        } else if (strcmp(w[0], "server-arg") == 0) {
            if (c->nargs == FLEET_ARGS_MAX) {
                snprintf(msg, sizeof(msg), "too many server-arg");
                rc = -1;
            } else {
                c->args[c->nargs++] = strdup(w[1]);
            }
        } else {
            snprintf(msg, sizeof(msg), "unknown directive \"%s\"", w[0]);
            rc = -1;
        }
        if (rc != 0) {
            snprintf(err, errlen, "%s:%d: %s", path, lineno,
                     msg[0] ? msg : "invalid value");
        }
    }
    fclose(f);

    if (rc == 0 && (c->nregions == 0 || c->server[0] == '\0')) {
        snprintf(err, errlen, "%s: needs \"server\" and a region", path);
        rc = -1;
    }
    return rc;
}


/* The value of a server option among the server-arg words, or dflt. */
static int
fleet_conf_server_opt(const fleet_conf_t *c, const char *name, int dflt,
    int *out)
{
    int  i;

    *out = dflt;
    for (i = 0; i + 1 < c->nargs; i++) {
        if (strcmp(c->args[i], name) == 0) {
            if (fleet_conf_num(c->args[i + 1], 0, 86400, out) != 0) {
                return -1;
            }
            i++;
        }
    }
    return 0;
}


/*
 * A fleet stopped by SIGTERM drains its servers and SIGKILLs what is left
 * after `drain` seconds: that deadline must lie beyond the servers' own
 * grace, or it cuts short the very matches the grace protects.
 */
int
fleet_conf_check(fleet_conf_t *c, char *err, size_t errlen)
{
    int  join, match, grace;

    if (fleet_conf_server_opt(c, "--join-timeout", GS_DEFAULT_JOIN_TIMEOUT_S,
                              &join) != 0
        || fleet_conf_server_opt(c, "--match-seconds",
                                 GS_DEFAULT_MATCH_SECONDS, &match) != 0
        || fleet_conf_server_opt(c, "--drain-grace",
                                 gs_drain_grace_default(join, match),
                                 &grace) != 0)
    {
        snprintf(err, errlen, "server-arg: --join-timeout, --match-seconds "
                 "and --drain-grace take seconds");
        return -1;
    }
    c->grace_s = grace;

    if (c->drain_s < 0) {
        c->drain_s = grace + FLEET_DRAIN_SLACK_S;

    } else if (c->drain_s < grace + FLEET_DRAIN_MARGIN_S) {
        snprintf(err, errlen, "drain %d s is too short: the servers' drain "
                 "grace is %d s (--drain-grace, or join timeout + match + "
                 "%d), and drain must be at least %d s more",
                 c->drain_s, grace, GS_DRAIN_SLACK_S, FLEET_DRAIN_MARGIN_S);
        return -1;
    }

    return 0;
}
