"""One webhook delivery: an HTTP/1.1 POST on a fresh connection, bounded in time, reading only the status.

The gateway depends on no general HTTP client (its upstream client is built for relaying, in
`proxy/`, a layer this package does not use), and a delivery needs little: resolve, check the
addresses (destinations.py), connect, write the request, read the status line. `Connection:
close`, no redirects followed (a 3xx is a failed attempt), no body read. The whole attempt is
bounded by one timeout.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Sequence
from urllib.parse import urlsplit

from tollgate.alerts.destinations import BadDestination, check_address

MAX_STATUS_LINE = 8192


class DeliveryError(Exception):
    """The attempt got no HTTP status: refused, unreachable, timed out, not HTTP, a forbidden address."""


class Poster:
    """Posts deliveries; holds the TLS context, made on a thread at the first https URL (loading the CA
    store blocks for a while)."""

    def __init__(self) -> None:
        self._tls: ssl.SSLContext | None = None

    async def __call__(self, url: str, body: bytes, headers: Sequence[tuple[str, str]], timeout: float,
                       allow_private: bool) -> int:
        tls = None
        if url.startswith("https:"):
            if self._tls is None:
                self._tls = await asyncio.to_thread(ssl.create_default_context)
            tls = self._tls
        return await post(url, body, headers, timeout, allow_private, tls)


async def post(url: str, body: bytes, headers: Sequence[tuple[str, str]], timeout: float,
               allow_private: bool, tls: ssl.SSLContext | None = None) -> int:
    """POST `body` to `url`; the receiver's HTTP status. Raises DeliveryError when there is none.
    An https URL needs `tls` (a default context is made on the spot when none is given)."""
    try:
        async with asyncio.timeout(timeout):
            return await _post(url, body, headers, allow_private, tls)
    except TimeoutError:
        raise DeliveryError(f"no answer within {timeout:g}s") from None
    except BadDestination as exc:
        raise DeliveryError(str(exc)) from None
    except ssl.SSLError as exc:
        raise DeliveryError(f"TLS failed: {exc.reason or exc}") from None
    except OSError as exc:
        raise DeliveryError(f"could not connect: {exc.strerror or exc}") from None


async def _post(url: str, body: bytes, headers: Sequence[tuple[str, str]], allow_private: bool,
                tls: ssl.SSLContext | None) -> int:
    parts = urlsplit(url)
    secure = parts.scheme == "https"
    if secure and tls is None:
        tls = ssl.create_default_context()
    host = parts.hostname or ""
    port = parts.port or (443 if secure else 80)
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not allow_private:
        for address in addresses:
            check_address(address)
    reader = writer = None
    failure: OSError | None = None
    for address in addresses:  # the addresses checked above, never the name again
        try:
            reader, writer = await asyncio.open_connection(
                address, port, ssl=tls if secure else None, server_hostname=host if secure else None,
                limit=MAX_STATUS_LINE)
            break
        except OSError as exc:
            failure = exc
    if writer is None:
        raise failure or OSError(f"{host} has no address")
    try:
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        authority = host if ":" not in host else f"[{host}]"
        if parts.port is not None:
            authority += f":{parts.port}"
        head = [f"POST {target} HTTP/1.1", f"Host: {authority}", f"Content-Length: {len(body)}", "Connection: close",
                *(f"{name}: {value}" for name, value in headers)]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        await writer.drain()
        try:
            line = await reader.readline()
        except (asyncio.LimitOverrunError, ValueError):
            raise DeliveryError("the answer's status line is too long") from None
        return _status(line)
    finally:
        writer.close()  # not waited for: the status is in, and a receiver slow to close must not undo that


def _status(line: bytes) -> int:
    """The status of `HTTP/1.1 204 No Content`."""
    parts = line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not (parts[1].isdigit() and len(parts[1]) == 3):
        raise DeliveryError("the receiver did not answer HTTP" if line else "the receiver closed the connection")
    return int(parts[1])
