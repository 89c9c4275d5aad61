"""The OpenAI-compatible data plane: /v1/chat/completions, /v1/completions, /v1/embeddings, /v1/models, /v1/usage.

`DataPlane` is what every data-plane endpoint does the same way (authenticate,
read the body, describe the call, run the flow); the Anthropic endpoint
translates its requests onto it and differs only in its sink.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

import orjson

from tollgate.accounts.auth import ConsumptionAuth
from tollgate.domain.accounts import KeyContext
from tollgate.domain.durations import format_duration
from tollgate.domain.grants import Settled
from tollgate.domain.pools import PoolState, credit_pool, pools_for
from tollgate.domain.refusals import ModelRefused, Refusal
from tollgate.domain.timestamps import iso
from tollgate.domain.windows import DAY
from tollgate.http import checks, views
from tollgate.http.errors import APIError
from tollgate.http.headers import REQUEST_ID, new_request_id, reply_headers, request_id_header, stream_headers
from tollgate.http.refusals import api_error
from tollgate.http.request import Request, Router, Send, send_bytes, send_json
from tollgate.ledger.protocol import BudgetLedger
from tollgate.proxy.admission import Admitter
from tollgate.proxy.call import CHAT, COMPLETIONS, EMBEDDINGS, Call
from tollgate.proxy.exchange import Exchange
from tollgate.proxy.flow import Flow
from tollgate.proxy.guard import Watch
from tollgate.proxy.models import ModelRegistry, ServedModel
from tollgate.proxy.resolve import ModelResolver
from tollgate.proxy.routing.text import sample_request
from tollgate.proxy.sink import Sink
from tollgate.proxy.sse import DONE, Usage, encode_event
from tollgate.store.base import Store
from tollgate.version import __version__

JSON = [(b"content-type", b"application/json")]
# /v1/usage's caching figures for a credit key (no window): its requests of the last this many days.
CACHING_DAYS_CREDITS = 31
SSE = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no")]


def client_of(request: Request) -> str | None:
    """Which program sent the request (its User-Agent), for usage records."""
    agent = request.headers.get("user-agent")
    return agent[:200] if agent else None


def session_of(body: dict) -> str:
    """A conversation's id: the hash of its opening (system prompt and first user turn).

    Agents resend the whole history each step, so every request of one
    conversation starts with the same messages; the cost lab groups usage
    records by this id to measure how much of each prompt was resent context.
    """
    opening = []
    for message in body.get("messages") or ():
        opening.append(message)
        if isinstance(message, dict) and message.get("role") == "user":
            break
    return hashlib.blake2b(orjson.dumps(opening), digest_size=8).hexdigest()


def model_object(model: ServedModel) -> dict:
    """OpenAI's model object, with what tollgate adds: context, capabilities, aliases and prices."""
    c = model.config
    return {
        "id": c.id, "object": "model", "created": 0, "owned_by": "tollgate",
        "context_length": c.context, "max_output_tokens": c.max_output,
        "capabilities": list(c.capabilities), "aliases": list(c.aliases),
        "pricing": views.pricing(c.price),
    }


def auto_object(profile: str, routes: dict[str, list[str]]) -> dict:
    """`auto` (or `auto:<profile>`) as a model: which models each request category goes to, first the
    route's model then its fallbacks, so a client can see what will answer it."""
    return {"id": "auto" if profile == "auto" else f"auto:{profile}", "object": "model", "created": 0,
            "owned_by": "tollgate", "capabilities": ["chat", "completions"], "routes": routes}


