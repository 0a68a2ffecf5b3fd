
/*
 * Pure helpers of the auth module: no nginx, no I/O, no allocation.  They
 * check what clients send (names, addresses, passwords), so they live
 * apart where the unit tests (tests/unit/test_auth_util.c) can reach them.
 * Tokens are parsed by nginx, OpenSSL and jansson (ngx_game_jwt.c).
 */

#ifndef _GAME_AUTH_UTIL_H_INCLUDED_
#define _GAME_AUTH_UTIL_H_INCLUDED_


#include <stddef.h>


int game_auth_username_valid(const char *s, size_t len);
int game_auth_email_valid(const char *s, size_t len);


#endif /* _GAME_AUTH_UTIL_H_INCLUDED_ */
