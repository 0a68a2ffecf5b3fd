
/*
 * What clients and admins send the economy, checked without nginx: the
 * handlers (ngx_game_econ_store.c, ngx_game_econ_admin.c) answer what
 * these functions say, and the unit tests (tests/unit/test_econ_check.c)
 * and the JSON fuzz harness run the very same checks.
 *
 * Each returns 0 when the body will do, or -1 with the error's code and
 * message for the client (static strings).
 */

#ifndef _GAME_ECON_CHECK_H_INCLUDED_
#define _GAME_ECON_CHECK_H_INCLUDED_


#include <jansson.h>


#define GAME_ECON_QTY_MAX   1000000     /* items in one purchase */


/* {"item_id": "...", "quantity": n, "currency": "soft" | "hard"} */
int game_econ_purchase_check(json_t *body, const char **code,
    const char **message);

/* {"soft"?: n, "hard"?: n, "item_id"?: "...", "quantity"?: n,
 *  "reason": "..."}: at least one of soft, hard and item_id */
int game_econ_grant_check(json_t *body, const char **code,
    const char **message);

/* a catalog item: {"item_id": "...", ...} */
int game_econ_item_check(json_t *body, const char **code,
    const char **message);


#endif /* _GAME_ECON_CHECK_H_INCLUDED_ */
