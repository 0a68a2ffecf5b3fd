-- 008_telemetry.sql: telemetry ingestion and anti-cheat signals
-- (ngx_modules/telemetry).
--
-- Clients (POST /game/telemetry) and game servers (their agent thread) put
-- batches of events on Redis streams; the telemetry writer, a consumer of
-- the core's event bus in every nginx worker, loads them into game_events
-- (001) with tel_write(), one statement per read of the stream:
--
--   game_events       gains event_id (the producer's id: retries are
--                     dropped), seq (the order the events were accepted
--                     in) and source ('client' or 'server:<id>')
--   tel_seen          every event_id written within the dedupe window, in
--                     generations that are dropped whole (no DELETE of
--                     millions of rows); see tel_seen_rotate()
--   tel_evidence      the events an anti-cheat rule fired on, and the
--                     points it gave
--   tel_suspicion     a player's score; flagged_at once it passed the
--                     threshold: for a human to review, never a ban
--   tel_maintenance   the fencing token of the job that creates and
--                     expires partitions (one nginx at a time, under a
--                     Redis lease)
--
-- Erasure (auth_erase_player, 002) pseudonymises a player's events; events
-- that reach the writer after it are written pseudonymised too, and the
-- player's evidence and score go (players_telemetry_erased).


-- ---------------------------------------------------------------------------
-- The event log
-- ---------------------------------------------------------------------------

ALTER TABLE game_events
    -- the producer's UUID of the event; NULL for rows other modules write
    ADD COLUMN event_id uuid NULL,
    -- the order the events were accepted in: the stream entry's id
    -- (milliseconds << 22 | sequence << 10) plus the event's place in its
    -- batch.  A player's events in order: ORDER BY occurred_at, seq.
    ADD COLUMN seq bigint NULL,
    -- who sent it: 'client' (a player's token) or 'server:<server id>'
    ADD COLUMN source text NULL
        CONSTRAINT game_events_source_format
        CHECK (source ~ '^(client|server:[A-Za-z0-9_.:-]{1,128})$');


-- The event ids written recently, to drop retries.  A unique index on
-- game_events would have to include occurred_at (a partitioned table's
-- unique keys contain its partition key), and a client that sends the same
-- id again with another ts would get two rows; so the ids live here, keyed
-- by the id alone.  They are kept in generations: the writer adds to the
-- current one and looks into the previous one, and rotation (once per
-- dedupe window) starts a new generation and drops the one before the
-- previous, whole.  An id is therefore remembered for between one and two
-- windows after it was written; nginx refuses events older than the
-- window (game_tel_accept_age <= game_tel_dedupe_window), so a retry
-- within the window is always caught.
CREATE TABLE tel_seen_gen (
    singleton   boolean     PRIMARY KEY DEFAULT true
        CONSTRAINT tel_seen_gen_singleton CHECK (singleton),
    gen         integer     NOT NULL,
    rotated_at  timestamptz NOT NULL DEFAULT now()
);

INSERT INTO tel_seen_gen (gen) VALUES (1);

CREATE TABLE tel_seen (
    gen         integer     NOT NULL,
    event_id    uuid        NOT NULL,
    PRIMARY KEY (event_id, gen)
) PARTITION BY LIST (gen);

CREATE TABLE tel_seen_g0 PARTITION OF tel_seen FOR VALUES IN (0);
CREATE TABLE tel_seen_g1 PARTITION OF tel_seen FOR VALUES IN (1);

COMMENT ON TABLE tel_seen IS
    'Event ids written by tel_write(), in generations (tel_seen_gen): the '
    'writer checks the current and the previous one; tel_seen_rotate() '
    'drops older ones whole.';


-- ---------------------------------------------------------------------------
-- Anti-cheat: evidence and scores
-- ---------------------------------------------------------------------------

-- The events a rule fired on.  An event gives a rule's points once: a
-- batch delivered again adds nothing.
CREATE TABLE tel_evidence (
    event_id    uuid        NOT NULL,
    rule        text        NOT NULL
        CONSTRAINT tel_evidence_rule_format
        CHECK (rule ~ '^[a-z][a-z0-9_]{0,31}$'),
    player_id   uuid        NOT NULL,
    points      integer     NOT NULL
        CONSTRAINT tel_evidence_points_positive CHECK (points > 0),
    detail      jsonb       NOT NULL DEFAULT '{}',
    -- the event's time: with event_id, where it is in game_events
    occurred_at timestamptz NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, rule)
);

