"""The Anthropic-compatible endpoints: POST /anthropic/v1/messages, any model, through the same pipeline,
and POST /anthropic/v1/messages/count_tokens (free: nothing is reserved or charged)."""

from __future__ import annotations

import orjson

from tollgate.domain.grants import Settled
from tollgate.domain.refusals import Refusal
from tollgate.http.anthropic_translate import StreamTranslator, from_openai, prompt_of, sse, to_openai
from tollgate.http.errors import ANTHROPIC_SHAPE
from tollgate.http.headers import reply_headers, request_id_header
from tollgate.http.openai import DataPlane
from tollgate.http.refusals import api_error
from tollgate.http.request import Request, Router, Send, send_bytes, send_json
from tollgate.http.translated_stream import TranslatedStream
from tollgate.proxy.call import CHAT
from tollgate.proxy.estimate import chat_prompt_count
from tollgate.proxy.exchange import Exchange
from tollgate.proxy.sse import Usage

JSON = [(b"content-type", b"application/json")]


class AnthropicSink(TranslatedStream):
    """Writes Anthropic's wire format. The `model` of every answer is the id of the model that answered
    (the exchange's, after routing and fallbacks), not the name asked for (`auto`, an alias)."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self.translator = StreamTranslator("")

    async def reply(self, exchange: Exchange, body: bytes, obj: dict | None, settled: Settled) -> None:
        answer = from_openai(obj if obj is not None else orjson.loads(body), exchange.model.id)
        await send_bytes(self.send, 200, orjson.dumps(answer), JSON + reply_headers(exchange, settled))

    def status_for(self, refusal: Refusal) -> int:
        return api_error(refusal).status

    async def refuse(self, exchange: Exchange, refusal: Refusal) -> None:
        error = api_error(refusal)
        await send_bytes(self.send, error.status, error.anthropic_body(),
                         JSON + error.headers + [request_id_header(exchange)])

    async def open(self, exchange: Exchange) -> None:
        self.translator.model = exchange.model.id  # an upstream has answered: this is its model
        await self.begin_stream(exchange)

    async def close(self, exchange: Exchange, usage: Usage, settled: Settled, usage_event: dict | None,
                    failure: str | None, held: list[bytes]) -> None:
        tail = self.translate(held)
        if failure is not None:
            tail.append(sse("error", {"type": "error", "error": {"type": "api_error", "message": failure}}))
        else:
            tail += self.translator.end(usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens,
                                        usage.cache_write_tokens)
        await self.end_stream(tail)


class AnthropicAPI:
    def __init__(self, plane: DataPlane) -> None:
        self.plane = plane

    def mount(self, router: Router) -> None:
        router.error_shape("/anthropic/", ANTHROPIC_SHAPE)
        router.add("POST", "/anthropic/v1/messages", self.messages)
        router.add("POST", "/anthropic/v1/messages/count_tokens", self.count_tokens)

    async def messages(self, request: Request, send: Send) -> None:
        plane = self.plane
        ctx, body = await plane.begin(request, request.headers.get("x-api-key") or request.bearer())
        chat = to_openai(body)
        chain, route = await plane.resolver.resolve(ctx, chat["model"], CHAT, chat)
        call = plane.call(CHAT, chat, chain, route, chat["stream"])
        await plane.serve(request, ctx, call, AnthropicSink(send))

    async def count_tokens(self, request: Request, send: Send) -> None:
        """The prompt's input tokens on the model that would answer it (`auto` routed as a probe: not
        counted in the route metrics, no judge asked). `exact` says whether it is the model's own count (its
        tokenizer and chat template) or the gateway's upper bound (what budgets reserve for). The key
        is checked as for a request; nothing is reserved, charged or rate-limited."""
        plane = self.plane
        ctx, body = await plane.begin(request, request.headers.get("x-api-key") or request.bearer())
        chat = prompt_of(body)
        chain, _ = await plane.resolver.resolve(ctx, chat["model"], CHAT, chat, probe=True)
        tokens, exact = chat_prompt_count(chat, chain[0].counter)
        await send_json(send, 200, {"input_tokens": tokens, "exact": exact})
