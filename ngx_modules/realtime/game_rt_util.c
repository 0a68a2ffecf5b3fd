
/*
 * Pure helpers of the realtime module.  See game_rt_util.h.
 */

#include <string.h>
#include <strings.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "game_rt_util.h"


/* RFC 6455, 1.3 */
static const char  game_rt_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";


void
game_rt_accept(const unsigned char *key, size_t len, char *out)
{
    unsigned char  md[SHA_DIGEST_LENGTH], text[64 + sizeof(game_rt_guid)];

    /* keys are 24 characters (game_rt_key_valid()) */
    if (len > 64) {
        len = 64;
    }

    memcpy(text, key, len);
    memcpy(text + len, game_rt_guid, sizeof(game_rt_guid) - 1);
    (void) SHA1(text, len + sizeof(game_rt_guid) - 1, md);

    /* 20 bytes: 28 characters and a NUL */
    (void) EVP_EncodeBlock((unsigned char *) out, md, sizeof(md));
}


int
game_rt_key_valid(const unsigned char *key, size_t len)
{
    size_t          i;
    unsigned char   raw[24];

    /* 16 bytes in base64: 22 characters and "==" */
    if (len != 24 || key[22] != '=' || key[23] != '=') {
        return 0;
    }

    for (i = 0; i < 22; i++) {
        if (!((key[i] >= 'A' && key[i] <= 'Z') || (key[i] >= 'a'
               && key[i] <= 'z') || (key[i] >= '0' && key[i] <= '9')
              || key[i] == '+' || key[i] == '/'))
        {
            return 0;
        }
    }

    /* EVP_DecodeBlock counts the padding as zero bytes: 18 for 16 */
    return EVP_DecodeBlock(raw, key, 24) == 18;
}


int
game_rt_list_has(const unsigned char *value, size_t len, const char *token,
    int nocase)
{
    size_t                n, tlen;
    const unsigned char  *p, *end, *start, *last;

    tlen = strlen(token);
    p = value;
    end = value + len;

    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == ',')) {
            p++;
        }

        start = p;
        while (p < end && *p != ',') {
            p++;
        }

        last = p;
        while (last > start && (last[-1] == ' ' || last[-1] == '\t')) {
            last--;
        }

        n = last - start;

        if (n == tlen
            && (nocase ? strncasecmp((const char *) start, token, n)
                       : strncmp((const char *) start, token, n)) == 0)
        {
            return 1;
        }
    }

    return 0;
}


uint64_t
game_rt_frame_size(uint64_t payload, int masked)
{
    uint64_t  header;

    header = 2;

    if (payload >= 65536) {
        header += 8;

    } else if (payload >= 126) {
        header += 2;
    }

    return header + (masked ? 4 : 0) + payload;
}


int
game_rt_bucket_take(game_rt_bucket_t *b, uint64_t now_ms, unsigned rate,
    unsigned burst)
{
    uint64_t  tokens, full;

    full = (uint64_t) burst * 1000;

    if (!b->primed) {
        /* a new connection starts with a full bucket */
        b->primed = 1;
        b->tokens = (uint32_t) full;
        b->last_ms = now_ms;
    }

    tokens = b->tokens;

    if (now_ms > b->last_ms) {
        /* rate a second is rate thousandths a millisecond */
        tokens += (now_ms - b->last_ms) * rate;
        b->last_ms = now_ms;
    }

    if (tokens > full) {
        tokens = full;
    }

    if (tokens < 1000) {
        b->tokens = (uint32_t) tokens;
        return 0;
    }

    b->tokens = (uint32_t) (tokens - 1000);

    return 1;
}
