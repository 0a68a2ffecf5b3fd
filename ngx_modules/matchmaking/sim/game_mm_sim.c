
/*
 * game-mm-sim: the matchmaking simulator and the engine's benchmark.
 *
 * It runs the real engine (game_mm_engine.c) over a synthetic population:
 * players arrive as a Poisson process, ratings ~ N(1500, 300), each with a
 * latency to every region; a ticket queues in its lowest-latency region
 * under the mode's maximum latency.  The matcher runs once per tick per
 * region, as the nginx module does.  For each arrival rate it prints the
 * time to match (p50, p95, p99), the rating spread within matches and the
 * share of tickets that expired.
 *
 *   game-mm-sim [--mode duel|squad] [--rates 2,10,50,250,1000]
 *               [--minutes 20] [--regions 3] [--seed N]
 *   game-mm-sim --bench [--tickets 100000]
 */

#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../game_mm_engine.h"


#define SIM_TICK_MS        1000
#define SIM_MAX_REGIONS    8
#define SIM_MAX_LATENCY    120.0


typedef struct {
    game_mm_ticket_t   *tickets;
    size_t              n;
    size_t              cap;
} sim_queue_t;


typedef struct {
    double             *values;
    size_t              n;
    size_t              cap;
} sim_samples_t;


static const game_mm_rules_t  sim_duel = {
    2, 1, 100.0, 50.0, 600.0, 5000, 120000
};

static const game_mm_rules_t  sim_squad = {
    2, 3, 100.0, 50.0, 600.0, 5000, 120000
};


static uint64_t  sim_rng = 88172645463325252ULL;


static double
sim_uniform(void)
{
    /* xorshift64: fast, and the same sequence for the same seed */
    sim_rng ^= sim_rng << 13;
    sim_rng ^= sim_rng >> 7;
    sim_rng ^= sim_rng << 17;

    return (double) (sim_rng >> 11) / 9007199254740992.0;
}


static double
sim_normal(double mean, double sd)
{
    double  u1, u2;

    do {
        u1 = sim_uniform();
    } while (u1 <= 0.0);

    u2 = sim_uniform();

    return mean + sd * sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}


static void
sim_push(sim_samples_t *s, double v)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 1024;
        s->values = realloc(s->values, s->cap * sizeof(double));
        if (s->values == NULL) {
            perror("realloc");
            exit(1);
        }
    }

    s->values[s->n++] = v;
}


static int
sim_cmp_double(const void *a, const void *b)
{
    double  x = *(const double *) a, y = *(const double *) b;

    return (x > y) - (x < y);
}


static double
sim_percentile(sim_samples_t *s, double p)
{
    size_t  i;

    if (s->n == 0) {
        return NAN;
    }

    i = (size_t) (p * (double) (s->n - 1) + 0.5);
    return s->values[i];
}


static void
sim_enqueue(sim_queue_t *q, game_mm_ticket_t *t)
{
    if (q->n == q->cap) {
        q->cap = q->cap ? q->cap * 2 : 1024;
        q->tickets = realloc(q->tickets, q->cap * sizeof(game_mm_ticket_t));
        if (q->tickets == NULL) {
            perror("realloc");
            exit(1);
        }
    }

    q->tickets[q->n++] = *t;
}


/* the party size mix of a squad queue: mostly solo players */
static uint32_t
sim_party_size(const game_mm_rules_t *rules)
{
    double  u;

    if (rules->team_size == 1) {
        return 1;
    }

    u = sim_uniform();
    return u < 0.6 ? 1 : (u < 0.85 ? 2 : 3);
}


/* the region a new ticket queues in, or -1 when none is close enough */
static int
sim_pick_region(int regions)
{
    int     r, best, home;
    double  lat, best_lat;

    home = (int) (sim_uniform() * regions);
    best = -1;
    best_lat = SIM_MAX_LATENCY;

    for (r = 0; r < regions; r++) {
        lat = (r == home) ? 10 + 50 * sim_uniform() : 60 + 140 * sim_uniform();
        if (lat <= best_lat) {
            best_lat = lat;
            best = r;
        }
    }

    return best;
}


