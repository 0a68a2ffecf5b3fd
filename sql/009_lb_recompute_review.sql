-- 009_lb_recompute_review.sql: a leaderboard recompute honours the
-- anti-cheat review (game_lb_exclude_flagged), as the live path does.
--
-- From the stream, a player under review when their match's outcome comes
-- scores nothing (mm_outcome_review_excluded, 008).  lb_recompute (007)
-- rebuilt a season from the match history without looking at the review,
-- so a recompute gave back the scores the live path had withheld.  Review
-- has no history, so a recompute goes by the review as it stands now:
-- players under review get nothing, and a player an admin cleared gets
-- back, on the next recompute, what their matches earned while they were
-- under review (the way to restore a false positive's board).
--
-- The two-argument form stays, excluding no one beyond 007's rules, so
-- that an nginx still running the previous modules during an upgrade
-- keeps working.


CREATE FUNCTION lb_recompute(p_board jsonb, p_test boolean,
                             p_exclude_review boolean)
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
       AND NOT (p_exclude_review AND tel_player_flagged(gp.player_id))
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

COMMENT ON FUNCTION lb_recompute(jsonb, boolean, boolean) IS
    'POST /admin/leaderboards/{name}/recompute: the live season again from '
    'the match history; with p_exclude_review, players now under anti-cheat '
    'review (tel_player_flagged) get nothing.';


CREATE OR REPLACE FUNCTION lb_recompute(p_board jsonb, p_test boolean)
RETURNS jsonb
LANGUAGE sql AS $$
    SELECT lb_recompute(p_board, p_test, false);
$$;
