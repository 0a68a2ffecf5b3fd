/*
 * bot_http.c: the player's way in, through the HTTP backend.
 *
 * TODO(matchmaking issue): device login (POST the device id, get a session
 * token), then enqueue a matchmaking ticket and poll (or long-poll) until
 * the match is placed; the reply carries the server's address, port and
 * the signed join ticket.  Those endpoints do not exist yet, so this only
 * proves libcurl is wired in and says so; until then use --direct, which
 * allocates through Redis and mints its own tickets.
 */

#include <stdio.h>

#include <curl/curl.h>

#include "bot.h"


int
bot_http_matchmake(const char *base_url, bot_t *bot, char *host,
    size_t hostlen, int *port, char *err, size_t errlen)
{
    static int  inited;

    if (!inited) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        inited = 1;
    }

    snprintf(err, errlen, "the HTTP path (device login + matchmaking at %s) "
             "is not implemented yet: use --direct", base_url);
    return -1;
}
