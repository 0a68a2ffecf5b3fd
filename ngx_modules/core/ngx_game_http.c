
/*
 * JSON in and out, and the one error shape every endpoint answers with:
 *
 *     {"error":{"code":"invalid_json","message":"..."}}
 *
 * "code" is stable and meant for programs; "message" is for people.
 *
 * Request bodies are kept in memory, never in nginx's temporary files
 * (reading those back would block the worker): a request body filter
 * copies each piece into one buffer as nginx reads it, up to
 * game_body_limit, and drops whatever lies beyond.
 *
 * An answer may go out before the body was read (a wrong media type, a
 * body too large, a method not allowed here).  The connection may then
 * carry another request only once the unread body is gone from it, or
 * its bytes would be parsed as the next request: see
 * ngx_game_http_body_release().
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_game_core_internal.h"
#include "game_util.h"


typedef struct {
    ngx_game_http_json_handler_pt   handler;
    ngx_game_http_body_check_pt     check;

    /* the body as our filter collects it */
    u_char                         *body;
    size_t                          len;
    size_t                          size;
    size_t                          limit;
    unsigned                        collect:1;   /* the filter keeps it */
    unsigned                        complete:1;  /* the filter saw its end */
    unsigned                        too_large:1;

    /* the time the request's queries and commands took, for the access
     * log ($game_pg_time, $game_redis_time) */
    ngx_game_http_spent_t           spent;
} ngx_game_http_ctx_t;


/* reason phrases for the statuses nginx 1.22 sends without one */
typedef struct {
    ngx_uint_t                      status;
    ngx_str_t                       line;
} ngx_game_http_status_line_t;


static ngx_game_http_ctx_t *ngx_game_http_ctx(ngx_http_request_t *r);
static ngx_int_t ngx_game_http_spent_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_game_http_send_buf(ngx_http_request_t *r,
    ngx_uint_t status, ngx_buf_t *b, time_t retry_after);
static void ngx_game_http_status_line(ngx_http_request_t *r,
    ngx_uint_t status);
static void ngx_game_http_body_release(ngx_http_request_t *r,
    ngx_uint_t status);
static ngx_uint_t ngx_game_http_body_unread(ngx_http_request_t *r);
static ngx_int_t ngx_game_http_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);
static ngx_int_t ngx_game_http_body_keep(ngx_http_request_t *r,
    ngx_game_http_ctx_t *ctx, ngx_buf_t *b);
static void ngx_game_http_body_handler(ngx_http_request_t *r);
static ngx_int_t ngx_game_http_body_get(ngx_http_request_t *r,
    ngx_game_http_ctx_t *ctx, ngx_str_t *body);
static void ngx_game_http_json_cleanup(void *data);


static ngx_http_request_body_filter_pt   ngx_game_http_next_body_filter;


static ngx_game_http_status_line_t  ngx_game_http_status_lines[] = {
    { 422, ngx_string("422 Unprocessable Content") },
    { 423, ngx_string("423 Locked") },
    { 424, ngx_string("424 Failed Dependency") },
    { 426, ngx_string("426 Upgrade Required") },
    { 428, ngx_string("428 Precondition Required") },
    { 431, ngx_string("431 Request Header Fields Too Large") },
    { 0, ngx_null_string }
};


/* postconfiguration: our request body filter goes first in the chain */

ngx_int_t
ngx_game_http_init(ngx_conf_t *cf)
{
    ngx_game_http_next_body_filter = ngx_http_top_request_body_filter;
    ngx_http_top_request_body_filter = ngx_game_http_body_filter;

    return NGX_OK;
}


