"""What the router reads from a request, and how text becomes hashed n-gram features.

Two halves:

* `extract_parts` pulls the parts of a chat request that say what kind of work it is (the latest
  user turn, the system prompt, the earlier user turns, whether tools are offered, whether the
  conversation is inside a tool loop) instead of reading the raw JSON, where field names and
  tool schemas would drown the request itself. It accepts OpenAI chat bodies, legacy
  `functions`, Anthropic-style content blocks and completions bodies with `prompt`, and never
  raises on odd input.
* `text_features` hashes word 1–2-grams and character 2–5-grams into a fixed table with NumPy.
  Hashing means the artifact needs no vocabulary, and the rolling hash over code points is
  vectorised, so a 2,000-character text costs well under a millisecond.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

# Texts longer than this keep their head and tail, as the training data does (see its README):
# in summarization prompts the instruction often comes after the document.
MAX_CHARS = 2000
HEAD_CHARS = 1500
TAIL_CHARS = 495
HISTORY_TURNS = 2  # earlier user turns that are read as context for short follow-ups

_P = np.uint64(0x100000001B3)  # FNV-64 prime: polynomial rolling hash over code points
_MIX = np.uint64(0x9E3779B97F4A7C15)  # multiply-shift finaliser
_WORD_RE = re.compile(r"\w+")
_SPACE_RE = re.compile(r"\s+")
_DIGIT_RE = re.compile(r"\d")
CHAR_ORDERS = (2, 3, 4, 5)
_SALT = {n: np.uint64(0x51ED270B27A3F1C5 * n % (1 << 64)) for n in (1, 2, 3, 4, 5, 6, 7)}
_WORD_SALT = np.uint64(0x2545F4914F6CDD1D)
_BIGRAM_SALT = np.uint64(0x6A09E667F3BCC909)


@dataclass(frozen=True, slots=True)
class RequestParts:
    """The parts of one request that the classifier scores."""

    user: str = ""  # latest user turn (or the completions prompt)
    system: str = ""  # system / developer instructions
    history: str = ""  # up to HISTORY_TURNS earlier user turns, oldest first
    tools_offered: int = 0  # number of tools or functions the client offers
    tool_required: bool = False  # tool_choice forces a tool call
    in_tool_loop: bool = False  # the last message is a tool result
    tool_calls_seen: int = 0  # assistant tool calls earlier in the conversation
    tool_results_seen: int = 0  # tool-result messages anywhere (sampled requests keep only a marker)
    has_image: bool = False  # a user turn carries an image (informational; not scored)
    turns: int = 0  # user turns in the conversation


def _content_text(content: Any) -> tuple[str, bool, bool]:
    """Text of a message's content, plus (has_image, has_tool_result) flags."""
    if isinstance(content, str):
        return content, False, False
    if not isinstance(content, list):
        return "", False, False
    texts: list[str] = []
    image = tool_result = False
    for part in content:
        if isinstance(part, str):
            texts.append(part)
            continue
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if kind in ("image_url", "image", "input_image"):
            image = True
        elif kind == "tool_result":  # Anthropic: a tool result arrives as a user message
            tool_result = True
        text = part.get("text")
        if isinstance(text, str):
            texts.append(text)
    return "\n".join(texts), image, tool_result


def _prompt_text(prompt: Any) -> str:
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list) and prompt and all(isinstance(p, str) for p in prompt):
        return prompt[-1]
    return ""


