
/*
 * Reading what players own, and equipping it:
 *
 *   GET  /inventory/{playerId}                 the owner sees every item;
 *                                              anyone else the equipped ones
 *   POST /inventory/{inventoryItemId}/equip    owner only
 *   POST /inventory/{inventoryItemId}/unequip  owner only
 *   GET  /player/me/wallet
 *   GET  /player/me/transactions?cursor=&limit=
 *   GET  /player/{playerId}/achievements       public
 *
 * Who may see what is decided in SQL from the two ids (owner, viewer), so
 * that no endpoint can forget the check; someone else's item answers 404,
 * as if it did not exist.  Inventories are served from their cache
 * (ngx_game_econ_cache.c) when it has them.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_game_econ.h"


#define NGX_GAME_ECON_PAGE_DEFAULT  50
#define NGX_GAME_ECON_PAGE_MAX      200


static void ngx_game_econ_inventory_cached(ngx_http_request_t *r,
    ngx_game_econ_cached_t *c);
static ngx_int_t ngx_game_econ_inventory_read(ngx_http_request_t *r,
    ngx_game_econ_cached_t *c);
static void ngx_game_econ_read_one(ngx_game_pg_query_t *q, ngx_int_t rc,
    PGresult *res);
static ngx_int_t ngx_game_econ_equipping(ngx_http_request_t *r,
    ngx_uint_t equip);
static ngx_int_t ngx_game_econ_arg_number(ngx_http_request_t *r,
    const char *name, ngx_int_t min, ngx_int_t max, ngx_int_t *n);


static ngx_game_pg_stmt_t  ngx_game_econ_inventory_stmt = {
    "game_econ_inventory",
    "SELECT econ_inventory($1::uuid, $2::uuid)",
    2
};

static ngx_game_pg_stmt_t  ngx_game_econ_equip_stmt = {
    "game_econ_equip",
    "SELECT (a->>'status')::integer, a->'body', a ? 'replayed' "
    "FROM econ_equip($1::uuid, $2::uuid, $3::boolean) AS a",
    3
};

static ngx_game_pg_stmt_t  ngx_game_econ_wallet_stmt = {
    "game_econ_wallet",
    "SELECT econ_wallet($1::uuid, $2::bigint, $3::bigint)",
    3
};

static ngx_game_pg_stmt_t  ngx_game_econ_transactions_stmt = {
    "game_econ_transactions",
    "SELECT econ_transactions($1::uuid, $2::bigint, $3::integer)",
    3
};

static ngx_game_pg_stmt_t  ngx_game_econ_achievements_stmt = {
    "game_econ_achievements",
    "SELECT econ_achievements($1::uuid)",
    1
};


ngx_int_t
ngx_game_econ_inventory(ngx_http_request_t *r)
{
    ngx_int_t                rc;
    ngx_game_econ_cached_t  *c;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return ngx_game_http_send_error(r, NGX_HTTP_NOT_ALLOWED,
                                        "method_not_allowed",
                                        "read an inventory with GET");
    }

    c = ngx_pcalloc(r->pool, sizeof(ngx_game_econ_cached_t));
    if (c == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_game_econ_who(r, &c->viewer);
    if (rc != NGX_OK) {
        return ngx_game_econ_refuse(r, rc);
    }

    if (ngx_game_econ_path_id(r, 1, &c->player) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* "me" reads one's own */
    if (c->player.len == 2 && ngx_strncmp(c->player.data, "me", 2) == 0) {
        c->player = c->viewer;
    }

    if (!game_uuid_valid(c->player.data, c->player.len)) {
        return ngx_game_http_send_error(r, NGX_HTTP_NOT_FOUND, "no_player",
                                        "no such player");
    }

    /* the view is decided here once, from the two ids: the owner's
     * document or the public one, never a mix */
    c->view = (ngx_strncasecmp(c->player.data, c->viewer.data, 36) == 0)
              ? "own" : "pub";
    c->done = ngx_game_econ_inventory_cached;
    ngx_http_set_ctx(r, c, ngx_game_econ_module);

    if (ngx_game_econ_cache_get(r, c) == NGX_AGAIN) {
        r->main->count++;
        return NGX_DONE;
    }

    return ngx_game_econ_inventory_read(r, c);
}


