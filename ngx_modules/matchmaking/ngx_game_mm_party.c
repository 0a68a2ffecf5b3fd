
/*
 * Parties: players who queue together and are never split.
 *
 *   POST /party                 201 {party_id, leader, members}
 *   POST /party/{id}/join       200 {party_id, leader, members}
 *   POST /party/{id}/leave      200 {party_id, leader, members}: the party
 *                               without the player (leader null, members
 *                               [] when it is gone)
 *   GET  /party/{id}            200 (members only; 404 to anyone else)
 *
 * Members who are connected hear who joins and leaves ({"type":"party"},
 * ngx_game_mm_notify.c), and chat with "party.chat" messages.
 *
 * The party id is unguessable and is the invitation.  A party holds at
 * most 8 players (the largest team); whether it fits a mode's teams is
 * checked when its leader queues it (POST /matchmaking/join with
 * "party_id").  It lives in Redis as long as a ticket may.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_game_mm.h"


typedef struct {
    ngx_http_request_t         *request;
    ngx_str_t                   player;
    u_char                      party[37];
    ngx_uint_t                  created;    /* 201 rather than 200 */
    unsigned                    leave:1;
} ngx_game_mm_party_t;


static void ngx_game_mm_party_done(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply);
static ngx_int_t ngx_game_mm_party_send(ngx_game_mm_party_t *pt,
    ngx_uint_t status, redisReply *leader, redisReply *members);


