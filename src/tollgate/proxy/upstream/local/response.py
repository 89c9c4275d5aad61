"""`UpstreamResponse` implementations for in-process models (base.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

from tollgate.proxy.upstream.local.sse import JSON_HEADERS


class BufferedResponse:
    """A body that is already complete: errors and non-streamed results."""

    def __init__(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.headers = dict(headers or JSON_HEADERS)
        self._body = body

    async def chunks(self) -> AsyncIterator[bytes]:
        yield self._body

    async def read(self) -> bytes:
        return self._body

    async def aclose(self) -> None:
        return None


class StreamingResponse:
    """A body produced while the model generates.

    `aclose` stops generation at the next token and waits (briefly: one token)
    until the worker has really stopped, so the model is free for the next request.
    """

    def __init__(
        self,
        headers: dict[str, str],
        body: AsyncIterator[bytes],
        stop: Callable[[], Awaitable[None]],
    ) -> None:
        self.status = 200
        self.headers = headers
        self._body = body
        self._stop = stop
        self._closed = False

    async def chunks(self) -> AsyncIterator[bytes]:
        async for chunk in self._body:
            if self._closed:
                return
            yield chunk

    async def read(self) -> bytes:
        return b"".join([chunk async for chunk in self.chunks()])

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._stop()
