"""Signed bodies: HMAC-SHA256 of `<timestamp>.<body>` with the webhook's secret.

The header is `Tollgate-Signature: t=<unix seconds>,v1=<hex digest>`. The timestamp is signed
with the body, so a receiver that refuses old timestamps cannot be sent an old delivery again.
docs/alerts.md shows a receiver's check in a few lines of Python.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "Tollgate-Signature"
TOLERANCE = 300  # seconds a receiver should accept between the signed timestamp and its clock


def digest(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), str(timestamp).encode("ascii") + b"." + body, hashlib.sha256).hexdigest()


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The `Tollgate-Signature` header's value for `body` sent at `timestamp`."""
    return f"t={timestamp},v1={digest(secret, timestamp, body)}"


def verify(secret: str, header: str, body: bytes, now: float, tolerance: float = TOLERANCE) -> bool:
    """Whether `header` signs `body` with `secret`, at a timestamp within `tolerance` of `now`."""
    fields: dict[str, list[str]] = {}
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        fields.setdefault(name, []).append(value)
    try:
        timestamp = int(fields["t"][0])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    expected = digest(secret, timestamp, body)
    return any(hmac.compare_digest(expected, candidate) for candidate in fields.get("v1", []))
