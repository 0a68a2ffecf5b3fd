/*
 * gs_server.c: the tick loop, the clients, the match lifecycle.
 *
 * One thread runs ENet and the simulation at a fixed tick; the allocator
 * lives on the agent's thread (gs_agent.c), so a slow Redis never delays a
 * tick.  Lifecycle, as the allocator sees it:
 *
 *   Ready     (IDLE)     registered; learns an allocation from a heartbeat
 *   Allocated (WAITING)  players join with tickets until all expected came
 *                        or the join timeout: start with those present, or
 *                        abort (per mode)
 *   Playing   (PLAYING)  ticks until time, score limit, empty, or the
 *                        grace of a SIGTERM drain
 *   Finished  (ENDING)   result published once, players let go; then Ready
 *                        again, or Shutdown when draining, drained by the
 *                        allocator, or after --max-matches
 *
 * Two ways out of service.  SIGTERM: no new allocation, a running match
 * ends by its rules or when --drain-grace runs out.  The allocator's drain
 * (drain.lua: game-allocate drain, the fleet scaling down), read from the
 * heartbeat: an idle server exits at once, a busy one plays its match out.
 *
 * Every tick tells the agent that the loop lives (its heartbeat stops when
 * the loop does) and, with --health-file, stamps the health file the fleet
 * manager watches.  Lifecycle events go to stdout as JSON lines; the log
 * (gs_log.h) goes to stderr, JSON lines too.
 *
 * A client must send a hello with its ticket first; until the ticket holds
 * it gets nothing, and a refusal is an ENet disconnect whose data is the
 * reason (gs_refuse_e), reset a second later if the client does not ack.
 *
 * The address is public, so the peers are split in two.  Seats
 * (max_players) are taken only by holders of a valid ticket for the match.
 * The rest is the half-open pool: peers in ENet's handshake, connected
 * without a hello yet, waiting for verification or for our allocation, or
 * being refused.  Connection attempts are rate-limited per source before
 * ENet gives them a peer (gs_guard.c, from ENet's intercept hook); every
 * half-open state has a short timeout; and when the pool is full a new
 * attempt evicts the oldest of the least promising (refused, then
 * handshake, then hello-less) peers.  A flood therefore only shortens how
 * long a half-open peer may take, and a real client needs one round trip
 * and a hello.  Ticket verification, the one expensive thing a stranger can
 * ask for, is bounded per source and per tick.
 */

#define _GNU_SOURCE

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <enet/enet.h>
#include <jansson.h>

#include "gs_guard.h"
#include "gs_health.h"
#include "gs_interest.h"
#include "gs_log.h"
#include "gs_result.h"
#include "gs_server.h"
#include "gs_telemetry.h"
#include "gs_used.h"


#define GS_HELLO_TIMEOUT_MS    1000     /* connect without hello: refused */
#define GS_HANDSHAKE_MS        1000     /* ENet's handshake (5-30 s alone) */
#define GS_PENDING_MS          900      /* ticket ahead of our heartbeat */
#define GS_REFUSED_RESET_MS    1000
#define GS_EMPTY_END_MS        3000     /* everyone left: end the match */
#define GS_ENDING_LINGER_MS    300      /* let MATCH_END reach clients */
#define GS_ENDING_MAX_MS       2000
#define GS_SPARE_PEERS         32       /* room for refusals when full */
#define GS_IDLE_DRAIN_MS       5000     /* SIGTERM, idle: wait for drain.lua */
#define GS_VERIFY_PER_TICK     24       /* ~1.5 ms of ECDSA per tick */
#define GS_REFUSED_LINES       8        /* per reason per second, told */
#define GS_CONNECT_LINES       8        /* connects told per second */
#define GS_MALFORMED_LINES     8        /* clients' first malformed, too */
#define GS_TEL_SAMPLE_MS       1000     /* telemetry: a sample a second */
#define GS_TICK_SAMPLES        (1 << 18)
#define GS_SNAP_HELD           64       /* per slot: a second or two back */
#define GS_INTEREST_RADIUS     48.0f    /* hitscan range and a margin */

/* the health file names the phases with the same numbers */
typedef enum {
    GS_PHASE_IDLE = GS_HEALTH_IDLE, GS_PHASE_WAITING = GS_HEALTH_WAITING,
    GS_PHASE_PLAYING = GS_HEALTH_PLAYING, GS_PHASE_ENDING = GS_HEALTH_ENDING
} gs_phase_e;

/*
 * Half-open states come first, in the order they are evicted when the
 * pool is full: a refused peer is already on its way out, one still in
 * ENet's handshake may well be spoofed, one without a hello has shown
 * nothing; a queued hello and a pending ticket are nearly players.
 */
typedef enum {
    GS_CLIENT_FREE, GS_CLIENT_REFUSED, GS_CLIENT_HANDSHAKE, GS_CLIENT_HELLO,
    GS_CLIENT_QUEUED, GS_CLIENT_PENDING, GS_CLIENT_IN
} gs_client_state_e;

typedef struct {
    gs_client_state_e   state;
    ENetPeer           *peer;
    int                 slot;
    int64_t             since_ms;
    uint64_t            malformed;
    uint64_t            queued;         /* arrival order of a queued hello */
    gs_ticket_t         ticket;
    uint16_t            hello_len;      /* GS_CLIENT_QUEUED: the ticket */
    char                hello[GS_TICKET_MAX];
} gs_client_t;

typedef struct {
    const gs_server_conf_t  *conf;
    ENetHost                *host;
    gs_agent_t              *agent;
    gs_health_t             *health;
    gs_rules_t               rules;
    gs_world_t               world;
    gs_client_t             *clients;

    gs_phase_e               phase;
    int64_t                  phase_ms, start_ms, start_wall_ms, empty_since;
    char                     match_id[GAME_ALLOC_NAME_MAX + 1];
    char                     last_match[GAME_ALLOC_NAME_MAX + 1];
    char                     mode[GAME_ALLOC_NAME_MAX + 1];
    int                      expected, abort_if_short, matches, let_go;
    uint32_t                 ticks_left;
    int                      draining;      /* SIGTERM: grace, then out */
    int                      drain_asked;   /* idle: drain.lua queued */
    int64_t                  drain_asked_ms;
    int                      drained;       /* by the allocator: no grace */
    int                      exit_now;
    int64_t                  drain_deadline;

    uint64_t                 malformed, refused[16];
    gs_logline_budget_t      refused_lines[16];     /* per reason */
    gs_logline_budget_t      connect_lines;
    gs_logline_budget_t      malformed_lines;
    gs_logline_budget_t      overrun_lines;
    int64_t                  tick_budget_us;

    /* used tickets, by signature and by jti: never reset, so a ticket
     * presented before an allocation is not forgotten by it */
    gs_used_t                used;

    gs_guard_t               guard;
    size_t                   pool;          /* half-open peers allowed */
    uint64_t                 evicted, handshake_timeouts, queued_seq;

    uint32_t                *tick_us;
    size_t                   ntick;
    /* the last GS_HEALTH_WINDOW ticks' times, in every phase: their p99
     * goes to the health file every GS_HEALTH_WINDOW / 2 ticks */
    uint32_t                 recent_us[GS_HEALTH_WINDOW];
    unsigned                 nrecent;
    int64_t                  busy_us;       /* packet work since last tick */
    uint32_t                 sent0, recv0;
    int                      snap_every;
    /* per slot, the last GS_SNAP_HELD snapshots sent, by tick: what the
     * client holds if it acknowledges that tick, the base of a delta */
    gs_snapshot_t           *held;
    uint32_t                 snap_n;

    gs_tel_t                 tel;
} gs_server_t;


static volatile sig_atomic_t  gs_server_signalled;


