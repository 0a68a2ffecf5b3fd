
/*
 * Pure helpers of the auth module; see game_auth_util.h.
 */

#include <string.h>

#include "game_auth_util.h"


static const char  b64url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";


size_t
game_auth_b64url_encode(char *dst, const unsigned char *src, size_t len)
{
    char  *d = dst;

    while (len >= 3) {
        *d++ = b64url[src[0] >> 2];
        *d++ = b64url[((src[0] & 0x03) << 4) | (src[1] >> 4)];
        *d++ = b64url[((src[1] & 0x0f) << 2) | (src[2] >> 6)];
        *d++ = b64url[src[2] & 0x3f];
        src += 3;
        len -= 3;
    }

    if (len > 0) {
        *d++ = b64url[src[0] >> 2];

        if (len == 1) {
            *d++ = b64url[(src[0] & 0x03) << 4];

        } else {
            *d++ = b64url[((src[0] & 0x03) << 4) | (src[1] >> 4)];
            *d++ = b64url[(src[1] & 0x0f) << 2];
        }
    }

    /* JWS uses the unpadded form */
    return d - dst;
}


static int
game_auth_b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (c == '-') {
        return 62;
    }
    if (c == '_') {
        return 63;
    }
    return -1;
}


/*
 * Strict: no padding, no whitespace, and the unused low bits of the last
 * character must be zero, so that one byte string has exactly one text
 * form (a token cannot be "tampered" into a different but equal token).
 */

long
game_auth_b64url_decode(unsigned char *dst, size_t size, const char *src,
    size_t len)
{
    int       v;
    size_t    i, n, bits;
    uint32_t  acc;

    if (len % 4 == 1 || len * 6 / 8 > size) {
        return -1;
    }

    n = 0;
    acc = 0;
    bits = 0;

    for (i = 0; i < len; i++) {
        v = game_auth_b64url_value((unsigned char) src[i]);
        if (v < 0) {
            return -1;
        }

        acc = (acc << 6) | (uint32_t) v;
        bits += 6;

        if (bits >= 8) {
            bits -= 8;
            dst[n++] = (unsigned char) (acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }

    if (acc != 0) {
        return -1;
    }

    return (long) n;
}


/* one DER INTEGER from a 32-byte big-endian unsigned number */

static size_t
game_auth_der_int(unsigned char *p, const unsigned char *num)
{
    size_t  skip, len, pad;

    for (skip = 0; skip < 31 && num[skip] == 0; skip++) { /* void */ }

    len = 32 - skip;
    pad = (num[skip] & 0x80) ? 1 : 0;   /* keep it positive */

    p[0] = 0x02;
    p[1] = (unsigned char) (len + pad);
    if (pad) {
        p[2] = 0;
    }
    memcpy(p + 2 + pad, num + skip, len);

    return 2 + pad + len;
}


long
game_auth_sig_raw_to_der(unsigned char *der, const unsigned char *raw)
{
    size_t  n;

    n = 2;
    n += game_auth_der_int(der + n, raw);
    n += game_auth_der_int(der + n, raw + 32);

    der[0] = 0x30;
    der[1] = (unsigned char) (n - 2);   /* at most 70: short form */

    return (long) n;
}


static const unsigned char *
game_auth_der_int_to_raw(unsigned char *out, const unsigned char *p,
    const unsigned char *end)
{
    size_t  len;

    if (end - p < 2 || p[0] != 0x02 || p[1] == 0 || p[1] > 33
        || (size_t) (end - p - 2) < p[1])
    {
        return NULL;
    }

    len = p[1];
    p += 2;

    while (len > 32) {
        if (*p != 0) {
            return NULL;
        }
        p++;
        len--;
    }

    memset(out, 0, 32 - len);
    memcpy(out + 32 - len, p, len);

    return p + len;
}


int
game_auth_sig_der_to_raw(unsigned char *raw, const unsigned char *der,
    size_t len)
{
    const unsigned char  *p, *end;

    if (len < 8 || der[0] != 0x30 || der[1] != len - 2) {
        return -1;
    }

    p = der + 2;
    end = der + len;

    p = game_auth_der_int_to_raw(raw, p, end);
    if (p == NULL) {
        return -1;
    }

    p = game_auth_der_int_to_raw(raw + 32, p, end);
    if (p == NULL || p != end) {
        return -1;
    }

    return 0;
}


/*
 * A minimal reader for the claims of our own access tokens, run only after
 * the signature has been verified: a flat object whose values are strings
 * without escapes or integers.  Anything else is refused rather than
 * half-understood, and a repeated claim is refused too (which of the two
 * would a different JWT library believe?).  It allocates nothing: it sits
 * in front of every request.
 */

static const char *
game_auth_skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) {
        p++;
    }
    return p;
}


static const char *
game_auth_scan_string(const char *p, const char *end, const char **s,
    size_t *len)
{
    const char  *start;

    if (p >= end || *p != '"') {
        return NULL;
    }

    start = ++p;

    while (p < end && *p != '"') {
        if (*p == '\\' || (unsigned char) *p < 0x20) {
            return NULL;
        }
        p++;
    }

    if (p >= end) {
        return NULL;
    }

    *s = start;
    *len = p - start;

    return p + 1;
}


