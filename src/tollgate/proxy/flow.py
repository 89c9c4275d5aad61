"""The request hot path, top to bottom: admit -> relay -> settle, for every data-plane endpoint.

Authentication and request checks happen in the endpoint before this; routing
(`auto`) has already chosen `call.chain`. Every path out of `run` settles or
releases the reservation and writes exactly one usage record. The flow speaks
the domain: it hands the sink refusals and settlements, never HTTP statuses.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol

import orjson

from tollgate.domain.accounts import KeyContext
from tollgate.domain.grants import Settled
from tollgate.domain.pools import PoolState
from tollgate.domain.pricing import cache_saving
from tollgate.domain.refusals import (
    BudgetExhausted,
    RateLimited,
    LedgerBusy,
    Refusal,
    RequestExceedsBudget,
    UpstreamBroke,
    UpstreamRejected,
    UpstreamUnavailable,
)
from tollgate.domain.usage import CLIENT_GONE, GATEWAY_FAILED, OK, UPSTREAM_FAILED, UsageRecord
from tollgate.ledger.protocol import BudgetLedger
from tollgate.proxy import estimate, plausible, relay, unreported
from tollgate.proxy.upstream_answer import answer_text, error_text, without_secret
from tollgate.proxy.admission import MIN_OUTPUT_TOKENS, Admitter, output_allowance
from tollgate.proxy.call import CHAT, COMPLETIONS, EMBEDDINGS, OUTPUT_LIMIT_FIELDS, Call
from tollgate.proxy.exchange import Exchange
from tollgate.proxy.guard import DisconnectGuard
from tollgate.proxy.metrics import RouteMetrics
from tollgate.proxy.models import ServedModel
from tollgate.proxy.sink import Sink
from tollgate.proxy.sse import EventStream, Reported, Usage, usage_from
from tollgate.proxy.traffic import Traffic, refusal_reason
from tollgate.proxy.upstream.base import UpstreamError


class SpendWatcher(Protocol):
    """Told of every settlement and budget refusal (the alert webhooks, tollgate.alerts): O(1), never blocks."""

    def settled(self, ctx: KeyContext, states: tuple[PoolState, ...]) -> None: ...
    def exhausted(self, ctx: KeyContext, refusal: BudgetExhausted) -> None: ...


class Flow:
    def __init__(self, admitter: Admitter, ledger: BudgetLedger, clock: Callable[[], float] = time.time,
                 metrics: RouteMetrics | None = None, watch: SpendWatcher | None = None,
                 traffic: Traffic | None = None) -> None:
        self.admitter = admitter
        self.ledger = ledger
        self.clock = clock
        self.metrics = metrics
        self.watch = watch
        self.traffic = traffic  # every request's outcome, for /metrics and the request log

    # -- entry ----------------------------------------------------------------

    async def run(self, ctx: KeyContext, call: Call, sink: Sink, guard: DisconnectGuard) -> None:
        ex = Exchange(ctx, call, guard, self.clock())
        model = call.chain[0]
        bound = self._prompt_bound(call, model)
        try:
            ex.admission = await self.admitter.admit(ctx, model, bound, self._output_cap(call, model), call.choices)
        except (BudgetExhausted, RateLimited, RequestExceedsBudget) as refusal:
            if self.watch is not None and isinstance(refusal, BudgetExhausted):
                self.watch.exhausted(ctx, refusal)
            await self._refuse(ex, sink, refusal, refusal.reason)
            return
        except LedgerBusy as refusal:
            # Not recorded: a record would add to the very backlog that refused it (the ledger counts these).
            self._observe(ex, self._record(ex, sink.status_for(refusal), None, None), refusal_reason(refusal))
            await sink.refuse(ex, refusal)
            return
        try:
            ex.attempt = await relay.send(call.chain, call.path, lambda m: self._body(ex, m), call.request_id,
                                          call.headers, self.traffic)
        except UpstreamUnavailable as refusal:
            await self._release(ex)
            await self._refuse(ex, sink, refusal, "; ".join(refusal.failures)[:500])
            return
        except asyncio.CancelledError:
            await self._release(ex)
            if not guard.absorb():
                raise
            await self._record_failure(ex, CLIENT_GONE, "client disconnected")
            return
        except BaseException as error:
            await self._abandon(ex, error)
            raise
        try:
            if ex.attempt.response.status != 200:
                await self._upstream_refused(ex, sink)
            elif call.stream:
                await self._stream(ex, sink)
            else:
                await self._complete(ex, sink)
        except BaseException as error:
            await self._abandon(ex, error)
            raise
        finally:
            relay.done(ex.attempt)

    # -- the request to send --------------------------------------------------

    def _prompt_bound(self, call: Call, model: ServedModel) -> int:
        if call.endpoint == CHAT:
            return estimate.chat_prompt_bound(call.body, model.counter)
        if call.endpoint == COMPLETIONS:
            return estimate.completion_prompt_bound(call.body, model.counter)
        return estimate.embedding_input_bound(call.body, model.counter)

    def _output_cap(self, call: Call, model: ServedModel) -> int:
        """The most output tokens the request may produce on `model`: every choice, each at most the
        model's `max_output` (and context), whatever the client asked for."""
        if call.endpoint == EMBEDDINGS:
            return 0
        config = model.config
        cap = config.max_output if config.max_output <= config.context else config.context
        if call.max_tokens is not None and call.max_tokens < cap:
            cap = call.max_tokens
        return cap * call.choices

    def _body(self, ex: Exchange, model: ServedModel) -> bytes | None:
        call, admission = ex.call, ex.admission
        body = dict(call.body)
        body["model"] = model.config.upstream_model
        if call.endpoint == EMBEDDINGS:
            return orjson.dumps(body)
        cap = self._output_cap(call, model)
        allowed = output_allowance(admission.grant, model, admission.prompt_bound, cap) // call.choices
        if allowed < MIN_OUTPUT_TOKENS:
            return None
        # Always explicit, and only one: an upstream's own default, or another cap field it prefers,
        # could exceed what was reserved.
        for name in OUTPUT_LIMIT_FIELDS:
            body.pop(name, None)
        body[call.max_tokens_field] = allowed
        if call.stream:
            options = body.get("stream_options")
            body["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
        return orjson.dumps(body)

    # -- answers --------------------------------------------------------------

    async def _complete(self, ex: Exchange, sink: Sink) -> None:
        response = ex.attempt.response
        try:
            raw = await response.read()
        except asyncio.CancelledError:
            await response.aclose()
            if not ex.guard.absorb():
                raise
            await self._settle(ex, self._estimate(ex, "", 0, prompt_only=True), CLIENT_GONE, "client disconnected")
            return
        except UpstreamError as exc:
            await self._settle_failed(ex, sink, UpstreamBroke(f"the upstream broke off its answer: {exc}",
                                                              timed_out=exc.kind == "timeout"))
            return
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            obj = None
        if not isinstance(obj, dict):
            await self._settle_failed(ex, sink, UpstreamBroke("the upstream sent an answer that is not a JSON object"))
            return
        usage = self._usage(ex, usage_from(obj), lambda: self._estimate(ex, answer_text(obj), 0))
        ex.guard.stop()  # the answer is in: a client leaving now changes nothing
        settled = await self._settle(ex, usage, OK, None)
        model = ex.attempt.model
        changed = model.config.upstream_model != model.id or usage.estimated
        if changed:
            obj["model"] = model.id
            if usage.estimated:
                obj["usage"] = usage_block(usage)
        await sink.reply(ex, raw, obj if changed else None, settled)

    async def _stream(self, ex: Exchange, sink: Sink) -> None:
        call, response = ex.call, ex.attempt.response
        events = EventStream()
        failure: str | None = None
        status = OK
        held: list[bytes] = []  # the events that arrived with the end: sent with the tail, in one write
        await sink.open(ex)
        try:
            async for data in response.chunks():
                out = events.feed(data)
                if events.error is not None:
                    raise UpstreamError("protocol", events.error)
                if events.done:
                    held = out
                    break
                if out:
                    if ex.ttft_ms is None:
                        ex.ttft_ms = ex.latency_ms()
                    await sink.events(out)
        except asyncio.CancelledError:
            await response.aclose()
            if not ex.guard.absorb():
                raise
            failure, status = "client disconnected", CLIENT_GONE
        except UpstreamError as exc:
            failure, status = f"upstream {exc.kind}: {exc}", UPSTREAM_FAILED
            await response.aclose()  # a stream given up on must not go on generating
        if ex.ttft_ms is None and held:
            ex.ttft_ms = ex.latency_ms()  # the whole answer came with its end
        reported = events.usage if events.done or status == OK else None
        usage = self._usage(ex, reported, lambda: self._estimate(ex, events.text(), events.pieces))
        if failure is None and not events.done and events.usage is None:
            failure, status = "upstream ended the stream early", UPSTREAM_FAILED
        ex.guard.stop()  # the stream is over: nothing left to cancel
        settled = await self._settle(ex, usage, status, failure)
        if status == CLIENT_GONE:
            return
        usage_event = None
        if call.include_usage:
            usage_event = events.usage_event or {"object": "chat.completion.chunk", "model": ex.model.id,
                                                 "choices": [], "usage": usage_block(usage)}
            if usage.estimated:
                usage_event["usage"] = usage_block(usage)  # the upstream's numbers were not believed, or not used
        await sink.close(ex, usage, settled, usage_event, failure, held)

    async def _upstream_refused(self, ex: Exchange, sink: Sink) -> None:
        """A 4xx from the upstream is the client's own error: pass it on, charge nothing (but a 401, which
        is the gateway's own credentials refused: a 502).

        Any other status that is not an answer (a 1xx, 2xx other than 200, 3xx, a 5xx the
        relay does not retry, a number no HTTP knows) is the upstream failing: a 502, charging nothing.
        """
        response = ex.attempt.response
        if not 400 <= response.status <= 499:
            await response.aclose()
            await self._release(ex)
            refusal = UpstreamBroke(f"the upstream answered HTTP {response.status}, not an answer")
            await self._refuse(ex, sink, refusal, refusal.message)
            return
        try:
            raw = await response.read()
        except UpstreamError:
            raw = b""
        await self._release(ex)
        secret = ex.attempt.upstream.secret
        if secret:  # taken out before error_text cuts the body short, and again from the message it decoded
            raw = raw.replace(secret.encode(), b"[redacted]")
        message, code = error_text(raw)
        message = without_secret(message, secret)
        if response.status == 401:
            # The upstream refused the gateway's own credentials: the client's key is fine, and a 401 would
            # tell it otherwise. The gateway failed this request: a 502, charging nothing.
            refusal = UpstreamBroke(f"the upstream {ex.attempt.upstream.name!r} refused the gateway's credentials"
                                    f" (HTTP 401: {message[:300]}); the operator must fix its API key")
            await self._refuse(ex, sink, refusal, refusal.message[:500])
            return
        await self._refuse(ex, sink, UpstreamRejected(response.status, code, message), message[:500])

    # -- settlement -----------------------------------------------------------

    def _estimate(self, ex: Exchange, text: str, pieces: int, prompt_only: bool = False) -> Usage:
        """Usage the upstream did not report: the server's own count where we can make it, else a bound."""
        return unreported.count(ex.call, ex.model.counter, ex.admission.prompt_bound, self._bounds(ex).output,
                                text, pieces, prompt_only)

    def _bounds(self, ex: Exchange) -> plausible.Limits:
        """What the request could have produced: its prompt bound, the output it was allowed, the context.

        Fixed once an upstream answered, so worked out once per request (reading the usage and
        settling it both hold the counts to it).
        """
        if ex.bounds is None:
            model, admission = ex.model, ex.admission
            output = output_allowance(admission.grant, model, admission.prompt_bound, self._output_cap(ex.call, model))
            ex.bounds = plausible.limits(admission.prompt_bound, output, model.config.context)
        return ex.bounds

    def _usage(self, ex: Exchange, reported: Reported | None, estimate: Callable[[], Usage]) -> Usage:
        """The upstream's usage once checked, or the gateway's own count when it reported none."""
        bounds = self._bounds(ex)
        if reported is not None and ex.attempt.upstream.reports_usage:
            return plausible.from_upstream(reported, bounds)
        return plausible.within(estimate(), bounds)

    async def _settle(self, ex: Exchange, usage: Usage, status: int, error: str | None,
                      reason: str | None = None) -> Settled:
        ex.finished = True
        grant = ex.grant
        usage = plausible.within(usage, self._bounds(ex))  # (a no-op for usage checked already)
        if usage.doubt is not None:
            error = (error + "; " if error else "") + usage.doubt
        parts = usage.parts  # each part of the prompt at its own rate (domain/pricing.py)
        cost = ex.model.charge(parts)
        if cost > grant.amount:
            error = (error + "; " if error else "") + f"cost {cost} capped at the reservation"
        record = self._record(ex, status, error, usage)
        record.window_start = grant.window_start("subscription")
        record.key_window_start = grant.window_start("key")
        record.cache_write_tokens = usage.cache_write_tokens
        if usage.cached_tokens is not None or usage.cache_write_tokens is not None:
            record.cache_saved = cache_saving(ex.model.config.price, parts)
        # The rate correction: applied here for the in-process limiter, or handed to a ledger that takes it.
        rate = self.admitter.settle_rate(ex.admission, usage.prompt_tokens, usage.completion_tokens)
        settled = await self.ledger.settle(grant, cost, record, rate)
        if self.watch is not None:
            self.watch.settled(ex.ctx, settled.states)
        self._observe(ex, record, reason)
        return settled

    async def _release(self, ex: Exchange) -> None:
        ex.finished = True
        await self.ledger.release(ex.grant)

    async def _abandon(self, ex: Exchange, error: BaseException) -> None:
        """A failure nobody foresaw (or a cancellation not absorbed): the reservation still ends, once.

        Called on the way out of `run` with the error still propagating; settles the prompt when an
        upstream answered (it read it), else releases, and writes the one usage record either way.
        """
        if ex.finished or ex.admission is None:
            return
        gone = isinstance(error, asyncio.CancelledError)
        status = CLIENT_GONE if gone else GATEWAY_FAILED
        why = "client disconnected" if gone else f"gateway error: {type(error).__name__}: {error}"[:500]
        if ex.attempt is None:
            await self._release(ex)
            await self._record_failure(ex, status, why)
            return
        await ex.attempt.response.aclose()
        await self._settle(ex, self._estimate(ex, "", 0, prompt_only=True), status, why)

    async def _settle_failed(self, ex: Exchange, sink: Sink, refusal: UpstreamBroke) -> None:
        """The upstream answered and then failed: charge the prompt it read, tell the client."""
        usage = self._estimate(ex, "", 0, prompt_only=True)
        await self._settle(ex, usage, UPSTREAM_FAILED, refusal.message, refusal_reason(refusal))
        await sink.refuse(ex, refusal)

    def _record(self, ex: Exchange, status: int, error: str | None, usage: Usage | None) -> UsageRecord:
        ctx, call, model = ex.ctx, ex.call, ex.model
        return UsageRecord(
            request_id=call.request_id, created_at=ex.started, account_id=ctx.account.id, key_id=ctx.key.id,
            subscription_id=ctx.key.subscription_id, model=model.id, upstream_model=model.config.upstream_model,
            route=call.route, endpoint=call.endpoint, status=status,
            input_tokens=usage.prompt_tokens if usage else 0, output_tokens=usage.completion_tokens if usage else 0,
            cost=0, latency_ms=ex.latency_ms(), estimated=bool(usage and usage.estimated),
            usage_basis=usage.basis if usage else None,
            stream=call.stream, fallbacks=ex.fallbacks, error=error, session=call.session,
            cached_prefix_tokens=usage.cached_tokens if usage else None, request_text=call.request_text,
            client=call.client, ttft_ms=ex.ttft_ms,
        )

    async def _refuse(self, ex: Exchange, sink: Sink, refusal: Refusal, error: str) -> None:
        """Record the refusal with the status the client is told (nothing is charged), then tell it."""
        await self._record_failure(ex, sink.status_for(refusal), error, refusal_reason(refusal))
        await sink.refuse(ex, refusal)

    async def _record_failure(self, ex: Exchange, status: int, error: str, reason: str | None = None) -> None:
        record = self._record(ex, status, error, None)
        self._observe(ex, record, reason)
        await self.ledger.record(record)

    def _observe(self, ex: Exchange, record: UsageRecord, reason: str | None = None) -> None:
        """Every request passes here once, when it is over (`reason`: the refusal's name, when refused)."""
        call = ex.call
        if self.metrics is not None and call.route is not None:
            self.metrics.observe(f"{call.profile}:{call.route}", record.model, record.status, record.latency_ms,
                                 record.cost, record.input_tokens, record.output_tokens, record.fallbacks)
        if self.traffic is not None:
            self.traffic.finished(record, ex.attempt.upstream.name if ex.attempt is not None else None, reason)


def usage_block(usage: Usage) -> dict:
    """An OpenAI usage object for usage the gateway counted itself (`estimated: true`), saying how
    (`usage_basis`: "counted" as the server counts, or "bound", an upper bound)."""
    return {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.prompt_tokens + usage.completion_tokens, "estimated": usage.estimated,
            "usage_basis": usage.basis}
