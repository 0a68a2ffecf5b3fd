/*
 * game_alloc_bench.h: the "bench" command of game-allocate.
 */
#ifndef GAME_ALLOC_BENCH_H
#define GAME_ALLOC_BENCH_H

typedef struct {
    const char  *host, *prefix;
    int          port, timeout_ms;
    int          servers, requests, concurrency;
} game_alloc_bench_conf_t;

/* Prints two lines to stdout; returns 0, or -1 after reporting on stderr. */
int game_alloc_bench(const game_alloc_bench_conf_t *conf);

#endif /* GAME_ALLOC_BENCH_H */
