
/*
 * Pure helpers of the auth module: no nginx, no I/O, no allocation.  They
 * parse what clients send (tokens, names, addresses), so they live apart
 * where the unit tests (tests/unit/test_auth_util.c) can reach them.
 */

#ifndef _GAME_AUTH_UTIL_H_INCLUDED_
#define _GAME_AUTH_UTIL_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


#define GAME_AUTH_UUID_LEN      36
#define GAME_AUTH_P256_SIG_LEN  64      /* JWS ES256: r || s, 32 bytes each */
#define GAME_AUTH_DER_SIG_MAX   72


/* the claims the guard needs; strings point into the decoded payload */
typedef struct {
    const char   *iss;
    size_t        iss_len;
    const char   *aud;
    size_t        aud_len;
    const char   *sub;
    size_t        sub_len;
    int64_t       exp;
    int64_t       nbf;
    int64_t       iat;
    unsigned      has_exp:1;
    unsigned      has_nbf:1;
    unsigned      has_iat:1;
} game_auth_claims_t;


size_t game_auth_b64url_encode(char *dst, const unsigned char *src,
    size_t len);
/* returns the decoded length, or -1 on bad input or when dst is too small */
long game_auth_b64url_decode(unsigned char *dst, size_t size,
    const char *src, size_t len);

/* ECDSA signature formats: JWS raw r||s <-> DER (what OpenSSL speaks) */
long game_auth_sig_raw_to_der(unsigned char *der, const unsigned char *raw);
int game_auth_sig_der_to_raw(unsigned char *raw, const unsigned char *der,
    size_t len);

int game_auth_claims_parse(const char *json, size_t len,
    game_auth_claims_t *c);

int game_auth_username_valid(const char *s, size_t len);
int game_auth_email_valid(const char *s, size_t len);
size_t game_auth_utf8_chars(const char *s, size_t len);
int game_auth_uuid_valid(const char *s, size_t len);
void game_auth_hex(char *dst, const unsigned char *src, size_t len);
int game_auth_unhex(unsigned char *dst, const char *src, size_t len);


#endif /* _GAME_AUTH_UTIL_H_INCLUDED_ */
