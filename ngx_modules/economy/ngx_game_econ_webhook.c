
/*
 * POST /payments/webhook: the payment gateway tells us a payment happened.
 * No bearer token: the gateway signs every event.
 *
 *   Stripe-Signature: t=<unix time>,v1=<hex HMAC-SHA-256>[,v1=...]
 *
 * The signature is HMAC-SHA-256 over "<t>.<raw body>" with the endpoint
 * secret (game_econ_webhook_secret, one or several during a rotation).  It
 * is checked on the raw bytes, before any JSON parser sees them, compared
 * in constant time, against every v1 of the header (the gateway sends
 * several while it rotates its own secret), and refused when t is further
 * than game_econ_webhook_tolerance from now (a replayed request).
 *
 * The event, once verified:
 *
 *   {"id": "evt_...", "type": "payment.succeeded" | "payment.refunded" |
 *    "payment.disputed", "data": {"payment_id": "...", "player_id": "...",
 *    "hard": N}}
 *
 * (a gateway with another shape is mapped by its adapter).  A succeeded
 * payment credits N hard currency once per event id; a refund or a dispute
 * reverses it in the ledger as far as the balance allows (the rest is
 * recorded as a shortfall for a human).  Card data never comes here.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "ngx_game_econ.h"


#define NGX_GAME_ECON_SIG_LEN   32      /* SHA-256 */
#define NGX_GAME_ECON_SIGS_MAX  8


/* the event, for its answer and its push */
typedef struct {
    const char                 *player;     /* NULL: none, or not an id */
    const char                 *payment;
    char                       *outcome;
} ngx_game_econ_event_t;


typedef struct {
    time_t                      t;
    u_char                      v1[NGX_GAME_ECON_SIGS_MAX]
                                  [NGX_GAME_ECON_SIG_LEN];
    ngx_uint_t                  nv1;
} ngx_game_econ_signature_t;


static ngx_int_t ngx_game_econ_webhook_check(ngx_http_request_t *r,
    ngx_str_t *body, const char **code, const char **message);
static ngx_int_t ngx_game_econ_signature_parse(ngx_str_t *header,
    ngx_game_econ_signature_t *sig);
static ngx_int_t ngx_game_econ_signature_valid(ngx_game_econ_main_conf_t *emcf,
    ngx_game_econ_signature_t *sig, ngx_str_t *body);
static void ngx_game_econ_webhook_event(ngx_http_request_t *r, json_t *body);
static void ngx_game_econ_webhook_done(ngx_game_pg_query_t *q, ngx_int_t rc,
    PGresult *res);
static ngx_int_t ngx_game_econ_webhook_answer(ngx_http_request_t *r);


static ngx_game_pg_stmt_t  ngx_game_econ_payment_stmt = {
    "game_econ_payment_event",
    "SELECT econ_payment_event($1, $2, $3, $4::uuid, $5::bigint, $6::bigint, "
    "$7::bigint)",
    7
};


ngx_int_t
ngx_game_econ_webhook(ngx_http_request_t *r)
{
    if (r->method != NGX_HTTP_POST) {
        return ngx_game_http_send_error(r, NGX_HTTP_NOT_ALLOWED,
                                        "method_not_allowed",
                                        "events come with POST");
    }

    if (ngx_game_econ_header(r, "Stripe-Signature") == NULL) {
        return ngx_game_http_send_error(r, NGX_HTTP_BAD_REQUEST,
                                        "invalid_signature",
                                        "the event is not signed");
    }

    return ngx_game_http_read_json_checked(r, ngx_game_econ_webhook_check,
                                           ngx_game_econ_webhook_event);
}


/* the raw body, before it is parsed */
static ngx_int_t
ngx_game_econ_webhook_check(ngx_http_request_t *r, ngx_str_t *body,
    const char **code, const char **message)
{
    time_t                      now;
    ngx_str_t                  *header;
    ngx_game_econ_signature_t   sig;
    ngx_game_econ_main_conf_t  *emcf;

    emcf = ngx_http_get_module_main_conf(r, ngx_game_econ_module);
    header = ngx_game_econ_header(r, "Stripe-Signature");

    *code = "invalid_signature";

    if (header == NULL
        || ngx_game_econ_signature_parse(header, &sig) != NGX_OK)
    {
        *message = "the signature header is malformed";
        return NGX_HTTP_BAD_REQUEST;
    }

    now = ngx_time();

    if (sig.t < now - emcf->webhook_tolerance
        || sig.t > now + emcf->webhook_tolerance)
    {
        *code = "timestamp_out_of_tolerance";
        *message = "the event was signed too long ago";
        return NGX_HTTP_BAD_REQUEST;
    }

    if (!ngx_game_econ_signature_valid(emcf, &sig, body)) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "game econ: a payment event with a bad signature");
        *message = "the signature does not match";
        return NGX_HTTP_BAD_REQUEST;
    }

    return NGX_OK;
}


