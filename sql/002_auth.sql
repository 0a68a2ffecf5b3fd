-- 002_auth.sql: what the auth module (ngx_modules/auth) needs beyond 001.
--
-- Refresh-token rotation and account erasure are functions so that each
-- is one atomic round trip from nginx, with the row locks taken in one
-- place and in one order.

-- Rotate a refresh token: spend the presented one (by its SHA-256 hash)
-- and store its successor in the same family.
--
-- outcome:
--   ok       rotated; player_id is the owner
--   unknown  no such token
--   revoked  revoked earlier (logout, reuse, erasure) or the account erased
--   expired  past expires_at
--   reused   the token had already been rotated: it was copied, so the
--            whole family is revoked now (RFC 9700, section 4.14.2)
CREATE FUNCTION auth_refresh_rotate(p_old bytea, p_new bytea,
                                    p_ttl_seconds double precision)
RETURNS TABLE (outcome text, player_id uuid)
LANGUAGE plpgsql AS $$
DECLARE
    t       refresh_tokens%ROWTYPE;
    next_id uuid;
BEGIN
    -- FOR UPDATE: of two refreshes racing with one token, the second
    -- waits, then sees rotated_at and is treated as a reuse.
    SELECT * INTO t FROM refresh_tokens r WHERE r.token_hash = p_old
       FOR UPDATE;

    IF NOT FOUND THEN
        RETURN QUERY SELECT 'unknown'::text, NULL::uuid;
        RETURN;
    END IF;

    IF t.revoked_at IS NOT NULL THEN
        RETURN QUERY SELECT 'revoked'::text, t.player_id;
        RETURN;
    END IF;

    IF t.rotated_at IS NOT NULL THEN
        UPDATE refresh_tokens r
           SET revoked_at = now(), revoked_reason = 'reuse'
         WHERE r.family_id = t.family_id AND r.revoked_at IS NULL;
        RETURN QUERY SELECT 'reused'::text, t.player_id;
        RETURN;
    END IF;

    IF t.expires_at <= now() THEN
        RETURN QUERY SELECT 'expired'::text, t.player_id;
        RETURN;
    END IF;

    IF NOT EXISTS (SELECT 1 FROM players p
                    WHERE p.id = t.player_id AND p.deleted_at IS NULL) THEN
        RETURN QUERY SELECT 'revoked'::text, t.player_id;
        RETURN;
    END IF;

    INSERT INTO refresh_tokens (player_id, family_id, token_hash, expires_at)
    VALUES (t.player_id, t.family_id, p_new,
            now() + make_interval(secs => p_ttl_seconds))
    RETURNING id INTO next_id;

    UPDATE refresh_tokens r
       SET rotated_at = now(), replaced_by = next_id
     WHERE r.id = t.id;

    RETURN QUERY SELECT 'ok'::text, t.player_id;
END;
$$;

COMMENT ON FUNCTION auth_refresh_rotate(bytea, bytea, double precision) IS
    'Spend a refresh token and issue its successor; a second use of a spent '
    'token revokes its whole family.';

-- Erasure ("right to be forgotten"): the row stays because the ledger and
-- match history reference it, but every piece of PII goes, every session
-- is revoked, and the event log is detached from the person: its rows get
-- one fresh random id instead of the player's, so per-player analytics
-- still add up while nothing links them back.
CREATE FUNCTION auth_erase_player(p_player uuid)
RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    alias uuid := gen_random_uuid();
BEGIN
    UPDATE players
       SET username = NULL, email_ciphertext = NULL, email_index = NULL,
           password_hash = NULL, provider_user_id = NULL, device_id = NULL,
           totp_secret_ciphertext = NULL, totp_enabled = false,
           totp_last_step = NULL, deleted_at = now()
     WHERE id = p_player AND deleted_at IS NULL;

    IF NOT FOUND THEN
        RETURN false;
    END IF;

    UPDATE refresh_tokens
       SET revoked_at = now(), revoked_reason = 'erasure'
     WHERE player_id = p_player AND revoked_at IS NULL;

    UPDATE game_events SET player_id = alias WHERE player_id = p_player;

    RETURN true;
END;
$$;

COMMENT ON FUNCTION auth_erase_player(uuid) IS
    'Erase a player''s PII, revoke their sessions and pseudonymise their '
    'events; false if there was nothing to erase.';
