/*
 * gs_ticket.c: ES256 JWT verification on OpenSSL, claims with jansson.
 *
 * Order of checks, cheapest and least trusting first: split into three
 * base64url parts, decode the header, insist on alg ES256 (RFC 8725: the
 * token never picks the algorithm), look the kid up among the loaded keys
 * (an unknown kid is refused, never fetched), then verify the signature
 * over "header.payload".  Only after the signature holds are the claims
 * read: before that they are an attacker's bytes.
 *
 * JWS puts an ECDSA signature as r || s, 32 bytes each for P-256; OpenSSL
 * verifies DER, so the pair is rebuilt as an ECDSA_SIG and re-encoded.
 * Only the low-s spelling is accepted (gs_ticket_sig_low_s), and a ticket
 * must carry a jti: the server remembers used tickets by both, so neither
 * a second spelling of a signature nor a re-signed copy gets in twice.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "gs_base64url.h"
#include "gs_ticket.h"


#define GS_TICKET_PART_MAX  1536

/* the order n of P-256's base point, and n / 2 (rounded down) */
static const unsigned char  gs_ticket_p256_n[32] = {
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84,
    0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51
};
static const unsigned char  gs_ticket_p256_half_n[32] = {
    0x7f, 0xff, 0xff, 0xff, 0x80, 0x00, 0x00, 0x00,
    0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xde, 0x73, 0x7d, 0x56, 0xd3, 0x8b, 0xcf, 0x42,
    0x79, 0xdc, 0xe5, 0x61, 0x7e, 0x31, 0x92, 0xa8
};

struct gs_ticket_keys_s {
    int        n;
    char       kid[GS_TICKET_KEYS_MAX][GS_TICKET_FIELD_MAX + 1];
    EVP_PKEY  *key[GS_TICKET_KEYS_MAX];
};


gs_ticket_keys_t *
gs_ticket_keys_new(void)
{
    return calloc(1, sizeof(gs_ticket_keys_t));
}


void
gs_ticket_keys_free(gs_ticket_keys_t *k)
{
    int  i;

    if (k == NULL) {
        return;
    }
    for (i = 0; i < k->n; i++) {
        EVP_PKEY_free(k->key[i]);
    }
    free(k);
}


int
gs_ticket_keys_count(const gs_ticket_keys_t *k)
{
    return k->n;
}


int
gs_ticket_keys_add_pem(gs_ticket_keys_t *k, const char *kid,
    const char *pem, size_t len, char *err, size_t errlen)
{
    BIO       *bio;
    EVP_PKEY  *key;
    char       group[32];
    size_t     glen;

    if (k->n == GS_TICKET_KEYS_MAX) {
        snprintf(err, errlen, "more than %d keys", GS_TICKET_KEYS_MAX);
        return -1;
    }
    if (kid[0] == '\0' || strlen(kid) > GS_TICKET_FIELD_MAX) {
        snprintf(err, errlen, "key id must be 1-%d characters",
                 GS_TICKET_FIELD_MAX);
        return -1;
    }

    bio = BIO_new_mem_buf(pem, (int) len);
    key = bio ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);

    if (key == NULL) {
        /* a private key here means an operator shipped a secret to every
         * game host: refuse loudly rather than derive the public half */
        snprintf(err, errlen, "kid \"%s\": not a PEM public key "
                 "(make one with: openssl ec -in key.pem -pubout)", kid);
        return -1;
    }

    if (!EVP_PKEY_is_a(key, "EC")
        || !EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME,
                                           group, sizeof(group), &glen)
        || strcmp(group, "prime256v1") != 0)
    {
        snprintf(err, errlen, "kid \"%s\": not an EC P-256 key (ES256)",
                 kid);
        EVP_PKEY_free(key);
        return -1;
    }

    strcpy(k->kid[k->n], kid);
    k->key[k->n++] = key;
    return 0;
}