static void
sim_run_rate(const game_mm_rules_t *rules, const char *mode, double rate,
    int minutes, int regions)
{
    int                r;
    size_t             i, k, kept, arrived, matched, expired, cap;
    double             next_arrival;
    int64_t            now, end;
    uint8_t           *gone;
    game_mm_ticket_t   t;
    game_mm_result_t   res;
    game_mm_engine_t  *engine;
    sim_queue_t        queues[SIM_MAX_REGIONS];
    sim_samples_t      ttm, spread, imbalance;

    memset(queues, 0, sizeof(queues));
    memset(&ttm, 0, sizeof(ttm));
    memset(&spread, 0, sizeof(spread));
    memset(&imbalance, 0, sizeof(imbalance));

    cap = (size_t) (rate * 130.0) + 1024;   /* max_wait worth of arrivals */
    engine = game_mm_engine_create(cap);
    gone = calloc(cap, 1);

    memset(&res, 0, sizeof(res));
    res.max_matches = cap;
    res.max_members = cap;
    res.max_expired = cap;
    res.matches = calloc(cap, sizeof(game_mm_match_t));
    res.members = calloc(cap, sizeof(game_mm_member_t));
    res.expired = calloc(cap, sizeof(uint32_t));

    if (engine == NULL || gone == NULL || res.matches == NULL
        || res.members == NULL || res.expired == NULL)
    {
        fprintf(stderr, "game-mm-sim: out of memory\n");
        exit(1);
    }

    arrived = matched = expired = 0;
    end = (int64_t) minutes * 60000;
    next_arrival = -log(1.0 - sim_uniform()) / rate * 1000.0;

    for (now = SIM_TICK_MS; now <= end; now += SIM_TICK_MS) {

        /* arrivals of the last tick, at their own times */
        while (next_arrival <= (double) now) {
            r = sim_pick_region(regions);
            if (r >= 0 && queues[r].n < cap) {
                t.id = arrived;
                t.size = sim_party_size(rules);
                t.rating = sim_normal(1500, 300);
                t.enqueued_ms = (int64_t) next_arrival;
                sim_enqueue(&queues[r], &t);
            }
            arrived++;
            next_arrival += -log(1.0 - sim_uniform()) / rate * 1000.0;
        }

        for (r = 0; r < regions; r++) {
            sim_queue_t  *q = &queues[r];

            if (game_mm_engine_run(engine, rules, q->tickets, q->n, now, &res)
                < 0)
            {
                fprintf(stderr, "game-mm-sim: queue over capacity\n");
                exit(1);
            }

            for (i = 0; i < res.nmatches; i++) {
                game_mm_match_t  *m = &res.matches[i];

                sim_push(&spread, m->spread);
                sim_push(&imbalance, m->imbalance);

                for (k = m->first; k < m->first + m->count; k++) {
                    uint32_t  ti = res.members[k].ticket;

                    sim_push(&ttm, (double) (now - q->tickets[ti].enqueued_ms)
                                   / 1000.0);
                    gone[ti] = 1;
                    matched++;
                }
            }

            for (i = 0; i < res.nexpired; i++) {
                gone[res.expired[i]] = 1;
                expired++;
            }

            /* drop what left the queue, keeping arrival order */
            for (i = 0, kept = 0; i < q->n; i++) {
                if (gone[i]) {
                    gone[i] = 0;
                    continue;
                }
                q->tickets[kept++] = q->tickets[i];
            }
            q->n = kept;
        }
    }

    qsort(ttm.values, ttm.n, sizeof(double), sim_cmp_double);
    qsort(spread.values, spread.n, sizeof(double), sim_cmp_double);
    qsort(imbalance.values, imbalance.n, sizeof(double), sim_cmp_double);

    printf("| %-5s | %6.0f | %8zu | %7.2f | %7.2f | %7.2f | %6.0f | %6.0f "
           "| %6.0f | %5.1f%% |\n",
           mode, rate, matched,
           sim_percentile(&ttm, 0.50), sim_percentile(&ttm, 0.95),
           sim_percentile(&ttm, 0.99),
           sim_percentile(&spread, 0.50), sim_percentile(&spread, 0.95),
           sim_percentile(&imbalance, 0.95),
           100.0 * (double) expired / (double) (matched + expired + 1e-9));

    for (r = 0; r < regions; r++) {
        free(queues[r].tickets);
    }
    free(ttm.values);
    free(spread.values);
    free(imbalance.values);
    free(res.matches);
    free(res.members);
    free(res.expired);
    free(gone);
    game_mm_engine_destroy(engine);
}


static double
sim_elapsed(struct timespec *a, struct timespec *b)
{
    return (double) (b->tv_sec - a->tv_sec)
           + (double) (b->tv_nsec - a->tv_nsec) / 1e9;
}


/*
 * The engine alone: one queue of "n" duel tickets that arrived over the
 * last minute; passes until nothing more matches.  Prints tickets matched
 * per second of engine time and the first pass's duration.
 */

