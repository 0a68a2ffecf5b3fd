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
 * Each decision is one JSON log line on stderr, with an event name and
 * typed fields (fleet.h: fleet_log_event).  The status file, rewritten
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
#include "gs_logline.h"


#define FLEET_LOOP_MS        250
#define FLEET_BACKOFF_MIN_MS 250
#define FLEET_BACKOFF_MAX_MS 30000
#define FLEET_HEALTHY_MS     10000  /* a crash sooner is a crash loop */
#define FLEET_RETIRE_MS      10000  /* a drained idle server exits by then */
#define FLEET_LOG_LINE       4096   /* PIPE_BUF: one atomic write */

static volatile sig_atomic_t  fleet_stop;
static gs_logline_who_t       fleet_log_self;


static void
fleet_on_signal(int signo)
{
    fleet_stop = 1;
}


/* again in a forked child: its lines carry its own pid */
void
fleet_log_init(const char *name)
{
    gs_logline_who(&fleet_log_self, "game-fleet", "fleet", name,
                   (long) getpid());
}


static void
fleet_log_va(const char *level, const char *event, json_t *fields,
    const char *fmt, va_list ap)
{
    char     msg[FLEET_LOG_LINE], line[FLEET_LOG_LINE];
    size_t   len, off;
    ssize_t  n;

    if (fleet_log_self.id_key[0] == '\0') {
        fleet_log_init("");         /* before the configuration names us */
    }
    vsnprintf(msg, sizeof(msg), fmt, ap);
    len = gs_logline_build(line, sizeof(line), &fleet_log_self,
                           fleet_wall_ms(), level, event, msg, fields);

    /* one write: the servers write to the same stderr */
    for (off = 0; off < len; off += (size_t) n) {
        n = write(STDERR_FILENO, line + off, len - off);
        if (n < 0 && errno == EINTR) {
            n = 0;
        } else if (n <= 0) {
            break;
        }
    }
}


void
fleet_log(const char *level, const char *fmt, ...)
{
    va_list  ap;

    va_start(ap, fmt);
    fleet_log_va(level, NULL, NULL, fmt, ap);
    va_end(ap);
}


