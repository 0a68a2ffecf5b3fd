/*
 * game_tel_rules.h: the anti-cheat rules, over the facts game servers
 * report.
 *
 * A game server is the authority on what happened in its match; its
 * events say what each player asked for and did, sampled every second:
 *
 *   position        {mode, x, y, speed, claim_x?, claim_y?}: the speed the
 *                   player's inputs asked for (units/s), where the server
 *                   has the player and where the client claims to be
 *   combat          {weapon, shots, window_ms, match_shots, match_hits}:
 *                   trigger pulls in the window, and the match's totals
 *   anticheat.flag  {check, count}: violations the server itself counted
 *
 * The rules compare them with what the mode and the weapon allow (nginx's
 * configuration: game_tel_mode, game_tel_weapon) and give points
 * (game_tel_rule): a player's points add up in PostgreSQL to a suspicion
 * score that flags them for review past a threshold.  No rule bans.
 *
 *   speed        position.speed above the mode's max_speed
 *   teleport     the claimed position outside the arena (beyond a margin),
 *                or further than the mode's teleport distance from the
 *                server's position
 *   fire_rate    combat.shots per second above the weapon's max_rate
 *   hit_ratio    more hits than shots, or a match's hit ratio above
 *                max_ratio once it has min_shots shots
 *   server_flag  each violation a server reports, points times count
 *
 * Pure logic over jansson values: the unit tests run it as it is.
 */

#ifndef _GAME_TEL_RULES_H_INCLUDED_
#define _GAME_TEL_RULES_H_INCLUDED_


#include <stddef.h>
#include <jansson.h>


typedef enum {
    GAME_TEL_RULE_SPEED = 0,
    GAME_TEL_RULE_TELEPORT,
    GAME_TEL_RULE_FIRE_RATE,
    GAME_TEL_RULE_HIT_RATIO,
    GAME_TEL_RULE_SERVER_FLAG,
    GAME_TEL_RULES
} game_tel_rule_e;


#define GAME_TEL_NAME_MAX  64


/* what a mode allows; the mode named "default" stands for any other */
typedef struct {
    char                name[GAME_TEL_NAME_MAX + 1];
    double              max_speed;      /* units per second */
    double              arena_w;
    double              arena_h;
    double              margin;         /* outside the arena by this much */
    double              teleport;       /* claim vs the server's position */
} game_tel_mode_t;


typedef struct {
    char                name[GAME_TEL_NAME_MAX + 1];
    double              max_rate;       /* shots per second */
} game_tel_weapon_t;


typedef struct {
    const game_tel_mode_t    *modes;
    size_t                    nmodes;
    const game_tel_weapon_t  *weapons;
    size_t                    nweapons;

    unsigned                  points[GAME_TEL_RULES];   /* 0: rule off */
    double                    max_hit_ratio;
    unsigned                  min_shots;
    unsigned                  max_flag_count;   /* per event, server_flag */
} game_tel_rules_t;


typedef struct {
    game_tel_rule_e     rule;
    unsigned            points;
    json_t             *detail;         /* new reference: the caller's */
} game_tel_hit_t;


/* the rule's name (as stored in tel_evidence.rule), or NULL */
const char *game_tel_rule_name(game_tel_rule_e rule);

/* the rule named "name" (of "len" bytes), or GAME_TEL_RULES */
game_tel_rule_e game_tel_rule_find(const char *name, size_t len);

/*
 * The rules that fire on one event of type "type" with "payload", at most
 * "max" of them, into "hits"; returns how many.  Types the rules do not
 * read, and payloads without the fields a rule needs, fire nothing.
 */
size_t game_tel_rules_eval(const game_tel_rules_t *rules, const char *type,
    json_t *payload, game_tel_hit_t *hits, size_t max);


#endif /* _GAME_TEL_RULES_H_INCLUDED_ */
