/*
 * Unit tests for the writer's COPY rows
 * (ngx_modules/telemetry/game_tel_rows.c): the values tel_write() would
 * compute, and text that COPY reads back as it was, whatever bytes the
 * events carry.
 */

#define _POSIX_C_SOURCE 200809L

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "game_tel_rows.h"


/* a sink in pieces of "chunk" bytes (0: exactly what is asked), joined
 * when asked for the text; "fail" refuses the next reserve */
typedef struct {
    game_tel_sink_t   sink;
    char             *pieces[4096];
    unsigned char    *ends[4096];
    size_t            n;
    size_t            chunk;
    int               fail;
    char              text[1 << 20];
} test_sink_t;


static int
test_reserve(game_tel_sink_t *s, size_t n)
{
    test_sink_t  *t = (test_sink_t *) s;
    size_t        size;

    if (t->fail) {
        return -1;
    }

    if (t->n) {
        t->ends[t->n - 1] = s->pos;
    }

    size = n > t->chunk ? n : t->chunk;
    assert_true(t->n < 4096);
    t->pieces[t->n] = malloc(size);
    assert_non_null(t->pieces[t->n]);
    s->pos = (unsigned char *) t->pieces[t->n];
    s->end = s->pos + size;
    t->n++;

    return 0;
}


static test_sink_t *
sink_new(size_t chunk)
{
    test_sink_t  *t;

    t = calloc(1, sizeof(test_sink_t));
    assert_non_null(t);
    t->chunk = chunk;
    t->sink.reserve = test_reserve;

    return t;
}


static const char *
sink_text(test_sink_t *t)
{
    size_t  i, len, off;

    off = 0;
    for (i = 0; i < t->n; i++) {
        len = (i == t->n - 1 ? t->sink.pos : t->ends[i])
              - (unsigned char *) t->pieces[i];
        assert_true(off + len < sizeof(t->text));
        memcpy(t->text + off, t->pieces[i], len);
        off += len;
    }

    t->text[off] = '\0';
    return t->text;
}


static void
sink_free(test_sink_t *t)
{
    while (t->n) {
        free(t->pieces[--t->n]);
    }
    free(t);
}


static json_t *
parse(const char *text)
{
    json_t        *v;
    json_error_t   err;

    v = json_loads(text, JSON_DECODE_ANY, &err);
    assert_non_null(v);
    return v;
}


/* the rows of a batch's events as text */
static char *
rows(const char *events, int64_t base, const char *source,
    const char *player, size_t chunk, long *n)
{
    char         *out;
    json_t       *ev;
    test_sink_t  *t;

    t = sink_new(chunk);
    ev = parse(events);
    *n = game_tel_rows(&t->sink, ev, base, source, strlen(source), player,
                       player ? strlen(player) : 0);
    json_decref(ev);
    out = strdup(*n >= 0 ? sink_text(t) : "");
    sink_free(t);

    return out;
}


/*
 * COPY's reading of text rows, as PostgreSQL does it: fields split at
 * tabs, rows at newlines, then \N is NULL and backslash sequences are
 * undone.  Returns the rows' count; fields[row * 8 + column], NULL for
 * NULL.
 */
static size_t
copy_read(const char *text, char **fields, size_t max)
{
    char        *f, *o;
    size_t       n, col;
    const char  *p, *start;

    n = 0;
    col = 0;
    start = text;

    for (p = text; *p; p++) {
        if (*p == '\\' && p[1] != '\0') {
            p++;
            continue;
        }

        if (*p != '\t' && *p != '\n') {
            continue;
        }

        assert_true(n * 8 + col < max);

        if (p - start == 2 && start[0] == '\\' && start[1] == 'N') {
            fields[n * 8 + col] = NULL;

        } else {
            f = malloc(p - start + 1);
            assert_non_null(f);
            for (o = f; start < p; start++) {
                if (*start != '\\') {
                    *o++ = *start;
                    continue;
                }
                start++;
                switch (*start) {
                case 't': *o++ = '\t'; break;
                case 'n': *o++ = '\n'; break;
                case 'r': *o++ = '\r'; break;
                default: *o++ = *start;
                }
            }
            *o = '\0';
            fields[n * 8 + col] = f;
        }

        start = p + 1;

        if (*p == '\t') {
            col++;

        } else {
            assert_int_equal(col, 7);
            col = 0;
            n++;
        }
    }

    /* every row ends with its newline */
    assert_ptr_equal(start, p);
    return n;
}


