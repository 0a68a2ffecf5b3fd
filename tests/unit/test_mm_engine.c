/*
 * Unit tests for the matching engine (ngx_modules/matchmaking).
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <cmocka.h>

#include "game_mm_engine.h"


static const game_mm_rules_t  duel = {
    2, 1, 100.0, 50.0, 400.0, 5000, 60000
};

static const game_mm_rules_t  squad = {
    2, 3, 100.0, 50.0, 400.0, 5000, 60000
};


typedef struct {
    game_mm_engine_t   *engine;
    game_mm_match_t     matches[4096];
    game_mm_member_t    members[4096 * 8];
    uint32_t            expired[4096];
    game_mm_result_t    result;
} fixture_t;


static int
setup(void **state)
{
    fixture_t  *f = calloc(1, sizeof(fixture_t));

    f->engine = game_mm_engine_create(20000);
    f->result.matches = f->matches;
    f->result.max_matches = 4096;
    f->result.members = f->members;
    f->result.max_members = 4096 * 8;
    f->result.expired = f->expired;
    f->result.max_expired = 4096;
    *state = f;

    return f->engine == NULL;
}


static int
teardown(void **state)
{
    fixture_t  *f = *state;

    game_mm_engine_destroy(f->engine);
    free(f);
    return 0;
}


static long
run(fixture_t *f, const game_mm_rules_t *rules, game_mm_ticket_t *t,
    size_t n, int64_t now)
{
    return game_mm_engine_run(f->engine, rules, t, n, now, &f->result);
}


static void
test_window_widens_to_its_cap(void **state)
{
    assert_true(game_mm_window(&duel, 0) == 100.0);
    assert_true(game_mm_window(&duel, 4999) == 100.0);
    assert_true(game_mm_window(&duel, 5000) == 150.0);
    assert_true(game_mm_window(&duel, 12000) == 200.0);
    assert_true(game_mm_window(&duel, 600000) == 400.0);
}


static void
test_rules_are_checked(void **state)
{
    game_mm_rules_t  r = duel;

    assert_null(game_mm_rules_check(&r));
    r.teams = 0;
    assert_non_null(game_mm_rules_check(&r));
    r = duel;
    r.window_cap = 50;
    assert_non_null(game_mm_rules_check(&r));
    r = duel;
    r.window_every_ms = 0;
    assert_non_null(game_mm_rules_check(&r));
}


static void
test_duel_pairs_close_ratings_on_opposite_teams(void **state)
{
    fixture_t         *f = *state;
    game_mm_ticket_t   t[] = {
        { 1, 1500, 1, 0 }, { 2, 1550, 1, 10 },
    };

    assert_int_equal(run(f, &duel, t, 2, 1000), 1);
    assert_int_equal(f->matches[0].count, 2);
    assert_int_not_equal(f->members[0].team, f->members[1].team);
    assert_true(fabs(f->matches[0].spread - 50.0) < 1e-9);
}


static void
test_window_keeps_far_ratings_apart_until_it_widens(void **state)
{
    fixture_t         *f = *state;
    game_mm_ticket_t   t[] = {
        { 1, 1500, 1, 0 }, { 2, 1720, 1, 0 },
    };

    assert_int_equal(run(f, &duel, t, 2, 1000), 0);     /* window 100 */
    assert_int_equal(run(f, &duel, t, 2, 10000), 0);    /* window 200 */
    assert_int_equal(run(f, &duel, t, 2, 15000), 1);    /* window 250 */
}


static void
test_tickets_expire_after_max_wait(void **state)
{
    fixture_t         *f = *state;
    game_mm_ticket_t   t[] = { { 1, 1500, 1, 0 } };

    assert_int_equal(run(f, &duel, t, 1, 59999), 0);
    assert_int_equal(f->result.nexpired, 0);
    assert_int_equal(run(f, &duel, t, 1, 60000), 0);
    assert_int_equal(f->result.nexpired, 1);
    assert_int_equal(f->expired[0], 0);
}


static void
test_oldest_ticket_is_served_first(void **state)
{
    fixture_t         *f = *state;
    game_mm_ticket_t   t[] = {
        { 1, 1510, 1, 500 }, { 2, 1500, 1, 0 }, { 3, 1490, 1, 900 },
    };
    uint32_t           a, b;

    assert_int_equal(run(f, &duel, t, 3, 1000), 1);
    a = f->members[0].ticket;
    b = f->members[1].ticket;
    assert_true(a == 1 || b == 1);      /* the oldest, id 2, index 1 */
}


