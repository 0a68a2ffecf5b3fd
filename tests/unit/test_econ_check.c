/*
 * Unit tests for the economy's request body checks
 * (ngx_modules/economy/game_econ_check.c).
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "game_econ_check.h"


typedef int (*check_pt)(json_t *body, const char **code,
    const char **message);


/* the code a body gets, "" when it passes */
static const char *
verdict(check_pt check, const char *text)
{
    json_t      *body;
    const char  *code, *message;

    body = json_loads(text, 0, NULL);
    assert_non_null(body);

    code = "";
    message = NULL;
    if (check(body, &code, &message) != 0) {
        assert_non_null(message);
    }

    json_decref(body);
    return code;
}


static void
test_purchase(void **state)
{
    check_pt  c = game_econ_purchase_check;

    assert_string_equal(verdict(c, "{\"item_id\": \"sword\", \"quantity\": 1, "
                                   "\"currency\": \"soft\"}"), "");
    assert_string_equal(verdict(c, "{\"item_id\": \"sword\", "
                                   "\"quantity\": 1000000, "
                                   "\"currency\": \"hard\"}"), "");

    assert_string_equal(verdict(c, "{\"quantity\": 1, \"currency\": "
                                   "\"soft\"}"), "invalid_field");
    assert_string_equal(verdict(c, "{\"item_id\": \"\", \"quantity\": 1, "
                                   "\"currency\": \"soft\"}"), "invalid_field");
    assert_string_equal(verdict(c, "{\"item_id\": 7, \"quantity\": 1, "
                                   "\"currency\": \"soft\"}"), "invalid_field");

    assert_string_equal(verdict(c, "{\"item_id\": \"sword\", \"quantity\": 0, "
                                   "\"currency\": \"soft\"}"),
                        "invalid_quantity");
    assert_string_equal(verdict(c, "{\"item_id\": \"sword\", "
                                   "\"quantity\": 1000001, "
                                   "\"currency\": \"soft\"}"),
                        "invalid_quantity");
    assert_string_equal(verdict(c, "{\"item_id\": \"sword\", "
                                   "\"quantity\": 1.0, "
                                   "\"currency\": \"soft\"}"),
                        "invalid_quantity");

    assert_string_equal(verdict(c, "{\"item_id\": \"sword\", \"quantity\": 1, "
                                   "\"currency\": \"gems\"}"),
                        "invalid_currency");
    assert_string_equal(verdict(c, "{\"item_id\": \"sword\", \"quantity\": 1}"),
                        "invalid_currency");
}


static void
test_grant_and_item(void **state)
{
    assert_string_equal(verdict(game_econ_grant_check,
                                "{\"soft\": -5, \"reason\": \"refund\"}"), "");
    assert_string_equal(verdict(game_econ_grant_check,
                                "{\"item_id\": \"sword\", \"quantity\": 2, "
                                "\"reason\": \"event\"}"), "");
    /* nothing to grant, or no reason */
    assert_string_equal(verdict(game_econ_grant_check,
                                "{\"reason\": \"why\"}"), "invalid_grant");
    assert_string_equal(verdict(game_econ_grant_check,
                                "{\"soft\": 5, \"reason\": \"\"}"),
                        "invalid_grant");
    assert_string_equal(verdict(game_econ_grant_check,
                                "{\"item_id\": \"s\", \"quantity\": 0, "
                                "\"reason\": \"x\"}"), "invalid_grant");

    assert_string_equal(verdict(game_econ_item_check,
                                "{\"item_id\": \"sword\", \"price\": 5}"), "");
    assert_string_equal(verdict(game_econ_item_check, "{\"price\": 5}"),
                        "invalid_item");
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_purchase),
        cmocka_unit_test(test_grant_and_item),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
