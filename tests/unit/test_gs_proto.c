/* test_gs_proto.c: the wire format round-trips and refuses bad framing. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "protocol.h"


static void
test_input_round_trip_and_truncation(void **state)
{
    gs_input_t  in = { 77, -1000, 500, 12345, GS_BTN_FIRE, 640, -64,
                       4000000123u, 901, 899 }, out;
    uint8_t     buf[64];
    size_t      n, k;

    n = gs_proto_input_encode(buf, sizeof(buf), &in);
    assert_int_equal(n, GS_INPUT_SIZE);
    assert_int_equal(gs_proto_input_decode(buf, n, &out), 0);
    assert_int_equal(out.seq, 77);
    assert_int_equal(out.move_x, -1000);
    assert_int_equal(out.move_y, 500);
    assert_int_equal(out.aim, 12345);
    assert_int_equal(out.buttons, GS_BTN_FIRE);
    assert_int_equal(out.claim_x, 640);
    assert_int_equal(out.claim_y, -64);
    assert_int_equal(out.time_ms, 4000000123u);
    assert_int_equal(out.ack_tick, 901);
    assert_int_equal(out.view_tick, 899);

    for (k = 0; k < n; k++) {       /* every truncation is refused */
        assert_int_equal(gs_proto_input_decode(buf, k, &out), -1);
    }
    assert_int_equal(gs_proto_input_decode(buf, n + 1, &out), -1);

    buf[11] = 0x80;                 /* unknown button */
    assert_int_equal(gs_proto_input_decode(buf, n, &out), -1);
    buf[11] = 0;
    memset(buf + 1, 0, 4);          /* seq 0 */
    assert_int_equal(gs_proto_input_decode(buf, n, &out), -1);
    buf[0] = GS_MSG_HELLO;
    assert_int_equal(gs_proto_input_decode(buf, n, &out), -1);
}


static void
test_hello_checks_length_and_alphabet(void **state)
{
    uint8_t     buf[GS_HELLO_HDR + GS_TICKET_MAX + 8];
    gs_hello_t  h;
    size_t      n;

    n = gs_proto_hello_encode(buf, sizeof(buf), "a.b.c", 5);
    assert_int_equal(n, 9);
    assert_int_equal(gs_proto_hello_decode(buf, n, &h), 0);
    assert_int_equal(h.ticket_len, 5);
    assert_memory_equal(h.ticket, "a.b.c", 5);

    assert_int_equal(gs_proto_hello_decode(buf, n - 1, &h), -1);
    buf[5] = '\n';
    assert_int_equal(gs_proto_hello_decode(buf, n, &h), -1);
    buf[2] = 0xff; buf[3] = 0xff;   /* length beyond the packet */
    assert_int_equal(gs_proto_hello_decode(buf, n, &h), -1);
    assert_int_equal(gs_proto_hello_encode(buf, sizeof(buf), "x",
                                           GS_TICKET_MAX + 1), 0);
}


static void
fill(gs_snapshot_t *s, uint32_t tick)
{
    int  i;

    memset(s, 0, sizeof(*s));
    s->tick = tick;
    s->ack_seq = 1;
    s->time_left_ds = 300;
    s->count = GS_MAX_PLAYERS;
    for (i = 0; i < GS_MAX_PLAYERS; i++) {
        s->players[i].slot = (uint8_t) i;
        s->players[i].flags = GS_SNAP_ALIVE;
        s->players[i].x = (int16_t) (i * 100 - 3000);
        s->players[i].y = (int16_t) (i * 50);
        s->players[i].vx = 640;
        s->players[i].aim = (uint16_t) (i * 1000);
        s->players[i].score = (int16_t) -i;
        s->players[i].health = 100;
    }
}


static void
test_snapshot_whole_round_trip(void **state)
{
    static gs_snapshot_t  s, d;
    uint8_t               buf[GS_SNAP_MAX];
    size_t                n;

    fill(&s, 9);
    s.ack_seq = 4242;
    n = gs_proto_snapshot_encode(buf, sizeof(buf), &s, NULL);
    assert_int_equal(n, GS_SNAP_MAX);
    assert_true(n <= GS_SNAP_MTU);  /* 64 players whole: one datagram */
    assert_int_equal(gs_proto_snapshot_decode(buf, n, NULL, &d), 0);
    assert_int_equal(d.ack_seq, 4242);
    assert_int_equal(d.count, GS_MAX_PLAYERS);
    assert_memory_equal(d.players, s.players, sizeof(s.players));

    assert_int_equal(gs_proto_snapshot_decode(buf, n - 1, NULL, &d), -1);
    assert_int_equal(gs_proto_snapshot_decode(buf, n + 0, &s, &d), -1);
    buf[15] = GS_MAX_PLAYERS + 1;   /* count beyond the limit */
    assert_int_equal(gs_proto_snapshot_decode(buf, n, NULL, &d), -1);
}


