/*
 * test_gs_logline.c: the JSON log line of game-server and game-fleet
 * (gameserver/server/gs_logline.c).  Whatever goes in, what comes out is
 * one valid JSON object on one line that fits its buffer.
 */

#define _POSIX_C_SOURCE 200809L

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "gs_logline.h"


#define T0  1795986184123LL         /* 2026-11-29T21:03:04.123Z */


static gs_logline_who_t  who;


static int
setup(void **state)
{
    gs_logline_who(&who, "game-server", "server", "local-7777-1a2b3c", 4242);
    return 0;
}


/*
 * The checks every line must pass: '\n' last and nowhere else, NUL after
 * it, shorter than the buffer, one JSON object (jansson's parser refuses
 * raw control bytes and bad UTF-8), no key twice, the envelope there.
 */
static json_t *
valid_line(const char *buf, size_t n, size_t size)
{
    json_error_t  err;
    json_t       *o;

    assert_true(n > 2);
    assert_true(n < size);
    assert_int_equal(strlen(buf), n);
    assert_int_equal(buf[n - 1], '\n');
    assert_null(memchr(buf, '\n', n - 1));
    assert_int_equal(buf[0], '{');

    o = json_loadb(buf, n - 1, JSON_REJECT_DUPLICATES, &err);
    if (o == NULL) {
        fail_msg("not JSON (%s): %s", err.text, buf);
    }
    assert_true(json_is_object(o));
    assert_true(json_is_string(json_object_get(o, "time")));
    assert_true(json_is_string(json_object_get(o, "level")));
    assert_true(json_is_string(json_object_get(o, "service")));
    assert_true(json_is_string(json_object_get(o, who.id_key)));
    assert_true(json_is_integer(json_object_get(o, "pid")));
    assert_true(json_is_string(json_object_get(o, "msg")));
    return o;
}


static json_t *
build(char *buf, size_t size, const char *level, const char *event,
    const char *msg, json_t *fields)
{
    size_t  n;

    n = gs_logline_build(buf, size, &who, T0, level, event, msg, fields);
    return valid_line(buf, n, size);
}


static void
test_time_is_rfc3339_utc_with_milliseconds(void **state)
{
    char  t[25];

    gs_logline_time(t, T0);
    assert_string_equal(t, "2026-11-29T21:03:04.123Z");
    gs_logline_time(t, 0);
    assert_string_equal(t, "1970-01-01T00:00:00.000Z");
    gs_logline_time(t, 951868799999LL);
    assert_string_equal(t, "2000-02-29T23:59:59.999Z");
    gs_logline_time(t, 7);
    assert_string_equal(t, "1970-01-01T00:00:00.007Z");
}


static void
test_envelope_first_then_event_msg_and_typed_fields(void **state)
{
    static const char *const  order[] = {
        "time", "level", "service", "server", "pid", "event", "msg",
        "player", "slot", "ratio", "ok", "seated"
    };
    char         buf[1024];
    json_t      *o, *v;
    const char  *key;
    size_t       i = 0;

    o = build(buf, sizeof(buf), "info", "player_seated",
              "player p1 seated in slot 3",
              json_pack("{s:s, s:i, s:f, s:b, s:[s,s]}", "player", "p1",
                        "slot", 3, "ratio", 0.5, "ok", 1, "seated",
                        "p1", "p2"));
    json_object_foreach(o, key, v) {
        assert_true(i < sizeof(order) / sizeof(char *));
        assert_string_equal(key, order[i]);
        i++;
    }
    assert_int_equal(i, sizeof(order) / sizeof(char *));

    assert_string_equal(json_string_value(json_object_get(o, "time")),
                        "2026-11-29T21:03:04.123Z");
    assert_string_equal(json_string_value(json_object_get(o, "level")),
                        "info");
    assert_string_equal(json_string_value(json_object_get(o, "service")),
                        "game-server");
    assert_string_equal(json_string_value(json_object_get(o, "server")),
                        "local-7777-1a2b3c");
    assert_int_equal(json_integer_value(json_object_get(o, "pid")), 4242);
    assert_string_equal(json_string_value(json_object_get(o, "event")),
                        "player_seated");
    /* numbers are numbers, not text */
    assert_true(json_is_integer(json_object_get(o, "slot")));
    assert_int_equal(json_integer_value(json_object_get(o, "slot")), 3);
    assert_true(json_is_real(json_object_get(o, "ratio")));
    assert_true(json_is_true(json_object_get(o, "ok")));
    assert_int_equal(json_array_size(json_object_get(o, "seated")), 2);
    assert_null(json_object_get(o, "truncated"));
    json_decref(o);
}


