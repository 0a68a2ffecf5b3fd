/*
 * game_tel_rules.c: the anti-cheat rules.  See game_tel_rules.h.
 */

#include <math.h>
#include <string.h>

#include "game_tel_rules.h"


static const char  *game_tel_rule_names[GAME_TEL_RULES] = {
    "speed", "teleport", "fire_rate", "hit_ratio", "server_flag"
};


static size_t game_tel_rules_position(const game_tel_rules_t *r,
    json_t *payload, game_tel_hit_t *hits, size_t max);
static size_t game_tel_rules_combat(const game_tel_rules_t *r,
    json_t *payload, game_tel_hit_t *hits, size_t max);
static size_t game_tel_rules_flag(const game_tel_rules_t *r, json_t *payload,
    game_tel_hit_t *hits, size_t max);
static const game_tel_mode_t *game_tel_mode_find(const game_tel_rules_t *r,
    const char *name);
static int game_tel_number(json_t *payload, const char *key, double *v);
static size_t game_tel_hit(const game_tel_rules_t *r, game_tel_rule_e rule,
    unsigned times, json_t *detail, game_tel_hit_t *hits, size_t n,
    size_t max);


const char *
game_tel_rule_name(game_tel_rule_e rule)
{
    return rule < GAME_TEL_RULES ? game_tel_rule_names[rule] : NULL;
}


game_tel_rule_e
game_tel_rule_find(const char *name, size_t len)
{
    int  i;

    for (i = 0; i < GAME_TEL_RULES; i++) {
        if (strlen(game_tel_rule_names[i]) == len
            && strncmp(game_tel_rule_names[i], name, len) == 0)
        {
            return (game_tel_rule_e) i;
        }
    }

    return GAME_TEL_RULES;
}


size_t
game_tel_rules_eval(const game_tel_rules_t *r, const char *type,
    json_t *payload, game_tel_hit_t *hits, size_t max)
{
    if (!json_is_object(payload) || max == 0) {
        return 0;
    }

    if (strcmp(type, "position") == 0) {
        return game_tel_rules_position(r, payload, hits, max);
    }

    if (strcmp(type, "combat") == 0) {
        return game_tel_rules_combat(r, payload, hits, max);
    }

    if (strcmp(type, "anticheat.flag") == 0) {
        return game_tel_rules_flag(r, payload, hits, max);
    }

    return 0;
}


/*
 * A client that asks for more speed than the mode gives is cheating even
 * though the server clamps it; a client whose claimed position is outside
 * the arena, or far from where the server has it, has teleported in its
 * own world.
 */

static size_t
game_tel_rules_position(const game_tel_rules_t *r, json_t *payload,
    game_tel_hit_t *hits, size_t max)
{
    double                  speed, x, y, cx, cy, d;
    size_t                  n;
    const game_tel_mode_t  *m;

    m = game_tel_mode_find(r, json_string_value(json_object_get(payload,
                                                                "mode")));
    if (m == NULL) {
        return 0;
    }

    n = 0;

    if (game_tel_number(payload, "speed", &speed) && speed > m->max_speed) {
        n = game_tel_hit(r, GAME_TEL_RULE_SPEED, 1,
                         json_pack("{s:f,s:f}", "speed", speed,
                                   "max_speed", m->max_speed),
                         hits, n, max);
    }

    if (!game_tel_number(payload, "claim_x", &cx)
        || !game_tel_number(payload, "claim_y", &cy))
    {
        return n;
    }

    if (cx < -m->margin || cy < -m->margin || cx > m->arena_w + m->margin
        || cy > m->arena_h + m->margin)
    {
        return game_tel_hit(r, GAME_TEL_RULE_TELEPORT, 1,
                            json_pack("{s:f,s:f,s:s}", "claim_x", cx,
                                      "claim_y", cy, "why", "out_of_arena"),
                            hits, n, max);
    }

    if (game_tel_number(payload, "x", &x) && game_tel_number(payload, "y", &y))
    {
        d = hypot(cx - x, cy - y);
        if (d > m->teleport) {
            n = game_tel_hit(r, GAME_TEL_RULE_TELEPORT, 1,
                             json_pack("{s:f,s:f,s:s}", "distance", d,
                                       "max_distance", m->teleport,
                                       "why", "far_from_server"),
                             hits, n, max);
        }
    }

    return n;
}