/* "t=1700000000,v1=<64 hex>,v1=<64 hex>,v0=..." (unknown schemes ignored) */
static ngx_int_t
ngx_game_econ_signature_parse(ngx_str_t *header,
    ngx_game_econ_signature_t *sig)
{
    u_char     *p, *last, *item, *eq, *end;
    ngx_int_t   t;
    ngx_uint_t  i;

    ngx_memzero(sig, sizeof(ngx_game_econ_signature_t));
    sig->t = -1;

    p = header->data;
    last = header->data + header->len;

    while (p < last) {
        item = p;
        end = ngx_strlchr(p, last, ',');
        if (end == NULL) {
            end = last;
        }
        p = end + 1;

        while (item < end && *item == ' ') {
            item++;
        }

        eq = ngx_strlchr(item, end, '=');
        if (eq == NULL) {
            return NGX_ERROR;
        }

        if (eq - item == 1 && *item == 't') {
            t = ngx_atoi(eq + 1, end - eq - 1);
            if (t == NGX_ERROR) {
                return NGX_ERROR;
            }
            sig->t = t;

        } else if (eq - item == 2 && item[0] == 'v' && item[1] == '1') {
            if (end - eq - 1 != 2 * NGX_GAME_ECON_SIG_LEN
                || sig->nv1 == NGX_GAME_ECON_SIGS_MAX)
            {
                continue;
            }

            for (i = 0; i < NGX_GAME_ECON_SIG_LEN; i++) {
                t = ngx_hextoi(eq + 1 + 2 * i, 2);
                if (t == NGX_ERROR) {
                    return NGX_ERROR;
                }
                sig->v1[sig->nv1][i] = (u_char) t;
            }

            sig->nv1++;
        }
    }

    return (sig->t >= 0 && sig->nv1 > 0) ? NGX_OK : NGX_ERROR;
}


/* every secret against every v1, in constant time each */
static ngx_int_t
ngx_game_econ_signature_valid(ngx_game_econ_main_conf_t *emcf,
    ngx_game_econ_signature_t *sig, ngx_str_t *body)
{
    u_char        prefix[NGX_TIME_T_LEN + 1], mac[EVP_MAX_MD_SIZE];
    size_t        plen, maclen;
    EVP_MAC      *hmac;
    ngx_str_t    *secrets;
    ngx_uint_t    i, k, ok;
    OSSL_PARAM    params[2];
    EVP_MAC_CTX  *h;

    plen = ngx_sprintf(prefix, "%T.", sig->t) - prefix;
    secrets = emcf->webhook_secrets.elts;
    ok = 0;

    hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    h = hmac ? EVP_MAC_CTX_new(hmac) : NULL;
    if (h == NULL) {
        EVP_MAC_free(hmac);
        return 0;
    }

    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                                 (char *) "SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();

    for (i = 0; i < emcf->webhook_secrets.nelts; i++) {
        if (EVP_MAC_init(h, secrets[i].data, secrets[i].len, params) != 1
            || EVP_MAC_update(h, prefix, plen) != 1
            || EVP_MAC_update(h, body->data, body->len) != 1
            || EVP_MAC_final(h, mac, &maclen, sizeof(mac)) != 1
            || maclen != NGX_GAME_ECON_SIG_LEN)
        {
            break;
        }

        for (k = 0; k < sig->nv1; k++) {
            ok |= (CRYPTO_memcmp(mac, sig->v1[k], maclen) == 0);
        }
    }

    EVP_MAC_CTX_free(h);
    EVP_MAC_free(hmac);

    return ok;
}


