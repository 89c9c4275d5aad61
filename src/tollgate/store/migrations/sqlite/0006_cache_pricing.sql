-- Prices as providers charge them (cache hits, cache writes, long-context tiers): a usage record keeps
-- the prompt's parts. cached_prefix_tokens already holds the cache hits; this adds the tokens written to
-- the provider's cache and what cache pricing saved on the request (integer nano-dollars, negative when
-- write premiums cost more than the hits saved), so usage reports sum both without re-pricing history.
ALTER TABLE usage_records ADD COLUMN cache_write_tokens INTEGER;
ALTER TABLE usage_records ADD COLUMN cache_saved INTEGER;
