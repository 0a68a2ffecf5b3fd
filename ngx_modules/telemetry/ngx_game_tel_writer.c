
/*
 * The writer: telemetry streams into game_events, through the core's
 * event bus (group "writer", in every worker of every nginx).
 *
 * Two streams, one consumer each: <prefix>events, the players' batches
 * that ingest already checked, and <prefix>server, the game servers'
 * batches, which are checked here (a server writes to Redis directly)
 * and which the anti-cheat rules read.  An entry is a batch:
 *
 *   s  "client" | "server:<server id>"
 *   p  the player (client entries: the token's)
 *   n  how many events
 *   b  {"events": [...]}
 *
 * The handler only gathers the entries of a read; when the bus has handed
 * them all out (its "flush"), one statement loads them all:
 * tel_write($entries, $hits, $threshold), sql/008.  That statement drops
 * the ids it wrote before (so a batch delivered again, or retried by its
 * client, is written once), writes each read's events in the order they
 * were accepted, and adds the rules' evidence in the same transaction.
 * The entries are acknowledged, and deleted from their stream, only once
 * it committed; while PostgreSQL is away they wait, pending, and come
 * back.  If the statement is refused, the entries are tried one by one:
 * the one that cannot be written goes to the dead-letter stream alone.
 *
 * With game_tel_writer_copy_pg (a copy=on pool: COPY cannot run in the
 * pipeline mode of the others), the handler writes one row per event,
 * its columns already typed (game_tel_rows.h): a player's batch read
 * straight from its text, a server's from the tree parsed for the rules.
 * The statement is then a COPY of the rows into a temporary table and
 * tel_write_rows($hits, $threshold), sql/010, the same de-duplicating,
 * erasure-aware, in-order load, in the same transaction.  What is not
 * JSON is dead-lettered at once, without a round trip ("not a telemetry
 * batch"); what PostgreSQL refuses in a row (an event_id that is no UUID)
 * fails the load, and the read is written one by one as above.  Without
 * the pool, one statement carries the entries as one jsonb parameter.
 *
 * Why rows: an entry staged as jsonb (100 events) was parsed, TOASTed,
 * aggregated and taken apart again by PostgreSQL, which made COPY no
 * faster than the jsonb statement.  Per 10,000 events the writer now
 * costs PostgreSQL about 100 ms of CPU (190 before, with 010's cheaper
 * checks and dedupe) and nginx 7-8 ms (30 when jansson built each
 * batch).  What is left is the load itself: tel_seen's unique index,
 * game_events' heap, two indexes and checks, and their WAL.  The README's
 * bench table has the runs.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_game_tel.h"
#include "game_tel_rows.h"


#define NGX_GAME_TEL_HITS_MAX  4        /* rules firing on one event */
#define NGX_GAME_TEL_ROWS_CHUNK  16384  /* COPY rows: the least buffer */


struct ngx_game_tel_writer_s {
    ngx_game_tel_main_conf_t   *tmcf;
    ngx_str_t                  *stream;
    ngx_uint_t                  server;     /* the servers' stream */
    ngx_array_t                *gathered;   /* of this read, in its pool */
};


/* an entry, ready to be loaded */
typedef struct {
    ngx_game_bus_entry_t       *entry;
    ngx_str_t                   json;       /* {"i","s","p","b"} */
    ngx_chain_t                *rows;       /* COPY: its events' rows */
    ngx_str_t                   hits;       /* objects, comma-separated */
    ngx_uint_t                  events;
} ngx_game_tel_item_t;


/* COPY rows written into buffers of the entry's pool (game_tel_rows.h) */
typedef struct {
    game_tel_sink_t             sink;       /* first: the sink is this */
    ngx_pool_t                 *pool;
    size_t                      hint;       /* the first buffer's size */
    ngx_buf_t                  *buf;        /* the one being written */
    ngx_chain_t               **last;
} ngx_game_tel_rows_t;


/* a statement in flight and the items it carries */
typedef struct {
    ngx_game_tel_writer_t      *writer;
    ngx_game_tel_item_t        *items;
    ngx_uint_t                  n;
    ngx_uint_t                  events;
    unsigned                    alone:1;    /* one of a split batch */
} ngx_game_tel_load_t;


