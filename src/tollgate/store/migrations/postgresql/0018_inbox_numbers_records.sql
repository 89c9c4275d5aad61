-- SQLite's migration 0018 numbers each usage record as it reaches its inbox and keeps the number when the
-- record is moved into usage_records: ids follow the order of writing there, as they always did here (a
-- sequence, one insert statement per batch). Said on the column, for whoever reads the schema.
COMMENT ON COLUMN usage_records.id IS 'the order records were written in (SQLite numbers them in its inbox and keeps the number)';
