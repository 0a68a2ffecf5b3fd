-- 007_leaderboards.sql: leaderboards and seasons (ngx_modules/leaderboard).
--
-- Boards are declared in nginx.conf (game_leaderboard), not here: nginx
-- passes their definitions ({name, sort, op, source, mode, reset,
-- regions}) to the functions below, which keep the scores.  PostgreSQL is
-- the source of truth; Redis sorted sets are rebuilt from it.
--
--   leaderboard_entries   one row per (board, season, region, player): the
--                         live seasons; region '*' is the global board
--   leaderboard_seasons   every season a board had, and when it was
--                         archived
--   leaderboard_archive   finished seasons, frozen with their final ranks
--   leaderboard_applied   which match (source) a board took, so that an
--                         outcome delivered twice changes nothing
--   leaderboard_barred    players an admin removed: no scores any more
--   leaderboard_outbox    entries removed here that Redis must drop
--                         (erasure, admin removal), read by the module
--   leaderboard_clock     a test clock, honoured only when nginx says so
--
-- Order on a board: (score, subscore) in the board's direction, then the
-- earlier time it was reached, then the player id.  reached_at is kept to
-- the millisecond so that PostgreSQL and Redis (which encodes it in the
-- member) order alike.


CREATE SEQUENCE leaderboard_version_seq;

COMMENT ON SEQUENCE leaderboard_version_seq IS
    'Every change of an entry (and every removal) takes a new version: '
    'Redis takes a write only if it is newer than what it holds, so '
    'writes that cross (two matches, a rebuild) never go back in time.';


ALTER TABLE leaderboard_entries
    ADD COLUMN season text NOT NULL DEFAULT 'all'
        CONSTRAINT leaderboard_entries_season_format
        CHECK (season ~ '^[a-z0-9][a-z0-9-]{0,31}$'),
    -- '*': the global board; else the region of the matches it counts
    ADD COLUMN region text NOT NULL DEFAULT '*'
        CONSTRAINT leaderboard_entries_region_format
        CHECK (region = '*' OR region ~ '^[a-z0-9][a-z0-9_.-]{0,63}$'),
    ADD COLUMN reached_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN version bigint NOT NULL
        DEFAULT nextval('leaderboard_version_seq'),
    DROP CONSTRAINT leaderboard_entries_pkey,
    ADD PRIMARY KEY (leaderboard, season, region, player_id);

-- ranks are Redis's business for live seasons, and the archive's for
-- finished ones: this index of 001 has no reader any more
DROP INDEX leaderboard_entries_rank_idx;


CREATE TABLE leaderboard_seasons (
    leaderboard  text        NOT NULL,
    season       text        NOT NULL,
    starts_at    timestamptz NOT NULL,
    ends_at      timestamptz NULL,          -- NULL: a board that never resets
    archived_at  timestamptz NULL,
    entries      bigint      NULL,          -- archived rows
    PRIMARY KEY (leaderboard, season)
);

CREATE INDEX leaderboard_seasons_open_idx
    ON leaderboard_seasons (leaderboard) WHERE archived_at IS NULL;


CREATE TABLE leaderboard_archive (
    leaderboard  text        NOT NULL,
    season       text        NOT NULL,
    region       text        NOT NULL,
    rank         bigint      NOT NULL CONSTRAINT leaderboard_archive_rank
        CHECK (rank >= 1),
    player_id    uuid        NOT NULL REFERENCES players (id)
        ON DELETE CASCADE,
    score        bigint      NOT NULL,
    subscore     bigint      NOT NULL,
    reached_at   timestamptz NOT NULL,
    PRIMARY KEY (leaderboard, season, region, rank),
    UNIQUE (leaderboard, season, region, player_id)
);

CREATE INDEX leaderboard_archive_player_idx
    ON leaderboard_archive (player_id);


CREATE TABLE leaderboard_applied (
    source_id    text        NOT NULL,      -- "match:<uuid>"
    leaderboard  text        NOT NULL,
    applied_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source_id, leaderboard)
);


CREATE TABLE leaderboard_barred (
    player_id    uuid        PRIMARY KEY REFERENCES players (id)
        ON DELETE CASCADE,
    actor        text        NOT NULL,
    reason       text        NOT NULL,
    barred_at    timestamptz NOT NULL DEFAULT now()
);


