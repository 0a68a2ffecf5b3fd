-- 006_match_outcomes.sql: a match's result says what it meant for each
-- player, so that other services (rewards, progression, leaderboards) act
-- on the matchmaker's reading of it rather than each reading the game
-- server's result its own way.
--
-- mm_result_apply now returns each player's outcome (win, loss, draw,
-- abandoned; flagged; kills, deaths; ratings), which the matchmaking
-- module publishes on the stream mm:outcomes once per match.  Experience
-- and levels move to the economy, which consumes those outcomes: the
-- matchmaker keeps ratings only.


-- What a match that ended with a result meant for its players.
CREATE FUNCTION mm_match_outcome(p_match uuid, p_outcome text)
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
                'kills', coalesce((gp.stats->>'kills')::bigint, 0),
                'deaths', coalesce((gp.stats->>'deaths')::bigint, 0),
                'rating_before', gp.rating_before,
                'rating_after', gp.rating_after) ORDER BY gp.player_id)
              FROM game_session_players gp
             WHERE gp.session_id = s.id), '[]'::jsonb))
      FROM game_sessions s
     WHERE s.id = p_match;
$$;


DROP FUNCTION mm_result_apply(uuid, text, jsonb, jsonb);

-- Apply a game server's result (gameserver/PROTOCOL.md), in one
-- transaction, and say what it meant for each player.  Answers
--   {"outcome": "applied" | "duplicate", "match_id", "mode", "region",
--    "reason", "duration_ms", "players": [{"player_id", "team", "result",
--    "flagged", "kills", "deaths", "rating_before", "rating_after"}]}
-- (result: win, loss, draw, or abandoned for an aborted match), or
--   {"outcome": "wrong_server"} | {"outcome": "unknown"}.
-- "duplicate" (the session already ended with a result) still carries the
-- players, so that a caller who crashed before passing them on can.
-- p_session opens a session the matchmaker could not record (004).
CREATE FUNCTION mm_result_apply(p_match uuid, p_server text, p_result jsonb,
                                p_session jsonb)
RETURNS jsonb
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
            RETURN jsonb_build_object('outcome', 'unknown');
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
        RETURN jsonb_build_object('outcome', 'wrong_server');
    END IF;

    IF s.status IN ('finished', 'aborted') THEN
        RETURN mm_match_outcome(p_match, 'duplicate');
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
        RETURN mm_match_outcome(p_match, 'applied');
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

    -- experience, levels and currency are the economy's, from the
    -- outcome this returns (ngx_modules/economy)
    RETURN mm_match_outcome(p_match, 'applied');
END;
$$;