ngx_uint_t
ngx_game_http_status(ngx_int_t rc)
{
    switch (rc) {

    case NGX_GAME_UNAVAILABLE:
        return NGX_HTTP_SERVICE_UNAVAILABLE;

    case NGX_GAME_TIMEOUT:
        return NGX_HTTP_GATEWAY_TIME_OUT;

    default:
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
}


ngx_int_t
ngx_game_http_send_json(ngx_http_request_t *r, ngx_uint_t status,
    json_t *body)
{
    size_t      len;
    ngx_buf_t  *b;

    len = json_dumpb(body, NULL, 0, JSON_COMPACT);

    b = ngx_create_temp_buf(r->pool, len + 1);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->last += json_dumpb(body, (char *) b->pos, len, JSON_COMPACT);
    *b->last++ = '\n';

    return ngx_game_http_send_buf(r, status, b, 0);
}


/*
 * A 429 or 503 whose Retry-After is known for this request (the time left
 * on a lock, say) rather than the location's game_retry_after.
 */

ngx_int_t
ngx_game_http_send_json_retry(ngx_http_request_t *r, ngx_uint_t status,
    json_t *body, time_t retry_after)
{
    size_t      len;
    ngx_buf_t  *b;

    len = json_dumpb(body, NULL, 0, JSON_COMPACT);

    b = ngx_create_temp_buf(r->pool, len + 1);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->last += json_dumpb(body, (char *) b->pos, len, JSON_COMPACT);
    *b->last++ = '\n';

    return ngx_game_http_send_buf(r, status, b, retry_after > 0
                                               ? retry_after : 1);
}


/*
 * Send a JSON text that is already serialized, such as a constant answer
 * on a hot path; "json" must outlive the request.
 */

ngx_int_t
ngx_game_http_send_text(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *json)
{
    ngx_buf_t  *b;

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->pos = json->data;
    b->last = json->data + json->len;
    b->memory = 1;

    return ngx_game_http_send_buf(r, status, b, 0);
}


/* "retry_after" 0: the location's game_retry_after, on 503 and 429 */

static ngx_int_t
ngx_game_http_send_buf(ngx_http_request_t *r, ngx_uint_t status,
    ngx_buf_t *b, time_t retry_after)
{
    ngx_int_t                  rc;
    ngx_chain_t                out;
    ngx_table_elt_t           *h;
    ngx_game_core_loc_conf_t  *clcf;

    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    r->headers_out.status = status;
    ngx_game_http_status_line(r, status);
    r->headers_out.content_length_n = b->last - b->pos;
    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

    if (status == NGX_HTTP_SERVICE_UNAVAILABLE
        || status == NGX_HTTP_TOO_MANY_REQUESTS)
    {
        clcf = ngx_http_get_module_loc_conf(r, ngx_game_core_module);

        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "Retry-After");
        h->value.data = ngx_pnalloc(r->pool, NGX_TIME_T_LEN);
        if (h->value.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
        h->value.len = ngx_sprintf(h->value.data, "%T",
                                   retry_after ? retry_after
                                               : clcf->retry_after)
                       - h->value.data;
    }

    ngx_game_http_body_release(r, status);

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


static void
ngx_game_http_status_line(ngx_http_request_t *r, ngx_uint_t status)
{
    ngx_game_http_status_line_t  *sl;

    for (sl = ngx_game_http_status_lines; sl->status; sl++) {
        if (sl->status == status) {
            r->headers_out.status_line = sl->line;
            return;
        }
    }
}


/*
 * Make the connection safe for the request after this one, before the
 * answer's header says whether it stays open:
 *
 *   - a body nginx has not started to read is discarded: nginx reads and
 *     drops it after the answer (and closes when it cannot), as it does
 *     for its own error pages; "100 Continue" is not sent for it;
 *   - a body whose reading stopped half-way (a chunk over
 *     client_max_body_size, a malformed chunk) closes the connection,
 *     after a lingering close that lets the client read the answer;
 *   - a 413 closes the connection in any case, as nginx's own does: the
 *     client may still be sending a lot.
 */

static void
ngx_game_http_body_release(ngx_http_request_t *r, ngx_uint_t status)
{
    if (status == NGX_HTTP_REQUEST_ENTITY_TOO_LARGE) {
        r->keepalive = 0;
    }

    if (ngx_game_http_body_unread(r)) {
        r->keepalive = 0;
        r->lingering_close = 1;
        return;
    }

    r->expect_tested = 1;

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        r->keepalive = 0;
    }
}


/*
 * Did nginx start reading this request's body and stop before its end?
 * "rest" is what nginx still expects: 0 once the body is whole.  A body
 * being discarded, or one on an HTTP/2 stream (framed, so never parsed
 * as a request), is not our concern.
 */

static ngx_uint_t
ngx_game_http_body_unread(ngx_http_request_t *r)
{
    ngx_http_request_body_t  *rb = r->request_body;

    if (rb == NULL || r->discard_body || r != r->main) {
        return 0;
    }

#if (NGX_HTTP_V2)
    if (r->stream) {
        return 0;
    }
#endif

    return rb->rest != 0
           && (r->headers_in.chunked || r->headers_in.content_length_n > 0);
}


ngx_int_t
ngx_game_http_send_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *code, const char *message)
{
    json_t     *body;
    ngx_int_t   rc;

    body = json_pack("{s:{s:s,s:s}}", "error", "code", code,
                     "message", message);
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_game_http_send_json(r, status, body);
    json_decref(body);

    return rc;
}


