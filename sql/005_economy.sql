-- 005_economy.sql: the store, the wallet, inventories, payments, match
-- rewards, progression and achievements (ngx_modules/economy).
--
-- Money and items move only inside these functions, each one statement
-- from nginx and so one transaction, and every balance change writes a
-- ledger row (transactions) in that same transaction: for every player,
-- balance = sum of the ledger (econ_ledger_check()).
--
-- Idempotency: a client's key, a payment's event id, a match id: each
-- change that a retry could repeat is keyed, and the key is unique per
-- player in the ledger or in econ_requests, so a retry replays the first
-- outcome instead of applying twice.


-- ---------------------------------------------------------------------------
-- Catalogue, inventory, ledger: what 001 lacked
-- ---------------------------------------------------------------------------

ALTER TABLE item_templates
    -- how many of the item a player may own in all; NULL: no limit
    ADD COLUMN max_per_player integer NULL
        CONSTRAINT item_templates_max_per_player_positive
        CHECK (max_per_player >= 1),
    -- on sale between these times (either may be open)
    ADD COLUMN available_from  timestamptz NULL,
    ADD COLUMN available_until timestamptz NULL,
    -- equipping one item of a slot unequips the slot's other item; NULL:
    -- the item cannot be equipped
    ADD COLUMN slot text NULL
        CONSTRAINT item_templates_slot_format
        CHECK (slot ~ '^[a-z][a-z0-9_]{0,31}$'),
    ADD CONSTRAINT item_templates_availability_order
        CHECK (available_until > available_from);

ALTER TABLE inventory_items
    -- the slot the item is equipped in, NULL when it is not: one equipped
    -- item per slot and player is a unique index, not a convention
    ADD COLUMN equipped_slot text NULL;

CREATE UNIQUE INDEX inventory_items_equipped_slot_key
    ON inventory_items (player_id, equipped_slot)
    WHERE equipped_slot IS NOT NULL;

ALTER TABLE transactions
    -- committed: applied; reversed: a later row undid it (refund, dispute)
    ADD COLUMN status text NOT NULL DEFAULT 'committed'
        CONSTRAINT transactions_status_valid
        CHECK (status IN ('committed', 'reversed')),
    -- who made a grant: an admin's name, a match id, a payment id
    ADD COLUMN actor text NULL
        CONSTRAINT transactions_actor_length
        CHECK (char_length(actor) BETWEEN 1 AND 128),
    -- client keys are up to 255 printable characters; server keys carry a
    -- prefix ("match:", "payment:", ...)
    DROP CONSTRAINT transactions_idempotency_key_length,
    ADD CONSTRAINT transactions_idempotency_key_length
        CHECK (char_length(idempotency_key) BETWEEN 1 AND 300);


-- The answer given to a client request with an idempotency key, so that
-- the same key answers the same way for ever (a purchase refused for want
-- of money is replayed as refused: the key was spent on that answer).
CREATE TABLE econ_requests (
    player_id       uuid        NOT NULL REFERENCES players (id),
    idempotency_key text        NOT NULL
        CONSTRAINT econ_requests_key_length
        CHECK (char_length(idempotency_key) BETWEEN 1 AND 255),
    request_hash    bytea       NOT NULL,
    status          integer     NOT NULL,
    response        jsonb       NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (player_id, idempotency_key)
);

COMMENT ON TABLE econ_requests IS
    'Answers to requests with an Idempotency-Key, per player: the same key '
    'with the same request replays the answer, with another request is '
    'refused.';


-- Payment gateway events, once per event id.
CREATE TABLE econ_payment_events (
    event_id     text        PRIMARY KEY
        CONSTRAINT econ_payment_events_id_length
        CHECK (char_length(event_id) BETWEEN 1 AND 255),
    type         text        NOT NULL,
    payment_id   text        NULL,
    player_id    uuid        NULL REFERENCES players (id),
    amount       bigint      NULL,
    outcome      text        NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now()
);

-- A payment credited, and what of it was reversed.
CREATE TABLE econ_payments (
    payment_id   text        PRIMARY KEY
        CONSTRAINT econ_payments_id_length
        CHECK (char_length(payment_id) BETWEEN 1 AND 255),
    player_id    uuid        NOT NULL REFERENCES players (id),
    amount       bigint      NOT NULL CONSTRAINT econ_payments_amount_positive
        CHECK (amount > 0),
    reversed     bigint      NOT NULL DEFAULT 0,
    -- what a reversal could not take back (already spent): for a human
    shortfall    bigint      NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);


-- ---------------------------------------------------------------------------
-- Progression: per-mode stats, achievements
-- ---------------------------------------------------------------------------

