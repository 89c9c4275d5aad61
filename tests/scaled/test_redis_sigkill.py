"""A gateway process killed with SIGKILL mid-request: its holds free themselves within their deadline.

The holding instance is a real second process (its own interpreter, client and renewal task).
While it lives, its renewals keep its hold past several deadlines; once it is killed nobody
renews the hold, and the surviving instance finds the budget free again after about a deadline,
with no sweeper and nothing settled.
"""

from __future__ import annotations

import asyncio
import os
import select
import signal
import subprocess
import sys
import textwrap

import pytest

from tests.scaled.redis_support import open_instance, open_store, pools
from tests.support.processes import ROOT
from tollgate.domain.refusals import BudgetExhausted

HOLDER = textwrap.dedent("""
    import asyncio, sys
    from pathlib import Path
    from tests.scaled.redis_support import open_instance, open_store, pools

    async def main():
        store = await open_store(Path(sys.argv[2]))
        ledger, _ = await open_instance(sys.argv[1], store, hold_seconds=1.5, renew_every=0.2)
        grant = await ledger.reserve(pools("acct_kill", 1_000), 1_000, 1_000)
        print(grant.id, flush=True)
        await asyncio.sleep(600)

    asyncio.run(main())
""")


def _read_line(proc: subprocess.Popen, timeout: float) -> str:
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        raise AssertionError("the holding process did not report its hold")
    return proc.stdout.readline().strip()


def test_the_holds_of_a_killed_instance_free_themselves(tmp_path, redis_server):
    (tmp_path / "holder").mkdir()
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, redis_server.url, str(tmp_path / "holder")], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert _read_line(proc, 60.0)

        async def main():
            store = await open_store(tmp_path)
            survivor, _ = await open_instance(redis_server.url, store, admission_wait=0.0)
            (sub,) = pools("acct_kill", 1_000)
            for _ in range(7):  # 3.5 s: the holder's renewals keep its hold past two deadlines
                await asyncio.sleep(0.5)
                assert (await survivor.read(sub)).reserved == 1_000
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            for _ in range(100):  # bounded: about one deadline after the last renewal
                if (await survivor.read(sub)).reserved == 0:
                    break
                await asyncio.sleep(0.1)
            grant = await survivor.reserve((sub,), 1_000, 1_000)
            assert grant.amount == 1_000  # the whole budget is back, nothing was charged
            with pytest.raises(BudgetExhausted):
                await survivor.reserve((sub,), 1, 1)
            await survivor.release(grant)
            await survivor.close()
            await store.close()

        asyncio.run(main())
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
