-- 001_initial_schema.sql: the initial data model of the game backend.
--
-- Applied by scripts/migrate inside a single transaction, together with its
-- schema_migrations row. Once this file has landed it must never be edited:
-- the migrator refuses to run when an applied file's checksum changes. Any
-- later change (new column, looser or stricter constraint) goes in a new
-- sql/NNN_name.sql file.
--
-- Conventions:
--   * Timestamps are timestamptz. Anything month-based (event partitions)
--     uses UTC months so the result doesn't depend on the session TimeZone.
--   * Invariants the economy relies on (no negative balances, no duplicate
--     ledger entries for one request, positive stack sizes) are enforced here
--     as well as in the C modules, so that a bug or a race in one nginx
--     worker can't corrupt state. The C code should map SQLSTATE 23505
--     (unique_violation) and 23514 (check_violation) to client errors.
--   * Free-form text keys (item ids, kinds, leaderboard names) are limited
--     by CHECK patterns rather than enums, so new values need no migration.
--   * gen_random_uuid() is built into PostgreSQL 13+, so no extension is
--     needed. Encryption of PII happens in the application: the database
--     only ever sees ciphertext and keyed hashes.

-- ---------------------------------------------------------------------------
-- Shared helpers
-- ---------------------------------------------------------------------------

-- One trigger function for every updated_at column, so callers can't forget
-- to bump it and a hand-written UPDATE in psql keeps it truthful too.
CREATE FUNCTION set_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

COMMENT ON FUNCTION set_updated_at() IS
    'BEFORE UPDATE trigger: keeps updated_at honest whoever writes the row.';

-- ---------------------------------------------------------------------------
-- Players and authentication
-- ---------------------------------------------------------------------------

CREATE TABLE players (
    id                      uuid        PRIMARY KEY DEFAULT gen_random_uuid(),

    -- NULL for guest accounts created from a device id until the player
    -- picks a name. Restricted to ASCII: case-insensitive uniqueness via
    -- lower() is only reliable for ASCII under every collation (the C
    -- locale does not fold non-ASCII letters), and it rules out homoglyph
    -- impersonation of other players.
    username                text        NULL
        CONSTRAINT players_username_format
        CHECK (username ~ '^[A-Za-z0-9_][A-Za-z0-9_.-]{2,31}$'),

    -- The address itself is encrypted by the application; the database
    -- never sees plaintext. Lookups ("is this email taken?", login by
    -- email) go through email_index, a keyed HMAC of the normalised address,
    -- which is deterministic so it can carry a unique index without
    -- revealing the address.
    email_ciphertext        bytea       NULL,
    email_index             bytea       NULL,

    -- Encoded password hash (e.g. an argon2id PHC string, which carries its
    -- own parameters and salt). NULL for device-only and external-provider
    -- accounts.
    password_hash           text        NULL,

    -- How the account was created / primarily signs in. Plain text with a
    -- pattern so adding a provider (steam, apple, ...) needs no migration.
    auth_provider           text        NOT NULL DEFAULT 'password'
        CONSTRAINT players_auth_provider_format
        CHECK (auth_provider ~ '^[a-z][a-z0-9_]{0,31}$'),
    -- Subject id at an external identity provider (NULL for password and
    -- device accounts); unique per provider, see constraint below.
    provider_user_id        text        NULL
        CONSTRAINT players_provider_user_id_length
        CHECK (char_length(provider_user_id) BETWEEN 1 AND 255),
    -- Device id for guest login: a device maps to at most one account.
    device_id               text        NULL
        CONSTRAINT players_device_id_key UNIQUE
        CONSTRAINT players_device_id_length
        CHECK (char_length(device_id) BETWEEN 1 AND 255),

    -- TOTP second factor. The shared secret is encrypted by the
    -- application like the email. totp_last_step is the last accepted time
    -- step (unix time / 30): codes at or below it are refused, so a code
    -- can't be replayed within its validity window.
    totp_secret_ciphertext  bytea       NULL,
    totp_enabled            boolean     NOT NULL DEFAULT false,
    totp_last_step          bigint      NULL,

    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    last_login              timestamptz NULL,
    -- Erasure (GDPR "right to be forgotten") keeps the row, because the
    -- ledger, match history and event log reference it, but nulls the PII
    -- columns (username, email_*, password_hash, provider_user_id,
    -- device_id, totp_*). deleted_at marks that this happened/was requested.
    deleted_at              timestamptz NULL,

    level                   integer     NOT NULL DEFAULT 1
        CONSTRAINT players_level_positive CHECK (level >= 1),
    xp                      bigint      NOT NULL DEFAULT 0
        CONSTRAINT players_xp_nonnegative CHECK (xp >= 0),

    -- Balances live on the player row so a purchase is one guarded UPDATE
    -- (SET soft_currency = soft_currency - price) whose CHECK refuses an
    -- overdraft even when two requests race; every change is also written
    -- to the transactions ledger in the same database transaction.
    soft_currency           bigint      NOT NULL DEFAULT 0
        CONSTRAINT players_soft_currency_nonnegative CHECK (soft_currency >= 0),
    hard_currency           bigint      NOT NULL DEFAULT 0
        CONSTRAINT players_hard_currency_nonnegative CHECK (hard_currency >= 0),

    -- Ciphertext without its blind index (or the reverse) would make the
    -- address either unfindable or un-displayable.
    CONSTRAINT players_email_pair
        CHECK ((email_ciphertext IS NULL) = (email_index IS NULL)),
    -- An "enabled" factor without a secret would lock the player out.
    CONSTRAINT players_totp_needs_secret
        CHECK (NOT totp_enabled OR totp_secret_ciphertext IS NOT NULL),
    CONSTRAINT players_provider_user_key
        UNIQUE (auth_provider, provider_user_id)
);