/*
 * The answer for a query or command that did not succeed.  "what" names
 * the dependency for the message ("the database", "the matchmaker").
 */

ngx_int_t
ngx_game_http_send_outcome(ngx_http_request_t *r, ngx_int_t rc,
    const char *what)
{
    u_char  msg[128];

    switch (rc) {

    case NGX_GAME_UNAVAILABLE:
        *ngx_snprintf(msg, sizeof(msg) - 1, "%s is unavailable, retry later",
                      what) = '\0';
        return ngx_game_http_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                        "unavailable", (char *) msg);

    case NGX_GAME_TIMEOUT:
        *ngx_snprintf(msg, sizeof(msg) - 1, "%s did not answer in time",
                      what) = '\0';
        return ngx_game_http_send_error(r, NGX_HTTP_GATEWAY_TIME_OUT,
                                        "timeout", (char *) msg);

    default:
        return ngx_game_http_send_error(r, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                        "internal",
                                        "internal error, see the server log");
    }
}


/*
 * Read a JSON object body and call "handler" with it; the handler owns the
 * request from then on and finalizes it.  Returns what a content handler
 * returns: NGX_DONE while the body is read, or the status of an error
 * response already sent.
 */

ngx_int_t
ngx_game_http_read_json(ngx_http_request_t *r,
    ngx_game_http_json_handler_pt handler)
{
    return ngx_game_http_read_json_checked(r, NULL, handler);
}


/*
 * The same, with "check" called on the raw body before it is parsed: a
 * signature over the bytes as they came (a payment gateway's) is checked
 * before any parser sees them (see ngx_game_http_body_check_pt).
 */

ngx_int_t
ngx_game_http_read_json_checked(ngx_http_request_t *r,
    ngx_game_http_body_check_pt check, ngx_game_http_json_handler_pt handler)
{
    ngx_game_core_loc_conf_t  *clcf;

    clcf = ngx_http_get_module_loc_conf(r, ngx_game_core_module);

    return ngx_game_http_read_json_limited(r, clcf->body_limit, check,
                                           handler);
}


/*
 * The same with a limit of the endpoint's own instead of the location's
 * game_body_limit: an endpoint whose bodies are bounded by a directive of
 * its service (a telemetry batch).
 */

ngx_int_t
ngx_game_http_read_json_limited(ngx_http_request_t *r, size_t limit,
    ngx_game_http_body_check_pt check, ngx_game_http_json_handler_pt handler)
{
    ngx_int_t             rc;
    ngx_str_t            *type;
    ngx_game_http_ctx_t  *ctx;

    if (r->headers_in.content_type == NULL) {
        return ngx_game_http_send_error(r,
                                        NGX_HTTP_UNSUPPORTED_MEDIA_TYPE,
                                        "unsupported_media_type",
                                        "Content-Type must be "
                                        "application/json");
    }

    type = &r->headers_in.content_type->value;

    if (!game_media_type_is_json(type->data, type->len)) {
        return ngx_game_http_send_error(r,
                                        NGX_HTTP_UNSUPPORTED_MEDIA_TYPE,
                                        "unsupported_media_type",
                                        "Content-Type must be "
                                        "application/json");
    }

    if (r->headers_in.content_length_n > (off_t) limit) {
        return ngx_game_http_send_error(r,
                                        NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                        "payload_too_large",
                                        "the request body is too large");
    }

    ctx = ngx_game_http_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->handler = handler;
    ctx->check = check;
    ctx->limit = limit;
    ctx->collect = 1;

    rc = ngx_http_read_client_request_body(r, ngx_game_http_body_handler);

    if (rc < NGX_HTTP_SPECIAL_RESPONSE) {
        return NGX_DONE;
    }

    /* nginx stopped reading the body half-way: answer, and the
     * connection closes (ngx_game_http_body_release) */

    switch (rc) {

    case NGX_HTTP_REQUEST_ENTITY_TOO_LARGE:
        return ngx_game_http_send_error(r, rc, "payload_too_large",
                                        "the request body is too large");

    case NGX_HTTP_BAD_REQUEST:
        return ngx_game_http_send_error(r, rc, "invalid_body",
                                        "the request body is malformed");

    default:
        return rc;
    }
}


