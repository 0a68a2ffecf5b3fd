/* test_gs_sim.c: the rules and the validation of inputs. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "gs_sim.h"


static int  events[8];

static void
on_event(void *data, const gs_event_t *e)
{
    events[e->kind]++;
}


static gs_world_t *
world(void)
{
    static gs_world_t  w;
    gs_rules_t         r;

    gs_rules_default(&r, 30);
    memset(events, 0, sizeof(events));
    gs_sim_init(&w, &r, 42, on_event, NULL);
    return &w;
}


static gs_input_t
input(uint32_t seq, int mx, int my, int fire)
{
    gs_input_t  in = { seq, (int16_t) mx, (int16_t) my, 0,
                       (uint8_t) (fire ? GS_BTN_FIRE : 0),
                       50 * 64, 50 * 64 };
    return in;
}


static void
test_speed_is_clamped_and_flagged(void **state)
{
    gs_world_t  *w = world();
    int          s = gs_sim_join(w, "p"), t;
    gs_input_t   in;
    float        x0;

    w->players[s].x = 50;
    w->players[s].y = 50;
    x0 = w->players[s].x;
    in = input(1, 5000, 0, 0);
    assert_int_equal(gs_validate_input(w, s, &in, 1000), GS_INPUT_APPLIED);
    for (t = 0; t < 30; t++) {
        gs_sim_step(w);
    }
    /* one second at the allowed 10 units/s, not 50 */
    assert_true(w->players[s].x - x0 > 9.9f && w->players[s].x - x0 < 10.1f);
    assert_int_equal(w->players[s].v.speed, 1);

    in = input(2, 600, 800, 0);     /* length exactly 1: fine */
    gs_validate_input(w, s, &in, 1040);
    assert_int_equal(w->players[s].v.speed, 1);
}


static void
test_walls_hold_and_claims_out_of_bounds_are_flagged(void **state)
{
    gs_world_t  *w = world();
    int          s = gs_sim_join(w, "p"), t;
    gs_input_t   in = input(1, -1000, 0, 0);

    gs_validate_input(w, s, &in, 0 + 1);
    for (t = 0; t < 400; t++) {
        gs_sim_step(w);
    }
    assert_true(w->players[s].x >= w->rules.radius);
    assert_int_equal(w->players[s].v.out_of_bounds, 0);

    in = input(2, 0, 0, 0);
    in.claim_x = -20 * 64;
    gs_validate_input(w, s, &in, 100);
    assert_int_equal(w->players[s].v.out_of_bounds, 1);
}


static void
test_fire_rate_limit(void **state)
{
    gs_world_t  *w = world();
    int          s = gs_sim_join(w, "p");
    gs_input_t   in;
    uint32_t     seq = 1;
    int64_t      t;

    /* fire on every input at 30 Hz for one second */
    for (t = 1000; t < 2000; t += 33) {
        in = input(seq++, 0, 0, 1);
        gs_validate_input(w, s, &in, t);
        gs_sim_step(w);
    }
    assert_true(w->players[s].shots <= 6);
    assert_true(w->players[s].v.fire_rate >= 12);
    assert_int_equal(w->players[s].flagged, 1);

    /* an honest rhythm earns nothing */
    w = world();
    s = gs_sim_join(w, "q");
    for (t = 1000, seq = 1; t < 3000; t += 230) {
        in = input(seq++, 0, 0, 1);
        gs_validate_input(w, s, &in, t);
        gs_sim_step(w);
    }
    assert_int_equal(w->players[s].v.fire_rate, 0);
    assert_int_equal(w->players[s].shots, 9);
}


static void
test_input_rate_limit_and_stale_inputs(void **state)
{
    gs_world_t  *w = world();
    int          s = gs_sim_join(w, "p"), i, limited = 0;
    gs_input_t   in;

    for (i = 1; i <= 500; i++) {    /* 500 inputs within 100 ms */
        in = input((uint32_t) i, 0, 0, 0);
        limited += gs_validate_input(w, s, &in, 1000 + i / 5)
                   == GS_INPUT_RATE_LIMITED;
    }
    assert_true(limited > 300);
    assert_int_equal(w->players[s].v.input_rate, limited);

    in = input(3, 0, 0, 0);         /* older than what was applied */
    assert_int_equal(gs_validate_input(w, s, &in, 5000), GS_INPUT_STALE);
}