-- "Alice" and "alice" are the same player name. Queries must use
-- lower(username) = lower($1) to hit this index. NULLs (guests) don't clash.
CREATE UNIQUE INDEX players_username_lower_key ON players (lower(username));

-- One account per email address; erased and email-less accounts are NULL.
CREATE UNIQUE INDEX players_email_index_key ON players (email_index)
    WHERE email_index IS NOT NULL;

CREATE TRIGGER players_set_updated_at
    BEFORE UPDATE ON players
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

COMMENT ON TABLE players IS
    'One row per account, guests included. Rows are never hard-deleted once '
    'they have history: erasure nulls the PII columns and sets deleted_at.';
COMMENT ON COLUMN players.email_ciphertext IS
    'Email encrypted by the application (AEAD); never stored in clear.';
COMMENT ON COLUMN players.email_index IS
    'Keyed HMAC of the normalised email: lets us enforce uniqueness and look '
    'up by email without being able to read it.';
COMMENT ON COLUMN players.totp_last_step IS
    'Last accepted TOTP time step; a code for a step <= this is a replay.';
COMMENT ON COLUMN players.deleted_at IS
    'Set on erasure; PII columns are nulled at the same time.';

-- Refresh tokens are opaque random strings; only their hash is stored, so a
-- database leak doesn't hand out sessions. Rotation: every refresh issues a
-- new token in the same family and stamps the old one rotated_at. If a token
-- that was already rotated is presented again, it was stolen (or replayed),
-- and the whole family is revoked.
CREATE TABLE refresh_tokens (
    id              uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    player_id       uuid        NOT NULL
        REFERENCES players (id) ON DELETE CASCADE,
    family_id       uuid        NOT NULL,
    token_hash      bytea       NOT NULL
        CONSTRAINT refresh_tokens_token_hash_key UNIQUE,
    -- The token this one was rotated into, for auditing a reuse incident.
    replaced_by     uuid        NULL
        REFERENCES refresh_tokens (id) ON DELETE SET NULL,
    issued_at       timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    rotated_at      timestamptz NULL,
    revoked_at      timestamptz NULL,
    revoked_reason  text        NULL,
    CONSTRAINT refresh_tokens_expiry_after_issue CHECK (expires_at > issued_at)
);

-- Logout-everywhere and account erasure revoke by player.
CREATE INDEX refresh_tokens_player_id_idx ON refresh_tokens (player_id);
-- Reuse detection revokes a whole family at once.
CREATE INDEX refresh_tokens_family_id_idx ON refresh_tokens (family_id);
-- Periodic purge of expired tokens.
CREATE INDEX refresh_tokens_expires_at_idx ON refresh_tokens (expires_at);