static void
copy_free(char **fields, size_t n)
{
    while (n--) {
        free(fields[n]);
    }
}


static void
test_seq_base_is_tel_writes(void **state)
{
    int64_t  b;

    assert_int_equal(game_tel_seq_base("1795986388199-0", 15, &b), 0);
    assert_true(b == (int64_t) (1795986388199ULL << 22));

    assert_int_equal(game_tel_seq_base("5-7", 3, &b), 0);
    assert_true(b == ((5LL << 22) | (7LL << 10)));

    /* least(n, 4095) */
    assert_int_equal(game_tel_seq_base("5-4095", 6, &b), 0);
    assert_true(b == ((5LL << 22) | (4095LL << 10)));
    assert_int_equal(game_tel_seq_base("5-99999", 7, &b), 0);
    assert_true(b == ((5LL << 22) | (4095LL << 10)));
}


static void
test_seq_base_refuses_what_is_no_entry_id(void **state)
{
    size_t       i;
    int64_t      b;
    const char  *bad[] = { "", "5", "-5", "5-", "a-1", "1-b", "1-2-3",
                           "1--2", " 1-2", "99999999999999999999-0",
                           "1-99999999999999999999" };

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(game_tel_seq_base(bad[i], strlen(bad[i]), &b), -1);
    }
}


static void
test_a_clients_batch(void **state)
{
    long   n;
    char  *text;

    text = rows("[{\"event_id\":\"0b5f7a40-7d39-4bd4-8d5c-2a4d6c1e9f00\","
                "\"type\":\"client.perf\",\"ts\":1795986388199,"
                "\"payload\":{\"fps\":60,\"ping_ms\":20}},"
                "{\"event_id\":\"1b5f7a40-7d39-4bd4-8d5c-2a4d6c1e9f01\","
                "\"type\":\"ui.action\",\"ts\":1795986388200,"
                "\"session_id\":\"2b5f7a40-7d39-4bd4-8d5c-2a4d6c1e9f02\","
                "\"player_id\":\"ignored: the token's player counts\","
                "\"payload\":{\"screen\":\"lobby\"}}]",
                (5LL << 22) | (7LL << 10), "client",
                "9b5f7a40-7d39-4bd4-8d5c-2a4d6c1e9f09", 0, &n);

    assert_int_equal(n, 2);
    assert_string_equal(text,
        "0b5f7a40-7d39-4bd4-8d5c-2a4d6c1e9f00\t1795986388199\t"
        "9b5f7a40-7d39-4bd4-8d5c-2a4d6c1e9f09\t\\N\tclient.perf\t"
        "{\"fps\":60,\"ping_ms\":20}\tclient\t20978688\n"
        "1b5f7a40-7d39-4bd4-8d5c-2a4d6c1e9f01\t1795986388200\t"
        "9b5f7a40-7d39-4bd4-8d5c-2a4d6c1e9f09\t"
        "2b5f7a40-7d39-4bd4-8d5c-2a4d6c1e9f02\tui.action\t"
        "{\"screen\":\"lobby\"}\tclient\t20978689\n");
    free(text);
}