static void
gs_server_on_signal(int signo)
{
    gs_server_signalled = signo;
}


static int64_t
gs_now_us(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}


static int64_t
gs_wall_ms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


/*
 * Machine-readable lifecycle lines on stdout, for tests, operators and
 * log shippers: one JSON object per line, with the log's envelope (time,
 * level, service, server, pid: gs_logline.h) so that stdout and stderr
 * merged into one file read alike; then the event, "kind":"lifecycle"
 * (what tells them from log lines about the same thing), the server id
 * and the wall clock in ms (as before the envelope existed); fields
 * (stolen, may be NULL) adds the event's own.  These lines are never cut:
 * a match_end carries the whole result.  A fleet's servers share one
 * stdout, so a line goes out in one write(2): whole on a shared file (the
 * kernel serialises writes to one open file), and on a pipe whole up to
 * PIPE_BUF (4 KiB), which only a match_end of many players exceeds.  A
 * blocked stdout blocks the loop, and then the heartbeat stops: such a
 * server is hung, and treated so.
 */
static void
gs_server_emit(const gs_server_t *s, const char *event, json_t *fields)
{
    json_t   *line, *ids;
    char     *text;
    size_t    len, off;
    ssize_t   n;
    int64_t   now = gs_wall_ms();

    line = gs_logline_object(gs_log_who(), now, "info", event);
    ids = json_pack("{s:s, s:o, s:I}", "kind", "lifecycle", "server_id",
                    gs_logline_str(s->conf->id), "ts_ms", (json_int_t) now);
    if (line != NULL
        && (ids == NULL || json_object_update(line, ids) != 0
            || (fields != NULL && json_object_update(line, fields) != 0)))
    {
        json_decref(line);
        line = NULL;
    }
    json_decref(ids);
    json_decref(fields);

    text = line ? json_dumps(line, JSON_COMPACT) : NULL;
    json_decref(line);
    if (text == NULL) {
        gs_log_event("error", "out_of_memory",
                     json_pack("{s:s, s:s}", "what", "lifecycle line",
                               "lifecycle", event),
                     "lifecycle line \"%s\" not written: out of memory",
                     event);
        return;
    }

    /* json_dumps has no newline: the terminating NUL makes room for it */
    len = strlen(text);
    text[len++] = '\n';

    for (off = 0; off < len; off += (size_t) n) {
        n = write(STDOUT_FILENO, text + off, len - off);
        if (n < 0 && errno == EINTR) {
            n = 0;
        } else if (n <= 0) {
            break;
        }
    }
    free(text);
}


static void
gs_server_send(ENetPeer *peer, int chan, const uint8_t *data, size_t len,
    int reliable)
{
    ENetPacket  *pkt;

    pkt = enet_packet_create(data, len,
                             reliable ? ENET_PACKET_FLAG_RELIABLE : 0);
    if (pkt != NULL && enet_peer_send(peer, (enet_uint8) chan, pkt) != 0) {
        enet_packet_destroy(pkt);
    }
}


static void
gs_server_broadcast_event(gs_server_t *s, const gs_event_t *e)
{
    uint8_t  buf[GS_EVENT_SIZE];
    size_t   i, n;

    n = gs_proto_event_encode(buf, sizeof(buf), e);
    for (i = 0; i < s->host->peerCount; i++) {
        if (s->clients[i].state == GS_CLIENT_IN) {
            gs_server_send(s->clients[i].peer, GS_CHAN_RELIABLE, buf, n, 1);
        }
    }
}


static void
gs_server_on_sim_event(void *data, const gs_event_t *e)
{
    gs_server_t  *s = data;

    gs_server_broadcast_event(s, e);

    if (e->kind == GS_EV_DEATH && e->b != 255 && e->b != e->a
        && s->phase == GS_PHASE_PLAYING)
    {
        gs_tel_kill(&s->tel, &s->world, e->b, e->a, s->match_id, s->mode,
                    gs_wall_ms());
    }
}


/* telemetry's events of the moment to the agent, which sends them */
static void
gs_server_telemetry(gs_server_t *s, json_t *events)
{
    int      n;
    char    *text;
    json_t  *batch;

    n = (int) json_array_size(events);
    if (n == 0 || s->conf->tel_stream == NULL) {
        json_decref(events);
        return;
    }

    batch = json_pack("{s:o}", "events", events);
    text = batch ? json_dumps(batch, JSON_COMPACT) : NULL;
    json_decref(batch);
    if (text == NULL) {
        gs_log_event("error", "out_of_memory",
                     json_pack("{s:s, s:i}", "what", "telemetry", "events",
                               n),
                     "telemetry: %d events lost: out of memory", n);
        return;
    }
    gs_agent_telemetry(s->agent, text, n);
}


/* a match's sample, when a second went by (or "now": the match ends) */
static void
gs_server_sample(gs_server_t *s, int64_t now, int force)
{
    json_t  *events;

    if (s->conf->tel_stream == NULL
        || (!force && now - s->tel.last_ms < GS_TEL_SAMPLE_MS))
    {
        return;
    }
    events = json_array();
    if (events != NULL) {
        gs_tel_sample(&s->tel, &s->world, s->match_id, s->mode, now,
                      gs_wall_ms(), events);
    }
    gs_server_telemetry(s, events);
}


/*
 * Refusals are told, in the log and as lifecycle lines, at most a few per
 * reason per second: a flood of bad hellos must not turn into a flood of
 * lines (stdout blocks the loop by design: see gs_server_emit).  The next
 * line of that reason says how many went untold.
 */
static void
gs_server_refused_line(gs_server_t *s, gs_client_t *c, gs_refuse_e why,
    const char *detail)
{
    uint64_t  quiet;
    char      ip[64];

    if (!gs_logline_budget_take(&s->refused_lines[why], gs_now_us() / 1000,
                                GS_REFUSED_LINES, &quiet))
    {
        return;
    }

    /* the detail is a claim of the ticket (player, match or server id)
     * or why it failed: never the ticket itself */
    enet_address_get_host_ip(&c->peer->address, ip, sizeof(ip));
    gs_log_event("info", "player_refused",
                 json_pack("{s:s, s:o, s:s, s:i, s:I}", "reason",
                           gs_proto_refuse_name(why), "detail",
                           detail ? gs_logline_str(detail) : json_null(),
                           "ip", ip, "port", (int) c->peer->address.port,
                           "untold", (json_int_t) quiet),
                 "refused %s:%u: %s%s%s (and %llu more untold)", ip,
                 c->peer->address.port, gs_proto_refuse_name(why),
                 detail ? ": " : "", detail ? detail : "",
                 (unsigned long long) quiet);
    gs_server_emit(s, "refused",
                   json_pack("{s:s, s:I}", "reason", gs_proto_refuse_name(why),
                             "untold", (json_int_t) quiet));
}


static void
gs_server_refuse(gs_server_t *s, gs_client_t *c, gs_refuse_e why,
    const char *detail)
{
    gs_server_refused_line(s, c, why, detail);

    s->refused[why]++;
    if (c->state == GS_CLIENT_IN) {
        gs_sim_leave(&s->world, c->slot);
    }
    c->state = GS_CLIENT_REFUSED;
    c->since_ms = gs_now_us() / 1000;
    enet_peer_disconnect(c->peer, why);
}


static int
gs_server_ticket_used(gs_server_t *s, const gs_ticket_t *t)
{
    return gs_used_has(&s->used, t->sig) || gs_used_has(&s->used, t->jti);
}