CREATE TABLE leaderboard_outbox (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    leaderboard  text        NOT NULL,
    season       text        NOT NULL,
    region       text        NOT NULL,
    player_id    uuid        NOT NULL,
    version      bigint      NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);


-- One row at most.  "now" for the leaderboards is now_at plus the time
-- passed since set_at, so that a test can put the clock a second before a
-- season's end and watch it pass.  Honoured only when the caller says it
-- runs with a test clock (game_lb_clock test): production ignores it.
CREATE TABLE leaderboard_clock (
    one          boolean     PRIMARY KEY DEFAULT true CHECK (one),
    now_at       timestamptz NOT NULL,
    set_at       timestamptz NOT NULL DEFAULT now()
);


CREATE FUNCTION lb_now(p_test boolean)
RETURNS timestamptz
LANGUAGE sql STABLE AS $$
    SELECT date_trunc('milliseconds',
                      CASE WHEN p_test
                           THEN coalesce((SELECT now_at + (now() - set_at)
                                            FROM leaderboard_clock), now())
                           ELSE now() END);
$$;


-- A season's id, start and end, by the board's reset, in UTC: "all",
-- "2026-11-29", "2026-w48" (ISO week, from Monday), "2026-11".
CREATE FUNCTION lb_season(p_reset text, p_at timestamptz)
RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_reset
        WHEN 'daily' THEN to_char(p_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')
        WHEN 'weekly' THEN to_char(p_at AT TIME ZONE 'UTC', 'IYYY-"w"IW')
        WHEN 'monthly' THEN to_char(p_at AT TIME ZONE 'UTC', 'YYYY-MM')
        ELSE 'all' END;
$$;

CREATE FUNCTION lb_season_start(p_reset text, p_at timestamptz)
RETURNS timestamptz
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_reset
        WHEN 'daily' THEN date_trunc('day', p_at AT TIME ZONE 'UTC')
        WHEN 'weekly' THEN date_trunc('week', p_at AT TIME ZONE 'UTC')
        WHEN 'monthly' THEN date_trunc('month', p_at AT TIME ZONE 'UTC')
        ELSE timestamp '2000-01-01' END AT TIME ZONE 'UTC';
$$;

CREATE FUNCTION lb_season_end(p_reset text, p_at timestamptz)
RETURNS timestamptz
LANGUAGE sql IMMUTABLE AS $$
    SELECT lb_season_start(p_reset, p_at) + CASE p_reset
        WHEN 'daily' THEN interval '1 day'
        WHEN 'weekly' THEN interval '1 week'
        WHEN 'monthly' THEN interval '1 month' END;
$$;


-- What a board takes from one player's outcome: {score, subscore}, or
-- NULL when the outcome gives it nothing.  Sources (game_leaderboard
-- source=): rating:<mode> (rating_after, rounded), kills[:<mode>] (kills,
-- subscore -deaths), wins[:<mode>] (1 for a win, else 0), matches[:<mode>]
-- (1), score[:<mode>] (the game's "score" when it reports one, else kills;
-- subscore -deaths).
CREATE FUNCTION lb_take(p_board jsonb, p jsonb)
RETURNS bigint[]
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_board->>'source'
        WHEN 'rating' THEN CASE WHEN p->'rating_after' IS NULL
                                  OR jsonb_typeof(p->'rating_after') <> 'number'
                                THEN NULL
                                ELSE ARRAY[round((p->>'rating_after')::numeric)::bigint, 0] END
        WHEN 'kills' THEN ARRAY[coalesce((p->>'kills')::bigint, 0),
                                -coalesce((p->>'deaths')::bigint, 0)]
        WHEN 'wins' THEN ARRAY[(p->>'result' = 'win')::integer::bigint, 0]
        WHEN 'matches' THEN ARRAY[1::bigint, 0]
        WHEN 'score' THEN ARRAY[coalesce((p->>'score')::bigint,
                                         (p->>'kills')::bigint, 0),
                                -coalesce((p->>'deaths')::bigint, 0)]
        END;
$$;


-- One entry takes (score, subscore) by the board's operator.  Returns
-- nothing: the caller reads the row back.
CREATE FUNCTION lb_put(p_board jsonb, p_season text, p_region text,
                       p_player uuid, p_score bigint, p_sub bigint,
                       p_at timestamptz)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    op    text := p_board->>'op';
    up    boolean := p_board->>'sort' = 'asc';
BEGIN
    IF op = 'set' THEN
        INSERT INTO leaderboard_entries AS e (leaderboard, season, region,
                                              player_id, score, subscore,
                                              reached_at)
        VALUES (p_board->>'name', p_season, p_region, p_player, p_score,
                p_sub, p_at)
        ON CONFLICT (leaderboard, season, region, player_id) DO UPDATE
           SET score = excluded.score, subscore = excluded.subscore,
               reached_at = excluded.reached_at,
               version = nextval('leaderboard_version_seq')
         WHERE (e.score, e.subscore) IS DISTINCT FROM
               (excluded.score, excluded.subscore);

    ELSIF op = 'incr' THEN
        IF p_score = 0 AND NOT EXISTS (
               SELECT 1 FROM leaderboard_entries
                WHERE leaderboard = p_board->>'name' AND season = p_season
                  AND region = p_region AND player_id = p_player)
        THEN
            RETURN;     -- nothing gained: no entry of zero
        END IF;

        INSERT INTO leaderboard_entries AS e (leaderboard, season, region,
                                              player_id, score, subscore,
                                              reached_at)
        VALUES (p_board->>'name', p_season, p_region, p_player, p_score,
                p_sub, p_at)
        ON CONFLICT (leaderboard, season, region, player_id) DO UPDATE
           SET score = e.score + excluded.score,
               subscore = e.subscore + excluded.subscore,
               reached_at = excluded.reached_at,
               version = nextval('leaderboard_version_seq')
         WHERE excluded.score <> 0 OR excluded.subscore <> 0;

    ELSE    -- best: the whole (score, subscore) tuple must be better
        INSERT INTO leaderboard_entries AS e (leaderboard, season, region,
                                              player_id, score, subscore,
                                              reached_at)
        VALUES (p_board->>'name', p_season, p_region, p_player, p_score,
                p_sub, p_at)
        ON CONFLICT (leaderboard, season, region, player_id) DO UPDATE
           SET score = excluded.score, subscore = excluded.subscore,
               reached_at = excluded.reached_at,
               version = nextval('leaderboard_version_seq')
         WHERE CASE WHEN up
                    THEN (excluded.score, excluded.subscore)
                         < (e.score, e.subscore)
                    ELSE (excluded.score, excluded.subscore)
                         > (e.score, e.subscore) END;
    END IF;
END;
$$;


-- An entry as the module writes it to Redis.
CREATE FUNCTION lb_entry_json(e leaderboard_entries)
RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object('b', e.leaderboard, 's', e.season,
                              'r', e.region, 'p', e.player_id,
                              'sc', e.score, 'ss', e.subscore,
                              't', (extract(epoch FROM e.reached_at)
                                    * 1000)::bigint,
                              'v', e.version);
$$;


-- A match outcome (mm:outcomes, sql/006) on every board, once per board
-- and match.  Flagged players, abandoned results and barred players get
-- nothing.  Answers {"updates": [entry...]}: the entries of the match's
-- players as they now are, also when the match was taken before (so that
-- a redelivery after a lost Redis write writes them again).
CREATE FUNCTION lb_apply_outcome(p_outcome jsonb, p_boards jsonb,
                                 p_test boolean)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    now_     timestamptz := lb_now(p_test);
    src      text := 'match:' || (p_outcome->>'match_id')::uuid;
    mode_    text := p_outcome->>'mode';
    region_  text := p_outcome->>'region';
    b        jsonb;
    p        jsonb;
    season_  text;
    took     bigint[];
    scoring  jsonb;
    ups      jsonb := '[]';
BEGIN
    IF region_ IS NULL OR region_ !~ '^[a-z0-9][a-z0-9_.-]{0,63}$' THEN
        region_ := NULL;
    END IF;

    -- who may score from this match, once for every board
    SELECT coalesce(jsonb_agg(x), '[]') INTO scoring
      FROM jsonb_array_elements(p_outcome->'players') x
     WHERE NOT coalesce((x->>'flagged')::boolean, false)
       AND x->>'result' IS DISTINCT FROM 'abandoned'
       AND EXISTS (SELECT 1 FROM players
                    WHERE id = (x->>'player_id')::uuid
                      AND deleted_at IS NULL)
       AND NOT EXISTS (SELECT 1 FROM leaderboard_barred
                        WHERE player_id = (x->>'player_id')::uuid);

    FOR b IN SELECT * FROM jsonb_array_elements(p_boards) LOOP
        IF b->>'mode' IS NOT NULL AND b->>'mode' IS DISTINCT FROM mode_ THEN
            CONTINUE;
        END IF;

        -- a recompute of the board (exclusive) waits for the matches in
        -- flight, and they for it
        PERFORM pg_advisory_xact_lock_shared(hashtext('leaderboard'),
                                             hashtext(b->>'name'));

        season_ := lb_season(b->>'reset', now_);
        INSERT INTO leaderboard_seasons (leaderboard, season, starts_at,
                                         ends_at)
        VALUES (b->>'name', season_, lb_season_start(b->>'reset', now_),
                lb_season_end(b->>'reset', now_))
        ON CONFLICT DO NOTHING;

        INSERT INTO leaderboard_applied (source_id, leaderboard)
        VALUES (src, b->>'name')
        ON CONFLICT DO NOTHING;

        IF FOUND THEN
            FOR p IN SELECT * FROM jsonb_array_elements(scoring) LOOP
                took := lb_take(b, p);
                CONTINUE WHEN took IS NULL;

                PERFORM lb_put(b, season_, '*', (p->>'player_id')::uuid,
                               took[1], took[2], now_);
                IF (b->>'regions')::boolean AND region_ IS NOT NULL THEN
                    PERFORM lb_put(b, season_, region_,
                                   (p->>'player_id')::uuid, took[1],
                                   took[2], now_);
                END IF;
            END LOOP;
        END IF;

        -- the entries as they now are, also for a match taken before:
        -- each by its whole primary key, so that no plan can scan a
        -- season (a young board's statistics may say it is tiny)
        FOR p IN SELECT * FROM jsonb_array_elements(p_outcome->'players')
        LOOP
            SELECT ups || coalesce(jsonb_agg(lb_entry_json(e)), '[]')
              INTO ups
              FROM leaderboard_entries e
             WHERE e.leaderboard = b->>'name' AND e.season = season_
               AND e.region = '*'
               AND e.player_id = (p->>'player_id')::uuid;

            IF (b->>'regions')::boolean AND region_ IS NOT NULL THEN
                SELECT ups || coalesce(jsonb_agg(lb_entry_json(e)), '[]')
                  INTO ups
                  FROM leaderboard_entries e
                 WHERE e.leaderboard = b->>'name' AND e.season = season_
                   AND e.region = region_
                   AND e.player_id = (p->>'player_id')::uuid;
            END IF;
        END LOOP;
    END LOOP;

    RETURN jsonb_build_object('updates', ups);
END;
$$;


-- The current season of every board, and the season work only one nginx
-- must do (the holder of the maintenance lease): archive every open
-- season that is over.  Answers {"now": ms, "current": {board: season},
-- "archived": [{"b", "s", "regions": [...]}]}.  p_archive false: only
-- "current" (every worker asks, each tick).
CREATE FUNCTION lb_seasons_tick(p_boards jsonb, p_test boolean,
                                p_archive boolean)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    now_     timestamptz := lb_now(p_test);
    b        jsonb;
    s        leaderboard_seasons%ROWTYPE;
    cur      jsonb := '{}';
    done     jsonb := '[]';
    season_  text;
    regions  jsonb;
    n        bigint;
BEGIN
    FOR b IN SELECT * FROM jsonb_array_elements(p_boards) LOOP
        season_ := lb_season(b->>'reset', now_);
        cur := cur || jsonb_build_object(b->>'name', season_);

        IF NOT p_archive THEN
            CONTINUE;
        END IF;

        INSERT INTO leaderboard_seasons (leaderboard, season, starts_at,
                                         ends_at)
        VALUES (b->>'name', season_, lb_season_start(b->>'reset', now_),
                lb_season_end(b->>'reset', now_))
        ON CONFLICT DO NOTHING;

        FOR s IN SELECT * FROM leaderboard_seasons
                  WHERE leaderboard = b->>'name' AND archived_at IS NULL
                    AND season <> season_
                  FOR UPDATE SKIP LOCKED
        LOOP
            PERFORM pg_advisory_xact_lock(hashtext('leaderboard'),
                                          hashtext(b->>'name'));

            SELECT coalesce(jsonb_agg(DISTINCT region), '[]')
              INTO regions
              FROM leaderboard_entries
             WHERE leaderboard = s.leaderboard AND season = s.season;

            INSERT INTO leaderboard_archive (leaderboard, season, region,
                                             rank, player_id, score,
                                             subscore, reached_at)
            SELECT leaderboard, season, region,
                   row_number() OVER (
                       PARTITION BY region
                       ORDER BY CASE WHEN b->>'sort' = 'asc' THEN score
                                     ELSE -score END,
                                CASE WHEN b->>'sort' = 'asc' THEN subscore
                                     ELSE -subscore END,
                                reached_at, player_id),
                   player_id, score, subscore, reached_at
              FROM leaderboard_entries
             WHERE leaderboard = s.leaderboard AND season = s.season;
            GET DIAGNOSTICS n = ROW_COUNT;

            DELETE FROM leaderboard_entries
             WHERE leaderboard = s.leaderboard AND season = s.season;

            UPDATE leaderboard_seasons
               SET archived_at = now(), entries = n,
                   ends_at = coalesce(ends_at, now_)
             WHERE leaderboard = s.leaderboard AND season = s.season;

            done := done || jsonb_build_array(jsonb_build_object(
                        'b', s.leaderboard, 's', s.season,
                        'regions', regions));
        END LOOP;
    END LOOP;

    RETURN jsonb_build_object('now', (extract(epoch FROM now_) * 1000)::bigint,
                              'current', cur, 'archived', done);
END;
$$;


-- A batch of a live season's entries for a rebuild of Redis, after
-- (region, player) in key order.
CREATE FUNCTION lb_rebuild_batch(p_board text, p_season text,
                                 p_region text, p_player uuid,
                                 p_limit integer)
RETURNS TABLE (region text, player_id text, score bigint, subscore bigint,
               reached_ms bigint, version bigint)
LANGUAGE sql STABLE AS $$
    SELECT e.region, e.player_id::text, e.score, e.subscore,
           (extract(epoch FROM e.reached_at) * 1000)::bigint, e.version
      FROM leaderboard_entries e
     WHERE e.leaderboard = p_board AND e.season = p_season
       AND (e.region, e.player_id) > (p_region, p_player)
     ORDER BY e.region, e.player_id
     LIMIT p_limit;
$$;


-- Which season "previous" or an id means for a board: the season's id if
-- it is archived (previous: the last archived season that started before
-- the current one), else NULL.
CREATE FUNCTION lb_archived_season(p_board text, p_season text,
                                   p_current text)
RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN p_season = 'previous' THEN
               (SELECT s.season FROM leaderboard_seasons s
                 WHERE s.leaderboard = p_board AND s.archived_at IS NOT NULL
                   AND s.starts_at < coalesce(
                           (SELECT c.starts_at FROM leaderboard_seasons c
                             WHERE c.leaderboard = p_board
                               AND c.season = p_current), 'infinity')
                 ORDER BY s.starts_at DESC LIMIT 1)
           ELSE
               (SELECT s.season FROM leaderboard_seasons s
                 WHERE s.leaderboard = p_board AND s.season = p_season
                   AND s.archived_at IS NOT NULL)
           END;
$$;


CREATE FUNCTION lb_archive_entries(p_board text, p_season text,
                                   p_region text, p_from bigint,
                                   p_to bigint)
RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'rank', a.rank, 'player_id', a.player_id,
               'username', p.username, 'score', a.score,
               'subscore', a.subscore,
               'updated_at', to_char(a.reached_at AT TIME ZONE 'UTC',
                                     'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
               ORDER BY a.rank), '[]')
      FROM leaderboard_archive a
      JOIN players p ON p.id = a.player_id AND p.deleted_at IS NULL
     WHERE a.leaderboard = p_board AND a.season = p_season
       AND a.region = p_region AND a.rank BETWEEN p_from AND p_to;
$$;


-- A page of an archived season: {season, entries, next_rank} after rank
-- p_after (keyset on the frozen ranks), or NULL for no such season.
CREATE FUNCTION lb_archive_page(p_board text, p_season text, p_current text,
                                p_region text, p_after bigint,
                                p_limit integer)
RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    season_  text := lb_archived_season(p_board, p_season, p_current);
    last_    bigint;
    entries  jsonb;
BEGIN
    IF season_ IS NULL THEN
        RETURN NULL;
    END IF;

    -- ranks of erased players are gone: read on until the page is full
    SELECT max(rank) INTO last_
      FROM (SELECT a.rank FROM leaderboard_archive a
              JOIN players p ON p.id = a.player_id AND p.deleted_at IS NULL
             WHERE a.leaderboard = p_board AND a.season = season_
               AND a.region = p_region AND a.rank > p_after
             ORDER BY a.rank LIMIT p_limit) r;

    entries := lb_archive_entries(p_board, season_, p_region, p_after + 1,
                                  coalesce(last_, p_after));

    RETURN jsonb_build_object(
        'season', season_, 'entries', entries,
        'next_rank', CASE WHEN jsonb_array_length(entries) = p_limit
                            AND EXISTS (SELECT 1 FROM leaderboard_archive
                                         WHERE leaderboard = p_board
                                           AND season = season_
                                           AND region = p_region
                                           AND rank > last_)
                          THEN last_ END);
END;
$$;


-- A player and their neighbours in an archived season: {season, entries}
-- or {season} alone when the player has no entry; NULL: no such season.
CREATE FUNCTION lb_archive_around(p_board text, p_season text,
                                  p_current text, p_region text,
                                  p_player uuid, p_limit integer)
RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    season_  text := lb_archived_season(p_board, p_season, p_current);
    me       bigint;
    last_    bigint;
    from_    bigint;
BEGIN
    IF season_ IS NULL THEN
        RETURN NULL;
    END IF;

    SELECT a.rank INTO me FROM leaderboard_archive a
      JOIN players p ON p.id = a.player_id AND p.deleted_at IS NULL
     WHERE a.leaderboard = p_board AND a.season = season_
       AND a.region = p_region AND a.player_id = p_player;

    IF me IS NULL THEN
        RETURN jsonb_build_object('season', season_);
    END IF;

    SELECT max(rank) INTO last_ FROM leaderboard_archive
     WHERE leaderboard = p_board AND season = season_ AND region = p_region;

    from_ := greatest(1, least(me - (p_limit - 1) / 2,
                               last_ - p_limit + 1));

    RETURN jsonb_build_object('season', season_, 'entries',
               lb_archive_entries(p_board, season_, p_region, from_,
                                  from_ + p_limit - 1));
END;
$$;


-- GET /player/{id}/stats: the per-mode stats the economy counts
-- (player_stats, 005) and the ratings (player_ratings); NULL for no such
-- (or an erased) player.  Ranks come from Redis.
CREATE FUNCTION lb_player_stats(p_player uuid)
RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'player_id', p.id, 'username', p.username,
        'modes', coalesce((
            SELECT jsonb_object_agg(m.mode, jsonb_build_object(
                'matches', coalesce(s.matches, 0),
                'wins', coalesce(s.wins, 0),
                'losses', coalesce(s.losses, 0),
                'draws', coalesce(s.draws, 0),
                'kills', coalesce(s.kills, 0),
                'deaths', coalesce(s.deaths, 0),
                'playtime_ms', coalesce(s.playtime_ms, 0),
                'rating', round(r.rating::numeric, 1)))
              FROM (SELECT mode FROM player_stats WHERE player_id = p.id
                    UNION
                    SELECT mode FROM player_ratings WHERE player_id = p.id) m
              LEFT JOIN player_stats s
                ON s.player_id = p.id AND s.mode = m.mode
              LEFT JOIN player_ratings r
                ON r.player_id = p.id AND r.mode = m.mode), '{}'))
      FROM players p
     WHERE p.id = p_player AND p.deleted_at IS NULL;