static const char *
game_auth_scan_int(const char *p, const char *end, int64_t *v)
{
    int       neg, digits;
    int64_t   n;

    neg = 0;
    if (p < end && *p == '-') {
        neg = 1;
        p++;
    }

    n = 0;
    digits = 0;

    while (p < end && *p >= '0' && *p <= '9') {
        if (++digits > 15) {
            return NULL;            /* no date needs more; no overflow */
        }
        n = n * 10 + (*p++ - '0');
    }

    if (digits == 0 || (p < end && (*p == '.' || *p == 'e' || *p == 'E'))) {
        return NULL;
    }

    *v = neg ? -n : n;

    return p;
}


#define game_auth_key_is(k, klen, lit)                                       \
    ((klen) == sizeof(lit) - 1 && memcmp(k, lit, sizeof(lit) - 1) == 0)


int
game_auth_claims_parse(const char *json, size_t len, game_auth_claims_t *c)
{
    size_t       klen, slen;
    int64_t      num;
    unsigned     seen;
    const char  *p, *end, *key, *s;

    memset(c, 0, sizeof(game_auth_claims_t));

    p = json;
    end = json + len;
    seen = 0;

    p = game_auth_skip_ws(p, end);
    if (p >= end || *p++ != '{') {
        return -1;
    }

    p = game_auth_skip_ws(p, end);
    if (p < end && *p == '}') {
        p++;
        goto done;
    }

    for ( ;; ) {
        p = game_auth_skip_ws(p, end);
        p = game_auth_scan_string(p, end, &key, &klen);
        if (p == NULL) {
            return -1;
        }

        p = game_auth_skip_ws(p, end);
        if (p >= end || *p++ != ':') {
            return -1;
        }

        p = game_auth_skip_ws(p, end);
        if (p >= end) {
            return -1;
        }

        s = NULL;
        slen = 0;
        num = 0;

        if (*p == '"') {
            p = game_auth_scan_string(p, end, &s, &slen);
        } else {
            p = game_auth_scan_int(p, end, &num);
        }

        if (p == NULL) {
            return -1;
        }

#define game_auth_claim(lit, bit, is_str)                                    \
        if (game_auth_key_is(key, klen, lit)) {                              \
            if ((seen & (bit)) || (is_str) != (s != NULL)) {                 \
                return -1;                                                   \
            }                                                                \
            seen |= (bit);                                                   \
        }

        game_auth_claim("iss", 0x01, 1)
        game_auth_claim("aud", 0x02, 1)
        game_auth_claim("sub", 0x04, 1)
        game_auth_claim("exp", 0x08, 0)
        game_auth_claim("nbf", 0x10, 0)
        game_auth_claim("iat", 0x20, 0)

#undef game_auth_claim

        if (game_auth_key_is(key, klen, "iss")) {
            c->iss = s; c->iss_len = slen;
        } else if (game_auth_key_is(key, klen, "aud")) {
            c->aud = s; c->aud_len = slen;
        } else if (game_auth_key_is(key, klen, "sub")) {
            c->sub = s; c->sub_len = slen;
        } else if (game_auth_key_is(key, klen, "exp")) {
            c->exp = num; c->has_exp = 1;
        } else if (game_auth_key_is(key, klen, "nbf")) {
            c->nbf = num; c->has_nbf = 1;
        } else if (game_auth_key_is(key, klen, "iat")) {
            c->iat = num; c->has_iat = 1;
        }

        p = game_auth_skip_ws(p, end);
        if (p >= end) {
            return -1;
        }

        if (*p == ',') {
            p++;
            continue;
        }

        if (*p++ == '}') {
            break;
        }

        return -1;
    }

done:

    p = game_auth_skip_ws(p, end);

    return (p == end) ? 0 : -1;
}


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


/* passwords are measured in characters, not bytes */

size_t
game_auth_utf8_chars(const char *s, size_t len)
{
    size_t  i, n;

    n = 0;
    for (i = 0; i < len; i++) {
        if (((unsigned char) s[i] & 0xc0) != 0x80) {
            n++;
        }
    }

    return n;
}


int
game_auth_uuid_valid(const char *s, size_t len)
{
    size_t  i;

    if (len != GAME_AUTH_UUID_LEN) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-') {
                return 0;
            }
            continue;
        }

        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
            return 0;
        }
    }

    return 1;
}


void
game_auth_hex(char *dst, const unsigned char *src, size_t len)
{
    static const char  hex[] = "0123456789abcdef";

    while (len--) {
        *dst++ = hex[*src >> 4];
        *dst++ = hex[*src++ & 0x0f];
    }
}


int
game_auth_unhex(unsigned char *dst, const char *src, size_t len)
{
    int     hi, lo;
    size_t  i;

    if (len % 2) {
        return -1;
    }

    for (i = 0; i < len; i += 2) {
#define game_auth_hexval(ch)                                                 \
        (((ch) >= '0' && (ch) <= '9') ? (ch) - '0'                           \
         : ((ch) >= 'a' && (ch) <= 'f') ? (ch) - 'a' + 10                    \
         : ((ch) >= 'A' && (ch) <= 'F') ? (ch) - 'A' + 10 : -1)

        hi = game_auth_hexval(src[i]);
        lo = game_auth_hexval(src[i + 1]);

#undef game_auth_hexval

        if (hi < 0 || lo < 0) {
            return -1;
        }

        dst[i / 2] = (unsigned char) ((hi << 4) | lo);
    }

    return 0;
}