static void
ngx_game_econ_webhook_event(ngx_http_request_t *r, json_t *body)
{
    json_t                     *id, *type, *data, *payment, *player, *hard;
    ngx_int_t                   rc;
    const char                 *values[7];
    ngx_game_econ_event_t      *ev;
    ngx_game_econ_main_conf_t  *emcf;

    emcf = ngx_http_get_module_main_conf(r, ngx_game_econ_module);

    id = json_object_get(body, "id");
    type = json_object_get(body, "type");
    data = json_object_get(body, "data");
    payment = json_object_get(data, "payment_id");
    player = json_object_get(data, "player_id");
    hard = json_object_get(data, "hard");

    /* null is as good as absent (a refund has no amount of its own) */
    payment = json_is_null(payment) ? NULL : payment;
    player = json_is_null(player) ? NULL : player;
    hard = json_is_null(hard) ? NULL : hard;

    if (!json_is_string(id) || json_string_length(id) == 0
        || json_string_length(id) > 255 || !json_is_string(type)
        || (payment && !json_is_string(payment))
        || (player && !json_is_string(player))
        || (hard && !json_is_integer(hard)))
    {
        ngx_http_finalize_request(r,
            ngx_game_http_send_error(r, NGX_GAME_HTTP_UNPROCESSABLE,
                                     "invalid_event",
                                     "an event is {id, type, data: "
                                     "{payment_id, player_id, hard}}"));
        return;
    }

    if (player && !game_uuid_valid((u_char *) json_string_value(player),
                                        json_string_length(player)))
    {
        player = NULL;      /* SQL answers no_player */
    }

    ev = ngx_pcalloc(r->pool, sizeof(ngx_game_econ_event_t));
    if (ev == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* the body's strings live as long as the request */
    ev->player = player ? json_string_value(player) : NULL;
    ev->payment = payment ? json_string_value(payment) : NULL;
    ngx_http_set_ctx(r, ev, ngx_game_econ_module);

    values[0] = json_string_value(id);
    values[1] = json_string_value(type);
    values[2] = payment ? json_string_value(payment) : NULL;
    values[3] = player ? json_string_value(player) : NULL;
    values[4] = hard ? (char *) ngx_game_econ_number(r->pool,
                                                    json_integer_value(hard))
                     : NULL;
    values[5] = (char *) ngx_game_econ_number(r->pool, emcf->start_soft);
    values[6] = (char *) ngx_game_econ_number(r->pool, emcf->start_hard);

    if ((hard && values[4] == NULL) || values[5] == NULL || values[6] == NULL)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    rc = ngx_game_econ_query(r, &ngx_game_econ_payment_stmt, values,
                             ngx_game_econ_webhook_done);
    ngx_http_finalize_request(r, rc);
}


/* 200 for every event we took (credited, reversed, a duplicate, one we do
 * not act on): the gateway stops sending it.  5xx makes it try again.  A
 * credit or a reversal is pushed to the player's sockets first. */
static void
ngx_game_econ_webhook_done(ngx_game_pg_query_t *q, ngx_int_t rc,
    PGresult *res)
{
    const char              *outcome;
    ngx_http_request_t      *r = q->data;
    ngx_game_econ_event_t   *ev;

    if (rc != NGX_OK || PQntuples(res) != 1) {
        ngx_http_finalize_request(r,
            ngx_game_http_send_outcome(r, rc == NGX_OK ? NGX_ERROR : rc,
                                       "the economy database"));
        return;
    }

    ev = ngx_http_get_module_ctx(r, ngx_game_econ_module);
    outcome = PQgetvalue(res, 0, 0);

    /* the result goes when this handler returns */
    ev->outcome = (char *) ngx_pstrdup(r->pool, &(ngx_str_t) {
                                           ngx_strlen(outcome) + 1,
                                           (u_char *) outcome });
    if (ev->outcome == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (ngx_strcmp(outcome, "no_player") == 0) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "game econ: a payment event for no known player was "
                      "recorded and not credited");
    }

    if (ev->player
        && (ngx_strcmp(outcome, "credited") == 0
            || ngx_strcmp(outcome, "reversed") == 0))
    {
        ngx_http_finalize_request(r,
            ngx_game_econ_push_balance(r, ev->player,
                                       outcome[0] == 'c' ? "payment"
                                                         : "reversal",
                                       ev->payment,
                                       ngx_game_econ_webhook_answer));
        return;
    }

    ngx_http_finalize_request(r, ngx_game_econ_webhook_answer(r));
}


static ngx_int_t
ngx_game_econ_webhook_answer(ngx_http_request_t *r)
{
    json_t                 *body;
    ngx_int_t               rc;
    ngx_game_econ_event_t  *ev;

    ev = ngx_http_get_module_ctx(r, ngx_game_econ_module);

    body = json_pack("{s:b,s:s}", "received", 1, "outcome", ev->outcome);
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_game_http_send_json(r, NGX_HTTP_OK, body);
    json_decref(body);

    return rc;
}
