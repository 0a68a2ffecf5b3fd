/*
 * The realtime module's pure helpers (ngx_modules/realtime/game_rt_util.c):
 * the handshake's key and accept, header lists, frame sizes on the wire,
 * and the message-rate bucket.
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "game_rt_util.h"


#define S(s)  (const unsigned char *) (s), sizeof(s) - 1


static void
test_accept_is_rfc_6455s_example(void **state)
{
    char  out[GAME_RT_ACCEPT_LEN + 1];

    /* RFC 6455, 1.3 */
    game_rt_accept(S("dGhlIHNhbXBsZSBub25jZQ=="), out);
    assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}


static void
test_key_is_16_bytes_of_base64(void **state)
{
    assert_true(game_rt_key_valid(S("dGhlIHNhbXBsZSBub25jZQ==")));
    assert_false(game_rt_key_valid(S("")));
    assert_false(game_rt_key_valid(S("short")));
    /* 24 characters, but not padded as 16 bytes are */
    assert_false(game_rt_key_valid(S("dGhlIHNhbXBsZSBub25jZQQQ")));
    /* not base64 */
    assert_false(game_rt_key_valid(S("dGhlIHNhbXBsZSBub25j*Q==")));
    /* 17 or 15 bytes */
    assert_false(game_rt_key_valid(S("dGhlIHNhbXBsZSBub25jZWE=")));
    assert_false(game_rt_key_valid(S("dGhlIHNhbXBsZSBub25jZQ=")));
}


static void
test_header_lists(void **state)
{
    assert_true(game_rt_list_has(S("Upgrade"), "upgrade", 1));
    assert_true(game_rt_list_has(S("keep-alive, Upgrade"), "upgrade", 1));
    assert_true(game_rt_list_has(S("keep-alive,Upgrade ,x"), "upgrade", 1));
    assert_false(game_rt_list_has(S("keep-alive"), "upgrade", 1));
    assert_false(game_rt_list_has(S("upgraded"), "upgrade", 1));
    assert_false(game_rt_list_has(S("xupgrade"), "upgrade", 1));
    assert_false(game_rt_list_has(S(""), "upgrade", 1));

    /* subprotocol names keep their case */
    assert_true(game_rt_list_has(S("chat, game.v1"), "game.v1", 0));
    assert_false(game_rt_list_has(S("GAME.V1"), "game.v1", 0));
    assert_false(game_rt_list_has(S("game.v10"), "game.v1", 0));
}


static void
test_frame_sizes_on_the_wire(void **state)
{
    assert_int_equal(game_rt_frame_size(0, 1), 6);
    assert_int_equal(game_rt_frame_size(125, 1), 2 + 4 + 125);
    assert_int_equal(game_rt_frame_size(126, 1), 4 + 4 + 126);
    assert_int_equal(game_rt_frame_size(65535, 1), 4 + 4 + 65535);
    assert_int_equal(game_rt_frame_size(65536, 1), 10 + 4 + 65536);
    assert_int_equal(game_rt_frame_size(10, 0), 2 + 10);
}


static void
test_bucket_rate_and_burst(void **state)
{
    int               i, n;
    game_rt_bucket_t  b;

    memset(&b, 0, sizeof(b));

    /* a full burst at once, then nothing */
    for (n = 0, i = 0; i < 20; i++) {
        n += game_rt_bucket_take(&b, 1000, 5, 10);
    }
    assert_int_equal(n, 10);

    /* a second refills rate tokens, never more than the burst */
    for (n = 0, i = 0; i < 20; i++) {
        n += game_rt_bucket_take(&b, 2000, 5, 10);
    }
    assert_int_equal(n, 5);

    for (n = 0, i = 0; i < 20; i++) {
        n += game_rt_bucket_take(&b, 100000, 5, 10);
    }
    assert_int_equal(n, 10);

    /* a fraction of a second buys a fraction: 200 ms at 5/s is one */
    assert_false(game_rt_bucket_take(&b, 100100, 5, 10));
    assert_true(game_rt_bucket_take(&b, 100200, 5, 10));
    assert_false(game_rt_bucket_take(&b, 100200, 5, 10));

    /* a clock that goes back gives nothing */
    assert_false(game_rt_bucket_take(&b, 50000, 5, 10));
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accept_is_rfc_6455s_example),
        cmocka_unit_test(test_key_is_16_bytes_of_base64),
        cmocka_unit_test(test_header_lists),
        cmocka_unit_test(test_frame_sizes_on_the_wire),
        cmocka_unit_test(test_bucket_rate_and_burst),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