static void
test_a_servers_batch_names_each_events_player(void **state)
{
    long   n;
    char  *text;

    text = rows("[{\"event_id\":\"0b5f7a40-7d39-4bd4-8d5c-2a4d6c1e9f00\","
                "\"type\":\"kill\",\"ts\":1,"
                "\"player_id\":\"3b5f7a40-7d39-4bd4-8d5c-2a4d6c1e9f03\","
                "\"payload\":{}},"
                "{\"event_id\":\"1b5f7a40-7d39-4bd4-8d5c-2a4d6c1e9f01\","
                "\"type\":\"match.start\",\"ts\":2,\"player_id\":null},"
                "{\"event_id\":\"2b5f7a40-7d39-4bd4-8d5c-2a4d6c1e9f02\","
                "\"type\":\"match.end\",\"ts\":3}]",
                0, "server:eu-1.a", NULL, 0, &n);

    assert_int_equal(n, 3);
    assert_string_equal(text,
        "0b5f7a40-7d39-4bd4-8d5c-2a4d6c1e9f00\t1\t"
        "3b5f7a40-7d39-4bd4-8d5c-2a4d6c1e9f03\t\\N\tkill\t{}\t"
        "server:eu-1.a\t0\n"
        "1b5f7a40-7d39-4bd4-8d5c-2a4d6c1e9f01\t2\t\\N\t\\N\tmatch.start\t"
        "{}\tserver:eu-1.a\t1\n"
        "2b5f7a40-7d39-4bd4-8d5c-2a4d6c1e9f02\t3\t\\N\t\\N\tmatch.end\t"
        "{}\tserver:eu-1.a\t2\n");
    free(text);
}


/* what ->> gives for members of other types: PostgreSQL then refuses
 * them where tel_write() refuses them (a number is no UUID) */
static void
test_members_read_as_arrow_text_reads_them(void **state)
{
    long   n;
    char  *text;

    text = rows("[{\"event_id\":5,\"type\":true,\"ts\":\"17\","
                "\"session_id\":{\"a\":[1,2.5]},\"payload\":null},"
                "\"not an object\",[1]]",
                0, "client", "p", 0, &n);

    assert_int_equal(n, 3);
    assert_string_equal(text,
        "5\t17\tp\t{\"a\":[1,2.5]}\ttrue\tnull\tclient\t0\n"
        "\\N\t\\N\tp\t\\N\t\\N\t{}\tclient\t1\n"
        "\\N\t\\N\tp\t\\N\t\\N\t{}\tclient\t2\n");
    free(text);
}


/* tabs, newlines, carriage returns, backslashes, \N and \. inside values,
 * UTF-8 and escapes: COPY reads back exactly what the event said */
static void
test_hostile_bytes_come_back_as_they_were(void **state)
{
    long         n;
    char        *text, *f[64];
    json_t      *sent, *got;
    size_t       i, chunk, rn;
    const char  *payload =
        "{\"s\":\"tab\\there\\nnew\\rline \\\\ back\\\\slash\","
        "\"n\":\"\\\\N\",\"dot\":\"\\\\.\",\"nul\":\"\\\\0\","
        "\"u\":\"\\u00e9\\u2028\\ud83d\\ude00 \xc3\xa9\","
        "\"ctl\":\"\\u0001\\u001f\",\"q\":\"\\\"\\/\","
        "\"tab\\tkey\":[\"\\t\",\"\\n\"]}";
    char         batch[2048];

    snprintf(batch, sizeof(batch),
             "[{\"event_id\":\"a\\tb\",\"type\":\"x\\\\N\",\"ts\":1,"
             "\"session_id\":\"\\\\.\",\"payload\":%s}]", payload);

    /* the same text whatever the pieces the sink gives */
    for (chunk = 0; chunk <= 4096; chunk = chunk ? chunk * 8 : 1) {
        text = rows(batch, 0, "client", "pl\\ay\ner", chunk, &n);
        assert_int_equal(n, 1);

        /* one row: no raw tab or newline but the separators */
        assert_int_equal(strchr(text, '\n') - text, strlen(text) - 1);
        assert_null(strchr(text, '\r'));

        rn = copy_read(text, f, 64);
        assert_int_equal(rn, 1);
        assert_string_equal(f[0], "a\tb");
        assert_string_equal(f[1], "1");
        assert_string_equal(f[2], "pl\\ay\ner");
        assert_string_equal(f[3], "\\.");
        assert_string_equal(f[4], "x\\N");
        assert_string_equal(f[6], "client");
        assert_string_equal(f[7], "0");

        sent = parse(payload);
        got = parse(f[5]);
        assert_true(json_equal(sent, got));
        json_decref(sent);
        json_decref(got);

        for (i = 0; i < 8; i++) {
            free(f[i]);
        }
        free(text);
    }
}