static void ngx_game_tel_writer_handler(ngx_game_bus_entry_t *e);
static ngx_int_t ngx_game_tel_writer_client(ngx_game_tel_writer_t *w,
    ngx_game_bus_entry_t *e, ngx_game_tel_item_t *item);
static ngx_int_t ngx_game_tel_writer_server(ngx_game_tel_writer_t *w,
    ngx_game_bus_entry_t *e, ngx_game_tel_item_t *item);
static ngx_int_t ngx_game_tel_writer_hits(ngx_game_tel_writer_t *w,
    ngx_game_bus_entry_t *e, json_t *event, json_t *hits);
static ngx_int_t ngx_game_tel_writer_client_rows(ngx_game_bus_entry_t *e,
    ngx_game_tel_item_t *item, ngx_str_t *player, ngx_str_t *b);
static ngx_int_t ngx_game_tel_writer_stage(ngx_game_bus_entry_t *e,
    ngx_game_tel_item_t *item, json_t *events, ngx_str_t *source,
    ngx_str_t *player, size_t hint);
static void ngx_game_tel_writer_sink(ngx_game_tel_rows_t *rows,
    ngx_pool_t *pool, ngx_chain_t **chain, size_t hint);
static int ngx_game_tel_writer_reserve(game_tel_sink_t *sink, size_t n);
static void ngx_game_tel_writer_flush(void *data);
static ngx_int_t ngx_game_tel_writer_load(ngx_game_tel_writer_t *w,
    ngx_pool_t *pool, ngx_game_tel_item_t *items, ngx_uint_t n,
    ngx_uint_t alone);
static void ngx_game_tel_writer_loaded(ngx_game_pg_query_t *q, ngx_int_t rc,
    PGresult *res);
static void ngx_game_tel_writer_end(ngx_game_tel_load_t *ld, ngx_int_t rc,
    const char *reason);
static ngx_uint_t ngx_game_tel_writer_retryable(PGresult *res);
static void ngx_game_tel_writer_count(ngx_game_tel_writer_t *w,
    ngx_pool_t *pool, const char *field, ngx_uint_t n);
static void ngx_game_tel_writer_counted(ngx_game_redis_cmd_t *cmd,
    ngx_int_t rc, redisReply *reply);
static ngx_chain_t *ngx_game_tel_writer_rows(ngx_pool_t *pool,
    ngx_game_tel_item_t *items, ngx_uint_t n);
static ngx_int_t ngx_game_tel_writer_join(ngx_pool_t *pool, ngx_str_t *out,
    ngx_game_tel_item_t *items, ngx_uint_t n, size_t field);


/*
 * COPY: one typed row per event (game_tel_rows.h) into tel_rows, which
 * lives as long as the connection and is emptied at every commit; "IF NOT
 * EXISTS" says so with a notice, which is not worth the log.  The columns
 * are tel_write_rows()'s (sql/010); NOT NULL where tel_write() would
 * refuse a NULL anyway, so that such an event fails here, early.
 */
static ngx_game_pg_copy_t  ngx_game_tel_copy = {
    "SET LOCAL client_min_messages = warning; "
    "CREATE TEMPORARY TABLE IF NOT EXISTS tel_rows ("
    "event_id uuid NOT NULL, ts bigint NOT NULL, player_id uuid, "
    "session_id uuid, kind text NOT NULL, payload jsonb NOT NULL, "
    "source text NOT NULL, seq bigint NOT NULL) ON COMMIT DELETE ROWS",
    "COPY tel_rows (event_id, ts, player_id, session_id, kind, payload, "
    "source, seq) FROM STDIN",
    NULL
};


static ngx_game_pg_stmt_t  ngx_game_tel_write_rows_stmt = {
    "game_tel_write_rows",
    "SELECT tel_write_rows($1::jsonb, $2::bigint)",
    2
};