CREATE TABLE player_stats (
    player_id    uuid        NOT NULL REFERENCES players (id) ON DELETE CASCADE,
    mode         text        NOT NULL
        CONSTRAINT player_stats_mode_format
        CHECK (mode ~ '^[a-z0-9][a-z0-9_.-]{0,63}$'),
    matches      bigint      NOT NULL DEFAULT 0,
    wins         bigint      NOT NULL DEFAULT 0,
    losses       bigint      NOT NULL DEFAULT 0,
    draws        bigint      NOT NULL DEFAULT 0,
    kills        bigint      NOT NULL DEFAULT 0,
    deaths       bigint      NOT NULL DEFAULT 0,
    playtime_ms  bigint      NOT NULL DEFAULT 0,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (player_id, mode)
);

-- A rewarded (match, player): rewards are applied once.
CREATE TABLE econ_match_rewards (
    match_id     uuid        NOT NULL,
    player_id    uuid        NOT NULL REFERENCES players (id) ON DELETE CASCADE,
    result       text        NOT NULL,
    soft         bigint      NOT NULL,
    xp           bigint      NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (match_id, player_id)
);

-- Definitions: unlocked when the player's all-modes total of "stat"
-- reaches "threshold" (level: the player's level).
CREATE TABLE achievements (
    id           text        PRIMARY KEY
        CONSTRAINT achievements_id_format
        CHECK (id ~ '^[a-z0-9][a-z0-9_.-]{0,63}$'),
    name         text        NOT NULL,
    description  text        NOT NULL DEFAULT '',
    stat         text        NOT NULL
        CONSTRAINT achievements_stat_valid
        CHECK (stat IN ('matches', 'wins', 'kills', 'level')),
    threshold    bigint      NOT NULL CONSTRAINT achievements_threshold_positive
        CHECK (threshold >= 1),
    reward_soft  bigint      NOT NULL DEFAULT 0
        CONSTRAINT achievements_reward_soft_nonnegative CHECK (reward_soft >= 0),
    reward_hard  bigint      NOT NULL DEFAULT 0
        CONSTRAINT achievements_reward_hard_nonnegative CHECK (reward_hard >= 0),
    enabled      boolean     NOT NULL DEFAULT true
);

CREATE TABLE player_achievements (
    player_id      uuid        NOT NULL REFERENCES players (id)
        ON DELETE CASCADE,
    achievement_id text        NOT NULL REFERENCES achievements (id),
    unlocked_at    timestamptz NOT NULL DEFAULT now(),
    match_id       uuid        NULL,
    PRIMARY KEY (player_id, achievement_id)
);

INSERT INTO achievements (id, name, description, stat, threshold,
                          reward_soft, reward_hard) VALUES
    ('first-win', 'First blood', 'Win a match', 'wins', 1, 100, 0),
    ('kills-100', 'Centurion', 'Make 100 kills', 'kills', 100, 500, 0),
    ('matches-50', 'Regular', 'Play 50 matches', 'matches', 50, 300, 0),
    ('level-10', 'Veteran', 'Reach level 10', 'level', 10, 0, 10);

-- A starter catalogue for development; operators manage theirs through
-- POST /admin/catalog.
INSERT INTO item_templates (id, name, kind, stackable, max_stack, price_soft,
                            price_hard, slot, max_per_player) VALUES
    ('potion.health', 'Health potion', 'consumable', true, 99, 50, NULL,
     NULL, NULL),
    ('skin.red', 'Red skin', 'skin', false, 1, 400, 4, 'skin', 1),
    ('skin.blue', 'Blue skin', 'skin', false, 1, 400, 4, 'skin', 1),
    ('hat.crown', 'Crown', 'hat', false, 1, NULL, 25, 'hat', 1)
ON CONFLICT (id) DO NOTHING;


-- ---------------------------------------------------------------------------
-- The ledger's one writer
-- ---------------------------------------------------------------------------

-- Move a player's balances by (soft, hard) and write the ledger row, in the
-- caller's transaction.  The player row must be locked by the caller
-- (econ_wallet_lock).  A balance never goes negative: the CHECK on players
-- refuses it, and callers check first to answer cleanly.  A key already in
-- the ledger for this player: nothing happens, NULL comes back.
CREATE FUNCTION econ_ledger_write(p_player uuid, p_kind text, p_soft bigint,
                                  p_hard bigint, p_key text,
                                  p_item text DEFAULT NULL,
                                  p_item_qty integer DEFAULT NULL,
                                  p_actor text DEFAULT NULL,
                                  p_metadata jsonb DEFAULT '{}')
RETURNS transactions
LANGUAGE plpgsql AS $$
DECLARE
    t   transactions%ROWTYPE;
    s   bigint;
    h   bigint;
BEGIN
    IF p_key IS NOT NULL AND EXISTS (
        SELECT 1 FROM transactions
         WHERE player_id = p_player AND idempotency_key = p_key)
    THEN
        RETURN NULL;
    END IF;

    UPDATE players
       SET soft_currency = soft_currency + p_soft,
           hard_currency = hard_currency + p_hard
     WHERE id = p_player
    RETURNING soft_currency, hard_currency INTO s, h;

    INSERT INTO transactions (player_id, kind, soft_currency_delta,
                              hard_currency_delta, soft_balance_after,
                              hard_balance_after, item_template_id,
                              item_quantity_delta, idempotency_key, actor,
                              metadata)
    VALUES (p_player, p_kind, p_soft, p_hard, s, h, p_item, p_item_qty, p_key,
            p_actor, p_metadata)
    RETURNING * INTO t;

    RETURN t;
END;
$$;


-- Lock a player's wallet for the rest of the transaction, opening it with
-- the starting balance the first time (a ledger credit like any other,
-- keyed so that it happens once).  False: no such player (or erased).
CREATE FUNCTION econ_wallet_lock(p_player uuid, p_start_soft bigint,
                                 p_start_hard bigint)
RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM players
     WHERE id = p_player AND deleted_at IS NULL
       FOR UPDATE;
    IF NOT FOUND THEN
        RETURN false;
    END IF;

    IF p_start_soft > 0 OR p_start_hard > 0 THEN
        PERFORM econ_ledger_write(p_player, 'starting_balance', p_start_soft,
                                  p_start_hard, 'starting_balance');
    END IF;

    RETURN true;
END;
$$;


CREATE FUNCTION econ_balance(p_player uuid)
RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('soft', soft_currency, 'hard', hard_currency)
      FROM players WHERE id = p_player;
$$;


-- The invariant: every player's balances equal the sum of their ledger.
-- Returns the players for whom they do not (none, always).
CREATE FUNCTION econ_ledger_check()
RETURNS TABLE (player_id uuid, soft bigint, hard bigint, ledger_soft numeric,
               ledger_hard numeric)
LANGUAGE sql STABLE AS $$
    SELECT p.id, p.soft_currency, p.hard_currency,
           coalesce(sum(t.soft_currency_delta), 0),
           coalesce(sum(t.hard_currency_delta), 0)
      FROM players p
      LEFT JOIN transactions t ON t.player_id = p.id
     GROUP BY p.id
    HAVING p.soft_currency <> coalesce(sum(t.soft_currency_delta), 0)
        OR p.hard_currency <> coalesce(sum(t.hard_currency_delta), 0);
$$;


-- ---------------------------------------------------------------------------
-- The store
-- ---------------------------------------------------------------------------

-- The items on sale now, as GET /store/catalog shows them.
CREATE FUNCTION econ_catalog()
RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('items', coalesce(jsonb_agg(
               jsonb_strip_nulls(jsonb_build_object(
                   'item_id', id, 'name', name, 'kind', kind,
                   'slot', slot,
                   'stackable', stackable, 'max_stack', max_stack,
                   'prices', jsonb_strip_nulls(jsonb_build_object(
                       'soft', price_soft, 'hard', price_hard)),
                   'max_per_player', max_per_player,
                   'available_from', available_from,
                   'available_until', available_until))
               ORDER BY id), '[]'::jsonb))
      FROM item_templates
     WHERE enabled
       AND (price_soft IS NOT NULL OR price_hard IS NOT NULL)
       AND (available_from IS NULL OR available_from <= now())
       AND (available_until IS NULL OR available_until > now());
$$;


-- An error answer, the shape every endpoint uses.
CREATE FUNCTION econ_error(p_status integer, p_code text, p_message text,
                           p_extra jsonb DEFAULT '{}')
RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object('status', p_status, 'body',
               jsonb_build_object('error', jsonb_build_object(
                   'code', p_code, 'message', p_message)) || p_extra);
$$;


-- POST /store/purchase.  Returns {status, body[, replayed]}: the HTTP
-- answer, which nginx sends as it is.
--
-- In one transaction: the key (another request holding it answers 409 at
-- once, never waits), the replay of an answered key, the wallet lock, the
-- item's sale and limits, the debit (never below zero), the item added to
-- its stack or created, the ledger row, the answer kept for the key.
CREATE FUNCTION econ_purchase(p_player uuid, p_key text, p_item text,
                              p_quantity integer, p_currency text,
                              p_start_soft bigint, p_start_hard bigint)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    h        bytea := sha256(convert_to(
                          p_item || '|' || p_quantity || '|' || p_currency,
                          'UTF8'));
    req      econ_requests%ROWTYPE;
    it       item_templates%ROWTYPE;
    unit     bigint;
    price    bigint;
    owned    bigint;
    stack    inventory_items%ROWTYPE;
    lim      bigint;
    bal      bigint;
    t        transactions%ROWTYPE;
    answer   jsonb;
BEGIN
    -- one request per key at a time: a second one does not wait
    IF NOT pg_try_advisory_xact_lock(hashtext(p_player::text),
                                     hashtext(p_key))
    THEN
        RETURN econ_error(409, 'idempotency_key_in_use',
                          'a request with this Idempotency-Key is still '
                          'being processed; retry later');
    END IF;

    SELECT * INTO req FROM econ_requests
     WHERE player_id = p_player AND idempotency_key = p_key;
    IF FOUND THEN
        IF req.request_hash <> h THEN
            RETURN econ_error(422, 'idempotency_key_reused',
                              'this Idempotency-Key was used for another '
                              'request');
        END IF;
        RETURN jsonb_build_object('status', req.status,
                                  'body', req.response, 'replayed', true);
    END IF;

    IF NOT econ_wallet_lock(p_player, p_start_soft, p_start_hard) THEN
        RETURN econ_error(404, 'no_player', 'no such player');
    END IF;

    SELECT * INTO it FROM item_templates WHERE id = p_item;

    IF NOT FOUND THEN
        answer := econ_error(404, 'unknown_item', 'no such item');

    ELSIF NOT it.enabled
          OR (it.available_from IS NOT NULL AND it.available_from > now())
          OR (it.available_until IS NOT NULL AND it.available_until <= now())
    THEN
        answer := econ_error(422, 'item_unavailable',
                             'this item is not on sale now');

    ELSE
        unit := CASE p_currency WHEN 'soft' THEN it.price_soft
                                ELSE it.price_hard END;
        SELECT coalesce(sum(quantity), 0) INTO owned
          FROM inventory_items
         WHERE player_id = p_player AND template_id = p_item;

        -- how many may be bought now: a stack's room, a non-stackable
        -- item one at a time, and the per-player limit
        lim := CASE WHEN it.stackable THEN it.max_stack - owned ELSE 1 END;
        IF it.max_per_player IS NOT NULL THEN
            lim := least(lim, it.max_per_player - owned);
        END IF;

        IF unit IS NULL THEN
            answer := econ_error(422, 'currency_not_accepted',
                                 'this item is not sold for ' || p_currency);
        ELSIF p_quantity < 1 OR p_quantity > greatest(lim, 0) THEN
            answer := econ_error(422, 'invalid_quantity',
                                 'quantity must be from 1 to the item''s '
                                 'limit for this player',
                                 jsonb_build_object('limit',
                                                    greatest(lim, 0)));
        ELSE
            price := unit * p_quantity;
            SELECT CASE p_currency WHEN 'soft' THEN soft_currency
                                   ELSE hard_currency END
              INTO bal FROM players WHERE id = p_player;

            IF bal < price THEN
                answer := econ_error(402, 'insufficient_funds',
                                     'the balance does not cover the price',
                                     jsonb_build_object('balance',
                                                        econ_balance(p_player),
                                                        'price', price));
            ELSE
                IF it.stackable THEN
                    SELECT * INTO stack FROM inventory_items
                     WHERE player_id = p_player AND template_id = p_item
                     ORDER BY acquired_at LIMIT 1 FOR UPDATE;
                END IF;

                IF stack.id IS NOT NULL THEN
                    UPDATE inventory_items
                       SET quantity = quantity + p_quantity
                     WHERE id = stack.id
                    RETURNING * INTO stack;
                ELSE
                    INSERT INTO inventory_items (player_id, template_id,
                                                 quantity)
                    VALUES (p_player, p_item, p_quantity)
                    RETURNING * INTO stack;
                END IF;

                t := econ_ledger_write(p_player, 'purchase',
                         CASE p_currency WHEN 'soft' THEN -price ELSE 0 END,
                         CASE p_currency WHEN 'hard' THEN -price ELSE 0 END,
                         p_key, p_item, p_quantity, NULL,
                         jsonb_build_object('inventory_item_id', stack.id));

                answer := jsonb_build_object('status', 201, 'body',
                    jsonb_build_object(
                        'transaction_id', t.id::text,
                        'item_id', p_item,
                        'quantity', p_quantity,
                        'currency', p_currency,
                        'price', price,
                        'balance', jsonb_build_object(
                            'soft', t.soft_balance_after,
                            'hard', t.hard_balance_after),
                        'inventory_item', jsonb_build_object(
                            'inventory_item_id', stack.id,
                            'item_id', p_item,
                            'quantity', stack.quantity,
                            'acquired_at', stack.acquired_at,
                            'equipped', stack.equipped_slot IS NOT NULL)));
            END IF;
        END IF;
    END IF;

    -- the key is spent on this answer, whatever it is
    INSERT INTO econ_requests (player_id, idempotency_key, request_hash,
                               status, response)
    VALUES (p_player, p_key, h, (answer->>'status')::integer,
            answer->'body');

    RETURN answer;
END;
$$;


-- ---------------------------------------------------------------------------
-- Inventory, wallet, history
-- ---------------------------------------------------------------------------

-- GET /inventory/{id}: the owner sees every item; anyone else sees only
-- the equipped ones (the public loadout), without quantities.
CREATE FUNCTION econ_inventory(p_owner uuid, p_viewer uuid)
RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM players
                                  WHERE id = p_owner AND deleted_at IS NULL)
           THEN NULL
           ELSE jsonb_build_object('player_id', p_owner, 'items',
               coalesce((SELECT jsonb_agg(
                   CASE WHEN p_owner = p_viewer THEN jsonb_build_object(
                            'inventory_item_id', i.id,
                            'item_id', i.template_id,
                            'quantity', i.quantity,
                            'acquired_at', i.acquired_at,
                            'equipped', i.equipped_slot IS NOT NULL,
                            'slot', i.equipped_slot)
                        ELSE jsonb_build_object(
                            'item_id', i.template_id,
                            'equipped', true,
                            'slot', i.equipped_slot)
                   END ORDER BY i.acquired_at, i.id)
                  FROM inventory_items i
                 WHERE i.player_id = p_owner
                   AND (p_owner = p_viewer OR i.equipped_slot IS NOT NULL)),
                '[]'::jsonb))
           END;
