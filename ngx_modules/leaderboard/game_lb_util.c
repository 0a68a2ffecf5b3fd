
/*
 * The leaderboards' pure logic: see game_lb_util.h.
 */

#include <string.h>
#include <time.h>

#include "game_lb_util.h"


#define GAME_LB_SIGN  0x8000000000000000ULL


const char  *game_lb_source_names[] = {
    "rating", "kills", "wins", "matches", "score", NULL
};


static const char  game_lb_hex[] = "0123456789abcdef";


static void
game_lb_hex_put(char *out, uint64_t v, int digits)
{
    int  i;

    for (i = digits - 1; i >= 0; i--) {
        out[i] = game_lb_hex[v & 0xf];
        v >>= 4;
    }
}


static int
game_lb_hex_get(const char *in, int digits, uint64_t *v)
{
    int       i;
    uint64_t  n;

    n = 0;

    for (i = 0; i < digits; i++) {
        n <<= 4;

        if (in[i] >= '0' && in[i] <= '9') {
            n |= in[i] - '0';

        } else if (in[i] >= 'a' && in[i] <= 'f') {
            n |= in[i] - 'a' + 10;

        } else {
            return -1;
        }
    }

    *v = n;
    return 0;
}


/* a signed number as an unsigned one that sorts alike; reversed when
 * the board is descending */
static uint64_t
game_lb_order(int64_t v, int desc)
{
    uint64_t  u;

    u = (uint64_t) v ^ GAME_LB_SIGN;

    return desc ? ~u : u;
}


static int64_t
game_lb_unorder(uint64_t u, int desc)
{
    if (desc) {
        u = ~u;
    }

    return (int64_t) (u ^ GAME_LB_SIGN);
}


int
game_lb_member(char *out, int desc, const game_lb_entry_t *e)
{
    size_t  i;

    if (e->reached_ms >= (1ULL << 48) || !game_lb_uuid_valid(e->player, 36))
    {
        return -1;
    }

    game_lb_hex_put(out, game_lb_order(e->score, desc), 16);
    game_lb_hex_put(out + 16, game_lb_order(e->subscore, desc), 16);
    game_lb_hex_put(out + 32, e->reached_ms, 12);

    /* ids are compared by their bytes: always lowercase */
    for (i = 0; i < 36; i++) {
        out[44 + i] = (e->player[i] >= 'A' && e->player[i] <= 'F')
                      ? e->player[i] + ('a' - 'A') : e->player[i];
    }

    return 0;
}


int
game_lb_member_parse(const char *m, size_t len, int desc, game_lb_entry_t *e)
{
    size_t    i;
    uint64_t  v;

    if (len != GAME_LB_MEMBER_LEN) {
        return -1;
    }

    if (game_lb_hex_get(m, 16, &v) != 0) {
        return -1;
    }
    e->score = game_lb_unorder(v, desc);

    if (game_lb_hex_get(m + 16, 16, &v) != 0) {
        return -1;
    }
    e->subscore = game_lb_unorder(v, desc);

    if (game_lb_hex_get(m + 32, 12, &e->reached_ms) != 0) {
        return -1;
    }

    for (i = 0; i < 36; i++) {
        if (m[44 + i] >= 'A' && m[44 + i] <= 'F') {
            return -1;      /* members are written in lowercase */
        }
    }

    if (!game_lb_uuid_valid(m + 44, 36)) {
        return -1;
    }

    memcpy(e->player, m + 44, 36);
    e->player[36] = '\0';

    return 0;
}


int
game_lb_uuid_valid(const char *s, size_t len)
{
    size_t  i;
    char    c;

    if (len != 36) {
        return 0;
    }

    for (i = 0; i < 36; i++) {
        c = s[i];

        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-') {
                return 0;
            }
            continue;
        }

        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')
              || (c >= 'A' && c <= 'F')))
        {
            return 0;
        }
    }

    return 1;
}


static int
game_lb_word_valid(const char *s, size_t len, const char *extra)
{
    size_t  i;
    char    c;

    if (len == 0 || len > GAME_LB_NAME_MAX) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        c = s[i];

        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
            continue;
        }

        if (i > 0 && c != '\0' && strchr(extra, c) != NULL) {
            continue;
        }

        return 0;
    }

    return 1;
}


int
game_lb_name_valid(const char *s, size_t len)
{
    return game_lb_word_valid(s, len, "_");
}


int
game_lb_region_valid(const char *s, size_t len)
{
    return game_lb_word_valid(s, len, "_-");
}


int
game_lb_season_valid(const char *s, size_t len)
{
    return game_lb_word_valid(s, len, "-");
}


game_lb_source_e
game_lb_source_parse(const char *s, size_t len, size_t *mode_off,
    size_t *mode_len)
{
    size_t             kind_len;
    const char        *colon;
    game_lb_source_e   k;

    colon = memchr(s, ':', len);
    kind_len = colon ? (size_t) (colon - s) : len;

    for (k = 0; game_lb_source_names[k]; k++) {
        if (strlen(game_lb_source_names[k]) == kind_len
            && memcmp(game_lb_source_names[k], s, kind_len) == 0)
        {
            break;
        }
    }

    if (game_lb_source_names[k] == NULL) {
        return GAME_LB_SOURCE_BAD;
    }

    *mode_off = 0;
    *mode_len = 0;

    if (colon) {
        *mode_off = kind_len + 1;
        *mode_len = len - kind_len - 1;

        if (!game_lb_name_valid(s + *mode_off, *mode_len)) {
            return GAME_LB_SOURCE_BAD;
        }

    } else if (k == GAME_LB_SOURCE_RATING) {
        return GAME_LB_SOURCE_BAD;      /* ratings are per mode */
    }

    return k;
}


size_t
game_lb_time_iso(char *out, uint64_t ms)
{
    char       buf[32];
    time_t     t;
    struct tm  tm;

    t = (time_t) (ms / 1000);
    gmtime_r(&t, &tm);

    if (strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm) != 19) {
        memcpy(buf, "1970-01-01T00:00:00", 19);
    }

    memcpy(out, buf, 19);
    out[19] = '.';
    out[20] = (char) ('0' + (ms % 1000) / 100);
    out[21] = (char) ('0' + (ms % 100) / 10);
    out[22] = (char) ('0' + ms % 10);
    out[23] = 'Z';

    return 24;
}
