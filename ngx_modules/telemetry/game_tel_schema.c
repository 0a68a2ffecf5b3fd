/*
 * game_tel_schema.c: telemetry event types from their JSON declaration,
 * and the check of one event against them.  See game_tel_schema.h.
 *
 * Types are kept sorted by name, so that an event's type is found with a
 * binary search: a batch of 500 events costs 500 searches of a few
 * comparisons each.
 */

#define _POSIX_C_SOURCE 200809L       /* strdup */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "game_tel_schema.h"
#include "game_util.h"          /* game_uuid_valid */


#define GAME_TEL_MAX_BYTES_DEFAULT  4096


typedef enum {
    GAME_TEL_STRING = 0,
    GAME_TEL_INTEGER,
    GAME_TEL_NUMBER,
    GAME_TEL_BOOLEAN,
    GAME_TEL_UUID,
    GAME_TEL_OBJECT,
    GAME_TEL_ARRAY
} game_tel_kind_e;


static const char  *game_tel_kind_names[] = {
    "string", "integer", "number", "boolean", "uuid", "object", "array",
    NULL
};


typedef struct {
    char               *name;
    game_tel_kind_e     kind;
    int                 required;
    size_t              max_length;     /* strings; 0: no limit */
    size_t              max_items;      /* arrays; 0: no limit */
    int                 has_min, has_max;
    double              min, max;       /* integers and numbers */
} game_tel_field_t;


typedef struct {
    char               *name;
    unsigned            from;           /* GAME_TEL_FROM_* bits */
    size_t              max_bytes;
    int                 additional;
    game_tel_field_t   *fields;
    size_t              nfields;
} game_tel_type_t;


struct game_tel_types_s {
    game_tel_type_t    *types;
    size_t              n;
};


static int game_tel_type_parse(game_tel_type_t *t, const char *name,
    json_t *decl, char *err, size_t len);
static int game_tel_field_parse(game_tel_field_t *f, const char *type,
    const char *name, json_t *decl, char *err, size_t len);
static int game_tel_type_cmp(const void *a, const void *b);
static const game_tel_type_t *game_tel_type_find(const game_tel_types_t *t,
    const char *name);
static int game_tel_payload_ok(const game_tel_type_t *type, json_t *payload);
static int game_tel_value_ok(const game_tel_field_t *f, json_t *v);


int
game_tel_type_name_valid(const char *s, size_t len)
{
    size_t  i;

    if (len == 0 || len > GAME_TEL_TYPE_MAX || s[0] < 'a' || s[0] > 'z') {
        return 0;
    }

    for (i = 1; i < len; i++) {
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9')
              || s[i] == '_' || s[i] == '.' || s[i] == ':' || s[i] == '-'))
        {
            return 0;
        }
    }

    return 1;
}


game_tel_types_t *
game_tel_types_parse(json_t *doc, char *err, size_t len)
{
    size_t             i;
    json_t            *types, *decl;
    const char        *name;
    game_tel_types_t  *t;

    types = json_object_get(doc, "types");
    if (!json_is_object(types) || json_object_size(types) == 0) {
        snprintf(err, len, "the document must be {\"types\": {name: "
                 "declaration, ...}} with at least one type");
        return NULL;
    }

    t = calloc(1, sizeof(game_tel_types_t));
    if (t == NULL) {
        snprintf(err, len, "out of memory");
        return NULL;
    }

    t->types = calloc(json_object_size(types), sizeof(game_tel_type_t));
    if (t->types == NULL) {
        free(t);
        snprintf(err, len, "out of memory");
        return NULL;
    }

    json_object_foreach(types, name, decl) {
        /* counted first: a type that fails half-way is freed with the
         * others */
        t->n++;
        if (game_tel_type_parse(&t->types[t->n - 1], name, decl, err, len)
            != 0)
        {
            game_tel_types_free(t);
            return NULL;
        }
    }

    qsort(t->types, t->n, sizeof(game_tel_type_t), game_tel_type_cmp);

    for (i = 1; i < t->n; i++) {
        /* jansson keeps keys unique; this guards the sort */
        if (strcmp(t->types[i - 1].name, t->types[i].name) == 0) {
            snprintf(err, len, "type \"%s\" is declared twice",
                     t->types[i].name);
            game_tel_types_free(t);
            return NULL;
        }
    }

    return t;
}


