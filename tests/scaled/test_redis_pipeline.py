"""The ledger's own EVALSHA path (pipeline.py) against a real Redis: what it packs is what Redis reads.

One batch carries many calls; an error reply fails only its own call; scripts Redis forgot (SCRIPT
FLUSH) are loaded again; keys outside ASCII are packed byte by byte; a Redis restarted under an
open connection is reached again on a new one.
"""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from tollgate.ledger.redis import RedisSettings, open_redis_client
from tollgate.ledger.redis.errors import UNREACHABLE
from tollgate.ledger.redis.pipeline import AutoPipeline

ECHO = "return {KEYS[1], ARGV[1], ARGV[2], #KEYS + #ARGV}"
FAIL = "return redis.error_reply('nope ' .. ARGV[1])"


def test_a_batch_of_calls_round_trips_exactly_and_an_error_fails_only_its_call(redis_server):
    async def main():
        client = open_redis_client(redis_server.url, RedisSettings())
        pipe = AutoPipeline(client)
        echo, fail = client.register_script(ECHO), client.register_script(FAIL)
        await client.script_load(ECHO)
        await client.script_load(FAIL)
        calls = [pipe.call(echo, [f"tg:{{acct_{i}}}:s"], [i * 10**15, f"grant-{i}"]) for i in range(40)]
        calls.insert(7, pipe.call(fail, ["k"], ["7"]))
        replies = await asyncio.gather(*calls, return_exceptions=True)
        assert isinstance(replies[7], ResponseError) and "nope 7" in str(replies[7])
        rest = replies[:7] + replies[8:]
        assert rest == [[f"tg:{{acct_{i}}}:s".encode(), str(i * 10**15).encode(), f"grant-{i}".encode(), 3]
                        for i in range(40)]
        assert pipe.batches == 1 and pipe.calls == 41  # made in one turn: one write, one read

        # Beyond ASCII (an account id in another script) and raw bytes: packed by their byte lengths.
        reply = await pipe.call(echo, ["tg:{compte_é}:s"], ["ü" * 3, b"\xff\x00"])
        assert reply == ["tg:{compte_é}:s".encode(), "üüü".encode(), b"\xff\x00", 3]

        await client.script_flush()  # Redis forgot every script: loaded again, the calls still answer
        assert (await pipe.call(echo, ["a"], [1, 2]))[3] == 3
        await pipe.close()
        await client.aclose()

    asyncio.run(main())


def test_a_redis_restarted_under_the_connection_is_reached_on_a_new_one(redis_server):
    async def main():
        client = open_redis_client(redis_server.url, RedisSettings(timeout=2.0))
        pipe = AutoPipeline(client)
        echo = client.register_script(ECHO)
        assert (await pipe.call(echo, ["a"], [1, 2]))[0] == b"a"
        redis_server.stop()
        with pytest.raises(UNREACHABLE):  # what the ledger turns into LedgerUnavailable
            await pipe.call(echo, ["a"], [1, 2])
        redis_server.start()
        assert (await pipe.call(echo, ["b"], [1, 2]))[0] == b"b"  # the script is loaded again, too
        await pipe.close()
        await client.aclose()
        check = Redis.from_url(redis_server.url)
        assert await check.ping()
        await check.aclose()

    asyncio.run(main())