static void
gs_server_welcome(gs_server_t *s, gs_client_t *c)
{
    gs_welcome_t  w;
    uint8_t       buf[GS_WELCOME_SIZE];

    w.version = GS_PROTO_VERSION;
    w.slot = (uint8_t) c->slot;
    w.max_players = (uint8_t) s->rules.max_players;
    w.tick_hz = (uint16_t) s->rules.tick_hz;
    w.snapshot_hz = (uint16_t) (s->rules.tick_hz / s->snap_every);
    w.fire_interval_ms = (uint16_t) s->rules.fire_interval_ms;
    w.arena_w = (uint16_t) s->rules.arena_w;
    w.arena_h = (uint16_t) s->rules.arena_h;
    w.match_seconds = (uint16_t) s->rules.match_seconds;
    w.score_limit = (uint16_t) s->rules.score_limit;
    w.speed = (uint16_t) s->rules.speed;

    gs_server_send(c->peer, GS_CHAN_RELIABLE, buf,
                   gs_proto_welcome_encode(buf, sizeof(buf), &w), 1);
}


/* A verified ticket: seat its player if it is for the match we host. */
static void
gs_server_enter(gs_server_t *s, gs_client_t *c)
{
    gs_ticket_t  *t = &c->ticket;
    size_t        i;
    int           slot;

    if ((s->phase == GS_PHASE_WAITING || s->phase == GS_PHASE_PLAYING)
        && strcmp(t->match_id, s->match_id) == 0)
    {
        /* checked again here: a pending ticket may have been beaten to
         * its seat by the same ticket on another connection */
        if (gs_server_ticket_used(s, t)) {
            gs_server_refuse(s, c, GS_REFUSE_REPLAYED, t->sub);
            return;
        }

        /* One seat per player.  A fresh ticket (the backend signs one per
         * status read) from a player still seated means the old connection
         * died and ENet has not noticed yet: the new one takes the seat. */
        for (i = 0; i < s->host->peerCount; i++) {
            if (s->clients[i].state == GS_CLIENT_IN
                && strcmp(s->clients[i].ticket.sub, t->sub) == 0)
            {
                gs_server_refuse(s, &s->clients[i], GS_REFUSE_REPLACED,
                                 t->sub);
            }
        }

        /* enter the world first: the JOIN event it broadcasts then goes
         * to the others, and the newcomer learns everyone from snapshots */
        slot = gs_sim_join(&s->world, t->sub);
        if (slot < 0) {
            gs_server_refuse(s, c, GS_REFUSE_FULL, NULL);
            return;
        }
        c->state = GS_CLIENT_IN;
        c->slot = slot;
        /* used once seated, not before: a ticket that could not get a
         * seat yet (pending, full, dropped) has not been spent */
        gs_used_add(&s->used, t->sig);
        gs_used_add(&s->used, t->jti);
        gs_server_welcome(s, c);
        gs_log_event("info", "player_seated",
                     json_pack("{s:o, s:o, s:i}", "player",
                               gs_logline_str(t->sub), "match_id",
                               gs_logline_str(t->match_id), "slot", slot),
                     "player %s seated in match %s, slot %d", t->sub,
                     t->match_id, slot);
        gs_server_emit(s, "join",
                       json_pack("{s:s, s:i}", "player", t->sub, "slot", slot));
        return;
    }

    if (strcmp(t->match_id, s->last_match) == 0
        || (s->phase == GS_PHASE_ENDING
            && strcmp(t->match_id, s->match_id) == 0))
    {
        gs_server_refuse(s, c, GS_REFUSE_MATCH_OVER, NULL);
        return;
    }

    if (s->phase == GS_PHASE_IDLE && !s->draining) {
        /* the matchmaker may hand out tickets before our next heartbeat
         * tells us we were allocated: wait a little, and ask now */
        if (c->state != GS_CLIENT_PENDING) {
            c->state = GS_CLIENT_PENDING;
            c->since_ms = gs_now_us() / 1000;
            gs_agent_poke(s->agent);
        }
        return;
    }

    gs_server_refuse(s, c, s->draining ? GS_REFUSE_SHUTDOWN
                                       : GS_REFUSE_WRONG_MATCH, t->match_id);
}


/* a verified ticket's claims and the server's memory of used tickets */
static void
gs_server_verify(gs_server_t *s, gs_client_t *c, const char *ticket,
    size_t len)
{
    gs_ticket_status_e  st;
    gs_ticket_t        *t = &c->ticket;

    st = gs_ticket_verify(s->conf->keys, ticket, len,
                          gs_wall_ms() / 1000, s->conf->ticket_leeway_s, t);
    if (st != GS_TICKET_OK) {
        gs_server_refuse(s, c, st == GS_TICKET_EXPIRED ? GS_REFUSE_EXPIRED
                               : GS_REFUSE_BAD_TICKET,
                         gs_ticket_status_name(st));
        return;
    }

    if (strcmp(t->server_id, s->conf->id) != 0) {
        gs_server_refuse(s, c, GS_REFUSE_WRONG_SERVER, t->server_id);
        return;
    }

    if (gs_server_ticket_used(s, t)) {
        gs_server_refuse(s, c, GS_REFUSE_REPLAYED, t->sub);
        return;
    }

    gs_server_enter(s, c);
}


/*
 * A hello costs an ECDSA verify.  A source that asks for more than its
 * share is refused; past the tick's budget the hello waits, in arrival
 * order, for the next tick (gs_server_verify_queued).
 */
static void
gs_server_hello(gs_server_t *s, gs_client_t *c, const gs_hello_t *h)
{
    if (h->version != GS_PROTO_VERSION) {
        gs_server_refuse(s, c, GS_REFUSE_VERSION, NULL);
        return;
    }

    if (!gs_guard_verify_source(&s->guard, c->peer->address.host,
                                gs_now_us() / 1000))
    {
        gs_server_refuse(s, c, GS_REFUSE_BUSY, "too many hellos");
        return;
    }

    if (!gs_guard_verify_tick(&s->guard)) {
        memcpy(c->hello, h->ticket, h->ticket_len);
        c->hello_len = h->ticket_len;
        c->state = GS_CLIENT_QUEUED;
        c->queued = ++s->queued_seq;
        return;
    }

    gs_server_verify(s, c, h->ticket, h->ticket_len);
}


static void
gs_server_verify_queued(gs_server_t *s)
{
    gs_client_t  *c, *first;
    size_t        i;

    for ( ;; ) {
        first = NULL;
        for (i = 0; i < s->host->peerCount; i++) {
            c = &s->clients[i];
            if (c->state == GS_CLIENT_QUEUED
                && (first == NULL || c->queued < first->queued))
            {
                first = c;
            }
        }
        if (first == NULL || !gs_guard_verify_tick(&s->guard)) {
            return;
        }
        first->state = GS_CLIENT_HELLO;
        gs_server_verify(s, first, first->hello, first->hello_len);
    }
}


static void
gs_server_malformed(gs_server_t *s, gs_client_t *c, const char *what)
{
    uint64_t  quiet;

    s->malformed++;
    c->malformed++;
    /* one line per client is enough to see it, and a few a second for
     * them all (a client may reconnect to send another); the counters
     * keep the rest */
    if (c->malformed == 1
        && gs_logline_budget_take(&s->malformed_lines, gs_now_us() / 1000,
                                  GS_MALFORMED_LINES, &quiet))
    {
        gs_log_event("info", "packet_malformed",
                     json_pack("{s:s, s:o, s:I}", "what", what, "player",
                               c->state == GS_CLIENT_IN
                               ? gs_logline_str(c->ticket.sub) : json_null(),
                               "untold", (json_int_t) quiet),
                     "malformed packet (%s) from a client; dropped", what);
    }
}


