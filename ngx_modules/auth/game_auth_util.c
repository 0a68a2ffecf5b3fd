
/*
 * Pure helpers of the auth module; see game_auth_util.h.
 */

#include <string.h>

#include "game_auth_util.h"


int
game_auth_username_valid(const char *s, size_t len)
{
    size_t  i;

    if (len < 3 || len > 20) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')
              || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
        {
            return 0;
        }
    }

    return 1;
}


/*
 * Syntax only, deliberately plain: one "@", a non-empty local part, a
 * domain of dot-separated labels with at least one dot, printable ASCII
 * without spaces.  Deliverability is the mail system's business.
 */

int
game_auth_email_valid(const char *s, size_t len)
{
    size_t       i, at, label;
    const char  *c;

    if (len < 5 || len > 254) {
        return 0;
    }

    at = len;
    for (i = 0; i < len; i++) {
        if ((unsigned char) s[i] <= 0x20 || (unsigned char) s[i] >= 0x7f
            || s[i] == '"' || s[i] == '\\' || s[i] == ',' || s[i] == ';'
            || s[i] == '<' || s[i] == '>' || s[i] == '(' || s[i] == ')')
        {
            return 0;
        }

        if (s[i] == '@') {
            if (at != len) {
                return 0;
            }
            at = i;
        }
    }

    if (at == 0 || at == len || at > 64 || memchr(s + at, '.', len - at) == NULL) {
        return 0;
    }

    label = 0;
    for (c = s + at + 1; c < s + len; c++) {
        if (*c == '.') {
            if (label == 0) {
                return 0;
            }
            label = 0;
            continue;
        }

        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z')
              || (*c >= '0' && *c <= '9') || *c == '-'))
        {
            return 0;
        }
        label++;
    }

    return label > 0;
}
