/*
 * game_tel_rows.h: a batch's events as rows of the writer's typed staging
 * table, in COPY's text format.
 *
 * With a COPY pool (game_tel_writer_copy_pg) the writer stages one row
 * per event, columns already typed, instead of one jsonb per entry that
 * PostgreSQL would parse, compress, aggregate and take apart again:
 *
 *   event_id  ts  player_id  session_id  kind  payload  source  seq
 *
 * tel_write_rows() (sql/010) loads them as tel_write() (sql/008) loads
 * its jsonb, and every value here is what tel_write() computes from the
 * same entry:
 *
 *   event_id, session_id, kind, ts
 *             the event's members as ->> reads them: a string's text, a
 *             number or a structure's compact JSON, \N (NULL) for null or
 *             absent; PostgreSQL types them (an event_id that is no UUID
 *             is refused there, as tel_write() refuses it)
 *   player_id the client's (the token's, the entry's "p"), or for a
 *             server's batch each event's own player_id, as above
 *   payload   the event's payload as compact JSON, {} when absent
 *   source    "client" or "server:<id>"
 *   seq       (ms << 22) | (min(n, 4095) << 10) | place, where <ms>-<n>
 *             is the stream entry's id and place the event's index in
 *             the batch: the order the events were accepted in
 *
 * ts stays the producer's milliseconds: tel_write_rows() turns it into
 * occurred_at with tel_write()'s own expression.
 *
 * Text is escaped for COPY (backslash, tab, newline, carriage return), so
 * that no value can end a field, a row or the data ("\." and "\N" inside
 * a value arrive doubled-backslashed, as text).  Pure logic over jansson
 * values: the unit tests run it as it is (tests/unit/test_tel_rows.c).
 */

#ifndef _GAME_TEL_ROWS_H_INCLUDED_
#define _GAME_TEL_ROWS_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>
#include <jansson.h>


typedef struct game_tel_sink_s  game_tel_sink_t;

/*
 * Where rows are written: [pos, end) is free space.  "reserve" is called
 * when fewer than "n" bytes are free, and must leave at least "n" free,
 * moving pos and end to new memory if it likes (what was written before
 * stays where it is: the caller keeps the pieces); 0, or -1 when out of
 * memory.
 */
struct game_tel_sink_s {
    unsigned char              *pos;
    unsigned char              *end;
    int                       (*reserve)(game_tel_sink_t *sink, size_t n);
    void                       *data;
};


/*
 * The part of seq that a stream entry's id gives its events:
 * (ms << 22) | (min(n, 4095) << 10) for the id "<ms>-<n>".  0, or -1 when
 * "id" is not a stream entry id.
 */
int game_tel_seq_base(const char *id, size_t len, int64_t *base);

/*
 * One row for each element of "events" (an array), appended to "sink".
 * "player": the client's player id, or NULL for a server's batch, whose
 * events name their own.  Returns the number of rows, or -1 when the
 * sink is out of memory or "events" is not an array.
 */
long game_tel_rows(game_tel_sink_t *sink, json_t *events, int64_t seq_base,
    const char *source, size_t source_len, const char *player,
    size_t player_len);

/*
 * The same rows straight from a batch's text, {"events": [...]}, without
 * building it: the payload goes as the batch spells it (PostgreSQL reads
 * the same jsonb from it), a number member as its spelling.  The text is
 * checked as jsonb_in() checks it.  Returns the number of rows (0 when
 * there is no "events"), -1 when the sink is out of memory, -2 when the
 * text is not a JSON object or its "events" is not an array.
 */
long game_tel_rows_batch(game_tel_sink_t *sink, const char *text, size_t len,
    int64_t seq_base, const char *source, size_t source_len,
    const char *player, size_t player_len);

/* "len" bytes in COPY's text format into "dst", which has room for twice
 * as many; returns the end of what was written */
unsigned char *game_tel_copy_escape(unsigned char *dst,
    const unsigned char *src, size_t len);


#endif /* _GAME_TEL_ROWS_H_INCLUDED_ */
