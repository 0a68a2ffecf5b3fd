/* test_gs_interest.c: what each client is sent, and how big it is. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "gs_interest.h"


#define RADIUS  (48 * 64)


/* 64 players on an 8 x 8 grid 12 units apart, all walking +x */
static void
world(gs_snapshot_t *s, uint32_t tick)
{
    int  i;

    memset(s, 0, sizeof(*s));
    s->tick = tick;
    s->count = GS_MAX_PLAYERS;
    for (i = 0; i < GS_MAX_PLAYERS; i++) {
        s->players[i].slot = (uint8_t) i;
        s->players[i].flags = GS_SNAP_ALIVE;
        s->players[i].x = (int16_t) ((5 + (i % 8) * 12) * 64 + tick * 21);
        s->players[i].y = (int16_t) ((5 + (i / 8) * 12) * 64);
        s->players[i].vx = 640;
        s->players[i].health = 100;
    }
}


static void
test_far_players_wait_their_turn_but_not_their_death(void **state)
{
    static gs_snapshot_t  base, full, out;
    const int             self = 0;       /* the corner (5, 5) */

    world(&base, 10);
    world(&full, 12);
    gs_interest_select(&full, &base, self, 1, RADIUS, &out);
    assert_int_equal(out.base_tick, 10);
    assert_int_equal(out.count, GS_MAX_PLAYERS);
    /* self and a neighbour are current; slot 63 (far, not its turn:
     * (1 + 63) % 4 == 0 is its turn, so take 62) keeps the base */
    assert_int_equal(out.players[0].x, full.players[0].x);
    assert_int_equal(out.players[1].x, full.players[1].x);
    assert_int_equal(out.players[62].x, base.players[62].x);
    assert_int_equal(out.players[63].x, full.players[63].x);

    /* a far player's death goes out at once */
    full.players[62].flags = 0;
    full.players[62].health = 0;
    gs_interest_select(&full, &base, self, 1, RADIUS, &out);
    assert_int_equal(out.players[62].flags, 0);
    assert_int_equal(out.players[62].x, full.players[62].x);

    /* no base: everything whole and current */
    gs_interest_select(&full, NULL, self, 1, RADIUS, &out);
    assert_int_equal(out.base_tick, 0);
    assert_memory_equal(out.players, full.players, sizeof(full.players));
}


/*
 * Steady play at 64 players, every one moving: each delta stays far below
 * the MTU, and a second's worth is a fraction of whole snapshots.
 */
static void
test_sixty_four_moving_players_stay_under_the_mtu(void **state)
{
    static gs_snapshot_t  held, full, out;
    uint8_t               buf[GS_SNAP_MAX];
    size_t                n, sum = 0, whole = 0;
    uint32_t              t;
    int                   self;

    for (self = 0; self < GS_MAX_PLAYERS; self += 9) {
        world(&held, 1);
        for (t = 2; t < 32; t++) {
            world(&full, t);
            gs_interest_select(&full, &held, self, t, RADIUS, &out);
            n = gs_proto_snapshot_encode(buf, sizeof(buf), &out, &held);
            assert_true(n > 0 && n <= GS_SNAP_MTU);
            sum += n;
            out.base_tick = 0;
            whole += gs_proto_snapshot_encode(buf, sizeof(buf), &out, NULL);
            held = out;         /* the client acknowledged it */
        }
    }
    assert_true(sum * 3 < whole);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_far_players_wait_their_turn_but_not_their_death),
        cmocka_unit_test(test_sixty_four_moving_players_stay_under_the_mtu),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
