-- The ledger's writes land in two unindexed tables and reach their indexed homes in bulk every few
-- seconds (issue 18, a hundred thousand keys in use). Per commit, every structure ordered by key took
-- one dirtied 4 KB page per distinct key: the usage records' key-time and account-time index entries,
-- the key's spend counter. With a hundred keys a commit's records share those pages; with a hundred
-- thousand each record dirtied pages of its own, written to the WAL at every commit and copied back by
-- the checkpoint (bench/keys_apply.py: 79 us a record against 46 with a hundred keys).
--
-- Now a batch appends its usage rows to `usage_inbox` and its spend increments to `spend_unfolded`
-- (appends to the last pages only), and `store/rollup.py`, every few seconds with the ledger's writes
-- and before anything reads them, rolls the inbox into the hourly and daily aggregates, moves its rows
-- into `usage_records` in arrival order (each index page the moved rows touch written once), and adds
-- the queued increments to `spend_counters` in key order. The store's reads roll up first and never see
-- a half: a record is in the inbox or in `usage_records` and the aggregates, in one transaction.
--
-- A reader outside the store (an operator, a test) sees the last few seconds only after a roll-up (the
-- store rolls up when it closes); `spend_totals` already holds every settlement written.

CREATE TABLE usage_inbox (
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

CREATE TABLE spend_unfolded (pool TEXT NOT NULL, window_start INTEGER NOT NULL, spent INTEGER NOT NULL);

CREATE VIEW spend_totals AS
    SELECT pool, window_start, SUM(spent) AS spent FROM (
        SELECT pool, window_start, spent FROM spend_counters
        UNION ALL SELECT pool, window_start, spent FROM spend_unfolded)
    GROUP BY pool, window_start;

-- Records 0015's queue still holds (a gateway that was killed) go into the aggregates before it goes.
INSERT INTO usage_hourly
SELECT r.account_id, CAST(r.created_at AS INTEGER) - CAST(r.created_at AS INTEGER) % 3600, r.key_id, r.model,
       COALESCE(r.upstream_model, ''), COALESCE(r.route, ''), r.status, COUNT(*), SUM(r.input_tokens),
       SUM(r.output_tokens), SUM(COALESCE(r.cached_prefix_tokens, 0)), SUM(COALESCE(r.cache_write_tokens, 0)),
       SUM(r.cost), SUM(COALESCE(r.cache_saved, 0)), SUM(r.latency_ms), SUM(r.fallbacks), SUM(r.estimated)
FROM usage_unrolled AS q CROSS JOIN usage_records AS r ON r.id = q.id WHERE true GROUP BY 1, 2, 3, 4, 5, 6, 7
ON CONFLICT DO UPDATE SET requests = requests + excluded.requests, input_tokens = input_tokens + excluded.input_tokens,
    output_tokens = output_tokens + excluded.output_tokens, cached_tokens = cached_tokens + excluded.cached_tokens,
    cache_write_tokens = cache_write_tokens + excluded.cache_write_tokens, cost = cost + excluded.cost,
    cache_saved = cache_saved + excluded.cache_saved, latency_ms = latency_ms + excluded.latency_ms,
    fallbacks = fallbacks + excluded.fallbacks, estimated = estimated + excluded.estimated;

INSERT INTO usage_daily
SELECT r.account_id, CAST(r.created_at AS INTEGER) - CAST(r.created_at AS INTEGER) % 86400, r.key_id, r.model,
       COALESCE(r.upstream_model, ''), COALESCE(r.route, ''), r.status, COUNT(*), SUM(r.input_tokens),
       SUM(r.output_tokens), SUM(COALESCE(r.cached_prefix_tokens, 0)), SUM(COALESCE(r.cache_write_tokens, 0)),
       SUM(r.cost), SUM(COALESCE(r.cache_saved, 0)), SUM(r.latency_ms), SUM(r.fallbacks), SUM(r.estimated)
FROM usage_unrolled AS q CROSS JOIN usage_records AS r ON r.id = q.id WHERE true GROUP BY 1, 2, 3, 4, 5, 6, 7
ON CONFLICT DO UPDATE SET requests = requests + excluded.requests, input_tokens = input_tokens + excluded.input_tokens,
    output_tokens = output_tokens + excluded.output_tokens, cached_tokens = cached_tokens + excluded.cached_tokens,
    cache_write_tokens = cache_write_tokens + excluded.cache_write_tokens, cost = cost + excluded.cost,
    cache_saved = cache_saved + excluded.cache_saved, latency_ms = latency_ms + excluded.latency_ms,
    fallbacks = fallbacks + excluded.fallbacks, estimated = estimated + excluded.estimated;

DROP TRIGGER usage_queued;
DROP TABLE usage_unrolled;
