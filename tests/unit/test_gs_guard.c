/* test_gs_guard.c: per-source buckets and the per-tick verify budget. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "gs_guard.h"


static void
test_connects_burst_then_rate(void **state)
{
    static gs_guard_t  g;
    int                i, n;

    gs_guard_init(&g, 8, 4, 8, 4, 24);

    for (i = 0, n = 0; i < 100; i++) {
        n += gs_guard_connect(&g, 0x0100007f, 1000);
    }
    assert_int_equal(n, 8);
    assert_int_equal(g.connects_dropped, 92);

    /* half a second later: two more (4 per second) */
    for (i = 0, n = 0; i < 100; i++) {
        n += gs_guard_connect(&g, 0x0100007f, 1500);
    }
    assert_int_equal(n, 2);

    /* another source is not affected */
    assert_true(gs_guard_connect(&g, 0x0200007f, 1500));

    /* a long pause refills up to the burst, no more */
    for (i = 0, n = 0; i < 100; i++) {
        n += gs_guard_connect(&g, 0x0100007f, 60000);
    }
    assert_int_equal(n, 8);
}


static void
test_verifies_per_source_and_per_tick(void **state)
{
    static gs_guard_t  g;
    int                i, n;

    gs_guard_init(&g, 8, 8, 4, 2, 3);

    for (i = 0, n = 0; i < 10; i++) {
        n += gs_guard_verify_source(&g, 7, 0);
    }
    assert_int_equal(n, 4);
    assert_int_equal(g.verifies_refused, 6);

    /* the tick's budget is shared by every source, and comes back */
    assert_true(gs_guard_verify_tick(&g));
    assert_true(gs_guard_verify_tick(&g));
    assert_true(gs_guard_verify_tick(&g));
    assert_false(gs_guard_verify_tick(&g));
    assert_int_equal(g.verifies_deferred, 1);
    gs_guard_tick(&g);
    assert_true(gs_guard_verify_tick(&g));
}


/* many sources churn the table; it stays bounded and keeps answering */
static void
test_table_is_bounded(void **state)
{
    static gs_guard_t  g;
    uint32_t           a;
    int                n = 0;

    gs_guard_init(&g, 1, 1, 1, 1, 1);

    for (a = 1; a <= 100000; a++) {
        n += gs_guard_connect(&g, a, a);
    }
    assert_int_equal(n, 100000);        /* each new source: a full bucket */

    /* a source seen just now is remembered among the churn */
    assert_false(gs_guard_connect(&g, 100000, 100000));
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connects_burst_then_rate),
        cmocka_unit_test(test_verifies_per_source_and_per_tick),
        cmocka_unit_test(test_table_is_bounded),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
