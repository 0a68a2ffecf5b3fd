/*
 * fleet_main.c: game-fleet run | status.
 *
 * Every quarter second: collect exited children (a crash is replaced by
 * the next step; an exit 0 was a retirement or a drain), read the states
 * of the fleet's servers from the allocator, then per region compute
 * wanted = clamp(allocated + buffer, min, max) and spawn or retire towards
 * it.  A server not yet registered counts as Ready-to-be, so a slow start
 * does not make the fleet spawn twice.  Each decision is one log line.
 *
 * SIGTERM: every server gets SIGTERM (they drain: a running match ends or
 * hits its grace, then deregister), the fleet waits `drain` seconds for
 * them, SIGKILLs what is left, and exits 0.
 */

#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fleet.h"


#define FLEET_LOOP_MS  250

typedef struct {
    fleet_conf_t      conf;
    fleet_server_t    servers[FLEET_SERVERS_MAX];
    int               n;
    unsigned          seq;
    game_alloc_conn_t *conn;
} fleet_t;

static volatile sig_atomic_t  fleet_stop;


static void
fleet_on_signal(int signo)
{
    fleet_stop = 1;
}


static void
fleet_log(const char *fmt, ...)
{
    char             line[1024];
    struct timespec  ts;
    struct tm        tm;
    va_list          ap;
    int              n;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = snprintf(line, sizeof(line), "%02d:%02d:%02d.%03ld game-fleet ",
                 tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof(line) - (size_t) n, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s\n", line);
}


static int64_t
fleet_now_ms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


/* free = not ours and bindable right now (someone else may hold it) */
static int
fleet_port_free(fleet_t *f, int port)
{
    struct sockaddr_in  sa;
    int                 i, fd, ok;

    for (i = 0; i < f->n; i++) {
        if (f->servers[i].port == port) {
            return 0;
        }
    }
    fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) {
        return 0;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t) port);
    sa.sin_addr.s_addr = htonl(INADDR_ANY);
    ok = bind(fd, (struct sockaddr *) &sa, sizeof(sa)) == 0;
    close(fd);
    return ok;
}