$$;


-- POST /inventory/{id}/equip | unequip, by its owner only: someone else's
-- item answers as if it did not exist.  Equipping takes the item's slot
-- from whatever held it.
CREATE FUNCTION econ_equip(p_player uuid, p_item uuid, p_equip boolean)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    i     inventory_items%ROWTYPE;
    slot_ text;
BEGIN
    SELECT * INTO i FROM inventory_items
     WHERE id = p_item AND player_id = p_player FOR UPDATE;
    IF NOT FOUND THEN
        RETURN econ_error(404, 'no_item', 'no such item in this inventory');
    END IF;

    SELECT t.slot INTO slot_ FROM item_templates t WHERE t.id = i.template_id;

    IF p_equip THEN
        IF slot_ IS NULL THEN
            RETURN econ_error(422, 'not_equippable',
                              'this item cannot be equipped');
        END IF;
        UPDATE inventory_items SET equipped_slot = NULL
         WHERE player_id = p_player AND equipped_slot = slot_
           AND id <> p_item;
        UPDATE inventory_items SET equipped_slot = slot_ WHERE id = p_item;
    ELSE
        UPDATE inventory_items SET equipped_slot = NULL WHERE id = p_item;
    END IF;

    RETURN jsonb_build_object('status', 200, 'body', jsonb_build_object(
        'inventory_item_id', i.id, 'item_id', i.template_id,
        'equipped', p_equip, 'slot', CASE WHEN p_equip THEN slot_ END));
