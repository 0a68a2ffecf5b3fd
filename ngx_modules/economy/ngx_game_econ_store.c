
/*
 * The store: GET /store/catalog and POST /store/purchase.
 *
 * The catalogue is read from PostgreSQL (econ_catalog()) and kept by each
 * worker for game_econ_catalog_ttl; while the database is away a worker
 * keeps answering with the copy it has.  A purchase is one call of
 * econ_purchase() (sql/005): the key, the sale, the limits, the debit, the
 * item and the ledger row in one transaction, the answer kept for the key.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_game_econ.h"


#define NGX_GAME_ECON_QTY_MAX   1000000


static void ngx_game_econ_catalog_read(ngx_game_pg_query_t *q, ngx_int_t rc,
    PGresult *res);
static ngx_int_t ngx_game_econ_catalog_send(ngx_http_request_t *r);
static void ngx_game_econ_purchase_body(ngx_http_request_t *r, json_t *body);


static ngx_game_pg_stmt_t  ngx_game_econ_catalog_stmt = {
    "game_econ_catalog",
    "SELECT econ_catalog()",
    0
};

static ngx_game_pg_stmt_t  ngx_game_econ_purchase_stmt = {
    "game_econ_purchase",
    "SELECT (a->>'status')::integer, a->'body', a ? 'replayed' "
    "FROM econ_purchase($1::uuid, $2, $3, $4::integer, $5, $6::bigint, "
    "$7::bigint) AS a",
    7
};


/* this worker's copy of the catalogue */
static u_char      *ngx_game_econ_catalog_json;
static size_t       ngx_game_econ_catalog_len;
static ngx_msec_t   ngx_game_econ_catalog_until;


ngx_int_t
ngx_game_econ_catalog(ngx_http_request_t *r)
{
    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return ngx_game_http_send_error(r, NGX_HTTP_NOT_ALLOWED,
                                        "method_not_allowed",
                                        "read the catalog with GET");
    }

    if (ngx_game_econ_catalog_json
        && (ngx_msec_int_t) (ngx_game_econ_catalog_until - ngx_current_msec)
           > 0)
    {
        return ngx_game_econ_catalog_send(r);
    }

    return ngx_game_econ_query(r, &ngx_game_econ_catalog_stmt, NULL,
                               ngx_game_econ_catalog_read);
}


static void
ngx_game_econ_catalog_read(ngx_game_pg_query_t *q, ngx_int_t rc,
    PGresult *res)
{
    u_char                     *json;
    size_t                      len;
    ngx_http_request_t         *r = q->data;
    ngx_game_econ_main_conf_t  *emcf;

    emcf = ngx_http_get_module_main_conf(r, ngx_game_econ_module);

    if (rc != NGX_OK || PQntuples(res) != 1) {
        if (ngx_game_econ_catalog_json) {
            /* the database is away: the copy we have is better than 503 */
            ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                          "game econ: catalog served from a stale copy");
            ngx_http_finalize_request(r, ngx_game_econ_catalog_send(r));
            return;
        }

        ngx_http_finalize_request(r,
            ngx_game_http_send_outcome(r, rc == NGX_OK ? NGX_ERROR : rc,
                                       "the economy database"));
        return;
    }

    len = PQgetlength(res, 0, 0);
    json = ngx_alloc(len, ngx_cycle->log);
    if (json == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_memcpy(json, PQgetvalue(res, 0, 0), len);

    if (ngx_game_econ_catalog_json) {
        ngx_free(ngx_game_econ_catalog_json);
    }

    ngx_game_econ_catalog_json = json;
    ngx_game_econ_catalog_len = len;
    ngx_game_econ_catalog_until = ngx_current_msec + emcf->catalog_ttl;

    ngx_http_finalize_request(r, ngx_game_econ_catalog_send(r));
}


/* a copy per answer: the cached one may be replaced while a slow client
 * is still being sent this one */
