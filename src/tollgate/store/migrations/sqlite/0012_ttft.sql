-- Time to first token (issue 15): milliseconds from a streamed request's arrival to the first event
-- relayed to its client; NULL for answers that were not streamed, and for rows written before.
-- The record's last field (domain/usage.py): journals written before it replay with a NULL here.
ALTER TABLE usage_records ADD COLUMN ttft_ms REAL;
