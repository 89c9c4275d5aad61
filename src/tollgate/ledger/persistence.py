"""What the ledger needs from a database: the ledger's own rows, and nothing of the account model.

The embedded ledger and its writer depend on this protocol only; a store
(tollgate.store) fills it beside the account model, in the same database.
"""

from __future__ import annotations

from typing import Protocol

from tollgate.ledger.batch import LedgerBatch, StoredReservation
from tollgate.ledger.journal import Backlog


class LedgerStore(Protocol):
    async def claim_ledger(self) -> None:
        """Make this process the one that writes the ledger (the embedded ledger calls it at start)."""

    async def share_ledger(self) -> None:
        """Join the processes that keep the budgets in a shared ledger (the Redis one calls it at start).

        Refused (JournalBusy) while a process runs the embedded ledger on this database, and an embedded
        ledger is refused meanwhile: the two would each let the whole budget through."""

    async def write_ledger(self, batch: LedgerBatch) -> None:
        """Make usage records, spend increments and reservation changes durable, atomically."""

    def write_ledger_now(self, batch: LedgerBatch) -> bool:
        """Make `batch` durable on the calling thread if that is possible at once; False to use `write_ledger`.

        Called for a request alone in flight, whom a short blocking write delays no more than a hand-off.
        """

    def backlog_full(self) -> bool:
        """Writes made durable are further ahead of the database than their bound (ledger/journal.py)."""

    async def backlog_room(self, timeout: float) -> bool:
        """Wait at most `timeout` seconds for the backlog to be within its bound again; whether it is."""

    def backlog(self) -> Backlog | None:
        """The backlog now, for the metrics; None for a store that writes straight into its database."""

    async def prune_usage(self, before: int, limit: int, after: str = "") -> tuple[int, str | None]:
        """Delete up to `limit` raw usage records admitted before `before` (an hour boundary), going through the
        accounts in id order from the first above `after`: (how many went, where to go on, None when done).
        Their hourly aggregates and every spend counter stay (ledger/retention.py)."""

    async def read_spend(self, pool: str, window_start: int) -> int: ...
    async def load_reservations(self) -> list[StoredReservation]: ...