CREATE INDEX tel_evidence_player_idx ON tel_evidence (player_id, created_at);

-- A player's suspicion score: the sum of their evidence's points.  Past
-- the threshold the player is flagged for review; an admin clears the
-- flag (the score starts again from zero) or confirms it.  Nothing here
-- bans anybody.
CREATE TABLE tel_suspicion (
    player_id   uuid        PRIMARY KEY,
    score       bigint      NOT NULL DEFAULT 0
        CONSTRAINT tel_suspicion_score_nonnegative CHECK (score >= 0),
    flagged_at  timestamptz NULL,
    review      text        NULL
        CONSTRAINT tel_suspicion_review_valid
        CHECK (review IN ('cleared', 'confirmed')),
    reviewed_by text        NULL,
    reviewed_at timestamptz NULL,
    note        text        NULL
        CONSTRAINT tel_suspicion_note_length CHECK (char_length(note) <= 500),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX tel_suspicion_flagged_idx ON tel_suspicion (flagged_at, player_id)
    WHERE flagged_at IS NOT NULL;


-- Is the player flagged for review (and not cleared)?  Services that pay
-- or rank results (rewards, leaderboards) can leave such players out; the
-- matchmaker's outcomes carry it as "under_review" (mm_match_outcome,
-- below).
CREATE FUNCTION tel_player_flagged(p_player uuid)
RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT s.flagged_at IS NOT NULL
                       FROM tel_suspicion s
                      WHERE s.player_id = p_player), false);
$$;

COMMENT ON FUNCTION tel_player_flagged(uuid) IS
    'true while the anti-cheat rules have flagged the player for review '
    '(an admin''s "clear" ends it): rewards and leaderboards may exclude '
    'such players'' results.';


-- The matchmaker's outcome (006), with each player's review flag beside
-- the game server's own "flagged": a consumer excludes whichever it wants.
CREATE OR REPLACE FUNCTION mm_match_outcome(p_match uuid, p_outcome text)
RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'outcome', p_outcome,
        'match_id', s.id,
        'mode', s.mode,
        'region', s.region,
        'reason', s.metadata->>'reason',
        'duration_ms', coalesce((s.metadata->>'duration_ms')::bigint, 0),
        'players', coalesce((SELECT jsonb_agg(jsonb_build_object(
                'player_id', gp.player_id,
                'team', gp.team,
                'result', gp.result,
                'flagged', coalesce((gp.stats->>'flagged')::boolean, false),
                'under_review', tel_player_flagged(gp.player_id),
                'kills', coalesce((gp.stats->>'kills')::bigint, 0),
                'deaths', coalesce((gp.stats->>'deaths')::bigint, 0),
                'rating_before', gp.rating_before,
                'rating_after', gp.rating_after) ORDER BY gp.player_id)
              FROM game_session_players gp
             WHERE gp.session_id = s.id), '[]'::jsonb))
      FROM game_sessions s
     WHERE s.id = p_match;
$$;


-- The outcome as a consumer that excludes players under review sees it
-- (game_econ_exclude_flagged, game_lb_exclude_flagged): every player
-- flagged for review counts as flagged by the server, so that the
-- consumers' one rule ("flagged players get nothing") covers both.
CREATE FUNCTION mm_outcome_review_excluded(p_outcome jsonb)
RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN jsonb_typeof(p_outcome->'players') = 'array'
           THEN jsonb_set(p_outcome, '{players}', coalesce((
                SELECT jsonb_agg(CASE
                           WHEN jsonb_typeof(x) = 'object'
                                AND coalesce((x->>'under_review')::boolean,
                                             false)
                           THEN x || '{"flagged": true}'
                           ELSE x END ORDER BY n)
                  FROM jsonb_array_elements(p_outcome->'players')
                       WITH ORDINALITY AS t(x, n)), '[]'))
           ELSE p_outcome END;