/* seq ORs the event's place in, as tel_write() does: past 1024 events
 * the place runs into the entry's own bits */
static void
test_seq_is_the_base_or_the_place(void **state)
{
    long     n;
    char    *text, *f[1100 * 8], *batch, *p;
    size_t   i, rn;
    int64_t  base;

    batch = malloc(1100 * 8 + 2);
    assert_non_null(batch);
    p = batch;
    *p++ = '[';
    for (i = 0; i < 1100; i++) {
        p += sprintf(p, "%s{}", i ? "," : "");
    }
    *p++ = ']';
    *p = '\0';

    base = (1LL << 22) | (1LL << 10);
    text = rows(batch, base, "client", "p", 4096, &n);
    assert_int_equal(n, 1100);

    rn = copy_read(text, f, 1100 * 8);
    assert_int_equal(rn, 1100);
    assert_int_equal(strtoll(f[0 * 8 + 7], NULL, 10), base);
    assert_int_equal(strtoll(f[1 * 8 + 7], NULL, 10), base | 1);
    assert_int_equal(strtoll(f[1023 * 8 + 7], NULL, 10), base | 1023);
    assert_int_equal(strtoll(f[1024 * 8 + 7], NULL, 10), base | 1024);
    assert_int_equal(strtoll(f[1025 * 8 + 7], NULL, 10), base | 1025);

    copy_free(f, 1100 * 8);
    free(text);
    free(batch);
}


static void
test_no_array_and_no_memory_are_refused(void **state)
{
    json_t       *ev;
    test_sink_t  *t;

    t = sink_new(0);

    ev = parse("{\"events\":[]}");
    assert_int_equal(game_tel_rows(&t->sink, ev, 0, "client", 6, "p", 1), -1);
    json_decref(ev);

    ev = parse("[]");
    assert_int_equal(game_tel_rows(&t->sink, ev, 0, "client", 6, "p", 1), 0);
    json_decref(ev);

    ev = parse("[{\"event_id\":\"x\",\"payload\":{\"a\":\"b\"}}]");
    t->fail = 1;
    assert_int_equal(game_tel_rows(&t->sink, ev, 0, "client", 6, "p", 1), -1);
    json_decref(ev);

    sink_free(t);
}


/* the rows of a batch's text (game_tel_rows_batch), or "" */
static char *
batch_rows(const char *text, size_t len, const char *player, size_t chunk,
    long *n)
{
    char         *out;
    test_sink_t  *t;

    t = sink_new(chunk);
    *n = game_tel_rows_batch(&t->sink, text, len, 0, "client", 6, player,
                             player ? strlen(player) : 0);
    out = strdup(*n > 0 ? sink_text(t) : "");
    sink_free(t);

    return out;
}


static int
same_number(const char *a, const char *b)
{
    char    *ea, *eb;
    double   x, y;

    x = strtod(a, &ea);
    y = strtod(b, &eb);

    return *a && *b && *ea == '\0' && *eb == '\0' && x == y;
}


/*
 * Both ways agree on a text: game_tel_rows_batch() says it is no batch
 * exactly when jansson cannot read an object whose "events" is an array
 * (or absent), and otherwise writes the rows game_tel_rows() writes from
 * jansson's batch, field for field, the payloads the same JSON.
 */
static void agree_exactly(const char *text, size_t len, const char *player);


/* on a copy of exactly "len" bytes: a read past them is a bug that the
 * sanitizers see */
static void
agree(const char *text, size_t len, const char *player)
{
    char  *copy;

    copy = malloc(len ? len : 1);
    assert_non_null(copy);
    memcpy(copy, text, len);
    agree_exactly(copy, len, player);
    free(copy);
}


