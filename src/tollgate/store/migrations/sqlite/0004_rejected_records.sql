-- Ledger rows the database could not take (a count past 64-bit integers, a value of the wrong
-- type, an unreadable journal line): set aside here, with the reason and the row as JSON text,
-- instead of blocking every write after them and the next start. Nothing reads them but an operator.
CREATE TABLE rejected_records (
    id INTEGER PRIMARY KEY,
    created_at REAL NOT NULL,
    kind TEXT NOT NULL,
    reason TEXT NOT NULL,
    payload TEXT NOT NULL
);
