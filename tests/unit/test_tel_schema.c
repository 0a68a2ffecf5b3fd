/*
 * Unit tests for telemetry's event types and the check of an event
 * (ngx_modules/telemetry/game_tel_schema.c).
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "game_tel_schema.h"


#define NOW  1800000000000LL
#define ID   "0d6f1f2e-8a3c-4b5d-9e7f-001122334455"


static const char  *types_json =
    "{\"types\": {"
    " \"session.start\": {\"max_bytes\": 128, \"fields\": {"
    "    \"platform\": {\"type\": \"string\", \"required\": true,"
    "                   \"max_length\": 8},"
    "    \"fps\": {\"type\": \"integer\", \"min\": 0, \"max\": 1000},"
    "    \"ratio\": {\"type\": \"number\", \"max\": 1.5},"
    "    \"vsync\": {\"type\": \"boolean\"},"
    "    \"friend\": {\"type\": \"uuid\"},"
    "    \"mods\": {\"type\": \"array\", \"max_items\": 2},"
    "    \"extra\": {\"type\": \"object\"}}},"
    " \"free.form\": {\"from\": \"any\", \"additional\": true},"
    " \"position\": {\"from\": \"server\", \"fields\": {"
    "    \"x\": {\"type\": \"number\", \"required\": true}}}"
    "}}";


static int
setup(void **state)
{
    char              err[256];
    json_t           *doc;
    json_error_t      jerr;
    game_tel_types_t *t;

    doc = json_loads(types_json, 0, &jerr);
    assert_non_null(doc);
    t = game_tel_types_parse(doc, err, sizeof(err));
    json_decref(doc);
    assert_non_null(t);
    *state = t;
    return 0;
}


static int
teardown(void **state)
{
    game_tel_types_free(*state);
    return 0;
}


static const char *
check(void **state, unsigned from, const char *event)
{
    static char        code[64];
    json_t            *e;
    json_error_t       jerr;
    const char        *rc;
    game_tel_check_t   c = { from, NOW, 3600000, 300000 };

    e = json_loads(event, 0, &jerr);
    if (e == NULL) {
        fail_msg("bad test JSON: %s", event);
    }
    rc = game_tel_event_check(*state, e, &c);
    snprintf(code, sizeof(code), "%s", rc ? rc : "ok");
    json_decref(e);
    return code;
}


#define CLIENT(s)  check(state, GAME_TEL_FROM_CLIENT, s)
#define SERVER(s)  check(state, GAME_TEL_FROM_SERVER, s)
#define EV(type, ts, payload) \
    "{\"event_id\":\"" ID "\",\"type\":\"" type "\",\"ts\":" ts \
    ",\"payload\":" payload "}"


static void
test_a_valid_event_passes(void **state)
{
    assert_string_equal(CLIENT(EV("session.start", "1800000000000",
                                  "{\"platform\":\"pc\",\"fps\":60,"
                                  "\"ratio\":1.25,\"vsync\":true,"
                                  "\"friend\":\"" ID "\",\"mods\":[1,2],"
                                  "\"extra\":{}}")), "ok");
    /* a type with "additional": anything in its payload, or none at all */
    assert_string_equal(CLIENT(EV("free.form", "1800000000000",
                                  "{\"anything\":[1,{\"a\":null}]}")), "ok");
    assert_string_equal(CLIENT("{\"event_id\":\"" ID "\",\"type\":"
                               "\"free.form\",\"ts\":1800000000000}"), "ok");
    assert_string_equal(CLIENT("{\"event_id\":\"" ID "\",\"type\":"
                               "\"free.form\",\"ts\":1800000000000,"
                               "\"session_id\":null}"), "ok");
}


static void
test_identity_and_envelope(void **state)
{
    assert_string_equal(CLIENT("[]"), "invalid_event");
    assert_string_equal(CLIENT("{\"event_id\":\"" ID "\",\"type\":"
                               "\"free.form\",\"ts\":1800000000000,"
                               "\"player_id\":\"" ID "\"}"),
                        "invalid_event");
    assert_string_equal(CLIENT("{\"type\":\"free.form\",\"ts\":1}"),
                        "invalid_event_id");
    assert_string_equal(CLIENT("{\"event_id\":\"0D6F1F2E-8A3C-4B5D-9E7F-"
                               "001122334455\",\"type\":\"free.form\","
                               "\"ts\":1800000000000}"), "invalid_event_id");
    assert_string_equal(CLIENT("{\"event_id\":\"" ID "\",\"type\":7,"
                               "\"ts\":1800000000000}"), "invalid_event");
    assert_string_equal(CLIENT(EV("no.such", "1800000000000", "{}")),
                        "unknown_type");
    assert_string_equal(CLIENT("{\"event_id\":\"" ID "\",\"type\":"
                               "\"free.form\",\"ts\":\"now\"}"), "invalid_ts");
    assert_string_equal(CLIENT("{\"event_id\":\"" ID "\",\"type\":"
                               "\"free.form\",\"ts\":1.8e12}"), "invalid_ts");
    assert_string_equal(CLIENT("{\"event_id\":\"" ID "\",\"type\":"
                               "\"free.form\",\"ts\":1800000000000,"
                               "\"session_id\":\"s1\"}"),
                        "invalid_session_id");
    assert_string_equal(CLIENT(EV("free.form", "1800000000000", "[1]")),
                        "invalid_payload");
}