static void
gs_server_packet(gs_server_t *s, gs_client_t *c, int chan,
    const uint8_t *data, size_t len)
{
    gs_hello_t  h;
    gs_input_t  in;

    switch (c->state) {

    case GS_CLIENT_HELLO:
        if (chan != GS_CHAN_RELIABLE || len == 0 || data[0] != GS_MSG_HELLO) {
            gs_server_malformed(s, c, "no hello first");
            gs_server_refuse(s, c, GS_REFUSE_NO_TICKET, NULL);
            return;
        }
        if (gs_proto_hello_decode(data, len, &h) != 0) {
            gs_server_malformed(s, c, "hello");
            gs_server_refuse(s, c, GS_REFUSE_BAD_TICKET, "malformed hello");
            return;
        }
        gs_server_hello(s, c, &h);
        return;

    case GS_CLIENT_IN:
        if (len == 0 || data[0] != GS_MSG_INPUT || chan != GS_CHAN_STATE) {
            gs_server_malformed(s, c, "unexpected message");
            return;
        }
        if (gs_proto_input_decode(data, len, &in) != 0) {
            gs_server_malformed(s, c, "input");
            return;
        }
        if (s->phase == GS_PHASE_WAITING || s->phase == GS_PHASE_PLAYING) {
            gs_validate_input(&s->world, c->slot, &in, gs_now_us() / 1000);
        }
        return;

    default:
        /* pending or refused: nothing from it is read */
        return;
    }
}


/*
 * ENet gives a peer to any datagram that says CONNECT, before we hear of
 * it (our CONNECT event comes after the handshake).  Such peers are found
 * here, by their ENet state, and timed from the moment they are seen.
 */
static int
gs_server_enet_handshaking(const ENetPeer *peer)
{
    switch (peer->state) {
    case ENET_PEER_STATE_ACKNOWLEDGING_CONNECT:
    case ENET_PEER_STATE_CONNECTION_PENDING:
    case ENET_PEER_STATE_CONNECTION_SUCCEEDED:
    case ENET_PEER_STATE_CONNECTED:
        return 1;
    default:
        return 0;
    }
}


static void
gs_server_free_client(gs_server_t *s, gs_client_t *c)
{
    enet_peer_reset(c->peer);
    c->state = GS_CLIENT_FREE;
}


/* notice new handshakes; count the half-open peers; the eviction victim */
static size_t
gs_server_half_open(gs_server_t *s, int64_t now, gs_client_t **victim)
{
    gs_client_t  *c;
    size_t        i, n = 0;

    *victim = NULL;
    for (i = 0; i < s->host->peerCount; i++) {
        c = &s->clients[i];
        if (c->state == GS_CLIENT_FREE
            && gs_server_enet_handshaking(&s->host->peers[i]))
        {
            c->peer = &s->host->peers[i];
            c->state = GS_CLIENT_HANDSHAKE;
            c->since_ms = now;
        }
        if (c->state == GS_CLIENT_FREE || c->state == GS_CLIENT_IN) {
            continue;
        }
        n++;
        if (*victim == NULL || c->state < (*victim)->state
            || (c->state == (*victim)->state
                && c->since_ms < (*victim)->since_ms))
        {
            *victim = c;
        }
    }
    return n;
}


/*
 * ENet's intercept hook sees every datagram before ENet does.  Only a
 * CONNECT is addressed to no peer (the maximum peer id); each costs its
 * source a token, and is dropped without one.  An admitted attempt gets
 * room in the half-open pool, by evicting if the pool is full: ENet would
 * otherwise drop it for want of a free peer, and whoever fills the pool
 * first would keep everyone else out.
 */
static gs_server_t  *gs_server_intercepting;   /* one server per process */

static int ENET_CALLBACK
gs_server_intercept(ENetHost *host, ENetEvent *ev)
{
    gs_server_t  *s = gs_server_intercepting;
    gs_client_t  *victim;
    enet_uint16   peer_id;
    int64_t       now;

    if (host->receivedDataLength < sizeof(enet_uint16)) {
        return 0;       /* ENet drops it */
    }
    memcpy(&peer_id, host->receivedData, sizeof(peer_id));
    peer_id = ENET_NET_TO_HOST_16(peer_id)
              & ~(ENET_PROTOCOL_HEADER_FLAG_MASK
                  | ENET_PROTOCOL_HEADER_SESSION_MASK);
    if (peer_id != ENET_PROTOCOL_MAXIMUM_PEER_ID) {
        return 0;
    }

    now = gs_now_us() / 1000;
    if (!gs_guard_connect(&s->guard, host->receivedAddress.host, now)) {
        return 1;
    }

    if (gs_server_half_open(s, now, &victim) >= s->pool && victim != NULL) {
        s->evicted++;
        gs_server_free_client(s, victim);
    }
    return 0;
}


/* a connection got through ENet's handshake: a few lines a second */
static void
gs_server_connect_line(gs_server_t *s, gs_client_t *c)
{
    uint64_t  quiet;
    char      ip[64];

    if (!gs_logline_budget_take(&s->connect_lines, gs_now_us() / 1000,
                                GS_CONNECT_LINES, &quiet))
    {
        return;
    }
    enet_address_get_host_ip(&c->peer->address, ip, sizeof(ip));
    gs_log_event("info", "player_connect",
                 json_pack("{s:s, s:i, s:I}", "ip", ip, "port",
                           (int) c->peer->address.port, "untold",
                           (json_int_t) quiet),
                 "connection from %s:%u, waiting for its hello (and %llu "
                 "more untold)", ip, c->peer->address.port,
                 (unsigned long long) quiet);
}


static void
gs_server_event(gs_server_t *s, ENetEvent *ev)
{
    gs_client_t  *c;

    c = &s->clients[ev->peer - s->host->peers];

    switch (ev->type) {

    case ENET_EVENT_TYPE_CONNECT:
        c->peer = ev->peer;
        c->state = GS_CLIENT_HELLO;
        c->since_ms = gs_now_us() / 1000;
        c->malformed = 0;
        gs_server_connect_line(s, c);
        /* a game client that misses ~3 s of acks is gone */
        enet_peer_timeout(ev->peer, 32, 3000, 6000);
        break;

    case ENET_EVENT_TYPE_RECEIVE:
        gs_server_packet(s, c, ev->channelID, ev->packet->data,
                         ev->packet->dataLength);
        enet_packet_destroy(ev->packet);
        break;

    case ENET_EVENT_TYPE_DISCONNECT:
        if (c->state == GS_CLIENT_IN) {
            gs_log_event("info", "player_left",
                         json_pack("{s:o, s:o, s:i}", "player",
                                   gs_logline_str(c->ticket.sub), "match_id",
                                   gs_logline_str(s->match_id), "slot",
                                   c->slot),
                         "player %s left", c->ticket.sub);
            gs_sim_leave(&s->world, c->slot);
        }
        c->state = GS_CLIENT_FREE;
        break;

    default:
        break;
    }
}


static void
gs_server_reset_world(gs_server_t *s)
{
    /* a new match counts ticks from 0 again: no old snapshot is a base */
    if (s->held != NULL) {
        memset(s->held, 0, GS_MAX_PLAYERS * GS_SNAP_HELD
                           * sizeof(gs_snapshot_t));
    }
    gs_sim_init(&s->world, &s->rules,
                s->conf->seed ? s->conf->seed : (uint32_t) gs_now_us(),
                gs_server_on_sim_event, s);
}