void
game_tel_types_free(game_tel_types_t *t)
{
    size_t  i, k;

    if (t == NULL) {
        return;
    }

    for (i = 0; i < t->n; i++) {
        for (k = 0; k < t->types[i].nfields; k++) {
            free(t->types[i].fields[k].name);
        }
        free(t->types[i].fields);
        free(t->types[i].name);
    }

    free(t->types);
    free(t);
}


size_t
game_tel_types_count(const game_tel_types_t *t)
{
    return t->n;
}


static int
game_tel_type_parse(game_tel_type_t *t, const char *name, json_t *decl,
    char *err, size_t len)
{
    json_t      *v, *fields, *fdecl;
    const char  *fname, *from;

    if (!game_tel_type_name_valid(name, strlen(name))) {
        snprintf(err, len, "type \"%s\": a name is 1 to 64 of a-z 0-9 _ . : "
                 "- starting with a letter", name);
        return -1;
    }

    if (!json_is_object(decl)) {
        snprintf(err, len, "type \"%s\": the declaration must be an object",
                 name);
        return -1;
    }

    t->name = strdup(name);
    if (t->name == NULL) {
        snprintf(err, len, "out of memory");
        return -1;
    }

    from = json_string_value(json_object_get(decl, "from"));
    if (from == NULL || strcmp(from, "client") == 0) {
        t->from = GAME_TEL_FROM_CLIENT;
    } else if (strcmp(from, "server") == 0) {
        t->from = GAME_TEL_FROM_SERVER;
    } else if (strcmp(from, "any") == 0) {
        t->from = GAME_TEL_FROM_CLIENT | GAME_TEL_FROM_SERVER;
    } else {
        snprintf(err, len, "type \"%s\": \"from\" is \"client\", \"server\" "
                 "or \"any\"", name);
        return -1;
    }

    t->max_bytes = GAME_TEL_MAX_BYTES_DEFAULT;
    v = json_object_get(decl, "max_bytes");
    if (v != NULL) {
        if (!json_is_integer(v) || json_integer_value(v) < 2
            || json_integer_value(v) > 65536)
        {
            snprintf(err, len, "type \"%s\": \"max_bytes\" is a whole number "
                     "from 2 to 65536", name);
            return -1;
        }
        t->max_bytes = (size_t) json_integer_value(v);
    }

    v = json_object_get(decl, "additional");
    if (v != NULL && !json_is_boolean(v)) {
        snprintf(err, len, "type \"%s\": \"additional\" is true or false",
                 name);
        return -1;
    }
    t->additional = json_is_true(v);

    fields = json_object_get(decl, "fields");
    if (fields == NULL) {
        return 0;
    }

    if (!json_is_object(fields)) {
        snprintf(err, len, "type \"%s\": \"fields\" must be an object", name);
        return -1;
    }

    t->fields = calloc(json_object_size(fields) + 1,
                       sizeof(game_tel_field_t));
    if (t->fields == NULL) {
        snprintf(err, len, "out of memory");
        return -1;
    }

    json_object_foreach(fields, fname, fdecl) {
        t->nfields++;
        if (game_tel_field_parse(&t->fields[t->nfields - 1], name, fname,
                                 fdecl, err, len)
            != 0)
        {
            return -1;
        }
    }

    return 0;
}