static void
test_the_time_window(void **state)
{
    /* an hour back and five minutes ahead, edges included */
    assert_string_equal(CLIENT(EV("free.form", "1799996400000", "{}")), "ok");
    assert_string_equal(CLIENT(EV("free.form", "1799996399999", "{}")),
                        "ts_out_of_range");
    assert_string_equal(CLIENT(EV("free.form", "1800000300000", "{}")), "ok");
    assert_string_equal(CLIENT(EV("free.form", "1800000300001", "{}")),
                        "ts_out_of_range");
}


static void
test_who_may_send_what(void **state)
{
    assert_string_equal(CLIENT(EV("position", "1800000000000", "{\"x\":1}")),
                        "unknown_type");
    assert_string_equal(SERVER(EV("position", "1800000000000", "{\"x\":1}")),
                        "ok");
    assert_string_equal(SERVER(EV("session.start", "1800000000000",
                                  "{\"platform\":\"pc\"}")), "unknown_type");
    assert_string_equal(SERVER(EV("free.form", "1800000000000", "{}")), "ok");
    /* a server names the player; a UUID or null */
    assert_string_equal(SERVER("{\"event_id\":\"" ID "\",\"type\":"
                               "\"free.form\",\"ts\":1800000000000,"
                               "\"player_id\":\"" ID "\"}"), "ok");
    assert_string_equal(SERVER("{\"event_id\":\"" ID "\",\"type\":"
                               "\"free.form\",\"ts\":1800000000000,"
                               "\"player_id\":null}"), "ok");
    assert_string_equal(SERVER("{\"event_id\":\"" ID "\",\"type\":"
                               "\"free.form\",\"ts\":1800000000000,"
                               "\"player_id\":\"bob\"}"), "invalid_player_id");
}


static void
test_payload_fields(void **state)
{
#define SS(p) CLIENT(EV("session.start", "1800000000000", p))
    assert_string_equal(SS("{}"), "invalid_payload");            /* required */
    assert_string_equal(SS("{\"platform\":null}"), "invalid_payload");
    assert_string_equal(SS("{\"platform\":\"toolongname\"}"),
                        "invalid_payload");
    assert_string_equal(SS("{\"platform\":\"pc\",\"fps\":1.5}"),
                        "invalid_payload");
    assert_string_equal(SS("{\"platform\":\"pc\",\"fps\":-1}"),
                        "invalid_payload");
    assert_string_equal(SS("{\"platform\":\"pc\",\"fps\":1001}"),
                        "invalid_payload");
    assert_string_equal(SS("{\"platform\":\"pc\",\"ratio\":2}"),
                        "invalid_payload");
    assert_string_equal(SS("{\"platform\":\"pc\",\"vsync\":1}"),
                        "invalid_payload");
    assert_string_equal(SS("{\"platform\":\"pc\",\"friend\":\"x\"}"),
                        "invalid_payload");
    assert_string_equal(SS("{\"platform\":\"pc\",\"mods\":[1,2,3]}"),
                        "invalid_payload");
    assert_string_equal(SS("{\"platform\":\"pc\",\"extra\":[]}"),
                        "invalid_payload");
    /* no field it does not declare */
    assert_string_equal(SS("{\"platform\":\"pc\",\"colour\":\"red\"}"),
                        "invalid_payload");
    /* 128 bytes serialised at most */
    assert_string_equal(SS("{\"platform\":\"pc\",\"extra\":{\"a\":"
                           "\"0123456789012345678901234567890123456789\","
                           "\"b\":"
                           "\"0123456789012345678901234567890123456789\","
                           "\"c\":\"0123456789\"}}"),
                        "payload_too_large");
#undef SS
}


static void
test_declarations_are_checked(void **state)
{
    size_t         i;
    char           err[256];
    json_t        *doc;
    json_error_t   jerr;

    static const char  *bad[][2] = {
        { "{}", "at least one type" },
        { "{\"types\":{\"Bad\":{}}}", "type \"Bad\"" },
        { "{\"types\":{\"a\":{\"from\":\"player\"}}}", "\"from\"" },
        { "{\"types\":{\"a\":{\"max_bytes\":1}}}", "\"max_bytes\"" },
        { "{\"types\":{\"a\":{\"fields\":{\"f\":{\"type\":\"date\"}}}}}",
          "field \"f\"" },
        { "{\"types\":{\"a\":{\"fields\":{\"f\":{\"type\":\"integer\","
          "\"max_length\":3}}}}}", "\"max_length\"" },
        { "{\"types\":{\"a\":{\"fields\":{\"f\":{\"type\":\"number\","
          "\"min\":3,\"max\":2}}}}}", "\"max\"" },
        { "{\"types\":{\"a\":{\"additional\":\"yes\"}}}", "\"additional\"" },
    };

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        doc = json_loads(bad[i][0], 0, &jerr);
        assert_non_null(doc);
        err[0] = '\0';
        assert_null(game_tel_types_parse(doc, err, sizeof(err)));
        json_decref(doc);
        if (strstr(err, bad[i][1]) == NULL) {
            fail_msg("\"%s\": error \"%s\" does not say %s", bad[i][0], err,
                     bad[i][1]);
        }
    }

    assert_int_equal(game_tel_types_count(*state), 3);
    assert_true(game_tel_type_name_valid("a.b:c-d_9", 9));
    assert_false(game_tel_type_name_valid("9a", 2));
    assert_false(game_tel_type_name_valid("", 0));
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_a_valid_event_passes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_identity_and_envelope, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_the_time_window, setup, teardown),
        cmocka_unit_test_setup_teardown(test_who_may_send_what, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_payload_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_declarations_are_checked, setup,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