/*
 * The request body filter: while read_json collects a body, each piece
 * nginx reads is copied into the context's buffer and marked consumed,
 * so that nginx reuses its read buffer and never writes to a temporary
 * file.  Only the end of the body goes on down the chain, so that nginx
 * knows the body is whole.  Past game_body_limit the pieces are dropped:
 * the body is still read to its end (nginx stops at client_max_body_size)
 * so that the answer is our JSON 413 and the connection stays in step.
 */

static ngx_int_t
ngx_game_http_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    ngx_buf_t            *b;
    ngx_chain_t          *cl, out;
    ngx_game_http_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_game_core_module);

    if (ctx == NULL || !ctx->collect) {
        return ngx_game_http_next_body_filter(r, in);
    }

    for (cl = in; cl; cl = cl->next) {
        b = cl->buf;

        if (ngx_game_http_body_keep(r, ctx, b) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        b->pos = b->last;

        if (b->last_buf) {
            ctx->complete = 1;

            out.buf = b;
            out.next = NULL;

            return ngx_game_http_next_body_filter(r, &out);
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_game_http_body_keep(ngx_http_request_t *r, ngx_game_http_ctx_t *ctx,
    ngx_buf_t *b)
{
    u_char  *p;
    size_t   n, size;

    n = b->last - b->pos;

    if (n == 0 || ctx->too_large) {
        return NGX_OK;
    }

    if (n > ctx->limit - ctx->len) {
        ctx->too_large = 1;
        return NGX_OK;
    }

    if (ctx->len + n > ctx->size) {

        /* a declared length is known and within the limit; a chunked or
         * HTTP/2 body grows the buffer by doubling */

        if (r->headers_in.content_length_n > 0 && !r->headers_in.chunked) {
            size = (size_t) r->headers_in.content_length_n;

        } else {
            size = ngx_max(ctx->size * 2, 4096);
        }

        size = ngx_min(ngx_max(size, ctx->len + n), ctx->limit);

        p = ngx_pnalloc(r->pool, size);
        if (p == NULL) {
            return NGX_ERROR;
        }

        if (ctx->len) {
            ngx_memcpy(p, ctx->body, ctx->len);
        }

        ctx->body = p;
        ctx->size = size;
    }

    ngx_memcpy(ctx->body + ctx->len, b->pos, n);
    ctx->len += n;

    return NGX_OK;
}


static void
ngx_game_http_body_handler(ngx_http_request_t *r)
{
    ngx_int_t             rc;
    char                  msg[256];
    const char           *code, *message;
    json_t               *json;
    ngx_str_t             body;
    ngx_pool_cleanup_t   *cln;
    ngx_game_http_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_game_core_module);
    ctx->collect = 0;

    switch (ngx_game_http_body_get(r, ctx, &body)) {

    case NGX_OK:
        break;

    case NGX_DECLINED:
        ngx_http_finalize_request(r,
            ngx_game_http_send_error(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                     "payload_too_large",
                                     "the request body is too large"));
        return;

    default:
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (ctx->check) {
        rc = ctx->check(r, &body, &code, &message);
        if (rc != NGX_OK) {
            ngx_http_finalize_request(r,
                ngx_game_http_send_error(r, rc, code, message));
            return;
        }
    }

    json = game_json_body_parse(body.data, body.len, msg, sizeof(msg));
    if (json == NULL) {
        ngx_http_finalize_request(r,
            ngx_game_http_send_error(r, NGX_HTTP_BAD_REQUEST, "invalid_json",
                                     msg));
        return;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        json_decref(json);
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    cln->handler = ngx_game_http_json_cleanup;
    cln->data = json;

    ctx->handler(r, json);
}


/*
 * The body in one piece: what our filter collected.  When another module
 * read the body before us (so that our filter never saw it), nginx's own
 * memory buffers are joined; a body nginx put in a temporary file is
 * refused rather than read back with blocking reads.  NGX_DECLINED when
 * it is over the limit.
 */

static ngx_int_t
ngx_game_http_body_get(ngx_http_request_t *r, ngx_game_http_ctx_t *ctx,
    ngx_str_t *body)
{
    off_t         len;
    u_char       *p;
    ngx_chain_t  *cl;

    if (ctx->complete) {
        if (ctx->too_large) {
            return NGX_DECLINED;
        }

        body->data = ctx->body;
        body->len = ctx->len;
        return NGX_OK;
    }

    body->len = 0;
    body->data = NULL;

    if (r->request_body == NULL || r->request_body->bufs == NULL) {
        return NGX_OK;
    }

    len = 0;
    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        if (cl->buf->in_file) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "game: the request body was buffered to a file "
                          "before the JSON reader ran");
            return NGX_ERROR;
        }

        len += cl->buf->last - cl->buf->pos;
    }

    if (len > (off_t) ctx->limit) {
        return NGX_DECLINED;
    }

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    body->data = p;
    body->len = len;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        p = ngx_cpymem(p, cl->buf->pos, cl->buf->last - cl->buf->pos);
    }

    return NGX_OK;
}


