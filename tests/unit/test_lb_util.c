/*
 * The leaderboards' pure logic (ngx_modules/leaderboard/game_lb_util.c):
 * members sort like the board, both ways, and parse back; names, regions,
 * seasons and sources are checked as nginx -t and requests need.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "game_lb_util.h"


static const char  *ids[] = {
    "00000000-0000-0000-0000-000000000001",
    "0000000a-0000-0000-0000-000000000000",
    "ffffffff-ffff-ffff-ffff-ffffffffffff",
};


static void
member(char *out, int desc, int64_t score, int64_t sub, uint64_t ms,
    const char *id)
{
    game_lb_entry_t  e;

    e.score = score;
    e.subscore = sub;
    e.reached_ms = ms;
    strcpy(e.player, id);

    assert_int_equal(game_lb_member(out, desc, &e), 0);
    out[GAME_LB_MEMBER_LEN] = '\0';
}


/* "a" sorts before "b" by bytes, as Redis sorts members of score 0 */
static void
before(const char *a, const char *b)
{
    assert_true(memcmp(a, b, GAME_LB_MEMBER_LEN) < 0);
}


static void
test_desc_board_order(void **state)
{
    char  a[81], b[81];

    /* higher score first, negative scores after positive ones */
    member(a, 1, 10, 0, 5, ids[0]);
    member(b, 1, 9, 0, 1, ids[0]);
    before(a, b);
    member(a, 1, 0, 0, 1, ids[0]);
    member(b, 1, -1, 0, 1, ids[0]);
    before(a, b);
    member(a, 1, INT64_MAX, 0, 1, ids[0]);
    member(b, 1, INT64_MIN, 0, 1, ids[0]);
    before(a, b);

    /* same score: higher subscore first (the tuple) */
    member(a, 1, 7, -1, 9, ids[2]);
    member(b, 1, 7, -2, 1, ids[0]);
    before(a, b);

    /* same tuple: earlier first, then the lower id */
    member(a, 1, 7, 0, 100, ids[2]);
    member(b, 1, 7, 0, 101, ids[0]);
    before(a, b);
    member(a, 1, 7, 0, 100, ids[0]);
    member(b, 1, 7, 0, 100, ids[1]);
    before(a, b);
}


static void
test_asc_board_order(void **state)
{
    char  a[81], b[81];

    member(a, 0, -5, 0, 5, ids[0]);
    member(b, 0, 3, 0, 1, ids[0]);
    before(a, b);
    member(a, 0, 3, -9, 5, ids[2]);
    member(b, 0, 3, 1, 1, ids[0]);
    before(a, b);
    /* the time and the id never flip */
    member(a, 0, 3, 1, 1, ids[2]);
    member(b, 0, 3, 1, 2, ids[0]);
    before(a, b);
}


static void
test_members_parse_back(void **state)
{
    int              desc;
    char             m[81];
    game_lb_entry_t  e;
    int64_t          values[] = { 0, 1, -1, 1234567890123LL, INT64_MAX,
                                  INT64_MIN };
    size_t           i;

    for (desc = 0; desc < 2; desc++) {
        for (i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
            member(m, desc, values[i], -values[i] / 2, 1795971323016ULL,
                   ids[i % 3]);
            assert_int_equal(game_lb_member_parse(m, 80, desc, &e), 0);
            assert_true(e.score == values[i]);
            assert_true(e.subscore == -values[i] / 2);
            assert_true(e.reached_ms == 1795971323016ULL);
            assert_string_equal(e.player, ids[i % 3]);
        }
    }

    /* upper case ids are written in lower case */
    member(m, 1, 1, 1, 1, "ABCDEF00-0000-0000-0000-00000000000A");
    assert_int_equal(game_lb_member_parse(m, 80, 1, &e), 0);
    assert_string_equal(e.player, "abcdef00-0000-0000-0000-00000000000a");
}


