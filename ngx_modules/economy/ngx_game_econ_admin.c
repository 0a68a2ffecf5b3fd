
/*
 * The admin endpoints:
 *
 *   POST /admin/players/{playerId}/grant  {soft?, hard?, item_id?, quantity?,
 *                                          reason}  + Idempotency-Key
 *   POST /admin/catalog                   an item of the catalogue, added
 *                                          or changed
 *
 * An admin sends "Authorization: Bearer <secret>", one of the secrets
 * declared with game_econ_admin (a name and a file each), checked by the
 * core (ngx_game_admin_who(): SHA-256, constant time, every admin; no
 * player token can pass).  These locations must not be behind
 * game_auth_jwt.  The admin's name is written in the ledger row of every
 * grant.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_game_econ.h"


static ngx_game_admin_t *ngx_game_econ_admin_who(ngx_http_request_t *r);
static void ngx_game_econ_grant_body(ngx_http_request_t *r, json_t *body);
static void ngx_game_econ_catalog_body(ngx_http_request_t *r, json_t *body);


static ngx_game_pg_stmt_t  ngx_game_econ_grant_stmt = {
    "game_econ_grant",
    "SELECT (a->>'status')::integer, a->'body', a ? 'replayed' "
    "FROM econ_grant($1::uuid, $2, $3, $4::bigint, $5::bigint, $6, "
    "$7::integer, $8, $9::bigint, $10::bigint) AS a",
    10
};

static ngx_game_pg_stmt_t  ngx_game_econ_catalog_put_stmt = {
    "game_econ_catalog_put",
    "SELECT (a->>'status')::integer, a->'body', a ? 'replayed' "
    "FROM econ_catalog_put($1::jsonb) AS a",
    1
};


typedef struct {
    ngx_game_econ_write_t       w;          /* first: the write's ctx */
    ngx_game_admin_t           *admin;
} ngx_game_econ_grant_t;


ngx_int_t
ngx_game_econ_admin_grant(ngx_http_request_t *r)
{
    ngx_int_t               rc;
    ngx_game_econ_grant_t  *g;

    g = ngx_pcalloc(r->pool, sizeof(ngx_game_econ_grant_t));
    if (g == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    g->admin = ngx_game_econ_admin_who(r);
    if (g->admin == NULL) {
        return ngx_game_http_send_error(r, NGX_HTTP_UNAUTHORIZED,
                                        "unauthorized",
                                        "an admin credential is required");
    }

    if (r->method != NGX_HTTP_POST) {
        return ngx_game_http_send_error(r, NGX_HTTP_NOT_ALLOWED,
                                        "method_not_allowed",
                                        "grant with POST");
    }

    if (ngx_game_econ_path_id(r, 2, &g->w.player) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (!game_uuid_valid(g->w.player.data, g->w.player.len)) {
        return ngx_game_http_send_error(r, NGX_HTTP_NOT_FOUND, "no_player",
                                        "no such player");
    }

    rc = ngx_game_econ_idempotency_key(r, &g->w.key);
    if (rc != NGX_OK) {
        return ngx_game_econ_refuse(r, rc);
    }

    g->w.wallet = "grant";

    ngx_http_set_ctx(r, g, ngx_game_econ_module);

    return ngx_game_http_read_json(r, ngx_game_econ_grant_body);
}


static void
ngx_game_econ_grant_body(ngx_http_request_t *r, json_t *body)
{
    json_t                     *soft, *hard, *item, *qty, *reason;
    ngx_int_t                   rc;
    const char                 *values[10];
    ngx_game_econ_grant_t      *g;
    ngx_game_econ_main_conf_t  *emcf;

    g = ngx_http_get_module_ctx(r, ngx_game_econ_module);
    emcf = ngx_http_get_module_main_conf(r, ngx_game_econ_module);

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
        ngx_http_finalize_request(r,
            ngx_game_http_send_error(r, NGX_GAME_HTTP_UNPROCESSABLE,
                                     "invalid_grant",
                                     "a grant is {soft?, hard?, item_id?, "
                                     "quantity?, reason}: whole numbers, an "
                                     "item's id, and why"));
        return;
    }

    values[0] = (char *) g->w.player.data;
    values[1] = (char *) g->w.key.data;
    values[2] = (char *) g->admin->name.data;
    values[3] = (char *) ngx_game_econ_number(r->pool,
                                       soft ? json_integer_value(soft) : 0);
    values[4] = (char *) ngx_game_econ_number(r->pool,
                                       hard ? json_integer_value(hard) : 0);
    values[5] = item ? json_string_value(item) : NULL;
    values[6] = (char *) ngx_game_econ_number(r->pool,
                                       qty ? json_integer_value(qty) : 1);
    values[7] = json_string_value(reason);
    values[8] = (char *) ngx_game_econ_number(r->pool, emcf->start_soft);
    values[9] = (char *) ngx_game_econ_number(r->pool, emcf->start_hard);

    if (values[3] == NULL || values[4] == NULL || values[6] == NULL
        || values[8] == NULL || values[9] == NULL)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    rc = ngx_game_econ_query(r, &ngx_game_econ_grant_stmt, values,
                             ngx_game_econ_written);
    ngx_http_finalize_request(r, rc);
}


ngx_int_t
ngx_game_econ_admin_catalog(ngx_http_request_t *r)
{
    if (ngx_game_econ_admin_who(r) == NULL) {
        return ngx_game_http_send_error(r, NGX_HTTP_UNAUTHORIZED,
                                        "unauthorized",
                                        "an admin credential is required");
    }

    if (r->method != NGX_HTTP_POST) {
        return ngx_game_http_send_error(r, NGX_HTTP_NOT_ALLOWED,
                                        "method_not_allowed",
                                        "change the catalog with POST");
    }

    return ngx_game_http_read_json(r, ngx_game_econ_catalog_body);
}


static void
ngx_game_econ_catalog_body(ngx_http_request_t *r, json_t *body)
{
    char        *text;
    json_t      *id;
    ngx_int_t    rc;
    const char  *values[1];

    id = json_object_get(body, "item_id");

    if (!json_is_string(id) || json_string_length(id) == 0) {
        ngx_http_finalize_request(r,
            ngx_game_http_send_error(r, NGX_GAME_HTTP_UNPROCESSABLE,
                                     "invalid_item",
                                     "an item needs its \"item_id\""));
        return;
    }

    text = json_dumps(body, JSON_COMPACT);
    if (text == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    values[0] = (char *) ngx_pstrdup(r->pool, &(ngx_str_t) {
                                         ngx_strlen(text) + 1,
                                         (u_char *) text });
    free(text);

    if (values[0] == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    rc = ngx_game_econ_query(r, &ngx_game_econ_catalog_put_stmt, values,
                             ngx_game_econ_answered);
    ngx_http_finalize_request(r, rc);
}


/* the admin whose secret the request carries, or NULL */
static ngx_game_admin_t *
ngx_game_econ_admin_who(ngx_http_request_t *r)
{
    ngx_game_econ_main_conf_t  *emcf;

    emcf = ngx_http_get_module_main_conf(r, ngx_game_econ_module);

    return ngx_game_admin_who(r, &emcf->admins);
}
