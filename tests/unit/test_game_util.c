/*
 * Unit tests for the core's pure helpers (ngx_modules/core/game_util.c).
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "game_util.h"


static int
is_json(const char *s)
{
    return game_media_type_is_json((const unsigned char *) s, strlen(s));
}


static void
test_media_type_accepts_json(void **state)
{
    assert_true(is_json("application/json"));
    assert_true(is_json("Application/JSON"));
    assert_true(is_json("application/json; charset=utf-8"));
    assert_true(is_json("application/json;charset=UTF-8"));
    assert_true(is_json("  application/json  "));
}


static void
test_media_type_refuses_others(void **state)
{
    assert_false(is_json(""));
    assert_false(is_json("text/plain"));
    assert_false(is_json("application/jsonp"));
    assert_false(is_json("application/json-patch+json"));
    assert_false(is_json("application/js"));
    assert_false(is_json("multipart/form-data; boundary=x"));
}


static void
test_backoff_doubles_and_caps(void **state)
{
    unsigned long  d = 0;

    d = game_backoff_next(d, 100, 1000);
    assert_int_equal(d, 100);
    d = game_backoff_next(d, 100, 1000);
    assert_int_equal(d, 200);
    d = game_backoff_next(d, 100, 1000);
    assert_int_equal(d, 400);
    d = game_backoff_next(d, 100, 1000);
    assert_int_equal(d, 800);
    d = game_backoff_next(d, 100, 1000);
    assert_int_equal(d, 1000);
    d = game_backoff_next(d, 100, 1000);
    assert_int_equal(d, 1000);
}


static void
test_json_error_names_position(void **state)
{
    char          buf[256];
    json_error_t  err;
    json_t       *j;

    j = json_loads("{\n  \"a\": 1,\n  \"b\" 2\n}", 0, &err);
    assert_null(j);

    game_json_error_describe(&err, buf, sizeof(buf));
    assert_non_null(strstr(buf, "line 3"));
    assert_non_null(strstr(buf, "column"));
}


static void
test_json_error_truncates_safely(void **state)
{
    char          buf[12];
    size_t        n;
    json_error_t  err;

    assert_null(json_loads("{", 0, &err));

    n = game_json_error_describe(&err, buf, sizeof(buf));
    assert_int_equal(n, sizeof(buf) - 1);
    assert_int_equal(strlen(buf), sizeof(buf) - 1);
    assert_int_equal(game_json_error_describe(&err, buf, 0), 0);
}


static int
uuid_ok(const char *s)
{
    return game_uuid_valid((const unsigned char *) s, strlen(s));
}


static void
test_uuid_generated_are_valid_v4_and_distinct(void **state)
{
    char  a[GAME_UUID_LEN + 1], b[GAME_UUID_LEN + 1];

    game_uuid_generate(a);
    game_uuid_generate(b);

    assert_int_equal(strlen(a), GAME_UUID_LEN);
    assert_true(uuid_ok(a));
    assert_string_not_equal(a, b);
    assert_int_equal(a[14], '4');                   /* version 4 */
    assert_non_null(strchr("89ab", a[19]));         /* RFC 4122 variant */
}


static void
test_uuid_one_spelling(void **state)
{
    assert_true(uuid_ok("0d6f1f2e-8a3c-4b5d-9e7f-001122334455"));
    /* what we never hand out is refused, upper case included */
    assert_false(uuid_ok("0D6F1F2E-8A3C-4B5D-9E7F-001122334455"));
    assert_false(uuid_ok("0d6f1f2e8a3c4b5d9e7f001122334455"));
    assert_false(uuid_ok("{0d6f1f2e-8a3c-4b5d-9e7f-00112233445}"));
    assert_false(uuid_ok("0d6f1f2e-8a3c-4b5d-9e7f-00112233445g"));
    assert_false(uuid_ok("0d6f1f2e-8a3c-4b5d-9e7f_001122334455"));
    assert_false(uuid_ok(""));
}


static void
test_utf8_chars_counts_characters(void **state)
{
    /* "päss" is four characters in five bytes; a chat line's limit and a
     * password's minimum are in characters */
    assert_int_equal(game_utf8_chars("p\xc3\xa4ss", 5), 4);
    assert_int_equal(game_utf8_chars("\xf0\x9f\x8e\xae", 4), 1);
    assert_int_equal(game_utf8_chars("", 0), 0);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_media_type_accepts_json),
        cmocka_unit_test(test_media_type_refuses_others),
        cmocka_unit_test(test_backoff_doubles_and_caps),
        cmocka_unit_test(test_json_error_names_position),
        cmocka_unit_test(test_json_error_truncates_safely),
        cmocka_unit_test(test_uuid_generated_are_valid_v4_and_distinct),
        cmocka_unit_test(test_uuid_one_spelling),
        cmocka_unit_test(test_utf8_chars_counts_characters),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
