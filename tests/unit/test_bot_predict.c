/*
 * test_bot_predict.c: game-bot's prediction is the server's arithmetic.
 *
 * The same inputs go to the server's validation and simulation (as the
 * network would deliver them) and to the bot's prediction (as it sent
 * them); snapshots taken from the world go back to the bot.  With every
 * input delivered the bot never has to correct itself, whatever the
 * arrival pattern; an input lost on the way costs a correction, and the
 * bot then holds the server's position plus its unacknowledged inputs.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "bot.h"
#include "gs_sim.h"


static gs_world_t  w;
static bot_t       b;


static int
setup(void)
{
    gs_rules_t  r;
    int         s;

    gs_rules_default(&r, 30);
    gs_sim_init(&w, &r, 7, NULL, NULL);
    s = gs_sim_join(&w, "p");
    w.players[s].x = 20;                /* on the 1/64 grid: no rounding */
    w.players[s].y = 50;

    memset(&b, 0, sizeof(b));
    b.slot = s;
    b.rules.speed = 10;
    b.rules.arena_w = 100;
    b.rules.arena_h = 100;
    return s;
}


static void
snapshot_to_bot(void)
{
    static gs_snapshot_t  snap;

    gs_sim_snapshot(&w, -1, 1000, &snap);
    snap.ack_seq = w.players[b.slot].last_seq;
    bot_predict_snapshot(&b, &snap);
}


static gs_input_t
input(uint32_t seq, uint32_t t)
{
    gs_input_t  in;

    memset(&in, 0, sizeof(in));
    in.seq = seq;
    in.time_ms = t;
    /* a new heading every 7 inputs, towards the far wall and back */
    in.move_x = (int16_t) ((seq / 7) % 2 ? -800 : 800);
    in.move_y = (int16_t) ((seq / 7) % 3 == 1 ? 600 : 0);
    in.claim_x = 50 * 64;
    in.claim_y = 50 * 64;
    return in;
}


static void
test_delivered_inputs_need_no_correction(void **state)
{
    int          s = setup(), k;
    gs_input_t   in;
    uint32_t     t;

    snapshot_to_bot();                  /* where the bot starts */
    for (k = 1; k <= 200; k++) {
        t = 1000 + (uint32_t) k * 33 + (uint32_t) (k % 5) * 3;
        in = input((uint32_t) k, t);
        bot_predict_input(&b, &in);
        /* delivered in bunches of three, 60 ms late */
        gs_validate_input(&w, s, &in, t + 60 + (k % 3 == 0 ? 0 : 40));
        if (k % 2 == 0) {
            gs_sim_step(&w);
        }
        if (k % 3 == 0) {
            snapshot_to_bot();
        }
    }
    assert_true(b.predict.checks > 50);
    assert_int_equal(b.predict.corrections, 0);
    /* snapshots truncate to 1/64 per axis and the bot replays from there:
     * what is left is that rounding, twice at most */
    assert_true(b.predict.err_max < 2 * 1.4143 / 64);
    assert_int_equal(w.players[s].v.speed, 0);
}


static void
test_a_lost_input_is_corrected(void **state)
{
    int          s = setup(), k;
    gs_input_t   in;
    uint32_t     t;
    float        x;

    snapshot_to_bot();
    for (k = 1; k <= 20; k++) {
        t = 1000 + (uint32_t) k * 33;
        in = input((uint32_t) k, t);
        if (k == 7) {
            in.move_x = 0;              /* the bot stopped for one input */
            in.move_y = -1000;
        }
        bot_predict_input(&b, &in);
        if (k != 7) {                   /* ...and that input was lost */
            gs_validate_input(&w, s, &in, t + 50);
        }
        gs_sim_step(&w);
        if (k == 10) {
            snapshot_to_bot();
        }
    }
    assert_int_equal(b.predict.corrections, 1);

    /* reconciled: the server's position, and the inputs it has not
     * simulated replayed on top, as the server will simulate them */
    for (k = 0; k < 4; k++) {
        gs_sim_step(&w);
    }
    x = b.predict.x;
    snapshot_to_bot();
    assert_int_equal(b.predict.corrections, 1);
    assert_true(b.predict.x - x < 2.0f / 64 && x - b.predict.x < 2.0f / 64);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_delivered_inputs_need_no_correction),
        cmocka_unit_test(test_a_lost_input_is_corrected),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