static void
test_free_form_lines_have_no_event(void **state)
{
    char     buf[600];
    json_t  *o;

    o = build(buf, sizeof(buf), "warn", NULL, "plain words", NULL);
    assert_null(json_object_get(o, "event"));
    assert_string_equal(json_string_value(json_object_get(o, "msg")),
                        "plain words");
    assert_string_equal(json_string_value(json_object_get(o, "level")),
                        "warn");
    json_decref(o);

    /* a NULL message is an empty one; fields that are no object are none */
    o = build(buf, sizeof(buf), "info", "e", NULL, json_pack("[i]", 1));
    assert_string_equal(json_string_value(json_object_get(o, "msg")), "");
    assert_int_equal(json_object_size(o), 7);
    json_decref(o);
}


static void
test_levels_are_the_four_names(void **state)
{
    static const char *const  in[] = {
        "error", "warn", "info", "debug", "fatal", "", NULL, "INFO"
    };
    static const char *const  out[] = {
        "error", "warn", "info", "debug", "info", "info", "info", "info"
    };
    char     buf[600];
    json_t  *o;
    size_t   i;

    for (i = 0; i < sizeof(in) / sizeof(char *); i++) {
        o = build(buf, sizeof(buf), in[i], "e", "m", NULL);
        assert_string_equal(json_string_value(json_object_get(o, "level")),
                            out[i]);
        json_decref(o);
    }
}


static void
test_quotes_backslashes_and_control_bytes_come_back_intact(void **state)
{
    static const char  msg[] = "say \"hi\" \\ back\nslash / tab\t"
                               "\x01\x02\x1b[31m\x1f\x7f end";
    char               buf[1024];
    json_t            *o;

    o = build(buf, sizeof(buf), "info", "e\"v\n", msg,
              json_pack("{s:s}", "detail", "a\"b\r\n"));
    assert_string_equal(json_string_value(json_object_get(o, "msg")), msg);
    assert_string_equal(json_string_value(json_object_get(o, "event")),
                        "e\"v\n");
    assert_string_equal(json_string_value(json_object_get(o, "detail")),
                        "a\"b\r\n");
    json_decref(o);
}


static void
test_bad_utf8_becomes_replacement_characters(void **state)
{
    /* a lone continuation, 0xff, a truncated sequence, an overlong '/',
     * a surrogate, past U+10FFFF; and good two-, three-, four-byte ones */
    static const char  msg[] = "a\x80" "b\xff" "c\xe2\x82" "d\xc0\xaf"
                               "e\xed\xa0\x80" "f\xf4\x90\x80\x80"
                               " \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80";
    static const char  want[] = "a\xef\xbf\xbd" "b\xef\xbf\xbd"
                                "c\xef\xbf\xbd\xef\xbf\xbd"
                                "d\xef\xbf\xbd\xef\xbf\xbd"
                                "e\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
                                "f\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
                                "\xef\xbf\xbd"
                                " \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80";
    char               buf[1024];
    json_t            *o, *v;

    o = build(buf, sizeof(buf), "info", "e", msg, NULL);
    assert_string_equal(json_string_value(json_object_get(o, "msg")), want);
    json_decref(o);

    /* the helper for fields from outside */
    v = gs_logline_str("x\xfey");
    assert_non_null(v);
    assert_string_equal(json_string_value(v), "x\xef\xbf\xbdy");
    json_decref(v);
    v = gs_logline_str(NULL);
    assert_string_equal(json_string_value(v), "");
    json_decref(v);

    /* a field that came in unchecked is mended, not lost */
    o = build(buf, sizeof(buf), "info", "e", "m",
              json_pack("{s:o, s:i}", "bad",
                        json_stringn_nocheck("p\xff", 2), "n", 1));
    assert_string_equal(json_string_value(json_object_get(o, "bad")),
                        "p\xef\xbf\xbd");
    assert_int_equal(json_integer_value(json_object_get(o, "n")), 1);
    json_decref(o);

    /* deeper down it cannot be mended: the field goes, the line stays */
    o = build(buf, sizeof(buf), "info", "e", "m",
              json_pack("{s:[o], s:i}", "deep",
                        json_stringn_nocheck("\xff", 1), "n", 1));
    assert_null(json_object_get(o, "deep"));
    assert_true(json_is_true(json_object_get(o, "truncated")));
    json_decref(o);
}


