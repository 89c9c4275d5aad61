-- Months of records (issue 20): usage rolled up per hour, key, model asked, model used, route and
-- status, so that raw records can be pruned after a retention period while every report over
-- older history stays exact to the nano-dollar (store/usage_sums.py reads these for the hours
-- before `usage_pruned_before` in meta, raw records after it), and the dashboard reads
-- aggregates instead of scanning a year of records.
--
-- Kept by a trigger on every insert, whatever writes it (the bulk path, the row-by-row path
-- that sets bad rows aside, a replayed journal): a record and its aggregate are in the same
-- transaction, so they can never disagree. NULL model-used and route are '' here (a primary key
-- treats NULLs as distinct). Clustered by account and hour: a report reads one account's range.
CREATE TABLE usage_hourly (
    account_id TEXT NOT NULL,
    hour INTEGER NOT NULL,
    key_id TEXT NOT NULL,
    model TEXT NOT NULL,
    upstream_model TEXT NOT NULL,
    route TEXT NOT NULL,
    status INTEGER NOT NULL,
    requests INTEGER NOT NULL,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cached_tokens INTEGER NOT NULL,
    cache_write_tokens INTEGER NOT NULL,
    cost INTEGER NOT NULL,
    cache_saved INTEGER NOT NULL,
    latency_ms REAL NOT NULL,
    fallbacks INTEGER NOT NULL,
    estimated INTEGER NOT NULL,
    PRIMARY KEY (account_id, hour, key_id, model, upstream_model, route, status)
) WITHOUT ROWID;

INSERT INTO usage_hourly
SELECT account_id, CAST(created_at AS INTEGER) - CAST(created_at AS INTEGER) % 3600, key_id, model,
       COALESCE(upstream_model, ''), COALESCE(route, ''), status, COUNT(*), SUM(input_tokens), SUM(output_tokens),
       SUM(COALESCE(cached_prefix_tokens, 0)), SUM(COALESCE(cache_write_tokens, 0)), SUM(cost),
       SUM(COALESCE(cache_saved, 0)), SUM(latency_ms), SUM(fallbacks), SUM(estimated)
FROM usage_records GROUP BY 1, 2, 3, 4, 5, 6, 7;

CREATE TRIGGER usage_rolled_up AFTER INSERT ON usage_records BEGIN
    INSERT INTO usage_hourly VALUES (
        NEW.account_id, CAST(NEW.created_at AS INTEGER) - CAST(NEW.created_at AS INTEGER) % 3600, NEW.key_id,
        NEW.model, COALESCE(NEW.upstream_model, ''), COALESCE(NEW.route, ''), NEW.status, 1, NEW.input_tokens,
        NEW.output_tokens, COALESCE(NEW.cached_prefix_tokens, 0), COALESCE(NEW.cache_write_tokens, 0), NEW.cost,
        COALESCE(NEW.cache_saved, 0), NEW.latency_ms, NEW.fallbacks, NEW.estimated)
    ON CONFLICT DO UPDATE SET
        requests = requests + 1,
        input_tokens = input_tokens + excluded.input_tokens,
        output_tokens = output_tokens + excluded.output_tokens,
        cached_tokens = cached_tokens + excluded.cached_tokens,
        cache_write_tokens = cache_write_tokens + excluded.cache_write_tokens,
        cost = cost + excluded.cost,
        cache_saved = cache_saved + excluded.cache_saved,
        latency_ms = latency_ms + excluded.latency_ms,
        fallbacks = fallbacks + excluded.fallbacks,
        estimated = estimated + excluded.estimated;
END;
