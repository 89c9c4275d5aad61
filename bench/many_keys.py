"""A million keys and constant churn: throughput, added latency and memory, in one run (issue 18).

One gateway (bench/gateway.sh, pinned to CPU 0) on a database of 1,000,000 keys
(bench/many_keys_db.py, built once and copied per run), the shared harness's nginx fake
upstream and wrk on CPU 1, wrk choosing a key per request (bench/wrk_keys.lua). Phases:

  direct                  nginx alone, for the added latency
  100 keys (cold start)   100 keys in rotation on a fresh gateway (after 3 s of them)
  (warm pass)             each of the 100,000 keys once, in order
  then --rounds times (6), in this order and the reverse every other round:
    100 keys #n           100 keys in rotation
    100k keys #n          100,000 keys in rotation, any key per request
    100k keys + churn #n  the same, while 10 keys are created and 1 revoked per second through
                          the management API of the same gateway (keys outside the rotation)

Each 100k phase is compared with the 100-key phase of its round, and the medians over the rounds
are the figures: this box's speed drifts by 10-30 % over minutes (other machines on its host),
so one pair of phases proves little; short phases in alternating order (ABC, CBA) put the
phases compared close in time and spread the drift evenly.

Each phase: its load for --warmup seconds unmeasured, then throughput at --concurrency for --seconds
(30: the database rolls up its writes every 30 s, store/rollup.py, so each measured phase holds one
roll-up, partly of the phase before's records: the alternating order spreads that evenly), p50/p99 at
concurrency 1 for --latency-seconds; the gateway's resident memory (VmRSS) after it, and the key
cache's counts from /admin/metrics/caches.

    .venv/bin/python bench/many_keys.py                 # about 15 minutes, plus 1 minute to build the database once
    .venv/bin/python bench/many_keys.py --rounds 2      # quicker
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHURN = "100k keys + churn"
# The phases of a round, in turn in one order and the other (ABC, CBA): the box drifts over minutes,
# and whatever a phase leaves behind (the database's roll-up of its records) lands in the next one;
# alternating the order spreads both evenly over the phases compared.
ORDERS = (("100 keys", "100k keys", CHURN), (CHURN, "100k keys", "100 keys"))
HARNESS = Path(os.environ.get("BENCH_COPY", "/tmp/bench"))
ADMIN_TOKEN = "bench_SJzEDZUiuxx-OYXWSB0WV7iY5nopxXNAN8L2N5g6GPE"  # bench/gateway.sh's default


def log(text: str) -> None:
    print(f"[many-keys] {text}", file=sys.stderr, flush=True)


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """A memory figure of the process from /proc (VmRSS: resident; RssAnon: its anonymous part), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds of the process: its main thread (the event loop) and the rest (database, checkpoints)."""
    tick = os.sysconf("SC_CLK_TCK")
    by_part = {"event loop": 0.0, "other threads": 0.0}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        by_part["event loop" if task.name == str(pid) else "other threads"] += (int(fields[11]) + int(fields[12])) / tick
    return by_part


def wrk(url: str, conc: int, seconds: float, body: Path, keys: Path | None, order: str = "random",
        start: int = 0, cpu: str = "1") -> dict:
    env = dict(os.environ, BENCH_BODY_FILE=str(body), BENCH_KEYS_FILE=str(keys or body), BENCH_KEY_ORDER=order,
               BENCH_KEY_START=str(start))
    script = REPO / "bench" / "wrk_keys.lua" if keys else HARNESS / "wrk" / "chat.lua"
    cmd = ["taskset", "-c", cpu, "wrk", "-t1", f"-c{conc}", f"-d{int(seconds)}s", "--timeout", "10s", "--latency",
           "-s", str(script), url + "/v1/chat/completions"]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=seconds + 60)
    for line in done.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            result = json.loads(line.removeprefix("BENCH_JSON "))
            result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
            result["errors_total"] = sum(result["errors"].values())
            return result
    raise RuntimeError(f"wrk gave no summary: {done.stdout}\n{done.stderr}")


class Churn(threading.Thread):
    """10 key creations and 1 revocation per second through the gateway's management API."""

    def __init__(self, base: str, churn: dict, creates: int = 10, revokes: int = 1) -> None:
        super().__init__(daemon=True)
        self.host, self.port = base.removeprefix("http://").split(":")
        self.churn, self.creates, self.revokes = churn, creates, revokes
        self.stop_at = threading.Event()
        self.done = {"created": 0, "revoked": 0, "failed": 0}

    def _call(self, conn: http.client.HTTPConnection, method: str, path: str, body: dict | None) -> bool:
        headers = {"Authorization": f"Bearer {self.churn['management_key']}", "Content-Type": "application/json"}
        conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
        answer = conn.getresponse()
        answer.read()
        return 200 <= answer.status < 300

    def run(self) -> None:
        conn = http.client.HTTPConnection(self.host, int(self.port), timeout=30)
        revocable = list(self.churn["revocable"])
        per_second = [("create", None)] * self.creates + [("revoke", None)] * self.revokes
        step = 1.0 / len(per_second)
        tick = time.monotonic()
        while not self.stop_at.is_set():
            for action, _ in per_second:
                if action == "create":
                    ok = self._call(conn, "POST", "/api/keys/subscription", {
                        "name": "churn", "subscriptionId": self.churn["subscription"],
                        "budget": {"limit": 100000, "window": "1d"}})
                    self.done["created" if ok else "failed"] += 1
                elif revocable:
                    ok = self._call(conn, "DELETE", f"/api/keys/{revocable.pop()}", None)
                    self.done["revoked" if ok else "failed"] += 1
                tick += step
                self.stop_at.wait(max(0.0, tick - time.monotonic()))
                if self.stop_at.is_set():
                    break
        conn.close()