$$;


-- Removal: a player's entries go from every board and season (live and
-- archived), and what Redis must drop goes to the outbox.
CREATE FUNCTION lb_remove_player(p_player uuid)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    gone  jsonb;
BEGIN
    WITH d AS (
        DELETE FROM leaderboard_entries WHERE player_id = p_player
        RETURNING leaderboard, season, region, player_id
    ), o AS (
        INSERT INTO leaderboard_outbox (leaderboard, season, region,
                                        player_id, version)
        SELECT leaderboard, season, region, player_id,
               nextval('leaderboard_version_seq')
          FROM d
        RETURNING *
    )
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'id', o.id, 'b', o.leaderboard, 's', o.season,
               'r', o.region, 'p', o.player_id, 'v', o.version)), '[]')
      INTO gone FROM o;

    DELETE FROM leaderboard_archive WHERE player_id = p_player;

    RETURN gone;
END;
$$;


-- An erased player (auth_erase_player, 002) leaves every board at once.
CREATE FUNCTION lb_player_erased()
RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM lb_remove_player(NEW.id);
    RETURN NULL;
END;
$$;

CREATE TRIGGER players_leaderboards_erased
    AFTER UPDATE OF deleted_at ON players
    FOR EACH ROW
    WHEN (OLD.deleted_at IS NULL AND NEW.deleted_at IS NOT NULL)
    EXECUTE FUNCTION lb_player_erased();