static void
ngx_game_http_json_cleanup(void *data)
{
    json_decref(data);
}


/* the request's context, made on first use: the body reader's, and where
 * the time spent on PostgreSQL and Redis adds up */

static ngx_game_http_ctx_t *
ngx_game_http_ctx(ngx_http_request_t *r)
{
    ngx_game_http_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_game_core_module);
    if (ctx) {
        return ctx;
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_game_http_ctx_t));
    if (ctx == NULL) {
        return NULL;
    }

    ngx_http_set_ctx(r, ctx, ngx_game_core_module);

    return ctx;
}


ngx_game_http_spent_t *
ngx_game_http_spent(ngx_http_request_t *r)
{
    ngx_game_http_ctx_t  *ctx;

    ctx = ngx_game_http_ctx(r->main);

    return ctx ? &ctx->spent : NULL;
}


/*
 * $game_pg_time and $game_redis_time: the seconds (to the millisecond)
 * the request waited on PostgreSQL and on Redis, each query or command
 * from the moment it was handed to its pool to its answer, summed (ones
 * in parallel count each), like $upstream_response_time for proxies.
 * "0.000" for a request that sent none, so that JSON logs get a number.
 */

static ngx_int_t
ngx_game_http_spent_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char               *p;
    ngx_msec_t            ms;
    ngx_game_http_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r->main, ngx_game_core_module);

    ms = ctx == NULL ? 0 : data ? ctx->spent.redis : ctx->spent.pg;

    p = ngx_pnalloc(r->pool, NGX_TIME_T_LEN + 4);
    if (p == NULL) {
        return NGX_ERROR;
    }

    v->len = ngx_sprintf(p, "%T.%03M", (time_t) (ms / 1000), ms % 1000) - p;
    v->data = p;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


ngx_int_t
ngx_game_http_variables(ngx_conf_t *cf)
{
    ngx_uint_t            i;
    ngx_http_variable_t  *var;

    static ngx_str_t  names[] = {
        ngx_string("game_pg_time"),
        ngx_string("game_redis_time")
    };

    for (i = 0; i < 2; i++) {
        var = ngx_http_add_variable(cf, &names[i], NGX_HTTP_VAR_NOCACHEABLE);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = ngx_game_http_spent_variable;
        var->data = i;
    }

    return NGX_OK;
}
