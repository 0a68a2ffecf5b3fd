-- 004_match_lifecycle.sql: every game session ends, also when its server
-- is lost, and a result is applied once, from the server of its match.
--
-- A session's states are now
--   allocated -> playing -> finished | aborted
--   allocated | playing -> lost      (the matchmaker saw its server go)
-- "lost" is not final: a result that arrives after all (the server was
-- only cut off from Redis for a while) is applied, and ends the session
-- as finished or aborted.

ALTER TABLE game_sessions
    DROP CONSTRAINT game_sessions_status_valid,
    ADD CONSTRAINT game_sessions_status_valid
        CHECK (status IN ('allocated', 'playing', 'finished', 'aborted',
                          'lost')),
    DROP CONSTRAINT game_sessions_ended_iff_over,
    ADD CONSTRAINT game_sessions_ended_iff_over
        CHECK ((status IN ('finished', 'aborted', 'lost'))
               = (ended_at IS NOT NULL));

COMMENT ON TABLE game_sessions IS
    'One row per match, from allocation on a game server to its end. '
    'status: allocated -> playing -> finished, or -> aborted from either; '
    '-> lost when its server went away without a result (a late result '
    'still applies).';


-- The matchmaker saw the server start the match (it went Playing).
CREATE FUNCTION mm_session_started(p_match uuid)
RETURNS void
LANGUAGE sql AS $$
    UPDATE game_sessions
       SET status = 'playing', started_at = coalesce(started_at, now())
     WHERE id = p_match AND status = 'allocated';
$$;


-- The matchmaker saw the server of a match go away without a result: the
-- players were released; the session says so until a result comes.
CREATE FUNCTION mm_session_lost(p_match uuid)
RETURNS void
LANGUAGE sql AS $$
    UPDATE game_sessions
       SET status = 'lost',
           started_at = coalesce(started_at, now()),
           ended_at = now(),
           metadata = metadata || jsonb_build_object('reason', 'server_lost')
     WHERE id = p_match AND status IN ('allocated', 'playing');
$$;


DROP FUNCTION mm_result_apply(uuid, jsonb);

-- Apply a game server's result (gameserver/PROTOCOL.md), in one
-- transaction.  Answers
--   'applied'       done;
--   'duplicate'     the session already ended with a result: nothing
--                   changes, so a result delivered twice is harmless;
--   'wrong_server'  the result comes from a server that was not given the
--                   match: refused;
--   'unknown'       no such session, and no way to open it.
-- p_session, when the session is missing (the matchmaker could not record
-- it: the database was down), opens it first: {"mode", "region",
-- "server_id", "server_host", "server_port", "players": [{"player_id",
-- "team"}]}, from the match's record in Redis.
CREATE FUNCTION mm_result_apply(p_match uuid, p_server text, p_result jsonb,
                                p_session jsonb)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    s           game_sessions%ROWTYPE;
    winner      uuid;
    win_team    smallint;
    team_count  integer;
    mean0       double precision;
    mean1       double precision;
    aborted     boolean;
    k           constant double precision := 32;
