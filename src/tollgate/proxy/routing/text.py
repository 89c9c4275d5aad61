"""What a router reads from a chat request: the latest user turn, the system prompt, whether tools are offered."""

from __future__ import annotations

from tollgate.proxy.estimate import message_text

MAX_CHARS = 2000


def request_summary(body: dict) -> str:
    """A short plain-text view of a request for a judge model (not the raw JSON)."""
    messages = [m for m in body.get("messages") or () if isinstance(m, dict)]
    system = next((message_text(m) for m in messages if m.get("role") in ("system", "developer")), "")
    users = [message_text(m) for m in messages if m.get("role") == "user"]
    latest = users[-1] if users else str(body.get("prompt") or "")
    parts = []
    if system:
        parts.append("System prompt (start): " + system[:300])
    if body.get("tools"):
        names = [t.get("function", {}).get("name", "") for t in body["tools"] if isinstance(t, dict)]
        parts.append("Tools offered: " + ", ".join(n for n in names if n))
    if any(m.get("role") == "tool" for m in messages):
        parts.append("The conversation already contains tool results.")
    parts.append("Request: " + latest[-MAX_CHARS:])
    return "\n".join(parts)


def sample_request(body: dict) -> dict:
    """What `tollgate router sample` keeps of a routed request: enough to classify it again.

    The system prompt, the latest user turn and the names of the tools on
    offer, each cut to a few thousand characters (stored only on opt-in).
    """
    messages = [m for m in body.get("messages") or () if isinstance(m, dict)]
    kept = [m for m in messages if m.get("role") in ("system", "developer")][:1]
    users = [m for m in messages if m.get("role") == "user"]
    if any(m.get("role") == "tool" for m in messages):
        kept.append({"role": "tool", "content": "(tool results present)"})
    if users:
        kept.append({"role": "user", "content": message_text(users[-1])[-MAX_CHARS * 2:]})
    for m in kept:
        if isinstance(m.get("content"), str):
            m["content"] = m["content"][: MAX_CHARS * 2]
        else:
            m["content"] = message_text(m)[: MAX_CHARS * 2]
    sample: dict = {"messages": [{"role": m["role"], "content": m["content"]} for m in kept]}
    tools = [t.get("function", {}).get("name") for t in body.get("tools") or () if isinstance(t, dict)]
    if tools:
        sample["tools"] = [{"type": "function", "function": {"name": n}} for n in tools if n]
    return sample
