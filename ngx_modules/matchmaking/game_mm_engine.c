
/*
 * The matching engine.  See game_mm_engine.h for the rules.
 *
 * One pass works on two orders of the same tickets: by age, which decides
 * whose turn it is (the oldest ticket is served first, so no ticket
 * starves), and by rating, where a ticket's best opponents are its
 * neighbours.  Around each anchor the pass walks outwards in rating, taking
 * the nearest tickets that fit, until the match is full or the anchor's
 * window is exhausted.
 *
 * Tickets placed in a match leave the rating order.  Walking over them
 * again would make a dense queue quadratic, so the order carries "next
 * alive" links in both directions, compressed as they are followed (the
 * union-find trick): each step skips every taken ticket at once.
 *
 * A pass costs O(n log n) for the two sorts plus a bounded walk per anchor.
 */

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "game_mm_engine.h"


/* how far a walk may go past tickets that do not fit (a party too large
 * for the room left) before the anchor gives up for this pass */
#define GAME_MM_MAX_CONSIDER     64

/* the team balancing search stops after this many steps, keeping the
 * best split found; a full 2 x 5 match needs far fewer */
#define GAME_MM_MAX_SEARCH       20000


typedef struct {
    double       key;
    uint32_t     index;
} game_mm_key_t;


struct game_mm_engine_s {
    size_t           capacity;
    size_t           n;             /* tickets in the current pass */
    game_mm_key_t   *keys;
    uint32_t        *by_rating;     /* position -> ticket */
    uint32_t        *position;      /* ticket -> position (1-based) */
    uint32_t        *up;            /* next alive position at or above */
    uint32_t        *down;          /* next alive position at or below */
    uint8_t         *taken;
};


/* the balancing search's state */
typedef struct {
    const game_mm_ticket_t  *tickets;
    const uint32_t          *members;
    uint32_t                 count;
    uint32_t                 teams;
    uint32_t                 team_size;

    uint32_t                 fill[GAME_MM_MAX_TEAMS];
    double                   sum[GAME_MM_MAX_TEAMS];
    uint32_t                 assign[GAME_MM_MAX_MEMBERS];

    uint32_t                 best[GAME_MM_MAX_MEMBERS];
    double                   best_imbalance;
    unsigned long            steps;
} game_mm_split_t;


static int game_mm_key_cmp(const void *a, const void *b);
static uint32_t game_mm_find_up(game_mm_engine_t *e, uint32_t p);
static uint32_t game_mm_find_down(game_mm_engine_t *e, uint32_t p);
static void game_mm_take(game_mm_engine_t *e, uint32_t ticket);
static int game_mm_gather(game_mm_engine_t *e, const game_mm_rules_t *rules,
    const game_mm_ticket_t *tickets, uint32_t anchor, double window,
    uint32_t *members, uint32_t *count);
static int game_mm_split(const game_mm_rules_t *rules,
    const game_mm_ticket_t *tickets, const uint32_t *members, uint32_t count,
    uint32_t *teams, double *imbalance);
static void game_mm_split_search(game_mm_split_t *s, uint32_t i);


const char *
game_mm_rules_check(const game_mm_rules_t *rules)
{
    if (rules->teams < 1 || rules->teams > GAME_MM_MAX_TEAMS) {
        return "teams must be between 1 and 8";
    }

    if (rules->team_size < 1 || rules->team_size > GAME_MM_MAX_TEAM_SIZE) {
        return "team size must be between 1 and 8";
    }

    if (rules->teams * rules->team_size < 2) {
        return "a match needs at least two players";
    }

    if (!(rules->window_base >= 0) || !(rules->window_step >= 0)
        || !(rules->window_cap >= rules->window_base))
    {
        return "the skill window must be non-negative and its cap at least "
               "its base";
    }

    if (rules->window_every_ms <= 0 || rules->max_wait_ms <= 0) {
        return "the widening step and the maximum wait must be positive";
    }

    return NULL;
}


double
game_mm_window(const game_mm_rules_t *rules, int64_t waited_ms)
{
    double  w;

    if (waited_ms < 0) {
        waited_ms = 0;
    }

    w = rules->window_base
        + rules->window_step * (double) (waited_ms / rules->window_every_ms);

    return w < rules->window_cap ? w : rules->window_cap;
}


game_mm_engine_t *
game_mm_engine_create(size_t capacity)
{
    game_mm_engine_t  *e;

    e = calloc(1, sizeof(game_mm_engine_t));
    if (e == NULL) {
        return NULL;
    }

    e->capacity = capacity;
    e->keys = malloc((capacity + 1) * sizeof(game_mm_key_t));
    e->by_rating = malloc((capacity + 2) * sizeof(uint32_t));
    e->position = malloc((capacity + 1) * sizeof(uint32_t));
    e->up = malloc((capacity + 2) * sizeof(uint32_t));
    e->down = malloc((capacity + 2) * sizeof(uint32_t));
    e->taken = malloc(capacity + 1);

    if (e->keys == NULL || e->by_rating == NULL || e->position == NULL
        || e->up == NULL || e->down == NULL || e->taken == NULL)
    {
        game_mm_engine_destroy(e);
        return NULL;
    }

    return e;
}