-- POST /admin/leaderboards/players/{id}/remove: the entries go, and the
-- player (a cheater) takes no score from then on.  {player_id, removed,
-- gone: [...]} or NULL for no such player.
CREATE FUNCTION lb_admin_remove(p_player uuid, p_actor text, p_reason text)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    gone  jsonb;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM players WHERE id = p_player) THEN
        RETURN NULL;
    END IF;

    INSERT INTO leaderboard_barred (player_id, actor, reason)
    VALUES (p_player, p_actor, p_reason)
    ON CONFLICT (player_id) DO UPDATE
       SET actor = excluded.actor, reason = excluded.reason;

    gone := lb_remove_player(p_player);

    RETURN jsonb_build_object('player_id', p_player,
                              'removed', jsonb_array_length(gone),
                              'gone', gone);
END;
$$;


-- The outbox: removals Redis has not taken yet, oldest first; and the
-- rows it has taken.
CREATE FUNCTION lb_outbox_read(p_limit integer)
RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'id', id, 'b', leaderboard, 's', season, 'r', region,
               'p', player_id, 'v', version) ORDER BY id), '[]')
      FROM (SELECT * FROM leaderboard_outbox ORDER BY id LIMIT p_limit) o;
$$;

CREATE FUNCTION lb_outbox_done(p_ids jsonb)
RETURNS integer
LANGUAGE sql AS $$
    WITH d AS (
        DELETE FROM leaderboard_outbox
         WHERE id IN (SELECT (jsonb_array_elements_text(p_ids))::bigint)
        RETURNING 1)
    SELECT count(*)::integer FROM d;