static void
sim_bench(size_t n)
{
    size_t             i, matched, passes, left, kept;
    double             total, first;
    uint8_t           *gone;
    game_mm_ticket_t  *t;
    game_mm_result_t   res;
    game_mm_engine_t  *engine;
    struct timespec    a, b;

    engine = game_mm_engine_create(n);
    t = calloc(n, sizeof(*t));
    gone = calloc(n, 1);

    memset(&res, 0, sizeof(res));
    res.max_matches = res.max_members = res.max_expired = n;
    res.matches = calloc(n, sizeof(game_mm_match_t));
    res.members = calloc(n, sizeof(game_mm_member_t));
    res.expired = calloc(n, sizeof(uint32_t));

    if (engine == NULL || t == NULL || gone == NULL || res.matches == NULL
        || res.members == NULL || res.expired == NULL)
    {
        fprintf(stderr, "game-mm-sim: out of memory\n");
        exit(1);
    }

    for (i = 0; i < n; i++) {
        t[i].id = i;
        t[i].size = 1;
        t[i].rating = sim_normal(1500, 300);
        t[i].enqueued_ms = (int64_t) (sim_uniform() * 60000);
    }

    matched = passes = 0;
    total = first = 0;
    left = n;

    do {
        clock_gettime(CLOCK_MONOTONIC, &a);
        game_mm_engine_run(engine, &sim_duel, t, left, 60000, &res);
        clock_gettime(CLOCK_MONOTONIC, &b);

        total += sim_elapsed(&a, &b);
        if (passes++ == 0) {
            first = sim_elapsed(&a, &b);
        }

        for (i = 0; i < res.nmembers; i++) {
            gone[res.members[i].ticket] = 1;
        }
        matched += res.nmembers;

        for (i = 0, kept = 0; i < left; i++) {
            if (!gone[i]) {
                t[kept++] = t[i];
            }
            gone[i] = 0;
        }
        left = kept;

    } while (res.nmatches > 0);

    printf("mm_engine_duel %zu tickets: matched %zu in %zu passes, "
           "%.0f tickets/s, first pass %.1f ms\n",
           n, matched, passes, (double) matched / total, first * 1000.0);
    printf("mm_engine_bench %.0f %.3f\n", (double) matched / total,
           first * 1000.0);

    free(t);
    free(gone);
    free(res.matches);
    free(res.members);
    free(res.expired);
    game_mm_engine_destroy(engine);
}


int
main(int argc, char **argv)
{
    int                     i, minutes, regions, bench;
    char                   *rates, *p, list[256];
    size_t                  tickets;
    const char             *mode;
    const game_mm_rules_t  *rules;

    mode = "duel";
    rates = "2,10,50,250,1000";
    minutes = 20;
    regions = 3;
    bench = 0;
    tickets = 100000;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--bench") == 0) {
            bench = 1;
        } else if (strcmp(argv[i], "--mode") == 0 && i + 1 < argc) {
            mode = argv[++i];
        } else if (strcmp(argv[i], "--rates") == 0 && i + 1 < argc) {
            rates = argv[++i];
        } else if (strcmp(argv[i], "--minutes") == 0 && i + 1 < argc) {
            minutes = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--regions") == 0 && i + 1 < argc) {
            regions = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--tickets") == 0 && i + 1 < argc) {
            tickets = (size_t) atol(argv[++i]);
        } else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
            sim_rng = (uint64_t) atoll(argv[++i]) | 1;
        } else {
            fprintf(stderr, "usage: game-mm-sim [--mode duel|squad] "
                    "[--rates R,R,...] [--minutes N] [--regions N] "
                    "[--seed N] | --bench [--tickets N]\n");
            return 2;
        }
    }

    if (bench) {
        sim_bench(tickets);
        return 0;
    }

    if (strcmp(mode, "duel") == 0) {
        rules = &sim_duel;
    } else if (strcmp(mode, "squad") == 0) {
        rules = &sim_squad;
    } else {
        fprintf(stderr, "game-mm-sim: unknown mode \"%s\"\n", mode);
        return 2;
    }

    if (regions < 1 || regions > SIM_MAX_REGIONS || minutes < 1) {
        fprintf(stderr, "game-mm-sim: regions 1..8, minutes >= 1\n");
        return 2;
    }

    printf("| mode  | arrivals/s | tickets matched | TTM p50 s | p95 s | p99 s "
           "| spread p50 | p95 | team imbalance p95 | expired |\n");
    printf("|---|---|---|---|---|---|---|---|---|---|\n");

    snprintf(list, sizeof(list), "%s", rates);

    for (p = strtok(list, ","); p; p = strtok(NULL, ",")) {
        sim_run_rate(rules, mode, atof(p), minutes, regions);
    }

    return 0;
}
