/*
 * gs_base64url.c: base64url without padding, on OpenSSL's base64.
 *
 * OpenSSL codes the standard alphabet with padding; the URL alphabet
 * differs in two characters, so they are swapped on the way in and out and
 * the padding is dropped or restored.
 *
 * Strict on decode: characters outside the URL alphabet, '=' padding, a
 * length of 1 mod 4, and non-zero bits left over in the last character are
 * all refused (the input must be what encoding its bytes gives back), so
 * one token has exactly one spelling: a ticket cannot be replayed under a
 * second spelling of the same signature.
 */

#include <stdint.h>
#include <string.h>

#include <openssl/evp.h>

#include "gs_base64url.h"


/* what the decoder takes at most: a ticket's parts are far smaller */
#define GS_B64_MAX  4096


size_t
gs_base64url_encode(char *out, size_t cap, const unsigned char *in, size_t n)
{
    unsigned char  tail[8];
    size_t         i, full, need;

    need = n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
    if (need + 1 > cap || n > INT32_MAX / 2) {
        return (size_t) -1;
    }

    /* whole groups straight into "out" (no padding there, and exactly the
     * room counted above); the last one or two bytes through a scratch
     * buffer, whose padding is dropped */
    full = n / 3 * 3;
    if (full) {
        EVP_EncodeBlock((unsigned char *) out, in, (int) full);
    }

    if (n > full) {
        EVP_EncodeBlock(tail, in + full, (int) (n - full));
        memcpy(out + full / 3 * 4, tail, n - full + 1);
    }

    for (i = 0; i < need; i++) {
        if (out[i] == '+') {
            out[i] = '-';
        } else if (out[i] == '/') {
            out[i] = '_';
        }
    }

    out[need] = '\0';
    return need;
}


size_t
gs_base64url_decode(unsigned char *out, size_t cap, const char *in, size_t n)
{
    char           std[GS_B64_MAX + 4], again[GS_B64_MAX + 4];
    unsigned char  tmp[GS_B64_MAX / 4 * 3 + 3];
    size_t         i, need, padded;
    int            len;

    if (n % 4 == 1 || n > GS_B64_MAX) {
        return (size_t) -1;
    }

    need = n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
    if (need > cap) {
        return (size_t) -1;
    }

    for (i = 0; i < n; i++) {
        if (in[i] == '-') {
            std[i] = '+';
        } else if (in[i] == '_') {
            std[i] = '/';
        } else if ((in[i] >= 'A' && in[i] <= 'Z')
                   || (in[i] >= 'a' && in[i] <= 'z')
                   || (in[i] >= '0' && in[i] <= '9'))
        {
            std[i] = in[i];
        } else {
            return (size_t) -1;
        }
    }

    for (padded = n; padded % 4; padded++) {
        std[padded] = '=';
    }

    /* OpenSSL counts the padding as zero bytes: "need" is the real length */
    len = EVP_DecodeBlock(tmp, (unsigned char *) std, (int) padded);
    if (len < 0 || (size_t) len < need) {
        return (size_t) -1;
    }

    memcpy(out, tmp, need);

    /* leftover bits must be zero: one canonical spelling per value */
    if (gs_base64url_encode(again, sizeof(again), out, need) != n
        || memcmp(again, in, n) != 0)
    {
        return (size_t) -1;
    }

    return need;
}
