-- Where a record's token counts come from: "upstream" (the server's usage block, checked),
-- "counted" (the gateway's count with the model's own tokenizer and chat template, as the server
-- counts) or "bound" (an upper bound, never below the real count). `estimated` alone could not
-- tell an exact count from a bound. NULL for records that used nothing (refusals) and for records
-- written before this column existed.
ALTER TABLE usage_records ADD COLUMN usage_basis TEXT;