END;
$$;


-- GET /player/me/wallet (opens the wallet on first sight).
CREATE FUNCTION econ_wallet(p_player uuid, p_start_soft bigint,
                            p_start_hard bigint)
RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM transactions
                    WHERE player_id = p_player
                      AND idempotency_key = 'starting_balance')
    THEN
        IF NOT econ_wallet_lock(p_player, p_start_soft, p_start_hard) THEN
            RETURN NULL;
        END IF;
    END IF;

    RETURN (SELECT jsonb_build_object('player_id', id,
                                      'soft', soft_currency,
                                      'hard', hard_currency)
              FROM players WHERE id = p_player AND deleted_at IS NULL);
END;
$$;


-- GET /player/me/transactions: newest first, "p_before" the cursor the
-- last page gave (the id it ended at: keyset, stable while rows are
-- added, never OFFSET).
CREATE FUNCTION econ_transactions(p_player uuid, p_before bigint,
                                  p_limit integer)
RETURNS jsonb
LANGUAGE sql STABLE AS $$
    WITH page AS (
        SELECT * FROM transactions
         WHERE player_id = p_player
           AND (p_before IS NULL OR id < p_before)
         ORDER BY id DESC
         LIMIT p_limit + 1
    )
    SELECT jsonb_build_object(
        'transactions', coalesce((SELECT jsonb_agg(jsonb_strip_nulls(
            jsonb_build_object(
                'transaction_id', id::text, 'kind', kind,
                'status', status,
                'soft', soft_currency_delta, 'hard', hard_currency_delta,
                'balance', jsonb_build_object('soft', soft_balance_after,
                                              'hard', hard_balance_after),
                'item_id', item_template_id,
                'quantity', item_quantity_delta,
                'created_at', created_at)) ORDER BY id DESC)
            FROM (SELECT * FROM page ORDER BY id DESC LIMIT p_limit) p),
            '[]'::jsonb),
        'next_cursor', (SELECT min(id)::text FROM
                          (SELECT id FROM page ORDER BY id DESC
                           LIMIT p_limit) p
                         WHERE (SELECT count(*) FROM page) > p_limit));
