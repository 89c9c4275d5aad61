-- Every request inserts one usage record, so each structure it touches is paid per request.
-- AUTOINCREMENT cost a second table write (sqlite_sequence) per insert, and no query reads
-- records by (subscription_id, window_start): the table is rebuilt with a plain rowid key
-- (records are never deleted, so ids still only grow) and keeps the two indexes that
-- /v1/usage, the management API and the cost lab use.
CREATE TABLE usage_records_lean (
    id INTEGER PRIMARY KEY,
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
    client TEXT
);
INSERT INTO usage_records_lean SELECT * FROM usage_records;
DROP TABLE usage_records;
ALTER TABLE usage_records_lean RENAME TO usage_records;
CREATE INDEX usage_key_time ON usage_records(key_id, created_at);
CREATE INDEX usage_account_time ON usage_records(account_id, created_at);
DELETE FROM sqlite_sequence WHERE name = 'usage_records';
