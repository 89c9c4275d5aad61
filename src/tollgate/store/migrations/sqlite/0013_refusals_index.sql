-- An account's refusals and failures, newest first (issue 15): the dashboard's "recent refusals"
-- (GET /api/requests?status=4xx&limit=10) walked usage_account_time and read every record after the
-- last refusal to find ten: with a few hundred thousand answered requests since, 80-250 ms a page
-- (bench/dashboard_scale.py). This index holds the records with a status of 400 or more only, so such a
-- page reads its own rows; a request answered 200 does not write it. store/request_log.py adds the
-- literal `status >= 400` that lets SQLite use it.
CREATE INDEX usage_account_refused ON usage_records(account_id, created_at) WHERE status >= 400;
