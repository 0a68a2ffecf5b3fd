
/*
 * Checks of the economy's request bodies; see game_econ_check.h.
 */

#include <string.h>

#include "game_econ_check.h"


int
game_econ_purchase_check(json_t *body, const char **code,
    const char **message)
{
    json_t  *item, *qty, *cur;

    item = json_object_get(body, "item_id");
    qty = json_object_get(body, "quantity");
    cur = json_object_get(body, "currency");

    if (!json_is_string(item) || json_string_length(item) == 0
        || json_string_length(item) > 64)
    {
        *code = "invalid_field";
        *message = "\"item_id\" must be an item's id";
        return -1;
    }

    if (!json_is_integer(qty) || json_integer_value(qty) < 1
        || json_integer_value(qty) > GAME_ECON_QTY_MAX)
    {
        *code = "invalid_quantity";
        *message = "\"quantity\" must be a whole number from 1 on";
        return -1;
    }

    if (!json_is_string(cur)
        || (strcmp(json_string_value(cur), "soft") != 0
            && strcmp(json_string_value(cur), "hard") != 0))
    {
        *code = "invalid_currency";
        *message = "\"currency\" is \"soft\" or \"hard\"";
        return -1;
    }

    return 0;
}


int
game_econ_grant_check(json_t *body, const char **code, const char **message)
{
    json_t  *soft, *hard, *item, *qty, *reason;

    soft = json_object_get(body, "soft");
    hard = json_object_get(body, "hard");
    item = json_object_get(body, "item_id");
    qty = json_object_get(body, "quantity");
    reason = json_object_get(body, "reason");

    if ((soft && !json_is_integer(soft)) || (hard && !json_is_integer(hard))
        || (item && !json_is_string(item))
        || (qty && (!json_is_integer(qty) || json_integer_value(qty) < 1))
        || !json_is_string(reason) || json_string_length(reason) == 0
        || (soft == NULL && hard == NULL && item == NULL))
    {
        *code = "invalid_grant";
        *message = "a grant is {soft?, hard?, item_id?, quantity?, reason}: "
                   "whole numbers, an item's id, and why";
        return -1;
    }

    return 0;
}


int
game_econ_item_check(json_t *body, const char **code, const char **message)
{
    json_t  *id;

    id = json_object_get(body, "item_id");

    if (!json_is_string(id) || json_string_length(id) == 0) {
        *code = "invalid_item";
        *message = "an item needs its \"item_id\"";
        return -1;
    }

    return 0;
}
