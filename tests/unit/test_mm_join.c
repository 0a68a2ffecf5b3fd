/*
 * Unit tests for the checks of a join body
 * (ngx_modules/matchmaking/game_mm_join.c).
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "game_mm_join.h"


static const game_mm_name_t  served[] = {
    { "eu", 2 }, { "us-east", 7 }, { "asia", 4 }
};


static int
pick(const char *text, double max, const char **err)
{
    int      k;
    json_t  *regions;

    regions = json_loads(text, 0, NULL);
    assert_non_null(regions);

    *err = NULL;
    k = game_mm_pick_region(regions, served, 3, max, err);
    assert_true(k >= 0 || *err != NULL);

    json_decref(regions);
    return k;
}


static void
test_lowest_latency_served(void **state)
{
    const char  *err;

    assert_int_equal(pick("[{\"region\": \"eu\", \"latency_ms\": 40}, "
                          "{\"region\": \"us-east\", \"latency_ms\": 20}]",
                          100, &err), 1);

    /* a region we do not serve, however close, is no choice */
    assert_int_equal(pick("[{\"region\": \"mars\", \"latency_ms\": 1}, "
                          "{\"region\": \"asia\", \"latency_ms\": 90.5}]",
                          100, &err), 2);

    /* nor one beyond the mode's maximum latency */
    assert_int_equal(pick("[{\"region\": \"eu\", \"latency_ms\": 101}]",
                          100, &err), -1);
    assert_non_null(strstr(err, "maximum latency"));

    /* a name is matched whole: "e" is not "eu" */
    assert_int_equal(pick("[{\"region\": \"e\", \"latency_ms\": 1}]",
                          100, &err), -1);
}


static void
test_malformed_regions(void **state)
{
    const char  *err;
    char         many[64 * 40 + 16];
    size_t       i;

    assert_int_equal(pick("[]", 100, &err), -1);
    assert_int_equal(pick("{\"region\": \"eu\"}", 100, &err), -1);
    assert_int_equal(pick("[{\"region\": \"eu\", \"latency_ms\": -1}]",
                          100, &err), -1);
    assert_int_equal(pick("[{\"region\": \"eu\", \"latency_ms\": \"5\"}]",
                          100, &err), -1);
    assert_int_equal(pick("[{\"region\": 1, \"latency_ms\": 5}]",
                          100, &err), -1);
    assert_int_equal(pick("[7]", 100, &err), -1);

    /* 65 entries are too many, even good ones */
    strcpy(many, "[");
    for (i = 0; i < 65; i++) {
        strcat(many, i ? ", " : "");
        strcat(many, "{\"region\": \"eu\", \"latency_ms\": 1}");
    }
    strcat(many, "]");
    assert_int_equal(pick(many, 100, &err), -1);
    assert_non_null(strstr(err, "1 to 64"));
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_lowest_latency_served),
        cmocka_unit_test(test_malformed_regions),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