static void
test_fields_cannot_overwrite_the_envelope(void **state)
{
    char     buf[1024];
    json_t  *o;

    o = build(buf, sizeof(buf), "info", "real", "the message",
              json_pack("{s:s, s:s, s:s, s:s, s:i, s:s, s:s, s:b, s:s, s:i}",
                        "time", "never", "level", "fatal",
                        "service", "fake", "server", "evil", "pid", 1,
                        "event", "forged", "msg", "other",
                        "truncated", 0, "fleet", "f", "kept", 7));
    assert_string_equal(json_string_value(json_object_get(o, "time")),
                        "2026-11-29T21:03:04.123Z");
    assert_string_equal(json_string_value(json_object_get(o, "level")),
                        "info");
    assert_string_equal(json_string_value(json_object_get(o, "service")),
                        "game-server");
    assert_string_equal(json_string_value(json_object_get(o, "server")),
                        "local-7777-1a2b3c");
    assert_int_equal(json_integer_value(json_object_get(o, "pid")), 4242);
    assert_string_equal(json_string_value(json_object_get(o, "event")),
                        "real");
    assert_string_equal(json_string_value(json_object_get(o, "msg")),
                        "the message");
    assert_null(json_object_get(o, "truncated"));
    /* "fleet" is a field on a server's line (the identity key is
     * "server"), as "server" is a field on the fleet's */
    assert_string_equal(json_string_value(json_object_get(o, "fleet")), "f");
    assert_int_equal(json_integer_value(json_object_get(o, "kept")), 7);
    json_decref(o);
}


static void
test_a_long_message_is_cut_and_said_so(void **state)
{
    char         buf[1024], *msg;
    json_t      *o;
    const char  *m;

    msg = malloc(5001);
    memset(msg, 'x', 5000);
    msg[5000] = '\0';
    o = build(buf, sizeof(buf), "info", "e", msg,
              json_pack("{s:s, s:i}", "player", "p1", "slot", 2));
    assert_true(json_is_true(json_object_get(o, "truncated")));
    m = json_string_value(json_object_get(o, "msg"));
    assert_true(strlen(m) > 500);           /* cut by what is needed */
    assert_memory_equal(m, msg, strlen(m));
    /* the fields survive a long message */
    assert_string_equal(json_string_value(json_object_get(o, "player")),
                        "p1");
    assert_int_equal(json_integer_value(json_object_get(o, "slot")), 2);
    json_decref(o);
    free(msg);
}


static void
test_cuts_fall_on_character_boundaries_and_escapes_fit(void **state)
{
    char     buf[1024], msg[6001];
    json_t  *o;
    size_t   i;

    /* "é" is two bytes: an odd cut would leave half of one */
    for (i = 0; i + 2 <= 6000; i += 2) {
        memcpy(msg + i, "\xc3\xa9", 2);
    }
    msg[i] = '\0';
    o = build(buf, sizeof(buf), "info", "e", msg, NULL);
    assert_true(json_is_true(json_object_get(o, "truncated")));
    assert_int_equal(strlen(json_string_value(json_object_get(o, "msg")))
                     % 2, 0);
    json_decref(o);

    /* control bytes take six bytes each in JSON (\u0001) */
    memset(msg, 1, 3000);
    msg[3000] = '\0';
    o = build(buf, sizeof(buf), "info", "e", msg, NULL);
    assert_true(json_is_true(json_object_get(o, "truncated")));
    json_decref(o);
}


