
/*
 * The leaderboards' pure logic, free of nginx types so that the unit tests
 * (tests/unit/test_lb_util.c) exercise it directly: how an entry becomes a
 * sorted-set member, names, sources, and the window around a player.
 *
 * A board's order is (score, subscore) in the board's direction, then the
 * earlier time the entry was reached, then the player id.  Redis keeps a
 * board as a sorted set whose members all have score 0, so that it orders
 * them by their bytes alone: each member spells its entry in fixed-width
 * lowercase hex, built so that byte order is board order.
 *
 *   member = S(score) S(subscore) T(reached ms) player id
 *            16        16          12           36 characters
 *
 * S maps a signed 64-bit number onto 16 hex digits that sort like the
 * number (the sign bit flipped), complemented on a descending board so
 * that bigger sorts first.  The time is not complemented: earlier first.
 * A member is its own keyset cursor: "the entries after this member" is a
 * lexicographic range, whatever moved meanwhile.
 */

#ifndef _GAME_LB_UTIL_H_INCLUDED_
#define _GAME_LB_UTIL_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


#define GAME_LB_MEMBER_LEN   80
#define GAME_LB_NAME_MAX     32


typedef struct {
    int64_t         score;
    int64_t         subscore;
    uint64_t        reached_ms;     /* below 2^48 */
    char            player[37];     /* a lowercase UUID, NUL-terminated */
} game_lb_entry_t;


/* writes GAME_LB_MEMBER_LEN characters (no NUL); -1 for a bad entry */
int game_lb_member(char *out, int desc, const game_lb_entry_t *e);

/* the entry a member spells; -1 when it is not a member */
int game_lb_member_parse(const char *m, size_t len, int desc,
    game_lb_entry_t *e);

/* 1 for a lowercase or uppercase UUID (8-4-4-4-12 hex digits) */
int game_lb_uuid_valid(const char *s, size_t len);

/* a board or mode name: 1 to 32 of [a-z0-9_], starting with a letter or
 * digit (they appear in Redis keys, where ':' separates) */
int game_lb_name_valid(const char *s, size_t len);

/* a region: 1 to 32 of [a-z0-9_-], starting with a letter or digit */
int game_lb_region_valid(const char *s, size_t len);

/* a season id: "all", "2026-11-29", "2026-w48", "2026-11", or the word
 * "previous" */
int game_lb_season_valid(const char *s, size_t len);


/* game_leaderboard source=KIND[:MODE] */
typedef enum {
    GAME_LB_SOURCE_RATING = 0,      /* needs a mode */
    GAME_LB_SOURCE_KILLS,
    GAME_LB_SOURCE_WINS,
    GAME_LB_SOURCE_MATCHES,
    GAME_LB_SOURCE_SCORE,
    GAME_LB_SOURCE_BAD
} game_lb_source_e;

extern const char *game_lb_source_names[];

/* the kind of a source and where its mode starts (mode_len 0: any mode);
 * GAME_LB_SOURCE_BAD for an unknown kind, a bad mode, or a rating without
 * one */
game_lb_source_e game_lb_source_parse(const char *s, size_t len,
    size_t *mode_off, size_t *mode_len);


/* "2026-11-29T10:00:00.123Z" from milliseconds; writes 24 characters */
size_t game_lb_time_iso(char *out, uint64_t ms);


#endif /* _GAME_LB_UTIL_H_INCLUDED_ */
