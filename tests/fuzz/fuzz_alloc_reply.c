
/*
 * The allocator's replies as they come off a Redis connection: the first
 * byte picks the script whose reply is expected, the rest is RESP read by
 * hiredis's own reader, and every reply goes through the parser the game
 * servers, the fleet and the CLI use (game_alloc_parse_reply).  Redis is
 * trusted, but a reply from an older or newer script must be refused, not
 * overrun a buffer.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <hiredis/hiredis.h>

#include "game_alloc.h"
#include "fuzz_resp.h"


#define FUZZ_CHECK(cond)  do { if (!(cond)) abort(); } while (0)


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static void
fuzz_alloc_check(game_alloc_script_e script, game_alloc_status_t status,
    const game_alloc_result_t *res)
{
    FUZZ_CHECK(memchr(res->server_id, '\0', sizeof(res->server_id)));
    FUZZ_CHECK(memchr(res->addr, '\0', sizeof(res->addr)));
    FUZZ_CHECK(memchr(res->match_id, '\0', sizeof(res->match_id)));
    FUZZ_CHECK(memchr(res->mode, '\0', sizeof(res->mode)));
    FUZZ_CHECK(game_alloc_status_name(status) != NULL);
    FUZZ_CHECK(game_alloc_state_name(res->state) != NULL);

    if (status != GAME_ALLOC_OK) {
        return;
    }

    switch (script) {

    case GAME_ALLOC_ALLOCATE:
    case GAME_ALLOC_HEARTBEAT:
        /* an assignment the callers act on: somewhere to connect to */
        FUZZ_CHECK(res->port > 0 && res->port <= 65535);
        FUZZ_CHECK(res->players >= 0);
        FUZZ_CHECK(res->existing == 0 || res->existing == 1);
        FUZZ_CHECK(res->state != GAME_ALLOC_STATE_UNKNOWN);
        break;

    case GAME_ALLOC_REGISTER:
    case GAME_ALLOC_SET_STATE:
    case GAME_ALLOC_DRAIN:
        FUZZ_CHECK(res->state != GAME_ALLOC_STATE_UNKNOWN);
        break;

    case GAME_ALLOC_REAP:
        FUZZ_CHECK(res->count >= 0);
        break;

    default:
        break;
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    void                 *reply;
    redisReader          *reader;
    redisReply           *r;
    game_alloc_result_t   res;
    game_alloc_status_t   status;
    game_alloc_script_e   script;

    if (size < 1) {
        return 0;
    }

    script = (game_alloc_script_e) (data[0] % GAME_ALLOC_NSCRIPTS);

    reader = fuzz_resp_reader();
    if (reader == NULL) {
        return 0;
    }

    if (redisReaderFeed(reader, (const char *) data + 1, size - 1)
        != REDIS_OK)
    {
        redisReaderFree(reader);
        return 0;
    }

    for ( ;; ) {
        reply = NULL;

        if (redisReaderGetReply(reader, &reply) != REDIS_OK
            || reply == NULL)
        {
            break;
        }

        r = reply;

        if (r->type == REDIS_REPLY_ERROR) {
            (void) game_alloc_is_noscript(r->str, r->len);
        }

        status = game_alloc_parse_reply(script, r, &res);
        fuzz_alloc_check(script, status, &res);

        freeReplyObject(reply);
    }

    redisReaderFree(reader);

    return 0;
}
