-- The hourly and daily aggregates (0009, 0014) kept in bulk every few seconds instead of per record
-- (issue 18, a hundred thousand keys in use). Per record, each trigger's upsert landed on the page of
-- its key's aggregate row: with 100 keys a handful of pages, always the same ones; with 100,000 keys a
-- page of its own, so every commit wrote one more 4 KB WAL page per record and table, and the
-- checkpoint copied it back (apply_entries: ~44 us a record with 100 keys, ~96 us with 100,000; 29 us of
-- the difference were these two upserts). Now a record only queues its id here (an append to the last
-- page), and `store/rollup.py` folds the queue into both tables with one grouped upsert each: every
-- aggregate row a few seconds of records touched is written once. The store rolls up before anything
-- reads the aggregates, and in the same transaction as any pruning of records, so a report or a chart
-- never misses a record and never counts one twice.
CREATE TABLE usage_unrolled (id INTEGER PRIMARY KEY);

DROP TRIGGER usage_rolled_up;
DROP TRIGGER usage_rolled_up_daily;

CREATE TRIGGER usage_queued AFTER INSERT ON usage_records BEGIN
    INSERT INTO usage_unrolled (id) VALUES (NEW.id);
END;