static int
fleet_spawn(fleet_t *f, int region, const char *why)
{
    fleet_region_t  *r = &f->conf.regions[region];
    fleet_server_t  *s;
    char             port[16], redis[300], *argv[32 + FLEET_ARGS_MAX];
    int              p, i, k = 0;
    pid_t            pid;

    if (f->n == FLEET_SERVERS_MAX) {
        return -1;
    }
    for (p = r->port_lo; p <= r->port_hi; p++) {
        if (fleet_port_free(f, p)) {
            break;
        }
    }
    if (p > r->port_hi) {
        fleet_log("region %s: no free UDP port in %d-%d, cannot spawn",
                  r->name, r->port_lo, r->port_hi);
        return -1;
    }

    s = &f->servers[f->n];
    memset(s, 0, sizeof(*s));
    /* unique per spawn: a replacement must not collide with the record of
     * the server it replaces, whose heartbeat key lives on for a while */
    snprintf(s->id, sizeof(s->id), "%s-%d-%x", r->name, p,
             (unsigned) (time(NULL) * 16 + f->seq++) & 0xffffff);
    s->port = p;
    s->region = region;
    s->state = GAME_ALLOC_STARTING;

    snprintf(port, sizeof(port), "%d", p);
    snprintf(redis, sizeof(redis), "%s:%d", f->conf.redis_host,
             f->conf.redis_port);
    argv[k++] = f->conf.server;
    argv[k++] = "--id";     argv[k++] = s->id;
    argv[k++] = "--port";   argv[k++] = port;
    argv[k++] = "--addr";   argv[k++] = r->addr;
    argv[k++] = "--region"; argv[k++] = r->name;
    argv[k++] = "--mode";   argv[k++] = r->mode;
    argv[k++] = "--redis";  argv[k++] = redis;
    argv[k++] = "--prefix"; argv[k++] = f->conf.prefix;
    for (i = 0; i < f->conf.nargs; i++) {
        argv[k++] = f->conf.args[i];
    }
    argv[k] = NULL;

    pid = fork();
    if (pid < 0) {
        fleet_log("fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        /* the server drains on SIGTERM from us, not from a terminal ^C */
        setpgid(0, 0);
        /* and if the fleet dies without draining, its servers drain */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        execv(argv[0], argv);
        fprintf(stderr, "game-fleet: exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    s->pid = pid;
    f->n++;
    fleet_log("region %s: spawn %s pid %d udp %d (%s)", r->name, s->id,
              (int) pid, p, why);
    return 0;
}


static void
fleet_remove(fleet_t *f, int i)
{
    f->servers[i] = f->servers[--f->n];
}


static void
fleet_reap_children(fleet_t *f)
{
    pid_t  pid;
    int    st, i;

    while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
        for (i = 0; i < f->n; i++) {
            if (f->servers[i].pid == pid) {
                break;
            }
        }
        if (i == f->n) {
            continue;
        }
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
            fleet_log("region %s: %s exited (%s)",
                      f->conf.regions[f->servers[i].region].name,
                      f->servers[i].id, f->servers[i].retiring
                      ? "retired" : "shut down by itself");
        } else {
            fleet_log("region %s: %s crashed (%s %d): will be replaced",
                      f->conf.regions[f->servers[i].region].name,
                      f->servers[i].id,
                      WIFSIGNALED(st) ? "signal" : "status",
                      WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
        }
        fleet_remove(f, i);
    }
}


static void
fleet_on_listed(const game_alloc_server_t *gs, int alive, void *data)
{
    fleet_t  *f = data;
    int       i;

    for (i = 0; i < f->n; i++) {
        if (strcmp(f->servers[i].id, gs->id) == 0) {
            f->servers[i].state = alive ? gs->state : GAME_ALLOC_SHUTDOWN;
            f->servers[i].seen = 1;
        }
    }
}


static int
fleet_refresh(fleet_t *f)
{
    int  r;

    if (f->conn == NULL) {
        f->conn = game_alloc_connect(f->conf.redis_host, f->conf.redis_port,
                                     f->conf.prefix, 1000);
        if (f->conn == NULL || game_alloc_errstr(f->conn) != NULL) {
            fleet_log("redis %s:%d: %s", f->conf.redis_host,
                      f->conf.redis_port,
                      f->conn ? game_alloc_errstr(f->conn) : "no memory");
            game_alloc_close(f->conn);
            f->conn = NULL;
            return -1;
        }
    }
    for (r = 0; r < f->conf.nregions; r++) {
        if (game_alloc_list(f->conn, f->conf.regions[r].name, fleet_on_listed,
                            f) == GAME_ALLOC_ERROR)
        {
            fleet_log("allocator list: %s", game_alloc_errstr(f->conn));
            game_alloc_close(f->conn);
            f->conn = NULL;
            return -1;
        }
    }
    return 0;
}


static void
fleet_scale(fleet_t *f, int region)
{
    fleet_region_t  *r = &f->conf.regions[region];
    fleet_server_t  *s;
    int              i, total = 0, busy = 0, ready = 0, wanted, extra;
    char             why[128];

    for (i = 0; i < f->n; i++) {
        s = &f->servers[i];
        if (s->region != region || s->retiring) {
            continue;
        }
        total++;
        if (s->state == GAME_ALLOC_ALLOCATED || s->state == GAME_ALLOC_PLAYING
            || s->state == GAME_ALLOC_FINISHED)
        {
            busy++;
        } else if (s->state == GAME_ALLOC_READY
                   || s->state == GAME_ALLOC_STARTING)
        {
            ready++;
        }
    }

    wanted = busy + r->buffer;
    wanted = wanted < r->min ? r->min : wanted > r->max ? r->max : wanted;

    snprintf(why, sizeof(why), "allocated %d + buffer %d -> wanted %d, have %d",
             busy, r->buffer, wanted, total);
    while (total < wanted && fleet_spawn(f, region, why) == 0) {
        total++;
    }

    /* retire idle servers only: never one that holds a match */
    extra = total - wanted;
    if (ready - r->buffer < extra) {
        extra = ready - r->buffer;
    }
    for (i = f->n - 1; i >= 0 && extra > 0; i--) {
        s = &f->servers[i];
        if (s->region == region && !s->retiring && s->seen
            && s->state == GAME_ALLOC_READY)
        {
            s->retiring = 1;
            kill(s->pid, SIGTERM);
            extra--;
            fleet_log("region %s: retire %s (%s)", r->name, s->id, why);
        }
    }
}


static int
fleet_run(fleet_t *f)
{
    struct sigaction  sa;
    int64_t           next_reap = 0, deadline;
    int               i, reaped;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = fleet_on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    fleet_log("starting: %d region(s), server %s, redis %s:%d prefix %s",
              f->conf.nregions, f->conf.server, f->conf.redis_host,
              f->conf.redis_port, f->conf.prefix);

    while (!fleet_stop) {
        fleet_reap_children(f);
        if (fleet_refresh(f) == 0) {
            for (i = 0; i < f->conf.nregions; i++) {
                fleet_scale(f, i);
            }
            if (fleet_now_ms() >= next_reap) {
                next_reap = fleet_now_ms() + f->conf.reap_s * 1000;
                if (game_alloc_reap(f->conn, -1, &reaped) == GAME_ALLOC_OK
                    && reaped > 0)
                {
                    fleet_log("reaped %d dead server record(s)", reaped);
                }
            }
        }
        fleet_status_write(f->conf.status, &f->conf, f->servers, f->n);
        nanosleep(&(struct timespec) { 0, FLEET_LOOP_MS * 1000000L }, NULL);
    }

    fleet_log("draining %d server(s)", f->n);
    for (i = 0; i < f->n; i++) {
        f->servers[i].retiring = 1;
        kill(f->servers[i].pid, SIGTERM);
    }
    deadline = fleet_now_ms() + f->conf.drain_s * 1000;
    while (f->n > 0 && fleet_now_ms() < deadline) {
        fleet_reap_children(f);
        fleet_status_write(f->conf.status, &f->conf, f->servers, f->n);
        nanosleep(&(struct timespec) { 0, 50 * 1000000L }, NULL);
    }
    for (i = 0; i < f->n; i++) {
        fleet_log("%s did not drain in %d s: killed", f->servers[i].id,
                  f->conf.drain_s);
        kill(f->servers[i].pid, SIGKILL);
        waitpid(f->servers[i].pid, NULL, 0);
    }
    f->n = 0;
    fleet_status_write(f->conf.status, &f->conf, f->servers, 0);
    game_alloc_close(f->conn);
    fleet_log("stopped");
    return 0;
}


static const char fleet_usage[] =
"usage: game-fleet [-c FILE] [--redis HOST:PORT] [--prefix P]\n"
"                  [--status FILE] [--server-arg WORD]... run|status\n"
"  -c FILE   configuration (gameserver/fleet.dev.conf)\n"
"  options given here override the file; --server-arg adds to it\n";


int
main(int argc, char **argv)
{
    static fleet_t  f;
    const char     *conf = "gameserver/fleet.dev.conf", *cmd = NULL,
                   *redis = NULL, *prefix = NULL, *status = NULL;
    const char     *extra[FLEET_ARGS_MAX];
    char            err[1200], *colon;
    int             i, nextra = 0;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "run") == 0 || strcmp(argv[i], "status") == 0) {
            cmd = argv[i];
        } else if (i + 1 < argc && strcmp(argv[i], "-c") == 0) {
            conf = argv[++i];
        } else if (i + 1 < argc && strcmp(argv[i], "--redis") == 0) {
            redis = argv[++i];
        } else if (i + 1 < argc && strcmp(argv[i], "--prefix") == 0) {
            prefix = argv[++i];
        } else if (i + 1 < argc && strcmp(argv[i], "--status") == 0) {
            status = argv[++i];
        } else if (i + 1 < argc && strcmp(argv[i], "--server-arg") == 0
                   && nextra < FLEET_ARGS_MAX)
        {
            extra[nextra++] = argv[++i];
        } else {
            fputs(fleet_usage, stderr);
            return 2;
        }
    }
    if (cmd == NULL) {
        fputs(fleet_usage, stderr);
        return 2;
    }

    if (fleet_conf_load(&f.conf, conf, err, sizeof(err)) != 0) {
        /* status needs only the path of the status file */
        if (strcmp(cmd, "status") == 0 && status != NULL) {
            return fleet_status_print(status);
        }
        fprintf(stderr, "game-fleet: %s\n", err);
        return 2;
    }
    if (status != NULL) {
        snprintf(f.conf.status, sizeof(f.conf.status), "%s", status);
    }
    if (strcmp(cmd, "status") == 0) {
        return fleet_status_print(f.conf.status);
    }

    if (redis != NULL) {
        colon = strrchr(redis, ':');
        if (colon == NULL) {
            fputs(fleet_usage, stderr);
            return 2;
        }
        snprintf(f.conf.redis_host, sizeof(f.conf.redis_host), "%.*s",
                 (int) (colon - redis), redis);
        f.conf.redis_port = atoi(colon + 1);
    }
    if (prefix != NULL) {
        snprintf(f.conf.prefix, sizeof(f.conf.prefix), "%s", prefix);
    }
    for (i = 0; i < nextra && f.conf.nargs < FLEET_ARGS_MAX; i++) {
        f.conf.args[f.conf.nargs++] = (char *) extra[i];
    }

    return fleet_run(&f);
}
