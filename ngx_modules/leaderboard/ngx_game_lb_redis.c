
/*
 * The boards in Redis: keys, the Lua scripts, and writes of entries.
 *
 * Every write of an entry carries the version PostgreSQL gave the change
 * (leaderboard_version_seq), and Redis takes it only when it is newer than
 * the one it holds for that player (put).  So writes may cross in any
 * order (two matches of one player on two workers, a rebuild reading
 * PostgreSQL while matches go on, a redelivered outcome), and Redis still
 * ends with the newest.  A removal is a write too: its "member" is "-",
 * kept as a tombstone so that an older write cannot bring the entry back.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_game_lb.h"


/* ARGV[1]: records "zkey hkey player version member\n"... -> taken */
ngx_game_redis_script_t  ngx_game_lb_put_lua = {
    "local n = 0\n"
    "for zk, hk, p, v, m in string.gmatch(ARGV[1],\n"
    "        '([^ ]+) ([^ ]+) ([^ ]+) ([^ ]+) ([^\\n]+)\\n') do\n"
    "  local cur = redis.call('HGET', hk, p)\n"
    "  local cv, cm = -1, nil\n"
    "  if cur then\n"
    "    local s = string.find(cur, ' ', 1, true)\n"
    "    cv = tonumber(string.sub(cur, 1, s - 1))\n"
    "    cm = string.sub(cur, s + 1)\n"
    "  end\n"
    "  if tonumber(v) > cv then\n"
    "    if cm and cm ~= '-' then redis.call('ZREM', zk, cm) end\n"
    "    if m ~= '-' then redis.call('ZADD', zk, 0, m) end\n"
    "    redis.call('HSET', hk, p, v .. ' ' .. m)\n"
    "    n = n + 1\n"
    "  end\n"
    "end\n"
    "return n\n",
    0, ""
};


/*
 * A page: ARGV meta, alive, zkey, hkey, how (top | after | around), the
 * cursor's member or the player, limit -> {'BUSY'} while the board is
 * being rebuilt, {'NONE'} for a player without an entry, or {'OK', first
 * position, entries on the board, members (limit + 1 at most: one more
 * says there is a next page)}.  A season whose meta is missing while
 * "alive" is there began during this Redis's life: nothing was lost.
 */
ngx_game_redis_script_t  ngx_game_lb_page_lua = {
    "local st = redis.call('HGET', ARGV[1], 'state')\n"
    "if st ~= 'ready'\n"
    "   and (st or redis.call('EXISTS', ARGV[2]) == 0) then\n"
    "  return { 'BUSY' }\n"
    "end\n"
    "local z, lim = ARGV[3], tonumber(ARGV[7])\n"
    "local n = redis.call('ZCARD', z)\n"
    "local start = 0\n"
    "if ARGV[5] == 'after' then\n"
    "  start = redis.call('ZLEXCOUNT', z, '-', '[' .. ARGV[6])\n"
    "elseif ARGV[5] == 'around' then\n"
    "  local cur = redis.call('HGET', ARGV[4], ARGV[6])\n"
    "  local m = cur and string.match(cur, '^%d+ (.+)$')\n"
    "  if not m or m == '-' then return { 'NONE' } end\n"
    "  local r = redis.call('ZRANK', z, m)\n"
    "  if not r then return { 'NONE' } end\n"
    /* the player in the middle where they can be; the window stays on
     * the board at both ends */
    "  start = r - math.floor((lim - 1) / 2)\n"
    "  if start + lim > n then start = n - lim end\n"
    "  if start < 0 then start = 0 end\n"
    "end\n"
    "return { 'OK', start, n, redis.call('ZRANGE', z, start, start + lim) }\n",
    0, ""
};


/*
 * A player's rank on boards: ARGV alive, then (meta, zkey, hkey) per
 * board, then the player -> per board: rank (0-based), -1 for no entry,
 * -2 while the board is rebuilt; and the member ('' for none).
 */
ngx_game_redis_script_t  ngx_game_lb_ranks_lua = {
    "local p = ARGV[#ARGV]\n"
    "local alive = redis.call('EXISTS', ARGV[1]) == 1\n"
    "local out = {}\n"
    "for i = 2, #ARGV - 1, 3 do\n"
    "  local st = redis.call('HGET', ARGV[i], 'state')\n"
    "  local r, m = -1, ''\n"
    "  if st ~= 'ready' and (st or not alive) then\n"
    "    r = -2\n"
    "  else\n"
    "    local cur = redis.call('HGET', ARGV[i + 2], p)\n"
    "    local mm = cur and string.match(cur, '^%d+ (.+)$')\n"
    "    if mm and mm ~= '-' then\n"
    "      r = redis.call('ZRANK', ARGV[i + 1], mm) or -1\n"
    "      m = mm\n"
    "    end\n"
    "  end\n"
    "  out[#out + 1] = r\n"
    "  out[#out + 1] = m\n"
    "end\n"
    "return out\n",
    0, ""
};


