
/*
 * A ticket's status answer from its record; see game_mm_ticket.h.
 */

#include <stdlib.h>
#include <string.h>

#include "game_mm_ticket.h"


int
game_mm_ticket_answer(const game_mm_name_t *id, const game_mm_name_t *fields,
    size_t n, int64_t now_ms, game_mm_ticket_answer_t *a)
{
    size_t                 i;
    int64_t                created;
    const char            *colon;
    const game_mm_name_t  *k, *v;

    a->body = json_object();
    a->server = json_object();
    a->server_id = NULL;

    if (a->body == NULL || a->server == NULL) {
        json_decref(a->body);
        json_decref(a->server);
        return -1;
    }

    json_object_set_new(a->body, "ticket_id", json_stringn(id->data, id->len));
    created = -1;

    for (i = 0; i + 1 < n; i += 2) {
        k = &fields[i];
        v = &fields[i + 1];

        if (strcmp(k->data, "status") == 0 || strcmp(k->data, "match") == 0) {
            json_object_set_new(a->body,
                                strcmp(k->data, "match") == 0
                                ? "match_id" : k->data,
                                json_stringn(v->data, v->len));

        } else if (strcmp(k->data, "reason") == 0 && v->len) {
            json_object_set_new(a->body, "reason",
                                json_stringn(v->data, v->len));

        } else if (strcmp(k->data, "team") == 0) {
            json_object_set_new(a->body, "team",
                                json_integer(strtoll(v->data, NULL, 10)));

        } else if (strcmp(k->data, "queue") == 0) {
            /* "mode:region" */
            colon = strchr(v->data, ':');
            if (colon) {
                json_object_set_new(a->body, "game_mode",
                                    json_stringn(v->data, colon - v->data));
                json_object_set_new(a->body, "region",
                                    json_string(colon + 1));
            }

        } else if (strcmp(k->data, "created") == 0) {
            created = strtoll(v->data, NULL, 10);

        } else if (strcmp(k->data, "server_id") == 0) {
            a->server_id = v->data;

        } else if (strcmp(k->data, "server_host") == 0) {
            json_object_set_new(a->server, "host",
                                json_stringn(v->data, v->len));

        } else if (strcmp(k->data, "server_port") == 0) {
            json_object_set_new(a->server, "port",
                                json_integer(strtoll(v->data, NULL, 10)));
        }
    }

    if (created >= 0) {
        json_object_set_new(a->body, "queued_for_ms",
                            json_integer((json_int_t) (now_ms - created)));
    }

    return 0;
}