static void
gs_server_allocated(gs_server_t *s, const gs_agent_view_t *v)
{
    snprintf(s->match_id, sizeof(s->match_id), "%s", v->match_id);
    snprintf(s->mode, sizeof(s->mode), "%s", v->mode);
    s->expected = v->players > 0 && v->players <= s->rules.max_players
                  ? v->players : s->rules.max_players;
    s->abort_if_short = s->conf->abort_if_short >= 0
                        ? s->conf->abort_if_short
                        : strcmp(s->mode, "duel") == 0;
    gs_server_reset_world(s);
    s->phase = GS_PHASE_WAITING;
    s->phase_ms = gs_now_us() / 1000;
    s->ticks_left = (uint32_t) (s->rules.match_seconds * s->rules.tick_hz);
    s->malformed = 0;
    memset(s->refused, 0, sizeof(s->refused));

    gs_log_event("info", "server_allocated",
                 json_pack("{s:o, s:i, s:o}", "match_id",
                           gs_logline_str(s->match_id), "players",
                           s->expected, "mode", gs_logline_str(s->mode)),
                 "allocated: match %s, %d players, mode %s", s->match_id,
                 s->expected, s->mode);
    gs_server_emit(s, "allocated", json_pack("{s:s, s:i}", "match_id",
                                             s->match_id, "players",
                                             s->expected));
}


/*
 * The players who hold a slot when the match starts: they joined with a
 * ticket for this match (one who dropped since keeps the slot and may come
 * back).  The allocator writes them into the match record, where the
 * matchmaker frees the tickets of everyone else.  An id that cannot be
 * listed (a comma or a blank in it; the backend issues UUIDs) is left out
 * and logged.
 */
static char *
gs_server_seated(gs_server_t *s, json_t *ids)
{
    const gs_player_t  *p;
    char               *list, *end;
    int                 i;

    list = malloc((size_t) s->rules.max_players * (GS_PLAYER_ID_MAX + 1) + 1);
    if (list == NULL) {
        return NULL;
    }
    end = list;
    *end = '\0';

    for (i = 0; i < s->rules.max_players; i++) {
        p = &s->world.players[i];
        if (!p->used) {
            continue;
        }
        json_array_append_new(ids, json_string(p->id));
        if (p->id[0] == '\0' || strpbrk(p->id, ", \t\r\n") != NULL) {
            gs_log_event("warn", "player_id_unlisted",
                         json_pack("{s:o}", "player", gs_logline_str(p->id)),
                         "player id \"%s\" cannot be listed as seated",
                         p->id);
            continue;
        }
        end += sprintf(end, "%s%s", end == list ? "" : ",", p->id);
    }

    return list;
}


static void
gs_server_start_match(gs_server_t *s)
{
    gs_event_t  e = { GS_EV_MATCH_START, s->world.tick, 0, 0 };
    json_t     *ids, *events;
    char       *seated;

    s->phase = GS_PHASE_PLAYING;
    s->phase_ms = s->start_ms = gs_now_us() / 1000;
    gs_sim_flush_inputs(&s->world);
    s->start_wall_ms = gs_wall_ms();
    s->empty_since = 0;
    s->ntick = 0;
    s->sent0 = s->host->totalSentData;
    s->recv0 = s->host->totalReceivedData;

    ids = json_array();
    seated = gs_server_seated(s, ids);
    gs_agent_set_state(s->agent, GAME_ALLOC_PLAYING, s->match_id, seated);
    free(seated);
    gs_server_broadcast_event(s, &e);

    gs_tel_reset(&s->tel, &s->world, s->start_ms);
    if (s->conf->tel_stream != NULL) {
        events = json_array();
        if (events != NULL) {
            gs_tel_match(&s->tel, "match.start", s->match_id, s->mode,
                         gs_sim_connected(&s->world), NULL, NULL, 0,
                         s->start_wall_ms, events);
        }
        gs_server_telemetry(s, events);
    }

    gs_log_event("info", "match_start",
                 json_pack("{s:o, s:o, s:i, s:i}", "match_id",
                           gs_logline_str(s->match_id), "mode",
                           gs_logline_str(s->mode), "players",
                           gs_sim_connected(&s->world), "expected",
                           s->expected),
                 "match %s started with %d of %d players", s->match_id,
                 gs_sim_connected(&s->world), s->expected);
    gs_server_emit(s, "match_start",
                   json_pack("{s:s, s:i, s:o}", "match_id", s->match_id,
                             "players", gs_sim_connected(&s->world),
                             "seated", ids ? ids : json_array()));
}


static int
gs_server_cmp_u32(const void *a, const void *b)
{
    uint32_t  x = *(const uint32_t *) a, y = *(const uint32_t *) b;

    return x < y ? -1 : x > y;
}


/* what the defences did since the server started (not per match: a
 * flood does not wait for an allocation) */
static json_t *
gs_server_guard_stats(const gs_server_t *s)
{
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}",
        "connects_dropped", (json_int_t) s->guard.connects_dropped,
        "evicted", (json_int_t) s->evicted,
        "handshake_timeouts", (json_int_t) s->handshake_timeouts,
        "verifies_refused", (json_int_t) s->guard.verifies_refused,
        "verifies_deferred", (json_int_t) s->guard.verifies_deferred,
        "log_dropped", (json_int_t) gs_log_dropped());
}


static void
gs_server_end_match(gs_server_t *s, gs_end_reason_e reason)
{
    gs_result_meta_t  m;
    gs_event_t        e;
    int               winner, i, joined = 0;
    int64_t           now = gs_now_us() / 1000;
    double            secs;
    json_t           *result, *events;
    char             *json;

    winner = gs_sim_leader(&s->world);
    e.kind = GS_EV_MATCH_END;
    e.tick = s->world.tick;
    e.a = (uint8_t) (winner >= 0 ? winner : 255);
    e.b = (uint8_t) reason;
    gs_server_broadcast_event(s, &e);

    for (i = 0; i < s->rules.max_players; i++) {
        joined += s->world.players[i].used;
    }

    memset(&m, 0, sizeof(m));
    m.match_id = s->match_id;
    m.server_id = s->conf->id;
    m.mode = s->mode;
    m.reason = reason;
    m.expected_players = s->expected;
    m.malformed = s->malformed;
    memcpy(m.refused, s->refused, sizeof(m.refused));
    m.tick_hz = s->rules.tick_hz;

    if (s->phase == GS_PHASE_PLAYING) {
        m.started_at_ms = s->start_wall_ms;
        m.duration_ms = now - s->start_ms;
        secs = m.duration_ms > 0 ? m.duration_ms / 1000.0 : 1;
        if (joined > 0) {
            m.bytes_out_per_player_s = (uint32_t) (s->host->totalSentData
                                       - s->sent0) / secs / joined;
            m.bytes_in_per_player_s = (uint32_t) (s->host->totalReceivedData
                                      - s->recv0) / secs / joined;
        }
        if (s->ntick > 0) {
            qsort(s->tick_us, s->ntick, sizeof(uint32_t), gs_server_cmp_u32);
            m.tick_p50_us = s->tick_us[s->ntick / 2];
            m.tick_p99_us = s->tick_us[s->ntick * 99 / 100];
            m.tick_max_us = s->tick_us[s->ntick - 1];
        }
    } else {
        m.started_at_ms = gs_wall_ms();
    }

    if (s->phase == GS_PHASE_PLAYING && s->conf->tel_stream != NULL) {
        gs_server_sample(s, now, 1);
        events = json_array();
        if (events != NULL) {
            gs_tel_match(&s->tel, "match.end", s->match_id, s->mode, 0,
                         gs_proto_end_name(reason),
                         winner >= 0 ? s->world.players[winner].id : NULL,
                         m.duration_ms, gs_wall_ms(), events);
        }
        gs_server_telemetry(s, events);
    }

    result = gs_result_object(&s->world, &m);
    if (result != NULL) {
        json_object_set_new(result, "guard", gs_server_guard_stats(s));
    }
    json = result ? json_dumps(result, JSON_COMPACT) : NULL;
    gs_log_event("info", "match_end",
                 json_pack("{s:o, s:o, s:s, s:o, s:i, s:I}", "match_id",
                           gs_logline_str(s->match_id), "mode",
                           gs_logline_str(s->mode), "reason",
                           gs_proto_end_name(reason), "winner",
                           winner >= 0
                           ? gs_logline_str(s->world.players[winner].id)
                           : json_null(),
                           "joined", joined, "duration_ms",
                           (json_int_t) m.duration_ms),
                 "match %s over: %s, winner %s, %d joined", s->match_id,
                 gs_proto_end_name(reason),
                 winner >= 0 ? s->world.players[winner].id : "none", joined);
    gs_server_emit(s, "match_end",
                   json_pack("{s:o}", "result",
                             result ? result : json_null()));
    if (json != NULL) {
        gs_agent_publish(s->agent, s->match_id, json);
    }
    gs_agent_set_state(s->agent, GAME_ALLOC_FINISHED, s->match_id, NULL);

    snprintf(s->last_match, sizeof(s->last_match), "%s", s->match_id);
    s->matches++;
    s->phase = GS_PHASE_ENDING;
    s->phase_ms = now;
    s->let_go = 0;
}