$$;


-- An erased player leaves no trail here: their events are pseudonymised
-- by auth_erase_player, and evidence would name the events again.
CREATE FUNCTION tel_player_erased()
RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM tel_evidence WHERE player_id = NEW.id;
    DELETE FROM tel_suspicion WHERE player_id = NEW.id;
    RETURN NULL;
END;
$$;

CREATE TRIGGER players_telemetry_erased
    AFTER UPDATE OF deleted_at ON players
    FOR EACH ROW
    WHEN (OLD.deleted_at IS NULL AND NEW.deleted_at IS NOT NULL)
    EXECUTE FUNCTION tel_player_erased();


-- ---------------------------------------------------------------------------
-- The writer
-- ---------------------------------------------------------------------------

-- Load a read of the streams, in one transaction.
--
-- p_entries: [{"i": stream entry id, "s": "client" | "server:<id>",
--              "p": player id (client entries), "b": {"events": [...]}}]
--   events: {event_id, type, ts (ms), session_id?, payload, player_id?}
--   nginx checked them all against the types' schemas; a client entry's
--   player is its token's, whatever an event says; a server names each
--   event's player itself.
-- p_hits: what the anti-cheat rules found, [{"p": player, "e": event id,
--   "r": rule, "pts": points, "d": detail, "t": ts}], for the events of
--   this very call.
--
-- Every event is written once whatever happens: an id already in tel_seen
-- (a retry, an entry delivered again after a crash) is skipped, and so is
-- the second of two copies in one call.  The players named are locked
-- (FOR SHARE) before their events are written: an erasure that ran first
-- is seen (its player's events are written under a fresh alias), and one
-- that comes later waits for this transaction and then pseudonymises what
-- it wrote.  Returns the number of events written.
CREATE FUNCTION tel_write(p_entries jsonb, p_hits jsonb, p_threshold bigint)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    g        integer;
    written  integer;
BEGIN
    -- read before anything else: rotation takes this table's lock first
    SELECT t.gen INTO g FROM tel_seen_gen t;

    WITH ev AS (
        SELECT (x.e->>'event_id')::uuid AS event_id,
               to_timestamp((x.e->>'ts')::bigint / 1000.0) AS occurred_at,
               CASE WHEN b.entry->>'s' = 'client'
                    THEN (b.entry->>'p')::uuid
                    ELSE (x.e->>'player_id')::uuid END AS player_id,
               (x.e->>'session_id')::uuid AS session_id,
               x.e->>'type' AS kind,
               coalesce(x.e->'payload', '{}') AS payload,
               b.entry->>'s' AS source,
               (split_part(b.entry->>'i', '-', 1)::bigint << 22)
               | (least(split_part(b.entry->>'i', '-', 2)::bigint, 4095)
                  << 10)
               | (x.k - 1) AS seq
          FROM jsonb_array_elements(p_entries) AS b(entry),
               jsonb_array_elements(b.entry->'b'->'events')
                   WITH ORDINALITY AS x(e, k)
    ),
    one AS (
        SELECT DISTINCT ON (ev.event_id) ev.*
          FROM ev
         ORDER BY ev.event_id, ev.seq
    ),
    who AS (
        SELECT p.id,
               CASE WHEN p.deleted_at IS NOT NULL
                    THEN gen_random_uuid() END AS alias
          FROM players p
         WHERE p.id IN (SELECT DISTINCT one.player_id FROM one)
         ORDER BY p.id
           FOR SHARE
    ),
    fresh AS (
        INSERT INTO tel_seen (gen, event_id)
        SELECT g, one.event_id
          FROM one
         WHERE NOT EXISTS (SELECT 1 FROM tel_seen s
                            WHERE s.gen = g - 1
                              AND s.event_id = one.event_id)
        ON CONFLICT DO NOTHING
        RETURNING event_id
    )
    INSERT INTO game_events (occurred_at, player_id, session_id, kind,
                             payload, event_id, seq, source)
    SELECT one.occurred_at, coalesce(who.alias, one.player_id),
           one.session_id, one.kind, one.payload, one.event_id, one.seq,
           one.source
      FROM one
      JOIN fresh USING (event_id)
      LEFT JOIN who ON who.id = one.player_id
     ORDER BY one.seq;

    GET DIAGNOSTICS written = ROW_COUNT;

    IF jsonb_array_length(p_hits) > 0 THEN
        PERFORM tel_suspicion_add(p_hits, p_threshold);
    END IF;

    RETURN written;
END;
$$;


-- tel_write() of the entries the writer has just copied into its staging
-- table (game_tel_writer_copy_pg): tel_stage, a temporary table of the
-- writer's connection emptied at every commit, one row per entry (n: its
-- place in the read).  Same transaction, same exactly-once rules.
CREATE FUNCTION tel_write_staged(p_hits jsonb, p_threshold bigint)
RETURNS integer
LANGUAGE plpgsql AS $$
BEGIN
    RETURN tel_write(coalesce((SELECT jsonb_agg(s.entry ORDER BY s.n)
                                 FROM pg_temp.tel_stage s), '[]'),
                     p_hits, p_threshold);
