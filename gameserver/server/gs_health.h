/*
 * gs_health.h: the tick loop's pulse, in a small file another process reads.
 *
 * game-server --health-file PATH maps PATH (MAP_SHARED) and its tick loop
 * writes this struct there on every tick: stores to memory, no system call
 * per tick.  The fleet manager reads the file each pass (gs_health_read)
 * and compares last_tick_ms with its own clock: CLOCK_MONOTONIC is one
 * clock for the whole machine, so a loop that stopped ticking is seen as
 * hung even while the rest of the process (the allocator thread) lives.
 *
 * The writer stores magic last, so a reader that sees the magic sees a
 * header that is filled in; a torn read of two counters is harmless.
 */
#ifndef GS_HEALTH_H
#define GS_HEALTH_H

#include <stddef.h>
#include <stdint.h>

#define GS_HEALTH_MAGIC    0x46485347u      /* "GSHF" in the file */
#define GS_HEALTH_VERSION  1

/* the loop's phase, as game-server's lifecycle names it */
typedef enum {
    GS_HEALTH_IDLE, GS_HEALTH_WAITING, GS_HEALTH_PLAYING, GS_HEALTH_ENDING
} gs_health_phase_e;

typedef struct {
    uint32_t  magic, version;
    int32_t   pid;
    uint32_t  phase;            /* gs_health_phase_e */
    uint64_t  ticks;            /* ticks since start */
    int64_t   last_tick_ms;     /* CLOCK_MONOTONIC of the last tick */
    uint32_t  players;          /* connected */
    uint32_t  tick_p99_us;      /* of the last GS_HEALTH_WINDOW ticks */
} gs_health_t;

/* ticks the published p99 covers: about 4 s at 60 Hz */
#define GS_HEALTH_WINDOW   256

/* the mapping, or NULL with err filled; the file is created or truncated */
gs_health_t *gs_health_open(const char *path, char *err, size_t errlen);
void gs_health_tick(gs_health_t *h, int64_t now_ms, unsigned phase,
    unsigned players);
void gs_health_tick_time(gs_health_t *h, uint32_t tick_p99_us);
void gs_health_close(gs_health_t *h);

/* for the reader: 0 and *out filled, -1 when missing, short or foreign */
int gs_health_read(const char *path, gs_health_t *out);

#endif /* GS_HEALTH_H */
