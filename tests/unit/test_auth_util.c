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


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_username),
        cmocka_unit_test(test_email),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
