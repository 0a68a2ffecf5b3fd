/*
 * gs_ticket.h: verify a join ticket, a JWT signed with ES256.
 *
 * The server holds public keys only, each under the key id (JWT header
 * "kid") the backend signs with.  The algorithm is pinned to ES256: the
 * header's "alg" must say so, it never chooses anything.  This file checks
 * the signature and the claims' shape and expiry; whether the ticket is for
 * this server, this match, and not used before is the server's policy
 * (gs_server.c), since only it knows its match.
 */
#ifndef GS_TICKET_H
#define GS_TICKET_H

#include <stddef.h>
#include <stdint.h>

#define GS_TICKET_KEYS_MAX  16
#define GS_TICKET_FIELD_MAX 64

typedef enum {
    GS_TICKET_OK, GS_TICKET_MALFORMED, GS_TICKET_BAD_ALG,
    GS_TICKET_UNKNOWN_KID, GS_TICKET_BAD_SIGNATURE, GS_TICKET_EXPIRED,
    GS_TICKET_NOT_YET, GS_TICKET_MISSING_CLAIM, GS_TICKET_HIGH_S
} gs_ticket_status_e;

typedef struct gs_ticket_keys_s gs_ticket_keys_t;

typedef struct {
    char     kid[GS_TICKET_FIELD_MAX + 1], sub[GS_TICKET_FIELD_MAX + 1];
    char     match_id[GS_TICKET_FIELD_MAX + 1];
    char     server_id[GS_TICKET_FIELD_MAX + 1];
    char     jti[GS_TICKET_FIELD_MAX + 1];      /* required */
    char     sig[96];       /* the signature as sent: the replay key */
    int64_t  exp;
} gs_ticket_t;

gs_ticket_keys_t *gs_ticket_keys_new(void);
void gs_ticket_keys_free(gs_ticket_keys_t *k);
/* "KID=path.pem"; 0, or -1 with err filled */
int gs_ticket_keys_load(gs_ticket_keys_t *k, const char *spec, char *err,
    size_t errlen);
int gs_ticket_keys_add_pem(gs_ticket_keys_t *k, const char *kid,
    const char *pem, size_t len, char *err, size_t errlen);
int gs_ticket_keys_count(const gs_ticket_keys_t *k);

gs_ticket_status_e gs_ticket_verify(const gs_ticket_keys_t *k,
    const char *jwt, size_t len, int64_t now, int leeway_s, gs_ticket_t *t);
const char *gs_ticket_status_name(gs_ticket_status_e s);

/*
 * ECDSA signatures are malleable: (r, s) and (r, n - s) both verify.  The
 * server accepts only the low-s spelling (s <= n/2, as Bitcoin's BIP 62
 * and libsecp256k1 do), so one ticket has one signature; signers call
 * this on their raw r || s to produce it.  0, or -1 on a bad signature.
 */
int gs_ticket_sig_low_s(unsigned char rs[64]);

#endif /* GS_TICKET_H */
