"""What the tests of the in-process llama.cpp upstream share: one loaded model per session, and helpers."""

from __future__ import annotations

import asyncio

import orjson

from tollgate.config import UpstreamConfig
from tollgate.proxy.upstream.local.llama import LlamaUpstream

STORY = [{"role": "user", "content": "Write a long story about a dragon."}]


def started_upstream() -> LlamaUpstream:
    up = LlamaUpstream(UpstreamConfig(name="local", kind="llama_cpp", context=1024))
    asyncio.run(up.start())
    return up


def chat(max_tokens=16, messages=STORY, **extra) -> bytes:
    body = {"model": "smollm2", "messages": messages, "max_tokens": max_tokens, "temperature": 0, **extra}
    return orjson.dumps(body)


async def post(up: LlamaUpstream, path: str, body: bytes) -> tuple[int, bytes, dict]:
    response = await up.send(path, body)
    return response.status, await response.read(), response.headers
