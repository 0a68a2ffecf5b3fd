-- 003_match_results.sql: what the matchmaking module writes about matches.
--
-- Two functions, each one atomic round trip from nginx:
--   mm_session_open    when the matcher hands a match a server
--   mm_result_apply    when the game server's result arrives
--
-- Ratings: Elo between the teams of a match.  A team's strength is the
-- mean rating of its players; each player of a team moves by
--   K * (score - expected),  expected = 1 / (1 + 10 ^ ((other - own) / 400))
-- with K = 32, score 1 for the winning team, 0 for the losers and 0.5
-- each in a draw.  Only two-team matches move ratings.
--
-- Experience: 100 XP for a win, 40 for a loss or draw, level = 1 +
-- floor(xp / 1000).  Players flagged by the server for cheating get none.

CREATE FUNCTION mm_session_open(p_match uuid, p_mode text, p_region text,
                                p_server_id text, p_host text, p_port integer,
                                p_players jsonb)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO game_sessions (id, mode, region, server_id, server_host,
                               server_port, status)
    VALUES (p_match, p_mode, p_region, p_server_id, p_host, p_port,
            'allocated')
    ON CONFLICT (id) DO NOTHING;

    -- players arrive as [{"player_id": "...", "team": 0}, ...]
    INSERT INTO game_session_players (session_id, player_id, team,
                                      rating_before)
    SELECT p_match, p.player_id, p.team, r.rating
      FROM jsonb_to_recordset(p_players) AS p(player_id uuid, team smallint)
      JOIN players pl ON pl.id = p.player_id
      LEFT JOIN player_ratings r
             ON r.player_id = p.player_id AND r.mode = p_mode
    ON CONFLICT DO NOTHING;
END;
$$;


-- Apply a game server's result (gameserver/PROTOCOL.md).  Idempotent per
-- match: a result for a session already finished or aborted changes
-- nothing and answers 'duplicate', so the caller may acknowledge it.
-- 'unknown' when the match was not made by the matchmaker.
CREATE FUNCTION mm_result_apply(p_match uuid, p_result jsonb)
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
        RETURN 'unknown';
    END IF;

    IF s.status IN ('finished', 'aborted') THEN
        RETURN 'duplicate';
    END IF;

    aborted := p_result->>'reason' = 'abort';

    UPDATE game_sessions
       SET status = CASE WHEN aborted THEN 'aborted' ELSE 'finished' END,
           started_at = coalesce(started_at,
                                 to_timestamp((p_result->>'started_at_ms')::bigint
                                              / 1000.0),
                                 now()),
           ended_at = now(),
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
