/* test_gs_ticket.c: ES256 join tickets, signed here, verified by gs_ticket. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "gs_base64url.h"
#include "gs_ticket.h"


static EVP_PKEY  *key, *other;
static gs_ticket_keys_t  *keys;
#define NOW 1700000000L


static int
setup(void **state)
{
    BIO   *bio = BIO_new(BIO_s_mem());
    char  *pem, err[256];
    long   n;

    key = EVP_EC_gen("P-256");
    other = EVP_EC_gen("P-256");
    PEM_write_bio_PUBKEY(bio, key);
    n = BIO_get_mem_data(bio, &pem);
    keys = gs_ticket_keys_new();
    assert_int_equal(gs_ticket_keys_add_pem(keys, "k1", pem, (size_t) n, err,
                                            sizeof(err)), 0);
    BIO_free(bio);

    /* a private key is refused: the server must hold public keys only */
    bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL);
    n = BIO_get_mem_data(bio, &pem);
    assert_int_equal(gs_ticket_keys_add_pem(keys, "k2", pem, (size_t) n, err,
                                            sizeof(err)), -1);
    BIO_free(bio);
    return 0;
}


static int
teardown(void **state)
{
    gs_ticket_keys_free(keys);
    EVP_PKEY_free(key);
    EVP_PKEY_free(other);
    return 0;
}


/* header and claims JSON in, compact JWS out */
static void
sign(EVP_PKEY *k, const char *hdr, const char *claims, char *out)
{
    unsigned char         der[80], rs[64];
    const unsigned char  *p = der;
    size_t                derlen = sizeof(der), n;
    EVP_MD_CTX           *ctx = EVP_MD_CTX_new();
    ECDSA_SIG            *sig;
    const BIGNUM         *r, *s;

    n = gs_base64url_encode(out, 1024, (const unsigned char *) hdr,
                            strlen(hdr));
    out[n++] = '.';
    n += gs_base64url_encode(out + n, 1024, (const unsigned char *) claims,
                             strlen(claims));
    assert_int_equal(EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, k), 1);
    assert_int_equal(EVP_DigestSign(ctx, der, &derlen,
                                    (unsigned char *) out, n), 1);
    EVP_MD_CTX_free(ctx);
    sig = d2i_ECDSA_SIG(NULL, &p, (long) derlen);
    ECDSA_SIG_get0(sig, &r, &s);
    BN_bn2binpad(r, rs, 32);
    BN_bn2binpad(s, rs + 32, 32);
    ECDSA_SIG_free(sig);
    assert_int_equal(gs_ticket_sig_low_s(rs), 0);
    out[n++] = '.';
    gs_base64url_encode(out + n, 200, rs, 64);
}


#define HDR "{\"alg\":\"ES256\",\"typ\":\"JWT\",\"kid\":\"k1\"}"
#define CLAIMS(exp) "{\"sub\":\"p1\",\"match_id\":\"m1\"," \
                    "\"server_id\":\"s1\",\"jti\":\"j1\",\"exp\":" exp "}"

static gs_ticket_status_e
check(const char *jwt, gs_ticket_t *t)
{
    return gs_ticket_verify(keys, jwt, strlen(jwt), NOW, 5, t);
}


static void
test_valid_ticket(void **state)
{
    char         jwt[2048];
    gs_ticket_t  t;

    sign(key, HDR, CLAIMS("1700000060"), jwt);
    assert_int_equal(check(jwt, &t), GS_TICKET_OK);
    assert_string_equal(t.sub, "p1");
    assert_string_equal(t.match_id, "m1");
    assert_string_equal(t.server_id, "s1");
    assert_string_equal(t.jti, "j1");
    assert_true(strlen(t.sig) == 86);

    sign(key, HDR, CLAIMS("1699999997"), jwt);     /* within the leeway */
    assert_int_equal(check(jwt, &t), GS_TICKET_OK);
    sign(key, HDR, CLAIMS("1699999990"), jwt);
    assert_int_equal(check(jwt, &t), GS_TICKET_EXPIRED);
}


static void
test_forgeries(void **state)
{
    char         jwt[2048], *dot;
    gs_ticket_t  t;

    sign(other, HDR, CLAIMS("1700000060"), jwt);   /* wrong key */
    assert_int_equal(check(jwt, &t), GS_TICKET_BAD_SIGNATURE);

    sign(key, "{\"alg\":\"HS256\",\"kid\":\"k1\"}", CLAIMS("1700000060"), jwt);
    assert_int_equal(check(jwt, &t), GS_TICKET_BAD_ALG);
    sign(key, "{\"alg\":\"none\",\"kid\":\"k1\"}", CLAIMS("1700000060"), jwt);
    assert_int_equal(check(jwt, &t), GS_TICKET_BAD_ALG);
    sign(key, "{\"alg\":\"ES256\",\"kid\":\"k9\"}", CLAIMS("1700000060"), jwt);
    assert_int_equal(check(jwt, &t), GS_TICKET_UNKNOWN_KID);

    /* a claim changed after signing */
    sign(key, HDR, CLAIMS("1700000060"), jwt);
    dot = strchr(jwt, '.') + 5;
    *dot = *dot == 'A' ? 'B' : 'A';
    assert_int_equal(check(jwt, &t), GS_TICKET_BAD_SIGNATURE);

    /* a truncated signature, an extra part, garbage */
    sign(key, HDR, CLAIMS("1700000060"), jwt);
    jwt[strlen(jwt) - 2] = '\0';
    assert_int_equal(check(jwt, &t), GS_TICKET_BAD_SIGNATURE);
    assert_int_equal(check("a.b.c.d", &t), GS_TICKET_MALFORMED);
    assert_int_equal(check("nodots", &t), GS_TICKET_MALFORMED);
    assert_int_equal(check("..", &t), GS_TICKET_MALFORMED);

    /* no server id: refused even though signed */
    sign(key, HDR, "{\"sub\":\"p\",\"match_id\":\"m\",\"exp\":1700000060}",
         jwt);
    assert_int_equal(check(jwt, &t), GS_TICKET_MISSING_CLAIM);
}


