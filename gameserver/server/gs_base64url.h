/*
 * gs_base64url.h: RFC 4648 section 5 without padding, as JWTs use it.
 */
#ifndef GS_BASE64URL_H
#define GS_BASE64URL_H

#include <stddef.h>

/* both return the output length, or (size_t) -1 if it does not fit or the
 * input is not unpadded base64url */
size_t gs_base64url_encode(char *out, size_t cap, const unsigned char *in,
    size_t n);
size_t gs_base64url_decode(unsigned char *out, size_t cap, const char *in,
    size_t n);

#endif /* GS_BASE64URL_H */
