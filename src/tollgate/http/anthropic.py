"""The Anthropic-compatible endpoint: POST /anthropic/v1/messages, any model, through the same pipeline."""

from __future__ import annotations

import orjson

from tollgate.domain.grants import Settled
from tollgate.domain.refusals import Refusal
from tollgate.http.anthropic_translate import StreamTranslator, from_openai, sse, to_openai
from tollgate.http.errors import ANTHROPIC_SHAPE
from tollgate.http.headers import reply_headers, stream_headers
from tollgate.http.openai import DataPlane
from tollgate.http.refusals import api_error
from tollgate.http.request import Request, Router, Send, send_bytes
from tollgate.proxy.call import CHAT
from tollgate.proxy.exchange import Exchange
from tollgate.proxy.sse import Usage, event_json, split_events

JSON = [(b"content-type", b"application/json")]
SSE = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]


class AnthropicSink:
    def __init__(self, send: Send, model: str) -> None:
        self.send = send
        self.model = model
        self.translator = StreamTranslator(model)

    async def reply(self, exchange: Exchange, body: bytes, obj: dict | None, settled: Settled) -> None:
        answer = from_openai(obj if obj is not None else orjson.loads(body), self.model)
        await send_bytes(self.send, 200, orjson.dumps(answer), JSON + reply_headers(exchange, settled))

    def status_for(self, refusal: Refusal) -> int:
        return api_error(refusal).status

    async def refuse(self, exchange: Exchange, refusal: Refusal) -> None:
        error = api_error(refusal)
        await send_bytes(self.send, error.status, error.anthropic_body(), JSON + error.headers)

    async def open(self, exchange: Exchange) -> None:
        await self.send({"type": "http.response.start", "status": 200, "headers": SSE + stream_headers(exchange)})
        await self.send({"type": "http.response.body", "body": self.translator.start(), "more_body": True})

    def _translate(self, events: list[bytes]) -> list[bytes]:
        out: list[bytes] = []
        for event in split_events(events):
            obj = event_json(event)
            if isinstance(obj, dict):
                out += self.translator.chunk(obj)
        return out

    async def events(self, events: list[bytes]) -> None:
        out = self._translate(events)
        if out:
            await self.send({"type": "http.response.body", "body": b"".join(out), "more_body": True})

    async def close(self, exchange: Exchange, usage: Usage, settled: Settled, usage_event: dict | None,
                    failure: str | None, held: list[bytes]) -> None:
        tail = self._translate(held)
        if failure is not None:
            tail.append(sse("error", {"type": "error", "error": {"type": "api_error", "message": failure}}))
        else:
            tail += self.translator.end(usage.prompt_tokens, usage.completion_tokens)
        await self.send({"type": "http.response.body", "body": b"".join(tail), "more_body": False})


class AnthropicAPI:
    def __init__(self, plane: DataPlane) -> None:
        self.plane = plane

    def mount(self, router: Router) -> None:
        router.error_shape("/anthropic/", ANTHROPIC_SHAPE)
        router.add("POST", "/anthropic/v1/messages", self.messages)

    async def messages(self, request: Request, send: Send) -> None:
        plane = self.plane
        ctx, body = await plane.begin(request, request.headers.get("x-api-key") or request.bearer())
        chat = to_openai(body)
        chain, route = await plane.resolver.resolve(ctx, chat["model"], CHAT, chat)
        call = plane.call(CHAT, chat, chain, route, chat["stream"])
        await plane.serve(request, ctx, call, AnthropicSink(send, body["model"]))
