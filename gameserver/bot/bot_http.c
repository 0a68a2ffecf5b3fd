/*
 * bot_http.c: the player's way in, through the HTTP backend.
 *
 * Each bot signs in as a fresh guest (POST /auth/device with a random
 * device id), joins matchmaking (POST /matchmaking/join) and waits until
 * GET /matchmaking/status names its server and carries its connection
 * ticket; bot_play.c then connects exactly as with --ticket.
 *
 * Concurrency: all N bots sign in and join one after another first, and
 * only then does one loop poll the status of every bot still waiting,
 * every BOT_HTTP_POLL_MS.  A join takes milliseconds, so the N tickets are
 * queued together and can be matched with each other, and one thread with
 * one blocking curl handle (its connection kept alive across bots) is
 * enough for a test client.  The server has no long-poll (?wait=) yet, so
 * time_to_match_ms is as fine as the poll interval.
 *
 * A bot that was matched early waits in the loop for the others (at most
 * --match-timeout): bot_play runs every bot of the process together.
 */

#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#include "bot.h"


#define BOT_HTTP_POLL_MS        200
#define BOT_HTTP_TIMEOUT_MS     10000
#define BOT_HTTP_CONNECT_MS     5000
#define BOT_HTTP_BODY_MAX       65536   /* our replies are a few hundred B */
#define BOT_HTTP_TOKEN_MAX      4096
#define BOT_HTTP_URL_MAX        1024

/*
 * The bot measures no latency: it names one region, and any value below
 * the mode's max_latency (150 ms by default) selects it.
 */
#define BOT_HTTP_LATENCY_MS     20


typedef enum { BOT_HTTP_WAITING, BOT_HTTP_MATCHED, BOT_HTTP_FAILED }
    bot_http_state_e;

/* what one bot needs between requests; not part of bot_t, which is what
 * the summary prints */
typedef struct {
    char                token[BOT_HTTP_TOKEN_MAX + 1];
    bot_http_state_e    state;
    int64_t             joined_us;
    char                last[256];      /* the last transient problem */
} bot_http_seat_t;

typedef struct {
    char               *data;
    size_t              len;
} bot_http_body_t;


static int64_t
bot_http_now_us(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}


static size_t
bot_http_collect(char *ptr, size_t size, size_t nmemb, void *user)
{
    bot_http_body_t  *body = user;
    size_t            n = size * nmemb;
    char             *p;

    /* a reply this large is not our backend's: returning short makes
     * curl stop with CURLE_WRITE_ERROR */
    if (body->len + n > BOT_HTTP_BODY_MAX) {
        return 0;
    }
    p = realloc(body->data, body->len + n + 1);
    if (p == NULL) {
        return 0;
    }
    memcpy(p + body->len, ptr, n);
    body->len += n;
    p[body->len] = '\0';
    body->data = p;
    return n;
}


/*
 * One request.  Returns the HTTP status, or 0 if there was none (err says
 * why), and the body in *reply if it was JSON (else NULL).  curl_easy_reset
 * keeps the live connection, so every bot's requests share one.
 */
static long
bot_http_request(CURL *c, const char *method, const char *url,
    const char *token, json_t *body, json_t **reply, char *err,
    size_t errlen)
{
    struct curl_slist  *hdrs = NULL, *h;
    bot_http_body_t     in = { NULL, 0 };
    char                auth[BOT_HTTP_TOKEN_MAX + 32], *payload = NULL;
    long                status = 0;
    CURLcode            rc;

    *reply = NULL;
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long) BOT_HTTP_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long) BOT_HTTP_CONNECT_MS);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "game-bot");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, bot_http_collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &in);

    h = curl_slist_append(hdrs, "Accept: application/json");
    hdrs = h ? h : hdrs;
    if (token != NULL) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
        h = curl_slist_append(hdrs, auth);
        hdrs = h ? h : hdrs;
    }
    if (body != NULL) {
        payload = json_dumps(body, JSON_COMPACT);
        if (payload == NULL) {
            snprintf(err, errlen, "cannot encode the request body");
            curl_slist_free_all(hdrs);
            return 0;
        }
        h = curl_slist_append(hdrs, "Content-Type: application/json");
        hdrs = h ? h : hdrs;
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, payload);   /* a POST */
    }
    if (strcmp(method, "DELETE") == 0) {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "DELETE");
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);

    rc = curl_easy_perform(c);
    if (rc != CURLE_OK) {
        snprintf(err, errlen, "%s %s: %s", method, url,
                 curl_easy_strerror(rc));
    } else {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        if (in.data != NULL) {
            *reply = json_loads(in.data, 0, NULL);
        }
    }

    curl_slist_free_all(hdrs);
    free(payload);
    free(in.data);
    return status;
}


/*
 * The bot is out: b->failure says at which step and why, b->error holds
 * the backend's error code (the {"error":{"code","message"}} body) when
 * there is one, or the given code for failures the bot itself decides.
 */
