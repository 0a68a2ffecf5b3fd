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


/* an input sent at the client's time t_ms (33 ms per seq by default) */
static gs_input_t
input_at(uint32_t seq, int mx, int my, int fire, uint32_t t_ms)
{
    gs_input_t  in = { seq, (int16_t) mx, (int16_t) my, 0,
                       (uint8_t) (fire ? GS_BTN_FIRE : 0),
                       50 * 64, 50 * 64, t_ms, 0, 0 };
    return in;
}


static gs_input_t
input(uint32_t seq, int mx, int my, int fire)
{
    return input_at(seq, mx, my, fire, 1000 + seq * 33);
}


static void
test_speed_is_clamped_and_flagged(void **state)
{
    gs_world_t  *w = world();
    int          s = gs_sim_join(w, "p"), k;
    gs_input_t   in;
    float        x0;

    w->players[s].x = 50;
    w->players[s].y = 50;
    x0 = w->players[s].x;
    /* one second of inputs, 33 ms apart, each five times too long */
    for (k = 0; k <= 30; k++) {
        in = input_at((uint32_t) k + 1, 5000, 0, 0, 1000 + k * 33);
        assert_int_equal(gs_validate_input(w, s, &in, 1000 + k * 33),
                         GS_INPUT_APPLIED);
        gs_sim_step(w);
    }
    /* 990 ms of input time at the allowed 10 units/s, not 50 */
    assert_true(w->players[s].x - x0 > 9.8f && w->players[s].x - x0 < 10.0f);
    assert_int_equal(w->players[s].v.speed, 31);

    in = input_at(40, 600, 800, 0, 2100);   /* length exactly 1: fine */
    gs_validate_input(w, s, &in, 2100);
    assert_int_equal(w->players[s].v.speed, 31);
}


static void
test_walls_hold_and_claims_out_of_bounds_are_flagged(void **state)
{
    gs_world_t  *w = world();
    int          s = gs_sim_join(w, "p"), t;
    gs_input_t   in;

    for (t = 0; t < 400; t++) {
        in = input_at((uint32_t) t + 1, -1000, 0, 0, (uint32_t) t * 33);
        gs_validate_input(w, s, &in, t * 33);
        gs_sim_step(w);
    }
    assert_true(w->players[s].x >= w->rules.radius);
    assert_int_equal(w->players[s].v.out_of_bounds, 0);

    in = input_at(401, 0, 0, 0, 400 * 33);
    in.claim_x = -20 * 64;
    gs_validate_input(w, s, &in, 400 * 33);
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
        in = input_at(seq++, 0, 0, 1, (uint32_t) t);
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
        in = input_at(seq++, 0, 0, 1, (uint32_t) t);
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
        in = input_at((uint32_t) k + 1, 0, 0, 1, 1000 + k * 250);
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
 * A burst of inputs that arrives within one tick (they were sent 33 ms
 * apart and held up on the way): every one is simulated, in order, at
 * most GS_INPUTS_PER_TICK a tick; each moves the player for its own 33 ms,
 * so the burst moves it exactly as far as the client predicted, no
 * further; the ack is the last input simulated; each shot flies with the
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

    in = input_at(1, 0, 0, 0, 1000);            /* anchors the clock */
    gs_validate_input(w, a, &in, 1000);
    gs_sim_step(w);
    x0 = w->players[a].x;

    for (k = 2; k <= 11; k++) {                 /* sent over 330 ms */
        in = input_at((uint32_t) k, 1000, 0, 0, 1000 + (k - 1) * 33);
        assert_int_equal(gs_validate_input(w, a, &in, 1400), GS_INPUT_APPLIED);
    }
    assert_int_equal(w->players[a].last_seq, 1);       /* nothing yet */

    gs_sim_step(w);
    assert_int_equal(w->players[a].last_seq, 1 + GS_INPUTS_PER_TICK);
    assert_true(w->players[a].x - x0 > 4 * 0.33f - 0.01f
                && w->players[a].x - x0 < 4 * 0.33f + 0.01f);
    gs_sim_step(w);
    gs_sim_step(w);
    assert_int_equal(w->players[a].last_seq, 11);
    assert_int_equal(w->players[a].inputs, 11);
    /* ten inputs of 33 ms at 10 units/s */
    assert_true(w->players[a].x - x0 > 3.29f && w->players[a].x - x0 < 3.31f);
    assert_int_equal(w->players[a].v.speed, 0);

    /* two shots in one tick, each with its own aim: b, then c */
    w->players[a].x = 50;
    in = input_at(12, 0, 0, 1, 1400);
    in.aim = 0;
    gs_validate_input(w, a, &in, 2000);
    in = input_at(13, 0, 0, 1, 1650);
    in.aim = 16384;
    gs_validate_input(w, a, &in, 2000);
    gs_sim_step(w);
    assert_int_equal(w->players[a].shots, 2);
    assert_int_equal(w->players[a].hits, 2);
    assert_int_equal(w->players[b].health, 75);
    assert_int_equal(w->players[c].health, 75);
    assert_int_equal(w->players[a].last_seq, 13);
}


