/*
 * fleet_main.c: game-fleet run | status.
 *
 * Every quarter second:
 *
 *   1. collect the servers that exited: our children with waitpid, the
 *      adopted ones by polling their pid; a crash soon after its spawn
 *      doubles its region's respawn delay (250 ms up to 30 s), which a
 *      server that runs healthy for 10 s resets;
 *   2. read the states of the fleet's servers from the allocator and the
 *      pulse of their tick loops from their health files: a loop silent
 *      for `hung` seconds, or a server not registered `register-timeout`
 *      seconds after its spawn, is SIGKILLed and replaced;
 *   3. per region, wanted = clamp(allocated + buffer, min, max): spawn
 *      towards it, or scale down through the allocator's drain script,
 *      which settles in Redis whether an idle server leaves (Shutdown: it
 *      exits by itself) or an allocation came first (BUSY: it plays its
 *      match, then exits).  A server not yet registered counts as
 *      Ready-to-be, so a slow start does not make the fleet spawn twice.
 *
 * Each decision is one log line on stderr.  The status file, rewritten
 * every pass, is also the fleet's memory: a restarted fleet adopts the
 * servers that still run instead of draining them (fleet_adopt.c).
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
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fleet.h"
#include "gs_health.h"


#define FLEET_LOOP_MS        250
#define FLEET_BACKOFF_MIN_MS 250
#define FLEET_BACKOFF_MAX_MS 30000
#define FLEET_HEALTHY_MS     10000  /* a crash sooner is a crash loop */
#define FLEET_RETIRE_MS      10000  /* a drained idle server exits by then */

static volatile sig_atomic_t  fleet_stop;


static void
fleet_on_signal(int signo)
{
    fleet_stop = 1;
}


void
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


int64_t
fleet_now_ms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


int64_t
fleet_wall_ms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


void
fleet_health_path(const fleet_t *f, const char *id, char *buf, size_t size)
{
    snprintf(buf, size, "%s/%s", f->health_dir, id);
}


static const char *
fleet_region_name(const fleet_t *f, const fleet_server_t *s)
{
    return f->conf.regions[s->region].name;
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
    char             port[16], redis[300], health[FLEET_PATH_MAX + 80];
    char             id[GAME_ALLOC_NAME_MAX + 1];
    char            *argv[32 + FLEET_ARGS_MAX];
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
    snprintf(id, sizeof(id), "%s-%d-%x", r->name, p,
             (unsigned) (time(NULL) * 16 + f->seq++) & 0xffffff);
    snprintf(s->id, sizeof(s->id), "%s", id);
    s->port = p;
    s->region = region;
    s->state = GAME_ALLOC_STARTING;
    fleet_health_path(f, s->id, health, sizeof(health));

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
    argv[k++] = "--health-file"; argv[k++] = health;
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
        /* the server drains on SIGTERM from us, not from a terminal ^C;
         * and it outlives us: a restarted fleet adopts it */
        setpgid(0, 0);
        execv(argv[0], argv);
        fprintf(stderr, "game-fleet: exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    s->pid = pid;
    s->spawned_ms = fleet_now_ms();
    s->spawned_at_ms = fleet_wall_ms();
    f->metrics.spawns[region]++;
    f->n++;
    fleet_log("region %s: spawn %s pid %d udp %d (%s)", r->name, s->id,
              (int) pid, p, why);
    return 0;
}


static void
fleet_remove(fleet_t *f, int i)
{
    char  health[FLEET_PATH_MAX + 80];

    fleet_health_path(f, f->servers[i].id, health, sizeof(health));
    unlink(health);
    f->servers[i] = f->servers[--f->n];
}


/*
 * A server lost soon after its spawn (a crash, or no registration) is a
 * crash loop in the making: a bad build, a port taken, a missing key.
 * The region's respawn delay doubles, from 250 ms up to 30 s; the new
 * delay, for the caller's one log line.
 */
static int
fleet_backoff(fleet_t *f, int region, int64_t now)
{
    fleet_backoff_t  *b = &f->backoff[region];

    b->delay_ms = b->delay_ms == 0 ? FLEET_BACKOFF_MIN_MS
                  : b->delay_ms * 2 > FLEET_BACKOFF_MAX_MS
                  ? FLEET_BACKOFF_MAX_MS : b->delay_ms * 2;
    b->not_before_ms = now + b->delay_ms;
    return b->delay_ms;
}


static void
fleet_crashed(fleet_t *f, fleet_server_t *s, const char *how, int code)
{
    int64_t  now, lived;

    now = fleet_now_ms();
    lived = now - s->spawned_ms;
    f->metrics.crashes[s->region]++;

    if (lived >= FLEET_HEALTHY_MS) {
        fleet_log("region %s: %s crashed after %lld s (%s %d): will be "
                  "replaced", fleet_region_name(f, s), s->id,
                  (long long) (lived / 1000), how, code);
        return;
    }

    fleet_log("region %s: %s crashed %.1f s after its spawn (%s %d): "
              "respawn delay %d ms", fleet_region_name(f, s), s->id,
              lived / 1000.0, how, code, fleet_backoff(f, s->region, now));
}


static void
fleet_exited(fleet_t *f, int i, int status)
{
    fleet_server_t  *s = &f->servers[i];

    if (s->killed != NULL) {
        fleet_log("region %s: %s killed (%s): will be replaced",
                  fleet_region_name(f, s), s->id, s->killed);
    } else if (status == -1) {
        fleet_log("region %s: adopted %s exited (%s)",
                  fleet_region_name(f, s), s->id,
                  s->retiring ? "retired" : "status unknown");
    } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        fleet_log("region %s: %s exited (%s)", fleet_region_name(f, s),
                  s->id, s->retiring ? "retired" : "shut down by itself");
    } else if (s->retiring && WIFSIGNALED(status)) {
        fleet_log("region %s: %s retired by signal %d",
                  fleet_region_name(f, s), s->id, WTERMSIG(status));
    } else {
        fleet_crashed(f, s, WIFSIGNALED(status) ? "signal" : "status",
                      WIFSIGNALED(status) ? WTERMSIG(status)
                                          : WEXITSTATUS(status));
    }
    fleet_remove(f, i);
}


