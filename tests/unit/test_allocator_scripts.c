/*
 * test_allocator_scripts.c: the Lua scripts embedded in the C library.
 *
 * EVALSHA only works if the SHA1 the build computed is the SHA1 Redis
 * computes, and the embedded text is only worth having if it is what
 * the .lua files in gameserver/allocator say.  Both are checked here.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "game_alloc.h"

#ifndef GAME_ALLOC_LUA_DIR
#define GAME_ALLOC_LUA_DIR "allocator"
#endif


static void
test_table(void **state)
{
    int          i, j;
    const char  *names[GAME_ALLOC_NSCRIPTS] = {
        "register", "heartbeat", "allocate", "set_state", "deregister", "reap",
        "drain"
    };

    for (i = 0; i < GAME_ALLOC_NSCRIPTS; i++) {
        /* the table is indexed by the enum: names in enum order */
        assert_string_equal(game_alloc_scripts[i].name, names[i]);
        assert_int_equal(strlen(game_alloc_scripts[i].text),
                         game_alloc_scripts[i].len);
        assert_int_equal(strlen(game_alloc_scripts[i].sha1), 40);

        for (j = 0; j < i; j++) {
            assert_string_not_equal(game_alloc_scripts[i].sha1,
                                    game_alloc_scripts[j].sha1);
        }
    }
}


static void
test_sha1(void **state)
{
    int            i;
    char           hex[41];
    unsigned int   n, k;
    unsigned char  md[EVP_MAX_MD_SIZE];

    for (i = 0; i < GAME_ALLOC_NSCRIPTS; i++) {
        assert_int_equal(EVP_Digest(game_alloc_scripts[i].text,
                                    game_alloc_scripts[i].len, md, &n,
                                    EVP_sha1(), NULL), 1);
        assert_int_equal(n, 20);

        for (k = 0; k < n; k++) {
            snprintf(hex + 2 * k, 3, "%02x", md[k]);
        }

        assert_string_equal(hex, game_alloc_scripts[i].sha1);
    }
}


static size_t
slurp(const char *name, char *buf, size_t size)
{
    FILE    *f;
    size_t   n;
    char     path[512];

    snprintf(path, sizeof(path), "%s/%s.lua", GAME_ALLOC_LUA_DIR, name);

    f = fopen(path, "rb");
    assert_non_null(f);
    n = fread(buf, 1, size, f);
    fclose(f);
    assert_true(n < size);

    return n;
}


/* Each embedded script is common.lua followed by its own file, no more. */
static void
test_text_matches_files(void **state)
{
    int      i;
    size_t   n, m;
    char    *common, *own;

    common = malloc(65536);
    own = malloc(65536);
    assert_non_null(common);
    assert_non_null(own);

    n = slurp("common", common, 65536);

    for (i = 0; i < GAME_ALLOC_NSCRIPTS; i++) {
        m = slurp(game_alloc_scripts[i].name, own, 65536);

        assert_int_equal(game_alloc_scripts[i].len, n + m);
        assert_memory_equal(game_alloc_scripts[i].text, common, n);
        assert_memory_equal(game_alloc_scripts[i].text + n, own, m);
    }

    free(common);
    free(own);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_sha1),
        cmocka_unit_test(test_text_matches_files),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
