
/*
 * Request bodies, read as the endpoints read them: the core's body check
 * (game_json_body_parse: one object, no member twice), then each
 * endpoint's members through the same pure checks its handler calls
 * (ngx_modules/auth/game_auth_util.c, ngx_modules/core/game_util.c).
 *
 * Beyond memory errors, it checks what the handlers take for granted: a
 * member that passes is exactly as long as it says (no NUL inside, since
 * the handlers pass members on as C strings), and a refusal always comes
 * with a message for the client.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "game_util.h"
#include "game_auth_util.h"


#define FUZZ_CHECK(cond)  do { if (!(cond)) abort(); } while (0)

/* ngx_modules/auth/ngx_game_auth.h */
#define FUZZ_PASSWORD_MAX  1024


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


typedef struct {
    const char  *name;
    int          required;
    size_t       max;
} fuzz_member_t;


/* every endpoint's members, as its handler asks ngx_game_auth_field */
static const fuzz_member_t  fuzz_register[] = {           /* and link */
    { "username", 1, 64 }, { "email", 1, 254 },
    { "password", 1, FUZZ_PASSWORD_MAX }, { NULL, 0, 0 }
};
static const fuzz_member_t  fuzz_login[] = {
    { "login", 1, 254 }, { "password", 1, FUZZ_PASSWORD_MAX },
    { "otp", 0, 10 }, { NULL, 0, 0 }
};
static const fuzz_member_t  fuzz_device[] = {
    { "device_id", 1, 255 }, { NULL, 0, 0 }
};
static const fuzz_member_t  fuzz_refresh[] = {            /* and logout */
    { "refresh_token", 1, 128 }, { NULL, 0, 0 }
};
static const fuzz_member_t  fuzz_totp[] = {
    { "otp", 1, 10 }, { NULL, 0, 0 }
};
static const fuzz_member_t  fuzz_rename[] = {
    { "username", 1, 64 }, { NULL, 0, 0 }
};

static const fuzz_member_t  *fuzz_endpoints[] = {
    fuzz_register, fuzz_login, fuzz_device, fuzz_refresh, fuzz_totp,
    fuzz_rename
};


static void
fuzz_value(const char *name, const char *v, size_t len)
{
    size_t  chars;

    FUZZ_CHECK(strlen(v) == len);

    if (strcmp(name, "username") == 0) {
        if (game_auth_username_valid(v, len)) {
            FUZZ_CHECK(len >= 3 && len <= 20);
        }

    } else if (strcmp(name, "email") == 0 || strcmp(name, "login") == 0) {
        if (game_auth_email_valid(v, len)) {
            FUZZ_CHECK(memchr(v, '@', len) != NULL);
        }

    } else if (strcmp(name, "password") == 0) {
        chars = game_auth_utf8_chars(v, len);
        FUZZ_CHECK(chars >= 1 && chars <= len);

    } else if (strcmp(name, "device_id") == 0) {
        if (game_auth_device_id_valid(v, len)) {
            FUZZ_CHECK(len >= 16 && len <= 255);
        }
    }

    /* ids travel as UUIDs: a party, a match, a ticket */
    if (game_uuid_valid((const unsigned char *) v, len)) {
        FUZZ_CHECK(len == GAME_UUID_LEN);
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char                  msg[256];
    size_t                i, len;
    json_t               *body;
    const char           *v;
    const fuzz_member_t  *m;

    /* the same bytes as a Content-Type header: another client input */
    (void) game_media_type_is_json(data, size);

    msg[0] = '\0';
    body = game_json_body_parse(data, size, msg, sizeof(msg));

    if (body == NULL) {
        FUZZ_CHECK(msg[0] != '\0' && memchr(msg, '\0', sizeof(msg)) != NULL);
        return 0;
    }

    FUZZ_CHECK(json_is_object(body));

    for (i = 0; i < sizeof(fuzz_endpoints) / sizeof(fuzz_endpoints[0]); i++) {
        for (m = fuzz_endpoints[i]; m->name; m++) {
            msg[0] = '\0';

            if (game_auth_field(body, m->name, m->required, m->max, &v, &len,
                                msg, sizeof(msg))
                != 0)
            {
                FUZZ_CHECK(msg[0] != '\0');
                break;
            }

            if (v == NULL) {
                FUZZ_CHECK(!m->required);
                continue;
            }

            FUZZ_CHECK(len >= 1 && len <= m->max);
            fuzz_value(m->name, v, len);
        }
    }

    json_decref(body);

    return 0;
}