/*
 * The maintenance lease: ARGV lease key, fence key, holder, ms ->
 * {'OK', fence} | {'HELD', holder}.  One holder across every worker of
 * every nginx; a crashed holder's lease lapses by itself.  Each new lease
 * takes a fencing token that never goes back: a rebuild is owned by its
 * fence, so one begun by a holder that lost its lease is begun again.
 */
ngx_game_redis_script_t  ngx_game_lb_lease_lua = {
    "local cur = redis.call('HMGET', ARGV[1], 'holder', 'fence')\n"
    "if cur[1] == ARGV[3] then\n"
    "  redis.call('PEXPIRE', ARGV[1], ARGV[4])\n"
    "  return { 'OK', cur[2] }\n"
    "end\n"
    "if cur[1] then return { 'HELD', cur[1] } end\n"
    "local f = tostring(redis.call('INCR', ARGV[2]))\n"
    "redis.call('HSET', ARGV[1], 'holder', ARGV[3], 'fence', f)\n"
    "redis.call('PEXPIRE', ARGV[1], ARGV[4])\n"
    "return { 'OK', f }\n",
    0, ""
};


/*
 * Does a live season need a rebuild?  ARGV meta, alive, fence ->
 * 'READY' | 'MINE' (a rebuild of ours goes on) | 'START' (begin one: the
 * meta now says building, under our fence).  A missing meta while
 * "alive" is there is a season that began in this Redis's life.
 */
ngx_game_redis_script_t  ngx_game_lb_begin_lua = {
    "local st = redis.call('HMGET', ARGV[1], 'state', 'fence')\n"
    "if st[1] == 'ready' then return 'READY' end\n"
    "if not st[1] and redis.call('EXISTS', ARGV[2]) == 1 then\n"
    "  redis.call('HSET', ARGV[1], 'state', 'ready')\n"
    "  return 'READY'\n"
    "end\n"
    "if st[1] == 'building' and st[2] == ARGV[3] then return 'MINE' end\n"
    "redis.call('HSET', ARGV[1], 'state', 'building', 'fence', ARGV[3])\n"
    "return 'START'\n",
    0, ""
};


/*
 * The end of a rebuild, or of a pass that began every live season's:
 * ARGV meta (or '' for none), fence, alive, every live meta...  The meta
 * turns ready if the rebuild is still ours; "alive" is set once every
 * live season has a meta, so that a FLUSHALL in between cannot pass for
 * the start of new seasons.
 */
ngx_game_redis_script_t  ngx_game_lb_end_lua = {
    "local ok = 0\n"
    "if ARGV[1] ~= '' and\n"
    "   redis.call('HGET', ARGV[1], 'fence') == ARGV[2] then\n"
    "  redis.call('HSET', ARGV[1], 'state', 'ready')\n"
    "  ok = 1\n"
    "end\n"
    "for i = 4, #ARGV do\n"
    "  if redis.call('EXISTS', ARGV[i]) == 0 then return ok end\n"
    "end\n"
    "if #ARGV >= 4 then redis.call('SET', ARGV[3], '1') end\n"
    "return ok\n",
    0, ""
};


/*
 * Drop a live season for a rebuild (after a recompute): ARGV meta, keys...
 * The meta says building under nobody's fence, so the lease holder
 * rebuilds it, and readers wait (503) meanwhile.
 */
ngx_game_redis_script_t  ngx_game_lb_drop_lua = {
    "redis.call('HSET', ARGV[1], 'state', 'building', 'fence', '0')\n"
    "for i = 2, #ARGV do redis.call('UNLINK', ARGV[i]) end\n"
    "return 1\n",
    0, ""
};


void
ngx_game_lb_scripts_init(void)
{
    ngx_uint_t                i;
    ngx_game_redis_script_t  *s[] = { &ngx_game_lb_put_lua,
                                      &ngx_game_lb_page_lua,
                                      &ngx_game_lb_ranks_lua,
                                      &ngx_game_lb_lease_lua,
                                      &ngx_game_lb_begin_lua,
                                      &ngx_game_lb_end_lua,
                                      &ngx_game_lb_drop_lua };

    for (i = 0; i < sizeof(s) / sizeof(s[0]); i++) {
        if (s[i]->len == 0) {
            s[i]->len = ngx_strlen(s[i]->text);
            ngx_game_redis_script_init(s[i]);
        }
    }
}


