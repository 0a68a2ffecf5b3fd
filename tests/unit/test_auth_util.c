/*
 * Unit tests for the auth module's pure helpers: input validation.  Token
 * formats are nginx's, OpenSSL's and jansson's, tested end to end in
 * tests/integration/test_auth_tokens.py.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "game_auth_util.h"


static void
test_username(void **state)
{
    assert_true(game_auth_username_valid("abc", 3));
    assert_true(game_auth_username_valid("Player_01", 9));
    assert_true(game_auth_username_valid("aaaaaaaaaaaaaaaaaaaa", 20));
    assert_false(game_auth_username_valid("ab", 2));
    assert_false(game_auth_username_valid("aaaaaaaaaaaaaaaaaaaaa", 21));
    assert_false(game_auth_username_valid("a-b", 3));
    assert_false(game_auth_username_valid("a b", 3));
    assert_false(game_auth_username_valid("\xc3\xbc\x61\x62", 4));
}


static void
test_email(void **state)
{
    size_t              i;
    static const char  *good[] = {
        "a@example.com", "first.last+tag@sub.example.co", "x_y@a-b.io"
    };
    static const char  *bad[] = {
        "", "a@b", "@example.com", "a@", "a@@example.com", "a b@example.com",
        "a@example..com", "a@.example.com", "a@example.com.", "a@exa_mple.com",
        "\"a\"@example.com", "a@example.com\n"
    };

    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        assert_true(game_auth_email_valid(good[i], strlen(good[i])));
    }
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_false(game_auth_email_valid(bad[i], strlen(bad[i])));
    }
}


static void
test_device_id(void **state)
{
    char  id[257];

    assert_true(game_auth_device_id_valid("0123456789abcdef", 16));
    assert_true(game_auth_device_id_valid("ios:A1B2-C3D4.e_f", 17));
    assert_false(game_auth_device_id_valid("0123456789abcde", 15));
    assert_false(game_auth_device_id_valid("0123456789abcdef/", 17));
    assert_false(game_auth_device_id_valid("0123456789 abcdef", 17));

    memset(id, 'a', sizeof(id));
    assert_true(game_auth_device_id_valid(id, 255));
    assert_false(game_auth_device_id_valid(id, 256));
}


static void
test_field(void **state)
{
    char         msg[128];
    size_t       len;
    json_t      *body;
    const char  *v;

    body = json_loads("{\"name\": \"abc\", \"n\": 1, \"empty\": \"\", "
                      "\"none\": null}", 0, NULL);
    assert_non_null(body);

    assert_int_equal(game_auth_field(body, "name", 1, 3, &v, &len, msg,
                                     sizeof(msg)), 0);
    assert_string_equal(v, "abc");
    assert_int_equal(len, 3);

    assert_int_equal(game_auth_field(body, "name", 1, 2, &v, &len, msg,
                                     sizeof(msg)), -1);
    assert_string_equal(msg, "\"name\" must be 1 to 2 bytes long");

    assert_int_equal(game_auth_field(body, "n", 1, 9, &v, &len, msg,
                                     sizeof(msg)), -1);
    assert_string_equal(msg, "\"n\" must be a string");

    /* present but empty is refused even when optional */
    assert_int_equal(game_auth_field(body, "empty", 0, 9, &v, &len, msg,
                                     sizeof(msg)), -1);

    assert_int_equal(game_auth_field(body, "none", 0, 9, &v, &len, msg,
                                     sizeof(msg)), 0);
    assert_null(v);
    assert_int_equal(game_auth_field(body, "missing", 0, 9, &v, &len, msg,
                                     sizeof(msg)), 0);
    assert_null(v);

    assert_int_equal(game_auth_field(body, "missing", 1, 9, &v, &len, msg,
                                     sizeof(msg)), -1);
    assert_string_equal(msg, "\"missing\" is required");

    json_decref(body);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_username),
        cmocka_unit_test(test_email),
        cmocka_unit_test(test_device_id),
        cmocka_unit_test(test_field),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
