/*
 * test_allocator_proto.c: the allocator's argv builders and reply parsers.
 *
 * These are the pieces the nginx module shares with the blocking client,
 * so the tests pin down the exact wire layout the Lua scripts expect:
 * a change on either side must show up here.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "game_alloc.h"


/* Compares argv with the NULL-terminated list of expected strings. */
static void
expect_argv(const game_alloc_argv_t *a, ...)
{
    int          i;
    va_list      args;
    const char  *want;

    va_start(args, a);

    for (i = 0; (want = va_arg(args, const char *)) != NULL; i++) {
        assert_true(i < a->argc);
        assert_int_equal(a->argvlen[i], strlen(want));
        assert_memory_equal(a->argv[i], want, strlen(want));
    }

    va_end(args);

    assert_int_equal(a->argc, i);
}


static void
test_state_names(void **state)
{
    int  s;

    for (s = GAME_ALLOC_STARTING; s < GAME_ALLOC_STATE_UNKNOWN; s++) {
        const char *name = game_alloc_state_name(s);
        assert_int_equal(game_alloc_state_from(name, strlen(name)), s);
    }

    assert_string_equal(game_alloc_state_name(GAME_ALLOC_ALLOCATED),
                        "Allocated");
    assert_int_equal(game_alloc_state_from("Read", 4),
                     GAME_ALLOC_STATE_UNKNOWN);
    assert_int_equal(game_alloc_state_from("ready", 5),
                     GAME_ALLOC_STATE_UNKNOWN);
    assert_int_equal(game_alloc_state_from("Readyx", 5), GAME_ALLOC_READY);
    assert_string_equal(game_alloc_state_name(GAME_ALLOC_STATE_UNKNOWN),
                        "Unknown");
    assert_string_equal(game_alloc_status_name(GAME_ALLOC_NO_SERVER),
                        "NO_SERVER");
    assert_string_equal(game_alloc_status_name(GAME_ALLOC_ERROR), "ERROR");
}


static void
test_argv_allocate(void **state)
{
    game_alloc_argv_t     a;
    game_alloc_request_t  r = { "eu", "duel", NULL, "m-1", 4 };

    assert_int_equal(game_alloc_argv_allocate(&a, "game:", &r),
                     GAME_ALLOC_OK);
    assert_int_equal(a.script, GAME_ALLOC_ALLOCATE);
    expect_argv(&a, "EVALSHA", game_alloc_scripts[GAME_ALLOC_ALLOCATE].sha1,
                "2", "game:match:m-1", "game:ready:eu:duel",
                "game:", "m-1", "eu", "duel", "", "4", NULL);

    /* a pinned build uses the region+mode+build index */
    r.build = "1.4.2";
    assert_int_equal(game_alloc_argv_allocate(&a, "t:", &r), GAME_ALLOC_OK);
    expect_argv(&a, "EVALSHA", game_alloc_scripts[GAME_ALLOC_ALLOCATE].sha1,
                "2", "t:match:m-1", "t:ready:eu:duel:1.4.2",
                "t:", "m-1", "eu", "duel", "1.4.2", "4", NULL);

    /* an empty build is "any", like NULL */
    r.build = "";
    assert_int_equal(game_alloc_argv_allocate(&a, "t:", &r), GAME_ALLOC_OK);
    assert_memory_equal(a.argv[4], "t:ready:eu:duel", a.argvlen[4]);
    assert_int_equal(a.argvlen[4], strlen("t:ready:eu:duel"));
}


