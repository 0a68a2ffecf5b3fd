
/*
 * A ticket's record, as ticket.lua returns it, turned into the status
 * answer's JSON, without nginx: the handler (ngx_game_mm_api.c) adds what
 * needs the request (the server and a connection ticket while the match
 * is on), and the unit tests (tests/unit/test_mm_ticket.c) and the fuzz
 * harness (tests/fuzz/fuzz_mm_reply.c) run the very same reading.
 */

#ifndef _GAME_MM_TICKET_H_INCLUDED_
#define _GAME_MM_TICKET_H_INCLUDED_


#include <stdint.h>
#include <jansson.h>

#include "game_mm_join.h"       /* game_mm_name_t */


typedef struct {
    json_t      *body;          /* ticket_id, status, reason, game_mode,
                                   region, match_id, team, queued_for_ms */
    json_t      *server;        /* {host, port}, as far as the record says */
    const char  *server_id;     /* in the record, or NULL */
} game_mm_ticket_answer_t;


/*
 * "fields" are the record's n strings, field, value, field, value...,
 * each NUL-terminated (as hiredis keeps them); "now_ms" is the wall clock.
 * 0 with the answer (the caller decrefs body and server), -1 when out of
 * memory.
 */
int game_mm_ticket_answer(const game_mm_name_t *id,
    const game_mm_name_t *fields, size_t n, int64_t now_ms,
    game_mm_ticket_answer_t *a);


#endif /* _GAME_MM_TICKET_H_INCLUDED_ */
