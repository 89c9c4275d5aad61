"""Everything "ledger": the protocol, the embedded implementation, its writer, journal and SQL rows, rate buckets.

Where a charge becomes durable: `embedded.EmbeddedLedger.settle` adds it to the
`writer.LedgerWriter` batch, whose `commit` hands it to the store's `write_ledger`;
the SQLite store appends it to the `journal` (durable from here) and `journaled`
writes it into SQLite with `sql.apply_entries` moments later.
"""