BEGIN
    SELECT * INTO s FROM game_sessions WHERE id = p_match FOR UPDATE;

    IF NOT FOUND THEN
        IF p_session IS NULL THEN
            RETURN 'unknown';
        END IF;

        PERFORM mm_session_open(p_match, p_session->>'mode',
                                p_session->>'region',
                                p_session->>'server_id',
                                p_session->>'server_host',
                                (p_session->>'server_port')::integer,
                                p_session->'players');

        SELECT * INTO s FROM game_sessions WHERE id = p_match FOR UPDATE;
    END IF;

    IF s.server_id IS DISTINCT FROM p_server THEN
        RETURN 'wrong_server';
    END IF;

    IF s.status IN ('finished', 'aborted') THEN
        RETURN 'duplicate';
    END IF;

    aborted := p_result->>'reason' = 'abort';

    -- the server's clock may run ahead of ours: the end is never before
    -- the start
    s.started_at := coalesce(s.started_at,
                             to_timestamp((p_result->>'started_at_ms')::bigint
                                          / 1000.0),
                             now());

    UPDATE game_sessions
       SET status = CASE WHEN aborted THEN 'aborted' ELSE 'finished' END,
           started_at = s.started_at,
           ended_at = greatest(now(), s.started_at),
           metadata = metadata || jsonb_build_object(
               'reason', p_result->>'reason',
               'duration_ms', p_result->'duration_ms',
               'violations', p_result->'violations',
               'flagged_players', p_result->'flagged_players')
     WHERE id = p_match;

    -- per-player stats; ids the session does not know are ignored
    UPDATE game_session_players gp
       SET stats = jsonb_build_object(
               'kills', r.kills, 'deaths', r.deaths, 'shots', r.shots,
               'hits', r.hits, 'violations', r.violations,
               'flagged', r.flagged, 'connected', r.connected),
           score = r.kills,
           left_at = now()
      FROM jsonb_to_recordset(p_result->'players')
           AS r(id text, kills bigint, deaths bigint, shots bigint,
                hits bigint, violations jsonb, flagged boolean,
                connected boolean)
     WHERE gp.session_id = p_match AND gp.player_id::text = r.id;

    IF aborted THEN
        UPDATE game_session_players
           SET result = 'abandoned'
         WHERE session_id = p_match;
        RETURN 'applied';
    END IF;

    winner := CASE WHEN p_result->>'winner' ~
                        '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
                   THEN (p_result->>'winner')::uuid END;

    SELECT team INTO win_team FROM game_session_players
     WHERE session_id = p_match AND player_id = winner;

    UPDATE game_session_players
       SET result = CASE WHEN win_team IS NULL THEN 'draw'
                         WHEN team = win_team THEN 'win'
                         ELSE 'loss' END
     WHERE session_id = p_match;

    -- ratings: every player gets a row for the mode
    INSERT INTO player_ratings (player_id, mode)
    SELECT player_id, s.mode FROM game_session_players
     WHERE session_id = p_match
    ON CONFLICT DO NOTHING;

    SELECT count(DISTINCT team) INTO team_count FROM game_session_players
     WHERE session_id = p_match AND team IS NOT NULL;

    IF team_count = 2 THEN
        SELECT avg(r.rating) FILTER (WHERE gp.team = 0),
               avg(r.rating) FILTER (WHERE gp.team = 1)
          INTO mean0, mean1
          FROM game_session_players gp
          JOIN player_ratings r
            ON r.player_id = gp.player_id AND r.mode = s.mode
         WHERE gp.session_id = p_match;

        UPDATE player_ratings r
           SET rating = r.rating + k * (
                   (CASE gp.result WHEN 'win' THEN 1.0
                                   WHEN 'loss' THEN 0.0 ELSE 0.5 END)
                   - 1.0 / (1.0 + power(10.0,
                         (CASE gp.team WHEN 0 THEN mean1 - mean0
                                       ELSE mean0 - mean1 END) / 400.0))),
               games_played = r.games_played + 1,
               last_played_at = now()
          FROM game_session_players gp
         WHERE gp.session_id = p_match AND r.player_id = gp.player_id
           AND r.mode = s.mode AND gp.team IN (0, 1);
    END IF;

    UPDATE game_session_players gp
       SET rating_before = coalesce(gp.rating_before, 1500),
           rating_after = r.rating
      FROM player_ratings r
     WHERE gp.session_id = p_match AND r.player_id = gp.player_id
       AND r.mode = s.mode;

    UPDATE players p
       SET xp = p.xp + CASE gp.result WHEN 'win' THEN 100 ELSE 40 END,
           level = 1 + (p.xp + CASE gp.result WHEN 'win' THEN 100
                                              ELSE 40 END) / 1000
      FROM game_session_players gp
     WHERE gp.session_id = p_match AND p.id = gp.player_id
       AND coalesce((gp.stats->>'flagged')::boolean, false) = false;

    RETURN 'applied';
END;
$$;