$$;


-- ---------------------------------------------------------------------------
-- Grants, payments, rewards
-- ---------------------------------------------------------------------------

-- POST /admin/players/{id}/grant: currency and/or an item, by an admin,
-- once per key.
CREATE FUNCTION econ_grant(p_player uuid, p_key text, p_actor text,
                           p_soft bigint, p_hard bigint, p_item text,
                           p_quantity integer, p_reason text,
                           p_start_soft bigint, p_start_hard bigint)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    t     transactions%ROWTYPE;
    k     text := 'admin:' || p_key;
    short boolean;
BEGIN
    IF NOT econ_wallet_lock(p_player, p_start_soft, p_start_hard) THEN
        RETURN econ_error(404, 'no_player', 'no such player');
    END IF;

    SELECT * INTO t FROM transactions
     WHERE player_id = p_player AND idempotency_key = k;
    IF FOUND THEN
        RETURN jsonb_build_object('status', 200, 'replayed', true,
            'body', jsonb_build_object('transaction_id', t.id::text,
                                       'balance', econ_balance(p_player)));
    END IF;

    IF p_item IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM item_templates WHERE id = p_item AND enabled)
    THEN
        RETURN econ_error(422, 'unknown_item', 'no such item');
    END IF;

    SELECT soft_currency + p_soft < 0 OR hard_currency + p_hard < 0
      INTO short FROM players WHERE id = p_player;
    IF short THEN
        RETURN econ_error(422, 'negative_balance',
                          'the grant would make a balance negative');
    END IF;

    IF p_item IS NOT NULL THEN
        INSERT INTO inventory_items (player_id, template_id, quantity)
        VALUES (p_player, p_item, p_quantity);
    END IF;

    t := econ_ledger_write(p_player, 'grant', p_soft, p_hard, k, p_item,
                           CASE WHEN p_item IS NOT NULL THEN p_quantity END,
                           p_actor, jsonb_build_object('reason', p_reason));

    RETURN jsonb_build_object('status', 201, 'body', jsonb_build_object(
        'transaction_id', t.id::text,
        'balance', jsonb_build_object('soft', t.soft_balance_after,
                                      'hard', t.hard_balance_after)));