static void
test_long_fields_are_cut_then_nested_ones_dropped(void **state)
{
    char     buf[1024], big[3001];
    json_t  *o, *list;
    int      i;

    memset(big, 'd', 3000);
    big[3000] = '\0';
    o = build(buf, sizeof(buf), "warn", "e", "short message",
              json_pack("{s:s, s:i}", "detail", big, "n", 5));
    assert_true(json_is_true(json_object_get(o, "truncated")));
    assert_string_equal(json_string_value(json_object_get(o, "msg")),
                        "short message");
    assert_true(json_string_length(json_object_get(o, "detail")) > 100);
    json_decref(o);

    /* an array of many short strings cannot be cut: it is dropped */
    list = json_array();
    for (i = 0; i < 400; i++) {
        json_array_append_new(list, json_string("player-id"));
    }
    o = build(buf, sizeof(buf), "info", "match_start", "started",
              json_pack("{s:s, s:o, s:i}", "match_id", "m1", "seated", list,
                        "players", 400));
    assert_true(json_is_true(json_object_get(o, "truncated")));
    assert_null(json_object_get(o, "seated"));
    assert_string_equal(json_string_value(json_object_get(o, "match_id")),
                        "m1");
    assert_int_equal(json_integer_value(json_object_get(o, "players")), 400);
    json_decref(o);

    /* many flat fields, each short: dropped at last, the envelope stays */
    list = json_object();
    for (i = 0; i < 200; i++) {
        char  key[16];

        snprintf(key, sizeof(key), "k%d", i);
        json_object_set_new(list, key, json_integer(i));
    }
    o = build(buf, sizeof(buf), "info", "many", "m", list);
    assert_true(json_is_true(json_object_get(o, "truncated")));
    json_decref(o);
}


static void
test_the_smallest_buffer_holds_the_worst_identity(void **state)
{
    gs_logline_who_t  saved = who;
    char              buf[GS_LOGLINE_MIN], id[200], *msg;
    json_t           *o;
    size_t            n;

    /* control bytes only, longer than kept: six bytes each in JSON */
    memset(id, 1, sizeof(id) - 1);
    id[sizeof(id) - 1] = '\0';
    gs_logline_who(&who, id, "server", id, -1234567890L);
    assert_int_equal(strlen(who.id), GS_LOGLINE_ID_MAX);
    assert_int_equal(strlen(who.service), GS_LOGLINE_ID_MAX);

    msg = malloc(4001);
    memset(msg, 2, 4000);
    msg[4000] = '\0';
    o = build(buf, sizeof(buf), "debug", id, msg,
              json_pack("{s:s}", "detail", msg));
    assert_true(json_is_true(json_object_get(o, "truncated")));
    json_decref(o);
    free(msg);

    /* too small a buffer: nothing, not half a line */
    n = gs_logline_build(buf, GS_LOGLINE_MIN - 1, &who, T0, "info", "e", "m",
                         json_pack("{s:i}", "n", 1));
    assert_int_equal(n, 0);
    who = saved;
}


static void
test_identity_is_cut_and_made_utf8(void **state)
{
    gs_logline_who_t  w;
    char              id[100];

    memset(id, 'a', sizeof(id) - 1);
    id[sizeof(id) - 1] = '\0';
    id[63] = (char) 0xc3;       /* "é" across the cut: the half is gone */
    id[64] = (char) 0xa9;
    gs_logline_who(&w, "game-fleet", "fleet", id, 1);
    assert_int_equal(strlen(w.id), 63);
    gs_logline_who(&w, "game-fleet", "fleet", "eu\xff", 1);
    assert_string_equal(w.id, "eu\xef\xbf\xbd");
    assert_string_equal(w.id_key, "fleet");
    gs_logline_who(&w, NULL, "fleet", NULL, 1);
    assert_string_equal(w.service, "");
    assert_string_equal(w.id, "");
}


