
/*
 * Pure helpers of the auth module: no nginx, no I/O, no allocation.  They
 * check what clients send (names, addresses, passwords, body members), so
 * they live apart where the unit tests (tests/unit/test_auth_util.c) and
 * the fuzz harness (tests/fuzz/fuzz_json_body.c) can reach them.
 * Tokens are parsed by nginx, OpenSSL and jansson (ngx_game_jwt.c).
 */

#ifndef _GAME_AUTH_UTIL_H_INCLUDED_
#define _GAME_AUTH_UTIL_H_INCLUDED_


#include <stddef.h>
#include <jansson.h>


int game_auth_username_valid(const char *s, size_t len);
int game_auth_email_valid(const char *s, size_t len);

/* a device id is a guest's only credential: 16 to 255 of [A-Za-z0-9._:-] */
int game_auth_device_id_valid(const char *s, size_t len);

/*
 * A string member of a request body, 1 to "max" bytes: 0 with "value"
 * pointing into the body (NUL-terminated by jansson) and its length; 0
 * with value NULL when it is absent or null and not "required"; -1 with
 * the client's message in "msg" otherwise.
 */
int game_auth_field(json_t *body, const char *name, int required, size_t max,
    const char **value, size_t *len, char *msg, size_t size);


#endif /* _GAME_AUTH_UTIL_H_INCLUDED_ */