END;
$$;


-- POST /payments/webhook, its signature already checked: credit a
-- payment once, reverse it on refund or dispute.  Outcomes: credited,
-- reversed, duplicate (the event id was seen), ignored (an event we do
-- not act on, or a reversal of a payment we never credited), no_player.
CREATE FUNCTION econ_payment_event(p_event text, p_type text,
                                   p_payment text, p_player uuid,
                                   p_amount bigint, p_start_soft bigint,
                                   p_start_hard bigint)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    pay      econ_payments%ROWTYPE;
    verdict  text;
    take     bigint;
    bal      bigint;
BEGIN
    -- once per event id, whatever it said
    INSERT INTO econ_payment_events (event_id, type, payment_id, player_id,
                                     amount, outcome)
    VALUES (p_event, p_type, p_payment, NULL, p_amount, 'pending')
    ON CONFLICT (event_id) DO NOTHING;
    IF NOT FOUND THEN
        RETURN 'duplicate';
    END IF;

    IF p_type = 'payment.succeeded' THEN
        IF p_player IS NULL OR p_amount IS NULL OR p_amount <= 0
           OR NOT econ_wallet_lock(p_player, p_start_soft, p_start_hard)
        THEN
            verdict := 'no_player';
        ELSE
            INSERT INTO econ_payments (payment_id, player_id, amount)
            VALUES (p_payment, p_player, p_amount)
            ON CONFLICT (payment_id) DO NOTHING;
            IF FOUND THEN
                PERFORM econ_ledger_write(p_player, 'payment', 0, p_amount,
                                          'payment:' || p_payment, NULL,
                                          NULL, p_payment,
                                          jsonb_build_object('event', p_event));
                verdict := 'credited';
            ELSE
                verdict := 'duplicate';
            END IF;
        END IF;

    ELSIF p_type IN ('payment.refunded', 'payment.disputed') THEN
        SELECT * INTO pay FROM econ_payments WHERE payment_id = p_payment
           FOR UPDATE;
        IF NOT FOUND OR pay.reversed + pay.shortfall >= pay.amount THEN
            verdict := 'ignored';
        ELSE
            PERFORM econ_wallet_lock(pay.player_id, p_start_soft,
                                     p_start_hard);
            SELECT hard_currency INTO bal FROM players
             WHERE id = pay.player_id;
            -- what is left of the payment, as far as the balance allows:
            -- a balance never goes negative, the rest is a shortfall for a
            -- human to settle
            take := least(pay.amount - pay.reversed - pay.shortfall, bal);
            PERFORM econ_ledger_write(pay.player_id,
                                      replace(p_type, 'payment.', 'payment_'),
                                      0, -take, p_event, NULL, NULL,
                                      p_payment,
                                      jsonb_build_object('event', p_event,
                                                         'payment', p_payment));
            UPDATE econ_payments
               SET reversed = reversed + take,
                   shortfall = pay.amount - pay.reversed - take,
                   updated_at = now()
             WHERE payment_id = p_payment;
            UPDATE transactions SET status = 'reversed'
             WHERE player_id = pay.player_id
               AND idempotency_key = 'payment:' || p_payment;
            p_player := pay.player_id;
            verdict := 'reversed';
        END IF;

    ELSE
        verdict := 'ignored';
    END IF;

    UPDATE econ_payment_events SET outcome = verdict,
                                   player_id = p_player
     WHERE event_id = p_event;

    RETURN verdict;
