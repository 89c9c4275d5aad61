-- Alert webhooks (issue 16, docs/alerts.md): one webhook per account, and a durable outbox of the
-- events to deliver, so that an event is delivered at least once across restarts. Neither table is
-- in the change log: the request path caches nothing from them.
CREATE TABLE alert_webhooks (
    account_id TEXT PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    thresholds TEXT NOT NULL,
    credits_low INTEGER,
    expiring_notice INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

-- event_id is unique: an event detected twice (a later settlement in the same window, the next
-- sweep) is stored once. next_attempt_at is NULL once the row is delivered or given up on.
-- A finished row is kept at least until keep_until (NULL: while the account has its webhook).
CREATE TABLE alert_outbox (
    id INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    account_id TEXT NOT NULL,
    type TEXT NOT NULL,
    body BLOB NOT NULL,
    created_at REAL NOT NULL,
    keep_until REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL,
    delivered_at REAL,
    failed_at REAL,
    last_status INTEGER,
    last_error TEXT
);
CREATE INDEX alert_outbox_due ON alert_outbox (next_attempt_at) WHERE next_attempt_at IS NOT NULL;
CREATE INDEX alert_outbox_account ON alert_outbox (account_id, id);
CREATE INDEX alert_outbox_created ON alert_outbox (created_at);