int
gs_ticket_keys_load(gs_ticket_keys_t *k, const char *spec, char *err,
    size_t errlen)
{
    const char  *eq = strchr(spec, '=');
    char         kid[GS_TICKET_FIELD_MAX + 1], pem[8192];
    size_t       n;
    FILE        *f;
    int          rc;

    if (eq == NULL || eq == spec || (size_t) (eq - spec) > GS_TICKET_FIELD_MAX)
    {
        snprintf(err, errlen, "\"%s\": expected KID=path.pem", spec);
        return -1;
    }
    memcpy(kid, spec, (size_t) (eq - spec));
    kid[eq - spec] = '\0';

    f = fopen(eq + 1, "r");
    if (f == NULL) {
        snprintf(err, errlen, "cannot open \"%s\"", eq + 1);
        return -1;
    }
    n = fread(pem, 1, sizeof(pem), f);
    fclose(f);

    rc = gs_ticket_keys_add_pem(k, kid, pem, n, err, errlen);
    return rc;
}


static const char *
gs_ticket_str(json_t *obj, const char *name)
{
    json_t      *v = json_object_get(obj, name);
    const char  *s;

    if (!json_is_string(v)) {
        return NULL;
    }
    s = json_string_value(v);
    return strlen(s) >= 1 && strlen(s) <= GS_TICKET_FIELD_MAX
           && strlen(s) == json_string_length(v) ? s : NULL;
}


static json_t *
gs_ticket_json(const char *b64, size_t n)
{
    unsigned char  buf[GS_TICKET_PART_MAX];
    size_t         len;
    json_t        *j;

    len = gs_base64url_decode(buf, sizeof(buf), b64, n);
    if (len == (size_t) -1) {
        return NULL;
    }
    j = json_loadb((const char *) buf, len, JSON_REJECT_DUPLICATES, NULL);
    if (j != NULL && !json_is_object(j)) {
        json_decref(j);
        return NULL;
    }
    return j;
}


static int
gs_ticket_signature_ok(EVP_PKEY *key, const char *input, size_t inlen,
    const unsigned char rs[64])
{
    ECDSA_SIG      *sig;
    BIGNUM         *r, *s;
    unsigned char  *der = NULL;
    EVP_MD_CTX     *ctx;
    int             derlen, ok = 0;

    sig = ECDSA_SIG_new();
    r = BN_bin2bn(rs, 32, NULL);
    s = BN_bin2bn(rs + 32, 32, NULL);
    if (sig == NULL || r == NULL || s == NULL || !ECDSA_SIG_set0(sig, r, s)) {
        BN_free(r);
        BN_free(s);
        ECDSA_SIG_free(sig);
        return 0;
    }

    derlen = i2d_ECDSA_SIG(sig, &der);
    ECDSA_SIG_free(sig);
    if (derlen <= 0) {
        return 0;
    }

    ctx = EVP_MD_CTX_new();
    if (ctx != NULL
        && EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, key) == 1
        && EVP_DigestVerify(ctx, der, (size_t) derlen,
                            (const unsigned char *) input, inlen) == 1)
    {
        ok = 1;
    }
    EVP_MD_CTX_free(ctx);
    OPENSSL_free(der);
    return ok;
}