END;
$$;


-- Evidence and scores, in the writer's transaction.  An event gives a rule
-- its points once; players unknown here or erased get nothing.  Players'
-- rows are updated in id order, as the writer locks them, so that two
-- writers never wait on each other in a circle.
CREATE FUNCTION tel_suspicion_add(p_hits jsonb, p_threshold bigint)
RETURNS void
LANGUAGE sql AS $$
    WITH h AS (
        SELECT (x->>'p')::uuid AS player_id, (x->>'e')::uuid AS event_id,
               x->>'r' AS rule, (x->>'pts')::integer AS points,
               coalesce(x->'d', '{}') AS detail,
               to_timestamp((x->>'t')::bigint / 1000.0) AS occurred_at
          FROM jsonb_array_elements(p_hits) AS x
    ),
    added AS (
        INSERT INTO tel_evidence (event_id, rule, player_id, points, detail,
                                  occurred_at)
        SELECT h.event_id, h.rule, h.player_id, h.points, h.detail,
               h.occurred_at
          FROM h
          JOIN players p ON p.id = h.player_id AND p.deleted_at IS NULL
        ON CONFLICT DO NOTHING
        RETURNING player_id, points
    ),
    sums AS (
        SELECT a.player_id, sum(a.points) AS points
          FROM added a
         GROUP BY a.player_id
    )
    INSERT INTO tel_suspicion AS s (player_id, score, flagged_at)
    SELECT sums.player_id, sums.points,
           CASE WHEN sums.points >= p_threshold THEN now() END
      FROM sums
     ORDER BY sums.player_id
    ON CONFLICT (player_id) DO UPDATE
       SET score = s.score + excluded.score,
           flagged_at = coalesce(s.flagged_at,
                                 CASE WHEN s.score + excluded.score
                                           >= p_threshold
                                      THEN now() END),
           updated_at = now();
$$;


-- ---------------------------------------------------------------------------
-- Admin: the flagged players, and their review
-- ---------------------------------------------------------------------------

-- GET /admin/telemetry/flagged: flagged players, most recent first, in
-- pages (keyset: "<flagged_at epoch µs>:<player id>"), each with its
-- latest evidence.  Answers {status, body}.
CREATE FUNCTION tel_flagged_list(p_limit integer, p_cursor text,
                                 p_evidence integer)
RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    c_at    timestamptz;
    c_id    uuid;
    rows_   jsonb;
    last_   record;
    n       integer;
BEGIN
    IF p_cursor IS NOT NULL THEN
        IF p_cursor !~ '^[0-9]{1,20}:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
        THEN
            RETURN jsonb_build_object('status', 422, 'body',
                jsonb_build_object('error', jsonb_build_object(
                    'code', 'invalid_cursor',
                    'message', 'the cursor is not one this endpoint gave')));
        END IF;
        c_at := to_timestamp(split_part(p_cursor, ':', 1)::numeric / 1e6);
        c_id := split_part(p_cursor, ':', 2)::uuid;
    END IF;

    WITH page AS (
        SELECT s.*
          FROM tel_suspicion s
         WHERE s.flagged_at IS NOT NULL
           AND (c_at IS NULL OR (s.flagged_at, s.player_id) < (c_at, c_id))
         ORDER BY s.flagged_at DESC, s.player_id DESC
         LIMIT p_limit
    )
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'player_id', page.player_id,
               'score', page.score,
               'flagged_at', page.flagged_at,
               'review', page.review,
               'reviewed_by', page.reviewed_by,
               'reviewed_at', page.reviewed_at,
               'evidence', coalesce((
                   SELECT jsonb_agg(jsonb_build_object(
                              'event_id', e.event_id, 'rule', e.rule,
                              'points', e.points, 'detail', e.detail,
                              'occurred_at', e.occurred_at)
                              ORDER BY e.created_at DESC, e.event_id)
                     FROM (SELECT * FROM tel_evidence e
                            WHERE e.player_id = page.player_id
                            ORDER BY e.created_at DESC, e.event_id
                            LIMIT p_evidence) e), '[]'))
               ORDER BY page.flagged_at DESC, page.player_id DESC), '[]'),
           count(*)
      INTO rows_, n
      FROM page;

    IF n = p_limit THEN
        SELECT s.flagged_at, s.player_id INTO last_
          FROM tel_suspicion s
         WHERE s.player_id = (rows_->(n - 1)->>'player_id')::uuid;
        RETURN jsonb_build_object('status', 200, 'body', jsonb_build_object(
            'players', rows_,
            'next_cursor', floor(extract(epoch FROM last_.flagged_at) * 1e6)
                           ::bigint::text || ':' || last_.player_id));
    END IF;

    RETURN jsonb_build_object('status', 200,
                              'body', jsonb_build_object('players', rows_));
END;
$$;


-- POST /admin/telemetry/players/{id}/review {decision, note?}: "clear"
-- lifts the flag and starts the score again from zero (the evidence
-- stays), "confirm" keeps the flag and says a human agreed.  Either way
-- the admin's name and the time are kept.  Answers {status, body}.
CREATE FUNCTION tel_review(p_player uuid, p_decision text, p_admin text,
                           p_note text)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    s  tel_suspicion%ROWTYPE;
BEGIN
    IF p_decision NOT IN ('clear', 'confirm') THEN
        RETURN jsonb_build_object('status', 422, 'body',
            jsonb_build_object('error', jsonb_build_object(
                'code', 'invalid_review',
                'message', 'a review is {"decision": "clear" | "confirm", '
                           '"note"?}')));
    END IF;

    UPDATE tel_suspicion t
       SET review = CASE p_decision WHEN 'clear' THEN 'cleared'
                                    ELSE 'confirmed' END,
           flagged_at = CASE p_decision WHEN 'clear' THEN NULL
                                        ELSE t.flagged_at END,
           score = CASE p_decision WHEN 'clear' THEN 0 ELSE t.score END,
           reviewed_by = p_admin, reviewed_at = now(),
           note = left(p_note, 500), updated_at = now()
     WHERE t.player_id = p_player AND t.flagged_at IS NOT NULL
    RETURNING * INTO s;

    IF NOT FOUND THEN
        RETURN jsonb_build_object('status', 404, 'body',
            jsonb_build_object('error', jsonb_build_object(
                'code', 'not_flagged',
                'message', 'this player is not flagged for review')));
    END IF;

    RETURN jsonb_build_object('status', 200, 'body', jsonb_build_object(
        'player_id', s.player_id, 'score', s.score,
        'flagged', s.flagged_at IS NOT NULL, 'review', s.review,
        'reviewed_by', s.reviewed_by, 'reviewed_at', s.reviewed_at));
