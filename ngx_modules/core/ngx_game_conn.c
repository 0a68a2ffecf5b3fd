
/*
 * Event-loop bindings for library-owned sockets.  See ngx_game_conn.h.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_game_conn.h"


ngx_connection_t *
ngx_game_conn_bind(ngx_socket_t fd, ngx_log_t *log, ngx_event_handler_pt read,
    ngx_event_handler_pt write, void *data)
{
    ngx_connection_t  *c;

    c = ngx_get_connection(fd, log);
    if (c == NULL) {
        return NULL;
    }

    c->data = data;
    c->log = log;
    c->read->log = log;
    c->write->log = log;
    c->read->handler = read;
    c->write->handler = write;

    /* the library has connected or is connecting; writes are ours to ask */
    c->write->ready = 0;

    return c;
}


ngx_int_t
ngx_game_conn_watch(ngx_connection_t *c, ngx_uint_t read, ngx_uint_t write)
{
    if (read && !c->read->active) {
        if (ngx_add_event(c->read, NGX_READ_EVENT, NGX_LEVEL_EVENT)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

    } else if (!read && c->read->active) {
        if (ngx_del_event(c->read, NGX_READ_EVENT, NGX_LEVEL_EVENT)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (write && !c->write->active) {
        if (ngx_add_event(c->write, NGX_WRITE_EVENT, NGX_LEVEL_EVENT)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

    } else if (!write && c->write->active) {
        if (ngx_del_event(c->write, NGX_WRITE_EVENT, NGX_LEVEL_EVENT)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * Forget the socket.  Normally the library has not closed it yet, and the
 * events are removed with a real syscall (not NGX_CLOSE_EVENT): a library
 * may close and reopen a descriptor under the same number while
 * connecting.  When the library already closed it ("closed"), the kernel
 * dropped it from epoll by itself and only our bookkeeping is left.
 */

void
ngx_game_conn_unbind(ngx_connection_t *c, ngx_uint_t closed)
{
    if (closed) {
        c->read->active = 0;
        c->write->active = 0;

    } else {
        (void) ngx_game_conn_watch(c, 0, 0);
    }

    if (c->read->timer_set) {
        ngx_del_timer(c->read);
    }

    if (c->write->timer_set) {
        ngx_del_timer(c->write);
    }

    if (c->read->posted) {
        ngx_delete_posted_event(c->read);
    }

    if (c->write->posted) {
        ngx_delete_posted_event(c->write);
    }

    ngx_free_connection(c);
    c->fd = (ngx_socket_t) -1;
}
