"""An OpenAI-compatible server that behaves like a named provider (docs/upstream-quirks.md).

The quirk is the `model` the gateway sends (a model's `upstream_model`), so one server plays every
provider of the table side by side:

  openai            usage only when asked (`stream_options.include_usage`), in a last chunk with no choices
  usage-in-finish   the usage in the chunk that carries `finish_reason` (llama.cpp's llama-server)
  x-groq            the stream's usage under `x_groq.usage` in its last chunk (Groq)
  usage-in-choice   the stream's usage inside the choice: `choices[0].usage` (Moonshot)
  usage-every-chunk a running usage in every chunk, the last one the total (xAI; vLLM's continuous_usage_stats)
  no-stream-usage   no usage in a stream at all, asked or not (llama-cpp-python's server)
  keep-alive        `: keep-alive` comments before a stream, blank lines before a JSON body, and its
                    cache hits as `prompt_cache_hit_tokens` (DeepSeek)
  reasoning         `reasoning_content` beside the content; completion_tokens counts both (DeepSeek's reasoner)
  uuid-request-id   400 unless `X-Request-Id` is absent or a UUID (llama-cpp-python's server)
  error-vllm        every request a 400 with vLLM's error body: `{"object": "error", "message": ...}`
  error-detail      every request a 422 with FastAPI's `{"detail": [...]}`
  rate-limited      every request a 429 with `retry-after: 3`
  reset-header      every request a 429 with only `x-ratelimit-reset-requests: 1m30s` (OpenAI's style)

Every answer is ANSWER (its words as tokens: WORDS completion tokens, REASONING more for `reasoning`),
billed PROMPT prompt tokens, CACHED of them from a cache. GET /_headers/<X-Request-Id> returns the
headers a request came with, GET /_last_headers those of the last request.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import uuid

from aiohttp import web

ANSWER = ["Quirks", " are", " data", ",", " not", " code", "."]
REASONING = ["Think", "ing", "."]
PROMPT, CACHED = 21, 5
ERRORS = {
    "error-vllm": (400, {"object": "error", "message": "max_tokens is too large", "type": "BadRequestError",
                         "param": None, "code": 400}),
    "error-detail": (422, {"detail": [{"loc": ["body", "temperature"], "msg": "must be at most 2"}]}),
}


def usage(quirk: str, completion: int) -> dict:
    block = {"prompt_tokens": PROMPT, "completion_tokens": completion, "total_tokens": PROMPT + completion}
    if quirk == "keep-alive":
        block.update(prompt_cache_hit_tokens=CACHED, prompt_cache_miss_tokens=PROMPT - CACHED)
    else:
        block["prompt_tokens_details"] = {"cached_tokens": CACHED}
    if quirk == "reasoning":
        block["completion_tokens_details"] = {"reasoning_tokens": len(REASONING)}
    return block


def chunk(quirk: str, delta: dict, finish: str | None = None) -> dict:
    return {"id": "chatcmpl-quirk", "object": "chat.completion.chunk", "created": 1, "model": quirk,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def events(quirk: str, include_usage: bool) -> list[dict]:
    pieces = [("reasoning_content", p) for p in REASONING] if quirk == "reasoning" else []
    pieces += [("content", p) for p in ANSWER]
    out = [chunk(quirk, {"role": "assistant", "content": ""})]
    for n, (field, text) in enumerate(pieces, 1):
        out.append(chunk(quirk, {field: text}))
        if quirk == "usage-every-chunk":
            out[-1]["usage"] = usage(quirk, n)
    final = chunk(quirk, {}, "stop")
    total = usage(quirk, len(pieces))
    if quirk == "usage-every-chunk":
        final["usage"] = total
    elif quirk == "usage-in-finish":
        final["usage"] = total
    elif quirk == "x-groq":
        final["x_groq"] = {"id": "req_groq", "usage": total}
    elif quirk == "usage-in-choice":
        final["choices"][0]["usage"] = total
    out.append(final)
    if quirk in ("openai", "keep-alive", "reasoning") and include_usage:
        out.append({"id": "chatcmpl-quirk", "object": "chat.completion.chunk", "created": 1, "model": quirk,
                    "choices": [], "usage": total})
    return out


def answer(quirk: str) -> dict:
    message = {"role": "assistant", "content": "".join(ANSWER)}
    if quirk == "reasoning":
        message["reasoning_content"] = "".join(REASONING)
    completion = len(ANSWER) + (len(REASONING) if quirk == "reasoning" else 0)
    return {"id": "chatcmpl-quirk", "object": "chat.completion", "created": 1, "model": quirk,
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}], "usage": usage(quirk, completion)}


class Quirky:
    def __init__(self) -> None:
        self.headers: dict[str, dict[str, str]] = {}
        self.last_headers: dict[str, str] = {}

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        quirk = str(body.get("model"))
        request_id = request.headers.get("X-Request-Id")
        self.last_headers = dict(request.headers)
        if request_id:
            self.headers[request_id] = dict(request.headers)
        if quirk == "uuid-request-id" and request_id is not None:
            try:
                uuid.UUID(request_id)
            except ValueError:
                return web.Response(status=400, text="Bad Request")
        if quirk in ERRORS:
            status, error = ERRORS[quirk]
            return web.json_response(error, status=status)
        if quirk == "rate-limited":
            return web.json_response({"error": {"message": "Rate limit reached", "type": "requests",
                                                "code": "rate_limit_exceeded"}}, status=429,
                                     headers={"retry-after": "3"})
        if quirk == "reset-header":
            return web.json_response({"error": {"message": "Rate limit reached", "code": "rate_limit_exceeded"}},
                                     status=429, headers={"x-ratelimit-reset-requests": "1m30s"})
        if not body.get("stream"):
            text = json.dumps(answer(quirk))
            if quirk == "keep-alive":
                text = "\n\n\n" + text  # what it sends while a request waits in its queue
            return web.Response(text=text, content_type="application/json")
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        if quirk == "keep-alive":
            for _ in range(3):
                await response.write(b": keep-alive\n\n")
        options = body.get("stream_options") or {}
        for event in events(quirk, bool(options.get("include_usage"))):
            await response.write(b"data: " + json.dumps(event).encode() + b"\n\n")
            await asyncio.sleep(0)
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    async def models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": []})

    async def get_headers(self, request: web.Request) -> web.Response:
        return web.json_response(self.headers.get(request.match_info["request_id"]))

    async def get_last_headers(self, request: web.Request) -> web.Response:
        return web.json_response(self.last_headers)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    quirky = Quirky()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", quirky.chat)
    app.router.add_get("/v1/models", quirky.models)
    app.router.add_get("/_headers/{request_id}", quirky.get_headers)
    app.router.add_get("/_last_headers", quirky.get_last_headers)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None, handle_signals=True)


if __name__ == "__main__":
    main()