static void
bot_http_fail(bot_t *b, bot_http_seat_t *seat, const char *step, long status,
    json_t *reply, const char *code, const char *detail)
{
    json_t      *e = json_object_get(reply, "error");
    const char  *msg = json_string_value(json_object_get(e, "message"));
    char        *p = b->failure_buf, *end = p + sizeof(b->failure_buf);

    if (json_string_value(json_object_get(e, "code")) != NULL) {
        code = json_string_value(json_object_get(e, "code"));
    }
    if (code != NULL) {
        snprintf(b->error, sizeof(b->error), "%s", code);
    }

    /* "join: HTTP 422 unknown_mode: message", parts left out if unknown */
    p += snprintf(p, (size_t) (end - p), "%s:", step);
    if (status != 0 && p < end) {
        p += snprintf(p, (size_t) (end - p), " HTTP %ld", status);
    }
    if (code != NULL && p < end) {
        p += snprintf(p, (size_t) (end - p), " %s", code);
    }
    if ((msg != NULL || detail != NULL) && p < end) {
        snprintf(p, (size_t) (end - p), "%s%s", status || code ? ": " : " ",
                 msg ? msg : detail);
    }
    b->failure = b->failure_buf;
    seat->state = BOT_HTTP_FAILED;
}


/* a fresh guest every run: a device id seen before signs in as that
 * guest again, whose last ticket may still be in play (409) */
static void
bot_http_device_id(char *out, size_t cap)
{
    unsigned char  r[16];
    FILE          *f;
    size_t         i, got = 0;

    f = fopen("/dev/urandom", "rb");
    if (f != NULL) {
        got = fread(r, 1, sizeof(r), f);
        fclose(f);
    }
    for (i = got; i < sizeof(r); i++) {
        r[i] = (unsigned char) rand();
    }
    i = (size_t) snprintf(out, cap, "game-bot-");
    for (got = 0; got < sizeof(r) && i + 2 < cap; got++, i += 2) {
        snprintf(out + i, cap - i, "%02x", r[got]);
    }
}


static int
bot_http_sign_in(CURL *c, const bot_http_conf_t *conf, bot_t *b,
    bot_http_seat_t *seat)
{
    char         url[BOT_HTTP_URL_MAX], device[64], err[256];
    json_t      *body, *reply;
    const char  *token, *pid;
    long         st;

    snprintf(url, sizeof(url), "%s/auth/device", conf->api);
    bot_http_device_id(device, sizeof(device));
    body = json_pack("{s:s}", "device_id", device);
    st = bot_http_request(c, "POST", url, NULL, body, &reply, err,
                          sizeof(err));
    json_decref(body);

    token = json_string_value(json_object_get(reply, "access_token"));
    pid = json_string_value(json_object_get(reply, "player_id"));
    if (st / 100 != 2 || token == NULL || pid == NULL
        || strlen(token) > BOT_HTTP_TOKEN_MAX || strlen(pid) > BOT_ID_MAX)
    {
        bot_http_fail(b, seat, "sign-in", st, reply, NULL,
                      st == 0 ? err : st / 100 == 2 ? "unexpected reply"
                                                    : NULL);
        json_decref(reply);
        return -1;
    }
    snprintf(seat->token, sizeof(seat->token), "%s", token);
    snprintf(b->player, sizeof(b->player), "%s", pid);
    json_decref(reply);
    bot_progress(b, b->index, "signed in as a guest");
    return 0;
}


static int
bot_http_join(CURL *c, const bot_http_conf_t *conf, bot_t *b,
    bot_http_seat_t *seat)
{
    char     url[BOT_HTTP_URL_MAX], err[256];
    json_t  *body, *reply;
    long     st;

    snprintf(url, sizeof(url), "%s/matchmaking/join", conf->api);
    body = json_pack("{s:s, s:[{s:s, s:i}]}", "game_mode", conf->mode,
                     "regions", "region", conf->region,
                     "latency_ms", BOT_HTTP_LATENCY_MS);
    st = bot_http_request(c, "POST", url, seat->token, body, &reply, err,
                          sizeof(err));
    json_decref(body);

    if (st != 202) {
        bot_http_fail(b, seat, "join", st, reply, NULL,
                      st == 0 ? err : NULL);
        json_decref(reply);
        return -1;
    }
    json_decref(reply);
    seat->joined_us = bot_http_now_us();
    seat->state = BOT_HTTP_WAITING;
    bot_progress(b, b->index, "queued for %s in %s", conf->mode,
                 conf->region);
    return 0;
}


/*
 * One status poll.  Matched means "matched" AND a server AND a connection
 * ticket: the matcher claims the tickets before it writes their servers,
 * so a poll can see "matched" alone.
 */
