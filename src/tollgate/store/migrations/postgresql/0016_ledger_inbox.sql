-- SQLite's migration 0016 lands the ledger's writes in unindexed tables that reach their indexed homes in
-- bulk every few seconds, and names the counters plus what waits to be folded `spend_totals`, for readers
-- outside the store. PostgreSQL writes each batch with one statement per table and needs neither; the
-- view is here so that the name means the same in both dialects.
CREATE VIEW spend_totals AS SELECT pool, window_start, spent FROM spend_counters;
