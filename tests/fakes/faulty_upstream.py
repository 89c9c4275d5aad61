"""A hostile OpenAI-compatible upstream: a real server process that answers with scripted faults.

It speaks HTTP/1.1 by hand (asyncio streams, no framework), so that it can send
exactly the bytes a broken or hostile server would: a wrong Content-Length, a
connection closed mid-answer, invalid HTTP, absurd usage numbers, odd JSON.

The fault is named in the request: `[[fault:NAME]]` anywhere in the last user
message (or the prompt). Each fault answers a streamed request (SSE, chunked)
and a non-streamed one (JSON) in its own way; FAULTS lists them all. A request
without a directive gets a well-formed answer. Connections are kept alive
unless the fault closes them.

GET /_served returns {X-Request-Id: [fault, times received]} for every request,
so a test can match the gateway's usage records to what each upstream answer was,
and see that no request reached the upstream twice.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re

DIRECTIVE = re.compile(r"\[\[fault:([\w-]+)\]\]")
PROMPT, COMPLETION = 10, 5
# Past the gateway's max_response_bytes in the tests (1 MiB), well inside what this process can send fast.
HUGE = 2 * 1024 * 1024

# usage blocks no request can have produced, by fault name
ABSURD_USAGE = {
    "usage-negative": {"prompt_tokens": -5, "completion_tokens": -1},
    "usage-float": {"prompt_tokens": 3.5, "completion_tokens": 2.25},
    "usage-string": {"prompt_tokens": "12", "completion_tokens": "many"},
    "usage-bool": {"prompt_tokens": True, "completion_tokens": False},
    "usage-null": {"prompt_tokens": None, "completion_tokens": None},
    "usage-object": {"prompt_tokens": {"n": 1}, "completion_tokens": [1]},
    "usage-1e30": {"prompt_tokens": 10**30, "completion_tokens": 10**30},
    "usage-past-int64": {"prompt_tokens": 2**63, "completion_tokens": 2**64 - 1},
    "usage-past-context": {"prompt_tokens": 50_000_000, "completion_tokens": 7},
    "usage-infinite": {"prompt_tokens": "Infinity", "completion_tokens": 1e308},
    "usage-cached-absurd": {"prompt_tokens": 8, "completion_tokens": 2,
                            "prompt_tokens_details": {"cached_tokens": 2**63}},
}
ODD_CHOICES = {
    "choices-null": None,
    "choices-string": "choices",
    "choices-number": 5,
    "choices-list-of-nulls": [None, None],
    "choices-message-null": [{"index": 0, "message": None, "finish_reason": 7}],
    "choices-tool-calls-string": [{"index": 0, "message": {"role": "assistant", "tool_calls": "call it"}}],
    "choices-tool-calls-odd": [{"index": 0, "message": {"role": "assistant", "content": 5, "tool_calls": [
        None, 3, {"function": 5}, {"id": 7, "function": {"name": 8, "arguments": 9}}]}}],
}
STREAM_ODD_CHUNKS = {
    "choices-null": [{"choices": None}],
    "choices-string": [{"choices": "x"}],
    "choices-number": [{"choices": 5}],
    "choices-list-of-nulls": [{"choices": [None]}, {"choices": [None, None]}],
    "choices-message-null": [{"choices": [{"index": 0, "delta": None, "finish_reason": 7}]}],
    "choices-tool-calls-string": [{"choices": [{"index": 0, "delta": {"tool_calls": "call it"}}]}],
    "choices-tool-calls-odd": [{"choices": [{"index": 0, "delta": {"content": 5, "tool_calls": [
        None, 3, {"index": "a", "function": 5}, {"index": 0, "id": 7, "function": {"name": 8, "arguments": 9}}]}}]}],
}
OTHER = [
    "no-usage",  # a well-formed answer without usage
    "malformed-json", "json-array", "json-string", "json-null",
    "huge-body", "huge-header", "close-mid-answer", "close-before-answer", "content-length-short",
    "content-length-long", "invalid-http", "status-302", "status-204", "status-999",
    "sse-malformed", "sse-mid-garbage", "stream-no-done", "stream-null-choice", "stream-no-boundary",
    "stream-json-answer",
]
FAULTS = sorted([*ABSURD_USAGE, *ODD_CHOICES, *OTHER])
# Faults that hold the connection open without finishing the answer: the gateway's timeout ends them.
SLOW = {"content-length-long"}


def directive(body: dict) -> str | None:
    if "messages" in body:
        users = [m for m in body.get("messages") or [] if isinstance(m, dict) and m.get("role") == "user"]
        content = users[-1].get("content") if users else ""
        text = content if isinstance(content, str) else json.dumps(content)
    else:
        text = str(body.get("prompt", body.get("input", "")))
    match = DIRECTIVE.search(text)
    return match.group(1) if match else None


def head(status: int, headers: dict[str, str], reason: str = "OK") -> bytes:
    lines = [f"HTTP/1.1 {status} {reason}"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def json_answer(body: bytes, status: int = 200) -> bytes:
    return head(status, {"Content-Type": "application/json", "Content-Length": str(len(body))}) + body


def chunked(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n" if data else b""


def sse(obj: object) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


class Served:
    """What one request gets: bytes to write, then close the connection or keep it."""

    def __init__(self, data: bytes, close: bool = False, hang: bool = False) -> None:
        self.data, self.close, self.hang = data, close, hang


def completion(chat: bool, usage: object = None, choices: object = ..., with_usage: bool = True) -> dict:
    if choices is ...:
        choices = ([{"index": 0, "message": {"role": "assistant", "content": "w0 w1 w2 w3 w4"}, "finish_reason": "stop"}]
                   if chat else [{"index": 0, "text": "w0 w1 w2 w3 w4", "finish_reason": "stop"}])
    answer: dict = {"id": "x", "object": "chat.completion" if chat else "text_completion", "model": "m",
                    "choices": choices}
    if with_usage:
        answer["usage"] = usage if usage is not None else {"prompt_tokens": PROMPT, "completion_tokens": COMPLETION}
    return answer


def chunks(chat: bool, words: int = 5) -> list[dict]:
    if chat:
        return [{"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": f" w{i}"}}]}
                for i in range(words)]
    return [{"object": "text_completion", "choices": [{"index": 0, "text": f" w{i}"}]} for i in range(words)]


def stream(events: list[bytes], end: bytes = b"data: [DONE]\n\n") -> bytes:
    body = b"".join(chunked(e) for e in [*events, end] if e)
    return head(200, {"Content-Type": "text/event-stream", "Transfer-Encoding": "chunked"}) + body + b"0\r\n\r\n"


def usage_event(usage: object) -> bytes:
    return sse({"object": "chat.completion.chunk", "choices": [], "usage": usage})


def answer(fault: str | None, chat: bool, streamed: bool) -> Served:  # noqa: C901 (one branch per fault)
    normal_usage = {"prompt_tokens": PROMPT, "completion_tokens": COMPLETION}
    if fault in ABSURD_USAGE:
        usage = ABSURD_USAGE[fault]
        if streamed:
            return Served(stream([sse(c) for c in chunks(chat)] + [usage_event(usage)]))
        return Served(json_answer(json.dumps(completion(chat, usage)).encode()))
    if fault in ODD_CHOICES:
        if streamed:
            return Served(stream([sse(c) for c in STREAM_ODD_CHUNKS[fault]]))  # and no usage
        return Served(json_answer(json.dumps(completion(chat, choices=ODD_CHOICES[fault], with_usage=False)).encode()))
    if fault == "no-usage":
        if streamed:
            return Served(stream([sse(c) for c in chunks(chat)]))
        return Served(json_answer(json.dumps(completion(chat, with_usage=False)).encode()))
    if fault == "malformed-json":
        return Served(json_answer(b'{"id": "x", "choices": [{"message": {"content": "w0'))
    if fault in ("json-array", "json-string", "json-null"):
        body = {"json-array": b"[1, 2, 3]", "json-string": b'"an answer"', "json-null": b"null"}[fault]
        return Served(stream([b"data: " + body + b"\n\n"]) if streamed else json_answer(body))
    if fault == "huge-body":
        if streamed:
            return Served(stream([sse(c) for c in chunks(chat, HUGE // 60)] + [usage_event(normal_usage)]))
        answer_obj = completion(chat)
        answer_obj["padding"] = "x" * HUGE
        return Served(json_answer(json.dumps(answer_obj).encode()))
    if fault == "huge-header":
        return Served(head(200, {"Content-Type": "application/json", "X-Padding": "y" * HUGE}), close=True)
    if fault == "close-mid-answer":
        if streamed:
            data = stream([sse(c) for c in chunks(chat)])
            return Served(data[: len(data) // 2], close=True)
        body = json.dumps(completion(chat)).encode()
        return Served(json_answer(body)[: -len(body) // 2], close=True)
    if fault == "close-before-answer":
        return Served(b"", close=True)
    if fault == "content-length-short":
        body = json.dumps(completion(chat)).encode()
        # Declares fewer bytes than it sends: the rest is garbage left on a kept-alive connection.
        return Served(head(200, {"Content-Type": "application/json", "Content-Length": str(len(body) // 2)}) + body)
    if fault == "content-length-long":
        body = json.dumps(completion(chat)).encode()
        return Served(head(200, {"Content-Type": "application/json", "Content-Length": str(len(body) * 2)}) + body,
                      hang=True)
    if fault == "invalid-http":
        return Served(b"HELLO THERE\r\n\r\n{}", close=True)
    if fault in ("status-302", "status-204", "status-999"):
        status = int(fault.split("-")[1])
        if status == 204:
            return Served(head(204, {}))
        return Served(head(status, {"Location": "http://example.invalid/", "Content-Length": "2"}, "Odd") + b"{}")
    if fault == "sse-malformed":
        return Served(stream([b"data: {not json\n\n", b"event: x\n\n", b"garbage without data\n\n",
                              b"data: \xff\xfe\n\n", usage_event(normal_usage)]))
    if fault == "sse-mid-garbage":
        events = [sse(c) for c in chunks(chat)]
        return Served(stream([events[0], b"\x00\xff\x13 not an event at all \r\r\n", *events[1:],
                              usage_event(normal_usage)]))
    if fault == "stream-no-done":
        return Served(stream([sse(c) for c in chunks(chat)], end=b""))
    if fault == "stream-null-choice":
        return Served(stream([sse({"choices": [None]}), *(sse(c) for c in chunks(chat)),
                              sse({"choices": [None], "usage": None}), usage_event(normal_usage)]))
    if fault == "stream-no-boundary":
        return Served(stream([b"data: " + b"z" * HUGE]))
    if fault == "stream-json-answer":  # a streamed request answered as if it were not
        return Served(json_answer(json.dumps(completion(chat)).encode()))
    if streamed:
        return Served(stream([sse(c) for c in chunks(chat)] + [usage_event(normal_usage)]))
    return Served(json_answer(json.dumps(completion(chat)).encode()))


class FaultyUpstream:
    def __init__(self) -> None:
        self.served: dict[str, list] = {}

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request_head = await reader.readuntil(b"\r\n\r\n")
                lines = request_head.decode("latin-1").split("\r\n")
                method, path = lines[0].split(" ")[:2]
                headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                served = self.route(method, path, headers, body)
                writer.write(served.data)
                await writer.drain()
                if served.hang:
                    await reader.read()  # until the gateway gives up and closes
                    return
                if served.close:
                    return
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    def route(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> Served:
        if method == "GET" and path == "/v1/models":
            return Served(json_answer(b'{"object": "list", "data": [{"id": "faulty"}]}'))
        if method == "GET" and path == "/_served":
            return Served(json_answer(json.dumps(self.served).encode()))
        body = json.loads(raw)
        fault = directive(body)
        request_id = headers.get("x-request-id")
        if request_id:
            self.served.setdefault(request_id, [fault or "none", 0])[1] += 1
        return answer(fault, chat=path.endswith("/chat/completions"), streamed=bool(body.get("stream")))


async def serve(port: int) -> None:
    upstream = FaultyUpstream()
    server = await asyncio.start_server(upstream.handle, "127.0.0.1", port, limit=1 << 20)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.port))


if __name__ == "__main__":
    main()
