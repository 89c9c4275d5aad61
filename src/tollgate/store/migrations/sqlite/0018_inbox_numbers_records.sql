-- A record's id is the order it was written in, whenever it is moved (issue 18). Since 0016 the roll-up
-- numbered records as it moved them from the inbox into usage_records; a read of one account now moves
-- that account's records alone (store/rollup.py: `roll_up_account`), so numbering at the move would put
-- another account's earlier records after them. The inbox now numbers each record as it arrives
-- (AUTOINCREMENT: never reused after the inbox is emptied; its counter is written once per statement, and
-- the ledger writes a whole batch in one) and the move keeps the number: ids follow the order of writing,
-- as on PostgreSQL, and an export by id (`tollgate usage export`) reads them so.
CREATE TABLE usage_inbox_numbered (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id TEXT NOT NULL,
    created_at REAL NOT NULL,
    account_id TEXT NOT NULL,
    key_id TEXT NOT NULL,
    subscription_id TEXT,
    model TEXT NOT NULL,
    upstream_model TEXT,
    route TEXT,
    endpoint TEXT NOT NULL,
    status INTEGER NOT NULL,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cost INTEGER NOT NULL,
    latency_ms REAL NOT NULL,
    estimated INTEGER NOT NULL,
    stream INTEGER NOT NULL,
    window_start INTEGER,
    key_window_start INTEGER,
    fallbacks INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    session TEXT,
    cached_prefix_tokens INTEGER,
    request_text TEXT,
    client TEXT,
    cache_write_tokens INTEGER,
    cache_saved INTEGER,
    usage_basis TEXT,
    ttft_ms REAL
);


-- Numbers start after the last record's.
INSERT INTO sqlite_sequence (name, seq) SELECT 'usage_inbox_numbered', COALESCE(MAX(id), 0) FROM usage_records;
INSERT INTO usage_inbox_numbered (request_id, created_at, account_id, key_id, subscription_id, model,
    upstream_model, route, endpoint, status, input_tokens, output_tokens, cost, latency_ms, estimated,
    stream, window_start, key_window_start, fallbacks, error, session, cached_prefix_tokens, request_text,
    client, cache_write_tokens, cache_saved, usage_basis, ttft_ms)
SELECT request_id, created_at, account_id, key_id, subscription_id, model, upstream_model, route, endpoint,
    status, input_tokens, output_tokens, cost, latency_ms, estimated, stream, window_start,
    key_window_start, fallbacks, error, session, cached_prefix_tokens, request_text, client,
    cache_write_tokens, cache_saved, usage_basis, ttft_ms FROM usage_inbox ORDER BY rowid;
DROP TABLE usage_inbox;
ALTER TABLE usage_inbox_numbered RENAME TO usage_inbox;