ngx_int_t
ngx_game_mm_party_handler(ngx_http_request_t *r)
{
    int                       argc;
    size_t                    id_len;
    u_char                   *id, *last;
    ngx_int_t                 rc;
    ngx_uint_t                method;
    const char               *argv[5];
    size_t                    argvlen[5];
    u_char                    ttl[NGX_INT_T_LEN], max[NGX_INT_T_LEN];
    ngx_game_mm_party_t      *pt;
    ngx_game_redis_script_t  *script;
    ngx_game_mm_main_conf_t  *mmcf;

    pt = ngx_pcalloc(r->pool, sizeof(ngx_game_mm_party_t));
    if (pt == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_game_mm_who(r, &pt->player);
    if (rc != NGX_OK) {
        return ngx_game_mm_refuse(r, rc);
    }

    pt->request = r;
    mmcf = ngx_http_get_module_main_conf(r, ngx_game_mm_module);

    /*
     * "/party", "/party/{id}", "/party/{id}/join" or "/party/{id}/leave".
     * A known path with another method is 405, as on every other
     * endpoint; an id that is no UUID names no party (404 no_party, as an
     * unknown UUID); anything else under /party is no endpoint.
     */
    id = r->uri.data + 7;
    last = r->uri.data + r->uri.len;
    method = NGX_HTTP_POST;

    if (r->uri.len == 6) {
        id_len = 0;

    } else if (r->uri.len > 7 && ngx_strlchr(id, last, '/') == NULL) {
        method = NGX_HTTP_GET;
        id_len = r->uri.len - 7;

    } else if (r->uri.len > 7 + 5
               && ngx_strncmp(last - 5, "/join", 5) == 0
               && ngx_strlchr(id, last - 5, '/') == NULL)
    {
        id_len = r->uri.len - 7 - 5;

    } else if (r->uri.len > 7 + 6
               && ngx_strncmp(last - 6, "/leave", 6) == 0
               && ngx_strlchr(id, last - 6, '/') == NULL)
    {
        id_len = r->uri.len - 7 - 6;
        pt->leave = 1;

    } else {
        return ngx_game_http_send_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                        "POST /party, POST /party/{id}/join, "
                                        "POST /party/{id}/leave or "
                                        "GET /party/{id}");
    }

    if (r->method != method) {
        return ngx_game_http_send_error(r, NGX_HTTP_NOT_ALLOWED,
                                        "method_not_allowed",
                                        method == NGX_HTTP_GET
                                        ? "use GET" : "use POST");
    }

    if (id_len && (id_len != 36 || !game_uuid_valid(id, 36))) {
        return ngx_game_http_send_error(r, NGX_HTTP_NOT_FOUND, "no_party",
                                        "no such party");
    }

    if (id_len == 0) {
        game_uuid_generate((char *) pt->party);
        pt->created = 1;
        script = &ngx_game_mm_lua_party_create;
        argc = 4;

    } else if (pt->leave) {
        ngx_memcpy(pt->party, id, 36);
        script = &ngx_game_mm_lua_party_leave;
        argc = 3;

    } else if (method == NGX_HTTP_POST) {
        ngx_memcpy(pt->party, id, 36);
        script = &ngx_game_mm_lua_party_join;
        argc = 5;

    } else {
        ngx_memcpy(pt->party, id, 36);
        script = &ngx_game_mm_lua_party_get;
        argc = 2;
    }

    /* a body is neither needed nor read */
    if (ngx_http_discard_request_body(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    argv[0] = (char *) mmcf->prefix.data;
    argvlen[0] = mmcf->prefix.len;
    argv[1] = (char *) pt->party;
    argvlen[1] = 36;
    argv[2] = (char *) pt->player.data;
    argvlen[2] = pt->player.len;
    argv[3] = (char *) ttl;
    argvlen[3] = ngx_sprintf(ttl, "%M", mmcf->ticket_ttl) - ttl;
    argv[4] = (char *) max;
    argvlen[4] = ngx_sprintf(max, "%d", GAME_MM_MAX_TEAM_SIZE) - max;

    rc = ngx_game_mm_script(r, script, ngx_game_mm_party_done, pt, argc, argv,
                            argvlen);
    if (rc != NGX_AGAIN) {
        return ngx_game_http_send_outcome(r, rc, "the matchmaker");
    }

    r->main->count++;
    return NGX_DONE;
}


static void
ngx_game_mm_party_done(ngx_game_redis_cmd_t *cmd, ngx_int_t rc,
    redisReply *reply)
{
    u_char                   *p, *last;
    ngx_str_t                 id, leader, members;
    ngx_uint_t                member;
    ngx_game_mm_party_t      *pt = cmd->data;
    ngx_http_request_t       *r = pt->request;
    ngx_game_mm_main_conf_t  *mmcf;

    if (rc != NGX_OK) {
        ngx_http_finalize_request(r,
            ngx_game_http_send_outcome(r, rc, "the matchmaker"));
        return;
    }

    if (ngx_game_mm_reply_is(reply, "IN_PARTY")) {
        ngx_http_finalize_request(r,
            ngx_game_http_send_error(r, NGX_HTTP_CONFLICT, "in_party",
                                     "the player is already in a party"));
        return;
    }

    if (ngx_game_mm_reply_is(reply, "FULL")) {
        ngx_http_finalize_request(r,
            ngx_game_http_send_error(r, NGX_HTTP_CONFLICT, "party_full",
                                     "the party is full"));
        return;
    }

    if (ngx_game_mm_reply_is(reply, "OK") && reply->elements == 2) {
        /* created: the leader is the only member */
        ngx_http_finalize_request(r,
            ngx_game_mm_party_send(pt, NGX_HTTP_CREATED, NULL, NULL));
        return;
    }

    if (!ngx_game_mm_reply_is(reply, "OK") || reply->elements < 3) {
        ngx_http_finalize_request(r,
            ngx_game_http_send_error(r, NGX_HTTP_NOT_FOUND, "no_party",
                                     "no such party"));
        return;
    }

    mmcf = ngx_http_get_module_main_conf(r, ngx_game_mm_module);
    leader.data = (u_char *) reply->element[1]->str;
    leader.len = reply->element[1]->len;
    members.data = (u_char *) reply->element[2]->str;
    members.len = reply->element[2]->len;

    if (pt->leave) {
        ngx_game_mm_party_event(mmcf, pt->party, "left", &pt->player,
                                &leader, &members);
        ngx_http_finalize_request(r,
            ngx_game_mm_party_send(pt, NGX_HTTP_OK, reply->element[1],
                                   reply->element[2]));
        return;
    }

    /* party_join.lua: the fourth says whether the player is new */
    if (reply->elements == 4 && reply->element[3]->len == 6
        && ngx_strncmp(reply->element[3]->str, "joined", 6) == 0)
    {
        ngx_game_mm_party_event(mmcf, pt->party, "joined", &pt->player,
                                &leader, &members);
    }

    /* a party is visible to its members only */
    member = 0;
    p = (u_char *) reply->element[2]->str;
    last = p + reply->element[2]->len;

    while (ngx_game_mm_next_id(&p, last, &id)) {
        if (id.len == pt->player.len
            && ngx_strncmp(id.data, pt->player.data, id.len) == 0)
        {
            member = 1;
        }
    }

    if (!member) {
        ngx_http_finalize_request(r,
            ngx_game_http_send_error(r, NGX_HTTP_NOT_FOUND, "no_party",
                                     "no such party"));
        return;
    }

    ngx_http_finalize_request(r,
        ngx_game_mm_party_send(pt, NGX_HTTP_OK, reply->element[1],
                               reply->element[2]));
}


static ngx_int_t
ngx_game_mm_party_send(ngx_game_mm_party_t *pt, ngx_uint_t status,
    redisReply *leader, redisReply *members)
{
    u_char     *p, *last;
    json_t     *body, *list;
    ngx_str_t   id;
    ngx_int_t   rc;

    list = json_array();
    if (list == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (members == NULL) {
        json_array_append_new(list, json_stringn((char *) pt->player.data,
                                                 pt->player.len));

    } else {
        p = (u_char *) members->str;
        last = p + members->len;

        while (ngx_game_mm_next_id(&p, last, &id)) {
            json_array_append_new(list, json_stringn((char *) id.data,
                                                     id.len));
        }
    }

    body = json_pack("{s:s#,s:s#,s:o}",
                     "party_id", (char *) pt->party, (int) 36,
                     "leader", leader ? leader->str : (char *) pt->player.data,
                     (int) (leader ? leader->len : pt->player.len),
                     "members", list);
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (leader && leader->len == 0) {
        /* the last member left: the party is gone */
        json_object_set_new(body, "leader", json_null());
    }

    rc = ngx_game_http_send_json(pt->request, status, body);
    json_decref(body);

    return rc;
}