static void
test_squad_keeps_parties_whole_and_balances(void **state)
{
    fixture_t         *f = *state;
    uint32_t           i, fill[2] = { 0, 0 }, team_of[4];
    game_mm_ticket_t   t[] = {
        { 1, 1500, 3, 0 },      /* a party of three */
        { 2, 1520, 2, 1 },      /* a duo */
        { 3, 1480, 1, 2 },
    };

    assert_int_equal(run(f, &squad, t, 3, 1000), 1);
    assert_int_equal(f->matches[0].count, 3);

    for (i = 0; i < 3; i++) {
        team_of[f->members[i].ticket] = f->members[i].team;
        fill[f->members[i].team] += t[f->members[i].ticket].size;
    }

    assert_int_equal(fill[0], 3);
    assert_int_equal(fill[1], 3);
    assert_int_equal(team_of[1], team_of[2]);
    assert_int_not_equal(team_of[0], team_of[1]);
}


static void
test_squad_singles_are_balanced_by_rating_sum(void **state)
{
    fixture_t         *f = *state;
    uint32_t           i;
    double             sum[2] = { 0, 0 };
    game_mm_ticket_t   t[] = {
        { 1, 1400, 1, 0 }, { 2, 1410, 1, 1 }, { 3, 1450, 1, 2 },
        { 4, 1460, 1, 3 }, { 5, 1480, 1, 4 }, { 6, 1490, 1, 5 },
    };

    assert_int_equal(run(f, &squad, t, 6, 1000), 1);

    for (i = 0; i < 6; i++) {
        sum[f->members[i].team] += t[f->members[i].ticket].rating;
    }

    /* 1400+1460+1490 = 4350 against 1410+1450+1480 = 4340 is the best */
    assert_true(fabs(sum[0] - sum[1]) <= 10.0 + 1e-9);
    assert_true(fabs(f->matches[0].imbalance - fabs(sum[0] - sum[1])) < 1e-9);
}


static void
test_unsplittable_parties_do_not_match(void **state)
{
    fixture_t         *f = *state;
    game_mm_ticket_t   t[] = {
        { 1, 1500, 2, 0 }, { 2, 1500, 2, 1 }, { 3, 1500, 2, 2 },
    };

    assert_int_equal(run(f, &squad, t, 3, 1000), 0);
}


static void
test_party_larger_than_a_team_expires_at_once(void **state)
{
    fixture_t         *f = *state;
    game_mm_ticket_t   t[] = { { 1, 1500, 4, 0 }, { 2, 1500, 1, 0 } };

    assert_int_equal(run(f, &squad, t, 2, 1), 0);
    assert_int_equal(f->result.nexpired, 1);
    assert_int_equal(f->expired[0], 0);
}


static void
test_no_ticket_is_in_two_matches(void **state)
{
    fixture_t         *f = *state;
    size_t             n = 10000, i, k;
    uint8_t           *seen;
    uint32_t           fill[2];
    game_mm_ticket_t  *t;

    t = calloc(n, sizeof(*t));
    seen = calloc(n, 1);
    srand(7);

    for (i = 0; i < n; i++) {
        t[i].id = i;
        t[i].rating = 1000 + rand() % 1000;
        t[i].size = 1 + rand() % 3;
        t[i].enqueued_ms = rand() % 30000;
    }

    assert_true(run(f, &squad, t, n, 30000) > 1000);

    for (i = 0; i < f->result.nmatches; i++) {
        game_mm_match_t  *m = &f->matches[i];

        fill[0] = fill[1] = 0;
        for (k = m->first; k < m->first + m->count; k++) {
            assert_int_equal(seen[f->members[k].ticket], 0);
            seen[f->members[k].ticket] = 1;
            fill[f->members[k].team] += t[f->members[k].ticket].size;
        }
        assert_int_equal(fill[0], 3);
        assert_int_equal(fill[1], 3);
        assert_true(m->spread <= 400.0);
    }

    free(t);
    free(seen);
}


static void
test_too_many_tickets_is_refused(void **state)
{
    fixture_t         *f = *state;
    game_mm_ticket_t   t[1] = { { 1, 1500, 1, 0 } };

    assert_int_equal(game_mm_engine_run(f->engine, &duel, t, 20001, 0,
                                        &f->result), -1);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_window_widens_to_its_cap),
        cmocka_unit_test(test_rules_are_checked),
        cmocka_unit_test_setup_teardown(
            test_duel_pairs_close_ratings_on_opposite_teams, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_window_keeps_far_ratings_apart_until_it_widens, setup,
            teardown),
        cmocka_unit_test_setup_teardown(test_tickets_expire_after_max_wait,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_oldest_ticket_is_served_first,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_squad_keeps_parties_whole_and_balances, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_squad_singles_are_balanced_by_rating_sum, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_unsplittable_parties_do_not_match, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_party_larger_than_a_team_expires_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_ticket_is_in_two_matches,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_too_many_tickets_is_refused,
                                        setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
