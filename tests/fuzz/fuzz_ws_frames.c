/*
 * fuzz_ws_frames: what a WebSocket client sends, read the way the realtime
 * module reads it.
 *
 * The first bytes are the upgrade's Sec-WebSocket-Key and a header list,
 * checked with the module's own helpers (game_rt_key_valid,
 * game_rt_list_has, game_rt_accept); the rest is a stream of frames fed
 * to a server-side libwslay context configured as ngx_game_rt_conn.c
 * configures it (the same message size cap; masking required), in pieces
 * of fuzzed sizes, as TCP would deliver them.  Whatever arrives, nothing
 * may crash or read out of bounds, every message handed over must be
 * within the cap, and a text message must be valid UTF-8: the module
 * relies on wslay's check before it parses the text.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <wslay/wslay.h>

#include "game_rt_util.h"

#define FUZZ_CHECK(cond)  do { if (!(cond)) abort(); } while (0)

/* ngx_game_rt_module.c's default game_rt_max_message */
#define FUZZ_MAX_MESSAGE  (64 * 1024)


typedef struct {
    const uint8_t  *data;
    size_t          size, pos;
    size_t          piece;      /* bytes per recv, from the input */
} fuzz_stream_t;


static ssize_t
fuzz_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
    void *user)
{
    size_t          n;
    fuzz_stream_t  *s = user;

    (void) flags;

    if (s->pos >= s->size) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }

    n = s->size - s->pos;
    n = n < len ? n : len;
    n = n < s->piece ? n : s->piece;

    memcpy(buf, s->data + s->pos, n);
    s->pos += n;

    return (ssize_t) n;
}


static ssize_t
fuzz_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len,
    int flags, void *user)
{
    (void) ctx; (void) data; (void) flags; (void) user;
    return (ssize_t) len;       /* the client takes everything */
}


/* structure only: a lead byte and its continuation bytes */
static int
fuzz_utf8_valid(const uint8_t *p, size_t n)
{
    size_t  i, k, more;

    for (i = 0; i < n; i += 1 + more) {
        if (p[i] < 0x80) {
            more = 0;
        } else if ((p[i] & 0xe0) == 0xc0) {
            more = 1;
        } else if ((p[i] & 0xf0) == 0xe0) {
            more = 2;
        } else if ((p[i] & 0xf8) == 0xf0) {
            more = 3;
        } else {
            return 0;
        }

        if (more > n - i - 1) {
            return 0;
        }

        for (k = 1; k <= more; k++) {
            if ((p[i + k] & 0xc0) != 0x80) {
                return 0;
            }
        }
    }

    return 1;
}


static void
fuzz_on_msg(wslay_event_context_ptr ctx,
    const struct wslay_event_on_msg_recv_arg *arg, void *user)
{
    (void) ctx; (void) user;

    FUZZ_CHECK(arg->msg_length <= FUZZ_MAX_MESSAGE);

    if (arg->opcode == WSLAY_TEXT_FRAME) {
        /* the module hands text to jansson trusting wslay's UTF-8 check
         * (bad text is closed with 1007 before it is delivered) */
        FUZZ_CHECK(fuzz_utf8_valid(arg->msg, arg->msg_length));
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char                            accept[GAME_RT_ACCEPT_LEN + 1];
    size_t                          klen, hlen;
    fuzz_stream_t                   s;
    wslay_event_context_ptr         ctx;
    struct wslay_event_callbacks    cb = {
        fuzz_recv, fuzz_send, NULL, NULL, NULL, NULL, fuzz_on_msg
    };

    if (size < 3) {
        return -1;
    }

    /* [key length][header length][piece size][key][header][frames...] */
    klen = data[0] % 64;
    hlen = data[1] % 128;
    s.piece = 1 + data[2] % 64;
    data += 3;
    size -= 3;

    if (klen + hlen > size) {
        return -1;
    }

    if (game_rt_key_valid(data, klen)) {
        game_rt_accept(data, klen, accept);
        accept[GAME_RT_ACCEPT_LEN] = '\0';
        FUZZ_CHECK(strlen(accept) == GAME_RT_ACCEPT_LEN);
    }

    (void) game_rt_list_has(data + klen, hlen, "game.v1", 0);
    (void) game_rt_list_has(data + klen, hlen, "websocket", 1);

    data += klen + hlen;
    size -= klen + hlen;

    s.data = data;
    s.size = size;
    s.pos = 0;

    if (wslay_event_context_server_init(&ctx, &cb, &s) != 0) {
        return 0;
    }

    wslay_event_config_set_max_recv_msg_length(ctx, FUZZ_MAX_MESSAGE);

    /* until the input is read or wslay gives up on the peer */
    while (s.pos < s.size && wslay_event_want_read(ctx)) {
        if (wslay_event_recv(ctx) != 0) {
            break;
        }
        (void) wslay_event_send(ctx);
    }

    wslay_event_context_free(ctx);

    return 0;
}
