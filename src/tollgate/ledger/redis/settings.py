"""How the Redis ledger holds, renews and gives up: the few numbers an operator may tune (docs/deploy.md)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RedisSettings:
    # A reservation's deadline, on the Redis server's clock. This process renews the holds of its
    # requests in flight every `renew_every` seconds; a hold nobody renews (its instance died or
    # stalled) is freed by the next script that touches its pool within `hold_seconds`.
    hold_seconds: float = 15.0
    renew_every: float = 5.0
    # No hold is renewed past this age (the embedded ledger's `reservation_ttl`): a request the gateway
    # lost track of (a bug) cannot keep its budget forever; its hold lapses a deadline later.
    max_hold_seconds: float = 900.0
    # How long an admission waits when only other requests' holds stand in the way (as the
    # embedded ledger's `admission_wait`), polling every `poll_every` seconds at most.
    admission_wait: float = 2.0
    poll_every: float = 0.05
    # The client's connect and read timeout (seconds): past it, a reserve is refused with
    # LedgerUnavailable(retry_after) rather than left to hang.
    timeout: float = 0.75
    retry_after: float = 1.0
    max_connections: int = 64
    # A settlement Redis could not take is retried this often until it answers (its charge is in the store already).
    retry_every: float = 0.25
    # Every key starts with this (one Redis may serve several gateways' deployments).
    prefix: str = "tg"
    # A window's keys stay this long after the window ends (late settles of requests that outlive it);
    # past it a counter is only a cache of the store's spend, and is loaded again if ever needed.
    keep_after_window: int = 3600
    # A settled grant's marker lives this long in Redis, so that the same settlement run twice (a call
    # retried after its answer was lost) charges once. A second settle in this process is refused locally
    # at any time; the marker only has to outlast the retries, and markers are one key per request.
    settled_ttl: int = 120
    # expire() frees dead holds in the pools this process used recently, at most this often (seconds).
    sweep_every: float = 5.0

    def __post_init__(self) -> None:
        if not 0 < self.renew_every < self.hold_seconds:
            raise ValueError("renew_every must be positive and shorter than hold_seconds")
        if self.max_hold_seconds <= 0:
            raise ValueError("max_hold_seconds must be positive")
        if self.timeout <= 0 or self.retry_after <= 0:
            raise ValueError("timeout and retry_after must be positive")
