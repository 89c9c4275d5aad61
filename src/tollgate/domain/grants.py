"""A reservation held for a request in flight, and what its settlement charged."""

from __future__ import annotations

from dataclasses import dataclass

from tollgate.domain.pools import Pool, PoolState


@dataclass(slots=True)
class Grant:
    """A reservation: `amount` nano-dollars held on every pool in `charges` until settled."""

    id: str
    amount: int
    # (pool, window start) for each budget the request must fit.
    charges: tuple[tuple[Pool, int], ...]
    created_at: float
    expires_at: float
    # Every pool's state just after the reservation was taken.
    states: tuple[PoolState, ...] = ()

    def window_start(self, kind: str) -> int | None:
        """Start of the window charged on the pool of this kind ("subscription", "key")."""
        for pool, start in self.charges:
            if pool.kind == kind:
                return start
        return None


@dataclass(frozen=True, slots=True)
class Settled:
    """What a settlement charged, and every pool's state right after it."""

    charged: int
    states: tuple[PoolState, ...]