static void
bot_http_poll(CURL *c, const bot_http_conf_t *conf, bot_t *b,
    bot_http_seat_t *seat)
{
    char         url[BOT_HTTP_URL_MAX], err[256];
    json_t      *reply, *server;
    const char  *status, *host, *ticket, *match;
    json_int_t   port;
    long         st;

    snprintf(url, sizeof(url), "%s/matchmaking/status", conf->api);
    st = bot_http_request(c, "GET", url, seat->token, NULL, &reply, err,
                          sizeof(err));

    /* Redis or PostgreSQL restarting (503), a dropped connection: worth
     * another poll until the bot's deadline */
    if (st == 0 || st >= 500) {
        if (st == 0) {
            snprintf(seat->last, sizeof(seat->last), "%s", err);
        } else {
            snprintf(seat->last, sizeof(seat->last), "last status: HTTP %ld",
                     st);
        }
        json_decref(reply);
        return;
    }
    if (st != 200) {
        bot_http_fail(b, seat, "status", st, reply, NULL, NULL);
        json_decref(reply);
        return;
    }

    status = json_string_value(json_object_get(reply, "status"));
    if (status != NULL
        && (strcmp(status, "expired") == 0 || strcmp(status, "cancelled") == 0))
    {
        bot_http_fail(b, seat, "matchmaking", 0, NULL, status,
                      "the ticket was not matched");
        json_decref(reply);
        return;
    }

    server = json_object_get(reply, "server");
    host = json_string_value(json_object_get(server, "host"));
    port = json_integer_value(json_object_get(server, "port"));
    ticket = json_string_value(json_object_get(reply, "connection_ticket"));
    match = json_string_value(json_object_get(reply, "match_id"));
    if (status == NULL || strcmp(status, "matched") != 0 || host == NULL
        || ticket == NULL || port <= 0)
    {
        json_decref(reply);
        return;     /* queued, or claimed but not placed yet */
    }

    if (port > 65535 || strlen(host) > BOT_HOST_MAX
        || strlen(ticket) > BOT_TICKET_MAX || strlen(ticket) == 0)
    {
        bot_http_fail(b, seat, "status", 0, NULL, "bad_assignment",
                      "server or connection ticket out of range");
        json_decref(reply);
        return;
    }
    snprintf(b->host, sizeof(b->host), "%s", host);
    b->port = (int) port;
    snprintf(b->ticket, sizeof(b->ticket), "%s", ticket);
    snprintf(b->match_id, sizeof(b->match_id), "%s", match ? match : "");
    b->match_us = bot_http_now_us() - seat->joined_us;
    seat->state = BOT_HTTP_MATCHED;
    bot_progress(b, b->index, "matched (match %s) on %s:%d after %.1f s",
                 b->match_id, b->host, b->port, b->match_us / 1e6);
    json_decref(reply);
}


/*
 * Out of time: give the ticket back, so that the queue does not match a
 * player who has left.  409 already_matched means it raced the matcher:
 * one last poll may still pick the match up.
 */
static void
bot_http_give_up(CURL *c, const bot_http_conf_t *conf, bot_t *b,
    bot_http_seat_t *seat)
{
    char     url[BOT_HTTP_URL_MAX], err[256], why[320];
    json_t  *reply;
    long     st;

    snprintf(url, sizeof(url), "%s/matchmaking/ticket", conf->api);
    st = bot_http_request(c, "DELETE", url, seat->token, NULL, &reply, err,
                          sizeof(err));
    json_decref(reply);
    if (st == 409) {
        bot_http_poll(c, conf, b, seat);
        if (seat->state != BOT_HTTP_WAITING) {
            return;
        }
    }
    snprintf(why, sizeof(why), "no match within %d s%s%s",
             conf->match_timeout_s, seat->last[0] ? "; " : "", seat->last);
    bot_http_fail(b, seat, "matchmaking", 0, NULL, "match_timeout", why);
}


int
bot_http_matchmake(const bot_http_conf_t *conf, bot_t *bots, int n)
{
    CURL             *c;
    bot_http_seat_t  *seats;
    int64_t           now, next, timeout_us;
    int               i, waiting;

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
        return -1;
    }
    c = curl_easy_init();
    seats = calloc((size_t) n, sizeof(bot_http_seat_t));
    if (c == NULL || seats == NULL) {
        curl_easy_cleanup(c);
        free(seats);
        curl_global_cleanup();
        return -1;
    }

    for (i = 0; i < n; i++) {
        bots[i].match_us = -1;
        seats[i].state = BOT_HTTP_FAILED;   /* until the join is accepted */
        if (bot_http_sign_in(c, conf, &bots[i], &seats[i]) == 0) {
            bot_http_join(c, conf, &bots[i], &seats[i]);
        }
    }

    timeout_us = (int64_t) conf->match_timeout_s * 1000000;
    for ( ;; ) {
        next = bot_http_now_us() + BOT_HTTP_POLL_MS * 1000;
        waiting = 0;
        for (i = 0; i < n; i++) {
            if (seats[i].state != BOT_HTTP_WAITING) {
                continue;
            }
            if (bot_http_now_us() - seats[i].joined_us >= timeout_us) {
                bot_http_give_up(c, conf, &bots[i], &seats[i]);
                continue;
            }
            bot_http_poll(c, conf, &bots[i], &seats[i]);
            waiting += seats[i].state == BOT_HTTP_WAITING;
        }
        if (waiting == 0) {
            break;
        }
        now = bot_http_now_us();
        if (next > now) {
            nanosleep(&(struct timespec) { (next - now) / 1000000,
                                           (next - now) % 1000000 * 1000 },
                      NULL);
        }
    }

    curl_easy_cleanup(c);
    curl_global_cleanup();
    free(seats);
    return 0;
}
