"""A probe's latency while hostile clients hold the gateway (issue 13's done-when), and the gateway's memory.

Starts a real gateway (the repo's venv, a throwaway database), then holds open
N idle connections and N slowloris connections (each trickling a header that
never ends, reconnecting when the server closes it), while one client streams a
100 MiB header. Meanwhile a probe opens a fresh connection every 20 ms and
times `GET /health` to its last byte. Prints the probe's p50/p99 against the
same probe on the idle gateway (measured first, in the same run) and the
gateway's peak resident memory.

    .venv/bin/python bench/hostile_probe.py [--idle 500] [--slowloris 500] [--seconds 10] [--local]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PROBE = b"GET /health HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gateway(workdir: Path, local: bool) -> tuple[subprocess.Popen, int]:
    port = free_port()
    config = workdir / "tollgate.toml"
    text = (f'[server]\nhost = "127.0.0.1"\nport = {port}\ndatabase = "sqlite:///{workdir}/t.db"\n'
            '[server.limits]\nheader_timeout = 30\n')
    if not local:
        # One remote model and no bundled local one, so that the memory measured is the server's own
        # (the probe only asks /health; the upstream is never called).
        text += ('[[upstreams]]\nname = "remote"\nbase_url = "http://127.0.0.1:9/v1"\n'
                 '[[models]]\nid = "m"\nupstream = "remote"\ninput_per_mtok = 1\noutput_per_mtok = 1\n')
    config.write_text(text)
    env = {**os.environ, "TOLLGATE_ADMIN_TOKEN": secrets.token_urlsafe(32)}
    proc = subprocess.Popen([sys.executable, "-m", "tollgate", "serve", "--config", str(config)], env=env,
                            stdout=subprocess.DEVNULL, stderr=open(workdir / "gateway.log", "wb"), cwd=REPO)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(PROBE)
                if s.recv(16).startswith(b"HTTP/1.1 200"):
                    return proc, port
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("the gateway did not start; see " + str(workdir / "gateway.log"))


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """Resident memory in MB: all of it (VmRSS), or the anonymous part (RssAnon: not the mapped weights)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


async def probe_once(port: int) -> float:
    started = time.perf_counter()
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)
    writer.write(PROBE)
    data = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    assert data.startswith(b"HTTP/1.1 200"), data[:100]
    return (time.perf_counter() - started) * 1000


async def probes(port: int, seconds: float) -> list[float]:
    times = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        times.append(await probe_once(port))
        await asyncio.sleep(0.02)
    return times


async def idle(port: int, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            await reader.read()  # until the server closes it
            writer.close()
        except OSError:
            await asyncio.sleep(0.1)


async def slowloris(port: int, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n")
            while not stop.is_set() and not reader.at_eof():
                writer.write(b"X-a: b\r\n")
                await writer.drain()
                await asyncio.sleep(1.0)
            writer.close()
        except OSError:
            await asyncio.sleep(0.1)


async def huge_header(port: int, stop: asyncio.Event, total: int = 100 << 20) -> int:
    """Stream a 100 MiB header; returns how many bytes the server took before it closed the connection."""
    sent = 0
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Huge: ")
            chunk = b"a" * 65536
            while sent < total and not stop.is_set():
                writer.write(chunk)
                await writer.drain()
                sent += len(chunk)
            writer.close()
        except OSError:
            await asyncio.sleep(0.05)
    return sent


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def attack(port: int, pid: int, n_idle: int, n_slow: int, seconds: float) -> None:
    baseline = await probes(port, 3)
    before, before_anon = rss_mb(pid), rss_mb(pid, "RssAnon")
    stop = asyncio.Event()
    tasks = [asyncio.create_task(idle(port, stop)) for _ in range(n_idle)]
    tasks += [asyncio.create_task(slowloris(port, stop)) for _ in range(n_slow)]
    tasks.append(asyncio.create_task(huge_header(port, stop)))
    await asyncio.sleep(1.0)  # let them connect
    peak = peak_anon = 0.0

    async def watch_memory() -> None:
        nonlocal peak, peak_anon
        while not stop.is_set():
            peak, peak_anon = max(peak, rss_mb(pid)), max(peak_anon, rss_mb(pid, "RssAnon"))
            await asyncio.sleep(0.2)

    watcher = asyncio.create_task(watch_memory())
    loaded = await probes(port, seconds)
    stop.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, watcher, return_exceptions=True)
    print(f"probe on the idle gateway:   n={len(baseline)} p50 {percentile(baseline, 0.5):.2f} ms  "
          f"p99 {percentile(baseline, 0.99):.2f} ms")
    print(f"probe under attack ({n_idle} idle, {n_slow} slowloris, one 100 MiB header): n={len(loaded)} "
          f"p50 {percentile(loaded, 0.5):.2f} ms  p99 {percentile(loaded, 0.99):.2f} ms  (target p99 < 50 ms)")
    print(f"gateway resident memory: {before:.0f} MB before, peak under attack {peak:.0f} MB (target < 300 MB); "
          f"anonymous {before_anon:.0f} -> {peak_anon:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--idle", type=int, default=500)
    parser.add_argument("--slowloris", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--local", action="store_true", help="the embedded default: the bundled models loaded")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        proc, port = start_gateway(Path(tmp), args.local)
        try:
            asyncio.run(attack(port, proc.pid, args.idle, args.slowloris, args.seconds))
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    main()
