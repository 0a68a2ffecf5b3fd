
/*
 * The matchmaking module's reading of a ticket's record: RESP bytes, read
 * by hiredis's own reader, collected into fields as the status handler
 * collects them (ngx_game_mm_status_body), then turned into the client's
 * answer by game_mm_ticket_answer().  The record is Redis's, but what it
 * holds came partly from clients (a region, a mode) and game servers (a
 * host): the answer must stay JSON that nginx can send.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <hiredis/hiredis.h>

#include "game_mm_ticket.h"
#include "fuzz_resp.h"


#define FUZZ_CHECK(cond)  do { if (!(cond)) abort(); } while (0)


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


/* what an answer may say: nothing else of the record leaks into it */
static const char  *fuzz_members[] = {
    "ticket_id", "status", "reason", "game_mode", "region", "match_id",
    "team", "queued_for_ms", NULL
};


static void
fuzz_answer(redisReply *reply)
{
    char                     *text;
    size_t                    i, n;
    json_t                   *v;
    const char               *key, **m;
    redisReply               *k, *val;
    game_mm_name_t            id, *fields;
    game_mm_ticket_answer_t   a;

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 2
        || reply->element[0]->type != REDIS_REPLY_STRING
        || strcmp(reply->element[0]->str, "TICKET") != 0
        || reply->element[1]->type != REDIS_REPLY_STRING)
    {
        return;
    }

    fields = malloc((reply->elements + 1) * sizeof(game_mm_name_t));
    if (fields == NULL) {
        return;
    }

    n = 0;

    for (i = 2; i + 1 < reply->elements; i += 2) {
        k = reply->element[i];
        val = reply->element[i + 1];

        if (k->type != REDIS_REPLY_STRING || val->type != REDIS_REPLY_STRING) {
            continue;
        }

        fields[n].data = k->str;
        fields[n++].len = k->len;
        fields[n].data = val->str;
        fields[n++].len = val->len;
    }

    id.data = reply->element[1]->str;
    id.len = reply->element[1]->len;

    FUZZ_CHECK(game_mm_ticket_answer(&id, fields, n, 1700000000000, &a) == 0);

    json_object_foreach(a.body, key, v) {
        for (m = fuzz_members; *m && strcmp(*m, key) != 0; m++) {
            /* void */
        }
        FUZZ_CHECK(*m != NULL);
    }

    json_object_foreach(a.server, key, v) {
        FUZZ_CHECK(strcmp(key, "host") == 0 || strcmp(key, "port") == 0);
    }

    /* the server id is one of the record's values, whole */
    if (a.server_id) {
        for (i = 1; i < n && fields[i].data != a.server_id; i += 2) {
            /* void */
        }
        FUZZ_CHECK(i < n);
    }

    /* what the handler sends */
    text = json_dumps(a.body, JSON_COMPACT);
    FUZZ_CHECK(text != NULL);
    free(text);

    json_decref(a.body);
    json_decref(a.server);
    free(fields);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    void         *reply;
    redisReader  *reader;

    reader = fuzz_resp_reader();
    if (reader == NULL) {
        return 0;
    }

    if (redisReaderFeed(reader, (const char *) data, size) == REDIS_OK) {
        for ( ;; ) {
            reply = NULL;

            if (redisReaderGetReply(reader, &reply) != REDIS_OK
                || reply == NULL)
            {
                break;
            }

            fuzz_answer(reply);
            freeReplyObject(reply);
        }
    }

    redisReaderFree(reader);

    return 0;
}
