
/*
 * Pure helpers of the realtime module: no nginx, no I/O.  They decide
 * things about what clients send (handshake headers, frames, message
 * rates), so they live apart where the unit tests (tests/unit/
 * test_rt_util.c) reach them.
 */

#ifndef _GAME_RT_UTIL_H_INCLUDED_
#define _GAME_RT_UTIL_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


/* the Sec-WebSocket-Accept of a key: base64(SHA-1(key + RFC 6455's GUID)),
 * 28 characters and a NUL in "out" */
#define GAME_RT_ACCEPT_LEN  28
void game_rt_accept(const unsigned char *key, size_t len, char *out);

/* 1 when a Sec-WebSocket-Key is the base64 of 16 bytes, else 0 */
int game_rt_key_valid(const unsigned char *key, size_t len);

/*
 * 1 when a comma-separated header value ("keep-alive, Upgrade") holds
 * "token"; "nocase" compares without case (Connection, Upgrade), not
 * (Sec-WebSocket-Protocol names).
 */
int game_rt_list_has(const unsigned char *value, size_t len,
    const char *token, int nocase);

/*
 * The bytes a client frame with this payload took on the wire: RFC 6455
 * lengths are in their shortest form (wslay refuses others), and a
 * client's frame is masked (a 4-byte key).
 */
uint64_t game_rt_frame_size(uint64_t payload, int masked);


/*
 * A token bucket: "rate" messages a second, at most "burst" at once.
 * Tokens are kept in thousandths so that any rate works with whole
 * numbers.  take() answers 1 and spends a token, or 0 when none is left.
 */
typedef struct {
    uint64_t    last_ms;
    uint32_t    tokens;         /* thousandths */
    uint32_t    primed;
} game_rt_bucket_t;

int game_rt_bucket_take(game_rt_bucket_t *b, uint64_t now_ms,
    unsigned rate, unsigned burst);


#endif /* _GAME_RT_UTIL_H_INCLUDED_ */