static size_t
game_tel_rules_combat(const game_tel_rules_t *r, json_t *payload,
    game_tel_hit_t *hits, size_t max)
{
    size_t                    i, n;
    double                    shots, window, ms, mh, rate;
    const char               *weapon;
    const game_tel_weapon_t  *w;

    n = 0;
    weapon = json_string_value(json_object_get(payload, "weapon"));

    w = NULL;
    for (i = 0; weapon && i < r->nweapons; i++) {
        if (strcmp(r->weapons[i].name, weapon) == 0) {
            w = &r->weapons[i];
        }
    }

    if (w != NULL && game_tel_number(payload, "shots", &shots)
        && game_tel_number(payload, "window_ms", &window) && window >= 1)
    {
        rate = shots * 1000.0 / window;
        if (rate > w->max_rate) {
            n = game_tel_hit(r, GAME_TEL_RULE_FIRE_RATE, 1,
                             json_pack("{s:f,s:f,s:s}", "rate", rate,
                                       "max_rate", w->max_rate,
                                       "weapon", weapon),
                             hits, n, max);
        }
    }

    if (game_tel_number(payload, "match_shots", &ms)
        && game_tel_number(payload, "match_hits", &mh)
        && (mh > ms
            || (ms >= r->min_shots && ms > 0 && mh / ms > r->max_hit_ratio)))
    {
        n = game_tel_hit(r, GAME_TEL_RULE_HIT_RATIO, 1,
                         json_pack("{s:f,s:f,s:f}", "shots", ms, "hits", mh,
                                   "max_ratio", r->max_hit_ratio),
                         hits, n, max);
    }

    return n;
}


/* a server's own verdict, one per violation, capped per event so that a
 * buggy server cannot flag a player with a single event */
static size_t
game_tel_rules_flag(const game_tel_rules_t *r, json_t *payload,
    game_tel_hit_t *hits, size_t max)
{
    double       count;
    unsigned     times;
    const char  *check;

    check = json_string_value(json_object_get(payload, "check"));

    if (check == NULL || !game_tel_number(payload, "count", &count)
        || count < 1)
    {
        return 0;
    }

    times = count > r->max_flag_count ? r->max_flag_count : (unsigned) count;

    return game_tel_hit(r, GAME_TEL_RULE_SERVER_FLAG, times,
                        json_pack("{s:s,s:f}", "check", check,
                                  "count", count),
                        hits, 0, max);
}


static const game_tel_mode_t *
game_tel_mode_find(const game_tel_rules_t *r, const char *name)
{
    size_t                  i;
    const game_tel_mode_t  *fallback;

    fallback = NULL;

    for (i = 0; i < r->nmodes; i++) {
        if (name && strcmp(r->modes[i].name, name) == 0) {
            return &r->modes[i];
        }
        if (strcmp(r->modes[i].name, "default") == 0) {
            fallback = &r->modes[i];
        }
    }

    return fallback;
}


static int
game_tel_number(json_t *payload, const char *key, double *v)
{
    json_t  *j;

    j = json_object_get(payload, key);
    if (!json_is_number(j)) {
        return 0;
    }

    *v = json_number_value(j);
    return isfinite(*v);
}


/* add a hit for a rule that is on; "detail" is taken (freed if unused) */
static size_t
game_tel_hit(const game_tel_rules_t *r, game_tel_rule_e rule, unsigned times,
    json_t *detail, game_tel_hit_t *hits, size_t n, size_t max)
{
    if (r->points[rule] == 0 || n >= max || times == 0) {
        json_decref(detail);
        return n;
    }

    hits[n].rule = rule;
    hits[n].points = r->points[rule] * times;
    hits[n].detail = detail;

    return n + 1;
}
