"""What the ledger needs from a database: the ledger's own rows, and nothing of the account model.

The embedded ledger and its writer depend on this protocol only; a store
(tollgate.store) fills it beside the account model, in the same database.
"""

from __future__ import annotations

from typing import Protocol

from tollgate.ledger.batch import LedgerBatch, StoredReservation


class LedgerStore(Protocol):
    async def claim_ledger(self) -> None:
        """Make this process the one that writes the ledger (the embedded ledger calls it at start)."""

    async def write_ledger(self, batch: LedgerBatch) -> None:
        """Make usage records, spend increments and reservation changes durable, atomically."""

    def write_ledger_now(self, batch: LedgerBatch) -> bool:
        """Make `batch` durable on the calling thread if that is possible at once; False to use `write_ledger`.

        Called for a request alone in flight, whom a short blocking write delays no more than a hand-off.
        """

    async def read_spend(self, pool: str, window_start: int) -> int: ...
    async def load_reservations(self) -> list[StoredReservation]: ...
