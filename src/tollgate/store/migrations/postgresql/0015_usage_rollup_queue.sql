-- SQLite's migration 0015 keeps its aggregates in bulk every few seconds (a queue of record ids, rolled
-- up by store/rollup.py). PostgreSQL needs no change: its statement trigger already upserts each
-- aggregate row once per insert statement (a whole batch of records). The number is kept in step so
-- both dialects end at the same schema version.
COMMENT ON TABLE usage_hourly IS 'usage per account, hour, key, model asked, model used, route and status';
