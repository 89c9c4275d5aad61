-- Usage per UTC day (issue 15, the dashboard at a million records): the hourly aggregates rolled up
-- once more, per account, day, key, model asked, model used, route and status. A chart or a report
-- over a month read about 120,000 hourly rows of a busy account (20 keys, 7 model mixes, 4
-- statuses): 110-140 ms on a 2-core box; whole days come from here instead (about 1/20 of the rows),
-- and only the hours at either end of a range from usage_hourly (store/usage_queries.py,
-- store/usage_series.py). A day's row is the sum of its hours' rows, always: both are kept by
-- triggers on the same insert, in the same transaction, and this table starts as usage_hourly's sums.
--
-- Cost: one more upsert per usage record, on the page of the current day (a few rows per key and
-- model, always cached); no new index on usage_records.
CREATE TABLE usage_daily (
    account_id TEXT NOT NULL,
    day INTEGER NOT NULL,
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
    PRIMARY KEY (account_id, day, key_id, model, upstream_model, route, status)
) WITHOUT ROWID;

INSERT INTO usage_daily
SELECT account_id, hour - hour % 86400, key_id, model, upstream_model, route, status, SUM(requests),
       SUM(input_tokens), SUM(output_tokens), SUM(cached_tokens), SUM(cache_write_tokens), SUM(cost),
       SUM(cache_saved), SUM(latency_ms), SUM(fallbacks), SUM(estimated)
FROM usage_hourly GROUP BY 1, 2, 3, 4, 5, 6, 7;

CREATE TRIGGER usage_rolled_up_daily AFTER INSERT ON usage_records BEGIN
    INSERT INTO usage_daily VALUES (
        NEW.account_id, CAST(NEW.created_at AS INTEGER) - CAST(NEW.created_at AS INTEGER) % 86400, NEW.key_id,
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
