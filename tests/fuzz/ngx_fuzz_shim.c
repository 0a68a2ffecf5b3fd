
/*
 * The handful of nginx functions that our module sources call and that
 * nginx-dev does not ship as code (it ships headers only): enough for a
 * harness to run ngx_game_jwt.c outside nginx.
 *
 * Pools are plain malloc: every allocation is freed when the pool is
 * destroyed, so AddressSanitizer sees each block's own bounds instead of
 * one large pool block.  The base64url functions follow the contract of
 * nginx's src/core/ngx_string.c that our code relies on: decoding reads up
 * to the first '=' (and fails on any other character outside the
 * alphabet, or on a length that leaves one lone character), encoding
 * writes no padding.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_fuzz_shim.h"


/* the core module as the services see it: only its ctx_index is read */
ngx_module_t  ngx_game_core_module;


typedef struct ngx_fuzz_block_s  ngx_fuzz_block_t;

struct ngx_fuzz_block_s {
    ngx_fuzz_block_t  *next;
    /* the block's memory follows, suitably aligned */
    max_align_t        data[];
};


ngx_pool_t *
ngx_fuzz_pool(void)
{
    ngx_pool_t  *pool;

    pool = calloc(1, sizeof(ngx_pool_t));
    if (pool == NULL) {
        abort();
    }

    return pool;
}


void
ngx_fuzz_pool_free(ngx_pool_t *pool)
{
    ngx_fuzz_block_t    *b, *next;
    ngx_pool_cleanup_t  *c;

    for (c = pool->cleanup; c; c = c->next) {
        if (c->handler) {
            c->handler(c->data);
        }
    }

    /* the blocks hang off the pool's "large" list head, reused as ours */
    for (b = (ngx_fuzz_block_t *) pool->large; b; b = next) {
        next = b->next;
        free(b);
    }

    free(pool);
}


void *
ngx_palloc(ngx_pool_t *pool, size_t size)
{
    ngx_fuzz_block_t  *b;

    b = malloc(sizeof(ngx_fuzz_block_t) + size);
    if (b == NULL) {
        return NULL;
    }

    b->next = (ngx_fuzz_block_t *) pool->large;
    pool->large = (ngx_pool_large_t *) b;

    return b->data;
}


void *
ngx_pnalloc(ngx_pool_t *pool, size_t size)
{
    return ngx_palloc(pool, size);
}


void *
ngx_pcalloc(ngx_pool_t *pool, size_t size)
{
    void  *p;

    p = ngx_palloc(pool, size);
    if (p) {
        memset(p, 0, size);
    }

    return p;
}


ngx_pool_cleanup_t *
ngx_pool_cleanup_add(ngx_pool_t *p, size_t size)
{
    ngx_pool_cleanup_t  *c;

    c = ngx_palloc(p, sizeof(ngx_pool_cleanup_t));
    if (c == NULL) {
        return NULL;
    }

    c->data = size ? ngx_palloc(p, size) : NULL;
    c->handler = NULL;
    c->next = p->cleanup;
    p->cleanup = c;

    return c;
}


void *
ngx_array_push(ngx_array_t *a)
{
    void  *elts;

    if (a->nelts == a->nalloc) {
        elts = ngx_palloc(a->pool, 2 * a->nalloc * a->size);
        if (elts == NULL) {
            return NULL;
        }

        memcpy(elts, a->elts, a->nelts * a->size);
        a->elts = elts;
        a->nalloc *= 2;
    }

    return (u_char *) a->elts + a->size * a->nelts++;
}


ngx_int_t
ngx_conf_full_name(ngx_cycle_t *cycle, ngx_str_t *name, ngx_uint_t conf_prefix)
{
    /* the harnesses name their files by absolute paths */
    return NGX_OK;
}


void ngx_cdecl
ngx_conf_log_error(ngx_uint_t level, ngx_conf_t *cf, ngx_err_t err,
    const char *fmt, ...)
{
    /* nginx's own format (%V...) is not printf's: the template will do */
    fprintf(stderr, "nginx -t would say: %s\n", fmt);
}


static const u_char  ngx_fuzz_b64url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";


void
ngx_encode_base64url(ngx_str_t *dst, ngx_str_t *src)
{
    u_char   *d, *s;
    size_t    n;
    uint32_t  v;

    d = dst->data;
    s = src->data;

    for (n = src->len; n >= 3; n -= 3, s += 3) {
        v = (uint32_t) s[0] << 16 | (uint32_t) s[1] << 8 | s[2];
        *d++ = ngx_fuzz_b64url[v >> 18];
        *d++ = ngx_fuzz_b64url[(v >> 12) & 0x3f];
        *d++ = ngx_fuzz_b64url[(v >> 6) & 0x3f];
        *d++ = ngx_fuzz_b64url[v & 0x3f];
    }

    if (n) {
        v = (uint32_t) s[0] << 16 | (n == 2 ? (uint32_t) s[1] << 8 : 0);
        *d++ = ngx_fuzz_b64url[v >> 18];
        *d++ = ngx_fuzz_b64url[(v >> 12) & 0x3f];
        if (n == 2) {
            *d++ = ngx_fuzz_b64url[(v >> 6) & 0x3f];
        }
    }

    dst->len = d - dst->data;
}


static int
ngx_fuzz_b64url_value(u_char c)
{
    const u_char  *p;

    p = (const u_char *) strchr((const char *) ngx_fuzz_b64url, c);

    return (c == '\0' || p == NULL) ? -1 : (int) (p - ngx_fuzz_b64url);
}


ngx_int_t
ngx_decode_base64url(ngx_str_t *dst, ngx_str_t *src)
{
    int       c;
    u_char   *d;
    size_t    len, i;
    uint32_t  v;
    unsigned  bits;

    for (len = 0; len < src->len && src->data[len] != '='; len++) {
        if (ngx_fuzz_b64url_value(src->data[len]) < 0) {
            return NGX_ERROR;
        }
    }

    if (len % 4 == 1) {
        return NGX_ERROR;
    }

    d = dst->data;
    v = 0;
    bits = 0;

    /* the low bits a last character carries beyond a whole byte are
     * dropped, as nginx drops them */
    for (i = 0; i < len; i++) {
        c = ngx_fuzz_b64url_value(src->data[i]);
        v = (v << 6) | (uint32_t) c;
        bits += 6;

        if (bits >= 8) {
            bits -= 8;
            *d++ = (u_char) (v >> bits);
        }
    }

    dst->len = d - dst->data;

    return NGX_OK;
}