/*
 * Against a base: 64 players, 8 of them moved, one left, one joined.
 * The delta carries only those and decodes to exactly the new snapshot;
 * decoding against any other base fails.
 */
static void
test_snapshot_delta_against_base(void **state)
{
    static gs_snapshot_t  base, s, d, other;
    uint8_t               buf[GS_SNAP_MAX];
    size_t                n;
    uint32_t              bt;
    int                   i;

    fill(&base, 100);
    base.count = GS_MAX_PLAYERS - 1;            /* slot 63 absent */
    fill(&s, 104);
    memmove(&s.players[10], &s.players[11],     /* slot 10 left */
            (GS_MAX_PLAYERS - 11) * sizeof(s.players[0]));
    s.count = GS_MAX_PLAYERS - 1;               /* slot 63 joined */
    for (i = 20; i < 28; i++) {
        s.players[i].x += 7;
        s.players[i].y -= 3;
    }
    s.base_tick = 100;

    n = gs_proto_snapshot_encode(buf, sizeof(buf), &s, &base);
    /* header, 8 x (2 + x + y), a leave (2), a whole join (17) */
    assert_int_equal(n, GS_SNAP_HDR + 8 * 6 + 2 + GS_SNAP_PLAYER);
    assert_int_equal(gs_proto_snapshot_base(buf, n, &bt), 0);
    assert_int_equal(bt, 100);
    assert_int_equal(gs_proto_snapshot_decode(buf, n, &base, &d), 0);
    assert_int_equal(d.tick, 104);
    assert_int_equal(d.count, s.count);
    assert_memory_equal(d.players, s.players, s.count * sizeof(s.players[0]));

    other = base;
    other.tick = 99;
    assert_int_equal(gs_proto_snapshot_decode(buf, n, &other, &d), -1);
    assert_int_equal(gs_proto_snapshot_decode(buf, n, NULL, &d), -1);
    buf[GS_SNAP_HDR] = GS_MAX_PLAYERS;          /* a slot out of range */
    assert_int_equal(gs_proto_snapshot_decode(buf, n, &base, &d), -1);

    /* nothing changed: a header and no entries */
    s = base;
    s.tick = 105;
    s.base_tick = 100;
    assert_int_equal(gs_proto_snapshot_encode(buf, sizeof(buf), &s, &base),
                     GS_SNAP_HDR);
}


static void
test_event_and_welcome(void **state)
{
    gs_event_t    e = { GS_EV_DEATH, 1234, 3, 4 }, e2;
    gs_welcome_t  w = { 1, 2, 16, 30, 30, 200, 100, 100, 120, 20, 10 }, w2;
    uint8_t       buf[32];

    assert_int_equal(gs_proto_event_encode(buf, sizeof(buf), &e),
                     GS_EVENT_SIZE);
    assert_int_equal(gs_proto_event_decode(buf, GS_EVENT_SIZE, &e2), 0);
    assert_int_equal(e2.tick, 1234);
    buf[1] = 99;
    assert_int_equal(gs_proto_event_decode(buf, GS_EVENT_SIZE, &e2), -1);

    assert_int_equal(gs_proto_welcome_encode(buf, sizeof(buf), &w),
                     GS_WELCOME_SIZE);
    assert_int_equal(gs_proto_welcome_decode(buf, GS_WELCOME_SIZE, &w2), 0);
    assert_int_equal(w2.slot, 2);
    assert_int_equal(w2.max_players, 16);
    assert_int_equal(w2.fire_interval_ms, 200);
    assert_int_equal(w2.score_limit, 20);
    assert_int_equal(w2.speed, 10);
    buf[2] = 16;                    /* slot >= max_players */
    assert_int_equal(gs_proto_welcome_decode(buf, GS_WELCOME_SIZE, &w2), -1);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_input_round_trip_and_truncation),
        cmocka_unit_test(test_hello_checks_length_and_alphabet),
        cmocka_unit_test(test_snapshot_whole_round_trip),
        cmocka_unit_test(test_snapshot_delta_against_base),
        cmocka_unit_test(test_event_and_welcome),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