END;
$$;


-- ---------------------------------------------------------------------------
-- Partitions and the dedupe window: the maintenance job
-- ---------------------------------------------------------------------------

-- The fence of the job's latest lease (Redis): a holder whose lease lapsed
-- while it was stalled carries an older token and is refused, so two
-- nginx never create, drop or rotate at once.
CREATE TABLE tel_maintenance (
    singleton   boolean     PRIMARY KEY DEFAULT true
        CONSTRAINT tel_maintenance_singleton CHECK (singleton),
    fence       bigint      NOT NULL DEFAULT 0,
    ran_at      timestamptz NULL,
    report      jsonb       NULL
);

INSERT INTO tel_maintenance DEFAULT VALUES;


-- The partitions of game_events but the default one, with their bounds.
-- Bounds are read back from the catalogue as ISO literals with their
-- offset, whatever the session's DateStyle and TimeZone.
CREATE FUNCTION tel_partitions()
RETURNS TABLE (name text, lo timestamptz, hi timestamptz)
LANGUAGE sql STABLE
SET datestyle = 'ISO, YMD'
AS $$
    SELECT c.relname::text,
           coalesce((regexp_match(pg_get_expr(c.relpartbound, c.oid),
                                  'FROM \(''([^'']+)''\)'))[1]::timestamptz,
                    '-infinity'),
           coalesce((regexp_match(pg_get_expr(c.relpartbound, c.oid),
                                  'TO \(''([^'']+)''\)'))[1]::timestamptz,
                    'infinity')
      FROM pg_inherits i
      JOIN pg_class c ON c.oid = i.inhrelid
     WHERE i.inhparent = 'game_events'::regclass
       AND pg_get_expr(c.relpartbound, c.oid) <> 'DEFAULT';
$$;


-- Create the partitions that cover [p_from, p_to), by UTC day or month
-- ('day' | 'month'), skipping what existing partitions cover.  A month
-- partly covered (days made under a daily setting) gets its missing days.
-- Rows that the default partition holds for a new partition's range move
-- into it (PostgreSQL refuses to create a partition whose rows sit in the
-- default one).  Returns how many it created.
CREATE FUNCTION tel_partitions_ensure(p_period text, p_from timestamptz,
                                      p_to timestamptz)
RETURNS integer
LANGUAGE plpgsql
SET datestyle = 'ISO, YMD'
AS $$
DECLARE
    step     interval;
    t        timestamp;
    day_     timestamp;
    created  integer := 0;
BEGIN
    IF p_period NOT IN ('day', 'month') THEN
        RAISE EXCEPTION 'period must be day or month, got %', p_period
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    step := CASE p_period WHEN 'day' THEN interval '1 day'
                          ELSE interval '1 month' END;
    t := date_trunc(p_period, p_from AT TIME ZONE 'UTC');

    WHILE t < p_to AT TIME ZONE 'UTC' LOOP
        IF NOT tel_partition_covers(t, t + step) THEN
            IF p_period = 'month' AND tel_partition_overlaps(t, t + step) THEN
                day_ := t;
                WHILE day_ < t + step LOOP
                    IF NOT tel_partition_covers(day_, day_ + interval '1 day')
                    THEN
                        PERFORM tel_partition_create(day_, 'day');
                        created := created + 1;
                    END IF;
                    day_ := day_ + interval '1 day';
                END LOOP;
            ELSE
                PERFORM tel_partition_create(t, p_period);
                created := created + 1;
            END IF;
        END IF;
        t := t + step;
    END LOOP;

    RETURN created;