/* (r, n - s) verifies as well as (r, s): only the low-s spelling is let
 * in, so a ticket has one signature to remember */
static void
test_high_s_and_jti(void **state)
{
    static const unsigned char  n[32] = {
        0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84,
        0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51
    };
    char           jwt[2048], *dot;
    unsigned char  rs[64], low[64];
    BIGNUM        *bn, *bs;
    gs_ticket_t    t;

    sign(key, HDR, CLAIMS("1700000060"), jwt);
    assert_int_equal(check(jwt, &t), GS_TICKET_OK);

    dot = strrchr(jwt, '.') + 1;
    assert_int_equal(gs_base64url_decode(rs, sizeof(rs), dot, strlen(dot)),
                     64);
    memcpy(low, rs, 64);
    assert_int_equal(gs_ticket_sig_low_s(low), 0);
    assert_memory_equal(low, rs, 64);       /* already low: unchanged */

    /* the other spelling: s' = n - s, high */
    bn = BN_bin2bn(n, 32, NULL);
    bs = BN_bin2bn(rs + 32, 32, NULL);
    assert_true(BN_sub(bs, bn, bs));
    assert_int_equal(BN_bn2binpad(bs, rs + 32, 32), 32);
    BN_free(bn);
    BN_free(bs);
    gs_base64url_encode(dot, 200, rs, 64);
    assert_int_equal(check(jwt, &t), GS_TICKET_HIGH_S);

    /* and a signer's normalisation gives back the low one */
    assert_int_equal(gs_ticket_sig_low_s(rs), 0);
    assert_memory_equal(rs, low, 64);

    /* a ticket without jti: signed, but refused */
    sign(key, HDR, "{\"sub\":\"p\",\"match_id\":\"m\",\"server_id\":"
         "\"s1\",\"exp\":1700000060}", jwt);
    assert_int_equal(check(jwt, &t), GS_TICKET_MISSING_CLAIM);
}


static void
test_base64url_round_trip(void **state)
{
    unsigned char  in[64], back[64];
    char           text[100];
    size_t         len, n, i;

    memset(in, 0, sizeof(in));

    for (len = 0; len <= sizeof(in); len++) {
        for (i = 0; i < len; i++) {
            in[i] = (unsigned char) (i * 61 + len * 7 + 0xf8);
        }
        n = gs_base64url_encode(text, sizeof(text), in, len);
        assert_int_equal(n, len / 3 * 4 + (len % 3 ? len % 3 + 1 : 0));
        assert_int_equal(strlen(text), n);
        assert_null(strpbrk(text, "+/="));
        assert_int_equal(gs_base64url_decode(back, sizeof(back), text, n),
                         len);
        assert_memory_equal(in, back, len);
    }

    /* the URL alphabet, and exactly the room it needs */
    in[0] = 0xfb;
    in[1] = 0xff;
    assert_int_equal(gs_base64url_encode(text, 4, in, 2), 3);
    assert_string_equal(text, "-_8");
    assert_int_equal(gs_base64url_encode(text, 3, in, 2), (size_t) -1);
}


static void
test_base64url_is_strict(void **state)
{
    unsigned char  out[16];

    assert_int_equal(gs_base64url_decode(out, sizeof(out), "QUI", 3), 2);
    assert_memory_equal(out, "AB", 2);
    assert_int_equal(gs_base64url_decode(out, sizeof(out), "QUJ", 3),
                     (size_t) -1);      /* non-zero leftover bits */
    assert_int_equal(gs_base64url_decode(out, sizeof(out), "QUI=", 4),
                     (size_t) -1);
    assert_int_equal(gs_base64url_decode(out, sizeof(out), "Q", 1),
                     (size_t) -1);
    assert_int_equal(gs_base64url_decode(out, sizeof(out), "QU+I", 4),
                     (size_t) -1);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_ticket),
        cmocka_unit_test(test_forgeries),
        cmocka_unit_test(test_high_s_and_jti),
        cmocka_unit_test(test_base64url_round_trip),
        cmocka_unit_test(test_base64url_is_strict),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
