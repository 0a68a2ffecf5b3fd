
/*
 * The realtime module's metrics: sockets open and players connected in
 * this nginx (each worker adds its own), and the close codes it sent, so
 * that slow consumers (1013), oversized messages (1009) and protocol
 * errors (1002, 1007) show on a graph before they show in complaints.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_game_rt.h"


static const char  *ngx_game_rt_codes[] = {
    "1000", "1001", "1002", "1003", "1007", "1008", "1009", "1011", "1013",
    "other", NULL
};


ngx_int_t
ngx_game_rt_metrics_init(ngx_conf_t *cf, ngx_game_rt_main_conf_t *rmcf)
{
    rmcf->m_sockets = ngx_game_metric_add(cf, NGX_GAME_METRIC_GAUGE,
                          "game_rt_sockets",
                          "WebSockets open, signed in or not", NULL, NULL,
                          NULL);
    rmcf->m_players = ngx_game_metric_add(cf, NGX_GAME_METRIC_GAUGE,
                          "game_rt_players",
                          "Players with at least one WebSocket, counted "
                          "once per worker that holds one", NULL, NULL,
                          NULL);
    rmcf->m_closes = ngx_game_metric_add(cf, NGX_GAME_METRIC_COUNTER,
                         "game_rt_closes_total",
                         "Close frames this server sent, by close code",
                         NULL, "code", ngx_game_rt_codes);

    if (rmcf->m_sockets == NULL || rmcf->m_players == NULL
        || rmcf->m_closes == NULL)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


void
ngx_game_rt_metrics_closed(ngx_game_rt_main_conf_t *rmcf, uint16_t code)
{
    ngx_uint_t  i;
    u_char      text[8];

    ngx_sprintf(text, "%ui%Z", (ngx_uint_t) code);

    for (i = 0; ngx_game_rt_codes[i + 1]; i++) {
        if (ngx_strcmp(text, ngx_game_rt_codes[i]) == 0) {
            break;
        }
    }

    /* i is "other" when no code matched */
    ngx_game_metric_inc(rmcf->m_closes, 0, i, 1);
}
