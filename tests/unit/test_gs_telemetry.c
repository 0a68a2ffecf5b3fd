/* test_gs_telemetry.c: what a game server reports to telemetry. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "gs_telemetry.h"


#define PLAYER  "0d6f1f2e-8a3c-4b5d-9e7f-001122334455"
#define MATCH   "7e0a9b1c-2d3e-4f50-8a6b-7c8d9e0f1a2b"


static gs_world_t *
world(void)
{
    static gs_world_t  w;
    gs_rules_t         r;

    gs_rules_default(&r, 30);
    gs_sim_init(&w, &r, 42, NULL, NULL);
    return &w;
}


static gs_input_t
input(uint32_t seq, int mx, int fire, int claim_x)
{
    /* protocol 2: every input carries the client's clock, here one tick
     * of 33 ms per input, as the arrival times below */
    gs_input_t  in = { .seq = seq, .move_x = (int16_t) mx,
                       .buttons = (uint8_t) (fire ? GS_BTN_FIRE : 0),
                       .claim_x = (int16_t) (claim_x * 64),
                       .claim_y = 50 * 64, .time_ms = seq * 33 };
    return in;
}


/* the events of "type" for "player" in "events" */
static json_t *
find(json_t *events, const char *type, size_t nth)
{
    size_t   i;
    json_t  *e;

    json_array_foreach(events, i, e) {
        if (strcmp(json_string_value(json_object_get(e, "type")), type) == 0
            && nth-- == 0)
        {
            return e;
        }
    }
    return NULL;
}


static void
test_ids_are_distinct_version_4_uuids(void **state)
{
    gs_tel_t     t;
    gs_world_t  *w = world();
    json_t      *events = json_array();
    const char  *a, *b;

    gs_tel_init(&t, 1);
    gs_sim_join(w, PLAYER);
    gs_tel_reset(&t, w, 0);
    assert_int_equal(gs_tel_match(&t, "match.start", MATCH, "dm", 1, NULL,
                                  NULL, 0, 1000, events), 1);
    assert_int_equal(gs_tel_sample(&t, w, MATCH, "dm", 1000, 2000, events),
                     1);

    a = json_string_value(json_object_get(json_array_get(events, 0),
                                          "event_id"));
    b = json_string_value(json_object_get(json_array_get(events, 1),
                                          "event_id"));
    assert_true(gs_tel_uuid_valid(a) && gs_tel_uuid_valid(b));
    assert_string_not_equal(a, b);
    assert_int_equal(a[14], '4');
    assert_true(strchr("89ab", a[19]) != NULL);
    assert_string_equal(json_string_value(json_object_get(
        json_array_get(events, 1), "session_id")), MATCH);

    json_decref(events);
    gs_tel_free(&t);
}


static void
test_a_sample_says_what_the_inputs_asked_for(void **state)
{
    int          s, i;
    gs_tel_t     t;
    gs_input_t   in;
    gs_world_t  *w = world();
    json_t      *events = json_array(), *pos, *combat, *flag;

    gs_tel_init(&t, 2);
    s = gs_sim_join(w, PLAYER);
    gs_tel_reset(&t, w, 0);

    /* five times the allowed move, and a trigger held down */
    for (i = 1; i <= 10; i++) {
        in = input((uint32_t) i, 5000, 1, 50);
        gs_validate_input(w, s, &in, 1000 + i * 33);
    }

    gs_tel_sample(&t, w, MATCH, "dm", 1000, 5000, events);

    pos = json_object_get(find(events, "position", 0), "payload");
    assert_non_null(pos);
    assert_float_equal(json_real_value(json_object_get(pos, "speed")),
                       5 * w->rules.speed, 0.01);
    assert_float_equal(json_real_value(json_object_get(pos, "claim_x")), 50,
                       0.01);
    combat = json_object_get(find(events, "combat", 0), "payload");
    assert_int_equal(json_integer_value(json_object_get(combat, "shots")),
                     10);
    assert_int_equal(json_integer_value(json_object_get(combat,
                                                        "window_ms")), 1000);
    flag = json_object_get(find(events, "anticheat.flag", 0), "payload");
    assert_string_equal(json_string_value(json_object_get(flag, "check")),
                        "speed");
    assert_int_equal(json_integer_value(json_object_get(flag, "count")), 10);

    /* a quiet second: the violations were told once, the window is new */
    json_array_clear(events);
    gs_tel_sample(&t, w, MATCH, "dm", 2000, 6000, events);
    assert_null(find(events, "anticheat.flag", 0));
    assert_null(find(events, "combat", 0));
    pos = json_object_get(find(events, "position", 0), "payload");
    assert_float_equal(json_real_value(json_object_get(pos, "speed")), 0,
                       0.01);
    assert_null(json_object_get(pos, "claim_x"));

    json_decref(events);
    gs_tel_free(&t);
}


static void
test_no_claim_across_a_respawn_and_nothing_of_unknown_players(void **state)
{
    int          s;
    gs_tel_t     t;
    gs_input_t   in;
    gs_world_t  *w = world();
    json_t      *events = json_array(), *pos;

    gs_tel_init(&t, 3);
    s = gs_sim_join(w, PLAYER);
    gs_sim_join(w, "m-p1");         /* a direct run's player: not ours */
    gs_tel_reset(&t, w, 0);

    in = input(1, 0, 0, 90);
    gs_validate_input(w, s, &in, 100);
    w->players[s].deaths++;         /* died and came back in the window */
    gs_tel_sample(&t, w, MATCH, "dm", 1000, 5000, events);

    assert_int_equal(json_array_size(events), 1);
    pos = json_object_get(find(events, "position", 0), "payload");
    assert_null(json_object_get(pos, "claim_x"));

    /* a whole life in the next window: the claim is told */
    json_array_clear(events);
    in = input(2, 0, 0, 90);
    gs_validate_input(w, s, &in, 1100);
    gs_tel_sample(&t, w, MATCH, "dm", 2000, 6000, events);
    pos = json_object_get(find(events, "position", 0), "payload");
    assert_float_equal(json_real_value(json_object_get(pos, "claim_x")), 90,
                       0.01);

    /* a match without a UUID is not the backend's: no match events */
    assert_int_equal(gs_tel_match(&t, "match.end", "m-direct", "dm", 0,
                                  "time", NULL, 1000, 7000, events), 0);

    json_decref(events);
    gs_tel_free(&t);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_ids_are_distinct_version_4_uuids),
        cmocka_unit_test(test_a_sample_says_what_the_inputs_asked_for),
        cmocka_unit_test(
            test_no_claim_across_a_respawn_and_nothing_of_unknown_players),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
