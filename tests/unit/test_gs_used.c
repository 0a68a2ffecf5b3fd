/* test_gs_used.c: the memory of seated tickets (signatures and jtis). */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "gs_used.h"


static gs_used_t  u;


static void
test_a_seated_key_stays_spent(void **state)
{
    gs_used_init(&u);
    assert_false(gs_used_has(&u, "jti-a"));
    gs_used_add(&u, "jti-a");
    gs_used_add(&u, "sig-a");
    assert_true(gs_used_has(&u, "jti-a"));
    assert_true(gs_used_has(&u, "sig-a"));
    assert_false(gs_used_has(&u, "jti-b"));
    assert_false(gs_used_has(&u, "jti-"));        /* whole keys only */
    assert_false(gs_used_has(&u, ""));
    assert_false(gs_used_has(&u, NULL));
}


/* Match A seats a ticket; match B's allocation and its players come and
 * go: nothing but GS_USED_MAX newer keys forgets A's ticket (the server
 * once reset the memory on allocation). */
static void
test_a_key_outlives_later_matches_until_the_ring_wraps(void **state)
{
    char  key[32];
    int   i;

    gs_used_init(&u);
    gs_used_add(&u, "match-a-jti");
    for (i = 0; i < GS_USED_MAX - 1; i++) {
        snprintf(key, sizeof(key), "match-b-%d", i);
        gs_used_add(&u, key);
    }
    assert_int_equal(u.n, GS_USED_MAX);
    assert_true(gs_used_has(&u, "match-a-jti"));
    assert_true(gs_used_has(&u, "match-b-0"));

    /* one more: the oldest, and only it, goes */
    gs_used_add(&u, "match-c-0");
    assert_int_equal(u.n, GS_USED_MAX);
    assert_false(gs_used_has(&u, "match-a-jti"));
    assert_true(gs_used_has(&u, "match-b-0"));
    assert_true(gs_used_has(&u, "match-c-0"));
}


static void
test_a_long_key_is_cut_not_overflowed(void **state)
{
    char  key[200];

    memset(key, 'x', sizeof(key) - 1);
    key[sizeof(key) - 1] = '\0';
    gs_used_init(&u);
    gs_used_add(&u, key);
    assert_int_equal(strlen(u.keys[0]), GS_USED_KEY - 1);
    key[GS_USED_KEY - 1] = '\0';
    assert_true(gs_used_has(&u, key));
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_seated_key_stays_spent),
        cmocka_unit_test(test_a_key_outlives_later_matches_until_the_ring_wraps),
        cmocka_unit_test(test_a_long_key_is_cut_not_overflowed),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
