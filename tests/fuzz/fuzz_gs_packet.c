
/*
 * The game packets a server or a bot receives from the network
 * (gameserver/protocol.h): every decoder gets the bytes, and a packet
 * that decodes must encode back to the very same bytes, since each
 * message has exactly one spelling on the wire.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protocol.h"


#define FUZZ_CHECK(cond)  do { if (!(cond)) abort(); } while (0)


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t         n;
    uint8_t        out[GS_PACKET_MAX + GS_HELLO_HDR];
    gs_hello_t     hello;
    gs_input_t     input;
    gs_event_t     event;
    gs_welcome_t   welcome;
    size_t         m;
    uint8_t        out2[GS_PACKET_MAX + GS_HELLO_HDR];
    gs_snapshot_t  snap, base, again;
    uint32_t       base_tick;

    /* a server accepts only what ENet delivers: at most GS_PACKET_MAX */
    if (size > GS_PACKET_MAX) {
        return -1;
    }

    /* all decoders see every packet: a type byte must be enough to
     * refuse a message of another type */

    if (gs_proto_hello_decode(data, size, &hello) == 0) {
        FUZZ_CHECK(hello.ticket == (const char *) data + GS_HELLO_HDR);
        n = gs_proto_hello_encode(out, sizeof(out), hello.ticket,
                                  hello.ticket_len);
        /* the decoder keeps the version, the encoder writes ours */
        FUZZ_CHECK(n == size && memcmp(out + 2, data + 2, size - 2) == 0);
    }

    if (gs_proto_input_decode(data, size, &input) == 0) {
        n = gs_proto_input_encode(out, sizeof(out), &input);
        FUZZ_CHECK(n == size && memcmp(out, data, size) == 0);
    }

    if (gs_proto_welcome_decode(data, size, &welcome) == 0) {
        n = gs_proto_welcome_encode(out, sizeof(out), &welcome);
        FUZZ_CHECK(n == size && memcmp(out, data, size) == 0);
    }

    if (gs_proto_event_decode(data, size, &event) == 0) {
        n = gs_proto_event_encode(out, sizeof(out), &event);
        FUZZ_CHECK(n == size && memcmp(out, data, size) == 0);
    }

    /* protocol 2: a snapshot is whole (base_tick 0) or the difference
     * from a base the client holds; the fuzzer's base is an empty
     * snapshot of the tick the packet names, so the delta path decodes
     * too */
    if (gs_proto_snapshot_base(data, size, &base_tick) == 0) {
        memset(&base, 0, sizeof(base));
        base.tick = base_tick;

        if (gs_proto_snapshot_decode(data, size, base_tick ? &base : NULL,
                                     &snap)
            == 0)
        {
            /* a snapshot has more than one spelling (fields the decoder
             * reads but the encoder writes its own way), so the check is
             * that the encoder's spelling decodes and is stable */
            n = gs_proto_snapshot_encode(out, sizeof(out), &snap,
                                         base_tick ? &base : NULL);
            FUZZ_CHECK(n > 0
                       && gs_proto_snapshot_decode(out, n,
                                                   base_tick ? &base : NULL,
                                                   &again)
                          == 0);
            m = gs_proto_snapshot_encode(out2, sizeof(out2), &again,
                                         base_tick ? &base : NULL);
            FUZZ_CHECK(m == n && memcmp(out, out2, n) == 0);
        }
    }

    return 0;
}