class DataPlane:
    def __init__(self, auth: ConsumptionAuth, resolver: ModelResolver, flow: Flow, max_body: int,
                 store_request_text: bool) -> None:
        self.auth = auth
        self.resolver = resolver
        self.flow = flow
        self.max_body = max_body
        self.store_request_text = store_request_text
        self.watch = Watch()

    async def begin(self, request: Request, secret: str | None) -> tuple[KeyContext, dict]:
        """The caller's key context and the request's JSON object (refusals raised as they come)."""
        ctx = await self.auth.authenticate(secret)
        body = await request.json(self.max_body)
        if not isinstance(body, dict):
            raise APIError(400, "invalid_request", "the request body must be a JSON object")
        return ctx, body

    async def serve(self, request: Request, ctx: KeyContext, call: Call, sink: Sink) -> None:
        """Run the flow, with a guard that notices the client leaving."""
        call.client = client_of(request)
        call.headers = request.headers
        request.scope[REQUEST_ID] = call.request_id  # from here the flow counts and logs the request
        traffic = self.flow.traffic
        guard = self.watch.guard(request.receive)
        guard.start()
        if traffic is not None:
            traffic.in_flight += 1
        try:
            await self.flow.run(ctx, call, sink, guard)
        finally:
            guard.stop()
            if traffic is not None:
                traffic.in_flight -= 1

    def call(self, endpoint: str, body: dict, chain: list, route: str | None, stream: bool) -> Call:
        """The flow's view of a checked request."""
        options = body.get("stream_options")
        field = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
        text = None
        if route is not None and self.store_request_text and endpoint == CHAT:
            text = orjson.dumps(sample_request(body)).decode()
        return Call(
            endpoint=endpoint, body=body, chain=chain, stream=stream,
            include_usage=bool(stream and isinstance(options, dict) and options.get("include_usage")),
            max_tokens=body.get(field), max_tokens_field=field,
            choices=body.get("n") or 1 if endpoint != EMBEDDINGS else 1,
            route=route, profile=(body.get("model") or "").partition(":")[2] or "auto" if route else None,
            request_text=text, request_id=new_request_id(),
            session=session_of(body) if endpoint == CHAT else None,
        )


class OpenAISink:
    """Writes the OpenAI wire format: upstream bytes as they came, our usage and [DONE] at the end."""

    __slots__ = ("send",)

    def __init__(self, send: Send) -> None:
        self.send = send

    async def reply(self, exchange: Exchange, body: bytes, obj: dict | None, settled: Settled) -> None:
        await send_bytes(self.send, 200, body if obj is None else orjson.dumps(obj),
                         JSON + reply_headers(exchange, settled))

    def status_for(self, refusal: Refusal) -> int:
        return api_error(refusal).status

    async def refuse(self, exchange: Exchange, refusal: Refusal) -> None:
        error = api_error(refusal)
        await send_bytes(self.send, error.status, error.openai_body(),
                         JSON + error.headers + [request_id_header(exchange)])

    async def open(self, exchange: Exchange) -> None:
        await self.send({"type": "http.response.start", "status": 200, "headers": SSE + stream_headers(exchange)})

    async def events(self, events: list[bytes]) -> None:
        await self.send({"type": "http.response.body", "body": b"".join(events), "more_body": True})

    async def close(self, exchange: Exchange, usage: Usage, settled: Settled, usage_event: dict | None,
                    failure: str | None, held: list[bytes]) -> None:
        tail = list(held)
        if usage_event is not None:
            block = usage_event.get("usage")
            if isinstance(block, dict):
                block["cost"] = views.usd(settled.charged)
                block["cost_nanos"] = settled.charged
            tail.append(encode_event(usage_event))
        if failure is not None:
            tail.append(encode_event({"error": {"message": failure, "type": "upstream_error", "code": "upstream_error"}}))
        else:
            tail.append(DONE)
        await self.send({"type": "http.response.body", "body": b"".join(tail), "more_body": False})


