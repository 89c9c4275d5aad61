-- A million keys and constant churn (issue 18). First, a change log, so that a gateway drops only the
-- cached key contexts a change touches; then spend counters clustered on their key (at the end).
-- Until now every change to accounts, plans, subscriptions or keys bumped change_seq and every
-- process dropped its whole key cache: with many keys and keys created all day, the cache never
-- stayed warm. Now each changed row writes (seq, kind, ref) here, by trigger, so that every
-- writer (the gateway, the CLI, another process) logs its changes in commit order; readers ask
-- for the rows after the last seq they saw (store/change_log.py). change_seq keeps the newest seq,
-- published to the shared counter file as before. The log keeps its newest 10,000 rows: a reader
-- further behind than that finds a hole before its first row and drops its whole cache.
-- Management keys are not cached by the request path, so their changes are not logged.
CREATE TABLE changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    ref TEXT NOT NULL
);

-- The first row says "everything": a reader that cached contexts before this migration drops them.
INSERT INTO changes (seq, kind, ref) SELECT seq + 1, 'all', '' FROM change_seq;
UPDATE change_seq SET seq = seq + 1;

DROP TRIGGER accounts_changed_i;
DROP TRIGGER accounts_changed_u;
DROP TRIGGER mkeys_changed_i;
DROP TRIGGER mkeys_changed_u;
DROP TRIGGER plans_changed_i;
DROP TRIGGER plans_changed_u;
DROP TRIGGER subs_changed_i;
DROP TRIGGER subs_changed_u;
DROP TRIGGER keys_changed_i;
DROP TRIGGER keys_changed_u;

CREATE TRIGGER changes_logged AFTER INSERT ON changes BEGIN
    UPDATE change_seq SET seq = NEW.seq;
    DELETE FROM changes WHERE seq <= NEW.seq - 10000;
END;

CREATE TRIGGER accounts_logged_i AFTER INSERT ON accounts BEGIN INSERT INTO changes (kind, ref) VALUES ('account', NEW.id); END;
CREATE TRIGGER accounts_logged_u AFTER UPDATE ON accounts BEGIN INSERT INTO changes (kind, ref) VALUES ('account', NEW.id); END;
CREATE TRIGGER accounts_logged_d AFTER DELETE ON accounts BEGIN INSERT INTO changes (kind, ref) VALUES ('account', OLD.id); END;
CREATE TRIGGER plans_logged_i AFTER INSERT ON plans BEGIN INSERT INTO changes (kind, ref) VALUES ('plan', NEW.slug); END;
CREATE TRIGGER plans_logged_u AFTER UPDATE ON plans BEGIN INSERT INTO changes (kind, ref) VALUES ('plan', OLD.slug); END;
CREATE TRIGGER plans_logged_d AFTER DELETE ON plans BEGIN INSERT INTO changes (kind, ref) VALUES ('plan', OLD.slug); END;
CREATE TRIGGER subs_logged_i AFTER INSERT ON subscriptions BEGIN INSERT INTO changes (kind, ref) VALUES ('subscription', NEW.id); END;
CREATE TRIGGER subs_logged_u AFTER UPDATE ON subscriptions BEGIN INSERT INTO changes (kind, ref) VALUES ('subscription', OLD.id); END;
CREATE TRIGGER subs_logged_d AFTER DELETE ON subscriptions BEGIN INSERT INTO changes (kind, ref) VALUES ('subscription', OLD.id); END;
CREATE TRIGGER keys_logged_i AFTER INSERT ON api_keys BEGIN INSERT INTO changes (kind, ref) VALUES ('key', NEW.id); END;
CREATE TRIGGER keys_logged_u AFTER UPDATE ON api_keys BEGIN INSERT INTO changes (kind, ref) VALUES ('key', OLD.id); END;
CREATE TRIGGER keys_logged_d AFTER DELETE ON api_keys BEGIN INSERT INTO changes (kind, ref) VALUES ('key', OLD.id); END;

-- The same issue's other per-key state on disk: every settlement adds to the spend counters of its
-- key's pools, and with a hundred thousand keys each update lands on a page of its own. As a rowid
-- table with a separate primary-key index, each update dirtied two pages (the index's and the row's)
-- that the commit then wrote to the WAL; clustered on its key (WITHOUT ROWID) it dirties one.
CREATE TABLE spend_counters_clustered (
    pool TEXT NOT NULL,
    window_start INTEGER NOT NULL,
    spent INTEGER NOT NULL,
    PRIMARY KEY (pool, window_start)
) WITHOUT ROWID;
INSERT INTO spend_counters_clustered (pool, window_start, spent) SELECT pool, window_start, spent FROM spend_counters;
DROP TABLE spend_counters;
ALTER TABLE spend_counters_clustered RENAME TO spend_counters;
