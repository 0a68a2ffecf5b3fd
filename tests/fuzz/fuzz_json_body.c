
/*
 * Request bodies, read as the endpoints read them: the core's body check
 * (game_json_body_parse: one object, no member twice), then each
 * endpoint's members through the same pure checks its handler calls
 * (core/game_util.c, auth/game_auth_util.c, economy/game_econ_check.c,
 * matchmaking/game_mm_join.c under ngx_modules/).
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
#include "game_econ_check.h"
#include "game_mm_join.h"


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
        chars = game_utf8_chars(v, len);
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


/* a string the handlers pass on as a C string: all of it must be there */
static int
fuzz_c_string(json_t *v)
{
    return json_is_string(v)
           && strlen(json_string_value(v)) == json_string_length(v);
}


static void
fuzz_economy(json_t *body)
{
    json_t      *qty, *cur, *item;
    const char  *code, *message;

    code = NULL;
    message = NULL;

    if (game_econ_purchase_check(body, &code, &message) == 0) {
        item = json_object_get(body, "item_id");
        qty = json_object_get(body, "quantity");
        cur = json_object_get(body, "currency");

        FUZZ_CHECK(fuzz_c_string(item) && json_string_length(item) >= 1
                   && json_string_length(item) <= 64);
        FUZZ_CHECK(json_integer_value(qty) >= 1
                   && json_integer_value(qty) <= GAME_ECON_QTY_MAX);
        FUZZ_CHECK(fuzz_c_string(cur));

    } else {
        FUZZ_CHECK(code != NULL && message != NULL);
    }

    code = NULL;

    if (game_econ_grant_check(body, &code, &message) == 0) {
        FUZZ_CHECK(fuzz_c_string(json_object_get(body, "reason")));
        item = json_object_get(body, "item_id");
        FUZZ_CHECK(item == NULL || fuzz_c_string(item));

    } else {
        FUZZ_CHECK(code != NULL);
    }

    code = NULL;

    if (game_econ_item_check(body, &code, &message) == 0) {
        FUZZ_CHECK(fuzz_c_string(json_object_get(body, "item_id")));

    } else {
        FUZZ_CHECK(code != NULL);
    }
}


/* the regions a mode of the test configuration serves, and its limit */
static const game_mm_name_t  fuzz_served[] = {
    { "eu", 2 }, { "us-east", 7 }, { "asia", 4 }
};

#define FUZZ_MAX_LATENCY  150.0


static void
fuzz_matchmaking(json_t *body)
{
    int          k;
    size_t       i, n;
    double       lat, best;
    json_t      *regions, *item, *name;
    const char  *err;

    regions = json_object_get(body, "regions");
    n = sizeof(fuzz_served) / sizeof(fuzz_served[0]);

    err = NULL;
    k = game_mm_pick_region(regions, fuzz_served, n, FUZZ_MAX_LATENCY, &err);

    FUZZ_CHECK(k >= -1 && k < (int) n);

    if (k < 0) {
        FUZZ_CHECK(err != NULL);
        return;
    }

    /* the choice is served, within the limit, and none served is closer */
    best = -1;

    json_array_foreach(regions, i, item) {
        name = json_object_get(item, "region");
        lat = json_number_value(json_object_get(item, "latency_ms"));

        if (json_string_length(name) == fuzz_served[k].len
            && memcmp(json_string_value(name), fuzz_served[k].data,
                      fuzz_served[k].len) == 0
            && lat <= FUZZ_MAX_LATENCY && (best < 0 || lat < best))
        {
            best = lat;
        }
    }

    FUZZ_CHECK(best >= 0);

    json_array_foreach(regions, i, item) {
        lat = json_number_value(json_object_get(item, "latency_ms"));
        name = json_object_get(item, "region");

        for (n = 0; n < sizeof(fuzz_served) / sizeof(fuzz_served[0]); n++) {
            if (json_string_length(name) == fuzz_served[n].len
                && memcmp(json_string_value(name), fuzz_served[n].data,
                          fuzz_served[n].len) == 0)
            {
                FUZZ_CHECK(lat > FUZZ_MAX_LATENCY || lat >= best);
            }
        }
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

    fuzz_economy(body);
    fuzz_matchmaking(body);

    json_decref(body);

    return 0;
}
