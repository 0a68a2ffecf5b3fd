/*
 * gs_guard.c: per-source token buckets in a fixed table, and the
 * per-tick verification budget (see gs_guard.h).
 */

#include <string.h>

#include "gs_guard.h"


void
gs_guard_init(gs_guard_t *g, int connect_burst, int connect_rate,
    int verify_burst, int verify_rate, int verify_per_tick)
{
    memset(g, 0, sizeof(*g));
    g->connect_burst = connect_burst;
    g->connect_rate = connect_rate;
    g->verify_burst = verify_burst;
    g->verify_rate = verify_rate;
    g->verify_per_tick = verify_per_tick;
    g->verify_left = verify_per_tick;
}


void
gs_guard_tick(gs_guard_t *g)
{
    g->verify_left = g->verify_per_tick;
}


/* Fibonacci hashing spreads neighbouring addresses (a /24 of attackers) */
static unsigned
gs_guard_hash(uint32_t addr)
{
    return (unsigned) ((addr * 2654435769u) >> 23) % GS_GUARD_SOURCES;
}


/*
 * The source's entry, refilled up to now.  A source not in the table takes
 * the free or least recently seen entry among its probe window: the
 * sources that matter are the ones sending now.
 */
static gs_guard_src_t *
gs_guard_find(gs_guard_t *g, uint32_t addr, int64_t now_ms)
{
    gs_guard_src_t  *e, *victim = NULL;
    unsigned         h, i;
    double           secs;

    h = gs_guard_hash(addr);
    for (i = 0; i < GS_GUARD_PROBE; i++) {
        e = &g->src[(h + i) % GS_GUARD_SOURCES];
        if (e->used && e->addr == addr) {
            goto refill;
        }
        if (victim == NULL || !e->used || (victim->used && e->ms < victim->ms))
        {
            victim = e;
        }
    }

    e = victim;
    e->used = 1;
    e->addr = addr;
    e->connects = g->connect_burst;
    e->verifies = g->verify_burst;
    e->ms = now_ms;
    return e;

refill:
    if (now_ms > e->ms) {
        secs = (now_ms - e->ms) / 1000.0;
        e->connects += secs * g->connect_rate;
        if (e->connects > g->connect_burst) {
            e->connects = g->connect_burst;
        }
        e->verifies += secs * g->verify_rate;
        if (e->verifies > g->verify_burst) {
            e->verifies = g->verify_burst;
        }
        e->ms = now_ms;
    }
    return e;
}


int
gs_guard_connect(gs_guard_t *g, uint32_t addr, int64_t now_ms)
{
    gs_guard_src_t  *e = gs_guard_find(g, addr, now_ms);

    if (e->connects < 1.0) {
        g->connects_dropped++;
        return 0;
    }
    e->connects -= 1.0;
    return 1;
}


int
gs_guard_verify_source(gs_guard_t *g, uint32_t addr, int64_t now_ms)
{
    gs_guard_src_t  *e = gs_guard_find(g, addr, now_ms);

    if (e->verifies < 1.0) {
        g->verifies_refused++;
        return 0;
    }
    e->verifies -= 1.0;
    return 1;
}


int
gs_guard_verify_tick(gs_guard_t *g)
{
    if (g->verify_left <= 0) {
        g->verifies_deferred++;
        return 0;
    }
    g->verify_left--;
    return 1;
}