/* "lb:<kind>:<board>:<season>[:<region>]"; region NULL for none */
u_char *
ngx_game_lb_key(u_char *p, const char *kind, ngx_str_t *board,
    ngx_str_t *season, ngx_str_t *region)
{
    p = ngx_sprintf(p, "lb:%s:%V:%V", kind, board, season);

    if (region) {
        p = ngx_sprintf(p, ":%V", region);
    }

    return p;
}


/* the records of "put" for "n" writes, in "pool" */
ngx_int_t
ngx_game_lb_records(ngx_pool_t *pool, ngx_game_lb_write_t *w, ngx_uint_t n,
    ngx_str_t *out)
{
    u_char           *p;
    ngx_uint_t        i;
    game_lb_entry_t   e;

    out->data = ngx_pnalloc(pool, n * (2 * NGX_GAME_LB_KEY_LEN + 36
                                       + NGX_INT64_LEN
                                       + GAME_LB_MEMBER_LEN + 8));
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    p = out->data;

    for (i = 0; i < n; i++) {
        p = ngx_game_lb_key(p, "z", &w[i].board->name, &w[i].season,
                            &w[i].region);
        *p++ = ' ';
        p = ngx_game_lb_key(p, "h", &w[i].board->name, &w[i].season,
                            &w[i].region);
        p = ngx_sprintf(p, " %V %uL ", &w[i].player, w[i].version);

        if (w[i].removed) {
            *p++ = '-';

        } else {
            e.score = w[i].score;
            e.subscore = w[i].subscore;
            e.reached_ms = w[i].reached_ms;
            ngx_memcpy(e.player, w[i].player.data, 36);
            e.player[36] = '\0';

            if (game_lb_member((char *) p, w[i].board->desc, &e) != 0) {
                return NGX_ERROR;
            }

            p += GAME_LB_MEMBER_LEN;
        }

        *p++ = '\n';
    }

    out->len = p - out->data;

    return NGX_OK;
}


/*
 * An entry as the SQL functions answer it ({b, s, r, p, sc, ss, t, v}, see
 * lb_entry_json), or a removal ({b, s, r, p, v}); the strings point into
 * the JSON.  NGX_DECLINED: a board this nginx does not declare (another
 * configuration's), skipped.
 */
ngx_int_t
ngx_game_lb_write_json(ngx_game_lb_main_conf_t *lmcf, json_t *j,
    ngx_game_lb_write_t *w)
{
    json_t      *sc;
    ngx_str_t    name;
    json_int_t   v, score, sub, t;
    const char  *b, *s, *r, *p;

    if (json_unpack(j, "{s:s,s:s,s:s,s:s,s:I}", "b", &b, "s", &s, "r", &r,
                    "p", &p, "v", &v)
        != 0 || v < 0)
    {
        return NGX_ERROR;
    }

    w->version = v;

    name.data = (u_char *) b;
    name.len = ngx_strlen(b);

    w->board = ngx_game_lb_board(lmcf, &name);
    if (w->board == NULL) {
        return NGX_DECLINED;
    }

    w->season.data = (u_char *) s;
    w->season.len = ngx_strlen(s);
    w->region.data = (u_char *) r;
    w->region.len = ngx_strlen(r);
    w->player.data = (u_char *) p;
    w->player.len = ngx_strlen(p);

    if (!game_lb_uuid_valid(p, w->player.len)
        || w->season.len >= NGX_GAME_LB_SEASON_MAX || w->region.len > 64)
    {
        return NGX_ERROR;
    }

    sc = json_object_get(j, "sc");
    w->removed = (sc == NULL);

    if (sc == NULL) {
        return NGX_OK;
    }

    if (json_unpack(j, "{s:I,s:I,s:I}", "sc", &score, "ss", &sub, "t", &t)
        != 0 || t < 0)
    {
        return NGX_ERROR;
    }

    w->score = score;
    w->subscore = sub;
    w->reached_ms = t;

    return NGX_OK;
}


/*
 * Send "records" to put.  The command lives in "pool", which must outlive
 * it (a NOSCRIPT answer sends it again from there).  NGX_AGAIN: "handler"
 * will be called.
 */
ngx_int_t
ngx_game_lb_put(ngx_game_lb_main_conf_t *lmcf, ngx_pool_t *pool,
    ngx_log_t *log, ngx_str_t *records, ngx_game_redis_handler_pt handler,
    void *data)
{
    ngx_game_redis_cmd_t   *cmd;
    ngx_game_redis_args_t   a;

    cmd = ngx_game_redis_cmd_create(pool, log);
    if (cmd == NULL) {
        return NGX_ERROR;
    }

    cmd->handler = handler;
    cmd->data = data;

    ngx_memzero(&a, sizeof(ngx_game_redis_args_t));
    ngx_game_redis_arg_str(&a, records);

    return ngx_game_redis_eval(lmcf->redis, cmd, &ngx_game_lb_put_lua, 0,
                               a.argc, a.argv, a.argvlen);
}
