"""One request in flight through the flow: what was asked, what is held for it, which upstream answered, since when.

The flow's steps (admit, relay, answer, settle) each add what they learn to
the exchange, and the sink reads from it what the client must be told (the
request id, the model that answered, the route, the reservation or the charge),
so nothing is passed from step to step by position.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from tollgate.domain.accounts import KeyContext
from tollgate.domain.grants import Grant
from tollgate.proxy.admission import Admission
from tollgate.proxy.call import Call
from tollgate.proxy.guard import DisconnectGuard
from tollgate.proxy.models import ServedModel
from tollgate.proxy.plausible import Limits
from tollgate.proxy.relay import Attempt


@dataclass(slots=True)
class Exchange:
    ctx: KeyContext
    call: Call
    guard: DisconnectGuard
    started: float  # wall-clock seconds at arrival: the usage record's `created_at`
    t0: float = field(default_factory=time.perf_counter)  # for the record's latency
    admission: Admission | None = None  # once admitted: the reservation
    attempt: Attempt | None = None  # once an upstream answered: which model, which deployment
    finished: bool = False  # its reservation is settled or released: nothing may settle it again
    bounds: Limits | None = None  # once an upstream answered: what the request could have produced
    ttft_ms: float | None = None  # a stream's first event relayed to the client: ms since arrival (the record's)

    @property
    def model(self) -> ServedModel:
        """The model that answered, or the one asked for before any did."""
        return self.attempt.model if self.attempt is not None else self.call.chain[0]

    @property
    def grant(self) -> Grant:
        assert self.admission is not None, "the exchange was not admitted"
        return self.admission.grant

    @property
    def fallbacks(self) -> int:
        return self.attempt.fallbacks if self.attempt is not None else 0

    def latency_ms(self) -> float:
        return (time.perf_counter() - self.t0) * 1000.0