static ngx_game_pg_stmt_t  ngx_game_tel_write_stmt = {
    "game_tel_write",
    "SELECT tel_write($1::jsonb, $2::jsonb, $3::bigint)",
    3
};


ngx_int_t
ngx_game_tel_writer_init(ngx_conf_t *cf, ngx_game_tel_main_conf_t *tmcf)
{
    ngx_uint_t              i;
    ngx_game_bus_conf_t     bus;
    ngx_game_tel_writer_t  *w;

    for (i = 0; i < 2; i++) {
        w = ngx_pcalloc(cf->pool, sizeof(ngx_game_tel_writer_t));
        if (w == NULL) {
            return NGX_ERROR;
        }

        w->tmcf = tmcf;
        w->server = i;
        w->stream = i ? &tmcf->server_stream : &tmcf->stream;
        tmcf->writers[i] = w;

        bus = tmcf->bus;
        bus.stream = *w->stream;
        ngx_str_set(&bus.group, "writer");
        bus.redis = tmcf->redis;
        bus.handler = ngx_game_tel_writer_handler;
        bus.flush = ngx_game_tel_writer_flush;
        bus.data = w;
        /* the stream's length is the backlog ingest refuses work by */
        bus.delete = 1;

        if (bus.batch == 0) {
            bus.batch = 100;
        }

        /* a PostgreSQL that is away for a while must not turn good
         * batches into dead letters: each retry is a delivery */
        if (bus.max_deliveries == 0) {
            bus.max_deliveries = 50;
        }

        if (ngx_game_bus_add(cf, &bus) == NULL) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* gather: each entry of a read becomes an item of the next statement */
static void
ngx_game_tel_writer_handler(ngx_game_bus_entry_t *e)
{
    ngx_int_t               rc;
    ngx_game_tel_item_t    *item;
    ngx_game_tel_writer_t  *w = e->data;

    if (w->gathered == NULL || w->gathered->pool != e->pool) {
        w->gathered = ngx_array_create(e->pool, 64,
                                       sizeof(ngx_game_tel_item_t));
        if (w->gathered == NULL) {
            ngx_game_bus_done(e, NGX_AGAIN, NULL);
            return;
        }
    }

    item = ngx_array_push(w->gathered);
    if (item == NULL) {
        ngx_game_bus_done(e, NGX_AGAIN, NULL);
        return;
    }

    ngx_memzero(item, sizeof(ngx_game_tel_item_t));
    item->entry = e;

    rc = w->server ? ngx_game_tel_writer_server(w, e, item)
                   : ngx_game_tel_writer_client(w, e, item);

    if (rc == NGX_OK) {
        return;
    }

    w->gathered->nelts--;

    switch (rc) {

    case NGX_DONE:
        /* nothing to write: all its events were refused */
        ngx_game_bus_done(e, NGX_OK, NULL);
        return;

    case NGX_DECLINED:
        ngx_game_bus_done(e, NGX_DECLINED, "not a telemetry batch");
        return;

    default:
        ngx_game_bus_done(e, NGX_AGAIN, NULL);
        return;
    }
}


/*
 * A player's batch, checked by ingest: it is loaded as it is.  What is
 * checked here is what PostgreSQL would otherwise trip over for the whole
 * read: an entry someone else put on the stream.
 */

static ngx_int_t
ngx_game_tel_writer_client(ngx_game_tel_writer_t *w, ngx_game_bus_entry_t *e,
    ngx_game_tel_item_t *item)
{
    u_char     *p;
    ngx_int_t   n;
    ngx_str_t  *s, *player, *count, *b;

    s = ngx_game_bus_field(e, "s");
    player = ngx_game_bus_field(e, "p");
    count = ngx_game_bus_field(e, "n");
    b = ngx_game_bus_field(e, "b");

    if (s == NULL || s->len != 6 || ngx_strncmp(s->data, "client", 6) != 0
        || player == NULL || !game_uuid_valid(player->data, player->len)
        || count == NULL || b == NULL || b->len < 2 || b->data[0] != '{')
    {
        return NGX_DECLINED;
    }

    n = ngx_atoi(count->data, count->len);
    if (n < 1) {
        return NGX_DECLINED;
    }

    if (w->tmcf->copy_pg) {
        return ngx_game_tel_writer_client_rows(e, item, player, b);
    }

    item->events = n;

    /* {"i":"<id>","s":"client","p":"<uuid>","b":<b>} */
    item->json.len = sizeof("{\"i\":\"\",\"s\":\"client\",\"p\":\"\",\"b\":}")
                     - 1 + e->id.len + player->len + b->len;
    item->json.data = ngx_pnalloc(e->pool, item->json.len);
    if (item->json.data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_sprintf(item->json.data, "{\"i\":\"%V\",\"s\":\"client\","
                    "\"p\":\"%V\",\"b\":%V}", &e->id, player, b);
    item->json.len = p - item->json.data;

    return NGX_OK;
}


/*
 * A game server's batch: every event is checked against its type (as a
 * server's), the ones that fail are dropped and counted, and the rules
 * look at the rest.  NGX_DONE: nothing left to write.
 */

static ngx_int_t
ngx_game_tel_writer_server(ngx_game_tel_writer_t *w, ngx_game_bus_entry_t *e,
    ngx_game_tel_item_t *item)
{
    char              *text;
    size_t             i, k;
    json_t            *doc, *events, *ev, *valid, *hits, *out;
    ngx_int_t          rc;
    ngx_str_t         *s, *b, sid;
    ngx_uint_t         dropped;
    json_error_t       err;
    game_tel_check_t   c;

    s = ngx_game_bus_field(e, "s");
    b = ngx_game_bus_field(e, "b");

    if (s == NULL || b == NULL || s->len < sizeof("server:")
        || s->len > sizeof("server:") - 1 + 128
        || ngx_strncmp(s->data, "server:", 7) != 0)
    {
        return NGX_DECLINED;
    }

    sid.data = s->data + 7;
    sid.len = s->len - 7;

    for (k = 0; k < sid.len; k++) {
        if (!((sid.data[k] >= 'a' && sid.data[k] <= 'z')
              || (sid.data[k] >= 'A' && sid.data[k] <= 'Z')
              || (sid.data[k] >= '0' && sid.data[k] <= '9')
              || sid.data[k] == '_' || sid.data[k] == '.'
              || sid.data[k] == ':' || sid.data[k] == '-'))
        {
            return NGX_DECLINED;
        }
    }

    doc = json_loadb((char *) b->data, b->len, JSON_REJECT_DUPLICATES, &err);
    events = json_object_get(doc, "events");

    if (!json_is_array(events)) {
        json_decref(doc);
        return NGX_DECLINED;
    }

    c.from = GAME_TEL_FROM_SERVER;
    c.now_ms = ngx_game_tel_now_ms();
    c.max_age_ms = w->tmcf->accept_age;
    c.max_skew_ms = w->tmcf->accept_skew;

    valid = json_array();
    hits = json_array();
    dropped = 0;

    json_array_foreach(events, i, ev) {
        if (game_tel_event_check(w->tmcf->types, ev, &c) != NULL) {
            dropped++;
            continue;
        }

        if (json_array_append(valid, ev) != 0
            || ngx_game_tel_writer_hits(w, e, ev, hits) != NGX_OK)
        {
            json_decref(valid);
            json_decref(hits);
            json_decref(doc);
            return NGX_ERROR;
        }
    }

    json_decref(doc);

    if (dropped) {
        ngx_log_error(NGX_LOG_WARN, e->log, 0,
                      "game tel: %ui events of server \"%V\" (entry %V) "
                      "dropped: they fail their types", dropped, &sid, &e->id);
        ngx_game_tel_writer_count(w, e->pool, "server_rejected", dropped);
    }

    item->events = json_array_size(valid);

    if (item->events == 0) {
        json_decref(valid);
        json_decref(hits);
        return NGX_DONE;
    }

    if (w->tmcf->copy_pg) {
        rc = ngx_game_tel_writer_stage(e, item, valid, s, NULL, b->len);
        json_decref(valid);

        if (rc != NGX_OK) {
            json_decref(hits);
            return rc;
        }

        goto hits;
    }

    out = json_pack("{s:s#,s:s#,s:{s:o}}", "i", (char *) e->id.data,
                    (int) e->id.len, "s", (char *) s->data, (int) s->len,
                    "b", "events", valid);
    text = out ? json_dumps(out, GAME_TEL_JSON_FLAGS) : NULL;
    json_decref(out);

    if (text == NULL) {
        json_decref(hits);
        return NGX_ERROR;
    }

    item->json.len = ngx_strlen(text);
    item->json.data = ngx_pnalloc(e->pool, item->json.len);
    if (item->json.data != NULL) {
        ngx_memcpy(item->json.data, text, item->json.len);
    }
    free(text);

    if (item->json.data == NULL) {
        json_decref(hits);
        return NGX_ERROR;
    }

hits:

    /* the hits as a list without its brackets, to join with others */
    text = json_array_size(hits) ? json_dumps(hits, GAME_TEL_JSON_FLAGS) : NULL;
    json_decref(hits);

    if (text != NULL) {
        item->hits.len = ngx_strlen(text) - 2;
        item->hits.data = ngx_pnalloc(e->pool, item->hits.len);
        if (item->hits.data != NULL) {
            ngx_memcpy(item->hits.data, text + 1, item->hits.len);
        }
        free(text);

        if (item->hits.data == NULL) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* what the rules find in one event: {p, e, r, pts, d, t} each */
static ngx_int_t
ngx_game_tel_writer_hits(ngx_game_tel_writer_t *w, ngx_game_bus_entry_t *e,
    json_t *event, json_t *hits)
{
    size_t           i, n;
    json_t          *player, *hit;
    ngx_int_t        rc;
    game_tel_hit_t   found[NGX_GAME_TEL_HITS_MAX];

    player = json_object_get(event, "player_id");
    if (!json_is_string(player)) {
        return NGX_OK;
    }

    n = game_tel_rules_eval(&w->tmcf->rules,
                            json_string_value(json_object_get(event, "type")),
                            json_object_get(event, "payload"), found,
                            NGX_GAME_TEL_HITS_MAX);

    rc = NGX_OK;

    for (i = 0; i < n; i++) {
        hit = json_pack("{s:O,s:O,s:s,s:I,s:o,s:O}",
                        "p", player,
                        "e", json_object_get(event, "event_id"),
                        "r", game_tel_rule_name(found[i].rule),
                        "pts", (json_int_t) found[i].points,
                        "d", found[i].detail ? found[i].detail : json_object(),
                        "t", json_object_get(event, "ts"));

        if (hit == NULL || json_array_append_new(hits, hit) != 0) {
            rc = NGX_ERROR;
        }
    }

    return rc;
}


/*
 * COPY: a player's batch as rows, one per event, read straight from its
 * text (game_tel_rows_batch(): building the batch with jansson was most
 * of what an event cost nginx).  What is not JSON as jsonb reads it is
 * no telemetry batch, and goes to the dead letters without a round trip.
 * Members are not checked: what tel_write() refuses, PostgreSQL refuses
 * here too (an event_id that is no UUID, a kind of another format), and
 * the read is written one by one as before.
 */

static ngx_int_t
ngx_game_tel_writer_client_rows(ngx_game_bus_entry_t *e,
    ngx_game_tel_item_t *item, ngx_str_t *player, ngx_str_t *b)
{
    long                  n;
    int64_t               base;
    ngx_game_tel_rows_t   rows;

    if (game_tel_seq_base((char *) e->id.data, e->id.len, &base) != 0) {
        return NGX_DECLINED;
    }

    ngx_game_tel_writer_sink(&rows, e->pool, &item->rows, b->len);

    n = game_tel_rows_batch(&rows.sink, (char *) b->data, b->len, base,
                            "client", sizeof("client") - 1,
                            (char *) player->data, player->len);

    if (rows.buf) {
        rows.buf->last = rows.sink.pos;
    }

    switch (n) {

    case -2:
        return NGX_DECLINED;

    case -1:
        return NGX_ERROR;

    case 0:
        /* no events: tel_write() finds none either */
        return NGX_DONE;

    default:
        item->events = n;
        return NGX_OK;
    }
}


/* the rows of one entry's events, in buffers of its pool */
static ngx_int_t
ngx_game_tel_writer_stage(ngx_game_bus_entry_t *e, ngx_game_tel_item_t *item,
    json_t *events, ngx_str_t *source, ngx_str_t *player, size_t hint)
{
    long                  n;
    int64_t               base;
    ngx_game_tel_rows_t   rows;

    if (game_tel_seq_base((char *) e->id.data, e->id.len, &base) != 0) {
        return NGX_DECLINED;
    }

    ngx_game_tel_writer_sink(&rows, e->pool, &item->rows, hint);

    n = game_tel_rows(&rows.sink, events, base, (char *) source->data,
                      source->len, player ? (char *) player->data : NULL,
                      player ? player->len : 0);

    if (rows.buf) {
        rows.buf->last = rows.sink.pos;
    }

    if (n < 0) {
        return NGX_ERROR;
    }

    item->events = n;

    return NGX_OK;
}


/* a sink into a chain of buffers of "pool"; "hint": the batch's length */
static void
ngx_game_tel_writer_sink(ngx_game_tel_rows_t *rows, ngx_pool_t *pool,
    ngx_chain_t **chain, size_t hint)
{
    ngx_memzero(rows, sizeof(ngx_game_tel_rows_t));
    rows->sink.reserve = ngx_game_tel_writer_reserve;
    rows->pool = pool;
    /* a row is about as long as its event in the batch, plus the ids
     * (about 110 bytes an event): room for both at once, most times */
    rows->hint = 2 * hint + 1024;
    rows->last = chain;
    *chain = NULL;
}


static int
ngx_game_tel_writer_reserve(game_tel_sink_t *sink, size_t n)
{
    size_t                size;
    ngx_buf_t            *b;
    ngx_chain_t          *cl;
    ngx_game_tel_rows_t  *rows = (ngx_game_tel_rows_t *) sink;

    if (rows->buf) {
        rows->buf->last = sink->pos;
    }

    size = ngx_max(n, rows->hint);
    rows->hint = NGX_GAME_TEL_ROWS_CHUNK;

    b = ngx_create_temp_buf(rows->pool, size);
    cl = ngx_alloc_chain_link(rows->pool);
    if (b == NULL || cl == NULL) {
        return -1;
    }

    cl->buf = b;
    cl->next = NULL;
    *rows->last = cl;
    rows->last = &cl->next;

    rows->buf = b;
    sink->pos = b->last;
    sink->end = b->end;

    return 0;
}


/* the read is handed out: load what was gathered, in one statement */
static void
ngx_game_tel_writer_flush(void *data)
{
    ngx_array_t            *gathered;
    ngx_game_tel_writer_t  *w = data;

    gathered = w->gathered;
    w->gathered = NULL;

    if (gathered == NULL || gathered->nelts == 0) {
        return;
    }

    (void) ngx_game_tel_writer_load(w, gathered->pool, gathered->elts,
                                    gathered->nelts, 0);
}


static ngx_int_t
ngx_game_tel_writer_load(ngx_game_tel_writer_t *w, ngx_pool_t *pool,
    ngx_game_tel_item_t *items, ngx_uint_t n, ngx_uint_t alone)
{
    ngx_str_t             entries, hits;
    ngx_uint_t            i, k;
    ngx_game_pg_pool_t   *pg;
    ngx_game_pg_copy_t   *copy;
    ngx_game_pg_query_t  *q;
    ngx_game_tel_load_t  *ld;

    pg = w->tmcf->copy_pg ? w->tmcf->copy_pg : w->tmcf->writer_pg;

    ld = ngx_pcalloc(pool, sizeof(ngx_game_tel_load_t));
    q = ngx_game_pg_query_create(pool, ngx_cycle->log,
                                 w->tmcf->copy_pg
                                 ? &ngx_game_tel_write_rows_stmt
                                 : &ngx_game_tel_write_stmt);
    copy = NULL;
    entries.data = NULL;

    if (ld != NULL && q != NULL && w->tmcf->copy_pg) {
        copy = ngx_palloc(pool, sizeof(ngx_game_pg_copy_t));
        if (copy != NULL) {
            *copy = ngx_game_tel_copy;
            copy->data = ngx_game_tel_writer_rows(pool, items, n);
        }
    }

    if (ld == NULL || q == NULL
        || (w->tmcf->copy_pg && (copy == NULL || copy->data == NULL))
        || (!w->tmcf->copy_pg
            && ngx_game_tel_writer_join(pool, &entries, items, n,
                                        offsetof(ngx_game_tel_item_t, json))
               != NGX_OK)
        || ngx_game_tel_writer_join(pool, &hits, items, n,
                                    offsetof(ngx_game_tel_item_t, hits))
           != NGX_OK)
    {
        for (i = 0; i < n; i++) {
            ngx_game_bus_done(items[i].entry, NGX_AGAIN, NULL);
        }
        return NGX_ERROR;
    }

    ld->writer = w;
    ld->items = items;
    ld->n = n;
    ld->alone = alone;

    for (i = 0; i < n; i++) {
        ld->events += items[i].events;
    }

    k = 0;
    if (copy == NULL) {
        q->values[k++] = (char *) entries.data;
    }
    q->values[k++] = (char *) hits.data;
    q->values[k] = (char *) ngx_game_tel_number(pool, w->tmcf->threshold);
    q->copy = copy;
    ngx_str_set(&q->trace, "writer");
    q->handler = ngx_game_tel_writer_loaded;
    q->data = ld;
    /* a deadlock or a serialisation failure is retried, not an error */
    q->expect = "40P01 40001";

    if (q->values[k] == NULL || ngx_game_pg_query_run(pg, q) != NGX_AGAIN)
    {
        ngx_game_tel_writer_end(ld, NGX_AGAIN, NULL);
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_game_tel_writer_loaded(ngx_game_pg_query_t *q, ngx_int_t rc,
    PGresult *res)
{
    ngx_int_t             written;
    ngx_uint_t            i;
    ngx_game_tel_load_t  *ld = q->data;

    if (rc == NGX_OK) {
        written = (PQntuples(res) == 1)
                  ? ngx_atoi((u_char *) PQgetvalue(res, 0, 0),
                             PQgetlength(res, 0, 0))
                  : 0;

        if (written < 0) {
            written = 0;
        }

        ngx_game_tel_writer_count(ld->writer, ld->items[0].entry->pool,
                                  "written", written);
        if ((ngx_uint_t) written < ld->events) {
            ngx_game_tel_writer_count(ld->writer, ld->items[0].entry->pool,
                                      "duplicates", ld->events - written);
        }

        ngx_game_tel_writer_end(ld, NGX_OK, NULL);
        return;
    }

    if (rc != NGX_GAME_QUERY_ERROR || ngx_game_tel_writer_retryable(res)) {
        /* PostgreSQL away, slow, or a transient conflict: later */
        ngx_game_tel_writer_end(ld, NGX_AGAIN, NULL);
        return;
    }

    if (ld->alone || ld->n == 1) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "game tel: entry %V of \"%V\" (%ui events) cannot be "
                      "written: dead-lettered", &ld->items[0].entry->id,
                      ld->writer->stream, ld->events);
        ngx_game_tel_writer_count(ld->writer, ld->items[0].entry->pool,
                                  "dead_lettered", ld->events);
        ngx_game_tel_writer_end(ld, NGX_DECLINED, "refused by the database");
        return;
    }

    /* one entry spoils the read: each on its own, so that only that one
     * goes to the dead letters */
    ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                  "game tel: a read of %ui entries of \"%V\" was refused; "
                  "writing them one by one", ld->n, ld->writer->stream);

    for (i = 0; i < ld->n; i++) {
        (void) ngx_game_tel_writer_load(ld->writer,
                                        ld->items[i].entry->pool,
                                        &ld->items[i], 1, 1);
    }
}


static void
ngx_game_tel_writer_end(ngx_game_tel_load_t *ld, ngx_int_t rc,
    const char *reason)
{
    ngx_uint_t  i;

    /* the last done() may end the pass and free the items' memory */
    for (i = ld->n; i > 0; i--) {
        ngx_game_bus_done(ld->items[i - 1].entry, rc, reason);
    }
}


/* SQLSTATEs that say "try again": deadlock, serialisation, lock timeout */
static ngx_uint_t
ngx_game_tel_writer_retryable(PGresult *res)
{
    const char  *state;

    state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

    return state != NULL
           && (ngx_strcmp(state, "40P01") == 0
               || ngx_strcmp(state, "40001") == 0
               || ngx_strcmp(state, "55P03") == 0
               || ngx_strcmp(state, "57014") == 0);
}


/*
 * The items' rows as one chain for the COPY: links of its own over the
 * items' buffers, so that an item can go again in another load (the read
 * written one by one) with its rows as they are.
 */
static ngx_chain_t *
ngx_game_tel_writer_rows(ngx_pool_t *pool, ngx_game_tel_item_t *items,
    ngx_uint_t n)
{
    ngx_uint_t    i;
    ngx_chain_t  *out, **last, *cl, *in;

    out = NULL;
    last = &out;

    for (i = 0; i < n; i++) {
        for (in = items[i].rows; in; in = in->next) {
            cl = ngx_alloc_chain_link(pool);
            if (cl == NULL) {
                return NULL;
            }

            cl->buf = in->buf;
            cl->next = NULL;
            *last = cl;
            last = &cl->next;
        }
    }

    return out;
}


/* "[item, item, ...]" of one of the items' strings, NUL-terminated */
static ngx_int_t
ngx_game_tel_writer_join(ngx_pool_t *pool, ngx_str_t *out,
    ngx_game_tel_item_t *items, ngx_uint_t n, size_t field)
{
    u_char      *p;
    size_t       len;
    ngx_str_t   *s;
    ngx_uint_t   i, first;

    len = sizeof("[]");
    for (i = 0; i < n; i++) {
        s = (ngx_str_t *) ((u_char *) &items[i] + field);
        len += s->len + 1;
    }

    out->data = ngx_pnalloc(pool, len);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    p = out->data;
    *p++ = '[';
    first = 1;

    for (i = 0; i < n; i++) {
        s = (ngx_str_t *) ((u_char *) &items[i] + field);
        if (s->len == 0) {
            continue;
        }
        if (!first) {
            *p++ = ',';
        }
        p = ngx_cpymem(p, s->data, s->len);
        first = 0;
    }

    *p++ = ']';
    *p = '\0';
    out->len = p - out->data;

    return NGX_OK;
}


/* counters for operators (GET /admin/telemetry/stats); nobody waits */
static void
ngx_game_tel_writer_count(ngx_game_tel_writer_t *w, ngx_pool_t *pool,
    const char *field, ngx_uint_t n)
{
    u_char                  num[NGX_INT_T_LEN];
    ngx_game_redis_cmd_t   *cmd;
    ngx_game_redis_args_t   a;

    if (n == 0) {
        return;
    }

    ngx_memzero(&a, sizeof(ngx_game_redis_args_t));
    ngx_game_redis_arg_lit(&a, "HINCRBY");
    ngx_game_redis_arg_str(&a, &w->tmcf->stats);
    ngx_game_redis_arg_cstr(&a, field);
    ngx_game_redis_arg(&a, num, ngx_sprintf(num, "%ui", n) - num);

    cmd = ngx_game_redis_cmd_create(pool, ngx_cycle->log);
    if (cmd == NULL) {
        return;
    }

    cmd->handler = ngx_game_tel_writer_counted;
    cmd->quiet = 1;

    (void) ngx_game_redis_cmd_run(w->tmcf->redis, cmd, a.argc, a.argv,
                                  a.argvlen);
}


static void
ngx_game_tel_writer_counted(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply)
{
    /* a lost count is a lost count: the data is safe either way */
}
