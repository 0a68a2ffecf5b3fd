
/*
 * The telemetry writer's reading of a player's batch straight from its
 * text (game_tel_rows_batch, telemetry/game_tel_rows.c): the entry comes
 * from a Redis stream, which ingest fills but anyone with Redis access
 * can write to, and the rows go to PostgreSQL as COPY data.
 *
 * Beyond memory errors, it checks that the text is taken exactly when
 * jansson reads an object whose "events" is an array or absent (jansson's
 * own number limits aside: PostgreSQL decides those), as many rows as
 * jansson sees events (a NUL byte is never taken: PostgreSQL's text
 * cannot hold one), and COPY data that cannot be misread: each row
 * eight fields, no raw tab, newline or carriage return inside one, no
 * lone backslash.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "game_tel_rows.h"


#define FUZZ_CHECK(cond)  do { if (!(cond)) abort(); } while (0)


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


/* one buffer that grows: what was written is copied along */
typedef struct {
    game_tel_sink_t   sink;
    unsigned char    *start;
} fuzz_sink_t;


static int
fuzz_reserve(game_tel_sink_t *s, size_t n)
{
    size_t          used, size;
    unsigned char  *p;
    fuzz_sink_t    *f = (fuzz_sink_t *) s;

    used = f->start ? (size_t) (s->pos - f->start) : 0;
    size = used + n + 64;
    p = realloc(f->start, size);
    if (p == NULL) {
        return -1;
    }

    f->start = p;
    s->pos = p + used;
    s->end = p + size;

    return 0;
}


static void
fuzz_copy_data(const unsigned char *p, const unsigned char *end, long rows)
{
    long  tabs, n;

    tabs = 0;
    n = 0;

    for ( /* void */ ; p < end; p++) {
        FUZZ_CHECK(*p != '\r' && *p != '\0');

        if (*p == '\\') {
            /* what follows a backslash is one of ours */
            p++;
            FUZZ_CHECK(p < end && (*p == '\\' || *p == 't' || *p == 'n'
                                   || *p == 'r' || *p == 'N'));
            continue;
        }

        if (*p == '\t') {
            tabs++;

        } else if (*p == '\n') {
            FUZZ_CHECK(tabs == 7);
            tabs = 0;
            n++;
        }
    }

    FUZZ_CHECK(tabs == 0 && n == rows);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    long           n;
    json_t        *doc, *events;
    fuzz_sink_t    f;
    json_error_t   err;

    memset(&f, 0, sizeof(fuzz_sink_t));
    f.sink.reserve = fuzz_reserve;

    n = game_tel_rows_batch(&f.sink, (const char *) data, size, 7 << 22,
                            "client", 6, "p\tlayer", 7);
    FUZZ_CHECK(n >= -2);

    doc = json_loadb((const char *) data, size, 0, &err);
    events = json_object_get(doc, "events");

    if (memchr(data, '\0', size) != NULL) {
        /* text cannot hold a NUL (PostgreSQL refuses it), and jansson
         * drops one after a number */
        FUZZ_CHECK(n == -2);

    } else if (doc == NULL
        && (strstr(err.text, "overflow") || strstr(err.text, "too big")))
    {
        /* jansson's number limits: no verdict to compare with */

    } else if (!json_is_object(doc) || (events && !json_is_array(events))) {
        FUZZ_CHECK(n == -2);

    } else {
        FUZZ_CHECK(n == (long) json_array_size(events));
    }

    if (n > 0) {
        fuzz_copy_data(f.start, f.sink.pos, n);
    }

    json_decref(doc);
    free(f.start);

    return 0;
}
