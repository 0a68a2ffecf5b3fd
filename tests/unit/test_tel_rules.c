/*
 * Unit tests for the anti-cheat rules
 * (ngx_modules/telemetry/game_tel_rules.c).
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "game_tel_rules.h"


static const game_tel_mode_t  modes[] = {
    { "dm", 12, 100, 100, 1, 8 },
    { "default", 20, 50, 50, 1, 5 },
};

static const game_tel_weapon_t  weapons[] = {
    { "rifle", 7 },
};


static game_tel_rules_t  rules = {
    modes, 2, weapons, 1,
    { 10, 10, 10, 20, 5 },
    0.9, 20, 3
};


static size_t
eval(const char *type, const char *payload, game_tel_hit_t *hits)
{
    size_t        n;
    json_t       *p;
    json_error_t  err;

    p = json_loads(payload, 0, &err);
    assert_non_null(p);
    n = game_tel_rules_eval(&rules, type, p, hits, 4);
    json_decref(p);
    return n;
}


static void
release(game_tel_hit_t *hits, size_t n)
{
    while (n--) {
        json_decref(hits[n].detail);
    }
}


static void
test_honest_play_fires_nothing(void **state)
{
    game_tel_hit_t  h[4];

    assert_int_equal(eval("position", "{\"mode\":\"dm\",\"x\":50,\"y\":50,"
                          "\"speed\":10,\"claim_x\":50.5,\"claim_y\":49.5}",
                          h), 0);
    assert_int_equal(eval("combat", "{\"weapon\":\"rifle\",\"shots\":4,"
                          "\"window_ms\":1000,\"match_shots\":40,"
                          "\"match_hits\":12}", h), 0);
    /* few shots say nothing of a ratio */
    assert_int_equal(eval("combat", "{\"weapon\":\"rifle\",\"shots\":1,"
                          "\"window_ms\":1000,\"match_shots\":5,"
                          "\"match_hits\":5}", h), 0);
    assert_int_equal(eval("kill", "{\"victim\":\"x\"}", h), 0);
    assert_int_equal(eval("position", "[]", h), 0);
}


static void
test_speed_beyond_the_mode(void **state)
{
    size_t          n;
    game_tel_hit_t  h[4];

    n = eval("position", "{\"mode\":\"dm\",\"x\":50,\"y\":50,\"speed\":50}",
             h);
    assert_int_equal(n, 1);
    assert_int_equal(h[0].rule, GAME_TEL_RULE_SPEED);
    assert_int_equal(h[0].points, 10);
    assert_true(json_real_value(json_object_get(h[0].detail, "speed")) == 50);
    release(h, n);

    /* an unknown mode falls back to "default" (max_speed 20) */
    assert_int_equal(eval("position", "{\"mode\":\"ctf\",\"speed\":15}", h),
                     0);
    n = eval("position", "{\"mode\":\"ctf\",\"speed\":21}", h);
    assert_int_equal(n, 1);
    release(h, n);
}


static void
test_teleport_out_of_arena_or_far_from_the_server(void **state)
{
    size_t          n;
    game_tel_hit_t  h[4];

    n = eval("position", "{\"mode\":\"dm\",\"x\":1,\"y\":99,\"speed\":10,"
             "\"claim_x\":-50,\"claim_y\":150}", h);
    assert_int_equal(n, 1);
    assert_int_equal(h[0].rule, GAME_TEL_RULE_TELEPORT);
    assert_string_equal(json_string_value(json_object_get(h[0].detail,
                                                          "why")),
                        "out_of_arena");
    release(h, n);

    /* within the margin of the edge: fine */
    assert_int_equal(eval("position", "{\"mode\":\"dm\",\"x\":0,\"y\":100,"
                          "\"claim_x\":-0.5,\"claim_y\":100.9}", h), 0);

    n = eval("position", "{\"mode\":\"dm\",\"x\":10,\"y\":10,"
             "\"claim_x\":30,\"claim_y\":10}", h);
    assert_int_equal(n, 1);
    assert_string_equal(json_string_value(json_object_get(h[0].detail,
                                                          "why")),
                        "far_from_server");
    release(h, n);

    /* both at once: speed and teleport */
    n = eval("position", "{\"mode\":\"dm\",\"x\":10,\"y\":10,\"speed\":99,"
             "\"claim_x\":30,\"claim_y\":10}", h);
    assert_int_equal(n, 2);
    release(h, n);
}


static void
test_fire_rate_and_hit_ratio(void **state)
{
    size_t          n;
    game_tel_hit_t  h[4];

    n = eval("combat", "{\"weapon\":\"rifle\",\"shots\":30,"
             "\"window_ms\":1000}", h);
    assert_int_equal(n, 1);
    assert_int_equal(h[0].rule, GAME_TEL_RULE_FIRE_RATE);
    release(h, n);

    /* 8 shots over 2 s is 4/s */
    assert_int_equal(eval("combat", "{\"weapon\":\"rifle\",\"shots\":8,"
                          "\"window_ms\":2000}", h), 0);
    /* an unknown weapon has no rate to break */
    assert_int_equal(eval("combat", "{\"weapon\":\"laser\",\"shots\":80,"
                          "\"window_ms\":1000}", h), 0);

    n = eval("combat", "{\"match_shots\":20,\"match_hits\":19}", h);
    assert_int_equal(n, 1);
    assert_int_equal(h[0].rule, GAME_TEL_RULE_HIT_RATIO);
    assert_int_equal(h[0].points, 20);
    release(h, n);

    /* more hits than shots is impossible at any count */
    n = eval("combat", "{\"match_shots\":2,\"match_hits\":3}", h);
    assert_int_equal(n, 1);
    release(h, n);
}


static void
test_server_flags_count_and_are_capped(void **state)
{
    size_t          n;
    game_tel_hit_t  h[4];

    n = eval("anticheat.flag", "{\"check\":\"speed\",\"count\":2}", h);
    assert_int_equal(n, 1);
    assert_int_equal(h[0].points, 10);
    release(h, n);

    n = eval("anticheat.flag", "{\"check\":\"speed\",\"count\":1000}", h);
    assert_int_equal(n, 1);
    assert_int_equal(h[0].points, 15);          /* 3 at most per event */
    release(h, n);

    assert_int_equal(eval("anticheat.flag", "{\"check\":\"speed\","
                          "\"count\":0}", h), 0);
    assert_int_equal(eval("anticheat.flag", "{\"count\":4}", h), 0);
}


static void
test_a_rule_with_no_points_is_off(void **state)
{
    game_tel_hit_t  h[4];

    rules.points[GAME_TEL_RULE_SPEED] = 0;
    assert_int_equal(eval("position", "{\"mode\":\"dm\",\"speed\":50}", h),
                     0);
    rules.points[GAME_TEL_RULE_SPEED] = 10;

    assert_int_equal(game_tel_rule_find("hit_ratio", 9),
                     GAME_TEL_RULE_HIT_RATIO);
    assert_int_equal(game_tel_rule_find("hit", 3), GAME_TEL_RULES);
    assert_string_equal(game_tel_rule_name(GAME_TEL_RULE_SERVER_FLAG),
                        "server_flag");
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_honest_play_fires_nothing),
        cmocka_unit_test(test_speed_beyond_the_mode),
        cmocka_unit_test(test_teleport_out_of_arena_or_far_from_the_server),
        cmocka_unit_test(test_fire_rate_and_hit_ratio),
        cmocka_unit_test(test_server_flags_count_and_are_capped),
        cmocka_unit_test(test_a_rule_with_no_points_is_off),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