END;
$$;


-- A finished match's rewards for one player, once per (match, player):
-- soft currency and experience by result (the caller's configuration),
-- per-mode stats, then achievements.  Flagged players and abandoned
-- matches get nothing.  Returns the achievements unlocked.
CREATE FUNCTION econ_match_reward(p_match uuid, p_player uuid, p_mode text,
                                  p_result text, p_flagged boolean,
                                  p_kills bigint, p_deaths bigint,
                                  p_duration_ms bigint, p_soft bigint,
                                  p_xp bigint, p_start_soft bigint,
                                  p_start_hard bigint)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    a         achievements%ROWTYPE;
    got       jsonb := '[]';
    total     bigint;
    lvl       integer;
    soft_     bigint := CASE WHEN p_flagged OR p_result = 'abandoned'
                             THEN 0 ELSE p_soft END;
    xp_       bigint := CASE WHEN p_flagged OR p_result = 'abandoned'
                             THEN 0 ELSE p_xp END;
BEGIN
    IF NOT econ_wallet_lock(p_player, p_start_soft, p_start_hard) THEN
        RETURN NULL;
    END IF;

    INSERT INTO econ_match_rewards (match_id, player_id, result, soft, xp)
    VALUES (p_match, p_player, p_result, soft_, xp_)
    ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        RETURN '[]';        -- rewarded already
    END IF;

    IF soft_ > 0 THEN
        PERFORM econ_ledger_write(p_player, 'match_reward', soft_, 0,
                                  'match:' || p_match, NULL, NULL,
                                  p_match::text,
                                  jsonb_build_object('result', p_result));
    END IF;

    UPDATE players
       SET xp = xp + xp_, level = 1 + (xp + xp_) / 1000
     WHERE id = p_player
    RETURNING level INTO lvl;

    IF p_result <> 'abandoned' THEN
        INSERT INTO player_stats AS s (player_id, mode, matches, wins,
                                       losses, draws, kills, deaths,
                                       playtime_ms)
        VALUES (p_player, p_mode, 1,
                (p_result = 'win')::integer, (p_result = 'loss')::integer,
                (p_result = 'draw')::integer, p_kills, p_deaths,
                p_duration_ms)
        ON CONFLICT (player_id, mode) DO UPDATE
           SET matches = s.matches + 1,
               wins = s.wins + excluded.wins,
               losses = s.losses + excluded.losses,
               draws = s.draws + excluded.draws,
               kills = s.kills + excluded.kills,
               deaths = s.deaths + excluded.deaths,
               playtime_ms = s.playtime_ms + excluded.playtime_ms,
               updated_at = now();
    END IF;

    -- achievements whose threshold is reached and not yet unlocked
    FOR a IN SELECT * FROM achievements ach
              WHERE ach.enabled
                AND NOT EXISTS (SELECT 1 FROM player_achievements pa
                                 WHERE pa.player_id = p_player
                                   AND pa.achievement_id = ach.id)
    LOOP
        IF a.stat = 'level' THEN
            total := lvl;
        ELSE
            SELECT coalesce(sum(CASE a.stat WHEN 'matches' THEN matches
                                            WHEN 'wins' THEN wins
                                            ELSE kills END), 0)
              INTO total FROM player_stats WHERE player_id = p_player;
        END IF;

        IF total >= a.threshold THEN
            INSERT INTO player_achievements (player_id, achievement_id,
                                             match_id)
            VALUES (p_player, a.id, p_match);
            IF a.reward_soft > 0 OR a.reward_hard > 0 THEN
                PERFORM econ_ledger_write(p_player, 'achievement',
                                          a.reward_soft, a.reward_hard,
                                          'achievement:' || a.id, NULL, NULL,
                                          a.id);
            END IF;
            got := got || to_jsonb(a.id);
        END IF;
    END LOOP;

    RETURN got;
END;
$$;


-- GET /player/{id}/achievements: unlocked ones, public.
CREATE FUNCTION econ_achievements(p_player uuid)
RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM players
                                  WHERE id = p_player AND deleted_at IS NULL)
           THEN NULL
           ELSE jsonb_build_object('player_id', p_player, 'achievements',
               coalesce((SELECT jsonb_agg(jsonb_build_object(
                             'achievement_id', a.id, 'name', a.name,
                             'description', a.description,
                             'unlocked_at', pa.unlocked_at)
                             ORDER BY pa.unlocked_at, a.id)
                           FROM player_achievements pa
                           JOIN achievements a ON a.id = pa.achievement_id
                          WHERE pa.player_id = p_player), '[]'::jsonb))
           END;
