"""Why the gateway says no: plain exceptions in the language of the product.

The core raises these and never an HTTP status; each API at the edge renders
them in its own wire shape (`tollgate.http.refusals`). A refusal carries what
its rendering needs (the pool and its reset time, the rate limit and its wait,
the upstreams that failed), so the edge never reaches back into the core.
"""

from __future__ import annotations

from tollgate.domain.pools import Pool


class Refusal(Exception):
    """Something the caller asked for that the gateway will not do; `message` is for that caller."""

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


# -- the account model (management and operator actions) -----------------------

class AccountError(Refusal):
    """A management or operator action that the account model refuses."""


class NotFound(AccountError):
    """No such object, or it belongs to another account (the two look the same)."""


class Invalid(AccountError):
    """A field is missing or malformed."""


class Conflict(AccountError):
    """The object exists already, or its state forbids the change."""


# -- who is calling -------------------------------------------------------------

class KeyRefused(Refusal):
    """A credential that cannot be used. `reason` is one of the constants below."""

    INVALID = "invalid_api_key"
    REVOKED = "key_revoked"
    SUBSCRIPTION_EXPIRED = "subscription_expired"
    INVALID_MANAGEMENT = "invalid_management_key"
    INVALID_ADMIN = "invalid_admin_token"

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class TooManyFailures(Refusal):
    """Too many wrong operator tokens from one client address: it may try again in `retry_after` seconds."""

    reason = "too_many_failed_attempts"

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"too many wrong operator tokens from this address; retry in {retry_after:.0f}s")
        self.retry_after = retry_after


# -- which model -----------------------------------------------------------------

class ModelRefused(Refusal):
    """The named model cannot serve this request. `reason` is one of the constants below."""

    NOT_FOUND = "model_not_found"
    NOT_SUPPORTED = "model_not_supported"
    NOT_ALLOWED = "model_not_allowed"

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message, param="model")
        self.reason = reason


# -- budget and rate ---------------------------------------------------------------

class BudgetExhausted(Refusal):
    """Not even a minimal answer fits in `pool` before `resets_at`."""

    def __init__(self, pool: Pool, resets_at: int | None) -> None:
        super().__init__(f"budget {pool.id} exhausted")
        self.pool = pool
        self.resets_at = resets_at

    @property
    def reason(self) -> str:
        """The stable name of this refusal (SPEC section 2): what usage records and clients see."""
        return "insufficient_credits" if self.pool.kind == "credits" else "budget_exceeded"


class RequestExceedsBudget(Refusal):
    """The request can never fit `pool`: its smallest cost is above the pool's whole window limit.

    Not a budget refusal: waiting for the window to reset changes nothing, so it
    must not be answered like one (agents park and retry a budget refusal every window).
    """

    reason = "request_exceeds_budget"

    def __init__(self, pool: Pool, smallest_cost: int) -> None:
        super().__init__(f"the request's smallest cost {smallest_cost} is above budget {pool.id}'s limit {pool.limit}")
        self.pool = pool
        self.smallest_cost = smallest_cost

    @property
    def excess(self) -> int:
        """By how much (nano-dollars) the smallest cost is above the pool's whole limit."""
        return self.smallest_cost - self.pool.limit


class RateLimited(Refusal):
    """A per-minute limit (`rpm` or `tpm`) is reached; `retry_after` seconds until it has room."""

    def __init__(self, limit: str, value: int, retry_after: float) -> None:
        super().__init__(f"{limit} limit of {value} reached")
        self.limit = limit
        self.value = value
        self.retry_after = retry_after

    reason = "rate_limit_exceeded"


# -- upstreams ----------------------------------------------------------------------

class UpstreamUnavailable(Refusal):
    """No deployment of any model in the chain gave an answer; `failures` says what each did.

    `retry_after`: seconds a rate-limited or overloaded upstream asked to be left alone (the
    shortest such wait), or None when none said.
    """

    def __init__(self, failures: list[str], timed_out: bool, retry_after: float | None = None) -> None:
        super().__init__("; ".join(failures))
        self.failures = failures
        self.timed_out = timed_out
        self.retry_after = retry_after


class LedgerBusy(Refusal):
    """The ledger's writes are further behind the load than their bound (`[ledger] backlog_*`), and did
    not catch up within the wait: refused before anything is held, to be retried after `retry_after`."""

    def __init__(self, retry_after: float) -> None:
        super().__init__("the gateway is writing its ledger behind the load")
        self.retry_after = retry_after


class LedgerUnavailable(LedgerBusy):
    """The shared ledger (Redis, in the scaled configuration) did not answer in time: refused before
    anything is held, to be retried after `retry_after` seconds.

    Never a fallback to per-process counters: they would let each instance spend the whole budget.
    A kind of LedgerBusy, so every path that handles a ledger that cannot admit now handles this too;
    the edge renders it with its own code (`ledger_unavailable`).
    """

    reason = "ledger_unavailable"

    def __init__(self, retry_after: float) -> None:
        Refusal.__init__(self, "the gateway's shared budget ledger is unreachable")
        self.retry_after = retry_after


class UpstreamBroke(Refusal):
    """An upstream answered, then failed: broke off, timed out, or sent something unreadable."""

    def __init__(self, message: str, *, timed_out: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out


class UpstreamRejected(Refusal):
    """The upstream refused the request as the client's own error (a 4xx): passed on as it said."""

    def __init__(self, upstream_status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.upstream_status = upstream_status
        self.code = code


class StoreUnavailable(Refusal):
    """The shared database (PostgreSQL) did not answer in time: the request is refused before anything is held,
    to be retried after `retry_after` seconds. Keys already seen keep working from the key cache meanwhile."""

    reason = "store_unavailable"

    def __init__(self, retry_after: float = 1.0) -> None:
        super().__init__("the gateway's database is not answering; retry shortly")
        self.retry_after = retry_after
