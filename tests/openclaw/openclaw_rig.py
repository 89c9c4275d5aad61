"""The pieces the gateway tests share: the gateway rig and a budget spender."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from openclaw_harness import GatewayProcess, OpenClaw
from openclaw_target import Key, Target, chat, error_code

# Budget of the 2-second plan used with the plugin: enough for one OpenClaw turn (its prompt is
# about 15K tokens), so a fresh window always affords the resume.
PARK_WINDOW = "2s"
PARK_BUDGET_TOKENS = 60_000
RATE_LIMIT_RPM = 4


@dataclass
class GatewayRig:
    """One OpenClaw gateway with the budget-park plugin, and the keys behind its two providers."""

    gateway: GatewayProcess
    oc: OpenClaw
    park_key: Key  # provider "tollgate" (the default model): a 2 s budget window
    rate_key: Key  # provider "tollgate_rl": 4 requests per minute
    state_dir: Path

    @property
    def journal(self) -> Path:
        return self.state_dir / "journal.jsonl"


class Spender:
    """Keeps a key's budget window spent: at each window start it sends requests until a budget 429.

    It uses the data plane only, so it works against any gateway that honours the 429 contract.
    Requests are sized well below an OpenClaw turn, so what is left of a window after it is
    never enough for one.
    """

    def __init__(self, target: Target, key: Key, chunk_chars: int = 16_000) -> None:
        self.target, self.key = target, key
        self.filler = "budget filler " * (chunk_chars // 14)
        self.stop_event = threading.Event()
        self.windows_spent = 0
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "Spender":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(timeout=30)

    def _run(self) -> None:
        try:
            while not self.stop_event.is_set():
                status, body = chat(self.target, self.key, self.filler, max_tokens=8)
                if status == 200:
                    continue
                if status == 429 and error_code(body) == "budget_exceeded":
                    self.windows_spent += 1
                    reset = datetime.fromisoformat(body["error"]["reset_at"].replace("Z", "+00:00")).timestamp()
                    self.stop_event.wait(max(0.0, reset - time.time()) + 0.002)
                    continue
                raise AssertionError(f"spender got {status}: {body}")
        except BaseException as e:  # surfaced by the test
            self.error = e
