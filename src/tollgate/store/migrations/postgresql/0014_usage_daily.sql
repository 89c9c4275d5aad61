-- Usage per UTC day (issue 15; SQLite's migration 0014, which says why): the hourly aggregates rolled
-- up per account, day, key, model asked, model used, route and status. Whole days of a chart or a
-- report come from here, the hours at either end of a range from usage_hourly. A day's row is the sum
-- of its hours' rows, always: the statement trigger of usage_records keeps both, in the records'
-- transaction (one more grouped upsert per insert statement, not per record), and this table starts
-- as usage_hourly's sums.
CREATE TABLE usage_daily (
    account_id TEXT COLLATE "C" NOT NULL,
    day BIGINT NOT NULL,
    key_id TEXT COLLATE "C" NOT NULL,
    model TEXT COLLATE "C" NOT NULL,
    upstream_model TEXT COLLATE "C" NOT NULL,
    route TEXT COLLATE "C" NOT NULL,
    status BIGINT NOT NULL,
    requests BIGINT NOT NULL,
    input_tokens BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    cached_tokens BIGINT NOT NULL,
    cache_write_tokens BIGINT NOT NULL,
    cost BIGINT NOT NULL,
    cache_saved BIGINT NOT NULL,
    latency_ms DOUBLE PRECISION NOT NULL,
    fallbacks BIGINT NOT NULL,
    estimated BIGINT NOT NULL,
    PRIMARY KEY (account_id, day, key_id, model, upstream_model, route, status)
);

INSERT INTO usage_daily
SELECT account_id, hour - hour % 86400, key_id, model, upstream_model, route, status, sum(requests),
       sum(input_tokens), sum(output_tokens), sum(cached_tokens), sum(cache_write_tokens), sum(cost),
       sum(cache_saved), sum(latency_ms), sum(fallbacks), sum(estimated)
FROM usage_hourly GROUP BY 1, 2, 3, 4, 5, 6, 7;

-- The baseline's function, with the day's upsert after the hour's (rows locked in key order in each
-- table, and the tables always in this order: two processes' batches never deadlock).
CREATE OR REPLACE FUNCTION tollgate_usage_rolled_up() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO usage_hourly AS h
    SELECT account_id, floor(created_at)::bigint - floor(created_at)::bigint % 3600, key_id, model,
           COALESCE(upstream_model, ''), COALESCE(route, ''), status, count(*), sum(input_tokens),
           sum(output_tokens), sum(COALESCE(cached_prefix_tokens, 0)), sum(COALESCE(cache_write_tokens, 0)),
           sum(cost), sum(COALESCE(cache_saved, 0)), sum(latency_ms), sum(fallbacks), sum(estimated)
    FROM usage_new GROUP BY 1, 2, 3, 4, 5, 6, 7
    ORDER BY 1, 2, 3, 4, 5, 6, 7
    ON CONFLICT (account_id, hour, key_id, model, upstream_model, route, status) DO UPDATE SET
        requests = h.requests + excluded.requests,
        input_tokens = h.input_tokens + excluded.input_tokens,
        output_tokens = h.output_tokens + excluded.output_tokens,
        cached_tokens = h.cached_tokens + excluded.cached_tokens,
        cache_write_tokens = h.cache_write_tokens + excluded.cache_write_tokens,
        cost = h.cost + excluded.cost,
        cache_saved = h.cache_saved + excluded.cache_saved,
        latency_ms = h.latency_ms + excluded.latency_ms,
        fallbacks = h.fallbacks + excluded.fallbacks,
        estimated = h.estimated + excluded.estimated;
    INSERT INTO usage_daily AS d
    SELECT account_id, floor(created_at)::bigint - floor(created_at)::bigint % 86400, key_id, model,
           COALESCE(upstream_model, ''), COALESCE(route, ''), status, count(*), sum(input_tokens),
           sum(output_tokens), sum(COALESCE(cached_prefix_tokens, 0)), sum(COALESCE(cache_write_tokens, 0)),
           sum(cost), sum(COALESCE(cache_saved, 0)), sum(latency_ms), sum(fallbacks), sum(estimated)
    FROM usage_new GROUP BY 1, 2, 3, 4, 5, 6, 7
    ORDER BY 1, 2, 3, 4, 5, 6, 7
    ON CONFLICT (account_id, day, key_id, model, upstream_model, route, status) DO UPDATE SET
        requests = d.requests + excluded.requests,
        input_tokens = d.input_tokens + excluded.input_tokens,
        output_tokens = d.output_tokens + excluded.output_tokens,
        cached_tokens = d.cached_tokens + excluded.cached_tokens,
        cache_write_tokens = d.cache_write_tokens + excluded.cache_write_tokens,
        cost = d.cost + excluded.cost,
        cache_saved = d.cache_saved + excluded.cache_saved,
        latency_ms = d.latency_ms + excluded.latency_ms,
        fallbacks = d.fallbacks + excluded.fallbacks,
        estimated = d.estimated + excluded.estimated;
    RETURN NULL;
END;
$$;
