"""The Anthropic-compatible endpoint: POST /anthropic/v1/messages, any model, through the same pipeline."""

from __future__ import annotations

import orjson

from tollgate.api.anthropic_translate import StreamTranslator, from_openai, sse, to_openai
from tollgate.api.errors import APIError
from tollgate.api.http import Request, Router, Send, send_bytes
from tollgate.api.openai import OpenAIAPI, client_of
from tollgate.gateway.call import CHAT
from tollgate.gateway.sse import Usage, event_json, split_events

JSON = [(b"content-type", b"application/json")]
SSE = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]


class AnthropicSink:
    def __init__(self, send: Send, model: str) -> None:
        self.send = send
        self.model = model
        self.translator = StreamTranslator(model)

    async def reply(self, body: bytes, obj: dict | None, headers: list) -> None:
        answer = from_openai(obj if obj is not None else orjson.loads(body), self.model)
        await send_bytes(self.send, 200, orjson.dumps(answer), JSON + headers)

    async def error(self, error: APIError) -> None:
        await send_bytes(self.send, error.status, error.anthropic_body(), JSON + error.headers)

    async def open(self, headers: list) -> None:
        await self.send({"type": "http.response.start", "status": 200, "headers": SSE + headers})
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

    async def close(self, usage: Usage, cost: int, usage_event: dict | None, failure: str | None,
                    held: list[bytes]) -> None:
        tail = self._translate(held)
        if failure is not None:
            tail.append(sse("error", {"type": "error", "error": {"type": "api_error", "message": failure}}))
        else:
            tail += self.translator.end(usage.prompt_tokens, usage.completion_tokens)
        await self.send({"type": "http.response.body", "body": b"".join(tail), "more_body": False})


class AnthropicAPI:
    def __init__(self, openai: OpenAIAPI) -> None:
        self.openai = openai

    def mount(self, router: Router) -> None:
        router.add("POST", "/anthropic/v1/messages", self.messages)

    async def messages(self, request: Request, send: Send) -> None:
        api = self.openai
        ctx = await api.auth.authenticate(request.headers.get("x-api-key") or request.bearer())
        body = await request.json(api.max_body)
        if not isinstance(body, dict):
            raise APIError(400, "invalid_request", "the request body must be a JSON object")
        chat = to_openai(body)
        chain, route = await api.resolver.resolve(ctx, chat["model"], CHAT, chat)
        call = api.call(CHAT, chat, chain, route, chat["stream"])
        call.client = client_of(request)
        guard = api.watch.guard(request.receive)
        guard.start()
        try:
            await api.flow.run(ctx, call, AnthropicSink(send, body["model"]), guard)
        finally:
            guard.stop()
