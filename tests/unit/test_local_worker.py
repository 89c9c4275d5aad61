"""The worker thread and its hand-off to the event loop (no model needed)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from tollgate.proxy.upstream.local.worker import END, Channel, Failed, Worker


def test_call_runs_on_the_worker_thread_and_returns():
    async def main():
        worker = Worker("test-worker")
        try:
            name = await worker.call(lambda: threading.current_thread().name)
            assert name == "test-worker"
            assert threading.current_thread().name != name
        finally:
            await worker.stop()

    asyncio.run(main())


def test_call_reraises_the_job_error():
    async def main():
        worker = Worker("test-worker")
        try:
            with pytest.raises(ZeroDivisionError):
                await worker.call(lambda: 1 / 0)
            assert await worker.call(lambda: 42) == 42  # the thread survived
        finally:
            await worker.stop()

    asyncio.run(main())


def test_items_arrive_in_order_then_end():
    async def main():
        worker = Worker("test-worker")
        channel = Channel(asyncio.get_running_loop())

        def job(ch: Channel) -> None:
            for i in range(100):
                ch.put(i)

        worker.submit(job, channel)
        items = []
        while (item := await channel.get()) is not END:
            items.append(item)
        await worker.stop()
        return items

    assert asyncio.run(main()) == list(range(100))


def test_cancel_stops_a_running_job_and_skips_a_queued_one():
    async def main():
        worker = Worker("test-worker")
        loop = asyncio.get_running_loop()
        started = threading.Event()
        steps = []

        def endless(ch: Channel) -> None:
            started.set()
            while not ch.cancelled:
                steps.append(1)
                threading.Event().wait(0.001)

        ran_second = []
        first, second = Channel(loop), Channel(loop)
        worker.submit(endless, first)
        worker.submit(lambda ch: ran_second.append(True), second)
        await asyncio.to_thread(started.wait)
        await second.stop()  # queued: returns at once, and the job never runs
        await first.stop()  # running: returns once the job has returned
        assert not worker.busy
        count = len(steps)
        await worker.call(lambda: None)  # the queue has drained past both
        assert len(steps) == count
        assert ran_second == []
        await worker.stop()

    asyncio.run(main())


def test_failure_is_delivered_as_an_item():
    async def main():
        worker = Worker("test-worker")
        channel = Channel(asyncio.get_running_loop())

        def job(ch: Channel) -> None:
            ch.put("before")
            raise RuntimeError("boom")

        worker.submit(job, channel)
        items = []
        while (item := await channel.get()) is not END:
            items.append(item)
        await worker.stop()
        return items

    first, failure = asyncio.run(main())
    assert first == "before"
    assert isinstance(failure, Failed) and str(failure.error) == "boom"


def test_on_end_runs_once_on_the_loop_even_if_nobody_reads():
    async def main():
        worker = Worker("test-worker")
        ended = []
        loop = asyncio.get_running_loop()
        channel = Channel(loop, on_end=lambda: ended.append(threading.current_thread().name))
        worker.submit(lambda ch: ch.put("unread"), channel)
        await worker.call(lambda: None)
        await asyncio.sleep(0)
        await worker.stop()
        return ended

    assert asyncio.run(main()) == [threading.main_thread().name]
