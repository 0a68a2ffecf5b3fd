/*
 * gs_base64url.c: base64url without padding.
 *
 * Strict on decode: characters outside the URL alphabet, '=' padding, a
 * length of 1 mod 4, and non-zero bits left over in the last character are
 * all refused, so one token has exactly one spelling (a ticket cannot be
 * replayed under a second spelling of the same signature).
 */

#include "gs_base64url.h"


static const char gs_b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";


size_t
gs_base64url_encode(char *out, size_t cap, const unsigned char *in, size_t n)
{
    size_t    i, o = 0, need;
    unsigned  v;

    need = n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
    if (need + 1 > cap) {
        return (size_t) -1;
    }

    for (i = 0; i + 2 < n; i += 3) {
        v = (unsigned) in[i] << 16 | (unsigned) in[i + 1] << 8 | in[i + 2];
        out[o++] = gs_b64_alphabet[v >> 18];
        out[o++] = gs_b64_alphabet[(v >> 12) & 63];
        out[o++] = gs_b64_alphabet[(v >> 6) & 63];
        out[o++] = gs_b64_alphabet[v & 63];
    }
    if (n - i == 1) {
        v = (unsigned) in[i] << 16;
        out[o++] = gs_b64_alphabet[v >> 18];
        out[o++] = gs_b64_alphabet[(v >> 12) & 63];
    } else if (n - i == 2) {
        v = (unsigned) in[i] << 16 | (unsigned) in[i + 1] << 8;
        out[o++] = gs_b64_alphabet[v >> 18];
        out[o++] = gs_b64_alphabet[(v >> 12) & 63];
        out[o++] = gs_b64_alphabet[(v >> 6) & 63];
    }
    out[o] = '\0';
    return o;
}


static int
gs_b64_value(char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
}


size_t
gs_base64url_decode(unsigned char *out, size_t cap, const char *in, size_t n)
{
    size_t    i, o = 0, need;
    unsigned  v = 0;
    int       d, bits = 0;

    if (n % 4 == 1) {
        return (size_t) -1;
    }
    need = n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
    if (need > cap) {
        return (size_t) -1;
    }

    for (i = 0; i < n; i++) {
        d = gs_b64_value(in[i]);
        if (d < 0) {
            return (size_t) -1;
        }
        v = (v << 6 | (unsigned) d) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char) (v >> bits);
        }
    }

    /* leftover bits must be zero: one canonical spelling per value */
    if (bits > 0 && (v & ((1u << bits) - 1)) != 0) {
        return (size_t) -1;
    }

    return o;
}