static void
test_hitscan_kills_and_score_limit(void **state)
{
    gs_world_t  *w = world();
    int          a = gs_sim_join(w, "a"), b = gs_sim_join(w, "b"), k, end = 0;
    gs_input_t   in;

    w->rules.score_limit = 1;
    w->players[a].x = 10; w->players[a].y = 50;
    w->players[b].x = 30; w->players[b].y = 50.5f;
    for (k = 0; k < 4 && !end; k++) {   /* aim 0 = +x: four hits of 25 */
        in = input((uint32_t) k + 1, 0, 0, 1);
        gs_validate_input(w, a, &in, 1000 + k * 250);
        end = gs_sim_step(w);
    }
    assert_int_equal(end, 1);
    assert_int_equal(w->players[a].kills, 1);
    assert_int_equal(w->players[b].deaths, 1);
    assert_int_equal(w->players[b].alive, 0);
    assert_int_equal(events[GS_EV_DEATH], 1);
    assert_int_equal(gs_sim_leader(w), a);

    for (k = 0; k < 61; k++) {          /* respawn after 2 s */
        gs_sim_step(w);
    }
    assert_int_equal(w->players[b].alive, 1);
    assert_int_equal(w->players[b].health, 100);
}


/*
 * A burst of inputs that arrives within one tick: every one is simulated,
 * in order, at most GS_INPUTS_PER_TICK a tick; the player moves no faster
 * for it; the ack is the last input simulated; each shot flies with the
 * aim of the input that fired it.
 */
static void
test_inputs_are_simulated_in_order_and_bounded(void **state)
{
    gs_world_t  *w = world();
    int          a = gs_sim_join(w, "a"), b = gs_sim_join(w, "b"),
                 c = gs_sim_join(w, "c"), k;
    gs_input_t   in;
    float        x0;

    w->players[a].x = 50; w->players[a].y = 50;
    w->players[b].x = 60; w->players[b].y = 50;       /* aim 0: +x */
    w->players[c].x = 50; w->players[c].y = 60;       /* aim 16384: +y */
    x0 = w->players[a].x;

    for (k = 1; k <= 10; k++) {
        in = input((uint32_t) k, 1000, 0, 0);
        assert_int_equal(gs_validate_input(w, a, &in, 1000), GS_INPUT_APPLIED);
    }
    assert_int_equal(w->players[a].last_seq, 0);       /* nothing yet */

    gs_sim_step(w);
    assert_int_equal(w->players[a].last_seq, GS_INPUTS_PER_TICK);
    /* one tick's worth of movement, not ten inputs' worth */
    assert_true(w->players[a].x - x0 > 10.0f / 30 - 0.01f
                && w->players[a].x - x0 < 10.0f / 30 + 0.01f);
    gs_sim_step(w);
    gs_sim_step(w);
    assert_int_equal(w->players[a].last_seq, 10);
    assert_int_equal(w->players[a].inputs, 10);

    /* two shots in one tick, each with its own aim: b, then c */
    w->players[a].x = 50;
    in = input(11, 0, 0, 1);
    in.aim = 0;
    gs_validate_input(w, a, &in, 2000);
    in = input(12, 0, 0, 1);
    in.aim = 16384;
    gs_validate_input(w, a, &in, 2250);
    gs_sim_step(w);
    assert_int_equal(w->players[a].shots, 2);
    assert_int_equal(w->players[a].hits, 2);
    assert_int_equal(w->players[b].health, 75);
    assert_int_equal(w->players[c].health, 75);
    assert_int_equal(w->players[a].last_seq, 12);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_speed_is_clamped_and_flagged),
        cmocka_unit_test(test_walls_hold_and_claims_out_of_bounds_are_flagged),
        cmocka_unit_test(test_fire_rate_limit),
        cmocka_unit_test(test_input_rate_limit_and_stale_inputs),
        cmocka_unit_test(test_hitscan_kills_and_score_limit),
        cmocka_unit_test(test_inputs_are_simulated_in_order_and_bounded),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
