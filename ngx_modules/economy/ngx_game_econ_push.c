
/*
 * Wallet changes told to the player's connected sockets, through the
 * core's pushes (ngx_game_push()), once they are committed:
 *
 *   {"type":"wallet", "reason":"purchase"|"grant"|"payment"|"reversal",
 *    "balance":{"soft","hard"}, "transaction_id"?, "item_id"?,
 *    "quantity"?, "payment_id"?}
 *
 * A push is fire and forget: a player who is not connected reads the
 * wallet when they come back.  An idempotent replay pushes nothing: it
 * changed nothing.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_game_econ.h"


typedef struct {
    ngx_http_request_t         *request;
    ngx_http_handler_pt         next;
    const char                 *player;
    const char                 *reason;
    const char                 *payment;
} ngx_game_econ_balance_t;


static void ngx_game_econ_balance_read(ngx_game_pg_query_t *q, ngx_int_t rc,
    PGresult *res);


static ngx_game_pg_stmt_t  ngx_game_econ_balance_stmt = {
    "game_econ_balance",
    "SELECT json_build_object('soft', soft_currency, 'hard', hard_currency) "
    "FROM players WHERE id = $1::uuid AND deleted_at IS NULL",
    1
};


/* a purchase's or a grant's answer (its SQL function's body) */
void
ngx_game_econ_push_wallet(ngx_http_request_t *r, ngx_str_t *player,
    const char *reason, ngx_str_t *answer)
{
    json_t                     *body, *msg, *v;
    json_error_t                err;
    ngx_game_econ_main_conf_t  *emcf;
    static const char          *keep[] = { "transaction_id", "balance",
                                           "item_id", "quantity", NULL };
    const char                **k;

    emcf = ngx_http_get_module_main_conf(r, ngx_game_econ_module);

    if (emcf->redis == NULL) {
        return;
    }

    body = json_loadb((char *) answer->data, answer->len, 0, &err);
    if (body == NULL) {
        return;
    }

    msg = json_pack("{s:s,s:s}", "type", "wallet", "reason", reason);

    for (k = keep; msg && *k; k++) {
        v = json_object_get(body, *k);
        if (v) {
            json_object_set(msg, *k, v);
        }
    }

    if (msg) {
        (void) ngx_game_push(emcf->redis, player, msg);
        json_decref(msg);
    }

    json_decref(body);
}


/*
 * A payment event moved "player"'s wallet: read the balance, push it, then
 * hand the request to "next" (which answers the gateway).  Returns what a
 * query handler finalizes the request with: NGX_DONE while the read runs,
 * or next()'s answer.  A failed read costs the push only: the gateway's
 * answer does not depend on it.
 */

ngx_int_t
ngx_game_econ_push_balance(ngx_http_request_t *r, const char *player,
    const char *reason, const char *payment, ngx_http_handler_pt next)
{
    ngx_game_pg_query_t        *q;
    ngx_game_econ_balance_t    *b;
    ngx_game_econ_main_conf_t  *emcf;

    emcf = ngx_http_get_module_main_conf(r, ngx_game_econ_module);

    if (emcf->redis == NULL) {
        return next(r);
    }

    b = ngx_pcalloc(r->pool, sizeof(ngx_game_econ_balance_t));
    q = ngx_game_pg_request_query(r, &ngx_game_econ_balance_stmt);
    if (b == NULL || q == NULL) {
        return next(r);
    }

    b->request = r;
    b->next = next;
    b->player = player;
    b->reason = reason;
    b->payment = payment;

    q->values[0] = player;
    q->handler = ngx_game_econ_balance_read;
    q->data = b;

    if (ngx_game_pg_query_run(emcf->pg, q) != NGX_AGAIN) {
        return next(r);
    }

    /* the read's reference on the request, ended by its handler; the
     * caller's ends with the NGX_DONE it finalizes with */
    r->main->count++;

    return NGX_DONE;
}


static void
ngx_game_econ_balance_read(ngx_game_pg_query_t *q, ngx_int_t rc,
    PGresult *res)
{
    json_t                     *balance, *msg;
    ngx_str_t                   player;
    json_error_t                err;
    ngx_game_econ_balance_t    *b = q->data;
    ngx_http_request_t         *r = b->request;
    ngx_game_econ_main_conf_t  *emcf;

    emcf = ngx_http_get_module_main_conf(r, ngx_game_econ_module);

    if (rc == NGX_OK && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0)) {
        balance = json_loadb(PQgetvalue(res, 0, 0), PQgetlength(res, 0, 0),
                             0, &err);
        msg = balance ? json_pack("{s:s,s:s,s:o}", "type", "wallet",
                                  "reason", b->reason, "balance", balance)
                      : NULL;

        if (msg) {
            if (b->payment) {
                json_object_set_new(msg, "payment_id",
                                    json_string(b->payment));
            }

            player.data = (u_char *) b->player;
            player.len = ngx_strlen(b->player);

            (void) ngx_game_push(emcf->redis, &player, msg);
            json_decref(msg);
        }

    } else {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "game econ: a payment's new balance could not be "
                      "read; the player is not told of it now");
    }

    ngx_http_finalize_request(r, b->next(r));
}
