"""The OpenAI Responses endpoint: POST /v1/responses, any model, through the chat-completions pipeline.

Requests are translated onto chat completions (`responses_translate.py`) and run
by the same `DataPlane` and flow, so budgets, reservations, usage records, the
429 contract and the `x-request-cost-*` headers are those of chat completions;
only the sink differs (`responses_answer.py` writes the Responses shapes).
"""

from __future__ import annotations

import math

import orjson

from tollgate.domain.grants import Settled
from tollgate.domain.refusals import BudgetExhausted, Refusal
from tollgate.http import checks
from tollgate.http.errors import APIError
from tollgate.http.headers import reply_headers, request_id_header
from tollgate.http.openai import DataPlane
from tollgate.http.refusals import api_error
from tollgate.http.request import Request, Router, Send, send_bytes
from tollgate.http.responses_answer import StreamTranslator, from_chat, usage_object
from tollgate.http.responses_translate import to_chat
from tollgate.http.translated_stream import TranslatedStream
from tollgate.proxy.call import CHAT
from tollgate.proxy.exchange import Exchange
from tollgate.proxy.sse import Usage

JSON = [(b"content-type", b"application/json")]
SPENT = ("budget_exceeded", "insufficient_credits")


def spent_for_agents(error: APIError, refusal: Refusal) -> APIError:
    """The 429 for a spent budget or credit balance, worded for the agents that speak this API.

    Everything of the 429 contract stays (status, `code`, message, `reset_at`,
    `Retry-After`, `x-should-retry: false`). Codex CLI sleeps the whole
    `Retry-After` and retries five times on any 429 except one whose `error.type`
    is `usage_limit_reached` (OpenAI's own type for a spent plan): with that type
    it stops at once, and shows the `x-codex-promo-message` header beside its
    own words, so the type here is that one, the epoch `resets_at` beside our
    ISO `reset_at`, and our message in that header (docs/clients.md).
    """
    if error.code not in SPENT:
        return error
    extra = dict(error.extra)
    if isinstance(refusal, BudgetExhausted) and refusal.resets_at is not None:
        extra["resets_at"] = math.ceil(refusal.resets_at)
    return APIError(error.status, error.code, error.message, type="usage_limit_reached", param=error.param,
                    headers=error.headers + [(b"x-codex-promo-message", error.message.encode("ascii", "replace"))],
                    extra=extra)


class ResponsesSink(TranslatedStream):
    """Writes the Responses wire format for an answer the flow got in the chat-completions format."""

    def __init__(self, send: Send, request: dict) -> None:
        self.send = send
        self.request = request
        self.translator: StreamTranslator | None = None

    async def reply(self, exchange: Exchange, body: bytes, obj: dict | None, settled: Settled) -> None:
        answer = from_chat(obj if obj is not None else orjson.loads(body), self.request, exchange.model.id,
                           settled.charged)
        await send_bytes(self.send, 200, orjson.dumps(answer), JSON + reply_headers(exchange, settled))

    def status_for(self, refusal: Refusal) -> int:
        return api_error(refusal).status

    async def refuse(self, exchange: Exchange, refusal: Refusal) -> None:
        error = spent_for_agents(api_error(refusal), refusal)
        await send_bytes(self.send, error.status, error.openai_body(),
                         JSON + error.headers + [request_id_header(exchange)])

    async def open(self, exchange: Exchange) -> None:
        self.translator = StreamTranslator(self.request, exchange.model.id)
        await self.begin_stream(exchange)

    async def close(self, exchange: Exchange, usage: Usage, settled: Settled, usage_event: dict | None,
                    failure: str | None, held: list[bytes]) -> None:
        assert self.translator is not None
        tail = self.translate(held)
        if failure is not None:
            tail += self.translator.fail(failure)
        else:
            tail += self.translator.end(usage_object(usage.prompt_tokens, usage.completion_tokens,
                                                     usage.cached_tokens or 0, settled.charged))
        await self.end_stream(tail)


class ResponsesAPI:
    def __init__(self, plane: DataPlane) -> None:
        self.plane = plane

    def mount(self, router: Router) -> None:
        router.add("POST", "/v1/responses", self.create)

    async def create(self, request: Request, send: Send) -> None:
        plane = self.plane
        ctx, body = await plane.begin(request, request.bearer())
        chat = to_chat(body)
        name, stream = checks.common(chat)
        checks.chat(chat)
        chain, route = await plane.resolver.resolve(ctx, name, CHAT, chat)
        await plane.serve(request, ctx, plane.call(CHAT, chat, chain, route, stream), ResponsesSink(send, body))
