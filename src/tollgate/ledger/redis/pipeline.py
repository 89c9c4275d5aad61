"""Script calls made in the same turn of the event loop travel to Redis together, on one connection.

redis-py's general path costs most of a call in Python (taking a pooled connection,
its locks, a timeout task per read and write, packing each argument, building
pipeline objects): well over 100 µs a call here. This is the ledger's hot path, so it
goes one level lower: calls are queued, and once the turn ends the queue is written
as one buffer of EVALSHA commands, packed here with each script's static head
(`EVALSHA <sha>`) encoded once, on a connection of its own (redis-py's Connection with
the hiredis parser), then its replies are read in order under one timeout for the
whole batch. One batch is on its way at a time: calls made meanwhile wait for it and
go in the next, so the busier the gateway, the larger (and cheaper per call) the
batches. A failed batch fails each of its calls (the callers turn an unreachable
Redis into their refusal); an error reply fails only its own call.

A connection that drops (Redis restarted) is opened again and the batch sent once
more, as the client's own retry would, so a script may run twice. The ledger's are
safe to: reserve finds its own hold, settle and release their marker, renew and load
are absolute writes. A rate bucket's standalone admission run twice takes twice (one
request's worth, refilled within the minute): the one tolerated excess.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError

# The most calls one batch carries; a longer queue is sent as several, one after another.
MAX_BATCH = 512

_Call = tuple[AsyncScript, int, tuple, asyncio.Future]


def _bulk(value: object) -> bytes:
    """One RESP bulk string."""
    if isinstance(value, str):
        data = value.encode()
    elif isinstance(value, int):
        data = b"%d" % value
    elif isinstance(value, bytes):
        data = value
    else:
        data = str(value).encode()
    return b"$%d\r\n%s\r\n" % (len(data), data)


class AutoPipeline:
    def __init__(self, client: Redis) -> None:
        self.client = client
        pool = client.connection_pool
        kwargs = dict(pool.connection_kwargs)
        # One timeout bounds a whole batch (send and every reply), rather than one per socket operation.
        self.timeout: float | None = kwargs.get("socket_timeout")
        kwargs["socket_timeout"] = None
        self._conn = pool.connection_class(**kwargs)
        self._heads: dict[str, str] = {}  # script sha -> its packed `EVALSHA <sha>`
        self._queue: list[_Call] = []
        self._scheduled = False
        self._sending: asyncio.Task | None = None  # the batch on its way
        self.batches = 0  # batches sent (with `calls`: the batching the load gets)
        self.calls = 0

    async def call(self, script: AsyncScript, keys: Sequence, args: Sequence) -> object:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queue.append((script, len(keys), (*keys, *args), future))
        if not self._scheduled and self._sending is None:
            self._scheduled = True
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        self._scheduled = False
        if self._sending is None and self._queue:
            batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
            self._sending = asyncio.get_running_loop().create_task(self._send(batch))

    async def _send(self, batch: list[_Call]) -> None:
        self.batches += 1
        self.calls += len(batch)
        try:
            replies = await self._execute(batch)
        except asyncio.CancelledError:
            for *_, future in batch:
                future.cancel()
            raise
        except BaseException as error:
            for *_, future in batch:
                if not future.done():
                    future.set_exception(error)
        else:
            for (*_, future), reply in zip(batch, replies):
                if future.done():
                    continue  # its caller was cancelled
                if isinstance(reply, Exception):
                    future.set_exception(reply)
                else:
                    future.set_result(reply)
        finally:
            self._sending = None
            self._flush()  # what queued up meanwhile goes next

    async def _execute(self, batch: list[_Call]) -> list:
        replies = await self._round_trip(batch)
        missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if missing:  # Redis restarted or flushed its scripts: load each once, run those calls again
            for script in {batch[i][0] for i in missing}:
                script.sha = await self.client.script_load(script.script)
            for i, reply in zip(missing, await self._round_trip([batch[i] for i in missing])):
                replies[i] = reply
        return replies

    def _head(self, script: AsyncScript) -> str:
        head = self._heads.get(script.sha)
        if head is None:
            head = self._heads[script.sha] = f"$7\r\nEVALSHA\r\n$40\r\n{script.sha}\r\n"
        return head

    def _pack(self, batch: list[_Call]) -> bytes:
        # Built as one str and encoded once: a bulk string's length is its character count while all is
        # ASCII (keys, ids and numbers are, in practice); anything else is packed argument by argument.
        parts: list[str] = []
        for script, nkeys, argv, _ in batch:
            parts.append(f"*{3 + len(argv)}\r\n{self._head(script)}${len(str(nkeys))}\r\n{nkeys}\r\n")
            for arg in argv:
                kind = type(arg)
                if kind is not str and kind is not int:
                    return self._pack_bytes(batch)
                text = arg if kind is str else str(arg)
                parts.append(f"${len(text)}\r\n{text}\r\n")
        packed = "".join(parts)
        if packed.isascii():
            return packed.encode()
        return self._pack_bytes(batch)

    def _pack_bytes(self, batch: list[_Call]) -> bytes:
        return b"".join(b"*%d\r\n%s%s%s" % (3 + len(argv), self._head(script).encode(), _bulk(nkeys),
                                              b"".join(map(_bulk, argv)))
                        for script, nkeys, argv, _ in batch)

    async def _round_trip(self, batch: list[_Call]) -> list:
        data = self._pack(batch)
        try:
            return await self._exchange(data, len(batch))
        except RedisConnectionError:  # dropped (Redis restarted): once more, on a new connection
            return await self._exchange(data, len(batch))

    async def _exchange(self, data: bytes, n: int) -> list:
        conn = self._conn
        try:
            async with asyncio.timeout(self.timeout):
                await conn.send_packed_command(data, check_health=False)
                replies: list = []
                for _ in range(n):
                    try:
                        replies.append(await conn.read_response())
                    except ResponseError as error:  # an error reply: that call's alone
                        replies.append(error)
                return replies
        except BaseException:
            await conn.disconnect(nowait=True)  # replies may be left unread: never reuse it
            raise

    async def drain(self) -> None:
        """Wait for the batches on their way and queued (their callers are waiting for them too)."""
        for _ in range(len(self._queue) // MAX_BATCH + 2):
            task = self._sending
            if task is None:
                break
            await asyncio.gather(task, return_exceptions=True)

    async def close(self) -> None:
        """Drain, then close the connection (it is not the client's pool's: the client does not close it)."""
        await self.drain()
        await self._conn.disconnect()