/* Out of service for good: Shutdown, then gs_server_run deregisters. */
static void
gs_server_shut_down(gs_server_t *s, const char *match_id)
{
    if (s->drained && !s->draining) {
        gs_log_event("info", "server_draining",
                     json_pack("{s:s, s:b}", "reason", "allocator", "busy",
                               0),
                     "drained by the allocator: shutting down");
        gs_server_emit(s, "drained", NULL);
    }
    gs_agent_set_state(s->agent, GAME_ALLOC_SHUTDOWN, match_id, NULL);
    s->exit_now = 1;
}


static void
gs_server_next_cycle(gs_server_t *s)
{
    size_t  i;

    for (i = 0; i < s->host->peerCount; i++) {
        if (s->clients[i].state != GS_CLIENT_FREE) {
            enet_peer_reset(s->clients[i].peer);
            s->clients[i].state = GS_CLIENT_FREE;
        }
    }
    gs_server_reset_world(s);
    s->match_id[0] = '\0';
    s->phase = GS_PHASE_IDLE;
    s->phase_ms = gs_now_us() / 1000;

    if (s->draining || s->drained
        || (s->conf->max_matches > 0 && s->matches >= s->conf->max_matches))
    {
        gs_server_shut_down(s, s->last_match);
        gs_agent_release(s->agent);
        return;
    }

    /* Ready before release: the agent registers again (if the allocator
     * forgot us during the match) only once this is queued and done */
    gs_agent_set_state(s->agent, GAME_ALLOC_READY, s->last_match, NULL);
    gs_agent_release(s->agent);
    gs_server_emit(s, "ready", NULL);
}


static void
gs_server_drained_busy(gs_server_t *s)
{
    gs_log_event("info", "server_draining",
                 json_pack("{s:s, s:b, s:o}", "reason", "allocator", "busy", 1,
                           "match_id", gs_logline_str(s->match_id)),
                 "drained by the allocator: match %s plays out, then the "
                 "server shuts down", s->match_id);
    gs_server_emit(s, "draining", json_pack("{s:s}", "reason", "allocator"));
}


/*
 * Idle.  An allocation comes first, even while draining: it was made
 * before our way out reached the allocator, and its players are coming.
 * Otherwise a drain by the allocator ends the server at once, and a
 * SIGTERM drain leaves through drain.lua, which settles a race with an
 * allocation in Redis: the view then shows Shutdown, or the allocation.
 */
static void
gs_server_idle(gs_server_t *s, const gs_agent_view_t *v, int64_t now)
{
    if (v->state == GAME_ALLOC_ALLOCATED && v->match_id[0]
        && strcmp(v->match_id, s->last_match) != 0
        && gs_agent_take(s->agent, v->match_id))
    {
        gs_server_allocated(s, v);
        if (s->drained && !s->draining) {
            gs_server_drained_busy(s);
        }
        return;
    }

    if (s->drained) {
        gs_server_shut_down(s, "");
        return;
    }

    if (!s->draining) {
        return;
    }

    if (!s->drain_asked) {
        gs_agent_drain(s->agent);
        s->drain_asked = 1;
        s->drain_asked_ms = now;
        return;
    }

    /* Without Redis the answer may never come.  An idle server does not
     * wait out a match's grace for it: what it risks by leaving (an
     * allocation it never heard of) is what a crash would cost. */
    if (v->state == GAME_ALLOC_SHUTDOWN
        || now >= s->drain_asked_ms + GS_IDLE_DRAIN_MS
        || now >= s->drain_deadline)
    {
        gs_server_shut_down(s, "");
    }
}


static void
gs_server_lifecycle(gs_server_t *s, int64_t now)
{
    gs_agent_view_t  v;
    int              n;
    size_t           i, live;

    gs_agent_view(s->agent, &v);

    /* a drain by the allocator: no grace, the match (if any) plays out */
    if (v.drained && !s->drained && !s->draining) {
        s->drained = 1;
        if (s->phase != GS_PHASE_IDLE) {
            gs_server_drained_busy(s);
        }
    }

    switch (s->phase) {

    case GS_PHASE_IDLE:
        gs_server_idle(s, &v, now);
        break;

    case GS_PHASE_WAITING:
        n = gs_sim_connected(&s->world);
        if (n >= s->expected) {
            gs_server_start_match(s);
        } else if (now >= s->phase_ms + s->conf->join_timeout_s * 1000
                   || (s->draining && now >= s->drain_deadline))
        {
            if (n == 0 || (s->abort_if_short && n < s->expected)) {
                gs_server_end_match(s, GS_END_ABORT);
            } else {
                gs_server_start_match(s);
            }
        }
        break;

    case GS_PHASE_PLAYING:
        if (gs_sim_step(&s->world)) {
            gs_server_end_match(s, GS_END_SCORE);
            break;
        }
        if (--s->ticks_left == 0) {
            gs_server_end_match(s, GS_END_TIME);
            break;
        }
        if (gs_sim_connected(&s->world) == 0) {
            if (s->empty_since == 0) {
                s->empty_since = now;
            } else if (now - s->empty_since >= GS_EMPTY_END_MS) {
                gs_server_end_match(s, GS_END_EMPTY);
                break;
            }
        } else {
            s->empty_since = 0;
        }
        if (s->draining && now >= s->drain_deadline) {
            gs_server_end_match(s, GS_END_DRAIN);
        }
        break;

    case GS_PHASE_ENDING:
        if (!s->let_go && now - s->phase_ms >= GS_ENDING_LINGER_MS) {
            for (i = 0; i < s->host->peerCount; i++) {
                if (s->clients[i].state != GS_CLIENT_FREE) {
                    enet_peer_disconnect_later(s->clients[i].peer,
                                               GS_REFUSE_MATCH_OVER);
                }
            }
            s->let_go = 1;
        }
        for (i = 0, live = 0; i < s->host->peerCount; i++) {
            live += s->clients[i].state != GS_CLIENT_FREE;
        }
        if ((s->let_go && live == 0) || now - s->phase_ms >= GS_ENDING_MAX_MS)
        {
            gs_server_next_cycle(s);
        }
        break;
    }
}