/* the cache answered: a hit is sent; a miss (or Redis away) reads */
static void
ngx_game_econ_inventory_cached(ngx_http_request_t *r,
    ngx_game_econ_cached_t *c)
{
    if (c->json.len) {
        ngx_http_finalize_request(r,
            ngx_game_http_send_text(r, NGX_HTTP_OK, &c->json));
        return;
    }

    ngx_http_finalize_request(r, ngx_game_econ_inventory_read(r, c));
}


static ngx_int_t
ngx_game_econ_inventory_read(ngx_http_request_t *r, ngx_game_econ_cached_t *c)
{
    const char  *values[2];

    values[0] = (char *) c->player.data;
    values[1] = (char *) c->viewer.data;

    return ngx_game_econ_query(r, &ngx_game_econ_inventory_stmt, values,
                               ngx_game_econ_read_one);
}


/* a read that answers one JSON value, or NULL for "no such player" */
static void
ngx_game_econ_read_one(ngx_game_pg_query_t *q, ngx_int_t rc, PGresult *res)
{
    ngx_str_t            body;
    ngx_http_request_t  *r = q->data;

    if (rc != NGX_OK || PQntuples(res) != 1) {
        ngx_http_finalize_request(r,
            ngx_game_http_send_outcome(r, rc == NGX_OK ? NGX_ERROR : rc,
                                       "the economy database"));
        return;
    }

    if (PQgetisnull(res, 0, 0)) {
        ngx_http_finalize_request(r,
            ngx_game_http_send_error(r, NGX_HTTP_NOT_FOUND, "no_player",
                                     "no such player"));
        return;
    }

    body.len = PQgetlength(res, 0, 0);
    body.data = ngx_pnalloc(r->pool, body.len);
    if (body.data == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }
    ngx_memcpy(body.data, PQgetvalue(res, 0, 0), body.len);

    /* an inventory read after a cache miss is kept for the next ones */
    if (q->stmt == &ngx_game_econ_inventory_stmt) {
        ngx_game_econ_cache_put(r, ngx_http_get_module_ctx(r,
                                                    ngx_game_econ_module),
                                &body);
    }

    ngx_http_finalize_request(r,
                              ngx_game_http_send_text(r, NGX_HTTP_OK, &body));
}


ngx_int_t
ngx_game_econ_equip(ngx_http_request_t *r)
{
    return ngx_game_econ_equipping(r, 1);
}


ngx_int_t
ngx_game_econ_unequip(ngx_http_request_t *r)
{
    return ngx_game_econ_equipping(r, 0);
}