END;
$$;


-- does one partition hold all of [lo, hi) (UTC)?
CREATE FUNCTION tel_partition_covers(p_lo timestamp, p_hi timestamp)
RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM tel_partitions() p
                    WHERE p.lo <= p_lo AT TIME ZONE 'UTC'
                      AND p.hi >= p_hi AT TIME ZONE 'UTC');
$$;

-- does any partition hold part of [lo, hi) (UTC)?
CREATE FUNCTION tel_partition_overlaps(p_lo timestamp, p_hi timestamp)
RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM tel_partitions() p
                    WHERE p.lo < p_hi AT TIME ZONE 'UTC'
                      AND p.hi > p_lo AT TIME ZONE 'UTC');
$$;


-- One partition from p_start (UTC) for a day or a month, named like 001's
-- monthly ones: game_events_yYYYYmMM, game_events_yYYYYmMMdDD.
CREATE FUNCTION tel_partition_create(p_start timestamp, p_period text)
RETURNS void
LANGUAGE plpgsql
SET datestyle = 'ISO, YMD'
AS $$
DECLARE
    nsp    text;
    name_  text;
    cols   text;
    lo     text;
    hi     text;
BEGIN
    SELECT n.nspname INTO nsp
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.oid = 'game_events'::regclass;

    name_ := 'game_events_' || to_char(p_start,
        CASE p_period WHEN 'day' THEN '"y"YYYY"m"MM"d"DD'
                      ELSE '"y"YYYY"m"MM' END);
    lo := to_char(p_start, 'YYYY-MM-DD HH24:MI:SS') || '+00';
    hi := to_char(p_start + CASE p_period WHEN 'day' THEN interval '1 day'
                                          ELSE interval '1 month' END,
                  'YYYY-MM-DD HH24:MI:SS') || '+00';

    -- serialise with other creators (001's job, another nginx) without
    -- stopping the writers until the table is created
    LOCK TABLE game_events IN SHARE UPDATE EXCLUSIVE MODE;

    IF EXISTS (SELECT 1 FROM game_events_default
                WHERE occurred_at >= lo::timestamptz
                  AND occurred_at < hi::timestamptz) THEN
        SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum)
          INTO cols
          FROM pg_attribute a
         WHERE a.attrelid = 'game_events'::regclass AND a.attnum > 0
           AND NOT a.attisdropped;
        EXECUTE format('CREATE TABLE %I.%I (LIKE game_events INCLUDING '
                       'DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE)',
                       nsp, name_);
        EXECUTE format('WITH moved AS (DELETE FROM %I.game_events_default '
                       'WHERE occurred_at >= %L AND occurred_at < %L '
                       'RETURNING %s) INSERT INTO %I.%I (%s) SELECT %s '
                       'FROM moved', nsp, lo, hi, cols, nsp, name_, cols,
                       cols);
        EXECUTE format('ALTER TABLE game_events ATTACH PARTITION %I.%I '
                       'FOR VALUES FROM (%L) TO (%L)', nsp, name_, lo, hi);
    ELSE
        EXECUTE format('CREATE TABLE %I.%I PARTITION OF game_events '
                       'FOR VALUES FROM (%L) TO (%L)', nsp, name_, lo, hi);
    END IF;
END;
$$;


-- Partitions wholly older than p_before are dropped, or detached (kept as
-- tables of their own, for an archive to take) with p_action 'detach'.
-- The default partition is never touched.  Returns their names.
CREATE FUNCTION tel_partitions_expire(p_before timestamptz, p_action text)
RETURNS text[]
LANGUAGE plpgsql AS $$
DECLARE
    p      record;
    gone   text[] := '{}';
