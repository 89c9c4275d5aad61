"""The two end states of a parked session on disk: failed (with a reason) and finished."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tollgate.agent.errors import CorruptEntry
from tollgate.agent.session import Session
from tollgate.agent.timefmt import format_instant, parse_instant

FAILED_FORMAT = "tollgate.agent.failed/1"
DONE_FORMAT = "tollgate.agent.done/1"


@dataclass(frozen=True)
class Failure:
    """A session that will not be retried: non-retriable error, too many attempts, or max steps."""

    session: Session
    reason: str  # e.g. key_revoked, insufficient_credits, max_attempts, max_steps
    message: str
    kind: str  # an ErrorKind value, or "" when the reason is the toolkit's own
    status: int | None
    failed_at: datetime

    def to_json(self) -> bytes:
        body = {
            "format": FAILED_FORMAT,
            "failure": {
                "reason": self.reason,
                "message": self.message,
                "kind": self.kind,
                "status": self.status,
                "failed_at": format_instant(self.failed_at),
            },
            "session": self.session.to_dict(),
        }
        return json.dumps(body, ensure_ascii=False, indent=1).encode("utf-8")


@dataclass(frozen=True)
class Finished:
    """A session that ran to its end after being resumed; `output` is its final answer."""

    session: Session
    stop: str  # a StopReason value
    output: str | None
    finished_at: datetime

    def to_json(self) -> bytes:
        body = {
            "format": DONE_FORMAT,
            "result": {"stop": self.stop, "output": self.output, "finished_at": format_instant(self.finished_at)},
            "session": self.session.to_dict(),
        }
        return json.dumps(body, ensure_ascii=False, indent=1).encode("utf-8")


def _envelope(raw: bytes, fmt: str, section: str) -> tuple[dict[str, Any], Session]:
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise CorruptEntry(f"not valid JSON: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != fmt or not isinstance(data.get(section), dict):
        raise CorruptEntry(f"not a {fmt} record")
    return data[section], Session.from_dict(data.get("session"))


def _when(value: Any) -> datetime:
    moment = parse_instant(value)
    if moment is None:
        raise CorruptEntry("record has no valid timestamp")
    return moment


def read_failure(raw: bytes) -> Failure:
    info, session = _envelope(raw, FAILED_FORMAT, "failure")
    status = info.get("status")
    return Failure(
        session=session,
        reason=str(info.get("reason") or "unknown"),
        message=str(info.get("message") or ""),
        kind=str(info.get("kind") or ""),
        status=status if isinstance(status, int) and not isinstance(status, bool) else None,
        failed_at=_when(info.get("failed_at")),
    )


def read_finished(raw: bytes) -> Finished:
    info, session = _envelope(raw, DONE_FORMAT, "result")
    output = info.get("output")
    return Finished(
        session=session,
        stop=str(info.get("stop") or "completed"),
        output=output if isinstance(output, str) else None,
        finished_at=_when(info.get("finished_at")),
    )