static ngx_int_t
ngx_game_econ_equipping(ngx_http_request_t *r, ngx_uint_t equip)
{
    ngx_int_t               rc;
    ngx_str_t               item;
    const char             *values[3];
    ngx_game_econ_write_t  *w;

    if (r->method != NGX_HTTP_POST) {
        return ngx_game_http_send_error(r, NGX_HTTP_NOT_ALLOWED,
                                        "method_not_allowed",
                                        "equip and unequip with POST");
    }

    w = ngx_pcalloc(r->pool, sizeof(ngx_game_econ_write_t));
    if (w == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_game_econ_who(r, &w->player);
    if (rc != NGX_OK) {
        return ngx_game_econ_refuse(r, rc);
    }

    if (ngx_game_econ_path_id(r, 1, &item) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (!game_uuid_valid(item.data, item.len)) {
        return ngx_game_http_send_error(r, NGX_HTTP_NOT_FOUND, "no_item",
                                        "no such item in this inventory");
    }

    ngx_http_set_ctx(r, w, ngx_game_econ_module);

    values[0] = (char *) w->player.data;
    values[1] = (char *) item.data;
    values[2] = equip ? "true" : "false";

    return ngx_game_econ_query(r, &ngx_game_econ_equip_stmt, values,
                               ngx_game_econ_written);
}


ngx_int_t
ngx_game_econ_wallet(ngx_http_request_t *r)
{
    ngx_int_t                   rc;
    ngx_str_t                   player;
    const char                 *values[3];
    ngx_game_econ_main_conf_t  *emcf;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return ngx_game_http_send_error(r, NGX_HTTP_NOT_ALLOWED,
                                        "method_not_allowed",
                                        "read the wallet with GET");
    }

    rc = ngx_game_econ_who(r, &player);
    if (rc != NGX_OK) {
        return ngx_game_econ_refuse(r, rc);
    }

    emcf = ngx_http_get_module_main_conf(r, ngx_game_econ_module);

    values[0] = (char *) player.data;
    values[1] = (char *) ngx_game_econ_number(r->pool, emcf->start_soft);
    values[2] = (char *) ngx_game_econ_number(r->pool, emcf->start_hard);
    if (values[1] == NULL || values[2] == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_game_econ_query(r, &ngx_game_econ_wallet_stmt, values,
                               ngx_game_econ_read_one);
}


/* ?cursor= (the "next_cursor" of the page read last) &limit= (1..200) */
ngx_int_t
ngx_game_econ_transactions(ngx_http_request_t *r)
{
    ngx_int_t    rc, before, limit;
    ngx_str_t    player;
    const char  *values[3];

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return ngx_game_http_send_error(r, NGX_HTTP_NOT_ALLOWED,
                                        "method_not_allowed",
                                        "read the transactions with GET");
    }

    rc = ngx_game_econ_who(r, &player);
    if (rc != NGX_OK) {
        return ngx_game_econ_refuse(r, rc);
    }

    before = -1;
    limit = NGX_GAME_ECON_PAGE_DEFAULT;

    if (ngx_game_econ_arg_number(r, "cursor", 1, NGX_MAX_INT_T_VALUE,
                                 &before) != NGX_OK
        || ngx_game_econ_arg_number(r, "limit", 1, NGX_GAME_ECON_PAGE_MAX,
                                    &limit) != NGX_OK)
    {
        return ngx_game_http_send_error(r, NGX_GAME_HTTP_UNPROCESSABLE,
                                        "invalid_page",
                                        "\"cursor\" comes from a page's "
                                        "\"next_cursor\"; \"limit\" is 1 to "
                                        "200");
    }

    values[0] = (char *) player.data;
    values[1] = before > 0 ? (char *) ngx_game_econ_number(r->pool, before)
                           : NULL;
    values[2] = (char *) ngx_game_econ_number(r->pool, limit);
    if ((before > 0 && values[1] == NULL) || values[2] == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_game_econ_query(r, &ngx_game_econ_transactions_stmt, values,
                               ngx_game_econ_read_one);
}


ngx_int_t
ngx_game_econ_achievements(ngx_http_request_t *r)
{
    ngx_str_t    player;
    const char  *values[1];

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return ngx_game_http_send_error(r, NGX_HTTP_NOT_ALLOWED,
                                        "method_not_allowed",
                                        "read achievements with GET");
    }

    if (ngx_game_econ_path_id(r, 1, &player) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (!game_uuid_valid(player.data, player.len)) {
        return ngx_game_http_send_error(r, NGX_HTTP_NOT_FOUND, "no_player",
                                        "no such player");
    }

    values[0] = (char *) player.data;

    return ngx_game_econ_query(r, &ngx_game_econ_achievements_stmt, values,
                               ngx_game_econ_read_one);
}


/* an optional whole-number query argument within [min, max] */
static ngx_int_t
ngx_game_econ_arg_number(ngx_http_request_t *r, const char *name,
    ngx_int_t min, ngx_int_t max, ngx_int_t *n)
{
    ngx_int_t  v;
    ngx_str_t  arg;

    if (ngx_http_arg(r, (u_char *) name, ngx_strlen(name), &arg) != NGX_OK) {
        return NGX_OK;
    }

    v = ngx_atoi(arg.data, arg.len);
    if (v == NGX_ERROR || v < min || v > max) {
        return NGX_ERROR;
    }

    *n = v;

    return NGX_OK;
}
