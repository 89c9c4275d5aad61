-- SQLite's migration 0017 folds its daily aggregates from closed hours once an hour, marked by meta
-- `daily_through`, and reads of whole days add the hours from the mark on (store/usage_queries.py:
-- `UNFOLDED_HOURS`). PostgreSQL keeps usage_daily with usage_hourly in the same statement (its trigger):
-- it has no mark, and that part of a read finds nothing. Said on the table, for whoever reads the schema.
COMMENT ON TABLE usage_daily IS 'kept with usage_hourly by its statement trigger: every hour is in its day at once (no daily_through mark, unlike SQLite)';