static void
fleet_collect(fleet_t *f)
{
    pid_t  pid;
    int    st, i;

    while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
        for (i = 0; i < f->n; i++) {
            if (f->servers[i].pid == pid && !f->servers[i].adopted) {
                fleet_exited(f, i, st);
                break;
            }
        }
    }

    for (i = f->n - 1; i >= 0; i--) {
        if (f->servers[i].adopted && !fleet_pid_alive(f->servers[i].pid)) {
            fleet_exited(f, i, -1);
        }
    }
}


static void
fleet_kill(fleet_t *f, fleet_server_t *s, const char *why)
{
    s->killed = why;
    s->retiring = 1;
    kill(s->pid, SIGKILL);
    f->metrics.kills[s->region]++;
}


/*
 * The tick loop's pulse, from the health file: a loop that stopped is
 * hung even if the process (and its allocator thread) lives on.  Only a
 * file that this very process stamped at least once is judged; a server
 * that never gets that far is caught by the register timeout.
 */
static void
fleet_check_hung(fleet_t *f, int64_t now)
{
    fleet_server_t  *s;
    gs_health_t      h;
    char             path[FLEET_PATH_MAX + 80];
    int              i;

    for (i = 0; i < f->n; i++) {
        s = &f->servers[i];
        if (s->killed != NULL) {
            continue;
        }
        fleet_health_path(f, s->id, path, sizeof(path));
        if (gs_health_read(path, &h) != 0 || h.pid != s->pid
            || h.ticks == 0 || now - h.last_tick_ms <= f->conf.hung_s * 1000)
        {
            continue;
        }
        fleet_log("region %s: %s hung: its loop has not ticked for %lld ms "
                  "(phase %u, %u players): SIGKILL", fleet_region_name(f, s),
                  s->id, (long long) (now - h.last_tick_ms), h.phase,
                  h.players);
        fleet_kill(f, s, "hung");
    }
}


/*
 * Judged only while the allocator answers us: without Redis no server
 * can register, and replacing them all would not help.  A server whose
 * loop holds a match (its health file says so) registered once, whatever
 * the allocator remembers now (Redis may have lost its record, and it
 * registers again after the match): it is left alone, and its time to
 * register runs from the end of that match.
 */