void
fleet_log_event(const char *level, const char *event, json_t *fields,
    const char *fmt, ...)
{
    va_list  ap;

    va_start(ap, fmt);
    fleet_log_va(level, event, fields, fmt, ap);
    va_end(ap);
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


/* what every line about one server says, and more (stolen, may be NULL) */
static json_t *
fleet_server_fields(const fleet_t *f, const fleet_server_t *s, json_t *more)
{
    json_t  *o;

    o = json_pack("{s:s, s:s, s:i, s:i, s:b}", "region",
                  fleet_region_name(f, s), "server", s->id, "server_pid",
                  (int) s->pid, "port", s->port, "adopted", s->adopted);
    if (o != NULL && more != NULL) {
        json_object_update(o, more);
    }
    json_decref(more);
    return o;
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
fleet_spawn(fleet_t *f, int region)
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
        fleet_log_event("error", "spawn_failed",
                        json_pack("{s:s, s:s, s:i, s:i}", "region", r->name,
                                  "error", "no free UDP port", "port_lo",
                                  r->port_lo, "port_hi", r->port_hi),
                        "region %s: no free UDP port in %d-%d, cannot spawn",
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
        fleet_log_event("error", "spawn_failed",
                        json_pack("{s:s, s:s}", "region", r->name, "error",
                                  strerror(errno)),
                        "region %s: fork: %s", r->name, strerror(errno));
        return -1;
    }
    if (pid == 0) {
        /* the server drains on SIGTERM from us, not from a terminal ^C;
         * and it outlives us: a restarted fleet adopts it */
        setpgid(0, 0);
        execv(argv[0], argv);
        fleet_log_init(f->conf.name);
        fleet_log_event("error", "spawn_failed",
                        json_pack("{s:s, s:s, s:o, s:s}", "region", r->name,
                                  "server", s->id, "path",
                                  gs_logline_str(argv[0]), "error",
                                  strerror(errno)),
                        "exec %s: %s", argv[0], strerror(errno));
        _exit(127);
    }
    s->pid = pid;
    s->spawned_ms = fleet_now_ms();
    s->spawned_at_ms = fleet_wall_ms();
    f->metrics.spawns[region]++;
    f->n++;
    fleet_log_event("info", "server_spawn", fleet_server_fields(f, s, NULL),
                    "region %s: spawn %s pid %d udp %d", r->name, s->id,
                    (int) pid, p);
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


/* how it ended: {"exit_code": n} or {"signal": n} */
static json_t *
fleet_status_fields(int status, json_t *more)
{
    json_t  *o;

    o = WIFSIGNALED(status)
        ? json_pack("{s:i}", "signal", WTERMSIG(status))
        : json_pack("{s:i}", "exit_code", WEXITSTATUS(status));
    if (o != NULL && more != NULL) {
        json_object_update(o, more);
    }
    json_decref(more);
    return o;
}


static void
fleet_crashed(fleet_t *f, fleet_server_t *s, int status)
{
    const char  *how = WIFSIGNALED(status) ? "signal" : "status";
    int          code = WIFSIGNALED(status) ? WTERMSIG(status)
                                            : WEXITSTATUS(status);
    int64_t      now, lived;
    int          delay;

    now = fleet_now_ms();
    lived = now - s->spawned_ms;
    f->metrics.crashes[s->region]++;

    if (lived >= FLEET_HEALTHY_MS) {
        fleet_log_event("error", "server_crash",
                        fleet_server_fields(f, s, fleet_status_fields(status,
                            json_pack("{s:I, s:n}", "lived_ms",
                                      (json_int_t) lived,
                                      "respawn_delay_ms"))),
                        "region %s: %s crashed after %lld s (%s %d): will be "
                        "replaced", fleet_region_name(f, s), s->id,
                        (long long) (lived / 1000), how, code);
        return;
    }

    delay = fleet_backoff(f, s->region, now);
    fleet_log_event("error", "server_crash",
                    fleet_server_fields(f, s, fleet_status_fields(status,
                        json_pack("{s:I, s:i}", "lived_ms", (json_int_t) lived,
                                  "respawn_delay_ms", delay))),
                    "region %s: %s crashed %.1f s after its spawn (%s %d): "
                    "respawn delay %d ms", fleet_region_name(f, s), s->id,
                    lived / 1000.0, how, code, delay);
}


static void
fleet_exited(fleet_t *f, int i, int status)
{
    fleet_server_t  *s = &f->servers[i];

    if (s->killed != NULL) {
        fleet_log_event("warn", "server_exit",
                        fleet_server_fields(f, s,
                            json_pack("{s:s, s:s}", "cause", "killed", "why",
                                      s->killed)),
                        "region %s: %s killed (%s): will be replaced",
                        fleet_region_name(f, s), s->id, s->killed);
    } else if (status == -1) {
        /* not our child: no status to read */
        fleet_log_event("info", "server_exit",
                        fleet_server_fields(f, s,
                            json_pack("{s:s}", "cause", s->retiring
                                                        ? "retired"
                                                        : "unknown")),
                        "region %s: adopted %s exited (%s)",
                        fleet_region_name(f, s), s->id,
                        s->retiring ? "retired" : "status unknown");
    } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        fleet_log_event("info", "server_exit",
                        fleet_server_fields(f, s, fleet_status_fields(status,
                            json_pack("{s:s}", "cause", s->retiring
                                                        ? "retired"
                                                        : "shutdown"))),
                        "region %s: %s exited (%s)", fleet_region_name(f, s),
                        s->id, s->retiring ? "retired"
                                           : "shut down by itself");
    } else if (s->retiring && WIFSIGNALED(status)) {
        fleet_log_event("info", "server_exit",
                        fleet_server_fields(f, s, fleet_status_fields(status,
                            json_pack("{s:s}", "cause", "retired"))),
                        "region %s: %s retired by signal %d",
                        fleet_region_name(f, s), s->id, WTERMSIG(status));
    } else {
        fleet_crashed(f, s, status);
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


/* the health file's phase, named as the server's own lines name it */
static const char *
fleet_phase_name(unsigned phase)
{
    switch (phase) {
    case GS_HEALTH_IDLE:
        return "idle";
    case GS_HEALTH_WAITING:
        return "waiting";
    case GS_HEALTH_PLAYING:
        return "playing";
    case GS_HEALTH_ENDING:
        return "ending";
    default:
        return "unknown";
    }
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
        fleet_log_event("error", "server_hung",
                        fleet_server_fields(f, s,
                            json_pack("{s:I, s:s, s:i, s:s}", "silent_ms",
                                      (json_int_t) (now - h.last_tick_ms),
                                      "phase", fleet_phase_name(h.phase),
                                      "players", (int) h.players, "action",
                                      "SIGKILL")),
                        "region %s: %s hung: its loop has not ticked for "
                        "%lld ms (phase %u, %u players): SIGKILL",
                        fleet_region_name(f, s), s->id,
                        (long long) (now - h.last_tick_ms), h.phase,
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
    int              i, delay;

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
        delay = fleet_backoff(f, s->region, now);
        fleet_log_event("warn", "server_register_timeout",
                        fleet_server_fields(f, s,
                            json_pack("{s:i, s:i, s:s}", "register_timeout_s",
                                      f->conf.register_s, "respawn_delay_ms",
                                      delay, "action", "SIGKILL")),
                        "region %s: %s not registered %d s after its spawn: "
                        "SIGKILL, respawn delay %d ms",
                        fleet_region_name(f, s), s->id, f->conf.register_s,
                        delay);
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
            fleet_log_event("warn", "server_retire_overdue",
                            fleet_server_fields(f, s,
                                json_pack("{s:i, s:s}", "after_s",
                                          FLEET_RETIRE_MS / 1000, "action",
                                          "SIGTERM")),
                            "region %s: %s still runs %d s after its drain: "
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
            fleet_log_event("info", "backoff_reset",
                            fleet_server_fields(f, s,
                                json_pack("{s:i}", "healthy_s",
                                          FLEET_HEALTHY_MS / 1000)),
                            "region %s: %s healthy for %d s: respawn delay "
                            "reset", fleet_region_name(f, s), s->id,
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
    const char  *why;
    int          r;

    if (f->conn == NULL) {
        f->conn = game_alloc_connect(f->conf.redis_host, f->conf.redis_port,
                                     f->conf.prefix, 1000);
        if (f->conn == NULL || game_alloc_errstr(f->conn) != NULL) {
            why = f->conn ? game_alloc_errstr(f->conn) : "no memory";
            fleet_log_event("warn", "redis_unreachable",
                            json_pack("{s:s, s:i, s:o}", "host",
                                      f->conf.redis_host, "port",
                                      f->conf.redis_port, "error",
                                      gs_logline_str(why)),
                            "redis %s:%d: %s", f->conf.redis_host,
                            f->conf.redis_port, why);
            game_alloc_close(f->conn);
            f->conn = NULL;
            return -1;
        }
    }
    for (r = 0; r < f->conf.nregions; r++) {
        if (game_alloc_list(f->conn, f->conf.regions[r].name, fleet_on_listed,
                            f) == GAME_ALLOC_ERROR)
        {
            fleet_log_event("warn", "allocator_error",
                            json_pack("{s:s, s:o}", "op", "list", "error",
                                      gs_logline_str(game_alloc_errstr(
                                          f->conn))),
                            "allocator list: %s", game_alloc_errstr(f->conn));
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
fleet_retire(fleet_t *f, fleet_server_t *s)
{
    game_alloc_result_t   res;
    game_alloc_status_t   st;
    const char           *why;

    st = game_alloc_drain(f->conn, s->id, &res);

    switch (st) {

    case GAME_ALLOC_OK:
        s->retiring = 1;
        s->retire_by_ms = fleet_now_ms() + FLEET_RETIRE_MS;
        f->metrics.drains[s->region]++;
        fleet_log_event("info", "server_retire",
                        fleet_server_fields(f, s,
                            json_pack("{s:s}", "outcome", "drained")),
                        "region %s: retire %s: drained, it shuts down",
                        fleet_region_name(f, s), s->id);
        return 0;

    case GAME_ALLOC_BUSY:
        s->retiring = 1;
        fleet_log_event("info", "server_retire",
                        fleet_server_fields(f, s,
                            json_pack("{s:s, s:s}", "outcome", "busy", "state",
                                      game_alloc_state_name(res.state))),
                        "region %s: retire %s: allocated meanwhile (%s), it "
                        "plays its match and then shuts down",
                        fleet_region_name(f, s), s->id,
                        game_alloc_state_name(res.state));
        return 0;

    case GAME_ALLOC_NOT_FOUND:
        /* no record to drain, so nothing can allocate it either */
        s->retiring = 1;
        kill(s->pid, SIGTERM);
        fleet_log_event("info", "server_retire",
                        fleet_server_fields(f, s,
                            json_pack("{s:s, s:s}", "outcome", "not_found",
                                      "action", "SIGTERM")),
                        "region %s: retire %s: not in the allocator: SIGTERM",
                        fleet_region_name(f, s), s->id);
        return 0;

    default:
        why = game_alloc_errstr(f->conn) ? game_alloc_errstr(f->conn)
                                         : game_alloc_status_name(st);
        fleet_log_event("warn", "server_retire_failed",
                        fleet_server_fields(f, s,
                            json_pack("{s:o}", "error", gs_logline_str(why))),
                        "region %s: drain %s: %s", fleet_region_name(f, s),
                        s->id, why);
        return -1;
    }
}


/* a decision, before the spawns or retirements that carry it out */
static void
fleet_scale_line(fleet_t *f, int region, const char *direction, int busy,
    int ready, int wanted, int have, int count)
{
    fleet_region_t  *r = &f->conf.regions[region];

    fleet_log_event("info", "scale",
                    json_pack("{s:s, s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:i, "
                              "s:i}", "region", r->name, "direction",
                              direction, "count", count, "allocated", busy,
                              "ready", ready, "buffer", r->buffer, "min",
                              r->min, "max", r->max, "wanted", wanted,
                              "have", have),
                    "region %s: scale %s by %d: allocated %d + buffer %d -> "
                    "wanted %d (min %d, max %d), have %d", r->name, direction,
                    count, busy, r->buffer, wanted, r->min, r->max, have);
}


static void
fleet_scale(fleet_t *f, int region, int64_t now)
{
    fleet_region_t   *r = &f->conf.regions[region];
    fleet_backoff_t  *b = &f->backoff[region];
    fleet_server_t   *s;
    int               i, total = 0, busy = 0, ready = 0, wanted, extra;

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

    if (total < wanted && now >= b->not_before_ms) {
        fleet_scale_line(f, region, "up", busy, ready, wanted, total,
                         wanted - total);
        while (total < wanted && fleet_spawn(f, region) == 0) {
            total++;
        }
    }

    /* retire idle servers only: never one that holds a match */
    extra = total - wanted;
    if (ready - r->buffer < extra) {
        extra = ready - r->buffer;
    }
    if (extra > 0) {
        fleet_scale_line(f, region, "down", busy, ready, wanted, total,
                         extra);
    }
    for (i = f->n - 1; i >= 0 && extra > 0; i--) {
        s = &f->servers[i];
        if (s->region == region && !s->retiring && s->seen
            && s->state == GAME_ALLOC_READY)
        {
            if (fleet_retire(f, s) != 0) {
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

    fleet_log_event("info", "fleet_drain",
                    json_pack("{s:i, s:i}", "servers", f->n, "drain_s",
                              f->conf.drain_s),
                    "draining %d server(s), up to %d s", f->n,
                    f->conf.drain_s);
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
        fleet_log_event("warn", "server_drain_timeout",
                        fleet_server_fields(f, &f->servers[i],
                            json_pack("{s:i, s:s}", "drain_s",
                                      f->conf.drain_s, "action", "SIGKILL")),
                        "%s did not drain in %d s: killed", f->servers[i].id,
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


/* mkdir -p of the parent folders of path; failures show up later */
static void
fleet_mkdirs(const char *path)
{
    char   buf[1100], *p;

    snprintf(buf, sizeof(buf), "%s", path);
    for (p = buf + 1; (p = strchr(p, '/')) != NULL; p++) {
        *p = '\0';
        (void) mkdir(buf, 0755);
        *p = '/';
    }
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
    /* the default status lives in the checkout's var/, which a fleet run
     * by hand (not by `make up`) may be the first to need */
    fleet_mkdirs(f->health_dir);
    if (mkdir(f->health_dir, 0755) != 0 && errno != EEXIST) {
        fleet_log_event("error", "fleet_start_failed",
                        json_pack("{s:o, s:s}", "path",
                                  gs_logline_str(f->health_dir), "error",
                                  strerror(errno)),
                        "health files: %s: %s", f->health_dir,
                        strerror(errno));
        return 1;
    }

    fleet_log_event("info", "fleet_start",
                    json_pack("{s:i, s:o, s:s, s:i, s:s, s:i, s:i, s:i, s:i}",
                              "regions", f->conf.nregions, "server_path",
                              gs_logline_str(f->conf.server), "redis_host",
                              f->conf.redis_host, "redis_port",
                              f->conf.redis_port, "prefix", f->conf.prefix,
                              "drain_s", f->conf.drain_s, "grace_s",
                              f->conf.grace_s, "hung_s", f->conf.hung_s,
                              "register_timeout_s", f->conf.register_s),
                    "starting: %d region(s), server %s, redis %s:%d prefix "
                    "%s, drain %d s (servers' grace %d s), hung %d s, "
                    "register timeout %d s", f->conf.nregions,
                    f->conf.server, f->conf.redis_host, f->conf.redis_port,
                    f->conf.prefix, f->conf.drain_s, f->conf.grace_s,
                    f->conf.hung_s, f->conf.register_s);

    fleet_adopt(f);
    /* the file still lists the previous fleet's view: say at once what was
     * adopted, before the first pass waits on Redis */
    fleet_status_write(f->conf.status, &f->conf, f->servers, f->n);

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
                    fleet_log_event("info", "allocator_reap",
                                    json_pack("{s:i}", "reaped", reaped),
                                    "reaped %d dead server record(s)",
                                    reaped);
                }
            }
        }
        fleet_status_write(f->conf.status, &f->conf, f->servers, f->n);
        fleet_metrics_write(f);
        nanosleep(&(struct timespec) { 0, FLEET_LOOP_MS * 1000000L }, NULL);
    }

    fleet_drain_all(f);
    game_alloc_close(f->conn);
    fleet_log_event("info", "fleet_stop", NULL, "stopped");
    return 0;
}


static const char fleet_usage[] =
"usage: game-fleet [-c FILE] [--redis HOST:PORT] [--prefix P]\n"
"                  [--status FILE] [--server-arg WORD]... run|status\n"
"  -c FILE   configuration (gameserver/fleet.dev.conf from the current\n"
"            directory, else fleet.dev.conf next to build/game-fleet)\n"
"  options given here override the file; --server-arg adds to it\n";


/*
 * Without -c: the checkout's development configuration, found from the
 * current directory (the repository root, as `make up` runs it) or from
 * where this binary lives (gameserver/build/game-fleet), so that
 * `game-fleet status` typed anywhere reads the file `make up`'s fleet
 * writes.
 */
static const char *
fleet_default_conf(char *buf, size_t cap)
{
    static const char  rel[] = "gameserver/fleet.dev.conf";
    char               exe[900], *slash;
    ssize_t            n;

    if (access(rel, R_OK) == 0) {
        return rel;
    }
    n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0) {
        return rel;
    }
    exe[n] = '\0';
    slash = strrchr(exe, '/');
    if (slash == NULL) {
        return rel;
    }
    *slash = '\0';
    snprintf(buf, cap, "%s/../fleet.dev.conf", exe);
    return access(buf, R_OK) == 0 ? buf : rel;
}


int
main(int argc, char **argv)
{
    static fleet_t  f;
    const char     *conf = NULL, *cmd = NULL,
                   *redis = NULL, *prefix = NULL, *status = NULL;
    const char     *extra[FLEET_ARGS_MAX];
    char            err[1200], confbuf[1024], *colon;
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
    if (conf == NULL) {
        conf = fleet_default_conf(confbuf, sizeof(confbuf));
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

    fleet_log_init(f.conf.name);
    return fleet_run(&f);
}