static void
agree_exactly(const char *text, size_t len, const char *player)
{
    long           n1, n2;
    char          *r1, *r2, **f1, **f2;
    json_t        *doc, *events, *a, *b;
    size_t         i, m;
    test_sink_t   *t;
    json_error_t   err;

    doc = json_loadb(text, len, 0, &err);
    events = json_object_get(doc, "events");

    r1 = batch_rows(text, len, player, 1000, &n1);

    /* numbers past a double or an int64 are jansson's limits, not JSON's
     * nor jsonb's: PostgreSQL decides about them (a payload's) */
    if (doc == NULL
        && (strstr(err.text, "overflow") || strstr(err.text, "too big")))
    {
        free(r1);
        return;
    }

    if (!json_is_object(doc) || (events && !json_is_array(events))) {
        if (n1 != -2) {
            print_error("taken, jansson says %s: %.*s\n", err.text,
                        (int) len, text);
        }
        assert_int_equal(n1, -2);
        json_decref(doc);
        free(r1);
        return;
    }

    assert_true(n1 >= 0);

    t = sink_new(1000);
    n2 = events ? game_tel_rows(&t->sink, events, 0, "client", 6, player,
                                player ? strlen(player) : 0)
                : 0;
    r2 = strdup(n2 > 0 ? sink_text(t) : "");
    sink_free(t);
    json_decref(doc);

    assert_int_equal(n1, n2);

    f1 = calloc(8 * (n1 + 1), sizeof(char *));
    f2 = calloc(8 * (n1 + 1), sizeof(char *));
    assert_non_null(f1);
    assert_non_null(f2);
    assert_int_equal(copy_read(r1, f1, 8 * (n1 + 1)), n1);
    assert_int_equal(copy_read(r2, f2, 8 * (n1 + 1)), n1);

    for (i = 0; i < (size_t) n1 * 8; i++) {
        m = i % 8;

        if (f1[i] == NULL || f2[i] == NULL) {
            assert_ptr_equal(f1[i], f2[i]);
            continue;
        }

        if (m != 5) {
            /* a number member: its spelling here, jansson's there (->>
             * gives the spelling, as the text does) */
            if (strcmp(f1[i], f2[i]) != 0 && same_number(f1[i], f2[i])) {
                continue;
            }
            assert_string_equal(f1[i], f2[i]);
            continue;
        }

        a = json_loads(f1[i], JSON_DECODE_ANY, &err);
        b = json_loads(f2[i], JSON_DECODE_ANY, &err);
        assert_non_null(a);
        assert_non_null(b);
        assert_true(json_equal(a, b));
        json_decref(a);
        json_decref(b);
    }

    copy_free(f1, 8 * n1);
    copy_free(f2, 8 * n1);
    free(f1);
    free(f2);
    free(r1);
    free(r2);
}