gs_ticket_status_e
gs_ticket_verify(const gs_ticket_keys_t *k, const char *jwt, size_t len,
    int64_t now, int leeway_s, gs_ticket_t *t)
{
    const char          *dot1, *dot2, *alg, *kid, *typ, *v;
    unsigned char        rs[GS_TICKET_PART_MAX];
    json_t              *hdr = NULL, *claims = NULL, *exp, *nbf;
    gs_ticket_status_e   rc;
    size_t               siglen;
    int                  i;

    memset(t, 0, sizeof(*t));

    dot1 = memchr(jwt, '.', len);
    dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t) (dot1 + 1 - jwt))
                : NULL;
    if (dot2 == NULL || memchr(dot2 + 1, '.', len - (size_t) (dot2 + 1 - jwt))
        || (size_t) (jwt + len - dot2 - 1) >= sizeof(t->sig))
    {
        return GS_TICKET_MALFORMED;
    }

    hdr = gs_ticket_json(jwt, (size_t) (dot1 - jwt));
    if (hdr == NULL) {
        return GS_TICKET_MALFORMED;
    }

    alg = gs_ticket_str(hdr, "alg");
    typ = gs_ticket_str(hdr, "typ");
    if (alg == NULL || strcmp(alg, "ES256") != 0
        || json_object_get(hdr, "crit") != NULL
        || (json_object_get(hdr, "typ") && (typ == NULL
                                            || strcmp(typ, "JWT") != 0)))
    {
        rc = GS_TICKET_BAD_ALG;
        goto done;
    }

    kid = gs_ticket_str(hdr, "kid");
    for (i = 0; kid != NULL && i < k->n; i++) {
        if (strcmp(k->kid[i], kid) == 0) {
            break;
        }
    }
    if (kid == NULL || i == k->n) {
        rc = GS_TICKET_UNKNOWN_KID;
        goto done;
    }
    strcpy(t->kid, kid);

    siglen = gs_base64url_decode(rs, sizeof(rs), dot2 + 1,
                                 (size_t) (jwt + len - dot2 - 1));
    if (siglen != 64) {
        rc = GS_TICKET_BAD_SIGNATURE;
        goto done;
    }
    /* big-endian: memcmp orders the numbers; cheap, so before verifying */
    if (memcmp(rs + 32, gs_ticket_p256_half_n, 32) > 0) {
        rc = GS_TICKET_HIGH_S;
        goto done;
    }
    if (!gs_ticket_signature_ok(k->key[i], jwt, (size_t) (dot2 - jwt), rs)) {
        rc = GS_TICKET_BAD_SIGNATURE;
        goto done;
    }
    memcpy(t->sig, dot2 + 1, (size_t) (jwt + len - dot2 - 1));

    /* signed by us: the claims are now worth reading */
    claims = gs_ticket_json(dot1 + 1, (size_t) (dot2 - dot1 - 1));
    if (claims == NULL) {
        rc = GS_TICKET_MALFORMED;
        goto done;
    }

    exp = json_object_get(claims, "exp");
    if (!json_is_integer(exp)) {
        rc = GS_TICKET_MISSING_CLAIM;
        goto done;
    }
    t->exp = json_integer_value(exp);
    if (now > t->exp + leeway_s) {
        rc = GS_TICKET_EXPIRED;
        goto done;
    }
    nbf = json_object_get(claims, "nbf");
    if (nbf != NULL
        && (!json_is_integer(nbf) || json_integer_value(nbf) > now + leeway_s))
    {
        rc = GS_TICKET_NOT_YET;
        goto done;
    }

    rc = GS_TICKET_MISSING_CLAIM;
    if ((v = gs_ticket_str(claims, "sub")) == NULL) goto done;
    strcpy(t->sub, v);
    if ((v = gs_ticket_str(claims, "match_id")) == NULL) goto done;
    strcpy(t->match_id, v);
    if ((v = gs_ticket_str(claims, "server_id")) == NULL) goto done;
    strcpy(t->server_id, v);
    if ((v = gs_ticket_str(claims, "jti")) == NULL) goto done;
    strcpy(t->jti, v);
    rc = GS_TICKET_OK;

done:
    json_decref(hdr);
    json_decref(claims);
    return rc;
}


const char *
gs_ticket_status_name(gs_ticket_status_e s)
{
    static const char *names[] = {
        "ok", "malformed", "bad_alg", "unknown_kid", "bad_signature",
        "expired", "not_yet_valid", "missing_claim", "high_s"
    };

    return (size_t) s < sizeof(names) / sizeof(names[0]) ? names[s]
                                                          : "unknown";
}


int
gs_ticket_sig_low_s(unsigned char rs[64])
{
    BIGNUM  *n, *s;
    int      ok;

    if (memcmp(rs + 32, gs_ticket_p256_half_n, 32) <= 0) {
        return 0;
    }
    n = BN_bin2bn(gs_ticket_p256_n, 32, NULL);
    s = BN_bin2bn(rs + 32, 32, NULL);
    ok = n != NULL && s != NULL && BN_sub(s, n, s)
         && BN_bn2binpad(s, rs + 32, 32) == 32;
    BN_free(n);
    BN_free(s);
    return ok ? 0 : -1;
}
