
/*
 * What the economy's endpoints share: who is asking, ids in the path, one
 * SQL call per request, and the answer the SQL function built, sent as it
 * came (status, body, and Idempotent-Replayed when it was a replay).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_game_econ.h"


/*
 * The player named by game_econ_player (the guard's $game_player_id), a
 * UUID.  NGX_DECLINED: nobody signed in (the location is not behind the
 * guard); the caller answers with ngx_game_econ_refuse().
 */

ngx_int_t
ngx_game_econ_who(ngx_http_request_t *r, ngx_str_t *player)
{
    ngx_str_t                   v;
    ngx_game_econ_main_conf_t  *emcf;

    emcf = ngx_http_get_module_main_conf(r, ngx_game_econ_module);

    if (emcf->player == NULL
        || ngx_http_complex_value(r, emcf->player, &v) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (!game_uuid_valid(v.data, v.len)) {
        return NGX_DECLINED;
    }

    player->data = ngx_pnalloc(r->pool, 37);
    if (player->data == NULL) {
        return NGX_ERROR;
    }

    *ngx_cpymem(player->data, v.data, 36) = '\0';
    player->len = 36;

    return NGX_OK;
}


/*
 * The answer to a request that ngx_game_econ_who() or
 * ngx_game_econ_idempotency_key() refused.  Those only say why: a helper
 * that sent the answer itself would return what the send returned, often
 * NGX_OK, and its caller would carry on as if all were well.
 */

ngx_int_t
ngx_game_econ_refuse(ngx_http_request_t *r, ngx_int_t why)
{
    switch (why) {

    case NGX_DECLINED:
        return ngx_game_http_send_error(r, NGX_HTTP_UNAUTHORIZED,
                                        "unauthorized",
                                        "a signed-in player is required");

    case NGX_GAME_ECON_NO_KEY:
        return ngx_game_http_send_error(r, NGX_HTTP_BAD_REQUEST,
                                        "idempotency_key_required",
                                        "an Idempotency-Key header is "
                                        "required");

    case NGX_GAME_ECON_BAD_KEY:
        return ngx_game_http_send_error(r, NGX_HTTP_BAD_REQUEST,
                                        "invalid_idempotency_key",
                                        "Idempotency-Key must be 1 to 255 "
                                        "printable characters");

    default:
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
}


/*
 * The path's segment number "segment" (0 is the first after the leading
 * slash), NUL-terminated in the request's memory: /inventory/{id}/equip
 * has the id at 1.  The locations' regular expressions decide the shape;
 * this only takes the piece out.
 */

ngx_int_t
ngx_game_econ_path_id(ngx_http_request_t *r, ngx_uint_t segment,
    ngx_str_t *id)
{
    u_char  *p, *last, *start;

    p = r->uri.data;
    last = r->uri.data + r->uri.len;

    for ( ;; ) {
        if (p == last || *p != '/') {
            return NGX_DECLINED;
        }

        start = ++p;
        while (p < last && *p != '/') {
            p++;
        }

        if (segment-- == 0) {
            break;
        }
    }

    id->len = p - start;
    id->data = ngx_pnalloc(r->pool, id->len + 1);
    if (id->data == NULL) {
        return NGX_ERROR;
    }

    *ngx_cpymem(id->data, start, id->len) = '\0';

    return NGX_OK;
}


/*
 * Run "stmt" for the request with "values" (NUL-terminated text, NULL for
 * SQL NULL) and hand the result to "handler".  Returns what the content
 * handler returns: NGX_DONE while the query runs (the handler finalizes
 * the request), or an answer already sent (503 when the database is away).
 */

ngx_int_t
ngx_game_econ_query(ngx_http_request_t *r, ngx_game_pg_stmt_t *stmt,
    const char **values, ngx_game_pg_handler_pt handler)
{
    int                         i;
    ngx_int_t                   rc;
    ngx_game_pg_query_t        *q;
    ngx_game_econ_main_conf_t  *emcf;

    emcf = ngx_http_get_module_main_conf(r, ngx_game_econ_module);

    q = ngx_game_pg_request_query(r, stmt);
    if (q == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    for (i = 0; i < stmt->nparams; i++) {
        q->values[i] = values[i];
    }

    q->handler = handler;
    q->data = r;

    rc = ngx_game_pg_query_run(emcf->pg, q);
    if (rc != NGX_AGAIN) {
        return ngx_game_http_send_outcome(r, rc, "the economy database");
    }

    r->main->count++;
    return NGX_DONE;
}


/*
 * The usual result: one row (status int, body jsonb, replayed bool), from
 * "SELECT (a->>'status')::int, a->'body', a ? 'replayed' FROM f(...) a".
 * NGX_OK with "a" filled; anything else is an outcome for
 * ngx_game_http_send_outcome(), and nothing was sent.
 */

static ngx_int_t
ngx_game_econ_answer_read(ngx_http_request_t *r, ngx_int_t rc, PGresult *res,
    ngx_game_econ_answer_t *a)
{
    if (rc != NGX_OK) {
        return rc;
    }

    if (PQntuples(res) != 1 || PQnfields(res) != 3 || PQgetisnull(res, 0, 0))
    {
        return NGX_ERROR;
    }

    /* the result goes when the query's handler returns: keep the body */
    a->body.len = PQgetlength(res, 0, 1);
    a->body.data = ngx_pnalloc(r->pool, a->body.len);
    if (a->body.data == NULL) {
        return NGX_ERROR;
    }
    ngx_memcpy(a->body.data, PQgetvalue(res, 0, 1), a->body.len);

    a->status = ngx_atoi((u_char *) PQgetvalue(res, 0, 0),
                         PQgetlength(res, 0, 0));
    a->replayed = (PQgetvalue(res, 0, 2)[0] == 't');

    return NGX_OK;
}


void
ngx_game_econ_answered(ngx_game_pg_query_t *q, ngx_int_t rc, PGresult *res)
{
    ngx_int_t                rv;
    ngx_http_request_t      *r = q->data;
    ngx_game_econ_answer_t   a;

    rv = ngx_game_econ_answer_read(r, rc, res, &a);

    ngx_http_finalize_request(r, rv == NGX_OK
                                 ? ngx_game_econ_send(r, &a)
                                 : ngx_game_http_send_outcome(r, rv,
                                               "the economy database"));
}


/*
 * The same for a request that may have changed its player's inventory
 * (the request's ctx is an ngx_game_econ_write_t): a success drops the
 * player's cached inventory before it is answered.
 */

void
ngx_game_econ_written(ngx_game_pg_query_t *q, ngx_int_t rc, PGresult *res)
{
    ngx_int_t                rv;
    ngx_http_request_t      *r = q->data;
    ngx_game_econ_write_t   *w;
    ngx_game_econ_answer_t   a;

    rv = ngx_game_econ_answer_read(r, rc, res, &a);

    if (rv != NGX_OK) {
        ngx_http_finalize_request(r,
            ngx_game_http_send_outcome(r, rv, "the economy database"));
        return;
    }

    w = ngx_http_get_module_ctx(r, ngx_game_econ_module);

    if (w) {
        w->replayed = a.replayed;
    }

    if (a.status >= 300 || a.replayed || w == NULL) {
        ngx_http_finalize_request(r, ngx_game_econ_send(r, &a));
        return;
    }

    if (w->wallet) {
        /* committed: the player's sockets hear of the new balance */
        ngx_game_econ_push_wallet(r, &w->player, w->wallet, &a.body);
    }

    ngx_http_finalize_request(r, ngx_game_econ_cache_bump(r, &w->player, &a));
}


ngx_int_t
ngx_game_econ_send(ngx_http_request_t *r, ngx_game_econ_answer_t *a)
{
    ngx_table_elt_t  *h;

    if (a->status < 200 || a->status > 599) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (a->replayed) {
        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "Idempotent-Replayed");
        ngx_str_set(&h->value, "true");
    }

    return ngx_game_http_send_text(r, a->status, &a->body);
}


/* a number as SQL text, NUL-terminated, in "pool" */
u_char *
ngx_game_econ_number(ngx_pool_t *pool, ngx_int_t n)
{
    u_char  *p;

    p = ngx_pnalloc(pool, NGX_INT_T_LEN + 1);
    if (p == NULL) {
        return NULL;
    }

    *ngx_sprintf(p, "%i", n) = '\0';

    return p;
}


/*
 * Idempotency-Key: required, 1 to 255 printable ASCII characters (space
 * included), NUL-terminated in the request's memory.  Refusals go to
 * ngx_game_econ_refuse().
 */

ngx_int_t
ngx_game_econ_idempotency_key(ngx_http_request_t *r, ngx_str_t *key)
{
    size_t      i;
    ngx_str_t  *v;

    v = ngx_game_econ_header(r, "Idempotency-Key");
    if (v == NULL) {
        return NGX_GAME_ECON_NO_KEY;
    }

    if (v->len == 0 || v->len > 255) {
        return NGX_GAME_ECON_BAD_KEY;
    }

    for (i = 0; i < v->len; i++) {
        if (v->data[i] < 0x20 || v->data[i] > 0x7e) {
            return NGX_GAME_ECON_BAD_KEY;
        }
    }

    key->len = v->len;
    key->data = ngx_pnalloc(r->pool, key->len + 1);
    if (key->data == NULL) {
        return NGX_ERROR;
    }

    *ngx_cpymem(key->data, v->data, key->len) = '\0';

    return NGX_OK;
}


/* a request header's value, by its name (any case), or NULL */
ngx_str_t *
ngx_game_econ_header(ngx_http_request_t *r, const char *name)
{
    size_t            len;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    len = ngx_strlen(name);
    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {
        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NULL;
            }
            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == len
            && ngx_strncasecmp(h[i].key.data, (u_char *) name, len) == 0)
        {
            return &h[i].value;
        }
    }
}