static const char  *batches[] = {
    "{\"events\":[{\"event_id\":\"0b5f7a40-7d39-4bd4-8d5c-2a4d6c1e9f00\","
    "\"type\":\"client.perf\",\"ts\":1795986388199,"
    "\"payload\":{\"fps\":60.5,\"ping_ms\":20}},"
    "{\"event_id\":\"1b5f7a40-7d39-4bd4-8d5c-2a4d6c1e9f01\","
    "\"type\":\"ui.action\",\"ts\":1795986388200,"
    "\"session_id\":\"2b5f7a40-7d39-4bd4-8d5c-2a4d6c1e9f02\","
    "\"payload\":{\"screen\":\"lobby\"}}]}",

    /* spaces, tabs and newlines between the tokens */
    " {\n\t\"events\" :\r\n [ { \"event_id\" : \"x\" , \"ts\" : -17 ,\n"
    "  \"payload\" : { \"a\" : [ 1 , 2.5e-3 , true , false , null ] } } ]"
    " , \"n\" : 1 }\n",

    /* what COPY gives a meaning to, in members, keys and values */
    "{\"events\":[{\"event_id\":\"a\\tb\\nc\\rd\\\\e\",\"type\":\"\\\\N\","
    "\"session_id\":\"\\\\.\",\"ts\":\"17\",\"payload\":{\"k\\tey\\\\\":"
    "\"\\t\\\\N\\n\\\\.\\r\\n\\\\\\\\\",\"q\":\"\\\"\\/\\b\\f\"}}]}",

    /* escapes of every kind, raw UTF-8 */
    "{\"events\":[{\"event_id\":\"\\u00e9\\u2028\\ud83d\\ude00 \xc3\xa9"
    "\xe2\x98\x83\xf0\x9f\x98\x80\",\"type\":\"\\u0041\\u007f\\u0001\","
    "\"payload\":{\"s\":\"\\uD83D\\uDE00\\u00E9\"}}]}",

    /* members missing, null, of other types; elements no object */
    "{\"events\":[{\"event_id\":5,\"type\":true,\"ts\":1.5,"
    "\"session_id\":{\"a\":[1,{}]},\"payload\":null,\"player_id\":[]},"
    "\"no object\",[1],7,null,{},{\"payload\":\"text\"}]}",

    /* the last of two members, an escaped spelling of a name */
    "{\"events\":[{\"type\":\"a\",\"type\":\"b\",\"\\u0065vent_id\":\"e\","
    "\"payload\":{\"x\":1},\"payload\":{\"y\":2},\"event_i\\u0064\":\"f\"}],"
    "\"other\":{\"events\":[]}}",

    /* the last "events" is the batch */
    "{\"events\":[{\"type\":\"first\"}],\"events\":[{\"type\":\"last\"},"
    "{\"type\":\"too\"}]}",

    /* nothing to write */
    "{\"events\":[]}",
    "{}",
    "{\"n\":1,\"b\":{\"events\":[1]}}",

    /* a server's batch: each event its player */
    "{\"events\":[{\"player_id\":\"p1\",\"type\":\"kill\"},"
    "{\"player_id\":null},{\"player_id\":\"\\u0070\"}]}",
};


static void
test_a_batchs_text_gives_the_rows_jansson_gives(void **state)
{
    size_t  i;

    for (i = 0; i < sizeof(batches) / sizeof(batches[0]); i++) {
        agree(batches[i], strlen(batches[i]), "9b5f7a40-7d39-4bd4-8d5c");
        agree(batches[i], strlen(batches[i]), NULL);
    }
}


/* what jsonb_in (and jansson) refuse, the text is refused for: -2 */
static void
test_what_is_no_json_is_no_batch(void **state)
{
    long         n;
    char        *r, deep[3 * 2100 + 32], *p;
    size_t       i;
    const char  *bad[] = {
        "", " ", "[]", "\"x\"", "1", "null", "{", "{\"events\":[}",
        "{\"events\":[]", "{\"events\":[]}}", "{\"events\":[]} x",
        "{\"events\":{}}", "{\"events\":\"[]\"}", "{\"events\":null}",
        "{events:[]}", "{\"events\" []}", "{\"events\":[],}",
        "{\"events\":[1,]}", "{\"events\":[,1]}", "{\"a\":1 \"b\":2}",
        "{\"events\":[\"a\tb\"]}", "{\"events\":[\"a\nb\"]}",
        "{\"events\":[\"\\x\"]}", "{\"events\":[\"\\u00\"]}",
        "{\"events\":[\"\\u00g0\"]}", "{\"events\":[\"\\u0000\"]}",
        "{\"events\":[{\"payload\":{\"a\":\"\\u0000\"}}]}",
        "{\"events\":[\"\\ud800\"]}", "{\"events\":[\"\\udc00\"]}",
        "{\"events\":[\"\\ud800\\u0041\"]}", "{\"events\":[\"\\ud800x\"]}",
        "{\"events\":[\"\\udbff\\udbff\"]}",
        "{\"events\":[\"\xc0\x80\"]}", "{\"events\":[\"\xc3\"]}",
        "{\"events\":[\"\xed\xa0\x80\"]}", "{\"events\":[\"\xf4\x90\x80\x80\"]}",
        "{\"events\":[\"\xf5\x80\x80\x80\"]}", "{\"events\":[\"\x80\"]}",
        "{\"events\":[\"\xe0\x80\xaf\"]}", "{\"events\":[\"\xf0\x80\x80\xaf\"]}",
        "{\"events\":[01]}", "{\"events\":[1.]}", "{\"events\":[.5]}",
        "{\"events\":[-]}", "{\"events\":[1e]}", "{\"events\":[+1]}",
        "{\"events\":[1e+]}", "{\"events\":[tru]}", "{\"events\":[nul]}",
        "{\"events\":[True]}", "{\"events\":[\"unterminated]}",
        "{\"events\":[{\"a\"}]}", "{\"events\":[{\"a\":}]}",
        "{\"events\":[{1:2}]}", "\xef\xbb\xbf{\"events\":[]}",
    };

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        r = batch_rows(bad[i], strlen(bad[i]), "p", 0, &n);
        if (n != -2) {
            print_error("taken: %s\n", bad[i]);
        }
        assert_int_equal(n, -2);
        free(r);
        /* and jansson agrees */
        agree(bad[i], strlen(bad[i]), "p");
    }

    /* nesting deeper than 2048 */
    p = deep + sprintf(deep, "{\"events\":[{\"payload\":");
    for (i = 0; i < 2100; i++) {
        *p++ = '[';
    }
    for (i = 0; i < 2100; i++) {
        *p++ = ']';
    }
    p += sprintf(p, "}]}");
    r = batch_rows(deep, p - deep, "p", 0, &n);
    assert_int_equal(n, -2);
    free(r);
}