/*
 * An honest player fires every 231 ms by its own clock; the network
 * holds its inputs back and delivers them in bunches, so two shots can
 * arrive 0 ms apart.  Measured on input time nothing is early: no
 * violation, every shot fired.
 */
static void
test_jitter_does_not_flag_honest_fire(void **state)
{
    gs_world_t  *w = world();
    int          s = gs_sim_join(w, "p"), k, fired = 0;
    gs_input_t   in;
    uint32_t     t;
    int64_t      arrive;

    for (k = 0; k < 90; k++) {
        t = 1000 + (uint32_t) k * 33;
        in = input_at((uint32_t) k + 1, 1000, 0, k % 7 == 0, t);
        fired += k % 7 == 0;
        /* delivered in bunches of up to 8, all at the last one's time */
        arrive = 1000 + ((k / 8) * 8 + 7) * 33 + (k % 3) * 5;
        gs_validate_input(w, s, &in, arrive);
        if (k % 8 == 7) {
            gs_sim_step(w);
            gs_sim_step(w);
        }
    }
    for (k = 0; k < 8; k++) {
        gs_sim_step(w);
    }
    assert_int_equal(w->players[s].v.fire_rate, 0);
    assert_int_equal(w->players[s].v.speed, 0);
    assert_int_equal(w->players[s].flagged, 0);
    assert_int_equal(w->players[s].shots, fired);
}


/*
 * A client whose clock runs twice as fast as real time: it sends every
 * 33 ms but stamps its inputs 66 ms apart, and fires every third input
 * (198 ms by its clock, 99 ms really).  It gets real time plus the slack,
 * never twice the distance, and its shots, once the slack is spent, are
 * measured on real time: flagged.
 */
static void
test_fast_clock_gains_nothing(void **state)
{
    gs_world_t  *w = world();
    int          s = gs_sim_join(w, "p"), k;
    gs_input_t   in;
    float        x0;

    w->players[s].x = 5;
    w->players[s].y = 50;
    x0 = w->players[s].x;
    for (k = 0; k <= 60; k++) {         /* two seconds of real time */
        in = input_at((uint32_t) k + 1, 1000, 0, k % 3 == 0,
                      1000 + (uint32_t) k * 66);
        gs_validate_input(w, s, &in, 1000 + k * 33);
        gs_sim_step(w);
    }
    /* 1.98 s real + 0.25 s slack at 10 units/s */
    assert_true(w->players[s].x - x0 < 22.4f);
    assert_true(w->players[s].v.speed >= 10);
    assert_true(w->players[s].v.fire_rate >= 5);
    assert_int_equal(w->players[s].flagged, 1);
}


/*
 * Lag compensation.  b walks away along +y; a, at (10, 50), shoots along
 * +x where b was when a's snapshot was taken.  Traced against that tick:
 * a hit.  The same shot claiming the present misses, and one claiming a
 * tick older than the window is traced at the window's edge, where b had
 * already left the line: a miss, counted as clamped.
 */
static void
test_lag_compensation_traces_what_the_shooter_saw(void **state)
{
    gs_world_t  *w = world();
    int          a = gs_sim_join(w, "a"), b = gs_sim_join(w, "b"), k;
    uint32_t     seen = 0, old = 0, seq = 1;
    gs_input_t   in;

    w->players[a].x = 10; w->players[a].y = 50;
    w->players[b].x = 30; w->players[b].y = 44;
    /* b steps +y 0.5 a tick: on a's line (|dy| <= 1) only near y = 50 */
    for (k = 0; k < 16; k++) {
        w->players[b].y += 0.5f;
        gs_sim_step(w);
        if (k == 11) {
            seen = w->tick;                     /* b at y = 50 */
        }
        if (k == 1) {
            old = w->tick;                      /* b at y = 45 */
        }
    }
    assert_true(w->players[b].y > 51.5f);

    in = input_at(seq++, 0, 0, 1, 1000);        /* the present */
    gs_validate_input(w, a, &in, 1000);
    gs_sim_step(w);
    assert_int_equal(w->players[a].hits, 0);

    in = input_at(seq++, 0, 0, 1, 1300);        /* what a saw */
    in.view_tick = seen;
    gs_validate_input(w, a, &in, 1300);
    gs_sim_step(w);
    assert_int_equal(w->players[a].hits, 1);
    assert_int_equal(w->players[b].health, 75);
    assert_int_equal(w->players[a].rewinds, 1);

    /* 200 ms at 30 Hz is 6 ticks; 'old' is further back than that, and
     * the window's edge finds b off the line */
    for (k = 0; k < 6; k++) {
        w->players[b].y += 0.5f;
        gs_sim_step(w);
    }
    in = input_at(seq++, 0, 0, 1, 1600);
    in.view_tick = old;
    gs_validate_input(w, a, &in, 1600);
    gs_sim_step(w);
    assert_int_equal(w->players[a].hits, 1);
    assert_int_equal(w->players[a].rewinds_clamped, 1);
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
        cmocka_unit_test(test_jitter_does_not_flag_honest_fire),
        cmocka_unit_test(test_fast_clock_gains_nothing),
        cmocka_unit_test(test_lag_compensation_traces_what_the_shooter_saw),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