$$;


-- POST /admin/catalog: add or change an item of the catalogue.  Fields as
-- in item_templates; missing ones keep their value (or the default).
CREATE FUNCTION econ_catalog_put(p_item jsonb)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    id_  text := p_item->>'item_id';
BEGIN
    INSERT INTO item_templates AS t (id, name, kind, stackable, max_stack,
                                     price_soft, price_hard, max_per_player,
                                     available_from, available_until, slot,
                                     enabled)
    VALUES (id_, p_item->>'name', p_item->>'kind',
            coalesce((p_item->>'stackable')::boolean, false),
            coalesce((p_item->>'max_stack')::integer, 1),
            (p_item->>'price_soft')::bigint, (p_item->>'price_hard')::bigint,
            (p_item->>'max_per_player')::integer,
            (p_item->>'available_from')::timestamptz,
            (p_item->>'available_until')::timestamptz,
            p_item->>'slot',
            coalesce((p_item->>'enabled')::boolean, true))
    ON CONFLICT (id) DO UPDATE
       SET name = coalesce(excluded.name, t.name),
           kind = coalesce(p_item->>'kind', t.kind),
           stackable = coalesce((p_item->>'stackable')::boolean, t.stackable),
           max_stack = coalesce((p_item->>'max_stack')::integer, t.max_stack),
           price_soft = CASE WHEN p_item ? 'price_soft'
                             THEN (p_item->>'price_soft')::bigint
                             ELSE t.price_soft END,
           price_hard = CASE WHEN p_item ? 'price_hard'
                             THEN (p_item->>'price_hard')::bigint
                             ELSE t.price_hard END,
           max_per_player = CASE WHEN p_item ? 'max_per_player'
                                 THEN (p_item->>'max_per_player')::integer
                                 ELSE t.max_per_player END,
           available_from = CASE WHEN p_item ? 'available_from'
                                 THEN (p_item->>'available_from')::timestamptz
                                 ELSE t.available_from END,
           available_until = CASE WHEN p_item ? 'available_until'
                                  THEN (p_item->>'available_until')::timestamptz
                                  ELSE t.available_until END,
           slot = CASE WHEN p_item ? 'slot' THEN p_item->>'slot'
                       ELSE t.slot END,
           enabled = coalesce((p_item->>'enabled')::boolean, t.enabled);

    RETURN jsonb_build_object('status', 200, 'body',
        (SELECT jsonb_strip_nulls(to_jsonb(t) - 'metadata')
           FROM item_templates t WHERE t.id = id_));
EXCEPTION
    -- a bad value in the item: the constraint or the cast says which
    WHEN check_violation OR not_null_violation OR invalid_text_representation
         OR datetime_field_overflow OR invalid_datetime_format
         OR numeric_value_out_of_range
    THEN
        RETURN econ_error(422, 'invalid_item', SQLERRM);
END;
$$;


-- A match's rewards for all its players, from the matchmaker's outcome
-- (mm:outcomes, sql/006), in one transaction.  p_rewards:
-- {"win": {"soft": N, "xp": N}, "loss": {...}, "draw": {...}}.
CREATE FUNCTION econ_match_rewards(p_outcome jsonb, p_rewards jsonb,
                                   p_start_soft bigint, p_start_hard bigint)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    p     jsonb;
    r     jsonb;
    got   jsonb := '{}';
    a     jsonb;
BEGIN
    FOR p IN SELECT * FROM jsonb_array_elements(p_outcome->'players') LOOP
        r := coalesce(p_rewards->(p->>'result'), '{}');
        a := econ_match_reward((p_outcome->>'match_id')::uuid,
                               (p->>'player_id')::uuid,
                               p_outcome->>'mode', p->>'result',
                               coalesce((p->>'flagged')::boolean, false),
                               coalesce((p->>'kills')::bigint, 0),
                               coalesce((p->>'deaths')::bigint, 0),
                               coalesce((p_outcome->>'duration_ms')::bigint,
                                        0),
                               coalesce((r->>'soft')::bigint, 0),
                               coalesce((r->>'xp')::bigint, 0),
                               p_start_soft, p_start_hard);
        IF a IS NOT NULL AND jsonb_array_length(a) > 0 THEN
            got := got || jsonb_build_object(p->>'player_id', a);
        END IF;
    END LOOP;

    RETURN jsonb_build_object('achievements', got);
END;
$$;