void
game_mm_engine_destroy(game_mm_engine_t *e)
{
    if (e == NULL) {
        return;
    }

    free(e->keys);
    free(e->by_rating);
    free(e->position);
    free(e->up);
    free(e->down);
    free(e->taken);
    free(e);
}


long
game_mm_engine_run(game_mm_engine_t *e, const game_mm_rules_t *rules,
    const game_mm_ticket_t *tickets, size_t n, int64_t now_ms,
    game_mm_result_t *result)
{
    double            window;
    size_t            k;
    int64_t           waited;
    uint32_t          i, p, a, count, need;
    uint32_t          members[GAME_MM_MAX_MEMBERS];
    uint32_t          teams[GAME_MM_MAX_MEMBERS];
    double            imbalance, lo, hi, r;
    game_mm_match_t  *m;

    result->nmatches = 0;
    result->nmembers = 0;
    result->nexpired = 0;

    if (n > e->capacity || game_mm_rules_check(rules) != NULL) {
        return -1;
    }

    need = rules->teams * rules->team_size;
    e->n = n;

    /* rating order, positions 1..n; 0 and n + 1 are sentinels that are
     * always "alive" and stop every walk */
    for (k = 0; k < n; k++) {
        e->keys[k].key = tickets[k].rating;
        e->keys[k].index = (uint32_t) k;
    }
    qsort(e->keys, n, sizeof(game_mm_key_t), game_mm_key_cmp);

    for (p = 0; p <= n + 1; p++) {
        e->up[p] = p;
        e->down[p] = p;
    }

    for (k = 0; k < n; k++) {
        e->by_rating[k + 1] = e->keys[k].index;
        e->position[e->keys[k].index] = (uint32_t) k + 1;
        e->taken[k] = 0;
    }

    /* age order: the anchors */
    for (k = 0; k < n; k++) {
        e->keys[k].key = (double) tickets[k].enqueued_ms;
        e->keys[k].index = (uint32_t) k;
    }
    qsort(e->keys, n, sizeof(game_mm_key_t), game_mm_key_cmp);

    for (k = 0; k < n; k++) {
        a = e->keys[k].index;

        if (e->taken[a]) {
            continue;
        }

        waited = now_ms - tickets[a].enqueued_ms;

        /* a party larger than a team can never be placed: it expires at
         * once rather than waiting out max_wait */
        if (waited >= rules->max_wait_ms || tickets[a].size == 0
            || tickets[a].size > rules->team_size)
        {
            if (result->nexpired == result->max_expired) {
                break;
            }
            result->expired[result->nexpired++] = a;
            game_mm_take(e, a);
            continue;
        }

        if (result->nmatches == result->max_matches
            || result->nmembers + need > result->max_members)
        {
            break;
        }

        window = game_mm_window(rules, waited);

        if (!game_mm_gather(e, rules, tickets, a, window, members, &count)) {
            continue;
        }

        if (!game_mm_split(rules, tickets, members, count, teams,
                           &imbalance))
        {
            continue;
        }

        m = &result->matches[result->nmatches++];
        m->first = (uint32_t) result->nmembers;
        m->count = count;
        m->imbalance = imbalance;

        lo = hi = tickets[a].rating;

        for (i = 0; i < count; i++) {
            r = tickets[members[i]].rating;
            lo = r < lo ? r : lo;
            hi = r > hi ? r : hi;

            result->members[result->nmembers].ticket = members[i];
            result->members[result->nmembers].team = teams[i];
            result->nmembers++;

            game_mm_take(e, members[i]);
        }

        m->spread = hi - lo;
    }

    return (long) result->nmatches;
}


static int
game_mm_key_cmp(const void *a, const void *b)
{
    const game_mm_key_t  *x = a, *y = b;

    if (x->key != y->key) {
        return x->key < y->key ? -1 : 1;
    }

    /* equal keys keep the caller's order: passes are deterministic */
    return x->index < y->index ? -1 : (x->index > y->index);
}


static uint32_t
game_mm_find_up(game_mm_engine_t *e, uint32_t p)
{
    uint32_t  root, next;

    root = p;
    while (e->up[root] != root) {
        root = e->up[root];
    }

    while (e->up[p] != root) {
        next = e->up[p];
        e->up[p] = root;
        p = next;
    }

    return root;
}


static uint32_t
game_mm_find_down(game_mm_engine_t *e, uint32_t p)
{
    uint32_t  root, next;

    root = p;
    while (e->down[root] != root) {
        root = e->down[root];
    }

    while (e->down[p] != root) {
        next = e->down[p];
        e->down[p] = root;
        p = next;
    }

    return root;
}