static void
gs_server_timeouts(gs_server_t *s, int64_t now)
{
    gs_client_t  *c;
    size_t        i;

    (void) gs_server_half_open(s, now, &c);

    for (i = 0; i < s->host->peerCount; i++) {
        c = &s->clients[i];
        switch (c->state) {
        case GS_CLIENT_HANDSHAKE:
            if (!gs_server_enet_handshaking(c->peer)) {
                c->state = GS_CLIENT_FREE;      /* ENet let it go itself */
            } else if (now - c->since_ms >= GS_HANDSHAKE_MS) {
                s->handshake_timeouts++;
                gs_server_free_client(s, c);
            }
            break;
        case GS_CLIENT_QUEUED:
            /* verified in arrival order as the budget allows; a hello
             * that waits this long is lost in a flood: let it try again */
            if (now - c->since_ms >= GS_HELLO_TIMEOUT_MS * 2) {
                gs_server_refuse(s, c, GS_REFUSE_BUSY, "verify queue");
            }
            break;
        case GS_CLIENT_HELLO:
            if (now - c->since_ms >= GS_HELLO_TIMEOUT_MS) {
                gs_server_refuse(s, c, GS_REFUSE_NO_TICKET, "no hello");
            }
            break;
        case GS_CLIENT_PENDING:
            if (s->phase != GS_PHASE_IDLE) {
                gs_server_enter(s, c);
            } else if (now - c->since_ms >= GS_PENDING_MS) {
                gs_server_refuse(s, c, GS_REFUSE_WRONG_MATCH,
                                 c->ticket.match_id);
            }
            break;
        case GS_CLIENT_REFUSED:
            if (now - c->since_ms >= GS_REFUSED_RESET_MS) {
                enet_peer_reset(c->peer);
                c->state = GS_CLIENT_FREE;
            }
            break;
        default:
            break;
        }
    }
}


/*
 * One snapshot per client: the world as its interest sees it, written as
 * the difference from the snapshot it acknowledged last (ack_tick of its
 * inputs) when the server still holds that one, else whole.  Deltas only
 * while playing: waiting-room snapshots all carry tick 0.
 */
static void
gs_server_snapshots(gs_server_t *s)
{
    static gs_snapshot_t  full, out;
    const gs_snapshot_t  *base;
    gs_snapshot_t        *held;
    gs_player_t          *p;
    uint8_t               buf[GS_SNAP_MAX];
    size_t                len, i;
    gs_client_t          *c;
    int                   delta;

    if (s->world.tick % (uint32_t) s->snap_every != 0
        && s->phase == GS_PHASE_PLAYING)
    {
        return;
    }

    gs_sim_snapshot(&s->world, -1, s->ticks_left, &full);
    delta = s->phase == GS_PHASE_PLAYING && !s->conf->full_snapshots;
    s->snap_n++;

    for (i = 0; i < s->host->peerCount; i++) {
        c = &s->clients[i];
        if (c->state != GS_CLIENT_IN) {
            continue;
        }
        p = &s->world.players[c->slot];
        full.ack_seq = p->last_seq;
        held = &s->held[c->slot * GS_SNAP_HELD];
        base = NULL;
        if (delta && p->ack_tick != 0
            && held[p->ack_tick % GS_SNAP_HELD].tick == p->ack_tick)
        {
            base = &held[p->ack_tick % GS_SNAP_HELD];
        }
        if (delta) {
            gs_interest_select(&full, base, c->slot, s->snap_n,
                               (int32_t) (GS_INTEREST_RADIUS * GS_FIX), &out);
        } else {
            out = full;
        }
        len = gs_proto_snapshot_encode(buf, sizeof(buf), &out, base);
        if (len == 0) {
            continue;
        }
        if (delta) {
            held[out.tick % GS_SNAP_HELD] = out;
        }
        gs_server_send(c->peer, GS_CHAN_STATE, buf, len, 0);
    }
}


static void gs_server_tick_time(gs_server_t *s, uint32_t took);


static const char *
gs_server_phase_name(gs_phase_e phase)
{
    switch (phase) {
    case GS_PHASE_WAITING:
        return "waiting";
    case GS_PHASE_PLAYING:
        return "playing";
    case GS_PHASE_ENDING:
        return "ending";
    default:
        return "idle";
    }
}


/*
 * A tick overran its budget (one tick's time) when its work took longer,
 * or when it began that much after it was due: the process was starved
 * (stopped, swapped, a busy machine).  Told at most once a second, with
 * how many went untold since.
 */
static void
gs_server_overrun(gs_server_t *s, int64_t now_ms, uint32_t took_us,
    int64_t late_us)
{
    uint64_t  quiet;

    if ((int64_t) took_us <= s->tick_budget_us && late_us <= s->tick_budget_us)
    {
        return;
    }
    if (!gs_logline_budget_take(&s->overrun_lines, now_ms, 1, &quiet)) {
        return;
    }
    gs_log_event("warn", "tick_overrun",
                 json_pack("{s:I, s:I, s:I, s:s, s:i, s:I}",
                           "took_us", (json_int_t) took_us,
                           "late_us", (json_int_t) late_us,
                           "budget_us", (json_int_t) s->tick_budget_us,
                           "phase", gs_server_phase_name(s->phase),
                           "players", gs_sim_connected(&s->world),
                           "untold", (json_int_t) quiet),
                 "tick took %u us and began %lld us late; its budget is "
                 "%lld us", took_us, (long long) late_us,
                 (long long) s->tick_budget_us);
}


/* late_us: how long after it was due the tick began */
static void
gs_server_tick(gs_server_t *s, int64_t late_us)
{
    int64_t   t0 = gs_now_us(), now = t0 / 1000;
    uint32_t  took;

    /* the loop lives: the agent may heartbeat, the fleet sees a pulse */
    gs_agent_tick(s->agent, now);

    gs_guard_tick(&s->guard);
    gs_server_verify_queued(s);

    gs_server_lifecycle(s, now);
    gs_server_timeouts(s, now);
    if (s->phase == GS_PHASE_PLAYING) {
        gs_server_sample(s, now, 0);
    }
    if (s->phase == GS_PHASE_WAITING || s->phase == GS_PHASE_PLAYING) {
        /* while waiting the world stands still; show it at a low rate */
        if (s->phase == GS_PHASE_PLAYING || now % 200 < 1000 / s->rules.tick_hz)
        {
            gs_server_snapshots(s);
        }
    }
    enet_host_flush(s->host);

    gs_health_tick(s->health, now, (unsigned) s->phase,
                   (unsigned) gs_sim_connected(&s->world));

    took = (uint32_t) (gs_now_us() - t0 + s->busy_us);
    if (s->phase == GS_PHASE_PLAYING && s->ntick < GS_TICK_SAMPLES) {
        s->tick_us[s->ntick++] = took;
    }
    gs_server_tick_time(s, took);
    gs_server_overrun(s, now, took, late_us);
    s->busy_us = 0;
}


/*
 * The recent tick p99, published in the health file for the fleet
 * manager's metrics (game_fleet_manager_tick_p99_seconds).  A sort of 256
 * numbers every 128 ticks: a few microseconds, off the hot path's way.
 */
static void
gs_server_tick_time(gs_server_t *s, uint32_t took)
{
    uint32_t  sorted[GS_HEALTH_WINDOW];

    s->recent_us[s->nrecent++ % GS_HEALTH_WINDOW] = took;

    if (s->nrecent % (GS_HEALTH_WINDOW / 2) != 0
        || s->nrecent < GS_HEALTH_WINDOW)
    {
        return;
    }

    memcpy(sorted, s->recent_us, sizeof(sorted));
    qsort(sorted, GS_HEALTH_WINDOW, sizeof(uint32_t), gs_server_cmp_u32);
    gs_health_tick_time(s->health, sorted[GS_HEALTH_WINDOW * 99 / 100]);
}


static void
gs_server_begin_drain(gs_server_t *s)
{
    s->draining = 1;
    s->drain_deadline = gs_now_us() / 1000 + s->conf->drain_grace_s * 1000;
    gs_log_event("info", "server_draining",
                 json_pack("{s:s, s:b, s:i}", "reason", "signal", "busy",
                           s->phase != GS_PHASE_IDLE, "grace_s",
                           s->conf->drain_grace_s),
                 "draining: %s (grace %d s)", s->phase == GS_PHASE_IDLE
                 ? "no match, shutting down"
                 : "no new allocation; the match ends or the grace runs out",
                 s->conf->drain_grace_s);
    gs_server_emit(s, "draining", json_pack("{s:s, s:i}", "reason", "signal",
                                            "grace_s",
                                            s->conf->drain_grace_s));
}


