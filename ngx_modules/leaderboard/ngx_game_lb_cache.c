
/*
 * First pages in shared memory, so that a popular board is not a hot key
 * in Redis: the answer to GET /leaderboards/{name} without a cursor is
 * kept for game_lb_cache_ttl (1 s) in a zone every worker shares, keyed by
 * board, season, region and limit.
 *
 * The zone is nginx's slab allocator with a red-black tree of pages and a
 * queue from least to most recently stored, the way limit_req keeps its
 * states; when the zone is full the oldest pages go.  An expired page is
 * refreshed by one request, which reads Redis while the others keep
 * getting the expired copy, for a second at most: a page is never older
 * than its ttl plus a second, and Redis sees about one read per page per
 * ttl, however many ask.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_game_lb.h"


#define NGX_GAME_LB_CACHE_REFRESH  1000     /* ms a refresh may take */


typedef struct {
    ngx_rbtree_t                rbtree;
    ngx_rbtree_node_t           sentinel;
    ngx_queue_t                 lru;
} ngx_game_lb_cache_sh_t;


typedef struct {
    ngx_rbtree_node_t           node;       /* key: crc32 of the key */
    ngx_queue_t                 lru;
    ngx_msec_t                  expires;
    ngx_msec_t                  refreshing; /* until: one reads Redis */
    size_t                      klen;
    size_t                      blen;
    u_char                      data[1];    /* the key, then the body */
} ngx_game_lb_cache_node_t;


typedef struct {
    ngx_game_lb_cache_sh_t     *sh;
    ngx_slab_pool_t            *shpool;
} ngx_game_lb_cache_t;


static ngx_int_t ngx_game_lb_cache_init(ngx_shm_zone_t *zone, void *data);
static void ngx_game_lb_cache_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static ngx_game_lb_cache_node_t *ngx_game_lb_cache_find(
    ngx_game_lb_cache_t *c, ngx_str_t *key, uint32_t hash);
static void ngx_game_lb_cache_free(ngx_game_lb_cache_t *c,
    ngx_game_lb_cache_node_t *cn);