static void
game_mm_take(game_mm_engine_t *e, uint32_t ticket)
{
    uint32_t  p = e->position[ticket];

    e->taken[ticket] = 1;
    e->up[p] = p + 1;
    e->down[p] = p - 1;
}


/*
 * Collect the anchor and its nearest neighbours in rating, all within the
 * anchor's window, until they make exactly one full match.  Parties that do
 * not fit in the room left are stepped over.
 */

static int
game_mm_gather(game_mm_engine_t *e, const game_mm_rules_t *rules,
    const game_mm_ticket_t *tickets, uint32_t anchor, double window,
    uint32_t *members, uint32_t *count)
{
    double     ra, dl, dr;
    uint32_t   lo, hi, p, c, total, need, considered;

    need = rules->teams * rules->team_size;
    ra = tickets[anchor].rating;
    p = e->position[anchor];

    members[0] = anchor;
    *count = 1;
    total = tickets[anchor].size;

    lo = game_mm_find_down(e, p - 1);
    hi = game_mm_find_up(e, p + 1);

    for (considered = 0;
         total < need && considered < GAME_MM_MAX_CONSIDER;
         considered++)
    {
        /* positions 0 and n + 1 are the sentinels: nothing beyond */
        dl = (lo >= 1) ? ra - tickets[e->by_rating[lo]].rating : INFINITY;
        dr = (hi <= e->n) ? tickets[e->by_rating[hi]].rating - ra : INFINITY;

        if (dl > window && dr > window) {
            return 0;
        }

        if (dl <= dr) {
            c = e->by_rating[lo];
            lo = game_mm_find_down(e, lo - 1);

        } else {
            c = e->by_rating[hi];
            hi = game_mm_find_up(e, hi + 1);
        }

        if (total + tickets[c].size > need) {
            continue;
        }

        members[(*count)++] = c;
        total += tickets[c].size;
    }

    return total == need;
}


/*
 * Split the members into teams of exactly team_size players, parties
 * whole, with the smallest difference between the teams' rating sums.
 * Depth-first over the members, largest parties first; an empty team is
 * tried only once per member since empty teams are interchangeable.
 */

static int
game_mm_split(const game_mm_rules_t *rules, const game_mm_ticket_t *tickets,
    const uint32_t *members, uint32_t count, uint32_t *teams,
    double *imbalance)
{
    uint32_t          i, j, t, order[GAME_MM_MAX_MEMBERS];
    game_mm_split_t   s;

    /* largest parties first: they constrain the split the most */
    for (i = 0; i < count; i++) {
        order[i] = members[i];
    }

    for (i = 1; i < count; i++) {
        t = order[i];
        for (j = i; j > 0 && tickets[order[j - 1]].size < tickets[t].size; j--)
        {
            order[j] = order[j - 1];
        }
        order[j] = t;
    }

    memset(&s, 0, sizeof(s));
    s.tickets = tickets;
    s.members = order;
    s.count = count;
    s.teams = rules->teams;
    s.team_size = rules->team_size;
    s.best_imbalance = INFINITY;

    game_mm_split_search(&s, 0);

    if (s.best_imbalance == INFINITY) {
        return 0;
    }

    /* report in the caller's member order */
    for (i = 0; i < count; i++) {
        for (j = 0; j < count; j++) {
            if (order[j] == members[i]) {
                teams[i] = s.best[j];
                break;
            }
        }
    }

    *imbalance = s.best_imbalance;

    return 1;
}


static void
game_mm_split_search(game_mm_split_t *s, uint32_t i)
{
    double              lo, hi, add;
    uint32_t            t, size, tried_empty;
    const game_mm_ticket_t  *tk;

    if (s->steps++ > GAME_MM_MAX_SEARCH) {
        return;
    }

    if (i == s->count) {
        lo = hi = s->sum[0];
        for (t = 1; t < s->teams; t++) {
            lo = s->sum[t] < lo ? s->sum[t] : lo;
            hi = s->sum[t] > hi ? s->sum[t] : hi;
        }

        if (hi - lo < s->best_imbalance) {
            s->best_imbalance = hi - lo;
            memcpy(s->best, s->assign, s->count * sizeof(uint32_t));
        }
        return;
    }

    tk = &s->tickets[s->members[i]];
    size = tk->size;
    add = tk->rating * size;
    tried_empty = 0;

    for (t = 0; t < s->teams; t++) {
        if (s->fill[t] + size > s->team_size) {
            continue;
        }

        if (s->fill[t] == 0) {
            if (tried_empty) {
                continue;
            }
            tried_empty = 1;
        }

        s->fill[t] += size;
        s->sum[t] += add;
        s->assign[i] = t;

        game_mm_split_search(s, i + 1);

        s->fill[t] -= size;
        s->sum[t] -= add;

        if (s->best_imbalance == 0) {
            return;
        }
    }
}