class OpenAIAPI:
    def __init__(self, plane: DataPlane, registry: ModelRegistry, ledger: BudgetLedger, admitter: Admitter,
                 clock: Callable[[], float] = time.time, store: Store | None = None) -> None:
        self.plane = plane
        self.registry = registry
        self.ledger = ledger
        self.admitter = admitter
        self.clock = clock
        self.store = store  # for the key's caching figures on /v1/usage (left out when None)

    def mount(self, router: Router) -> None:
        router.add("POST", "/v1/chat/completions", self.chat)
        router.add("POST", "/v1/completions", self.completions)
        router.add("POST", "/v1/embeddings", self.embeddings)
        router.add("GET", "/v1/models", self.models)
        router.add("GET", "/v1/models/{model_id}", self.model)
        router.add("GET", "/v1/usage", self.usage)
        router.add("GET", "/health", self.health)

    async def _run(self, request: Request, send: Send, endpoint: str, check: Callable[[dict], None]) -> None:
        plane = self.plane
        ctx, body = await plane.begin(request, request.bearer())
        name, stream = checks.common(body)
        check(body)
        chain, route = await plane.resolver.resolve(ctx, name, endpoint, body)
        if endpoint == EMBEDDINGS:
            route, stream = None, False
        await plane.serve(request, ctx, plane.call(endpoint, body, chain, route, stream), OpenAISink(send))

    async def chat(self, request: Request, send: Send) -> None:
        await self._run(request, send, CHAT, checks.chat)

    async def completions(self, request: Request, send: Send) -> None:
        await self._run(request, send, COMPLETIONS, checks.completion)

    async def embeddings(self, request: Request, send: Send) -> None:
        await self._run(request, send, EMBEDDINGS, checks.embedding)

    async def models(self, request: Request, send: Send) -> None:
        """The served models; like OpenAI, only for a valid key (clients' "test connection" relies on the 401)."""
        await self.plane.auth.authenticate(request.bearer())
        autos = [auto_object(p, routes) for p, routes in self.plane.resolver.route_tables().items()]
        await send_json(send, 200, {"object": "list", "data": autos + [model_object(m) for m in self.registry.models]})

    async def model(self, request: Request, send: Send) -> None:
        """One served model, by its id or an alias (`client.models.retrieve(id)`); 404 model_not_found otherwise."""
        await self.plane.auth.authenticate(request.bearer())
        name = request.params["model_id"]
        profile = (name.partition(":")[2] or "auto") if name == "auto" or name.startswith("auto:") else None
        routes = self.plane.resolver.route_tables().get(profile) if profile else None
        if routes is not None:
            await send_json(send, 200, auto_object(profile, routes))
            return
        model = self.registry.resolve(name)
        if model is None:
            raise ModelRefused(ModelRefused.NOT_FOUND,
                               f"the model {name!r} does not exist on this gateway; GET /v1/models lists the models it serves")
        await send_json(send, 200, model_object(model))

    async def usage(self, request: Request, send: Send) -> None:
        ctx = await self.plane.auth.authenticate(request.bearer())
        states = [await self.ledger.read(pool) for pool in pools_for(ctx)]
        windowed = [s for s in states if s.pool.window]
        tight = min(windowed or states, key=lambda s: s.remaining)
        limits = self.admitter.limits(ctx)
        budget = {
            "spent": views.usd(tight.spent), "limit": views.usd(tight.pool.limit),
            "remaining": views.usd(tight.remaining), "reserved": views.usd(tight.reserved),
            "duration": format_duration(tight.pool.window) if tight.pool.window else None,
            "resets_at": iso(tight.resets_at), "window_start": iso(tight.window_start) if tight.pool.window else None,
            "spent_nanos": tight.spent, "limit_nanos": tight.pool.limit, "remaining_nanos": tight.remaining,
        }
        sub = ctx.subscription
        credits = next((s for s in states if s.pool.kind == "credits"), None)
        if credits is None:
            credits = await self.ledger.read(credit_pool(ctx.account))
        await send_json(send, 200, {
            "budget": budget,
            "budgets": [views.budget_view(s) | {"kind": s.pool.kind} for s in states],
            "rate_limits": {"rpm": limits.rpm, "tpm": limits.tpm},
            "plan": {
                "slug": ctx.plan.slug if ctx.plan and ctx.key.type == "subscription" else None,
                "status": sub.effective_status(self.clock()) if sub else ("active" if credits.remaining else "expired"),
                "expires_at": iso(sub.current_period_end) if sub else None,
            },
            "credits": {"balance": views.usd(credits.remaining), "balance_nanos": credits.remaining},
            "key": {"id": ctx.key.id, "name": ctx.key.name, "type": ctx.key.type, "created_at": iso(ctx.key.created_at)},
            **({"caching": await self._caching(ctx, tight)} if self.store is not None else {}),
        })

    async def _caching(self, ctx: KeyContext, tight: PoolState) -> dict:
        """The key's prompt tokens in the budget's current window (the last 31 days for credits), how many a
        provider's cache served, and what cache pricing saved: what makes an agent's budget last longer."""
        since = tight.window_start if tight.pool.window else self.clock() - CACHING_DAYS_CREDITS * DAY
        assert self.store is not None
        total = await self.store.usage_total(ctx.account.id, ctx.key.id, since)
        return {"since": iso(since), "input_tokens": total.input_tokens, "cached_tokens": total.cached_tokens,
                "saved": views.usd(total.cache_saved), "saved_nanos": total.cache_saved}

    async def health(self, request: Request, send: Send) -> None:
        await send_json(send, 200, {"status": "ok", "version": __version__})

