-- The daily aggregates folded from closed hours (issue 18, a hundred thousand keys in use). Each roll-up
-- (store/rollup.py, every few seconds) upserted the records' days into usage_daily as well as their hours
-- into usage_hourly: with a hundred thousand keys in use that is a row per key in use, each on a random
-- page of its own, twice per roll-up. Now the roll-up adds records to usage_hourly only, and once an hour
-- folds the hours that closed into usage_daily (found by the index below, not by a scan of history).
--
-- `daily_through` (meta, an hour boundary): usage_daily holds exactly the hours before it. A record of an
-- hour before it (a long stream settles late) goes into both tables at once. Reads of whole days add the
-- hours from the mark on (store/usage_queries.py: `UNFOLDED_HOURS`). Until this migration every roll-up
-- added to both tables, so every hour in usage_hourly is in usage_daily: the mark starts after the last.
CREATE INDEX usage_hourly_hour ON usage_hourly(hour);
INSERT INTO meta (key, value) SELECT 'daily_through', COALESCE(MAX(hour) + 3600, 0) FROM usage_hourly;