static void
fleet_check_registered(fleet_t *f, int64_t now)
{
    fleet_server_t  *s;
    gs_health_t      h;
    char             path[FLEET_PATH_MAX + 80];
    int              i;

    for (i = 0; i < f->n; i++) {
        s = &f->servers[i];
        if (s->seen || s->retiring) {
            continue;
        }
        fleet_health_path(f, s->id, path, sizeof(path));
        if (gs_health_read(path, &h) == 0 && h.pid == s->pid
            && h.phase != GS_HEALTH_IDLE)
        {
            s->busy_ms = now;
        }
        if (now - (s->busy_ms > s->spawned_ms ? s->busy_ms : s->spawned_ms)
            <= f->conf.register_s * 1000)
        {
            continue;
        }
        /* as good as a crash at start: the region backs off */
        fleet_log("region %s: %s not registered %d s after its spawn: "
                  "SIGKILL, respawn delay %d ms", fleet_region_name(f, s),
                  s->id, f->conf.register_s,
                  fleet_backoff(f, s->region, now));
        fleet_kill(f, s, "never registered");
    }
}


/* A drained idle server exits by itself within a heartbeat or two. */
static void
fleet_check_retired(fleet_t *f, int64_t now)
{
    fleet_server_t  *s;
    int              i;

    for (i = 0; i < f->n; i++) {
        s = &f->servers[i];
        if (s->retire_by_ms != 0 && now > s->retire_by_ms) {
            s->retire_by_ms = 0;
            fleet_log("region %s: %s still runs %d s after its drain: "
                      "SIGTERM", fleet_region_name(f, s), s->id,
                      FLEET_RETIRE_MS / 1000);
            kill(s->pid, SIGTERM);
        }
    }
}


