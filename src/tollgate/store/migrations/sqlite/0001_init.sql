-- Accounts, plans, subscriptions and keys change rarely and by hand; every change bumps
-- change_seq so that a gateway process notices edits made by another (the CLI) at once.
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

CREATE TABLE change_seq (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL);
INSERT INTO change_seq (id, seq) VALUES (1, 0);

CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    credits_granted INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE credit_grants (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    amount INTEGER NOT NULL,
    note TEXT,
    created_at INTEGER NOT NULL
);

CREATE TABLE management_keys (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    name TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);

CREATE TABLE plans (
    slug TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    price_monthly INTEGER NOT NULL,
    period_days INTEGER NOT NULL,
    window_seconds INTEGER NOT NULL,
    budget_per_window INTEGER NOT NULL,
    rpm INTEGER NOT NULL,
    tpm INTEGER NOT NULL,
    models TEXT,
    source TEXT NOT NULL
);

CREATE TABLE subscriptions (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    plan_slug TEXT NOT NULL REFERENCES plans(slug),
    status TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    current_period_start INTEGER NOT NULL,
    current_period_end INTEGER NOT NULL,
    cancel_at_period_end INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX subscriptions_account ON subscriptions(account_id);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    subscription_id TEXT REFERENCES subscriptions(id),
    type TEXT NOT NULL,
    name TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    budget_limit INTEGER,
    budget_window INTEGER,
    end_user TEXT,
    metadata TEXT,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX api_keys_account ON api_keys(account_id);
CREATE INDEX api_keys_subscription ON api_keys(subscription_id);

-- The ledger: one row per request, and per-pool spend counters kept in the same transaction.
CREATE TABLE usage_records (
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
    request_text TEXT
);
CREATE INDEX usage_key_time ON usage_records(key_id, created_at);
CREATE INDEX usage_account_time ON usage_records(account_id, created_at);
CREATE INDEX usage_subscription_window ON usage_records(subscription_id, window_start);

CREATE TABLE spend_counters (
    pool TEXT NOT NULL,
    window_start INTEGER NOT NULL,
    spent INTEGER NOT NULL,
    PRIMARY KEY (pool, window_start)
);

CREATE TABLE reservations (
    id TEXT PRIMARY KEY,
    pools TEXT NOT NULL,
    amount INTEGER NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL
);

CREATE TRIGGER accounts_changed_i AFTER INSERT ON accounts BEGIN UPDATE change_seq SET seq = seq + 1; END;
CREATE TRIGGER accounts_changed_u AFTER UPDATE ON accounts BEGIN UPDATE change_seq SET seq = seq + 1; END;
CREATE TRIGGER mkeys_changed_i AFTER INSERT ON management_keys BEGIN UPDATE change_seq SET seq = seq + 1; END;
CREATE TRIGGER mkeys_changed_u AFTER UPDATE ON management_keys BEGIN UPDATE change_seq SET seq = seq + 1; END;
CREATE TRIGGER plans_changed_i AFTER INSERT ON plans BEGIN UPDATE change_seq SET seq = seq + 1; END;
CREATE TRIGGER plans_changed_u AFTER UPDATE ON plans BEGIN UPDATE change_seq SET seq = seq + 1; END;
CREATE TRIGGER subs_changed_i AFTER INSERT ON subscriptions BEGIN UPDATE change_seq SET seq = seq + 1; END;
CREATE TRIGGER subs_changed_u AFTER UPDATE ON subscriptions BEGIN UPDATE change_seq SET seq = seq + 1; END;
CREATE TRIGGER keys_changed_i AFTER INSERT ON api_keys BEGIN UPDATE change_seq SET seq = seq + 1; END;
CREATE TRIGGER keys_changed_u AFTER UPDATE ON api_keys BEGIN UPDATE change_seq SET seq = seq + 1; END;