static int
game_tel_field_parse(game_tel_field_t *f, const char *type, const char *name,
    json_t *decl, char *err, size_t len)
{
    int          k;
    json_t      *v;
    const char  *kind;

    if (!json_is_object(decl)) {
        snprintf(err, len, "type \"%s\", field \"%s\": the declaration must "
                 "be an object", type, name);
        return -1;
    }

    kind = json_string_value(json_object_get(decl, "type"));

    for (k = 0; kind && game_tel_kind_names[k]; k++) {
        if (strcmp(kind, game_tel_kind_names[k]) == 0) {
            break;
        }
    }

    if (kind == NULL || game_tel_kind_names[k] == NULL) {
        snprintf(err, len, "type \"%s\", field \"%s\": \"type\" is one of "
                 "string, integer, number, boolean, uuid, object, array",
                 type, name);
        return -1;
    }

    f->name = strdup(name);
    if (f->name == NULL) {
        snprintf(err, len, "out of memory");
        return -1;
    }

    f->kind = (game_tel_kind_e) k;

    v = json_object_get(decl, "required");
    if (v != NULL && !json_is_boolean(v)) {
        snprintf(err, len, "type \"%s\", field \"%s\": \"required\" is true "
                 "or false", type, name);
        return -1;
    }
    f->required = json_is_true(v);

    v = json_object_get(decl, "max_length");
    if (v != NULL) {
        if (f->kind != GAME_TEL_STRING || !json_is_integer(v)
            || json_integer_value(v) < 1)
        {
            snprintf(err, len, "type \"%s\", field \"%s\": \"max_length\" is "
                     "a positive whole number, for strings", type, name);
            return -1;
        }
        f->max_length = (size_t) json_integer_value(v);
    }

    v = json_object_get(decl, "max_items");
    if (v != NULL) {
        if (f->kind != GAME_TEL_ARRAY || !json_is_integer(v)
            || json_integer_value(v) < 1)
        {
            snprintf(err, len, "type \"%s\", field \"%s\": \"max_items\" is "
                     "a positive whole number, for arrays", type, name);
            return -1;
        }
        f->max_items = (size_t) json_integer_value(v);
    }

    v = json_object_get(decl, "min");
    if (v != NULL) {
        if ((f->kind != GAME_TEL_INTEGER && f->kind != GAME_TEL_NUMBER)
            || !json_is_number(v))
        {
            snprintf(err, len, "type \"%s\", field \"%s\": \"min\" is a "
                     "number, for numbers", type, name);
            return -1;
        }
        f->has_min = 1;
        f->min = json_number_value(v);
    }

    v = json_object_get(decl, "max");
    if (v != NULL) {
        if ((f->kind != GAME_TEL_INTEGER && f->kind != GAME_TEL_NUMBER)
            || !json_is_number(v) || (f->has_min && json_number_value(v)
                                                    < f->min))
        {
            snprintf(err, len, "type \"%s\", field \"%s\": \"max\" is a "
                     "number not below \"min\", for numbers", type, name);
            return -1;
        }
        f->has_max = 1;
        f->max = json_number_value(v);
    }

    return 0;
}


static int
game_tel_type_cmp(const void *a, const void *b)
{
    return strcmp(((const game_tel_type_t *) a)->name,
                  ((const game_tel_type_t *) b)->name);
}


static const game_tel_type_t *
game_tel_type_find(const game_tel_types_t *t, const char *name)
{
    int     c;
    size_t  lo, hi, mid;

    lo = 0;
    hi = t->n;

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        c = strcmp(name, t->types[mid].name);
        if (c == 0) {
            return &t->types[mid];
        }
        if (c < 0) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }

    return NULL;
}


/*
 * The event's keys are checked one by one (no key of its own may be
 * unknown), then what each says.  The order of the checks decides which
 * code an event with several faults gets: its identity first.
 */