/* A region whose servers run healthy again respawns at once. */
static void
fleet_check_backoff(fleet_t *f, int64_t now)
{
    fleet_server_t  *s;
    int              i;

    for (i = 0; i < f->n; i++) {
        s = &f->servers[i];
        if (f->backoff[s->region].delay_ms != 0 && s->seen && !s->retiring
            && now - s->spawned_ms >= FLEET_HEALTHY_MS)
        {
            f->backoff[s->region].delay_ms = 0;
            f->backoff[s->region].not_before_ms = 0;
            fleet_log("region %s: %s healthy for %d s: respawn delay reset",
                      fleet_region_name(f, s), s->id,
                      FLEET_HEALTHY_MS / 1000);
        }
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


/*
 * Scale down by one server.  The list we decided on may be stale: the
 * drain script settles in Redis, atomically against allocation, whether
 * the server leaves now or keeps the match it got meanwhile.  Either way
 * it is on its way out and no longer counted.  -1: Redis failed.
 */
static int
fleet_retire(fleet_t *f, fleet_server_t *s, const char *why)
{
    game_alloc_result_t   res;
    game_alloc_status_t   st;

    st = game_alloc_drain(f->conn, s->id, &res);

    switch (st) {

    case GAME_ALLOC_OK:
        s->retiring = 1;
        s->retire_by_ms = fleet_now_ms() + FLEET_RETIRE_MS;
        f->metrics.drains[s->region]++;
        fleet_log("region %s: retire %s: drained, it shuts down (%s)",
                  fleet_region_name(f, s), s->id, why);
        return 0;

    case GAME_ALLOC_BUSY:
        s->retiring = 1;
        fleet_log("region %s: retire %s: allocated meanwhile (%s), it plays "
                  "its match and then shuts down (%s)",
                  fleet_region_name(f, s), s->id,
                  game_alloc_state_name(res.state), why);
        return 0;

    case GAME_ALLOC_NOT_FOUND:
        /* no record to drain, so nothing can allocate it either */
        s->retiring = 1;
        kill(s->pid, SIGTERM);
        fleet_log("region %s: retire %s: not in the allocator: SIGTERM (%s)",
                  fleet_region_name(f, s), s->id, why);
        return 0;

    default:
        fleet_log("region %s: drain %s: %s", fleet_region_name(f, s), s->id,
                  game_alloc_errstr(f->conn) ? game_alloc_errstr(f->conn)
                                             : game_alloc_status_name(st));
        return -1;
    }
}


static void
fleet_scale(fleet_t *f, int region, int64_t now)
{
    fleet_region_t   *r = &f->conf.regions[region];
    fleet_backoff_t  *b = &f->backoff[region];
    fleet_server_t   *s;
    int               i, total = 0, busy = 0, ready = 0, wanted, extra;
    char              why[128];

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
    while (total < wanted && now >= b->not_before_ms
           && fleet_spawn(f, region, why) == 0)
    {
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
            if (fleet_retire(f, s, why) != 0) {
                break;
            }
            extra--;
        }
    }
}


/* SIGTERM: every server drains; what is left at the deadline is killed. */
static void
fleet_drain_all(fleet_t *f)
{
    int64_t  deadline;
    int      i;

    fleet_log("draining %d server(s), up to %d s", f->n, f->conf.drain_s);
    for (i = 0; i < f->n; i++) {
        f->servers[i].retiring = 1;
        kill(f->servers[i].pid, SIGTERM);
    }
    deadline = fleet_now_ms() + (int64_t) f->conf.drain_s * 1000;
    while (f->n > 0 && fleet_now_ms() < deadline) {
        fleet_collect(f);
        fleet_status_write(f->conf.status, &f->conf, f->servers, f->n);
        nanosleep(&(struct timespec) { 0, 50 * 1000000L }, NULL);
    }
    for (i = 0; i < f->n; i++) {
        fleet_log("%s did not drain in %d s: killed", f->servers[i].id,
                  f->conf.drain_s);
        kill(f->servers[i].pid, SIGKILL);
        if (!f->servers[i].adopted) {
            waitpid(f->servers[i].pid, NULL, 0);
        }
    }
    while (f->n > 0) {
        fleet_remove(f, 0);
    }
    fleet_status_write(f->conf.status, &f->conf, f->servers, 0);
}


static int
fleet_run(fleet_t *f)
{
    struct sigaction  sa;
    int64_t           next_reap = 0, now;
    int               i, reaped;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = fleet_on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    snprintf(f->health_dir, sizeof(f->health_dir), "%.1000s.health",
             f->conf.status);
    if (mkdir(f->health_dir, 0755) != 0 && errno != EEXIST) {
        fleet_log("health files: %s: %s", f->health_dir, strerror(errno));
        return 1;
    }

    fleet_log("starting: %d region(s), server %s, redis %s:%d prefix %s, "
              "drain %d s (servers' grace %d s), hung %d s, register "
              "timeout %d s", f->conf.nregions, f->conf.server,
              f->conf.redis_host, f->conf.redis_port, f->conf.prefix,
              f->conf.drain_s, f->conf.grace_s, f->conf.hung_s,
              f->conf.register_s);

    fleet_adopt(f);

    while (!fleet_stop) {
        fleet_collect(f);
        now = fleet_now_ms();
        fleet_check_hung(f, now);
        if (fleet_refresh(f) == 0) {
            fleet_check_registered(f, now);
            fleet_check_retired(f, now);
            fleet_check_backoff(f, now);
            for (i = 0; i < f->conf.nregions; i++) {
                fleet_scale(f, i, now);
            }
            if (now >= next_reap) {
                next_reap = now + f->conf.reap_s * 1000;
                if (game_alloc_reap(f->conn, f->conf.reap_grace_s * 1000,
                                    &reaped) == GAME_ALLOC_OK
                    && reaped > 0)
                {
                    fleet_log("reaped %d dead server record(s)", reaped);
                }
            }
        }
        fleet_status_write(f->conf.status, &f->conf, f->servers, f->n);
        fleet_metrics_write(f);
        nanosleep(&(struct timespec) { 0, FLEET_LOOP_MS * 1000000L }, NULL);
    }

    fleet_drain_all(f);
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
    if (fleet_conf_check(&f.conf, err, sizeof(err)) != 0) {
        fprintf(stderr, "game-fleet: %s: %s\n", conf, err);
        return 2;
    }

    return fleet_run(&f);
}
