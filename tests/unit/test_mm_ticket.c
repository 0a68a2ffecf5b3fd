/*
 * Unit tests for the status answer read from a ticket's record
 * (ngx_modules/matchmaking/game_mm_ticket.c).
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "game_mm_ticket.h"


#define NAME(s)  { s, sizeof(s) - 1 }


static void
test_matched_ticket(void **state)
{
    game_mm_name_t           id = NAME("t-1");
    game_mm_name_t           f[] = {
        NAME("status"), NAME("matched"), NAME("queue"), NAME("duel:eu"),
        NAME("match"), NAME("m-1"), NAME("team"), NAME("2"),
        NAME("created"), NAME("1000"), NAME("players"), NAME("p1,p2"),
        NAME("server_id"), NAME("srv-1"), NAME("server_host"),
        NAME("10.0.0.5"), NAME("server_port"), NAME("7777")
    };
    game_mm_ticket_answer_t  a;

    assert_int_equal(game_mm_ticket_answer(&id, f, 18, 4500, &a), 0);

    assert_string_equal(json_string_value(json_object_get(a.body,
                                                          "ticket_id")), "t-1");
    assert_string_equal(json_string_value(json_object_get(a.body, "status")),
                        "matched");
    assert_string_equal(json_string_value(json_object_get(a.body,
                                                          "game_mode")),
                        "duel");
    assert_string_equal(json_string_value(json_object_get(a.body, "region")),
                        "eu");
    assert_string_equal(json_string_value(json_object_get(a.body,
                                                          "match_id")), "m-1");
    assert_int_equal(json_integer_value(json_object_get(a.body, "team")), 2);
    assert_int_equal(json_integer_value(json_object_get(a.body,
                                                        "queued_for_ms")),
                     3500);
    /* the roster is not the client's business */
    assert_null(json_object_get(a.body, "players"));

    assert_string_equal(a.server_id, "srv-1");
    assert_string_equal(json_string_value(json_object_get(a.server, "host")),
                        "10.0.0.5");
    assert_int_equal(json_integer_value(json_object_get(a.server, "port")),
                     7777);

    json_decref(a.body);
    json_decref(a.server);
}


static void
test_partial_record(void **state)
{
    game_mm_name_t           id = NAME("t-2");
    game_mm_name_t           f[] = {
        NAME("status"), NAME("failed"), NAME("reason"), NAME(""),
        NAME("queue"), NAME("no-colon"), NAME("dangling")
    };
    game_mm_ticket_answer_t  a;

    assert_int_equal(game_mm_ticket_answer(&id, f, 7, 0, &a), 0);

    /* an empty reason is none; a queue without "mode:region" says nothing;
     * no "created", no waiting time; a field without a value is ignored */
    assert_null(json_object_get(a.body, "reason"));
    assert_null(json_object_get(a.body, "game_mode"));
    assert_null(json_object_get(a.body, "queued_for_ms"));
    assert_int_equal(json_object_size(a.body), 2);
    assert_int_equal(json_object_size(a.server), 0);
    assert_null(a.server_id);

    json_decref(a.body);
    json_decref(a.server);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_matched_ticket),
        cmocka_unit_test(test_partial_record),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