/* random bytes of random lengths, into buffers of random sizes */
static void
test_any_bytes_make_a_valid_line(void **state)
{
    char          *buf, msg[3001], field[300];
    json_t        *o;
    size_t         size, len, flen, n, i;
    unsigned int   seed = 12345;
    int            round;

    buf = malloc(4096);
    for (round = 0; round < 3000; round++) {
        len = (size_t) rand_r(&seed) % 3000;
        for (i = 0; i < len; i++) {
            /* no NUL: a C string ends there */
            msg[i] = (char) (1 + rand_r(&seed) % 255);
        }
        msg[len] = '\0';
        flen = (size_t) rand_r(&seed) % 300;
        for (i = 0; i < flen; i++) {
            field[i] = (char) (1 + rand_r(&seed) % 255);
        }
        field[flen] = '\0';
        size = GS_LOGLINE_MIN
               + (size_t) rand_r(&seed) % (4096 - GS_LOGLINE_MIN);

        n = gs_logline_build(buf, size, &who, T0, "info", "fuzz", msg,
                             json_pack("{s:o, s:I}", "detail",
                                       gs_logline_str(field), "round",
                                       (json_int_t) round));
        o = valid_line(buf, n, size);
        assert_string_equal(json_string_value(json_object_get(o, "event")),
                            "fuzz");
        json_decref(o);
    }
    free(buf);
}


static void
test_a_budget_tells_a_few_lines_a_second_and_counts_the_rest(void **state)
{
    gs_logline_budget_t  b;
    uint64_t             untold = 99;
    int                  i, told = 0;

    memset(&b, 0, sizeof(b));
    for (i = 0; i < 20; i++) {
        told += gs_logline_budget_take(&b, 5000 + i, 8, &untold);
    }
    assert_int_equal(told, 8);
    assert_int_equal(untold, 0);            /* the last told had none */

    /* the next second: the first line tells what went untold */
    assert_int_equal(gs_logline_budget_take(&b, 6000, 8, &untold), 1);
    assert_int_equal(untold, 12);
    assert_int_equal(gs_logline_budget_take(&b, 6001, 8, &untold), 1);
    assert_int_equal(untold, 0);

    /* a clock that went back starts a new second rather than go silent */
    for (i = 0; i < 8; i++) {
        (void) gs_logline_budget_take(&b, 6002, 8, &untold);
    }
    assert_int_equal(gs_logline_budget_take(&b, 100, 8, &untold), 1);
    assert_int_equal(untold, 2);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_time_is_rfc3339_utc_with_milliseconds),
        cmocka_unit_test(test_envelope_first_then_event_msg_and_typed_fields),
        cmocka_unit_test(test_free_form_lines_have_no_event),
        cmocka_unit_test(test_levels_are_the_four_names),
        cmocka_unit_test(
            test_quotes_backslashes_and_control_bytes_come_back_intact),
        cmocka_unit_test(test_bad_utf8_becomes_replacement_characters),
        cmocka_unit_test(test_fields_cannot_overwrite_the_envelope),
        cmocka_unit_test(test_a_long_message_is_cut_and_said_so),
        cmocka_unit_test(
            test_cuts_fall_on_character_boundaries_and_escapes_fit),
        cmocka_unit_test(test_long_fields_are_cut_then_nested_ones_dropped),
        cmocka_unit_test(test_the_smallest_buffer_holds_the_worst_identity),
        cmocka_unit_test(test_identity_is_cut_and_made_utf8),
        cmocka_unit_test(test_any_bytes_make_a_valid_line),
        cmocka_unit_test(
            test_a_budget_tells_a_few_lines_a_second_and_counts_the_rest),
    };

    return cmocka_run_group_tests(tests, setup, NULL);
}
