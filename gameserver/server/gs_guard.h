/*
 * gs_guard.h: what one source address may cost the server.
 *
 * A game server's address is public to every matched player, and UDP
 * sources are cheap.  The guard keeps, per source address, two token
 * buckets: connection attempts (an ENet CONNECT takes a peer before any
 * ticket is seen) and ticket verifications (an ECDSA verify is the most
 * expensive thing a stranger can ask for).  It also holds the per-tick
 * verification budget, so that however many sources take part, a tick
 * spends a bounded time on hellos; hellos past the budget wait for the
 * next tick in arrival order.
 *
 * The table is fixed and small: a source that has not been seen for a
 * while loses its entry to a newcomer, and starts again with a full
 * bucket.  Spoofed sources can therefore refill their buckets by churning
 * the table, but they cannot finish ENet's handshake; the half-open pool
 * (gs_server.c) and its short timeouts bound what they hold.
 *
 * Transport-free: addresses are opaque 32-bit keys, times are ms.
 */
#ifndef GS_GUARD_H
#define GS_GUARD_H

#include <stdint.h>

#define GS_GUARD_SOURCES   512          /* table entries */
#define GS_GUARD_PROBE     8            /* entries looked at per source */

typedef struct {
    uint32_t   addr;
    int        used;
    double     connects, verifies;      /* tokens */
    int64_t    ms;                      /* last refill, and last seen */
} gs_guard_src_t;

typedef struct {
    /* per source: bursts, and refill per second */
    int             connect_burst, connect_rate;
    int             verify_burst, verify_rate;
    int             verify_per_tick;    /* all sources together */

    int             verify_left;        /* this tick */
    uint64_t        connects_dropped, verifies_refused, verifies_deferred;
    gs_guard_src_t  src[GS_GUARD_SOURCES];
} gs_guard_t;

void gs_guard_init(gs_guard_t *g, int connect_burst, int connect_rate,
    int verify_burst, int verify_rate, int verify_per_tick);
/* a new tick: the per-tick budget is whole again */
void gs_guard_tick(gs_guard_t *g);
/* 1: this source may attempt a connection now (a token is spent) */
int gs_guard_connect(gs_guard_t *g, uint32_t addr, int64_t now_ms);
/* 1: this source may have one more ticket verified (a token is spent);
 * 0: it asked for too many, refuse it */
int gs_guard_verify_source(gs_guard_t *g, uint32_t addr, int64_t now_ms);
/* 1: the tick's budget has room for one verification (it is spent);
 * 0: wait for the next tick */
int gs_guard_verify_tick(gs_guard_t *g);

#endif /* GS_GUARD_H */
