"""OpenAI response bodies for chat.completion / text_completion, whole or as SSE chunks."""

from __future__ import annotations

import time
import uuid

import orjson

from tollgate.proxy.upstream.local.llama_generate import Finished
from tollgate.proxy.upstream.local.sse import DONE, event


def usage(done: Finished) -> dict:
    return {
        "prompt_tokens": done.prompt_tokens,
        "completion_tokens": done.completion_tokens,
        "total_tokens": done.prompt_tokens + done.completion_tokens,
    }


class OpenAIFormatter:
    """One response's id, timestamps and shapes; `kind` is "chat" or "completion"."""

    def __init__(self, kind: str, model: str, include_usage: bool = False, echo: str = "") -> None:
        self.kind = kind
        self.model = model
        self.include_usage = include_usage
        # /completions with echo: the prompt text leads the output.
        self.echo = echo
        prefix = "chatcmpl-" if kind == "chat" else "cmpl-"
        self.id = prefix + uuid.uuid4().hex
        self.created = int(time.time())

    def _envelope(self, object_: str, choices: list[dict]) -> dict:
        return {
            "id": self.id,
            "object": object_,
            "created": self.created,
            "model": self.model,
            "system_fingerprint": None,
            "choices": choices,
        }

    # --- whole body ---------------------------------------------------------
    def body(self, done: Finished) -> bytes:
        if self.kind == "chat":
            message = {"role": "assistant", "content": done.text, "refusal": None}
            choice = {"index": 0, "message": message, "logprobs": None}
            payload = self._envelope("chat.completion", [choice])
        else:
            choice = {"text": self.echo + done.text, "index": 0, "logprobs": None}
            payload = self._envelope("text_completion", [choice])
        choice["finish_reason"] = done.finish_reason
        payload["usage"] = usage(done)
        return orjson.dumps(payload)

    # --- stream -------------------------------------------------------------
    def _chunk(self, choices: list[dict], usage_: dict | None = None) -> bytes:
        object_ = "chat.completion.chunk" if self.kind == "chat" else "text_completion"
        payload = self._envelope(object_, choices)
        if self.include_usage:  # OpenAI: null on every chunk but the last
            payload["usage"] = usage_
        return event(payload)

    def _choice(self, text: str | None, finish_reason: str | None, role: bool = False) -> dict:
        if self.kind == "completion":
            return {"text": text or "", "index": 0, "logprobs": None,
                    "finish_reason": finish_reason}
        delta: dict = {}
        if role:
            delta = {"role": "assistant", "content": "", "refusal": None}
        elif text is not None:
            delta = {"content": text}
        return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}

    def head(self) -> bytes | None:
        """The first chunk: the assistant role (chat) or the echoed prompt (completions)."""
        if self.kind == "chat":
            return self._chunk([self._choice(None, None, role=True)])
        return self._chunk([self._choice(self.echo, None)]) if self.echo else None

    def delta(self, text: str) -> bytes:
        return self._chunk([self._choice(text, None)])

    def tail(self, done: Finished) -> list[bytes]:
        """The finish_reason chunk, the usage chunk when asked for, then [DONE]."""
        out = [self._chunk([self._choice(None, done.finish_reason)])]
        if self.include_usage:
            out.append(self._chunk([], usage(done)))
        out.append(DONE)
        return out

    def error(self, message: str) -> bytes:
        """A failure after the stream started: OpenAI sends an error event, no [DONE]."""
        return event(
            {"error": {"message": message, "type": "server_error", "param": None, "code": None}}
        )
