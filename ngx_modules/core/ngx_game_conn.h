
/*
 * Sockets owned by a client library (libpq, hiredis) but watched by the
 * worker's event loop.  The library opens and closes the descriptor; we
 * only lend it an ngx_connection_t so that nginx's event module can tell
 * us when it is readable or writable.
 *
 * Events are level-triggered: the libraries read a bounded amount per call
 * and expect to be told again while data remains, which edge-triggered
 * epoll (nginx's default) would not do.
 */

#ifndef _NGX_GAME_CONN_H_INCLUDED_
#define _NGX_GAME_CONN_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


ngx_connection_t *ngx_game_conn_bind(ngx_socket_t fd, ngx_log_t *log,
    ngx_event_handler_pt read, ngx_event_handler_pt write, void *data);
void ngx_game_conn_unbind(ngx_connection_t *c, ngx_uint_t closed);
ngx_int_t ngx_game_conn_watch(ngx_connection_t *c, ngx_uint_t read,
    ngx_uint_t write);


#endif /* _NGX_GAME_CONN_H_INCLUDED_ */
