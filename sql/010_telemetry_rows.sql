-- 010_telemetry_rows.sql: the telemetry writer's COPY load, typed.
--
-- With a COPY pool (game_tel_writer_copy_pg) the writer used to stage
-- one jsonb per stream entry (tel_write_staged, 008), which PostgreSQL
-- parsed, compressed (an entry is kilobytes), aggregated back into one
-- array and took apart again with jsonb_array_elements: more work than
-- the one-statement path it was meant to beat.  nginx now reads the
-- entries itself (it already parsed the servers' batches) and copies one
-- row per event, its values already typed, into tel_rows, a temporary
-- table of the writer's connection emptied at every commit:
--
--   event_id uuid NOT NULL, ts bigint NOT NULL (the producer's ms),
--   player_id uuid, session_id uuid, kind text NOT NULL,
--   payload jsonb NOT NULL, source text NOT NULL, seq bigint NOT NULL
--
-- each value as tel_write() computes it from the same entry
-- (ngx_modules/telemetry/game_tel_rows.h).  tel_write_rows() loads them
-- with tel_write()'s rules: once per event id, erasure-aware, in order.


-- Load the rows the writer has just copied into pg_temp.tel_rows, in the
-- writer's transaction; p_hits and p_threshold as tel_write()'s.
--
-- tel_write() (008) but for where the events come from: an id already in
-- tel_seen (this generation or the previous one) is skipped, and so is
-- the second of two copies in one call (the first in seq order is kept);
-- the players named are locked (FOR SHARE) before their events are
-- written, and an erased one's events get a fresh alias; events go in
-- seq order.  occurred_at is tel_write()'s expression of the same
-- milliseconds.  Returns the number of events written.
--
-- Ids seen before are rare (a retry, a redelivery), and asking the
-- unique index about every id first (ON CONFLICT) was a sixth of the
-- load.  So the ids are inserted plainly, under a savepoint: the unique
-- index refuses a batch that holds one already written (or being written
-- by another writer: it waits for that one to end), and only then is the
-- batch loaded again the careful way, skipping what tel_seen holds.
CREATE FUNCTION tel_write_rows(p_hits jsonb, p_threshold bigint)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    g        integer;
    written  integer;
    cons     text;
BEGIN
    -- read before anything else: rotation takes this table's lock first
    SELECT t.gen INTO g FROM tel_seen_gen t;

    BEGIN
        WITH one AS (
            SELECT DISTINCT ON (r.event_id) r.*
              FROM pg_temp.tel_rows r
             ORDER BY r.event_id, r.seq
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
            RETURNING event_id
        )
        INSERT INTO game_events (occurred_at, player_id, session_id, kind,
                                 payload, event_id, seq, source)
        SELECT to_timestamp(one.ts / 1000.0),
               coalesce(who.alias, one.player_id), one.session_id,
               one.kind, one.payload, one.event_id, one.seq, one.source
          FROM one
          JOIN fresh USING (event_id)
          LEFT JOIN who ON who.id = one.player_id
         ORDER BY one.seq;

        GET DIAGNOSTICS written = ROW_COUNT;

    EXCEPTION WHEN unique_violation THEN
        GET STACKED DIAGNOSTICS cons = CONSTRAINT_NAME;
        IF cons NOT LIKE 'tel\_seen\_%' THEN
            RAISE;
        END IF;

        WITH one AS (
            SELECT DISTINCT ON (r.event_id) r.*
              FROM pg_temp.tel_rows r
             ORDER BY r.event_id, r.seq
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
        SELECT to_timestamp(one.ts / 1000.0),
               coalesce(who.alias, one.player_id), one.session_id,
               one.kind, one.payload, one.event_id, one.seq, one.source
          FROM one
          JOIN fresh USING (event_id)
          LEFT JOIN who ON who.id = one.player_id
         ORDER BY one.seq;

        GET DIAGNOSTICS written = ROW_COUNT;
    END;

    IF jsonb_array_length(p_hits) > 0 THEN
        PERFORM tel_suspicion_add(p_hits, p_threshold);
    END IF;

    RETURN written;
END;
$$;

COMMENT ON FUNCTION tel_write_rows(jsonb, bigint) IS
    'tel_write() of the typed rows the telemetry writer copied into its '
    'temporary table tel_rows (one per event): same transaction, same '
    'exactly-once, erasure and order rules.';


-- game_events' format checks, the same rules in a form PostgreSQL checks
-- several times faster.  A bounded repetition ({0,63}, {1,128}) compiles
-- into a regular expression with a state per repetition, and every row
-- inserted ran both: about a sixth of the writer's time in PostgreSQL
-- went there, and a bare COPY into game_events ran at half the speed it
-- runs at now (the README's bench table).  An unbounded class and a
-- length test accept exactly the same values: the class holds only ASCII
-- characters, so characters and bytes agree.
--
-- Replacing a check validates the rows already there, once, under this
-- migration's lock on game_events (under a second per million rows).
ALTER TABLE game_events
    DROP CONSTRAINT game_events_kind_format,
    ADD CONSTRAINT game_events_kind_format
        CHECK (kind ~ '^[a-z][a-z0-9_.:-]*$' AND char_length(kind) <= 64),
    DROP CONSTRAINT game_events_source_format,
    ADD CONSTRAINT game_events_source_format
        CHECK (source = 'client'
               OR (source ~ '^server:[A-Za-z0-9_.:-]+$'
                   AND char_length(source) <= 135));