static void
test_bad_members_are_refused(void **state)
{
    char             m[81];
    game_lb_entry_t  e;

    member(m, 1, 5, 5, 5, ids[0]);
    assert_int_equal(game_lb_member_parse(m, 79, 1, &e), -1);
    m[3] = 'g';
    assert_int_equal(game_lb_member_parse(m, 80, 1, &e), -1);
    member(m, 1, 5, 5, 5, ids[0]);
    m[40] = 'A';                       /* hex digits are lower case */
    assert_int_equal(game_lb_member_parse(m, 80, 1, &e), -1);
    member(m, 1, 5, 5, 5, ids[0]);
    m[52] = 'x';                       /* the id's dash */
    assert_int_equal(game_lb_member_parse(m, 80, 1, &e), -1);
    member(m, 1, 5, 5, 5, ids[0]);
    m[79] = 'F';                       /* ids are lower case */
    assert_int_equal(game_lb_member_parse(m, 80, 1, &e), -1);

    e.score = 1;
    e.subscore = 1;
    e.reached_ms = 1ULL << 48;         /* past the 12 digits */
    strcpy(e.player, ids[0]);
    assert_int_equal(game_lb_member(m, 1, &e), -1);
    e.reached_ms = 1;
    strcpy(e.player, "not-a-uuid");
    assert_int_equal(game_lb_member(m, 1, &e), -1);
}


static void
test_names_regions_seasons(void **state)
{
    assert_true(game_lb_name_valid("rating_duel", 11));
    assert_true(game_lb_name_valid("k", 1));
    assert_false(game_lb_name_valid("", 0));
    assert_false(game_lb_name_valid("_x", 2));
    assert_false(game_lb_name_valid("Kills", 5));
    assert_false(game_lb_name_valid("a:b", 3));
    assert_false(game_lb_name_valid("a-b", 3));
    assert_false(game_lb_name_valid("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 33));

    assert_true(game_lb_region_valid("eu-west_1", 9));
    assert_false(game_lb_region_valid("-eu", 3));
    assert_false(game_lb_region_valid("eu west", 7));
    assert_false(game_lb_region_valid("*", 1));

    assert_true(game_lb_season_valid("2026-w48", 8));
    assert_true(game_lb_season_valid("previous", 8));
    assert_true(game_lb_season_valid("all", 3));
    assert_false(game_lb_season_valid("../x", 4));
    assert_false(game_lb_season_valid("2026_11", 7));

    assert_true(game_lb_uuid_valid(ids[2], 36));
    assert_false(game_lb_uuid_valid(ids[2], 35));
    assert_false(game_lb_uuid_valid("0000000000000-0000-0000-000000000000",
                                    36));
}


static void
test_sources(void **state)
{
    size_t  off, len;

    assert_int_equal(game_lb_source_parse("kills", 5, &off, &len),
                     GAME_LB_SOURCE_KILLS);
    assert_int_equal(len, 0);
    assert_int_equal(game_lb_source_parse("wins:duel", 9, &off, &len),
                     GAME_LB_SOURCE_WINS);
    assert_int_equal(off, 5);
    assert_int_equal(len, 4);
    assert_int_equal(game_lb_source_parse("rating:squad", 12, &off, &len),
                     GAME_LB_SOURCE_RATING);
    assert_int_equal(game_lb_source_parse("score:dm", 8, &off, &len),
                     GAME_LB_SOURCE_SCORE);
    assert_int_equal(game_lb_source_parse("matches", 7, &off, &len),
                     GAME_LB_SOURCE_MATCHES);

    assert_int_equal(game_lb_source_parse("rating", 6, &off, &len),
                     GAME_LB_SOURCE_BAD);
    assert_int_equal(game_lb_source_parse("deaths", 6, &off, &len),
                     GAME_LB_SOURCE_BAD);
    assert_int_equal(game_lb_source_parse("kills:", 6, &off, &len),
                     GAME_LB_SOURCE_BAD);
    assert_int_equal(game_lb_source_parse("kills:Duel", 10, &off, &len),
                     GAME_LB_SOURCE_BAD);
    assert_int_equal(game_lb_source_parse("kill", 4, &off, &len),
                     GAME_LB_SOURCE_BAD);
}


static void
test_times(void **state)
{
    char  out[25];

    out[game_lb_time_iso(out, 1795971323016ULL)] = '\0';
    assert_string_equal(out, "2026-11-29T16:55:23.016Z");
    out[game_lb_time_iso(out, 0)] = '\0';
    assert_string_equal(out, "1970-01-01T00:00:00.000Z");
    out[game_lb_time_iso(out, 1000999)] = '\0';
    assert_string_equal(out, "1970-01-01T00:16:40.999Z");
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_desc_board_order),
        cmocka_unit_test(test_asc_board_order),
        cmocka_unit_test(test_members_parse_back),
        cmocka_unit_test(test_bad_members_are_refused),
        cmocka_unit_test(test_names_regions_seasons),
        cmocka_unit_test(test_sources),
        cmocka_unit_test(test_times),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
