-- Account lifecycle and resellers (issue 16): key rotation with a grace period, plan retirement,
-- and lookups by end user. Columns are added (never a table rebuilt), so every older database
-- keeps its rows, and the change-log triggers of 0008 (AFTER INSERT/UPDATE/DELETE on the whole
-- row) keep logging every change to keys and plans, these columns included: a rotation is an
-- UPDATE of api_keys, so every gateway drops the key's cached contexts on its next request.

-- Rotation: key_hash becomes the new secret's hash; the secret it replaced keeps working until
-- previous_valid_until (unix seconds), found by its own hash (NULL when there is no grace).
ALTER TABLE api_keys ADD COLUMN previous_hash TEXT;
ALTER TABLE api_keys ADD COLUMN previous_valid_until INTEGER;
ALTER TABLE api_keys ADD COLUMN rotated_at INTEGER;
CREATE UNIQUE INDEX api_keys_previous_hash ON api_keys(previous_hash) WHERE previous_hash IS NOT NULL;

-- A retired plan takes no new subscriptions; the subscriptions it has keep running.
ALTER TABLE plans ADD COLUMN retired_at INTEGER;

-- A reseller's keys by end user (GET /api/keys?endUser=, GET /api/usage?endUser=&groupBy=endUser).
CREATE INDEX api_keys_account_end_user ON api_keys(account_id, end_user);

-- An account's credit grants, oldest first (the credit history).
CREATE INDEX credit_grants_account ON credit_grants(account_id, id);
