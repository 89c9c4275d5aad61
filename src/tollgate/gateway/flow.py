"""The request hot path, top to bottom: admit -> relay -> settle, for every data-plane endpoint.

Authentication and request checks happen in the endpoint before this; routing
(`auto`) has already chosen `call.chain`. Every path out of `run` settles or
releases the reservation and writes exactly one usage record.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import orjson

from tollgate.accounts.models import KeyContext
from tollgate.api.errors import APIError
from tollgate.budget.errors import BudgetExhausted, RateLimited
from tollgate.budget.ledger import BudgetLedger, Settled
from tollgate.gateway import estimate, relay
from tollgate.gateway.admission import MIN_OUTPUT_TOKENS, Admission, Admitter, output_allowance
from tollgate.gateway.call import CHAT, COMPLETIONS, EMBEDDINGS, Call
from tollgate.gateway.guard import DisconnectGuard
from tollgate.gateway.headers import budget_headers, stream_headers
from tollgate.gateway.models import ServedModel
from tollgate.gateway.refusals import budget_refusal, rate_refusal
from tollgate.gateway.sink import Sink
from tollgate.gateway.sse import EventStream, Usage, usage_from
from tollgate.metering.records import UsageRecord
from tollgate.routing.metrics import RouteMetrics
from tollgate.upstream.base import UpstreamError

# Without a tokenizer, an answer that reports no usage is counted at one token per
# three bytes of prompt: above the real count for prose and code alike.
ESTIMATE_BYTES_PER_TOKEN = 3


class Flow:
    def __init__(self, admitter: Admitter, ledger: BudgetLedger, clock: Callable[[], float] = time.time,
                 metrics: RouteMetrics | None = None) -> None:
        self.admitter = admitter
        self.ledger = ledger
        self.clock = clock
        self.metrics = metrics

    # -- entry ----------------------------------------------------------------

    async def run(self, ctx: KeyContext, call: Call, sink: Sink, guard: DisconnectGuard) -> None:
        model = call.chain[0]
        started, t0 = self.clock(), time.perf_counter()
        bound = self._prompt_bound(call, model)
        try:
            admission = await self.admitter.admit(ctx, model, bound, self._output_cap(call, model))
        except (BudgetExhausted, RateLimited) as exc:
            error = budget_refusal(exc) if isinstance(exc, BudgetExhausted) else rate_refusal(exc)
            await self._record_failure(ctx, call, model, started, t0, error.status, error.code)
            await sink.error(error)
            return
        try:
            attempt = await relay.send(call.chain, call.path, lambda m: self._body(call, m, admission), call.request_id)
        except relay.RelayFailed as exc:
            await self.ledger.release(admission.grant)
            error = _relay_error(exc)
            await self._record_failure(ctx, call, model, started, t0, error.status, "; ".join(exc.failures)[:500])
            await sink.error(error)
            return
        except asyncio.CancelledError:
            await self.ledger.release(admission.grant)
            if not guard.absorb():
                raise
            await self._record_failure(ctx, call, model, started, t0, 499, "client disconnected")
            return
        try:
            if attempt.response.status != 200:
                await self._upstream_refused(call, attempt, admission, sink, started, t0)
            elif call.stream:
                await self._stream(call, attempt, admission, sink, guard, started, t0)
            else:
                await self._complete(call, attempt, admission, sink, guard, started, t0)
        finally:
            relay.done(attempt)

    # -- the request to send --------------------------------------------------

    def _prompt_bound(self, call: Call, model: ServedModel) -> int:
        if call.endpoint == CHAT:
            return estimate.chat_prompt_bound(call.body, model.counter)
        if call.endpoint == COMPLETIONS:
            return estimate.completion_prompt_bound(call.body, model.counter)
        return estimate.embedding_input_bound(call.body, model.counter)

    def _output_cap(self, call: Call, model: ServedModel) -> int:
        if call.endpoint == EMBEDDINGS:
            return 0
        cap = call.max_tokens if call.max_tokens is not None else model.config.max_output
        return cap * call.choices

    def _body(self, call: Call, model: ServedModel, admission: Admission) -> tuple[bytes, int | None] | None:
        body = dict(call.body)
        body["model"] = model.config.upstream_model
        if call.endpoint == EMBEDDINGS:
            return orjson.dumps(body), None
        cap = self._output_cap(call, model)
        allowed = output_allowance(admission.grant, model, admission.prompt_bound, cap) // call.choices
        if allowed < MIN_OUTPUT_TOKENS:
            return None
        # Always explicit: an upstream's own default could exceed what was reserved.
        body[call.max_tokens_field] = allowed
        if call.stream:
            options = body.get("stream_options")
            body["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
        return orjson.dumps(body), allowed

    # -- answers --------------------------------------------------------------

    async def _complete(self, call, attempt, admission, sink, guard, started, t0) -> None:
        try:
            raw = await attempt.response.read()
        except asyncio.CancelledError:
            await attempt.response.aclose()
            if not guard.absorb():
                raise
            usage = self._estimate(call, attempt.model, "", 0, prompt_only=True)
            await self._settle(call, attempt, admission, usage, started, t0, 499, "client disconnected")
            return
        except UpstreamError as exc:
            usage = self._estimate(call, attempt.model, "", 0, prompt_only=True)
            await self._settle(call, attempt, admission, usage, started, t0, 502, f"upstream {exc.kind}: {exc}")
            await sink.error(_upstream_broke(exc))
            return
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            obj = None
        if not isinstance(obj, dict):
            usage = self._estimate(call, attempt.model, "", 0, prompt_only=True)
            await self._settle(call, attempt, admission, usage, started, t0, 502, "upstream sent invalid JSON")
            await sink.error(APIError(502, "upstream_error", "the upstream sent an answer that is not JSON"))
            return
        usage = usage_from(obj) or self._estimate(call, attempt.model, _answer_text(obj), 0)
        guard.stop()  # the answer is in: a client leaving now changes nothing
        settled = await self._settle(call, attempt, admission, usage, started, t0, 200, None)
        changed = attempt.model.config.upstream_model != attempt.model.id or usage.estimated
        if changed:
            obj["model"] = attempt.model.id
            if usage.estimated:
                obj["usage"] = usage_block(usage)
        headers = self._headers(call, attempt) + budget_headers(settled, admission)
        await sink.reply(raw, obj if changed else None, headers)

    async def _stream(self, call, attempt, admission, sink, guard, started, t0) -> None:
        events = EventStream()
        failure: str | None = None
        status = 200
        held: list[bytes] = []  # the events that arrived with the end: sent with the tail, in one write
        await sink.open(self._headers(call, attempt) + stream_headers(admission))
        try:
            async for data in attempt.response.chunks():
                out = events.feed(data)
                if events.done:
                    held = out
                    break
                if out:
                    await sink.events(out)
        except asyncio.CancelledError:
            await attempt.response.aclose()
            if not guard.absorb():
                raise
            failure, status = "client disconnected", 499
        except UpstreamError as exc:
            failure, status = f"upstream {exc.kind}: {exc}", 502
        if events.usage is not None and (events.done or status == 200):
            usage = events.usage
        else:
            usage = self._estimate(call, attempt.model, events.text(), events.pieces)
        if failure is None and not events.done and events.usage is None:
            failure, status = "upstream ended the stream early", 502
        guard.stop()  # the stream is over: nothing left to cancel
        settled = await self._settle(call, attempt, admission, usage, started, t0, status, failure)
        if status == 499:
            return
        usage_event = None
        if call.include_usage:
            usage_event = events.usage_event or {"object": "chat.completion.chunk", "model": attempt.model.id,
                                                 "choices": [], "usage": usage_block(usage)}
        await sink.close(usage, settled.charged, usage_event, failure, held)

    async def _upstream_refused(self, call, attempt, admission, sink, started, t0) -> None:
        """A 4xx from the upstream is the client's own error: pass it on, charge nothing."""
        try:
            raw = await attempt.response.read()
        except UpstreamError:
            raw = b""
        await self.ledger.release(admission.grant)
        status = attempt.response.status
        message, code = _upstream_error_text(raw)
        await self._record_failure(admission.ctx, call, attempt.model, started, t0, status, message[:500])
        await sink.error(APIError(status, code, message, param=None))

    # -- settlement -----------------------------------------------------------

    def _estimate(self, call: Call, model: ServedModel, text: str, pieces: int, prompt_only: bool = False) -> Usage:
        """Usage the upstream did not report, counted here; marked estimated."""
        if model.counter is not None:
            if call.endpoint == CHAT:
                prompt = model.counter.count_chat(call.body.get("messages") or [])
            else:
                prompt = estimate.completion_prompt_bound(call.body, model.counter)
        else:
            prompt = -(-self._prompt_bound(call, model) // ESTIMATE_BYTES_PER_TOKEN)
        completion = 0 if prompt_only or call.endpoint == EMBEDDINGS else estimate.text_tokens(text, model.counter, pieces)
        return Usage(prompt, completion, estimated=True)

    async def _settle(self, call, attempt, admission: Admission, usage: Usage, started, t0, status, error) -> Settled:
        model = attempt.model
        cost = model.cost(usage.prompt_tokens, usage.completion_tokens)
        if cost > admission.grant.amount:
            error = (error + "; " if error else "") + f"cost {cost} capped at the reservation"
        record = self._record(admission.ctx, call, model, started, t0, status, error, usage, attempt.fallbacks)
        record.window_start = admission.grant.window_start("subscription")
        record.key_window_start = admission.grant.window_start("key")
        settled = await self.ledger.settle(admission.grant, cost, record)
        self.admitter.settle_rate(admission, usage.prompt_tokens, usage.completion_tokens)
        self._observe(call, record)
        return settled

    def _record(self, ctx, call, model, started, t0, status, error, usage: Usage | None, fallbacks=0) -> UsageRecord:
        return UsageRecord(
            request_id=call.request_id, created_at=started, account_id=ctx.account.id, key_id=ctx.key.id,
            subscription_id=ctx.key.subscription_id, model=model.id, upstream_model=model.config.upstream_model,
            route=call.route, endpoint=call.endpoint, status=status,
            input_tokens=usage.prompt_tokens if usage else 0, output_tokens=usage.completion_tokens if usage else 0,
            cost=0, latency_ms=(time.perf_counter() - t0) * 1000.0, estimated=bool(usage and usage.estimated),
            stream=call.stream, fallbacks=fallbacks, error=error, session=call.session,
            cached_prefix_tokens=usage.cached_tokens if usage else None, request_text=call.request_text,
            client=call.client,
        )

    async def _record_failure(self, ctx, call, model, started, t0, status: int, error: str) -> None:
        record = self._record(ctx, call, model, started, t0, status, error, None)
        self._observe(call, record)
        await self.ledger.record(record)

    def _observe(self, call: Call, record: UsageRecord) -> None:
        if self.metrics is not None and call.route is not None:
            self.metrics.observe(f"{call.profile}:{call.route}", record.model, record.status, record.latency_ms,
                                 record.cost, record.input_tokens, record.output_tokens, record.fallbacks)

    def _headers(self, call: Call, attempt: relay.Attempt) -> list[tuple[bytes, bytes]]:
        headers = [(b"x-request-id", call.request_id.encode()), (b"x-tollgate-model", attempt.model.id.encode())]
        if call.route is not None:
            headers.append((b"x-tollgate-route", call.route.encode()))
        if attempt.fallbacks:
            headers.append((b"x-tollgate-fallbacks", str(attempt.fallbacks).encode()))
        return headers + call.extra_headers


def usage_block(usage: Usage) -> dict:
    """An OpenAI usage object for usage the gateway counted itself (`estimated: true`)."""
    return {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.prompt_tokens + usage.completion_tokens, "estimated": usage.estimated}


def _answer_text(obj: dict) -> str:
    texts = []
    for choice in obj.get("choices") or ():
        if isinstance(choice, dict):
            message = choice.get("message") or {}
            texts.append(estimate.message_text(message) if isinstance(message, dict) else "")
            if isinstance(choice.get("text"), str):
                texts.append(choice["text"])
    return "".join(texts)


def _relay_error(exc: relay.RelayFailed) -> APIError:
    if exc.timed_out:
        return APIError(504, "upstream_timeout", "the upstream did not answer in time: " + "; ".join(exc.failures))
    return APIError(502, "upstream_unavailable", "no upstream could serve this request: " + "; ".join(exc.failures))


def _upstream_broke(exc: UpstreamError) -> APIError:
    if exc.kind == "timeout":
        return APIError(504, "upstream_timeout", "the upstream did not finish its answer in time")
    return APIError(502, "upstream_error", f"the upstream broke off its answer: {exc}")


def _upstream_error_text(raw: bytes) -> tuple[str, str]:
    try:
        obj = orjson.loads(raw)
        error = obj.get("error") if isinstance(obj, dict) else None
        if isinstance(error, dict):
            return str(error.get("message") or "upstream error"), str(error.get("code") or "upstream_error")
        if isinstance(error, str):
            return error, "upstream_error"
    except orjson.JSONDecodeError:
        pass
    return (raw[:300].decode("utf-8", "replace") or "upstream error"), "upstream_error"