def admin_get(base: str, path: str) -> dict:
    request = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())["data"]


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gateway exited with {proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer in {timeout} s")


def prepare_database(cache: Path, workdir: Path) -> Path:
    template = cache / "tollgate.db"
    if not template.exists():
        log(f"building the 1,000,000-key database in {cache} (once)")
        subprocess.run([sys.executable, str(REPO / "bench" / "many_keys_db.py"), str(template)], check=True)
    workdir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, workdir / "tollgate.db")
    return cache


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db-cache", type=Path, default=Path("/tmp/many-keys-db"))
    parser.add_argument("--run", default=time.strftime("many-keys-%Y%m%d-%H%M%S"))
    parser.add_argument("--seconds", type=float, default=30,
                        help="seconds measured: one roll-up interval (store/rollup.py), so each phase holds one roll-up")
    parser.add_argument("--warmup", type=float, default=6,
                        help="seconds of the phase's load before it is measured")
    parser.add_argument("--latency-seconds", type=float, default=3)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=6,
                        help="rounds of (100 keys, 100k keys, 100k keys + churn), the order reversed every other round")
    parser.add_argument("--quiet-wait", type=float, default=30,
                        help="before each phase, wait up to this long for the machine to be idle (other jobs)")
    parser.add_argument("--port", type=int, default=18600)
    parser.add_argument("--upstream-port", type=int, default=18601)
    args = parser.parse_args()
    if not (HARNESS / "fake_upstream.py").exists():
        raise SystemExit(f"no harness at {HARNESS}: cp -r ../shared/bench {HARNESS} && bash {HARNESS}/setup.sh")
    sys.path.insert(0, str(HARNESS))
    import fake_upstream  # the shared harness's nginx fake
    from gateway_overhead import request_body, wait_quiet

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # stop the gateway and nginx on the way out
    os.sched_setaffinity(0, {1})  # the driver and its churn thread share the load core with wrk and nginx
    workdir = Path("/tmp") / args.run
    cache = prepare_database(args.db_cache, workdir)
    body = workdir / "body.json"
    body.write_text(request_body("fake-gpt-4o-mini", False))
    keys_100, keys_100k = cache / "keys-100.txt", cache / "keys-100k.txt"
    churn_plan = json.loads((cache / "churn.json").read_text())
    upstream = fake_upstream.FakeUpstream(workdir / "upstream", args.upstream_port, "1")
    upstream.start()
    env = dict(os.environ, GW_PORT=str(args.port), UPSTREAM_BASE_URL=upstream.base_url, GW_WORKDIR=str(workdir),
               TOLLGATE_ADMIN_TOKEN=ADMIN_TOKEN)
    with open(workdir / "gateway.log", "wb") as gw_log:
        gateway = subprocess.Popen(["taskset", "-c", "0", "bash", str(REPO / "bench" / "gateway.sh")], env=env,
                                   stdout=gw_log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{args.port}"
    results: list[dict] = []

    def point(name: str, keys: Path | None, url: str = base) -> dict:
        log(f"{name}: c={args.concurrency} {args.seconds:g} s, then c=1 {args.latency_seconds:g} s")
        wait_quiet(args.quiet_wait)
        if url == base and args.warmup > 0:  # not measured: what the phase before left to the database goes here
            wrk(url, args.concurrency, args.warmup, body, keys)
        cpu_before = thread_cpu(gateway.pid) if url == base else {}
        load = wrk(url, args.concurrency, args.seconds, body, keys)
        cpu_after = thread_cpu(gateway.pid) if url == base else {}
        single = wrk(url, 1, args.latency_seconds, body, keys)
        row = {"phase": name, "rps": round(load["rps"]), "errors": load["errors_total"] + single["errors_total"],
               "p50_ms": single["latency_us"]["p50"] / 1000, "p99_ms": single["latency_us"]["p99"] / 1000,
               "load_p99_ms": load["latency_us"]["p99"] / 1000}
        if cpu_after:
            used = {n: cpu_after[n] - cpu_before.get(n, 0.0) for n in cpu_after}
            row["cpu_ms_per_req"] = round(sum(used.values()) * 1000 / load["requests"], 3)
            row["cpu_s_by_thread"] = {n: round(v, 2) for n, v in sorted(used.items()) if v >= 0.01}
            row["gw_core_busy"] = round(sum(used.values()) / (load["duration_us"] / 1e6), 2)
        if url == base:
            row["rss_mb"] = round(rss_mb(gateway.pid), 1)
            row["caches"] = admin_get(base, "/admin/metrics/caches")
        results.append(row)
        log(json.dumps({k: v for k, v in row.items() if k != "caches"}))
        return row

    try:
        wait_http(base + "/health", gateway)
        log(f"gateway pid {gateway.pid}, {rss_mb(gateway.pid):.0f} MB at start")
        point("direct", None, url=upstream.base_url.removesuffix("/v1"))
        wrk(base, args.concurrency, 3, body, keys_100)
        point("100 keys (cold start)", keys_100)
        offset, started = 0, time.monotonic()
        total = sum(1 for line in keys_100k.read_text().splitlines() if line)
        for _ in range(total // 1000):  # a run that sends fewer than 1,000 requests in 5 s is broken
            if offset >= total:
                break
            sent = wrk(base, args.concurrency, 5, body, keys_100k, order="sequential", start=offset)["requests"]
            if sent < 1000:
                raise RuntimeError(f"warm pass: only {sent} requests in 5 s")
            offset += sent
        log(f"warm pass: {total:,} keys in {time.monotonic() - started:.1f} s, {rss_mb(gateway.pid):.0f} MB")
        for round_ in range(1, args.rounds + 1):
            for kind in ORDERS[(round_ - 1) % len(ORDERS)]:
                if kind != CHURN:
                    point(f"{kind} #{round_}", keys_100 if kind == "100 keys" else keys_100k)
                    continue
                churn = Churn(base, churn_plan)
                churn.start()
                time.sleep(1)
                row = point(f"{kind} #{round_}", keys_100k)
                churn.stop_at.set()
                churn.join()
                row["churn"] = dict(churn.done)
    finally:
        os.killpg(gateway.pid, 15)
        gateway.wait(timeout=60)
        upstream.stop()
    report(results, args, workdir)


def median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def report(results: list[dict], args: argparse.Namespace, workdir: Path) -> None:
    """The table, each phase against the 100-key phase of its round, and the verdict on the targets."""
    direct = results[0]
    lines = [f"run {args.run}: c={args.concurrency} for {args.seconds:g} s per phase, c=1 for {args.latency_seconds:g} s",
             "| phase | req/s | vs 100 keys | gw core busy | CPU ms/req | req/s per core | vs 100 keys | +p50 ms (c=1) "
             "| p99 ms (c=1) | RSS MB | key cache hits / misses / evictions / invalidations | churn | errors |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    rounds = {r["phase"].rsplit("#", 1)[1]: r for r in results if r["phase"].startswith("100 keys #")}
    ratios: dict[str, list[float]] = {"100k keys": [], CHURN: []}
    for r in results[1:]:
        base = rounds.get(r["phase"].rsplit("#", 1)[1]) if "#" in r["phase"] else None
        ratio = r["rps"] / base["rps"] if base else None
        capacity = base["cpu_ms_per_req"] / r["cpu_ms_per_req"] if base else None
        kind = r["phase"].rsplit(" #", 1)[0]
        if ratio is not None and kind in ratios:
            ratios[kind].append(ratio)
        c = r["caches"]["keyContexts"]
        lines.append(f"| {r['phase']} | {r['rps']:,} | {f'{ratio:.2f}' if ratio else '-'} | {r['gw_core_busy']:.2f} | "
                     f"{r['cpu_ms_per_req']:.3f} | {1000 / r['cpu_ms_per_req']:,.0f} | "
                     f"{f'{capacity:.2f}' if capacity else '-'} | "
                     f"{r['p50_ms'] - direct['p50_ms']:.3f} | {r['p99_ms']:.2f} | {r['rss_mb']:.0f} | "
                     f"{c['hits']:,} / {c['misses']:,} / {c['evictions']:,} / {c['invalidations']:,} | "
                     f"{r.get('churn', '')} | {r['errors']} |")
    peak = max(r["rss_mb"] for r in results[1:])
    by_kind = {kind: [r["rps"] for r in results if r["phase"].startswith(kind + " #")]
               for kind in ("100 keys", "100k keys", CHURN)}
    lines.append(f"direct (nginx) c=1 p50 {direct['p50_ms']:.3f} ms; peak RSS {peak:.0f} MB (target < 500).")
    for kind, values in ratios.items():
        if values:
            lines.append(f"{kind} vs 100 keys of the same round: {', '.join(f'{x:.2f}' for x in values)}; "
                         f"median {median(values):.2f} (target >= 0.90); median req/s {median(by_kind[kind]):,.0f}"
                         f" vs {median(by_kind['100 keys']):,.0f}")
    lines += [f"gateway CPU s by thread, {r['phase']}: {r['cpu_s_by_thread']}" for r in results[1:]]
    text = "\n".join(lines)
    print(text)
    (workdir / "results.json").write_text(json.dumps(results, indent=1))
    (workdir / "results.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
