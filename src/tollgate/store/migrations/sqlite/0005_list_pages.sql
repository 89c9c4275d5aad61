-- Lists that grow without bound (an account's API keys, the operator's accounts) are read a page at
-- a time in (created_at, id) order, after the row a cursor names. Without an index on that order
-- SQLite sorted the account's whole key list (the whole accounts table) for every page
-- ("USE TEMP B-TREE FOR ORDER BY"); with one, a page reads its own rows only. Both tables change
-- rarely, by hand, so the indexes cost the request path nothing. The new key index starts with
-- account_id, so it also serves every lookup api_keys_account did.
CREATE INDEX api_keys_account_created ON api_keys(account_id, created_at, id);
DROP INDEX api_keys_account;
CREATE INDEX accounts_created ON accounts(created_at, id);
