"""`guard(client)`: the official `openai` client, but a spent budget raises instead of sleeping.

    client = guard(OpenAI(base_url=..., api_key=...))          # or AsyncOpenAI
    try:
        client.chat.completions.create(model=..., messages=...)
    except BudgetExhausted as exc:
        save_the_conversation(); schedule_retry(exc.reset_at)

The guarded client behaves like the original (same attributes, same return values, sync
or async). The SDK's own retry loop is switched off and replaced by one that retries only
what a short wait can fix (connection errors, 5xx, a per-minute 429 whose `Retry-After` is
at most `max_wait`), so no call ever sleeps for hours. A budget 429 raises `BudgetExhausted`
(chained to the original `openai.RateLimitError`) with the reset time from the error body,
`Retry-After`, or `/v1/usage`.
"""

from __future__ import annotations

import asyncio
import inspect
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from tollgate.agent.classify import classify_exception
from tollgate.agent.errors import BudgetExhausted, ErrorInfo, ErrorKind
from tollgate.agent.usage import UsageClient, UsageError

_PLAIN = (str, bytes, int, float, bool, type(None))


@dataclass
class _Policy:
    max_retries: int
    max_wait: float
    sleep: Callable[[float], Any]
    async_sleep: Callable[[float], Awaitable[Any]]
    usage: UsageClient | None
    rng: random.Random = field(default_factory=random.Random)

    def delay_or_raise(self, exc: Exception, attempt: int) -> float:
        """Seconds to wait before retrying `exc`, or raise what the caller should see."""
        info = classify_exception(exc)
        if info is None:
            raise exc
        if info.kind is ErrorKind.BUDGET:
            raise self._budget_error(info) from exc
        if not info.retriable or attempt >= self.max_retries:
            raise exc
        if info.kind is ErrorKind.RATE_LIMIT and info.retry_after is not None:
            if info.retry_after > self.max_wait:
                raise exc  # a long wait is the caller's decision, never a silent sleep
            return info.retry_after
        return min(8.0, 0.5 * 2**attempt) * (1 - 0.25 * self.rng.random())

    def _budget_error(self, info: ErrorInfo) -> BudgetExhausted:
        if info.reset_at is None and self.usage is not None:
            try:
                status = self.usage.fetch()
            except UsageError:
                status = None
            if status is not None and status.resets_at is not None:
                info = replace(info, reset_at=status.resets_at, reset_source="usage")
        return BudgetExhausted(info)


def _is_client(value: Any) -> bool:
    return hasattr(value, "with_options") and hasattr(value, "chat")


def _wrap(value: Any, policy: _Policy) -> Any:
    if isinstance(value, (*_PLAIN, type)):
        return value
    if callable(value):
        return _GuardedCall(value, policy)
    if type(value).__module__.split(".")[0] in ("openai", "anthropic") and not hasattr(value, "model_dump"):
        return GuardedClient(value, policy)  # a resource such as `client.chat.completions`
    return value


class _GuardedCall:
    """A method of the client: retried by the policy, budget errors translated."""

    def __init__(self, fn: Callable[..., Any], policy: _Policy) -> None:
        self._fn = fn
        self._policy = policy

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        attempt = 0
        while True:
            try:
                result = self._fn(*args, **kwargs)
            except Exception as exc:
                self._policy.sleep(self._policy.delay_or_raise(exc, attempt))
                attempt += 1
                continue
            if inspect.isawaitable(result):
                return self._async_retry(result, args, kwargs)
            return GuardedClient(result, self._policy) if _is_client(result) else result

    async def _async_retry(self, first: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        pending, attempt = first, 0
        while True:
            try:
                result = await pending
            except Exception as exc:
                await self._policy.async_sleep(self._policy.delay_or_raise(exc, attempt))
                attempt += 1
                pending = self._fn(*args, **kwargs)
                continue
            return GuardedClient(result, self._policy) if _is_client(result) else result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fn, name)


class GuardedClient:
    """A transparent proxy over an `openai` client or one of its resources (see `guard`)."""

    def __init__(self, target: Any, policy: _Policy) -> None:
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_policy", policy)

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        return value if name.startswith("_") else _wrap(value, self._policy)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._target, name, value)

    def __dir__(self) -> list[str]:
        return dir(self._target)

    def __repr__(self) -> str:
        return f"guard({self._target!r})"

    @property
    def unguarded(self) -> Any:
        """The wrapped object itself (with the SDK's retries switched off)."""
        return self._target


def guard(client: Any, *, max_retries: int | None = None, max_wait: float = 60.0,
          sleep: Callable[[float], Any] = time.sleep,
          async_sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
          usage: UsageClient | bool | None = True) -> GuardedClient:
    """Wrap an `openai.OpenAI` or `openai.AsyncOpenAI` client (see the module docstring).

    `max_retries` defaults to the client's own setting; `usage=True` reads `/v1/usage` for
    the reset time when a budget 429 carries neither `reset_at` nor `Retry-After`.
    """
    retries = max_retries if max_retries is not None else int(getattr(client, "max_retries", 2) or 0)
    usage_client = UsageClient.from_client(client) if usage is True else (usage or None)
    inner = client.with_options(max_retries=0) if hasattr(client, "with_options") else client
    policy = _Policy(max_retries=retries, max_wait=max_wait, sleep=sleep, async_sleep=async_sleep, usage=usage_client)
    return GuardedClient(inner, policy)