BEGIN
    IF p_action NOT IN ('drop', 'detach') THEN
        RAISE EXCEPTION 'action must be drop or detach, got %', p_action
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    FOR p IN SELECT * FROM tel_partitions() t
              WHERE t.hi <= p_before ORDER BY t.lo LOOP
        IF p_action = 'drop' THEN
            EXECUTE format('DROP TABLE %I', p.name);
        ELSE
            EXECUTE format('ALTER TABLE game_events DETACH PARTITION %I',
                           p.name);
        END IF;
        gone := gone || p.name;
    END LOOP;

    RETURN gone;
END;
$$;


-- Start a new dedupe generation once the current one is p_window old, and
-- drop the one before the previous.  The lock on tel_seen_gen waits for
-- the writers that read the old generation and holds new ones back until
-- the switch commits, so that a writer never misses ids another wrote
-- into the generation it does not look at.  Returns the new generation,
-- or NULL when it is not time yet.
CREATE FUNCTION tel_seen_rotate(p_window interval)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    cur  tel_seen_gen%ROWTYPE;
BEGIN
    SELECT * INTO cur FROM tel_seen_gen;
    IF cur.rotated_at > now() - p_window THEN
        RETURN NULL;
    END IF;

    LOCK TABLE tel_seen_gen IN ACCESS EXCLUSIVE MODE;
    SELECT * INTO cur FROM tel_seen_gen;
    IF cur.rotated_at > now() - p_window THEN
        RETURN NULL;
    END IF;

    EXECUTE format('CREATE TABLE IF NOT EXISTS %I PARTITION OF tel_seen '
                   'FOR VALUES IN (%s)', 'tel_seen_g' || (cur.gen + 1),
                   cur.gen + 1);
    UPDATE tel_seen_gen SET gen = cur.gen + 1, rotated_at = now();
    EXECUTE format('DROP TABLE IF EXISTS %I', 'tel_seen_g' || (cur.gen - 1));

    RETURN cur.gen + 1;
END;
$$;


-- The job's pass, under its fencing token: partitions from p_behind ago
-- to p_ahead periods ahead, expiry past p_retention.  Answers
-- {"outcome": "done", "created", "expired"} or {"outcome": "stale",
-- "fence": the newest token seen}.
CREATE FUNCTION tel_maintain(p_fence bigint, p_period text, p_ahead integer,
                             p_behind interval, p_retention interval,
                             p_action text)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    created  integer;
    expired  text[];
    done_    jsonb;
BEGIN
    UPDATE tel_maintenance SET fence = p_fence WHERE fence <= p_fence;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('outcome', 'stale', 'fence',
                                  (SELECT m.fence::text
                                     FROM tel_maintenance m));
    END IF;

    created := tel_partitions_ensure(p_period, now() - p_behind,
        date_trunc(p_period, now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
        + (p_ahead + 1) * CASE p_period WHEN 'day' THEN interval '1 day'
                                        ELSE interval '1 month' END);
    expired := tel_partitions_expire(now() - p_retention, p_action);

    done_ := jsonb_build_object('outcome', 'done', 'created', created,
                                'expired', to_jsonb(expired));
    UPDATE tel_maintenance SET ran_at = now(), report = done_;

    RETURN done_;
END;
$$;


-- The dedupe window's pass, under the same token, in a transaction of its
-- own: it locks tel_seen_gen before tel_seen, as the writer does, and
-- nothing of game_events.
CREATE FUNCTION tel_maintain_dedupe(p_fence bigint, p_window interval)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    g  integer;
BEGIN
    PERFORM 1 FROM tel_maintenance WHERE fence <= p_fence FOR UPDATE;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('outcome', 'stale', 'fence',
                                  (SELECT m.fence::text
                                     FROM tel_maintenance m));
    END IF;

    g := tel_seen_rotate(p_window);

    RETURN jsonb_build_object('outcome', 'done', 'rotated_to', g);
END;
$$;


-- From the migration on, the month before this one is covered too:
-- nginx accepts events up to game_tel_accept_age old, and the job keeps
-- the window moving.
SELECT tel_partitions_ensure('month',
                             date_trunc('month', now()) - interval '1 month',
                             date_trunc('month', now()) + interval '4 months');
