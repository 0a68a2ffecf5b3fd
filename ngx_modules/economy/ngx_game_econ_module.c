
/*
 * ngx_game_econ_module: the store, wallets, inventories, payments and
 * match rewards.
 *
 *   http {
 *       game_econ_pg                main;
 *       game_econ_redis             main;
 *       game_econ_player            $game_player_id;
 *       game_econ_starting_balance  soft=1000 hard=0;
 *       game_econ_match_reward      win  soft=100 xp=100;
 *       game_econ_admin             ops /run/secrets/admin-ops;
 *
 *       server {
 *           location = /store/purchase { game_auth_jwt on; game_econ purchase; }
 *           ...
 *       }
 *   }
 *
 * conf/economy.locations has every endpoint's location.  The SQL is in
 * sql/005_economy.sql; the rewards consumer reads the matchmaker's
 * outcomes (ngx_game_econ_rewards.c).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_game_econ.h"
#include "ngx_game_conf.h"


static void *ngx_game_econ_create_main_conf(ngx_conf_t *cf);
static char *ngx_game_econ_init_main_conf(ngx_conf_t *cf, void *conf);
static char *ngx_game_econ_starting_balance(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_game_econ_match_reward(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_game_econ_admin(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_game_econ_webhook_secret(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_game_econ_rewards(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_game_econ_endpoint(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_game_econ_init_process(ngx_cycle_t *cycle);


static ngx_command_t  ngx_game_econ_commands[] = {

    /* the PostgreSQL pool of wallets, items and the ledger */
    { ngx_string("game_econ_pg"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_game_conf_set_pg_pool_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_game_econ_main_conf_t, pg),
      NULL },

    /* the Redis pool of the event bus (the matchmaker's outcomes) */
    { ngx_string("game_econ_redis"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_game_conf_set_redis_pool_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_game_econ_main_conf_t, redis),
      NULL },

    /* who is asking: normally $game_player_id, set by game_auth_jwt */
    { ngx_string("game_econ_player"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_game_econ_main_conf_t, player),
      NULL },

    /* game_econ_starting_balance [soft=N] [hard=N]: credited once, in the
     * ledger, when a player's wallet is first used */
    { ngx_string("game_econ_starting_balance"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_game_econ_starting_balance,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    /* how long a worker keeps the catalogue before reading it again */
    { ngx_string("game_econ_catalog_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_game_econ_main_conf_t, catalog_ttl),
      NULL },

    /* how long an inventory stays in its Redis cache; 0 turns the cache
     * off (every read goes to PostgreSQL) */
    { ngx_string("game_econ_inventory_cache_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_game_econ_main_conf_t, inventory_ttl),
      NULL },

    /* game_econ_admin name file: an admin and the file of its secret
     * (at least 32 characters); repeatable */
    { ngx_string("game_econ_admin"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_game_econ_admin,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    /* the payment gateway's endpoint secret, in a file; repeatable, so
     * that a new secret can be added before the old one is dropped */
    { ngx_string("game_econ_webhook_secret"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_game_econ_webhook_secret,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    /* how old a signed webhook event may be */
    { ngx_string("game_econ_webhook_tolerance"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_game_econ_main_conf_t, webhook_tolerance),
      NULL },

    /* game_econ_match_reward win|loss|draw [soft=N] [xp=N] */
    { ngx_string("game_econ_match_reward"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_2MORE,
      ngx_game_econ_match_reward,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    /* the stream of the matchmaker's outcomes (its game_mm_prefix +
     * "outcomes") */
    { ngx_string("game_econ_outcomes"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_game_econ_main_conf_t, outcomes),
      NULL },

    /* the rewards consumer's tuning: [batch=50] [claim_idle=60s]
     * [max_deliveries=10] [consumer_idle=1h] */
    { ngx_string("game_econ_rewards"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_game_econ_rewards,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    /* game_econ catalog|purchase|inventory|equip|unequip|wallet|
     *           transactions|achievements|webhook|admin_grant|
     *           admin_catalog; */
    { ngx_string("game_econ"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_game_econ_endpoint,
      0,
      0,
      NULL },

      ngx_null_command
};


static ngx_int_t
ngx_game_econ_postconfiguration(ngx_conf_t *cf)
{
    return ngx_game_econ_metrics_init(cf);
}


static ngx_http_module_t  ngx_game_econ_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_game_econ_postconfiguration,       /* postconfiguration */

    ngx_game_econ_create_main_conf,        /* create main configuration */
    ngx_game_econ_init_main_conf,          /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    NULL,                                  /* create location configuration */
    NULL                                   /* merge location configuration */
};


ngx_module_t  ngx_game_econ_module = {
    NGX_MODULE_V1,
    &ngx_game_econ_module_ctx,             /* module context */
    ngx_game_econ_commands,                /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_game_econ_init_process,            /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


typedef struct {
    ngx_str_t                   name;
    ngx_game_econ_endpoint_pt   handler;
    unsigned                    player:1;   /* needs game_econ_player */
} ngx_game_econ_endpoint_t;


static ngx_game_econ_endpoint_t  ngx_game_econ_endpoints[] = {
    { ngx_string("catalog"), ngx_game_econ_catalog, 0 },
    { ngx_string("purchase"), ngx_game_econ_purchase, 1 },
    { ngx_string("inventory"), ngx_game_econ_inventory, 1 },
    { ngx_string("equip"), ngx_game_econ_equip, 1 },
    { ngx_string("unequip"), ngx_game_econ_unequip, 1 },
    { ngx_string("wallet"), ngx_game_econ_wallet, 1 },
    { ngx_string("transactions"), ngx_game_econ_transactions, 1 },
    { ngx_string("achievements"), ngx_game_econ_achievements, 0 },
    { ngx_string("webhook"), ngx_game_econ_webhook, 0 },
    { ngx_string("admin_grant"), ngx_game_econ_admin_grant, 0 },
    { ngx_string("admin_catalog"), ngx_game_econ_admin_catalog, 0 },
    { ngx_null_string, NULL, 0 }
};


/* what the locations need, checked once the http block is read */
static ngx_uint_t  ngx_game_econ_used;
static ngx_uint_t  ngx_game_econ_used_player;
static ngx_uint_t  ngx_game_econ_used_admin;
static ngx_uint_t  ngx_game_econ_used_webhook;


static void *
ngx_game_econ_create_main_conf(ngx_conf_t *cf)
{
    ngx_game_econ_main_conf_t  *emcf;

    emcf = ngx_pcalloc(cf->pool, sizeof(ngx_game_econ_main_conf_t));
    if (emcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&emcf->webhook_secrets, cf->pool, 2,
                       sizeof(ngx_str_t))
        != NGX_OK)
    {
        return NULL;
    }

    emcf->pg = NGX_CONF_UNSET_PTR;
    emcf->redis = NGX_CONF_UNSET_PTR;
    emcf->start_soft = NGX_CONF_UNSET_UINT;
    emcf->start_hard = NGX_CONF_UNSET_UINT;
    emcf->catalog_ttl = NGX_CONF_UNSET_MSEC;
    emcf->inventory_ttl = NGX_CONF_UNSET;
    emcf->webhook_tolerance = NGX_CONF_UNSET;

    ngx_game_econ_used = 0;
    ngx_game_econ_used_player = 0;
    ngx_game_econ_used_admin = 0;
    ngx_game_econ_used_webhook = 0;

    return emcf;
}


static char *
ngx_game_econ_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_game_econ_main_conf_t  *emcf = conf;

    ngx_conf_init_ptr_value(emcf->pg, NULL);
    ngx_conf_init_ptr_value(emcf->redis, NULL);
    ngx_conf_init_uint_value(emcf->start_soft, 0);
    ngx_conf_init_uint_value(emcf->start_hard, 0);
    ngx_conf_init_msec_value(emcf->catalog_ttl, 10000);
    ngx_conf_init_value(emcf->inventory_ttl, 60);
    ngx_conf_init_value(emcf->webhook_tolerance, 300);

    if (emcf->outcomes.data == NULL) {
        ngx_str_set(&emcf->outcomes, "mm:outcomes");
    }

    if (!ngx_game_econ_used) {
        return NGX_CONF_OK;
    }

    if (emcf->pg == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "economy locations need \"game_econ_pg\"");
        return NGX_CONF_ERROR;
    }

    if (ngx_game_econ_used_player && emcf->player == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "economy locations for players need "
                      "\"game_econ_player\"");
        return NGX_CONF_ERROR;
    }

    if (ngx_game_econ_used_admin && emcf->admins.nelts == 0) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"game_econ admin_*\" locations need at least one "
                      "\"game_econ_admin\"");
        return NGX_CONF_ERROR;
    }

    if (ngx_game_econ_used_webhook && emcf->webhook_secrets.nelts == 0) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"game_econ webhook\" needs at least one "
                      "\"game_econ_webhook_secret\"");
        return NGX_CONF_ERROR;
    }

    /* the matchmaker's outcomes, through the core's event bus */
    if (ngx_game_econ_rewards_init(cf, emcf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_game_econ_starting_balance(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_game_econ_main_conf_t  *emcf = conf;

    static ngx_game_param_t  params[] = {
        { ngx_string("soft="), NGX_GAME_PARAM_NUMBER,
          offsetof(ngx_game_econ_main_conf_t, start_soft), 0, 1000000000 },
        { ngx_string("hard="), NGX_GAME_PARAM_NUMBER,
          offsetof(ngx_game_econ_main_conf_t, start_hard), 0, 1000000000 },
        { ngx_null_string, 0, 0, 0, 0 }
    };

    if (emcf->start_soft != NGX_CONF_UNSET_UINT
        || emcf->start_hard != NGX_CONF_UNSET_UINT)
    {
        return "is duplicate";
    }

    emcf->start_soft = 0;
    emcf->start_hard = 0;

    return ngx_game_conf_params(cf, cmd, 1, params, emcf);
}


/* game_econ_match_reward win|loss|draw [soft=N] [xp=N] */
static char *
ngx_game_econ_match_reward(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_game_econ_main_conf_t  *emcf = conf;

    ngx_str_t   *value;
    ngx_uint_t   result;

    struct {
        ngx_uint_t  soft;
        ngx_uint_t  xp;
    } reward;

    static ngx_game_param_t  params[] = {
        { ngx_string("soft="), NGX_GAME_PARAM_NUMBER, 0, 0, 1000000000 },
        { ngx_string("xp="), NGX_GAME_PARAM_NUMBER, sizeof(ngx_uint_t), 0,
          1000000000 },
        { ngx_null_string, 0, 0, 0, 0 }
    };

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "win") == 0) {
        result = NGX_GAME_ECON_WIN;
    } else if (ngx_strcmp(value[1].data, "loss") == 0) {
        result = NGX_GAME_ECON_LOSS;
    } else if (ngx_strcmp(value[1].data, "draw") == 0) {
        result = NGX_GAME_ECON_DRAW;
    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid result \"%V\" in \"%V\" directive, "
                           "expected win, loss or draw", &value[1],
                           &cmd->name);
        return NGX_CONF_ERROR;
    }

    reward.soft = emcf->reward_soft[result];
    reward.xp = emcf->reward_xp[result];

    if (ngx_game_conf_params(cf, cmd, 2, params, &reward) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    emcf->reward_soft[result] = reward.soft;
    emcf->reward_xp[result] = reward.xp;

    return NGX_CONF_OK;
}


/* game_econ_admin name file (the core reads and checks it) */
static char *
ngx_game_econ_admin(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_game_econ_main_conf_t  *emcf = conf;

    return ngx_game_admin_conf(cf, cmd, &emcf->admins);
}


static char *
ngx_game_econ_webhook_secret(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_game_econ_main_conf_t  *emcf = conf;

    ngx_str_t  *value, *secret;

    value = cf->args->elts;

    secret = ngx_array_push(&emcf->webhook_secrets);
    if (secret == NULL) {
        return NGX_CONF_ERROR;
    }

    if (ngx_game_conf_read_secret(cf, cmd, &value[1], secret) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_game_econ_rewards(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_game_econ_main_conf_t  *emcf = conf;

    if (emcf->bus.batch) {
        return "is duplicate";
    }

    if (ngx_game_bus_conf_params(cf, cmd, 1, &emcf->bus) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    /* zeros take the bus's defaults; mark the directive as seen */
    if (emcf->bus.batch == 0) {
        emcf->bus.batch = 50;
    }

    return NGX_CONF_OK;
}


static char *
ngx_game_econ_endpoint(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_str_t                 *value;
    ngx_game_econ_endpoint_t  *ep;
    ngx_http_core_loc_conf_t  *clcf;

    value = cf->args->elts;

    for (ep = ngx_game_econ_endpoints; ep->name.len; ep++) {
        if (ep->name.len == value[1].len
            && ngx_strncmp(ep->name.data, value[1].data, value[1].len) == 0)
        {
            break;
        }
    }

    if (ep->name.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "unknown endpoint \"%V\" in \"%V\" directive",
                           &value[1], &cmd->name);
        return NGX_CONF_ERROR;
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ep->handler;

    ngx_game_econ_used = 1;
    ngx_game_econ_used_player |= ep->player;
    ngx_game_econ_used_admin |= (ep->handler == ngx_game_econ_admin_grant
                                 || ep->handler
                                    == ngx_game_econ_admin_catalog);
    ngx_game_econ_used_webhook |= (ep->handler == ngx_game_econ_webhook);

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_game_econ_init_process(ngx_cycle_t *cycle)
{
    ngx_game_econ_cache_init();

    return NGX_OK;
}
