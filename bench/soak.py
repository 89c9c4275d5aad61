"""Hours at full load, in minutes: memory, ledger backlog, database size and latency over a long run (issue 20).

One gateway (bench/gateway.sh, pinned to CPU 0) on the embedded store, the shared harness's
nginx fake upstream and wrk on CPU 1, one key (bench/bench_key.sh: a subscription and the
key's own budget, both checked on every request). The load runs for --minutes as back-to-back
wrk runs of --sample seconds at --concurrency, then the gateway idles for --idle-minutes.
After each sample: requests/s and p99 of that sample, the gateway's resident and anonymous
memory, the ledger's write backlog and its waits/refusals (/admin/metrics/ledger), the
database's size on disk (file and WAL), and how long `GET /v1/usage` takes for the key.

At the end the gateway is stopped cleanly and the database is checked: every request it
settled is a usage record, and their count and sum equal the ledger (the spend counters of the
key's pools, and the hourly aggregates).

    .venv/bin/python bench/soak.py                          # 30 minutes of load, 5 idle
    .venv/bin/python bench/soak.py --minutes 2 --idle-minutes 0.5
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from statistics import median

sys.path.insert(0, str(Path(__file__).resolve().parent))
from many_keys import ADMIN_TOKEN, HARNESS, REPO, admin_get, rss_mb, wait_http  # noqa: E402


def log(text: str) -> None:
    print(f"[soak] {text}", file=sys.stderr, flush=True)


def wrk_segment(url: str, key: str, conc: int, seconds: float, body: Path) -> dict:
    env = dict(os.environ, BENCH_BODY_FILE=str(body), BENCH_API_KEY=key)
    cmd = ["taskset", "-c", "1", "wrk", "-t1", f"-c{conc}", f"-d{int(seconds)}s", "--timeout", "10s", "--latency",
           "-s", str(HARNESS / "wrk" / "chat.lua"), url + "/v1/chat/completions"]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=seconds + 60)
    for line in done.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            result = json.loads(line.removeprefix("BENCH_JSON "))
            result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
            return result
    raise RuntimeError(f"wrk gave no summary: {done.stdout}\n{done.stderr}")


def usage_ms(base: str, key: str) -> float:
    request = urllib.request.Request(base + "/v1/usage", headers={"Authorization": f"Bearer {key}"})
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=60) as answer:
        answer.read()
    return (time.perf_counter() - started) * 1000


def db_mb(workdir: Path) -> float:
    return sum(p.stat().st_size for p in workdir.glob("tollgate.db*") if p.is_file()) / 1e6


def sample(base: str, key: str, gateway: subprocess.Popen, workdir: Path, t0: float, phase: str,
           load: dict | None) -> dict:
    ledger = admin_get(base, "/admin/metrics/ledger")
    row = {"t_s": round(time.monotonic() - t0), "phase": phase,
           "rps": round(load["rps"]) if load else 0,
           "p99_ms": load["latency_us"]["p99"] / 1000 if load else None,
           "non_2xx": load["errors"]["status"] if load else 0,
           "socket_errors": sum(v for k, v in load["errors"].items() if k != "status") if load else 0,
           "rss_mb": round(rss_mb(gateway.pid), 1), "anon_mb": round(rss_mb(gateway.pid, "RssAnon"), 1),
           "backlog_mb": round(ledger["backlogBytes"] / 1e6, 2), "backlog_age_s": ledger["backlogAgeSeconds"],
           "backlog_waits": ledger["backlogWaits"], "backlog_refusals": ledger["backlogRefusals"],
           "db_mb": round(db_mb(workdir), 1), "usage_ms": round(usage_ms(base, key), 1),
           "requests": load["requests"] if load else 0,
           "bound": f"{ledger['backlogLimitBytes'] / 1e6:g} MB or {ledger['backlogLimitSeconds']:g} s"}
    log(json.dumps(row))
    return row


def ledger_check(db: Path) -> dict:
    """The database after a clean stop: records against spend counters and hourly aggregates."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        records, cost = conn.execute("SELECT COUNT(*), COALESCE(SUM(cost), 0) FROM usage_records").fetchone()
        ok_records = conn.execute("SELECT COUNT(*) FROM usage_records WHERE status = 200").fetchone()[0]
        pools = dict(conn.execute("SELECT pool, SUM(spent) FROM spend_totals GROUP BY pool").fetchall())
        hourly = conn.execute("SELECT COALESCE(SUM(requests), 0), COALESCE(SUM(cost), 0) FROM usage_hourly").fetchone()
    finally:
        conn.close()
    return {"records": records, "records_200": ok_records, "cost_nanos": cost, "spend_by_pool": pools,
            "hourly_requests": hourly[0], "hourly_cost_nanos": hourly[1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default=time.strftime("soak-%Y%m%d-%H%M%S"))
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--idle-minutes", type=float, default=5)
    parser.add_argument("--sample", type=float, default=10, help="seconds per sample (one wrk run)")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--port", type=int, default=18700)
    parser.add_argument("--upstream-port", type=int, default=18701)
    args = parser.parse_args()
    if not (HARNESS / "fake_upstream.py").exists():
        raise SystemExit(f"no harness at {HARNESS}: cp -r ../shared/bench {HARNESS} && bash {HARNESS}/setup.sh")
    sys.path.insert(0, str(HARNESS))
    import fake_upstream  # the shared harness's nginx fake
    from gateway_overhead import request_body

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    os.sched_setaffinity(0, {1})
    workdir = Path("/tmp") / args.run
    workdir.mkdir(parents=True, exist_ok=True)
    body = workdir / "body.json"
    body.write_text(request_body("fake-gpt-4o-mini", False))
    upstream = fake_upstream.FakeUpstream(workdir / "upstream", args.upstream_port, "1")
    upstream.start()
    env = dict(os.environ, GW_PORT=str(args.port), UPSTREAM_BASE_URL=upstream.base_url, GW_WORKDIR=str(workdir),
               TOLLGATE_ADMIN_TOKEN=ADMIN_TOKEN)
    with open(workdir / "gateway.log", "wb") as gw_log:
        gateway = subprocess.Popen(["taskset", "-c", "0", "bash", str(REPO / "bench" / "gateway.sh")], env=env,
                                   stdout=gw_log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{args.port}"
    rows: list[dict] = []
    stopped = False
    try:
        wait_http(base + "/health", gateway)
        key = subprocess.run(["bash", str(REPO / "bench" / "bench_key.sh")], env=dict(env, GW_BASE_URL=base),
                             capture_output=True, text=True, check=True, timeout=60).stdout.split()[-1]
        t0 = time.monotonic()
        rows.append(sample(base, key, gateway, workdir, t0, "start", None))
        load_until = t0 + args.minutes * 60
        while time.monotonic() < load_until:
            load = wrk_segment(base, key, args.concurrency, args.sample, body)
            rows.append(sample(base, key, gateway, workdir, t0, "load", load))
        idle_until = time.monotonic() + args.idle_minutes * 60
        while time.monotonic() < idle_until:
            time.sleep(args.sample)
            rows.append(sample(base, key, gateway, workdir, t0, "idle", None))
        os.killpg(gateway.pid, signal.SIGTERM)
        gateway.wait(timeout=120)
        stopped = True
        check = ledger_check(workdir / "tollgate.db")
    finally:
        if not stopped:
            os.killpg(gateway.pid, signal.SIGKILL)
            gateway.wait(timeout=60)
        upstream.stop()
    report(rows, check, args, workdir)


def report(rows: list[dict], check: dict, args: argparse.Namespace, workdir: Path) -> None:
    load = [r for r in rows if r["phase"] == "load"]
    per_block = max(1, int(300 / args.sample))  # samples in 5 minutes
    first, last = load[:per_block], load[-per_block:]
    p99_first, p99_last = median(r["p99_ms"] for r in first), median(r["p99_ms"] for r in last)
    answered = sum(r["requests"] - r["non_2xx"] for r in load)
    pools = check["spend_by_pool"]
    lines = [f"run {args.run}: {args.minutes:g} min at c={args.concurrency} in {args.sample:g} s samples, "
             f"then {args.idle_minutes:g} min idle",
             "| t (s) | phase | req/s | p99 ms | non-2xx | RSS MB | anon MB | backlog MB | backlog age s "
             "| waits / 503s | DB MB | /v1/usage ms |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    every = max(1, int(60 / args.sample))  # one row a minute in the table (every sample is in results.json)
    shown = [r for i, r in enumerate(rows) if i % every == 0 or r is rows[-1] or r["phase"] != "load"]
    for r in shown:
        lines.append(f"| {r['t_s']} | {r['phase']} | {r['rps']:,} | {r['p99_ms'] if r['p99_ms'] is not None else '-'} "
                     f"| {r['non_2xx']} | {r['rss_mb']:.0f} | {r['anon_mb']:.0f} | {r['backlog_mb']:.2f} | "
                     f"{r['backlog_age_s']:.2f} | {r['backlog_waits']} / {r['backlog_refusals']} | {r['db_mb']:.0f} | "
                     f"{r['usage_ms']:.1f} |")
    peak_rss = max(r["rss_mb"] for r in rows)
    peak_backlog = max(r["backlog_mb"] for r in rows)
    mean_rps = sum(r["requests"] for r in load) / (len(load) * args.sample)
    exact = all(spent == check["cost_nanos"] for spent in pools.values()) and \
        (check["hourly_requests"], check["hourly_cost_nanos"]) == (check["records"], check["cost_nanos"])
    lines += [
        f"mean {mean_rps:,.0f} req/s; peak RSS {peak_rss:.0f} MB (target < 300); peak backlog {peak_backlog:.2f} MB "
        f"(bound {rows[0]['bound']}); p99 first 5 min {p99_first:.2f} ms, last 5 min {p99_last:.2f} ms "
        f"(ratio {p99_last / p99_first:.2f}, target <= 1.20, medians of {args.sample:g} s samples)",
        f"end: {check['records']:,} usage records ({check['records_200']:,} answered 200; wrk counted {answered:,} "
        f"2xx), cost {check['cost_nanos']:,} nanos; spend counters by pool {pools}; hourly aggregates "
        f"{check['hourly_requests']:,} requests, {check['hourly_cost_nanos']:,} nanos: "
        f"{'every sum equal' if exact else 'MISMATCH'}",
    ]
    text = "\n".join(lines)
    print(text)
    (workdir / "results.json").write_text(json.dumps({"rows": rows, "check": check}, indent=1))
    (workdir / "results.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