/* game_lb_cache off | SIZE */
char *
ngx_game_lb_cache_conf(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_game_lb_main_conf_t  *lmcf = conf;

    ssize_t               size;
    ngx_str_t            *value, name;
    ngx_game_lb_cache_t  *c;

    value = cf->args->elts;

    if (lmcf->cache_zone) {
        return "is duplicate";
    }

    if (ngx_strcmp(value[1].data, "off") == 0) {
        return NGX_CONF_OK;
    }

    size = ngx_parse_size(&value[1]);

    if (size == NGX_ERROR || size < (ssize_t) (8 * ngx_pagesize)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid size \"%V\" in \"%V\" directive: use "
                           "\"off\" or at least %uz", &value[1], &cmd->name,
                           8 * ngx_pagesize);
        return NGX_CONF_ERROR;
    }

    c = ngx_pcalloc(cf->pool, sizeof(ngx_game_lb_cache_t));
    if (c == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_str_set(&name, "game_lb_cache");

    lmcf->cache_zone = ngx_shared_memory_add(cf, &name, size,
                                             &ngx_game_lb_module);
    if (lmcf->cache_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    lmcf->cache_zone->init = ngx_game_lb_cache_init;
    lmcf->cache_zone->data = c;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_game_lb_cache_init(ngx_shm_zone_t *zone, void *data)
{
    ngx_game_lb_cache_t  *old = data;
    ngx_game_lb_cache_t  *c = zone->data;

    if (old) {
        /* a reload: the zone and its pages carry on */
        c->sh = old->sh;
        c->shpool = old->shpool;
        return NGX_OK;
    }

    c->shpool = (ngx_slab_pool_t *) zone->shm.addr;

    if (zone->shm.exists) {
        c->sh = c->shpool->data;
        return NGX_OK;
    }

    c->sh = ngx_slab_alloc(c->shpool, sizeof(ngx_game_lb_cache_sh_t));
    if (c->sh == NULL) {
        return NGX_ERROR;
    }

    c->shpool->data = c->sh;

    ngx_rbtree_init(&c->sh->rbtree, &c->sh->sentinel,
                    ngx_game_lb_cache_insert);
    ngx_queue_init(&c->sh->lru);

    c->shpool->log_nomem = 0;   /* full is normal: the oldest go */

    return NGX_OK;
}


/*
 * A page fresh enough to send, copied into the request's memory:
 * NGX_OK.  NGX_DECLINED: read it (a miss, or this request refreshes an
 * expired page, or there is no cache).
 */
ngx_int_t
ngx_game_lb_cache_get(ngx_http_request_t *r, ngx_str_t *key, ngx_str_t *body)
{
    uint32_t                   hash;
    ngx_int_t                  rc;
    ngx_msec_t                 now;
    ngx_game_lb_cache_t       *c;
    ngx_game_lb_cache_node_t  *cn;
    ngx_game_lb_main_conf_t   *lmcf;

    lmcf = ngx_http_get_module_main_conf(r, ngx_game_lb_module);

    if (lmcf->cache_zone == NULL || lmcf->cache_ttl == 0) {
        return NGX_DECLINED;
    }

    c = lmcf->cache_zone->data;
    hash = ngx_crc32_short(key->data, key->len);
    now = ngx_current_msec;
    rc = NGX_DECLINED;

    ngx_shmtx_lock(&c->shpool->mutex);

    cn = ngx_game_lb_cache_find(c, key, hash);

    if (cn) {
        if ((ngx_msec_int_t) (cn->expires + NGX_GAME_LB_CACHE_REFRESH - now)
            <= 0)
        {
            /* too old to be served at all: every request reads until a
             * fresh page is stored (Redis may be rebuilding) */

        } else if ((ngx_msec_int_t) (cn->expires - now) <= 0
                   && (ngx_msec_int_t) (cn->refreshing - now) <= 0)
        {
            /* expired, and nobody refreshes it: this request does */
            cn->refreshing = now + NGX_GAME_LB_CACHE_REFRESH;

        } else {
            body->data = ngx_pnalloc(r->pool, cn->blen);
            if (body->data) {
                ngx_memcpy(body->data, cn->data + cn->klen, cn->blen);
                body->len = cn->blen;
                rc = NGX_OK;
            }
        }
    }

    ngx_shmtx_unlock(&c->shpool->mutex);

    return rc;
}


void
ngx_game_lb_cache_put(ngx_http_request_t *r, ngx_str_t *key, ngx_str_t *body)
{
    uint32_t                   hash;
    ngx_uint_t                 tries;
    ngx_queue_t               *q;
    ngx_game_lb_cache_t       *c;
    ngx_game_lb_cache_node_t  *cn;
    ngx_game_lb_main_conf_t   *lmcf;

    lmcf = ngx_http_get_module_main_conf(r, ngx_game_lb_module);

    if (lmcf->cache_zone == NULL || lmcf->cache_ttl == 0) {
        return;
    }

    c = lmcf->cache_zone->data;
    hash = ngx_crc32_short(key->data, key->len);

    ngx_shmtx_lock(&c->shpool->mutex);

    cn = ngx_game_lb_cache_find(c, key, hash);
    if (cn) {
        ngx_game_lb_cache_free(c, cn);
    }

    for (tries = 0; tries < 8; tries++) {
        cn = ngx_slab_alloc_locked(c->shpool,
                                   offsetof(ngx_game_lb_cache_node_t, data)
                                   + key->len + body->len);
        if (cn || ngx_queue_empty(&c->sh->lru)) {
            break;
        }

        /* full: the least recently stored pages make room */
        q = ngx_queue_last(&c->sh->lru);
        ngx_game_lb_cache_free(c, ngx_queue_data(q, ngx_game_lb_cache_node_t,
                                                 lru));
    }

    if (cn) {
        cn->node.key = hash;
        cn->expires = ngx_current_msec + lmcf->cache_ttl;
        cn->refreshing = ngx_current_msec;
        cn->klen = key->len;
        cn->blen = body->len;
        ngx_memcpy(cn->data, key->data, key->len);
        ngx_memcpy(cn->data + key->len, body->data, body->len);

        ngx_rbtree_insert(&c->sh->rbtree, &cn->node);
        ngx_queue_insert_head(&c->sh->lru, &cn->lru);
    }

    ngx_shmtx_unlock(&c->shpool->mutex);
}


static ngx_game_lb_cache_node_t *
ngx_game_lb_cache_find(ngx_game_lb_cache_t *c, ngx_str_t *key, uint32_t hash)
{
    ngx_int_t                  rc;
    ngx_rbtree_node_t         *node, *sentinel;
    ngx_game_lb_cache_node_t  *cn;

    node = c->sh->rbtree.root;
    sentinel = c->sh->rbtree.sentinel;

    while (node != sentinel) {
        if (hash != node->key) {
            node = (hash < node->key) ? node->left : node->right;
            continue;
        }

        cn = (ngx_game_lb_cache_node_t *) node;

        rc = ngx_memn2cmp(key->data, cn->data, key->len, cn->klen);
        if (rc == 0) {
            return cn;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    return NULL;
}


static void
ngx_game_lb_cache_free(ngx_game_lb_cache_t *c, ngx_game_lb_cache_node_t *cn)
{
    ngx_queue_remove(&cn->lru);
    ngx_rbtree_delete(&c->sh->rbtree, &cn->node);
    ngx_slab_free_locked(c->shpool, cn);
}


static void
ngx_game_lb_cache_insert(ngx_rbtree_node_t *temp, ngx_rbtree_node_t *node,
    ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t         **p;
    ngx_game_lb_cache_node_t   *cn, *cnt;

    for ( ;; ) {
        if (node->key < temp->key) {
            p = &temp->left;

        } else if (node->key > temp->key) {
            p = &temp->right;

        } else {
            cn = (ngx_game_lb_cache_node_t *) node;
            cnt = (ngx_game_lb_cache_node_t *) temp;

            p = (ngx_memn2cmp(cn->data, cnt->data, cn->klen, cnt->klen) < 0)
                ? &temp->left : &temp->right;
        }

        if (*p == sentinel) {
            break;
        }

        temp = *p;
    }

    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}