$$;


-- POST /admin/leaderboards/{name}/recompute: the board's live season
-- again from the match history (game_sessions that finished in the
-- season, game_session_players), by its source and operator; flagged,
-- abandoned and barred players get nothing, as from the stream.  Every
-- match it counted is marked taken, so that its outcome, should it still
-- come, changes nothing.  Answers {leaderboard, season, entries, regions}
-- (regions: every region the season had before or has now, whose Redis
-- keys the caller drops for a rebuild).
CREATE FUNCTION lb_recompute(p_board jsonb, p_test boolean)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    now_     timestamptz := lb_now(p_test);
    name_    text := p_board->>'name';
    season_  text := lb_season(p_board->>'reset', now_);
    from_    timestamptz := lb_season_start(p_board->>'reset', now_);
    to_      timestamptz := coalesce(lb_season_end(p_board->>'reset', now_),
                                     'infinity');
    up       boolean := p_board->>'sort' = 'asc';
    op       text := p_board->>'op';
    before   jsonb;
    n        bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('leaderboard'), hashtext(name_));

    SELECT coalesce(jsonb_agg(DISTINCT region), '[]') INTO before
      FROM leaderboard_entries WHERE leaderboard = name_ AND season = season_;

    DELETE FROM leaderboard_entries
     WHERE leaderboard = name_ AND season = season_;

    CREATE TEMPORARY TABLE lb_events ON COMMIT DROP AS
    SELECT s.id AS match_id, gp.player_id, s.region,
           date_trunc('milliseconds', s.ended_at) AS at,
           lb_take(p_board, jsonb_build_object(
               'result', gp.result,
               'kills', coalesce((gp.stats->>'kills')::bigint, 0),
               'deaths', coalesce((gp.stats->>'deaths')::bigint, 0),
               'rating_after', to_jsonb(gp.rating_after))) AS took
      FROM game_sessions s
      JOIN game_session_players gp ON gp.session_id = s.id
      JOIN players pl ON pl.id = gp.player_id AND pl.deleted_at IS NULL
     WHERE s.status = 'finished' AND s.ended_at >= from_ AND s.ended_at < to_
       AND (p_board->>'mode' IS NULL OR s.mode = p_board->>'mode')
       AND gp.result IS DISTINCT FROM 'abandoned'
       AND NOT coalesce((gp.stats->>'flagged')::boolean, false)
       AND NOT EXISTS (SELECT 1 FROM leaderboard_barred b
                        WHERE b.player_id = gp.player_id);

    DELETE FROM lb_events WHERE took IS NULL;

    -- the global board, and a board per region when the board has them
    CREATE TEMPORARY TABLE lb_scoped ON COMMIT DROP AS
    SELECT '*'::text AS region, player_id, at, took, match_id FROM lb_events
    UNION ALL
    SELECT region, player_id, at, took, match_id FROM lb_events
     WHERE (p_board->>'regions')::boolean;

    IF op = 'incr' THEN
        INSERT INTO leaderboard_entries (leaderboard, season, region,
                                         player_id, score, subscore,
                                         reached_at)
        SELECT name_, season_, region, player_id, sum(took[1]),
               sum(took[2]), max(at) FILTER (WHERE took[1] <> 0
                                             OR took[2] <> 0)
          FROM lb_scoped
         GROUP BY region, player_id
        HAVING bool_or(took[1] <> 0);

    ELSIF op = 'set' THEN
        INSERT INTO leaderboard_entries (leaderboard, season, region,
                                         player_id, score, subscore,
                                         reached_at)
        SELECT DISTINCT ON (region, player_id) name_, season_, region,
               player_id, took[1], took[2], at
          FROM lb_scoped
         ORDER BY region, player_id, at DESC, match_id DESC;

    ELSE
        INSERT INTO leaderboard_entries (leaderboard, season, region,
                                         player_id, score, subscore,
                                         reached_at)
        SELECT DISTINCT ON (region, player_id) name_, season_, region,
               player_id, took[1], took[2], at
          FROM lb_scoped
         ORDER BY region, player_id,
                  CASE WHEN up THEN took[1] ELSE -took[1] END,
                  CASE WHEN up THEN took[2] ELSE -took[2] END,
                  at, match_id;
    END IF;

    GET DIAGNOSTICS n = ROW_COUNT;

    INSERT INTO leaderboard_applied (source_id, leaderboard)
    SELECT DISTINCT 'match:' || match_id, name_ FROM lb_events
    ON CONFLICT DO NOTHING;

    INSERT INTO leaderboard_seasons (leaderboard, season, starts_at, ends_at)
    VALUES (name_, season_, from_, lb_season_end(p_board->>'reset', now_))
    ON CONFLICT DO NOTHING;

    RETURN jsonb_build_object(
        'leaderboard', name_, 'season', season_, 'entries', n,
        'regions', (SELECT coalesce(jsonb_agg(DISTINCT r), '[]')
                      FROM (SELECT jsonb_array_elements_text(before) AS r
                            UNION
                            SELECT region FROM leaderboard_entries
                             WHERE leaderboard = name_
                               AND season = season_) x));
END;
$$;
