"""A real OpenAI-compatible server process for tests: deterministic answers, scripted faults.

Tokens: every whitespace-separated word is one token. Prompt tokens of a chat
request = words in all message contents + 4 per message + 3. Generated text is
" w0 w1 w2 ...", one token per streamed chunk. With --tokenizer PATH (a
tokenizer.json), tokens are that tokenizer's instead, and the generated words
are common English words that are one token each.

Directives in the last user message (or the prompt) steer one request:
  [[reply:N]]      answer with N tokens (else max_tokens, else 8)
  [[delay:S]]      wait S seconds between streamed tokens
  [[head-delay:S]] wait S seconds before answering at all
  [[status:N]]     answer HTTP N with an OpenAI error body
  [[auth-error:N]] answer HTTP N with an error whose message quotes the Authorization header it got, as
                   some providers do for a wrong key ("Incorrect API key provided: ...")
  [[tool:NAME]]    answer with a call to tool NAME (arguments {"city": "Paris"})
  [[no-usage]]     leave the usage block out (non-streamed) / never send the usage chunk
  [[echo]]         answer with the JSON of the request body as the content
  [[cut:N]]        stream N tokens, then drop the connection
  [[judge:WORD]]   when asked by a routing judge (its system prompt says so), answer WORD
  [[script:a,b]]   in any user message: the agent toolkit's scripted model (tests/fakes/budget_gateway.py)
  [[call:NAME ARGS]] in any user message: a scripted two-step tool turn, as an agent runs it: a call to
                   tool NAME with the JSON arguments ARGS while the conversation holds no tool result,
                   then (once it does) the answer "tool said: <the last tool result>"
  [[cached:N]]     report N of the prompt tokens as read from a provider's cache (N% : that share, floored)
  [[cache-write:N]] report N of the prompt tokens as written to the cache (N%: that share, floored)
  [[cache-style:S]] where the cache parts go: openai (prompt_tokens_details.cached_tokens and, as OpenRouter,
                   .cache_write_tokens; the default), anthropic (cache_read_input_tokens and
                   cache_creation_input_tokens) or deepseek (prompt_cache_hit_tokens, prompt_cache_miss_tokens)

Server-wide faults: --fail-status N (every request answers N). --reply TEXT: answer TEXT to
every request without directives. GET /_bodies/<X-Request-Id> returns the body the gateway sent.
GET /_stats returns counters, including streams the client abandoned and how
many tokens each had produced when it was cut, `usages`: the usage blocks it reported, and
`authorizations`: the distinct Authorization headers it was sent.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import time
import uuid

from aiohttp import web

DIRECTIVE = re.compile(r"\[\[(\w[\w-]*)(?::([^\]]*))?\]\]")


COMMON_WORDS = ("the cat dog house blue water time people year good new first last long great little own other "
                "old right big high small large next early young few public bad same able red green tree river city "
                "road book").split()
TOKENIZER = None


def words(text: str) -> int:
    if TOKENIZER is not None:
        return len(TOKENIZER.encode(text, add_special_tokens=False).ids) if text else 0
    return len(text.split())


def message_text(message: dict) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def prompt_tokens(body: dict) -> int:
    if "messages" in body:
        return sum(words(message_text(m)) + 4 for m in body["messages"]) + 3
    prompt = body.get("prompt", "")
    return words(prompt if isinstance(prompt, str) else " ".join(map(str, prompt)))


def _share(value: str, prompt: int) -> int:
    return prompt * int(value[:-1]) // 100 if value.endswith("%") else int(value)


def add_cache_parts(usage: dict, d: dict[str, str]) -> None:
    """The [[cached:N]] and [[cache-write:N]] parts of the prompt, where [[cache-style:S]] puts them."""
    if "cached" not in d and "cache-write" not in d:
        return
    prompt = usage["prompt_tokens"]
    cached = _share(d.get("cached", "0"), prompt)
    written = _share(d.get("cache-write", "0"), prompt)
    style = d.get("cache-style", "openai")
    if style == "anthropic":
        usage["cache_read_input_tokens"] = cached
        usage["cache_creation_input_tokens"] = written
    elif style == "deepseek":
        usage["prompt_cache_hit_tokens"] = cached
        usage["prompt_cache_miss_tokens"] = prompt - cached
    else:
        usage["prompt_tokens_details"] = {"cached_tokens": cached, **({"cache_write_tokens": written} if written else {})}


def directives(body: dict) -> dict[str, str]:
    if "messages" in body:
        users = [m for m in body["messages"] if m.get("role") == "user"]
        text = message_text(users[-1]) if users else ""
    else:
        text = str(body.get("prompt", ""))
    found = {m.group(1): m.group(2) or "" for m in DIRECTIVE.finditer(text)}
    for message in body.get("messages") or ():  # [[call:...]] holds for the whole conversation
        for m in DIRECTIVE.finditer(message_text(message) if message.get("role") == "user" else ""):
            if m.group(1) == "call":
                found.setdefault("call", m.group(2) or "")
    return found


def scripted_call(spec: str, body: dict) -> tuple[str | None, str, list[str]]:
    """[[call:NAME ARGS]]: (tool, arguments) before any tool result, else (None, "", the answer's words)."""
    results = [message_text(m) for m in body.get("messages") or () if m.get("role") == "tool"]
    if results:
        return None, "", re.findall(r"\s*\S+", "tool said: " + results[-1].strip())
    name, _, arguments = spec.strip().partition(" ")
    return name, arguments.strip() or "{}", []


class Fake:
    def __init__(self, fail_status: int | None, name: str, reply: str | None = None) -> None:
        self.fail_status = fail_status
        self.name = name
        self.reply = reply
        self.by_request_id: dict[str, dict] = {}
        self.stats = {"requests": 0, "completed": 0, "cancelled": 0, "cancelled_tokens": [], "bodies": [],
                      "usages": [], "authorizations": []}

    def error(self, status: int) -> web.Response:
        body = {"error": {"message": f"fake upstream {self.name} says {status}", "type": "fake_error",
                          "code": f"http_{status}", "param": None}}
        return web.json_response(body, status=status)

    async def chat(self, request: web.Request) -> web.StreamResponse:
        return await self.generate(request, chat=True)

    async def completions(self, request: web.Request) -> web.StreamResponse:
        return await self.generate(request, chat=False)

    async def generate(self, request: web.Request, chat: bool) -> web.StreamResponse:
        body = await request.json()
        self.stats["requests"] += 1
        self.stats["bodies"] = (self.stats["bodies"] + [body])[-50:]
        auth = request.headers.get("Authorization")
        if auth is not None and auth not in self.stats["authorizations"]:
            self.stats["authorizations"] = (self.stats["authorizations"] + [auth])[-10:]
        request_id = request.headers.get("X-Request-Id")
        if request_id:
            self.by_request_id[request_id] = body
            while len(self.by_request_id) > 2000:
                self.by_request_id.pop(next(iter(self.by_request_id)))
        if self.fail_status:
            return self.error(self.fail_status)
        d = directives(body)
        if "head-delay" in d:
            deadline = time.monotonic() + float(d["head-delay"])
            while time.monotonic() < deadline:
                await asyncio.sleep(0.01)
                if request.transport is None or request.transport.is_closing():
                    self.stats["cancelled"] += 1  # the gateway gave up on us before the answer
                    self.stats["cancelled_tokens"].append(0)
                    return web.Response(status=499)
        if "status" in d:
            return self.error(int(d["status"]))
        if "auth-error" in d:
            message = f"Incorrect API key provided: {request.headers.get('Authorization', '(none)')}"
            return web.json_response({"error": {"message": message, "type": "invalid_request_error",
                                                "code": "invalid_api_key", "param": None}},
                                     status=int(d["auth-error"]))
        max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
        n = int(d["reply"]) if "reply" in d else 8
        if max_tokens is not None:
            n = min(n, int(max_tokens))
        finish = "length" if max_tokens is not None and "reply" in d and int(d["reply"]) > int(max_tokens) else "stop"
        if self.reply is not None and not d:
            pieces = re.findall(r"\s*\S+", self.reply)[: max_tokens or None]
        else:
            pieces = [f" w{i}" for i in range(n)] if TOKENIZER is None else [
                " " + COMMON_WORDS[i % len(COMMON_WORDS)] for i in range(n)]
        if "echo" in d:
            pieces = [json.dumps(body, sort_keys=True)]
        system = next((message_text(m) for m in body.get("messages", []) if m.get("role") == "system"), "")
        if "judge" in d and system.startswith("You route requests"):
            self.stats["judged"] = self.stats.get("judged", 0) + 1
            pieces = [d["judge"]]
        tool, arguments = d.get("tool"), json.dumps({"city": "Paris"})
        if "call" in d:
            tool, arguments, answer = scripted_call(d["call"], body)
            pieces = answer or pieces
        generated = len(pieces) if TOKENIZER is None else words("".join(pieces))
        usage = {"prompt_tokens": prompt_tokens(body), "completion_tokens": generated if "echo" not in d else 1,
                 "total_tokens": 0}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        add_cache_parts(usage, d)
        rid = "chatcmpl-" + uuid.uuid4().hex
        model = body.get("model", "fake")
        scripted = chat and any(
            m.get("role") == "user" and "[[script:" in message_text(m) for m in body.get("messages", []))
        if scripted and not body.get("stream"):
            from tests.fakes.budget_gateway import scripted_reply

            message = scripted_reply(body["messages"])
            text = message.get("content") or json.dumps(message.get("tool_calls"))
            usage["completion_tokens"] = max(1, words(text))
            usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
            self.stats["completed"] += 1
            return web.json_response({
                "id": rid, "object": "chat.completion", "created": int(time.time()), "model": model,
                "choices": [{"index": 0, "message": message, "logprobs": None,
                             "finish_reason": "tool_calls" if message.get("tool_calls") else "stop"}],
                "usage": usage})
        if not body.get("stream"):
            if chat:
                message: dict = {"role": "assistant", "content": "".join(pieces)}
                if tool:
                    message = {"role": "assistant", "content": None, "tool_calls": [
                        {"id": "call_" + uuid.uuid4().hex[:8], "type": "function",
                         "function": {"name": tool, "arguments": arguments}}]}
                    finish = "tool_calls"
                choice = {"index": 0, "message": message, "finish_reason": finish, "logprobs": None}
                answer = {"id": rid, "object": "chat.completion", "created": int(time.time()), "model": model,
                          "choices": [choice]}
            else:
                answer = {"id": rid, "object": "text_completion", "created": int(time.time()), "model": model,
                          "choices": [{"index": 0, "text": "".join(pieces), "finish_reason": finish, "logprobs": None}]}
            if "no-usage" not in d:
                answer["usage"] = usage
                self.stats["usages"] = (self.stats["usages"] + [usage])[-200:]
            self.stats["completed"] += 1
            return web.json_response(answer)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        delay = float(d.get("delay", "0") or 0)
        cut = int(d["cut"]) if "cut" in d else None
        sent = 0

        def chunk(delta: dict | None, finish_reason=None, text: str | None = None) -> bytes:
            if chat:
                choice = {"index": 0, "delta": delta or {}, "finish_reason": finish_reason, "logprobs": None}
                obj = {"id": rid, "object": "chat.completion.chunk", "created": 0, "model": model, "choices": [choice]}
            else:
                choice = {"index": 0, "text": text or "", "finish_reason": finish_reason, "logprobs": None}
                obj = {"id": rid, "object": "text_completion", "created": 0, "model": model, "choices": [choice]}
            if (body.get("stream_options") or {}).get("include_usage"):
                obj["usage"] = None
            return b"data: " + json.dumps(obj).encode() + b"\n\n"

        try:
            if chat:
                await response.write(chunk({"role": "assistant", "content": ""}))
            if tool and chat:
                call = {"index": 0, "id": "call_" + uuid.uuid4().hex[:8], "type": "function",
                        "function": {"name": tool, "arguments": ""}}
                await response.write(chunk({"tool_calls": [call]}))
                for part in (arguments[:len(arguments) // 2], arguments[len(arguments) // 2:]):
                    await response.write(chunk({"tool_calls": [{"index": 0, "function": {"arguments": part}}]}))
                finish = "tool_calls"
            else:
                for piece in pieces:
                    if cut is not None and sent >= cut:
                        self.stats["cancelled"] += 1
                        self.stats["cancelled_tokens"].append(sent)
                        request.transport.close()
                        return response
                    if delay:
                        await asyncio.sleep(delay)
                    await response.write(chunk({"content": piece}, text=piece))
                    sent += 1
            await response.write(chunk({}, finish_reason=finish))
            if (body.get("stream_options") or {}).get("include_usage") and "no-usage" not in d:
                obj = {"id": rid, "object": "chat.completion.chunk", "created": 0, "model": model, "choices": [],
                       "usage": usage}
                await response.write(b"data: " + json.dumps(obj).encode() + b"\n\n")
                self.stats["usages"] = (self.stats["usages"] + [usage])[-200:]
            await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
            self.stats["completed"] += 1
        except (ConnectionResetError, asyncio.CancelledError):
            self.stats["cancelled"] += 1
            self.stats["cancelled_tokens"].append(sent)
            raise
        return response

    async def embeddings(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.stats["requests"] += 1
        if self.fail_status:
            return self.error(self.fail_status)
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = [{"object": "embedding", "index": i, "embedding": [float(len(str(x))), 1.0, 0.0]} for i, x in enumerate(inputs)]
        tokens = sum(words(x) if isinstance(x, str) else 1 for x in inputs)
        return web.json_response({"object": "list", "data": data, "model": body.get("model"),
                                  "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})

    async def get_body(self, request: web.Request) -> web.Response:
        body = self.by_request_id.get(request.match_info["request_id"])
        return web.json_response(body) if body is not None else web.json_response({"error": "unknown"}, status=404)

    async def get_stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats)

    async def models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "fake", "object": "model"}]})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--fail-status", type=int)
    parser.add_argument("--name", default="fake")
    parser.add_argument("--tokenizer", help="count tokens with this tokenizer.json")
    parser.add_argument("--reply", help="answer this text to every request without directives")
    args = parser.parse_args()
    if args.tokenizer:
        from tokenizers import Tokenizer

        global TOKENIZER
        TOKENIZER = Tokenizer.from_file(args.tokenizer)
        TOKENIZER.no_truncation()
        TOKENIZER.no_padding()
    fake = Fake(args.fail_status, args.name, args.reply)
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v1/chat/completions", fake.chat)
    app.router.add_post("/v1/completions", fake.completions)
    app.router.add_post("/v1/embeddings", fake.embeddings)
    app.router.add_get("/v1/models", fake.models)
    app.router.add_get("/_stats", fake.get_stats)
    app.router.add_get("/_bodies/{request_id}", fake.get_body)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None, handle_signals=True)


if __name__ == "__main__":
    main()
