"""One JSON line per request (`[logging] requests`): who asked, what answered, what it cost, how long it took.

Never a secret and never a prompt: a line names the key by its id, the account by its id, and
says what happened (status, refusal reason, tokens, cost, latency); the request's text, the key's
secret and the upstream's error text stay out. The `request_id` is the one the client got in
`x-request-id` and the upstream in its request-id header, so the three logs line up.

Cheap on the request path (about 3 µs a line, measured): a line is one `orjson.dumps` added to a buffer; the
buffer is written to the file (or standard error) in one `write` when it holds `FLUSH_BYTES`, and at least every
`FLUSH_SECONDS` by `run_forever`, and at shutdown. With `logger`, each line goes through Python's
logging as a record of the `tollgate.requests` logger instead (slower; for a logging setup of
one's own).
"""

from __future__ import annotations

import asyncio
import logging
import os
from datetime import UTC, datetime

import orjson

from tollgate.domain.money import format_usd
from tollgate.domain.usage import UsageRecord

LOGGER = "tollgate.requests"
FLUSH_BYTES = 64 * 1024
FLUSH_SECONDS = 0.25
OFF, STDERR, LOGGER_MODE = "off", "stderr", "logger"
_OPTIONS = orjson.OPT_APPEND_NEWLINE | orjson.OPT_UTC_Z

log = logging.getLogger("tollgate.serve")


class AccessLog:
    """Writes lines to `fd` (buffered), or through `logger` when given."""

    def __init__(self, fd: int | None = None, logger: logging.Logger | None = None, owns_fd: bool = False) -> None:
        self.fd = fd
        self.logger = logger
        self.owns_fd = owns_fd
        # Lines waiting for the next write, in one buffer: appending to a bytearray costs a copy, where keeping
        # each line's own bytes object alive until the write costs an allocation that the next line cannot reuse.
        self._buffer = bytearray()
        self._failed = False

    @classmethod
    def open(cls, where: str) -> AccessLog | None:
        """`where`: "off" (None), "stderr", "logger" or a file path (appended to, created if missing)."""
        if where == OFF:
            return None
        if where == STDERR:
            return cls(os.dup(2), owns_fd=True)
        if where == LOGGER_MODE:
            return cls(logger=logging.getLogger(LOGGER))
        return cls(os.open(where, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640), owns_fd=True)

    # -- lines ----------------------------------------------------------------------

    def request(self, record: UsageRecord, upstream: str | None, reason: str | None) -> None:
        """A request the flow finished (settled, refused or abandoned)."""
        self._emit({
            "time": datetime.fromtimestamp(record.created_at, UTC), "request_id": record.request_id,
            "key_id": record.key_id, "account_id": record.account_id, "subscription_id": record.subscription_id,
            "endpoint": record.endpoint, "model": record.model, "route": record.route, "upstream": upstream,
            "stream": record.stream, "status": record.status, "reason": reason,
            "input_tokens": record.input_tokens, "output_tokens": record.output_tokens,
            "cost": format_usd(record.cost), "cost_nanos": record.cost,
            "latency_ms": round(record.latency_ms, 3), "ttft_ms": None if record.ttft_ms is None else round(record.ttft_ms, 3),
            "fallbacks": record.fallbacks, "estimated": record.estimated, "client": record.client,
        })

    def edge(self, started: float, request_id: str, method: str, path: str, status: int, reason: str | None,
             latency_ms: float) -> None:
        """A request that never reached the flow: the management and operator planes, the model list, a
        data-plane request refused before its key or body was accepted."""
        self._emit({
            "time": datetime.fromtimestamp(started, UTC), "request_id": request_id, "method": method,
            "path": path, "status": status, "reason": reason, "latency_ms": round(latency_ms, 3),
        })

    def _emit(self, line: dict) -> None:
        if self.logger is not None:
            self.logger.info(orjson.dumps(line, option=orjson.OPT_UTC_Z).decode())
            return
        buffer = self._buffer
        buffer += orjson.dumps(line, option=_OPTIONS)
        if len(buffer) >= FLUSH_BYTES:
            self.flush()

    # -- writing ----------------------------------------------------------------------

    def flush(self) -> None:
        """Write what is buffered, in one `write` where the system allows (whole lines only)."""
        if not self._buffer or self.fd is None:
            return
        data = memoryview(bytes(self._buffer))
        del self._buffer[:]
        try:
            while data:
                data = data[os.write(self.fd, data):]
        except OSError as exc:
            if not self._failed:  # said once: a full disk must not turn every request into a log line
                self._failed = True
                log.warning("the request log cannot be written (%s); its lines are dropped until it can", exc)
            return
        self._failed = False

    async def run_forever(self, every: float = FLUSH_SECONDS) -> None:
        while True:
            await asyncio.sleep(every)
            self.flush()

    def close(self) -> None:
        self.flush()
        if self.owns_fd and self.fd is not None:
            os.close(self.fd)
            self.fd = None