/* why the server cannot start: its one line in the log */
static void __attribute__((format(printf, 1, 2)))
gs_server_start_failed(const char *fmt, ...)
{
    char     why[300];
    va_list  ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    gs_log_event("error", "server_start_failed",
                 json_pack("{s:o}", "error", gs_logline_str(why)), "%s", why);
}


int
gs_server_run(const gs_server_conf_t *conf)
{
    gs_server_t          s;
    gs_agent_conf_t      ac;
    ENetAddress          addr;
    ENetEvent            ev;
    struct sigaction     sa;
    int64_t              tick_us, next, now, t0;
    int                  rc;
    char                 err[256];
    uint64_t             seed;

    memset(&s, 0, sizeof(s));
    gs_used_init(&s.used);
    s.conf = conf;
    if (getrandom(&seed, sizeof(seed), 0) != (ssize_t) sizeof(seed)) {
        seed = (uint64_t) gs_now_us() ^ ((uint64_t) getpid() << 32);
    }
    gs_tel_init(&s.tel, seed);
    gs_rules_default(&s.rules, conf->tick_hz);
    s.rules.max_players = conf->max_players;
    s.rules.match_seconds = conf->match_seconds;
    s.rules.score_limit = conf->score_limit;
    /* snapshots at the tick rate up to 30 Hz, then every n-th tick */
    s.snap_every = (conf->tick_hz + 29) / 30;
    gs_server_reset_world(&s);

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = gs_server_on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (conf->health_file != NULL) {
        s.health = gs_health_open(conf->health_file, err, sizeof(err));
        if (s.health == NULL) {
            gs_server_start_failed("--health-file %s", err);
            return 1;
        }
    }

    if (enet_initialize() != 0) {
        gs_server_start_failed("%s", "enet_initialize failed");
        return 1;
    }

    if (enet_address_set_host_ip(&addr, conf->bind) != 0) {
        gs_server_start_failed("bad bind address \"%s\"", conf->bind);
        return 1;
    }
    addr.port = (enet_uint16) conf->port;

    s.host = enet_host_create(&addr, (size_t) conf->max_players
                              + GS_SPARE_PEERS, GS_CHAN_COUNT, 0, 0);
    if (s.host == NULL) {
        gs_server_start_failed("cannot listen on udp %s:%d", conf->bind,
                               conf->port);
        return 1;
    }
    /* ENet's defaults (32 MiB) would let one peer pin memory at will */
    s.host->maximumPacketSize = GS_PACKET_MAX;
    s.host->maximumWaitingData = 64 * 1024;
    s.host->duplicatePeers = (size_t) conf->max_peers_per_ip;
    s.pool = s.host->peerCount - (size_t) conf->max_players;

    /* A source may try as many connections at once as it may hold peers,
     * then that many a second; and have as many hellos verified at once,
     * then half as many a second: a player needs one per connection, a
     * source that keeps reconnecting with hellos is after our CPU.  The
     * tick's budget bounds all sources together. */
    gs_guard_init(&s.guard, conf->max_peers_per_ip,
                  conf->max_peers_per_ip > 4 ? conf->max_peers_per_ip : 4,
                  conf->max_peers_per_ip,
                  conf->max_peers_per_ip > 4 ? conf->max_peers_per_ip / 2 : 2,
                  GS_VERIFY_PER_TICK);
    gs_server_intercepting = &s;
    s.host->intercept = gs_server_intercept;

    s.clients = calloc(s.host->peerCount, sizeof(gs_client_t));
    s.tick_us = malloc(GS_TICK_SAMPLES * sizeof(uint32_t));
    s.held = calloc(GS_MAX_PLAYERS * GS_SNAP_HELD, sizeof(gs_snapshot_t));
    if (s.clients == NULL || s.tick_us == NULL || s.held == NULL) {
        gs_server_start_failed("%s", "out of memory");
        return 1;
    }

    memset(&ac, 0, sizeof(ac));
    ac.redis_host = conf->redis_host;
    ac.redis_port = conf->redis_port;
    ac.prefix = conf->prefix;
    ac.tel_stream = conf->tel_stream;
    ac.server.id = conf->id;
    ac.server.addr = conf->addr;
    ac.server.port = conf->port;
    ac.server.region = conf->region;
    ac.server.mode = conf->mode;
    ac.server.build = conf->build;
    ac.server.host = conf->host;
    ac.server.capacity = conf->max_players;
    ac.server.ttl_ms = 3000;
    s.agent = gs_agent_start(&ac);
    if (s.agent == NULL) {
        gs_server_start_failed("%s", "cannot start the allocator thread");
        return 1;
    }

    gs_log_event("info", "server_start",
                 json_pack("{s:o, s:i, s:i, s:i, s:o, s:o}", "bind",
                           gs_logline_str(conf->bind), "port", conf->port,
                           "tick_hz", conf->tick_hz, "max_players",
                           conf->max_players, "region",
                           gs_logline_str(conf->region), "mode",
                           gs_logline_str(conf->mode)),
                 "listening on udp %s:%d, %d Hz, up to %d players",
                 conf->bind, conf->port, conf->tick_hz, conf->max_players);
    gs_server_emit(&s, "listening", json_pack("{s:i, s:i}", "port",
                                              conf->port, "tick_hz",
                                              conf->tick_hz));

    tick_us = 1000000 / conf->tick_hz;
    s.tick_budget_us = tick_us;
    next = gs_now_us() + tick_us;

    while (!s.exit_now) {
        if (gs_server_signalled && !s.draining) {
            gs_server_begin_drain(&s);
        }

        /* wait for packets until the tick is due, handling them as they
         * come; ENet's timeout is in ms, so the last part is a sleep */
        for ( ;; ) {
            now = gs_now_us();
            if (now >= next) {
                break;
            }
            rc = enet_host_service(s.host, &ev,
                                   (enet_uint32) ((next - now) / 1000));
            if (rc > 0) {
                t0 = gs_now_us();
                do {
                    gs_server_event(&s, &ev);
                } while (enet_host_check_events(s.host, &ev) > 0);
                s.busy_us += gs_now_us() - t0;
            } else if (rc < 0) {
                gs_log_event("error", "enet_failed", NULL,
                             "enet_host_service failed");
                break;
            } else if (next - gs_now_us() > 0 && next - gs_now_us() < 1000) {
                struct timespec  ts = { 0, (long) (next - gs_now_us()) * 1000 };
                nanosleep(&ts, NULL);
            }
            if (gs_server_signalled && !s.draining) {
                break;
            }
        }

        if (gs_server_signalled && !s.draining) {
            continue;
        }

        gs_server_tick(&s, gs_now_us() - next);

        next += tick_us;
        now = gs_now_us();
        if (now - next > 5 * tick_us) {
            /* far behind (stopped, overloaded): skip, do not burst */
            next = now + tick_us;
        }
    }

    gs_log_event("info", "server_shutdown",
                 json_pack("{s:i, s:o}", "matches", s.matches, "guard",
                           gs_server_guard_stats(&s)),
                 "exiting after %d matches", s.matches);
    gs_server_emit(&s, "exit", json_pack("{s:i, s:o}", "matches", s.matches,
                                         "guard", gs_server_guard_stats(&s)));
    gs_agent_stop(s.agent, 5000);
    enet_host_flush(s.host);
    enet_host_destroy(s.host);
    enet_deinitialize();
    gs_health_close(s.health);
    free(s.clients);
    free(s.tick_us);
    free(s.held);
    gs_tel_free(&s.tel);
    return 0;
}