static ngx_int_t
ngx_game_econ_catalog_send(ngx_http_request_t *r)
{
    ngx_str_t  json;

    json.len = ngx_game_econ_catalog_len;
    json.data = ngx_pnalloc(r->pool, json.len);
    if (json.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(json.data, ngx_game_econ_catalog_json, json.len);

    return ngx_game_http_send_text(r, NGX_HTTP_OK, &json);
}


/* POST /store/purchase */


ngx_int_t
ngx_game_econ_purchase(ngx_http_request_t *r)
{
    ngx_int_t                  rc;
    ngx_game_econ_write_t  *p;

    if (r->method != NGX_HTTP_POST) {
        return ngx_game_http_send_error(r, NGX_HTTP_NOT_ALLOWED,
                                        "method_not_allowed",
                                        "purchase with POST");
    }

    p = ngx_pcalloc(r->pool, sizeof(ngx_game_econ_write_t));
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_game_econ_who(r, &p->player);
    if (rc != NGX_OK) {
        return ngx_game_econ_refuse(r, rc);
    }

    rc = ngx_game_econ_idempotency_key(r, &p->key);
    if (rc != NGX_OK) {
        return ngx_game_econ_refuse(r, rc);
    }

    p->wallet = "purchase";
    ngx_http_set_ctx(r, p, ngx_game_econ_module);

    return ngx_game_http_read_json(r, ngx_game_econ_purchase_body);
}


static void
ngx_game_econ_purchase_body(ngx_http_request_t *r, json_t *body)
{
    ngx_int_t                   rc;
    json_t                     *item, *qty, *cur;
    const char                 *values[7];
    ngx_game_econ_write_t   *p;
    ngx_game_econ_main_conf_t  *emcf;

    p = ngx_http_get_module_ctx(r, ngx_game_econ_module);
    emcf = ngx_http_get_module_main_conf(r, ngx_game_econ_module);

    item = json_object_get(body, "item_id");
    qty = json_object_get(body, "quantity");
    cur = json_object_get(body, "currency");

    if (!json_is_string(item) || json_string_length(item) == 0
        || json_string_length(item) > 64)
    {
        ngx_http_finalize_request(r,
            ngx_game_http_send_error(r, NGX_GAME_HTTP_UNPROCESSABLE,
                                     "invalid_field",
                                     "\"item_id\" must be an item's id"));
        return;
    }

    if (!json_is_integer(qty) || json_integer_value(qty) < 1
        || json_integer_value(qty) > NGX_GAME_ECON_QTY_MAX)
    {
        ngx_http_finalize_request(r,
            ngx_game_http_send_error(r, NGX_GAME_HTTP_UNPROCESSABLE,
                                     "invalid_quantity",
                                     "\"quantity\" must be a whole number "
                                     "from 1 on"));
        return;
    }

    if (!json_is_string(cur)
        || (ngx_strcmp(json_string_value(cur), "soft") != 0
            && ngx_strcmp(json_string_value(cur), "hard") != 0))
    {
        ngx_http_finalize_request(r,
            ngx_game_http_send_error(r, NGX_GAME_HTTP_UNPROCESSABLE,
                                     "invalid_currency",
                                     "\"currency\" is \"soft\" or \"hard\""));
        return;
    }

    values[0] = (char *) p->player.data;
    values[1] = (char *) p->key.data;
    values[2] = json_string_value(item);
    values[3] = (char *) ngx_game_econ_number(r->pool,
                                              json_integer_value(qty));
    values[4] = json_string_value(cur);
    values[5] = (char *) ngx_game_econ_number(r->pool, emcf->start_soft);
    values[6] = (char *) ngx_game_econ_number(r->pool, emcf->start_hard);

    if (values[3] == NULL || values[5] == NULL || values[6] == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* the body's strings live as long as the request: the core keeps the
     * parsed body until it ends */
    rc = ngx_game_econ_query(r, &ngx_game_econ_purchase_stmt, values,
                             ngx_game_econ_written);

    /* the query took its own reference on the request (NGX_DONE); this
     * body handler's one ends here */
    ngx_http_finalize_request(r, rc);
}