/* every byte of a batch changed in turn, and the batch cut short at
 * every length: both ways always agree */
static void
test_mangled_batches_are_read_as_jansson_reads_them(void **state)
{
    int          c;
    char        *text;
    size_t       i, k, len;
    const char  *seed;
    static const char  bytes[] = "{}[]\":,\\ u0e.-+1aE\t\n\x80\xc3\xe2";

    for (k = 0; k < sizeof(batches) / sizeof(batches[0]); k++) {
        seed = batches[k];
        len = strlen(seed);
        text = malloc(len + 1);
        assert_non_null(text);

        for (i = 0; i < len; i++) {
            for (c = 0; bytes[c]; c++) {
                memcpy(text, seed, len);
                text[i] = bytes[c];
                agree(text, len, (k & 1) ? NULL : "p");
            }
            agree(seed, i, "p");
        }

        free(text);
    }
}


static void
test_a_batch_out_of_memory(void **state)
{
    test_sink_t  *t;

    t = sink_new(0);
    t->fail = 1;
    assert_int_equal(game_tel_rows_batch(&t->sink, batches[0],
                                         strlen(batches[0]), 0, "client", 6,
                                         "p", 1), -1);
    sink_free(t);
}


static void
test_escape(void **state)
{
    unsigned char  out[64], *end;

    end = game_tel_copy_escape(out, (const unsigned char *) "a\\b\tc\nd\re\x01",
                               10);
    assert_int_equal(end - out, 14);
    assert_memory_equal(out, "a\\\\b\\tc\\nd\\re\x01", 14);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seq_base_is_tel_writes),
        cmocka_unit_test(test_seq_base_refuses_what_is_no_entry_id),
        cmocka_unit_test(test_a_clients_batch),
        cmocka_unit_test(test_a_servers_batch_names_each_events_player),
        cmocka_unit_test(test_members_read_as_arrow_text_reads_them),
        cmocka_unit_test(test_hostile_bytes_come_back_as_they_were),
        cmocka_unit_test(test_seq_is_the_base_or_the_place),
        cmocka_unit_test(test_no_array_and_no_memory_are_refused),
        cmocka_unit_test(test_a_batchs_text_gives_the_rows_jansson_gives),
        cmocka_unit_test(test_what_is_no_json_is_no_batch),
        cmocka_unit_test(test_mangled_batches_are_read_as_jansson_reads_them),
        cmocka_unit_test(test_a_batch_out_of_memory),
        cmocka_unit_test(test_escape),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
