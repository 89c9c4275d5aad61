-- Which program sent each request (its User-Agent), so operators can tell agents apart.
ALTER TABLE usage_records ADD COLUMN client TEXT;
