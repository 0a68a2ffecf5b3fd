
/*
 * The matching engine: given the tickets of one queue (one game mode in one
 * region), form matches.  Pure C, no nginx, no Redis: the nginx module
 * feeds it the queue it read from Redis, the simulator feeds it a synthetic
 * population, the unit tests feed it hand-made cases.
 *
 * Rules, per game mode:
 *   - a match has "teams" teams of "team_size" players; a ticket is a party
 *     of 1..team_size players and is never split across teams;
 *   - the skill window of a ticket widens with its waiting time:
 *       window = min(window_cap, window_base + window_step * (wait / window_every))
 *     and a match is formed around the oldest ticket that can complete one:
 *     every member's rating lies within that ticket's window;
 *   - teams are balanced by the sum of their players' ratings;
 *   - a ticket that waited max_wait without a match expires.
 */

#ifndef _GAME_MM_ENGINE_H_INCLUDED_
#define _GAME_MM_ENGINE_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


#define GAME_MM_MAX_TEAMS        8
#define GAME_MM_MAX_TEAM_SIZE    8
#define GAME_MM_MAX_MEMBERS      (GAME_MM_MAX_TEAMS * GAME_MM_MAX_TEAM_SIZE)


typedef struct {
    uint32_t     teams;
    uint32_t     team_size;
    double       window_base;       /* rating points, e.g. 100 */
    double       window_step;       /* widening per step, e.g. 50 */
    double       window_cap;        /* widest window, e.g. 600 */
    int64_t      window_every_ms;   /* step length, e.g. 5000 */
    int64_t      max_wait_ms;       /* then the ticket expires */
} game_mm_rules_t;


typedef struct {
    uint64_t     id;                /* the caller's, opaque here */
    double       rating;            /* the party's mean rating */
    uint32_t     size;              /* players in the party */
    int64_t      enqueued_ms;
} game_mm_ticket_t;


/* one member of a formed match: which ticket, on which team */
typedef struct {
    uint32_t     ticket;            /* index into the caller's array */
    uint32_t     team;
} game_mm_member_t;


typedef struct {
    uint32_t     first;             /* index of its first member */
    uint32_t     count;             /* members (tickets) in the match */
    double       spread;            /* highest minus lowest rating */
    double       imbalance;         /* largest minus smallest team sum */
} game_mm_match_t;


/* what a pass produced; arrays are the caller's, sized by the caller */
typedef struct {
    game_mm_match_t    *matches;
    size_t              nmatches;
    size_t              max_matches;

    game_mm_member_t   *members;
    size_t              nmembers;
    size_t              max_members;

    uint32_t           *expired;    /* indexes of expired tickets */
    size_t              nexpired;
    size_t              max_expired;
} game_mm_result_t;


typedef struct game_mm_engine_s  game_mm_engine_t;


/* 0 when the rules are usable; else a static message saying why not */
const char *game_mm_rules_check(const game_mm_rules_t *rules);

double game_mm_window(const game_mm_rules_t *rules, int64_t waited_ms);

/* scratch memory for queues of up to "capacity" tickets; reusable */
game_mm_engine_t *game_mm_engine_create(size_t capacity);
void game_mm_engine_destroy(game_mm_engine_t *engine);

/*
 * One matching pass over "n" tickets at time "now_ms".  Tickets already
 * placed in a match or expired are reported once; the caller removes them
 * from its queue.  Returns -1 when n exceeds the engine's capacity or the
 * rules are invalid, else the number of matches formed.
 */
long game_mm_engine_run(game_mm_engine_t *engine, const game_mm_rules_t *rules,
    const game_mm_ticket_t *tickets, size_t n, int64_t now_ms,
    game_mm_result_t *result);


#endif /* _GAME_MM_ENGINE_H_INCLUDED_ */