static void
test_argv_allocate_rejects(void **state)
{
    char                  long_name[GAME_ALLOC_NAME_MAX + 2];
    game_alloc_argv_t     a;
    game_alloc_request_t  ok = { "eu", "duel", NULL, "m1", 2 }, r;

    memset(long_name, 'x', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';

    /* ':' would let two (region, mode) pairs share one index key */
    r = ok; r.region = "eu:duel";
    assert_int_equal(game_alloc_argv_allocate(&a, "g:", &r),
                     GAME_ALLOC_BAD_ARG);
    r = ok; r.mode = "du*el";
    assert_int_equal(game_alloc_argv_allocate(&a, "g:", &r),
                     GAME_ALLOC_BAD_ARG);
    r = ok; r.build = "v 1";
    assert_int_equal(game_alloc_argv_allocate(&a, "g:", &r),
                     GAME_ALLOC_BAD_ARG);
    r = ok; r.match_id = "";
    assert_int_equal(game_alloc_argv_allocate(&a, "g:", &r),
                     GAME_ALLOC_BAD_ARG);
    r = ok; r.match_id = NULL;
    assert_int_equal(game_alloc_argv_allocate(&a, "g:", &r),
                     GAME_ALLOC_BAD_ARG);
    r = ok; r.match_id = long_name;
    assert_int_equal(game_alloc_argv_allocate(&a, "g:", &r),
                     GAME_ALLOC_BAD_ARG);
    r = ok; r.players = -1;
    assert_int_equal(game_alloc_argv_allocate(&a, "g:", &r),
                     GAME_ALLOC_BAD_ARG);
    assert_int_equal(game_alloc_argv_allocate(&a, "has space", &ok),
                     GAME_ALLOC_BAD_ARG);
    assert_int_equal(game_alloc_argv_allocate(&a, "", &ok),
                     GAME_ALLOC_BAD_ARG);

    /* exactly at the limit is fine */
    long_name[GAME_ALLOC_NAME_MAX] = '\0';
    r = ok; r.match_id = long_name;
    assert_int_equal(game_alloc_argv_allocate(&a, "g:", &r), GAME_ALLOC_OK);
}


/* Every string at its longest must still fit the fixed argv buffer. */
static void
test_argv_longest(void **state)
{
    char                  n[GAME_ALLOC_NAME_MAX + 1];
    game_alloc_argv_t     a;
    game_alloc_request_t  r = { n, n, n, n, 1000000 };
    game_alloc_server_t   s = { n, n, n, n, n, n, n, NULL, 65535, 1000000,
                                3600000, GAME_ALLOC_READY, 0 };

    memset(n, 'z', GAME_ALLOC_NAME_MAX);
    n[GAME_ALLOC_NAME_MAX] = '\0';

    assert_int_equal(game_alloc_argv_allocate(&a, n, &r), GAME_ALLOC_OK);
    assert_int_equal(a.argvlen[4], 4 * GAME_ALLOC_NAME_MAX + 8);
    assert_int_equal(game_alloc_argv_register(&a, n, &s), GAME_ALLOC_OK);
    assert_int_equal(a.argc, 17);
}


static void
test_argv_register(void **state)
{
    game_alloc_argv_t    a;
    game_alloc_server_t  s;

    memset(&s, 0, sizeof(s));
    s.id = "srv-1";
    s.token = "t0k3n";
    s.addr = "10.1.2.3";
    s.region = "eu";
    s.mode = "duel";
    s.port = 7777;
    s.capacity = 8;
    s.ttl_ms = 3000;
    s.state = GAME_ALLOC_STARTING;

    /* no host: the address stands for it; no build: "" */
    assert_int_equal(game_alloc_argv_register(&a, "game:", &s),
                     GAME_ALLOC_OK);
    expect_argv(&a, "EVALSHA", game_alloc_scripts[GAME_ALLOC_REGISTER].sha1,
                "2", "game:server:srv-1", "game:hb:srv-1", "game:", "srv-1",
                "t0k3n", "10.1.2.3", "7777", "eu", "duel", "", "10.1.2.3",
                "8", "Starting", "3000", NULL);

    s.host = "node-7";
    s.build = "b42";
    s.state = GAME_ALLOC_READY;
    assert_int_equal(game_alloc_argv_register(&a, "game:", &s),
                     GAME_ALLOC_OK);
    assert_string_equal(a.argv[12], "b42");
    assert_string_equal(a.argv[13], "node-7");
    assert_string_equal(a.argv[15], "Ready");
}


static void
test_argv_register_rejects(void **state)
{
    game_alloc_argv_t    a;
    game_alloc_server_t  ok, s;

    memset(&ok, 0, sizeof(ok));
    ok.id = "srv-1";
    ok.token = "tok";
    ok.addr = "::1";
    ok.region = "eu";
    ok.mode = "duel";
    ok.port = 1;
    ok.ttl_ms = 1;
    ok.state = GAME_ALLOC_READY;

    assert_int_equal(game_alloc_argv_register(&a, "g:", &ok), GAME_ALLOC_OK);

    s = ok; s.port = 0;
    assert_int_equal(game_alloc_argv_register(&a, "g:", &s),
                     GAME_ALLOC_BAD_ARG);
    s = ok; s.port = 65536;
    assert_int_equal(game_alloc_argv_register(&a, "g:", &s),
                     GAME_ALLOC_BAD_ARG);
    s = ok; s.ttl_ms = 0;
    assert_int_equal(game_alloc_argv_register(&a, "g:", &s),
                     GAME_ALLOC_BAD_ARG);
    s = ok; s.capacity = -1;
    assert_int_equal(game_alloc_argv_register(&a, "g:", &s),
                     GAME_ALLOC_BAD_ARG);
    /* only allocate.lua may make a server Allocated */
    s = ok; s.state = GAME_ALLOC_ALLOCATED;
    assert_int_equal(game_alloc_argv_register(&a, "g:", &s),
                     GAME_ALLOC_BAD_ARG);
    s = ok; s.token = "two words";
    assert_int_equal(game_alloc_argv_register(&a, "g:", &s),
                     GAME_ALLOC_BAD_ARG);
    s = ok; s.token = NULL;
    assert_int_equal(game_alloc_argv_register(&a, "g:", &s),
                     GAME_ALLOC_BAD_ARG);
    s = ok; s.id = "a/b";
    assert_int_equal(game_alloc_argv_register(&a, "g:", &s),
                     GAME_ALLOC_BAD_ARG);
    /* an IPv6 address may stand for the host: a host ends its key */
    s = ok; s.host = NULL;
    assert_int_equal(game_alloc_argv_register(&a, "g:", &s),
                     GAME_ALLOC_OK);
    assert_string_equal(a.argv[13], "::1");
    s.host = "h 1";
    assert_int_equal(game_alloc_argv_register(&a, "g:", &s),
                     GAME_ALLOC_BAD_ARG);
}


static void
reap_argv(game_alloc_argv_t *a)
{
    /* no grace: the script's default */
    assert_int_equal(game_alloc_argv_reap(a, "{g}:", -1), GAME_ALLOC_OK);
    expect_argv(a, "EVALSHA", game_alloc_scripts[GAME_ALLOC_REAP].sha1,
                "0", "{g}:", NULL);
    assert_int_equal(game_alloc_argv_reap(a, "g:", 30000), GAME_ALLOC_OK);
    expect_argv(a, "EVALSHA", game_alloc_scripts[GAME_ALLOC_REAP].sha1,
                "0", "g:", "30000", NULL);
    assert_int_equal(game_alloc_argv_reap(a, "g:", 0), GAME_ALLOC_OK);
    assert_int_equal(a->argc, 5);

    /* drain needs no token: it is an operator's act */
    assert_int_equal(game_alloc_argv_drain(a, "g:", "s1"), GAME_ALLOC_OK);
    expect_argv(a, "EVALSHA", game_alloc_scripts[GAME_ALLOC_DRAIN].sha1,
                "2", "g:server:s1", "g:hb:s1", "g:", "s1", NULL);
    assert_int_equal(game_alloc_argv_drain(a, "g:", "s:1"),
                     GAME_ALLOC_BAD_ARG);
    assert_int_equal(game_alloc_argv_drain(a, "g:", NULL),
                     GAME_ALLOC_BAD_ARG);
}


static void
test_argv_small_verbs(void **state)
{
    game_alloc_argv_t  a;

    assert_int_equal(game_alloc_argv_heartbeat(&a, "g:", "s1", "tk"),
                     GAME_ALLOC_OK);
    expect_argv(&a, "EVALSHA", game_alloc_scripts[GAME_ALLOC_HEARTBEAT].sha1,
                "2", "g:server:s1", "g:hb:s1", "g:", "s1", "tk", NULL);

    /* no match: '' (no fence, for operators); no seated list: absent */
    assert_int_equal(game_alloc_argv_set_state(&a, "g:", "s1", "tk",
                                               GAME_ALLOC_FINISHED, NULL,
                                               NULL),
                     GAME_ALLOC_OK);
    expect_argv(&a, "EVALSHA", game_alloc_scripts[GAME_ALLOC_SET_STATE].sha1,
                "2", "g:server:s1", "g:hb:s1", "g:", "s1", "tk", "Finished",
                "", NULL);

    assert_int_equal(game_alloc_argv_set_state(&a, "g:", "s1", "tk",
                                               GAME_ALLOC_STATE_UNKNOWN,
                                               NULL, NULL),
                     GAME_ALLOC_BAD_ARG);

    reap_argv(&a);
}


/* set_state's fence (the match id) and Playing's seated players. */
static void
test_argv_set_state_fenced(void **state)
{
    int                i;
    char               ids[GAME_ALLOC_SEATED_MAX * (GAME_ALLOC_NAME_MAX + 1)
                           + 8];
    game_alloc_argv_t  a;

    assert_int_equal(game_alloc_argv_set_state(&a, "g:", "s1", "tk",
                                               GAME_ALLOC_PLAYING, "m-1",
                                               "p1,p2"),
                     GAME_ALLOC_OK);
    expect_argv(&a, "EVALSHA", game_alloc_scripts[GAME_ALLOC_SET_STATE].sha1,
                "2", "g:server:s1", "g:hb:s1", "g:", "s1", "tk", "Playing",
                "m-1", "p1,p2", NULL);

    /* nobody seated is a list too: the matchmaker must hear it */
    assert_int_equal(game_alloc_argv_set_state(&a, "g:", "s1", "tk",
                                               GAME_ALLOC_PLAYING, "m-1", ""),
                     GAME_ALLOC_OK);
    assert_int_equal(a.argc, 11);
    assert_int_equal(a.argvlen[10], 0);

    /* a match id is a name; seated only goes with Playing */
    assert_int_equal(game_alloc_argv_set_state(&a, "g:", "s1", "tk",
                                               GAME_ALLOC_READY, "m:1", NULL),
                     GAME_ALLOC_BAD_ARG);
    assert_int_equal(game_alloc_argv_set_state(&a, "g:", "s1", "tk",
                                               GAME_ALLOC_FINISHED, "m-1",
                                               "p1"),
                     GAME_ALLOC_BAD_ARG);

    /* the separator cannot hide in an id, nor can an id be empty */
    for (i = 0; i < 5; i++) {
        static const char *bad[] = { "p1,,p2", ",p1", "p1,", "p 1", "," };

        assert_int_equal(game_alloc_argv_set_state(&a, "g:", "s1", "tk",
                                                   GAME_ALLOC_PLAYING, "m-1",
                                                   bad[i]),
                         GAME_ALLOC_BAD_ARG);
    }

    /* 64 uuids, the most a server seats, fit; a 65th id does not */
    ids[0] = '\0';
    for (i = 0; i < GAME_ALLOC_SEATED_MAX; i++) {
        strcat(ids, i ? "," : "");
        strcat(ids, "0f8fad5b-d9cb-469f-a165-70867728950e");
    }
    assert_int_equal(game_alloc_argv_set_state(&a, "g:", "s1", "tk",
                                               GAME_ALLOC_PLAYING, "m-1", ids),
                     GAME_ALLOC_OK);
    assert_int_equal(a.argvlen[10], strlen(ids));
    assert_int_equal(a.argvlen[10], 64 * 36 + 63);
    strcat(ids, ",x");
    assert_int_equal(game_alloc_argv_set_state(&a, "g:", "s1", "tk",
                                               GAME_ALLOC_PLAYING, "m-1", ids),
                     GAME_ALLOC_BAD_ARG);

    assert_int_equal(game_alloc_argv_deregister(&a, "g:", "s1", "tk"),
                     GAME_ALLOC_OK);
    expect_argv(&a, "EVALSHA",
                game_alloc_scripts[GAME_ALLOC_DEREGISTER].sha1,
                "2", "g:server:s1", "g:hb:s1", "g:", "s1", "tk", NULL);

    assert_int_equal(game_alloc_argv_deregister(&a, "g:", "s1", ""),
                     GAME_ALLOC_BAD_ARG);

}


static void
test_argv_eval_fallback(void **state)
{
    game_alloc_argv_t  a;

    assert_true(game_alloc_is_noscript(
        "NOSCRIPT No matching script. Please use EVAL.", 45));
    assert_false(game_alloc_is_noscript("ERR unknown command", 19));
    assert_false(game_alloc_is_noscript("NOSCRIP", 7));

    assert_int_equal(game_alloc_argv_heartbeat(&a, "g:", "s1", "tk"),
                     GAME_ALLOC_OK);
    game_alloc_argv_eval(&a);

    assert_int_equal(a.argc, 8);
    assert_string_equal(a.argv[0], "EVAL");
    assert_ptr_equal(a.argv[1], game_alloc_scripts[GAME_ALLOC_HEARTBEAT].text);
    assert_int_equal(a.argvlen[1],
                     game_alloc_scripts[GAME_ALLOC_HEARTBEAT].len);
    assert_string_equal(a.argv[3], "g:server:s1");
}


/* Builds a reply from NULL-terminated strings. */
static size_t
reply(game_alloc_str_t *e, ...)
{
    size_t       n;
    va_list      args;
    const char  *s;

    va_start(args, e);

    for (n = 0; (s = va_arg(args, const char *)) != NULL; n++) {
        e[n].data = s;
        e[n].len = strlen(s);
    }

    va_end(args);

    return n;
}


static void
test_parse_assignment(void **state)
{
    size_t               n;
    game_alloc_str_t     e[16];
    game_alloc_result_t  res;

    n = reply(e, "OK", "srv-9", "10.0.0.9", "7001", "m-1", "4", "duel",
              "Allocated", "1", NULL);

    assert_int_equal(game_alloc_parse(GAME_ALLOC_ALLOCATE, e, n, &res),
                     GAME_ALLOC_OK);
    assert_string_equal(res.server_id, "srv-9");
    assert_string_equal(res.addr, "10.0.0.9");
    assert_int_equal(res.port, 7001);
    assert_string_equal(res.match_id, "m-1");
    assert_int_equal(res.players, 4);
    assert_string_equal(res.mode, "duel");
    assert_int_equal(res.state, GAME_ALLOC_ALLOCATED);
    assert_int_equal(res.existing, 1);

    /* a Ready server's heartbeat: no match yet */
    n = reply(e, "OK", "srv-9", "10.0.0.9", "7001", "", "0", "duel", "Ready",
              "0", NULL);
    assert_int_equal(game_alloc_parse(GAME_ALLOC_HEARTBEAT, e, n, &res),
                     GAME_ALLOC_OK);
    assert_string_equal(res.match_id, "");
    assert_int_equal(res.state, GAME_ALLOC_READY);
    assert_int_equal(res.existing, 0);
    assert_int_equal(res.drain, 0);

    /* heartbeat appends the drain flag; the first nine stay as they are */
    n = reply(e, "OK", "srv-9", "10.0.0.9", "7001", "m-2", "2", "duel",
              "Playing", "0", "1", NULL);
    assert_int_equal(game_alloc_parse(GAME_ALLOC_HEARTBEAT, e, n, &res),
                     GAME_ALLOC_OK);
    assert_string_equal(res.match_id, "m-2");
    assert_int_equal(res.state, GAME_ALLOC_PLAYING);
    assert_int_equal(res.drain, 1);
    n = reply(e, "OK", "srv-9", "10.0.0.9", "7001", "", "0", "duel",
              "Ready", "0", "0", NULL);
    assert_int_equal(game_alloc_parse(GAME_ALLOC_HEARTBEAT, e, n, &res),
                     GAME_ALLOC_OK);
    assert_int_equal(res.drain, 0);
}


static void
test_parse_refusals(void **state)
{
    size_t               n;
    game_alloc_str_t     e[16];
    game_alloc_result_t  res;

    n = reply(e, "NO_SERVER", NULL);
    assert_int_equal(game_alloc_parse(GAME_ALLOC_ALLOCATE, e, n, &res),
                     GAME_ALLOC_NO_SERVER);
    assert_string_equal(res.server_id, "");

    n = reply(e, "MATCH_GONE", "srv-3", NULL);
    assert_int_equal(game_alloc_parse(GAME_ALLOC_ALLOCATE, e, n, &res),
                     GAME_ALLOC_MATCH_GONE);
    assert_string_equal(res.server_id, "srv-3");

    n = reply(e, "ILLEGAL", "Ready", NULL);
    assert_int_equal(game_alloc_parse(GAME_ALLOC_SET_STATE, e, n, &res),
                     GAME_ALLOC_ILLEGAL);
    assert_int_equal(res.state, GAME_ALLOC_READY);

    n = reply(e, "NOT_OWNER", NULL);
    assert_int_equal(game_alloc_parse(GAME_ALLOC_HEARTBEAT, e, n, &res),
                     GAME_ALLOC_NOT_OWNER);
    n = reply(e, "EXPIRED", NULL);
    assert_int_equal(game_alloc_parse(GAME_ALLOC_HEARTBEAT, e, n, &res),
                     GAME_ALLOC_EXPIRED);
    n = reply(e, "NOT_FOUND", NULL);
    assert_int_equal(game_alloc_parse(GAME_ALLOC_DEREGISTER, e, n, &res),
                     GAME_ALLOC_NOT_FOUND);
    n = reply(e, "BAD_ARG", NULL);
    assert_int_equal(game_alloc_parse(GAME_ALLOC_REGISTER, e, n, &res),
                     GAME_ALLOC_BAD_ARG);

    /* a fenced transition names the match the server really holds */
    n = reply(e, "STALE", "m-new", NULL);
    assert_int_equal(game_alloc_parse(GAME_ALLOC_SET_STATE, e, n, &res),
                     GAME_ALLOC_STALE);
    assert_string_equal(res.match_id, "m-new");
    n = reply(e, "STALE", "", NULL);
    assert_int_equal(game_alloc_parse(GAME_ALLOC_SET_STATE, e, n, &res),
                     GAME_ALLOC_STALE);
    assert_string_equal(res.match_id, "");

    /* a drained busy server keeps its match, in this state */
    n = reply(e, "BUSY", "Playing", NULL);
    assert_int_equal(game_alloc_parse(GAME_ALLOC_DRAIN, e, n, &res),
                     GAME_ALLOC_BUSY);
    assert_int_equal(res.state, GAME_ALLOC_PLAYING);
}


static void
test_parse_other_verbs(void **state)
{
    size_t               n;
    game_alloc_str_t     e[16];
    game_alloc_result_t  res;

    n = reply(e, "OK", "Playing", NULL);
    assert_int_equal(game_alloc_parse(GAME_ALLOC_SET_STATE, e, n, &res),
                     GAME_ALLOC_OK);
    assert_int_equal(res.state, GAME_ALLOC_PLAYING);

    n = reply(e, "OK", "Starting", NULL);
    assert_int_equal(game_alloc_parse(GAME_ALLOC_REGISTER, e, n, &res),
                     GAME_ALLOC_OK);
    assert_int_equal(res.state, GAME_ALLOC_STARTING);

    n = reply(e, "OK", NULL);
    assert_int_equal(game_alloc_parse(GAME_ALLOC_DEREGISTER, e, n, &res),
                     GAME_ALLOC_OK);

    n = reply(e, "OK", "12", NULL);
    assert_int_equal(game_alloc_parse(GAME_ALLOC_REAP, e, n, &res),
                     GAME_ALLOC_OK);
    assert_int_equal(res.count, 12);

    n = reply(e, "OK", "Shutdown", NULL);
    assert_int_equal(game_alloc_parse(GAME_ALLOC_DRAIN, e, n, &res),
                     GAME_ALLOC_OK);
    assert_int_equal(res.state, GAME_ALLOC_SHUTDOWN);
}


/* Anything a script would never send is an error, never a half result. */
static void
test_parse_malformed(void **state)
{
    size_t               n;
    char                 long_id[GAME_ALLOC_NAME_MAX + 2];
    game_alloc_str_t     e[16];
    game_alloc_result_t  res;

    assert_int_equal(game_alloc_parse(GAME_ALLOC_ALLOCATE, NULL, 0, &res),
                     GAME_ALLOC_ERROR);

    n = reply(e, "YES", NULL);
    assert_int_equal(game_alloc_parse(GAME_ALLOC_ALLOCATE, e, n, &res),
                     GAME_ALLOC_ERROR);
    n = reply(e, "ok", NULL);
    assert_int_equal(game_alloc_parse(GAME_ALLOC_DEREGISTER, e, n, &res),
                     GAME_ALLOC_ERROR);
    /* "ERROR" is ours, never a script's */
    n = reply(e, "ERROR", NULL);
    assert_int_equal(game_alloc_parse(GAME_ALLOC_DEREGISTER, e, n, &res),
                     GAME_ALLOC_ERROR);

    /* short */
    n = reply(e, "OK", "srv-9", "10.0.0.9", "7001", NULL);
    assert_int_equal(game_alloc_parse(GAME_ALLOC_ALLOCATE, e, n, &res),
                     GAME_ALLOC_ERROR);

    /* bad port, bad number, bad state, bad flag */
    n = reply(e, "OK", "s", "a", "0", "m", "1", "d", "Allocated", "0", NULL);
    assert_int_equal(game_alloc_parse(GAME_ALLOC_ALLOCATE, e, n, &res),
                     GAME_ALLOC_ERROR);
    n = reply(e, "OK", "s", "a", "70000", "m", "1", "d", "Allocated", "0",
              NULL);
    assert_int_equal(game_alloc_parse(GAME_ALLOC_ALLOCATE, e, n, &res),
                     GAME_ALLOC_ERROR);
    n = reply(e, "OK", "s", "a", "1", "m", "-1", "d", "Allocated", "0", NULL);
    assert_int_equal(game_alloc_parse(GAME_ALLOC_ALLOCATE, e, n, &res),
                     GAME_ALLOC_ERROR);
    n = reply(e, "OK", "s", "a", "1", "m", "1", "d", "Busy", "0", NULL);
    assert_int_equal(game_alloc_parse(GAME_ALLOC_ALLOCATE, e, n, &res),
                     GAME_ALLOC_ERROR);
    n = reply(e, "OK", "s", "a", "1", "m", "1", "d", "Allocated", "2", NULL);
    assert_int_equal(game_alloc_parse(GAME_ALLOC_ALLOCATE, e, n, &res),
                     GAME_ALLOC_ERROR);

    /* longer than the result can hold */
    memset(long_id, 'x', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = '\0';
    n = reply(e, "OK", long_id, "a", "1", "m", "1", "d", "Allocated", "0",
              NULL);
    assert_int_equal(game_alloc_parse(GAME_ALLOC_ALLOCATE, e, n, &res),
                     GAME_ALLOC_ERROR);

    n = reply(e, "OK", "x", NULL);
    assert_int_equal(game_alloc_parse(GAME_ALLOC_REAP, e, n, &res),
                     GAME_ALLOC_ERROR);
    n = reply(e, "MATCH_GONE", NULL);
    assert_int_equal(game_alloc_parse(GAME_ALLOC_ALLOCATE, e, n, &res),
                     GAME_ALLOC_ERROR);
    n = reply(e, "OK", "Ready", NULL);
    assert_int_equal(game_alloc_parse(GAME_ALLOC_NSCRIPTS, e, n, &res),
                     GAME_ALLOC_ERROR);

    /* the drain flag is 0 or 1, and nothing follows it */
    n = reply(e, "OK", "s", "a", "1", "m", "1", "d", "Playing", "0", "2",
              NULL);
    assert_int_equal(game_alloc_parse(GAME_ALLOC_HEARTBEAT, e, n, &res),
                     GAME_ALLOC_ERROR);
    n = reply(e, "OK", "s", "a", "1", "m", "1", "d", "Playing", "0", "1",
              "x", NULL);
    assert_int_equal(game_alloc_parse(GAME_ALLOC_HEARTBEAT, e, n, &res),
                     GAME_ALLOC_ERROR);
    n = reply(e, "STALE", NULL);
    assert_int_equal(game_alloc_parse(GAME_ALLOC_SET_STATE, e, n, &res),
                     GAME_ALLOC_ERROR);
    n = reply(e, "BUSY", "Busy", NULL);
    assert_int_equal(game_alloc_parse(GAME_ALLOC_DRAIN, e, n, &res),
                     GAME_ALLOC_ERROR);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_state_names),
        cmocka_unit_test(test_argv_allocate),
        cmocka_unit_test(test_argv_allocate_rejects),
        cmocka_unit_test(test_argv_longest),
        cmocka_unit_test(test_argv_register),
        cmocka_unit_test(test_argv_register_rejects),
        cmocka_unit_test(test_argv_small_verbs),
        cmocka_unit_test(test_argv_set_state_fenced),
        cmocka_unit_test(test_argv_eval_fallback),
        cmocka_unit_test(test_parse_assignment),
        cmocka_unit_test(test_parse_refusals),
        cmocka_unit_test(test_parse_other_verbs),
        cmocka_unit_test(test_parse_malformed),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
