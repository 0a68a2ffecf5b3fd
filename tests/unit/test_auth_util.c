/*
 * Unit tests for the auth module's pure helpers: base64url, the ECDSA
 * signature formats, the claims reader, and input validation.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "game_auth_util.h"


static void
test_b64url_round_trip(void **state)
{
    char           text[64];
    unsigned char  in[32], out[32];
    size_t         n, len;
    long           m;

    for (len = 0; len < sizeof(in); len++) {
        for (n = 0; n < len; n++) {
            in[n] = (unsigned char) (n * 37 + len);
        }
        n = game_auth_b64url_encode(text, in, len);
        assert_null(memchr(text, '=', n));
        m = game_auth_b64url_decode(out, sizeof(out), text, n);
        assert_int_equal(m, len);
        assert_memory_equal(in, out, len);
    }
}


static void
test_b64url_rejects(void **state)
{
    unsigned char  out[16];

    /* padding, the standard alphabet, whitespace, impossible length */
    assert_int_equal(game_auth_b64url_decode(out, 16, "YQ==", 4), -1);
    assert_int_equal(game_auth_b64url_decode(out, 16, "a+b/", 4), -1);
    assert_int_equal(game_auth_b64url_decode(out, 16, "YW J", 4), -1);
    assert_int_equal(game_auth_b64url_decode(out, 16, "YWJjZ", 5), -1);
    /* non-zero unused bits: "YR" and "YQ" must not both decode to "a" */
    assert_int_equal(game_auth_b64url_decode(out, 16, "YQ", 2), 1);
    assert_int_equal(game_auth_b64url_decode(out, 16, "YR", 2), -1);
    /* too small a buffer */
    assert_int_equal(game_auth_b64url_decode(out, 2, "YWJj", 4), -1);
}


static void
test_sig_der_round_trip(void **state)
{
    unsigned char  raw[64], back[64], der[GAME_AUTH_DER_SIG_MAX];
    long           n;
    int            i, variant;

    for (variant = 0; variant < 4; variant++) {
        for (i = 0; i < 64; i++) {
            raw[i] = (unsigned char) (i + 1);
        }
        if (variant & 1) {
            raw[0] = 0x80;          /* high bit: needs a 0x00 pad */
        }
        if (variant & 2) {
            memset(raw + 32, 0, 3); /* leading zeros: stripped */
        }

        n = game_auth_sig_raw_to_der(der, raw);
        assert_true(n >= 8 && n <= GAME_AUTH_DER_SIG_MAX);
        assert_int_equal(der[0], 0x30);
        assert_int_equal(game_auth_sig_der_to_raw(back, der, n), 0);
        assert_memory_equal(raw, back, 64);
    }

    der[1] = 0x7f;
    assert_int_equal(game_auth_sig_der_to_raw(back, der, n), -1);
}


static void
test_claims_parse(void **state)
{
    game_auth_claims_t  c;
    const char         *json =
        " {\"iss\":\"game\", \"aud\":\"game\",\"sub\":\"abc\",\"iat\":10,"
        "\"nbf\":11,\"exp\":1700000000,\"jti\":\"x\"} ";

    assert_int_equal(game_auth_claims_parse(json, strlen(json), &c), 0);
    assert_int_equal(c.iss_len, 4);
    assert_memory_equal(c.iss, "game", 4);
    assert_memory_equal(c.sub, "abc", 3);
    assert_true(c.has_exp && c.has_nbf && c.has_iat);
    assert_true(c.exp == 1700000000 && c.nbf == 11 && c.iat == 10);
}


static void
test_claims_refuse(void **state)
{
    size_t               i;
    game_auth_claims_t   c;
    static const char   *bad[] = {
        "",
        "[]",
        "{\"sub\":\"a\",\"sub\":\"b\"}",            /* repeated claim */
        "{\"aud\":[\"game\"]}",                     /* arrays */
        "{\"exp\":\"1\"}",                          /* wrong type */
        "{\"sub\":123}",
        "{\"sub\":\"a\\u0062\"}",                   /* escapes */
        "{\"exp\":1.5}",                            /* fractions */
        "{\"exp\":1e9}",
        "{\"exp\":1234567890123456}",               /* too many digits */
        "{\"sub\":\"a\"",                           /* truncated */
        "{\"sub\":\"a\"} x",                        /* trailing bytes */
        "{\"sub\" \"a\"}",
        "{\"x\":{}}",
    };

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(game_auth_claims_parse(bad[i], strlen(bad[i]), &c),
                         -1);
    }

    assert_int_equal(game_auth_claims_parse("{}", 2, &c), 0);
    assert_false(c.has_exp);
}


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
test_uuid_hex_utf8(void **state)
{
    unsigned char  b[4];
    char           h[8];
    const char    *u = "123e4567-e89b-42d3-a456-426614174000";

    assert_true(game_auth_uuid_valid(u, 36));
    assert_false(game_auth_uuid_valid(u, 35));
    assert_false(game_auth_uuid_valid("123E4567-e89b-42d3-a456-426614174000",
                                      36));
    assert_false(game_auth_uuid_valid("123e4567xe89b-42d3-a456-426614174000",
                                      36));

    assert_int_equal(game_auth_unhex(b, "00fFa5", 6), 0);
    game_auth_hex(h, b, 3);
    assert_memory_equal(h, "00ffa5", 6);
    assert_int_equal(game_auth_unhex(b, "0g", 2), -1);
    assert_int_equal(game_auth_unhex(b, "abc", 3), -1);

    /* "päss" is four characters in five bytes */
    assert_int_equal(game_auth_utf8_chars("p\xc3\xa4ss", 5), 4);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_b64url_round_trip),
        cmocka_unit_test(test_b64url_rejects),
        cmocka_unit_test(test_sig_der_round_trip),
        cmocka_unit_test(test_claims_parse),
        cmocka_unit_test(test_claims_refuse),
        cmocka_unit_test(test_username),
        cmocka_unit_test(test_email),
        cmocka_unit_test(test_uuid_hex_utf8),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