def extract_parts(body: Any) -> RequestParts:
    """Read the routing-relevant parts of a chat or completions request body."""
    if not isinstance(body, dict):
        return RequestParts()
    messages = body.get("messages")
    if not isinstance(messages, list):
        return RequestParts(user=_prompt_text(body.get("prompt")), turns=1)
    system_parts: list[str] = []
    top_system = body.get("system")  # Anthropic puts the system prompt beside the messages
    if top_system is not None:
        system_parts.append(_content_text(top_system)[0] if not isinstance(top_system, str) else top_system)
    users: list[str] = []
    has_image = in_loop = False
    calls = results = 0
    for msg in messages:
        if not isinstance(msg, dict):
            continue
        role = msg.get("role")
        text, image, tool_result = _content_text(msg.get("content"))
        if role in ("system", "developer"):
            system_parts.append(text)
        elif role == "user":
            in_loop = tool_result and not text.strip()
            results += 1 if tool_result else 0
            has_image = has_image or image
            if text.strip():
                users.append(text)
        elif role in ("tool", "function", "ipython"):
            in_loop = True
            results += 1
        elif role == "assistant":
            in_loop = False
            tc = msg.get("tool_calls")
            calls += len(tc) if isinstance(tc, list) else 0
            calls += 1 if isinstance(msg.get("function_call"), dict) else 0
            if isinstance(msg.get("content"), list):
                calls += sum(1 for p in msg["content"] if isinstance(p, dict) and p.get("type") == "tool_use")
    tools = body.get("tools")
    functions = body.get("functions")
    n_tools = (len(tools) if isinstance(tools, list) else 0) + (len(functions) if isinstance(functions, list) else 0)
    choice = body.get("tool_choice", body.get("function_call"))
    # OpenAI: "none" | "auto" | "required" | {"type": "function", ...}; legacy function_call:
    # {"name": ...}; Anthropic: {"type": "auto" | "any" | "tool" | "none"}.
    kind = choice.get("type", "function") if isinstance(choice, dict) else choice
    if kind == "none":
        n_tools = 0
    required = n_tools > 0 and kind in ("required", "any", "function", "tool")
    return RequestParts(
        user=users[-1] if users else "",
        system="\n".join(s for s in system_parts if s),
        history="\n".join(users[-1 - HISTORY_TURNS : -1]),
        tools_offered=n_tools,
        tool_required=required,
        in_tool_loop=in_loop,
        tool_calls_seen=calls,
        tool_results_seen=results,
        has_image=has_image,
        turns=len(users),
    )


def clip(text: str) -> str:
    """Keep the head and tail of long texts, joined like the training data."""
    if len(text) <= MAX_CHARS:
        return text
    return text[:HEAD_CHARS] + "\n...\n" + text[-TAIL_CHARS:]


def normalize(text: str) -> str:
    """Lower-case, collapse whitespace, map digits to 0 (numbers matter by shape, not value)."""
    text = clip(text).lower()
    text = _SPACE_RE.sub(" ", text).strip()
    return _DIGIT_RE.sub("0", text)


def _finalize(h: np.ndarray, salt: np.uint64, shift: np.uint64) -> np.ndarray:
    h = h ^ salt
    h ^= h >> np.uint64(31)
    return ((h * _MIX) >> shift).astype(np.int64)


def text_features(text: str, bits: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Hashed features of one text: (word ids, word counts, char ids, char counts).

    Ids are in [0, 2**bits). Words and bigrams go in one block and character n-grams in
    another, so that each block can be normalised on its own, as the model was trained.
    """
    s = normalize(text)
    shift = np.uint64(64 - bits)
    words = _WORD_RE.findall(s)
    if words:
        wh = np.fromiter((zlib.crc32(w.encode("utf-8", "replace")) for w in words), dtype=np.uint64, count=len(words))
        wh += _WORD_SALT
        parts = [_finalize(wh, _SALT[1], shift)]
        if len(words) > 1:
            parts.append(_finalize(wh[:-1] * _P + wh[1:], _BIGRAM_SALT, shift))
        wid, wcnt = np.unique(np.concatenate(parts), return_counts=True)
    else:
        wid = wcnt = np.zeros(0, dtype=np.int64)
    codes = np.frombuffer(("\x02" + s + "\x03").encode("utf-32-le", "replace"), dtype="<u4").astype(np.uint64)
    h = codes
    grams = []
    for n in range(2, CHAR_ORDERS[-1] + 1):
        if len(h) < 2:
            break
        h = h[:-1] * _P + codes[n - 1 :]
        if n in CHAR_ORDERS:
            grams.append(_finalize(h, _SALT[n], shift))
    if grams:
        cid, ccnt = np.unique(np.concatenate(grams), return_counts=True)
    else:
        cid = ccnt = np.zeros(0, dtype=np.int64)
    return wid, wcnt, cid, ccnt
