/*
 * test_gs_health.c: the health file, written by one process and read by
 * another (here: the same one, through the file, as the fleet reads it).
 */

#define _POSIX_C_SOURCE 200809L

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "gs_health.h"


static void
temp_path(char *buf, size_t size)
{
    snprintf(buf, size, "/tmp/test_gs_health.%d", (int) getpid());
}


static void
test_ticks_reach_the_reader(void **state)
{
    char          path[64], err[128];
    gs_health_t  *h, r;

    temp_path(path, sizeof(path));
    h = gs_health_open(path, err, sizeof(err));
    assert_non_null(h);

    /* opened, not ticked yet: valid, no tick */
    assert_int_equal(gs_health_read(path, &r), 0);
    assert_int_equal(r.pid, getpid());
    assert_int_equal(r.ticks, 0);
    assert_int_equal(r.last_tick_ms, 0);

    gs_health_tick(h, 1000, GS_HEALTH_WAITING, 0);
    gs_health_tick(h, 1033, GS_HEALTH_PLAYING, 7);

    /* no msync, no write: the reader sees the mapping's pages */
    assert_int_equal(gs_health_read(path, &r), 0);
    assert_int_equal(r.magic, GS_HEALTH_MAGIC);
    assert_int_equal(r.version, GS_HEALTH_VERSION);
    assert_int_equal(r.ticks, 2);
    assert_int_equal(r.last_tick_ms, 1033);
    assert_int_equal(r.phase, GS_HEALTH_PLAYING);
    assert_int_equal(r.players, 7);

    gs_health_close(h);

    /* the file outlives the writer: the reader judges by the pid */
    assert_int_equal(gs_health_read(path, &r), 0);
    assert_int_equal(r.ticks, 2);
    unlink(path);
}


static void
test_reader_refuses_what_is_not_a_health_file(void **state)
{
    char          path[64];
    gs_health_t   r;
    FILE         *f;

    temp_path(path, sizeof(path));
    unlink(path);
    assert_int_equal(gs_health_read(path, &r), -1);

    /* short */
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("GSHF", f);
    fclose(f);
    assert_int_equal(gs_health_read(path, &r), -1);

    /* long enough, wrong magic */
    f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "%-*s", (int) sizeof(gs_health_t) + 8, "not a health file");
    fclose(f);
    assert_int_equal(gs_health_read(path, &r), -1);
    unlink(path);
}


static void
test_open_reports_errors(void **state)
{
    char  err[128];

    err[0] = '\0';
    assert_null(gs_health_open("/nonexistent-dir/x", err, sizeof(err)));
    assert_non_null(strstr(err, "/nonexistent-dir/x"));

    /* a tick without a file is nothing */
    gs_health_tick(NULL, 1, GS_HEALTH_IDLE, 0);
    gs_health_close(NULL);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ticks_reach_the_reader),
        cmocka_unit_test(test_reader_refuses_what_is_not_a_health_file),
        cmocka_unit_test(test_open_reports_errors),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
