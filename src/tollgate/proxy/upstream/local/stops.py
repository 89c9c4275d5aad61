"""Stop sequences over streamed text: never emit what could be the start of one."""

from __future__ import annotations


class StopMatcher:
    """Feed text as it is generated; get back what is safe to send.

    Text that might be the beginning of a stop sequence is held back until the
    next piece settles it, so a stop sequence never leaks into the output, even
    split across tokens. Emitted text therefore never ends inside a stop
    prefix, and any match lies wholly in the held text.
    """

    def __init__(self, stops: list[str]) -> None:
        self._stops = [s for s in stops if s]
        self._held = ""

    def feed(self, text: str) -> tuple[str, bool]:
        """Returns (text to emit, whether a stop sequence was reached)."""
        if not self._stops:
            return text, False
        held = self._held + text
        hits = [i for i in (held.find(s) for s in self._stops) if i >= 0]
        if hits:
            self._held = ""
            return held[: min(hits)], True
        keep = 0
        for stop in self._stops:
            for k in range(min(len(stop) - 1, len(held)), keep, -1):
                if held.endswith(stop[:k]):
                    keep = k
                    break
        self._held = held[len(held) - keep :]
        return held[: len(held) - keep], False

    def flush(self) -> str:
        """Generation ended without a stop: the held text was ordinary output."""
        held, self._held = self._held, ""
        return held