const char *
game_tel_event_check(const game_tel_types_t *t, json_t *event,
    const game_tel_check_t *c)
{
    json_t                 *id, *type, *ts, *sid, *payload, *player, *v;
    size_t                  size;
    int64_t                 when;
    const char             *key;
    const game_tel_type_t  *tt;

    if (!json_is_object(event)) {
        return "invalid_event";
    }

    json_object_foreach(event, key, v) {
        if (strcmp(key, "event_id") != 0 && strcmp(key, "type") != 0
            && strcmp(key, "ts") != 0 && strcmp(key, "session_id") != 0
            && strcmp(key, "payload") != 0
            && !(c->from == GAME_TEL_FROM_SERVER
                 && strcmp(key, "player_id") == 0))
        {
            return "invalid_event";
        }
    }

    id = json_object_get(event, "event_id");
    if (!json_is_string(id)
        || !game_uuid_valid((const unsigned char *) json_string_value(id),
                            json_string_length(id)))
    {
        return "invalid_event_id";
    }

    type = json_object_get(event, "type");
    if (!json_is_string(type)) {
        return "invalid_event";
    }

    tt = game_tel_type_find(t, json_string_value(type));
    if (tt == NULL || !(tt->from & c->from)) {
        return "unknown_type";
    }

    ts = json_object_get(event, "ts");
    if (!json_is_integer(ts)) {
        return "invalid_ts";
    }

    when = (int64_t) json_integer_value(ts);
    if (when < c->now_ms - c->max_age_ms || when > c->now_ms + c->max_skew_ms)
    {
        return "ts_out_of_range";
    }

    sid = json_object_get(event, "session_id");
    if (sid != NULL && !json_is_null(sid)
        && (!json_is_string(sid)
            || !game_uuid_valid((const unsigned char *) json_string_value(sid),
                                json_string_length(sid))))
    {
        return "invalid_session_id";
    }

    if (c->from == GAME_TEL_FROM_SERVER) {
        player = json_object_get(event, "player_id");
        if (player != NULL && !json_is_null(player)
            && (!json_is_string(player)
                || !game_uuid_valid(
                       (const unsigned char *) json_string_value(player),
                       json_string_length(player))))
        {
            return "invalid_player_id";
        }
    }

    payload = json_object_get(event, "payload");
    if (payload != NULL && !json_is_object(payload)) {
        return "invalid_payload";
    }

    if (!game_tel_payload_ok(tt, payload)) {
        return "invalid_payload";
    }

    if (payload != NULL) {
        size = json_dumpb(payload, NULL, 0, GAME_TEL_JSON_FLAGS);
        if (size > tt->max_bytes) {
            return "payload_too_large";
        }
    }

    return NULL;
}


static int
game_tel_payload_ok(const game_tel_type_t *type, json_t *payload)
{
    size_t       i;
    json_t      *v;
    const char  *key;

    for (i = 0; i < type->nfields; i++) {
        v = payload ? json_object_get(payload, type->fields[i].name) : NULL;

        if (v == NULL || json_is_null(v)) {
            if (type->fields[i].required) {
                return 0;
            }
            continue;
        }

        if (!game_tel_value_ok(&type->fields[i], v)) {
            return 0;
        }
    }

    if (type->additional || payload == NULL) {
        return 1;
    }

    json_object_foreach(payload, key, v) {
        for (i = 0; i < type->nfields; i++) {
            if (strcmp(key, type->fields[i].name) == 0) {
                break;
            }
        }

        if (i == type->nfields) {
            return 0;
        }
    }

    return 1;
}


static int
game_tel_value_ok(const game_tel_field_t *f, json_t *v)
{
    double  d;

    switch (f->kind) {

    case GAME_TEL_STRING:
        return json_is_string(v)
               && (f->max_length == 0
                   || json_string_length(v) <= f->max_length);

    case GAME_TEL_UUID:
        return json_is_string(v)
               && game_uuid_valid((const unsigned char *) json_string_value(v),
                                  json_string_length(v));

    case GAME_TEL_BOOLEAN:
        return json_is_boolean(v);

    case GAME_TEL_OBJECT:
        return json_is_object(v);

    case GAME_TEL_ARRAY:
        return json_is_array(v)
               && (f->max_items == 0 || json_array_size(v) <= f->max_items);

    case GAME_TEL_INTEGER:
        if (!json_is_integer(v)) {
            return 0;
        }
        d = (double) json_integer_value(v);
        break;

    default: /* GAME_TEL_NUMBER */
        if (!json_is_number(v)) {
            return 0;
        }
        d = json_number_value(v);
        break;
    }

    return !(f->has_min && d < f->min) && !(f->has_max && d > f->max);
}
