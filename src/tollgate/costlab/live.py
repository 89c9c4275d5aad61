"""Live overhead: how much of its input the gateway's own traffic resent, and what that cost.

Pure logic on usage records: no store, no clock. The CLI (`tollgate cost live`) and
the management API (`GET /api/analytics/overhead`) fetch the records, the prices and
the plans and hand them here; `live_alternatives` prices the same traffic on other models
and plans, and `live_report` turns the result into JSON and text.

Resent versus new (docs/costlab.md, "Live overhead"): a conversation is the records of
one key that share a session id (the hash of the conversation's opening), taken in
admission order. Its *path* is the list of prefix lengths, in tokens, that the current
branch has passed: 0, every step's prompt, and every answered step's prompt plus its
output. A step whose prompt has P tokens resent the longest prefix on the path that
fits in P; the rest of its prompt is new. When P is shorter than the path's end, the
conversation went back (a retry, an edit, a branch or a restart from its opening):
the path is cut to P before the step is counted. In a conversation that only grows,
this is exactly min(P_i, P_{i-1} + O_{i-1}).

Resent context is what a provider's prefix cache can serve, so it is priced both ways: at the
model's input price, and as if every resent token were a cache hit (its cache-hit price); beside
them, what caching really saved on the records (`UsageRecord.cache_saved`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property

from tollgate.costlab.live_alternatives import (
    PlanUse,
    Price,
    Repriced,
    catalog_prices,
    plan_use,
    reprice,
    served_prices,
)
from tollgate.domain.accounts import Plan
from tollgate.domain.money import token_cost
from tollgate.domain.usage import UsageRecord

GENERATION = ("chat", "completions")  # endpoints whose traffic other chat models could serve
__all__ = [
    "GENERATION", "LiveReport", "PlanUse", "Price", "Repriced", "Scope", "Session", "Step", "Tally",
    "catalog_prices", "cheapest", "live_overhead", "served_prices", "split_conversation",
]


@dataclass(frozen=True)
class Step:
    """One usage record, its prompt split into resent and new tokens."""

    record: UsageRecord
    resent_tokens: int
    resent_cost: int | None  # None: the record's model has no known input price
    branched: bool  # its prompt was shorter than the context the conversation had reached
    # The resent part as if every resent token were a cache hit (at most resent_cost; equal to it for a
    # model with no cache-hit price); None with resent_cost.
    resent_cached_cost: int | None = 0
    cache_priced: bool = False  # the record's model prices cache hits apart

    @property
    def new_tokens(self) -> int:
        return self.record.input_tokens - self.resent_tokens


@dataclass(frozen=True)
class Tally:
    requests: int = 0
    failed: int = 0  # answered with a status other than 200
    input_tokens: int = 0
    resent_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0  # prompt tokens the upstream reported as served from its cache
    cost: int = 0
    resent_cost: int = 0
    unpriced_resent_tokens: int = 0  # resent tokens of models with no known price (not in resent_cost)
    # Caching, as it could be and as it was. resent_cached_cost: resent_cost with every resent token a cache
    # hit (models without a cache-hit price at their input price); cache_priced_resent_tokens: the resent
    # tokens of models that price hits apart. cache_write_tokens and cache_saved: what the upstreams
    # reported and what cache pricing saved on the records (UsageRecord.cache_saved; negative when
    # cache-write premiums cost more than the hits saved).
    resent_cached_cost: int = 0
    cache_priced_resent_tokens: int = 0
    cache_write_tokens: int = 0
    cache_saved: int = 0

    @property
    def new_tokens(self) -> int:
        return self.input_tokens - self.resent_tokens

    @property
    def resent_share(self) -> Decimal:
        return _ratio(self.resent_tokens, self.input_tokens)

    @property
    def resent_cost_share(self) -> Decimal:
        return _ratio(self.resent_cost, self.cost)

    @property
    def resent_cache_saving(self) -> int:
        """What pricing every resent token as a cache hit would take off the resent cost."""
        return self.resent_cost - self.resent_cached_cost

    @classmethod
    def of(cls, steps: Iterable[Step]) -> Tally:
        n = failed = inp = resent = out = cached = cost = resent_cost = unpriced = 0
        hit_cost = hit_priced = written = saved = 0
        for s in steps:
            r = s.record
            n += 1
            failed += r.status != 200
            inp += r.input_tokens
            resent += s.resent_tokens
            out += r.output_tokens
            cached += r.cached_prefix_tokens or 0
            written += r.cache_write_tokens or 0
            saved += r.cache_saved or 0
            cost += r.cost
            if s.resent_cost is None:
                unpriced += s.resent_tokens
            else:
                resent_cost += s.resent_cost
                hit_cost += s.resent_cached_cost or 0
                hit_priced += s.resent_tokens if s.cache_priced else 0
        return cls(n, failed, inp, resent, out, cached, cost, resent_cost, unpriced, hit_cost, hit_priced,
                   written, saved)


@dataclass(frozen=True)
class Session:
    key_id: str
    session: str
    steps: tuple[Step, ...]

    @cached_property
    def tally(self) -> Tally:
        return Tally.of(self.steps)

    @property
    def branches(self) -> int:
        return sum(s.branched for s in self.steps)

    @property
    def first_at(self) -> float:
        return self.steps[0].record.created_at

    @property
    def last_at(self) -> float:
        return self.steps[-1].record.created_at

    @property
    def models(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(s.record.model for s in self.steps))


@dataclass(frozen=True)
class Scope:
    """A key's traffic, or the whole account's."""

    steps: tuple[Step, ...]
    sessions: tuple[Session, ...]
    repriced: tuple[Repriced, ...]
    plans: tuple[PlanUse, ...]

    @cached_property
    def tally(self) -> Tally:
        return Tally.of(self.steps)

    @cached_property
    def no_session(self) -> Tally:
        """Requests outside any conversation (text completions, embeddings): all input new."""
        return Tally.of(s for s in self.steps if s.record.session is None)

    @cached_property
    def generation(self) -> Tally:
        """The requests the model comparison re-prices (chat and text completions)."""
        return Tally.of(s for s in self.steps if s.record.endpoint in GENERATION)


@dataclass(frozen=True)
class LiveReport:
    account_id: str
    since: float | None
    until: float | None
    total: Scope
    keys: tuple[tuple[str, Scope], ...]  # (key id, scope), the biggest spender first
    key_names: Mapping[str, str] = field(default_factory=dict)
    unpriced_models: tuple[str, ...] = ()  # models in the records with no served price
    unpriced_catalog: tuple[str, ...] = ()  # catalog chat models with no input price


def split_conversation(records: Sequence[UsageRecord]) -> list[tuple[UsageRecord, int, bool]]:
    """(record, resent tokens, branched) for the records of one conversation, in admission order.

    Records that reached no upstream (no input tokens: refused, invalid) send and leave
    nothing. An unanswered step (status not 200) leaves its prompt but not its output:
    the client's retry resends the prompt, and any partial answer it kept counts as new.
    """
    path = [0]
    out = []
    for r in sorted(records, key=lambda r: r.created_at):
        prompt = r.input_tokens
        if prompt <= 0:
            out.append((r, 0, False))
            continue
        branched = prompt < path[-1]
        while path[-1] > prompt:
            path.pop()
        out.append((r, path[-1], branched))
        if prompt > path[-1]:
            path.append(prompt)
        if r.status == 200 and r.output_tokens > 0:
            path.append(prompt + r.output_tokens)
    return out


def live_overhead(
    records: Sequence[UsageRecord],
    prices: Sequence[Price],
    plans: Sequence[Plan],
    account_id: str,
    since: float | None = None,
    until: float | None = None,
    key_names: Mapping[str, str] | None = None,
    unpriced_catalog: Sequence[str] = (),
) -> LiveReport:
    """Everything the live report shows. `prices` with source "served" also price resent context."""
    served = {p.model: p for p in prices if p.source == "served"}
    foreign = [r for r in records if r.account_id != account_id]
    if foreign:
        raise ValueError(f"record {foreign[0].request_id} belongs to another account")
    conversations: dict[tuple[str, str], list[UsageRecord]] = defaultdict(list)
    steps: dict[int, Step] = {}  # by id() of the record
    for r in records:
        if r.session is not None:
            conversations[(r.key_id, r.session)].append(r)
        else:
            steps[id(r)] = Step(r, 0, 0, False)  # outside a conversation: nothing resent
    sessions = []
    for (key_id, session), group in conversations.items():
        own = tuple(_step(r, resent, branched, served) for r, resent, branched in split_conversation(group))
        steps.update((id(s.record), s) for s in own)
        sessions.append(Session(key_id, session, own))
    ordered = tuple(steps[id(r)] for r in records)
    sessions.sort(key=lambda s: (s.first_at, s.key_id, s.session))
    by_key: dict[str, list[Step]] = defaultdict(list)
    for s in ordered:
        by_key[s.record.key_id].append(s)
    key_sessions: dict[str, list[Session]] = defaultdict(list)
    for session in sessions:
        key_sessions[session.key_id].append(session)
    keys = [(k, _scope(own, key_sessions[k], prices, plans)) for k, own in by_key.items()]
    keys.sort(key=lambda item: (-item[1].tally.cost, item[0]))
    return LiveReport(
        account_id=account_id, since=since, until=until, total=_scope(ordered, sessions, prices, plans),
        keys=tuple(keys), key_names=dict(key_names or {}),
        unpriced_models=tuple(sorted({s.record.model for s in ordered if s.resent_cost is None})),
        unpriced_catalog=tuple(unpriced_catalog),
    )


def _step(r: UsageRecord, resent: int, branched: bool, served: Mapping[str, Price]) -> Step:
    """Resent context is priced at the record's model's input price, rounded up, never above its charge;
    and at its cache-hit price (what a prefix cache could make of it), never above that."""
    price = served.get(r.model)
    priced = price is not None and price.cached_input_per_mtok is not None
    if resent == 0:
        return Step(r, 0, 0, branched, 0, priced)
    if price is None:
        return Step(r, resent, None, branched, None)
    cost = min(r.cost, token_cost(resent, price.input_per_mtok))
    return Step(r, resent, cost, branched, min(cost, token_cost(resent, price.hit_per_mtok)), priced)


def _scope(steps: Sequence[Step], sessions: Sequence[Session], prices: Sequence[Price], plans: Sequence[Plan]) -> Scope:
    generation = [s for s in steps if s.record.endpoint in GENERATION]
    repriced = reprice([s.record.input_tokens for s in generation], [s.record.output_tokens for s in generation],
                       [s.resent_tokens for s in generation], prices)
    records = [s.record for s in steps]
    return Scope(tuple(steps), tuple(sessions), tuple(repriced), tuple(plan_use(p, records) for p in plans))


def _ratio(part: int, whole: int) -> Decimal:
    return Decimal(part) / Decimal(whole) if whole else Decimal(0)


def cheapest(scope: Scope, source: str | None = None) -> Repriced | None:
    """The cheapest exact alternative (optionally of one source)."""
    exact = [r for r in scope.repriced if not r.lower_bound and (source is None or r.price.source == source)]
    return exact[0] if exact else None