COMMENT ON TABLE refresh_tokens IS
    'Rotating refresh tokens, stored hashed. Presenting a rotated token again '
    'means theft: revoke every token with the same family_id.';

-- ---------------------------------------------------------------------------
-- Items and inventory
-- ---------------------------------------------------------------------------

-- Item definitions are content, edited by designers and referenced by code,
-- so the key is a stable readable code rather than a surrogate number.
CREATE TABLE item_templates (
    id          text        PRIMARY KEY
        CONSTRAINT item_templates_id_format
        CHECK (id ~ '^[a-z0-9][a-z0-9_.-]{0,63}$'),
    name        text        NOT NULL
        CONSTRAINT item_templates_name_length
        CHECK (char_length(name) BETWEEN 1 AND 128),
    kind        text        NOT NULL
        CONSTRAINT item_templates_kind_format
        CHECK (kind ~ '^[a-z][a-z0-9_]{0,31}$'),
    stackable   boolean     NOT NULL DEFAULT false,
    max_stack   integer     NOT NULL DEFAULT 1,
    -- NULL price = not for sale in that currency.
    price_soft  bigint      NULL
        CONSTRAINT item_templates_price_soft_nonnegative CHECK (price_soft >= 0),
    price_hard  bigint      NULL
        CONSTRAINT item_templates_price_hard_nonnegative CHECK (price_hard >= 0),
    -- What the shop pays back per unit; NULL = can't be sold.
    sell_price_soft bigint  NULL
        CONSTRAINT item_templates_sell_price_soft_nonnegative
        CHECK (sell_price_soft >= 0),
    -- Retired items stay (inventories and the ledger reference them) but
    -- can't be bought or granted any more.
    enabled     boolean     NOT NULL DEFAULT true,
    metadata    jsonb       NOT NULL DEFAULT '{}'
        CONSTRAINT item_templates_metadata_object
        CHECK (jsonb_typeof(metadata) = 'object'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    -- A non-stackable item is always a stack of one.
    CONSTRAINT item_templates_max_stack_valid
        CHECK (max_stack >= 1 AND (stackable OR max_stack = 1))
);

CREATE TRIGGER item_templates_set_updated_at
    BEFORE UPDATE ON item_templates
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

COMMENT ON TABLE item_templates IS
    'Item catalogue (content). Rows are disabled, not deleted, once players '
    'own them.';

CREATE TABLE inventory_items (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    player_id   uuid        NOT NULL
        REFERENCES players (id) ON DELETE CASCADE,
    -- RESTRICT: deleting a template players own would silently destroy
    -- their items; disable it instead.
    template_id text        NOT NULL
        REFERENCES item_templates (id) ON DELETE RESTRICT ON UPDATE CASCADE,
    quantity    integer     NOT NULL
        CONSTRAINT inventory_items_quantity_positive CHECK (quantity > 0),
    acquired_at timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    -- Per-instance state (durability, rolled stats, ...).
    metadata    jsonb       NOT NULL DEFAULT '{}'
        CONSTRAINT inventory_items_metadata_object
        CHECK (jsonb_typeof(metadata) = 'object')
);

-- Inventory is always read per player; (player_id, template_id) also serves
-- "does the player already have a stack of X" when granting stackables.
CREATE INDEX inventory_items_player_template_idx
    ON inventory_items (player_id, template_id);
-- FK from item_templates: lets a template delete/rename check cheaply.
CREATE INDEX inventory_items_template_id_idx ON inventory_items (template_id);

-- max_stack lives on the template, which a CHECK constraint can't see; a
-- trigger keeps an over-full stack (a duplication bug) out of the table.
-- Raised as check_violation (23514) so callers treat it like a CHECK.
CREATE FUNCTION inventory_items_check_stack() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    limit_ integer;
BEGIN
    SELECT t.max_stack INTO limit_
      FROM item_templates t
     WHERE t.id = NEW.template_id;
    -- A missing template is reported by the foreign key instead.
    IF FOUND AND NEW.quantity > limit_ THEN
        RAISE EXCEPTION 'inventory stack of % exceeds max_stack % of item %',
                NEW.quantity, limit_, NEW.template_id
            USING ERRCODE = 'check_violation',
                  CONSTRAINT = 'inventory_items_quantity_max_stack',
                  TABLE = TG_TABLE_NAME;
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER inventory_items_check_stack
    BEFORE INSERT OR UPDATE OF quantity, template_id ON inventory_items
    FOR EACH ROW EXECUTE FUNCTION inventory_items_check_stack();

CREATE TRIGGER inventory_items_set_updated_at
    BEFORE UPDATE ON inventory_items
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

COMMENT ON TABLE inventory_items IS
    'Items owned by players: one row per stack (stackable) or per instance.';

-- ---------------------------------------------------------------------------
-- Economy ledger
-- ---------------------------------------------------------------------------

-- Append-only record of every balance or inventory change. Written in the
-- same database transaction as the change itself, so the ledger and the
-- balances can't disagree. The idempotency key makes client retries safe:
-- a retried purchase hits the unique constraint and the server replays the
-- stored outcome instead of charging twice.
CREATE TABLE transactions (
    id                  bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- No cascade: the ledger is an audit trail and must outlive erasure,
    -- which is why players are soft-deleted.
    player_id           uuid        NOT NULL REFERENCES players (id),
    -- purchase, sell, grant, match_reward, refund, admin_adjust, ...
    kind                text        NOT NULL
        CONSTRAINT transactions_kind_format
        CHECK (kind ~ '^[a-z][a-z0-9_.:-]{0,63}$'),
    soft_currency_delta bigint      NOT NULL DEFAULT 0,
    hard_currency_delta bigint      NOT NULL DEFAULT 0,
    -- Balances right after this entry: lets an idempotent replay return the
    -- original result and lets audits verify the running sum.
    soft_balance_after  bigint      NULL,
    hard_balance_after  bigint      NULL,
    item_template_id    text        NULL REFERENCES item_templates (id)
        ON UPDATE CASCADE,
    item_quantity_delta integer     NULL,
    -- Client-supplied key (e.g. a UUID per purchase attempt). NULL for
    -- server-originated entries that have no client retry to guard against.
    idempotency_key     text        NULL
        CONSTRAINT transactions_idempotency_key_length
        CHECK (char_length(idempotency_key) BETWEEN 1 AND 128),
    -- Hash (e.g. SHA-256) of the canonical request. The same key with a
    -- different request is a client bug and must be refused, not replayed.
    request_hash        bytea       NULL,
    metadata            jsonb       NOT NULL DEFAULT '{}'
        CONSTRAINT transactions_metadata_object
        CHECK (jsonb_typeof(metadata) = 'object'),
    created_at          timestamptz NOT NULL DEFAULT now(),
    -- Per player, not global: keys are generated by clients, and one
    -- player's key must never collide with (or probe) another's.
    CONSTRAINT transactions_player_idempotency_key
        UNIQUE (player_id, idempotency_key),
    CONSTRAINT transactions_item_pair
        CHECK ((item_template_id IS NULL) = (item_quantity_delta IS NULL)),
    CONSTRAINT transactions_item_delta_nonzero
        CHECK (item_quantity_delta <> 0)
);

-- Player transaction history, newest first.
CREATE INDEX transactions_player_created_idx
    ON transactions (player_id, created_at DESC);

COMMENT ON TABLE transactions IS
    'Append-only economy ledger; one row per change, written in the same '
    'transaction as the balance/inventory update it records.';
COMMENT ON COLUMN transactions.idempotency_key IS
    'Unique per player: a retried request finds its earlier row and replays '
    'it instead of applying twice.';

-- ---------------------------------------------------------------------------
-- Matches
-- ---------------------------------------------------------------------------

CREATE TABLE game_sessions (
    -- The match id handed to game servers and clients.
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    mode        text        NOT NULL
        CONSTRAINT game_sessions_mode_format
        CHECK (mode ~ '^[a-z0-9][a-z0-9_.-]{0,63}$'),
    region      text        NOT NULL
        CONSTRAINT game_sessions_region_format
        CHECK (region ~ '^[a-z0-9][a-z0-9_.-]{0,63}$'),
    -- Dedicated server instance the match was allocated on, and where
    -- clients connect (host may be a DNS name, hence text not inet).
    server_id   text        NULL,
    server_host text        NULL,
    server_port integer     NULL
        CONSTRAINT game_sessions_server_port_range
        CHECK (server_port BETWEEN 1 AND 65535),
    -- A CHECK rather than an enum type: values can be added later with a
    -- plain constraint swap instead of ALTER TYPE.
    status      text        NOT NULL DEFAULT 'allocated'
        CONSTRAINT game_sessions_status_valid
        CHECK (status IN ('allocated', 'playing', 'finished', 'aborted')),
    metadata    jsonb       NOT NULL DEFAULT '{}'
        CONSTRAINT game_sessions_metadata_object
        CHECK (jsonb_typeof(metadata) = 'object'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    started_at  timestamptz NULL,
    ended_at    timestamptz NULL,
    -- Keep the timestamps in step with the state machine, so "how long did
    -- matches last" and "which matches are stuck" are answerable from the
    -- columns alone.
    CONSTRAINT game_sessions_playing_has_start
        CHECK (status <> 'playing' OR started_at IS NOT NULL),
    CONSTRAINT game_sessions_ended_iff_over
        CHECK ((status IN ('finished', 'aborted')) = (ended_at IS NOT NULL)),
    CONSTRAINT game_sessions_end_after_start
        CHECK (ended_at >= started_at)
);

-- Matchmaker / fleet queries: "allocated or playing sessions in region X".
CREATE INDEX game_sessions_status_region_idx
    ON game_sessions (status, region);
-- A server reporting in (heartbeat, crash) looks up its live sessions.
CREATE INDEX game_sessions_server_live_idx
    ON game_sessions (server_id)
    WHERE status IN ('allocated', 'playing');

CREATE TRIGGER game_sessions_set_updated_at
    BEFORE UPDATE ON game_sessions
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

COMMENT ON TABLE game_sessions IS
    'One row per match, from allocation on a game server to its end. '
    'status: allocated -> playing -> finished, or -> aborted from either.';

CREATE TABLE game_session_players (
    session_id      uuid        NOT NULL
        REFERENCES game_sessions (id) ON DELETE CASCADE,
    -- No cascade: match history of the other participants must survive one
    -- player's erasure (players are soft-deleted).
    player_id       uuid        NOT NULL REFERENCES players (id),
    team            smallint    NULL,
    result          text        NULL
        CONSTRAINT game_session_players_result_valid
        CHECK (result IN ('win', 'loss', 'draw', 'abandoned')),
    score           bigint      NULL,
    -- Per-player match stats (kills, deaths, ...) reported by the server.
    stats           jsonb       NOT NULL DEFAULT '{}'
        CONSTRAINT game_session_players_stats_object
        CHECK (jsonb_typeof(stats) = 'object'),
    -- Rating before/after this match, so a rating history can be shown and
    -- a disputed result can be reverted exactly.
    rating_before   double precision NULL,
    rating_after    double precision NULL,
    joined_at       timestamptz NOT NULL DEFAULT now(),
    left_at         timestamptz NULL,
    PRIMARY KEY (session_id, player_id)
);

-- Match history of a player.
CREATE INDEX game_session_players_player_id_idx
    ON game_session_players (player_id, joined_at DESC);

COMMENT ON TABLE game_session_players IS
    'Who played in a match, on which team, and how it went for them.';

-- ---------------------------------------------------------------------------
-- Ratings and leaderboards
-- ---------------------------------------------------------------------------

-- Glicko-2 state per player and game mode (skill differs between modes).
-- Defaults are the Glicko-2 defaults for an unrated player.
CREATE TABLE player_ratings (
    player_id           uuid        NOT NULL
        REFERENCES players (id) ON DELETE CASCADE,
    mode                text        NOT NULL
        CONSTRAINT player_ratings_mode_format
        CHECK (mode ~ '^[a-z0-9][a-z0-9_.-]{0,63}$'),
    rating              double precision NOT NULL DEFAULT 1500,
    rating_deviation    double precision NOT NULL DEFAULT 350
        CONSTRAINT player_ratings_rd_positive CHECK (rating_deviation > 0),
    volatility          double precision NOT NULL DEFAULT 0.06
        CONSTRAINT player_ratings_volatility_positive CHECK (volatility > 0),
    games_played        integer     NOT NULL DEFAULT 0
        CONSTRAINT player_ratings_games_played_nonnegative
        CHECK (games_played >= 0),
    last_played_at      timestamptz NULL,
    updated_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (player_id, mode)
);

-- Matchmaking by skill band and rank lookups within a mode.
CREATE INDEX player_ratings_mode_rating_idx
    ON player_ratings (mode, rating DESC);

CREATE TRIGGER player_ratings_set_updated_at
    BEFORE UPDATE ON player_ratings
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

COMMENT ON TABLE player_ratings IS
    'Glicko-2 rating state per (player, mode).';

-- Durable copy of leaderboards. Redis sorted sets serve live rank queries;
-- this table is the source they are rebuilt from after a Redis loss.
CREATE TABLE leaderboard_entries (
    -- e.g. "global", "weekly:2026-W48", "ranked.duel"
    leaderboard text        NOT NULL
        CONSTRAINT leaderboard_entries_leaderboard_format
        CHECK (leaderboard ~ '^[a-z0-9][a-z0-9_.:-]{0,63}$'),
    player_id   uuid        NOT NULL
        REFERENCES players (id) ON DELETE CASCADE,
    score       bigint      NOT NULL,
    -- Tie-breaker for equal scores (e.g. negated completion time).
    subscore    bigint      NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (leaderboard, player_id)
);

-- Top-N and keyset pagination ("entries after (score, subscore, id)");
-- player_id makes the order total so pages never overlap or skip.
CREATE INDEX leaderboard_entries_rank_idx
    ON leaderboard_entries (leaderboard, score DESC, subscore DESC, player_id);
-- "All boards this player is on" and the FK from players.
CREATE INDEX leaderboard_entries_player_id_idx
    ON leaderboard_entries (player_id);

CREATE TRIGGER leaderboard_entries_set_updated_at
    BEFORE UPDATE ON leaderboard_entries
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

COMMENT ON TABLE leaderboard_entries IS
    'Durable leaderboard scores; Redis sorted sets are rebuilt from here.';

-- ---------------------------------------------------------------------------
-- Event log (partitioned by month)
-- ---------------------------------------------------------------------------

-- High-volume, append-only analytics/audit log. Partitioned by month so old
-- data is dropped by DROP TABLE on a partition (instant, no bloat, no
-- vacuum storm) instead of a huge DELETE, and so time-bounded queries only
-- touch the partitions they need.
--
-- player_id deliberately has no foreign key: a per-row FK check would slow
-- the hottest insert path, and events must keep their player id after the
-- player is erased.
CREATE TABLE game_events (
    id          bigint      GENERATED ALWAYS AS IDENTITY,
    occurred_at timestamptz NOT NULL DEFAULT now(),
    player_id   uuid        NULL,
    session_id  uuid        NULL,
    kind        text        NOT NULL
        CONSTRAINT game_events_kind_format
        CHECK (kind ~ '^[a-z][a-z0-9_.:-]{0,63}$'),
    payload     jsonb       NOT NULL DEFAULT '{}',
    -- A partitioned table's unique constraints must contain the partition
    -- key; id alone is still unique in practice (one identity sequence).
    PRIMARY KEY (id, occurred_at)
) PARTITION BY RANGE (occurred_at);

-- Per-player event history. Partial: system events without a player would
-- only bloat it. Created on the parent, so every partition gets one.
CREATE INDEX game_events_player_occurred_idx
    ON game_events (player_id, occurred_at)
    WHERE player_id IS NOT NULL;

-- Catches rows no monthly partition covers (clock skew, backfills, or the
-- partition job not having run), so logging an event never fails.
-- game_events_ensure_partitions() moves such rows into the right monthly
-- partition when it creates it.
CREATE TABLE game_events_default PARTITION OF game_events DEFAULT;

COMMENT ON TABLE game_events IS
    'Append-only event log, range-partitioned by occurred_at in UTC months '
    '(game_events_yYYYYmMM) plus game_events_default. Run '
    'game_events_ensure_partitions(n) regularly (e.g. daily) to keep '
    'partitions ahead of time; drop old partitions to expire data.';

-- Creates the monthly partitions for the current UTC month and the next
-- months_ahead months, skipping those that exist, and returns how many it
-- created. Safe to call as often as wanted (from the migration, from cron,
-- at service start). If the default partition already holds rows for a
-- month being created, they are moved into the new partition first,
-- because PostgreSQL refuses to create a partition whose rows sit in the
-- default partition.
CREATE FUNCTION game_events_ensure_partitions(months_ahead integer)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    parent      constant regclass := 'game_events'::regclass;
    nsp         text;
    cols        text;
    first_month timestamp;
    month_start timestamp;
    part_name   text;
    lo          text;
    hi          text;
    locked      boolean := false;
    created     integer := 0;
BEGIN
    IF months_ahead IS NULL OR months_ahead < 0 OR months_ahead > 120 THEN
        RAISE EXCEPTION 'months_ahead must be between 0 and 120, got %',
                months_ahead
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    SELECT n.nspname INTO nsp
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.oid = parent;

    -- Months are UTC months regardless of the session TimeZone, so every
    -- caller agrees on names and bounds.
    first_month := date_trunc('month', now() AT TIME ZONE 'UTC');

    FOR i IN 0 .. months_ahead LOOP
        month_start := first_month + make_interval(months => i);
        part_name := 'game_events_' || to_char(month_start, '"y"YYYY"m"MM');

        CONTINUE WHEN to_regclass(format('%I.%I', nsp, part_name)) IS NOT NULL;

        IF NOT locked THEN
            -- Self-conflicting but compatible with INSERT/SELECT: serialises
            -- concurrent callers (the loser would otherwise fail on
            -- "relation already exists") without blocking event writes.
            EXECUTE format('LOCK TABLE %s IN SHARE UPDATE EXCLUSIVE MODE',
                           parent);
            locked := true;
            -- Another caller may have created it while we waited.
            CONTINUE WHEN to_regclass(format('%I.%I', nsp, part_name))
                          IS NOT NULL;
        END IF;

        -- ISO literals with an explicit UTC offset: independent of the
        -- session's DateStyle and TimeZone.
        lo := to_char(month_start, 'YYYY-MM-DD') || ' 00:00:00+00';
        hi := to_char(month_start + interval '1 month', 'YYYY-MM-DD')
              || ' 00:00:00+00';

        IF EXISTS (SELECT 1 FROM game_events_default
                    WHERE occurred_at >= lo::timestamptz
                      AND occurred_at <  hi::timestamptz) THEN
            SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum)
              INTO cols
              FROM pg_attribute a
             WHERE a.attrelid = parent AND a.attnum > 0
               AND NOT a.attisdropped;
            EXECUTE format(
                'CREATE TABLE %I.%I (LIKE %s INCLUDING DEFAULTS '
                'INCLUDING CONSTRAINTS INCLUDING STORAGE)',
                nsp, part_name, parent);
            EXECUTE format(
                'WITH moved AS (DELETE FROM %I.game_events_default '
                'WHERE occurred_at >= %L AND occurred_at < %L RETURNING %s) '
                'INSERT INTO %I.%I (%s) SELECT %s FROM moved',
                nsp, lo, hi, cols, nsp, part_name, cols, cols);
            EXECUTE format(
                'ALTER TABLE %s ATTACH PARTITION %I.%I '
                'FOR VALUES FROM (%L) TO (%L)',
                parent, nsp, part_name, lo, hi);
        ELSE
            EXECUTE format(
                'CREATE TABLE %I.%I PARTITION OF %s FOR VALUES FROM (%L) TO (%L)',
                nsp, part_name, parent, lo, hi);
        END IF;
        created := created + 1;
    END LOOP;

    RETURN created;
END;
$$;

COMMENT ON FUNCTION game_events_ensure_partitions(integer) IS
    'Idempotently create game_events partitions for the current UTC month '
    'and the next N months (moving matching rows out of the default '
    'partition). Returns the number of partitions created.';

-- Cover now and the next three months from day one; afterwards a periodic
-- job keeps the window moving.
SELECT game_events_ensure_partitions(3);
