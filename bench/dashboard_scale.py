"""The dashboard with a million usage records: every page and list under 200 ms, and no cost to the data plane (issue 15).

Builds once (cached in --db-cache, about a minute; rebuilt when older than a day, so that every record
stays inside the default 30-day retention and the gateway's pruning never runs during a measurement)
a database of 1,000,000 usage records: an account `main` (20 subscription keys of plan `bench`, each
with its own budget, like bench/bench_key.sh) with 90 % of them and an account `other` (5 keys) with
the rest, spread over the last 29 days, in time order, across 7 (model, model used, route) mixes (the
`auto` router's five routes among them), statuses 200 / 429 (`budget_exceeded`,
`rate_limit_exceeded`) / 502 / 499, with tokens and costs priced per model. The accounts and keys go
in through the store (`SQLiteStore`, migrations and triggers and all); the records with `executemany`
of the ledger's own INSERT (tollgate.ledger.sql), then rolled up into `usage_hourly` and `usage_daily`
as the gateway's store does (tollgate.store.rollup).

Then, on a copy, one gateway (bench/gateway.sh, pinned to CPU 0), the shared harness's nginx fake
upstream and wrk on CPU 1 (like bench/soak.py), and in one run:

1. every endpoint the dashboard's three views call (http/dashboard_assets/app.js), the lists around
   them, and the page and its static files: --repeat times each, one after the other, over one
   keep-alive connection (p50 and max ms; the first call is the slowest, it reads the pages from disk);
2. the data plane (chat completions with key 0 of `main`, c=--concurrency) in --rounds pairs of
   --seconds phases: alone and with dashboard tabs open, which first alternating (alone, with, with,
   alone, ...: the later phase of a pair runs on a warmer gateway and a bigger database); the tabs are
   threads on CPU 1, --tabs-per-role each of an owner's tab, a key's tab and the operator's tab, each
   over its own keep-alive connection. `--tabs refresh` (the default): each tab fetches its view's
   whole set (what the page fetches when it opens, or on "Refresh", at its default ranges) every
   --poll-interval seconds. `--tabs timers`: each tab opens once (the openings spread over the phase),
   then fetches only what the page's own timers fetch (owner and key every 15 s, operator every 5 s).
   Per phase: req/s and p99, the gateway's CPU (event loop, other threads), and how much CPU other
   processes on the box took; then the tabs once more with no load, for what they cost alone;
3. the endpoints of 1. again, after the load: `main` then holds the load's records too, the newest
   of them all answered 200 (what a filter on refusals must walk past).

    .venv/bin/python bench/dashboard_scale.py --run dash-1          # about 6 minutes (+1 to build once)
    .venv/bin/python bench/dashboard_scale.py --tabs timers --tabs-per-role 3
    .venv/bin/python bench/dashboard_scale.py --seconds 5 --rounds 1 --repeat 5   # quicker
    .venv/bin/python bench/dashboard_scale.py --build-only          # the database alone
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import random
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from statistics import median

sys.path.insert(0, str(Path(__file__).resolve().parent))
from many_keys import ADMIN_TOKEN, HARNESS, REPO, thread_cpu, wait_http  # noqa: E402
from many_keys_db import BENCH_PLAN, KEY_BUDGET  # noqa: E402
from soak import wrk_segment  # noqa: E402

from tollgate.domain.accounts import Account, ApiKey, ManagementKey, Subscription  # noqa: E402
from tollgate.domain.secrets import CONSUMPTION_PREFIX, MANAGEMENT_PREFIX, display_prefix, hash_secret  # noqa: E402
from tollgate.domain.secrets import new_secret  # noqa: E402
from tollgate.domain.usage import UsageRecord  # noqa: E402
from tollgate.ledger.sql import INSERT_USAGE, USAGE_FIELDS  # noqa: E402
from tollgate.store.rollup import roll_up  # noqa: E402
from tollgate.store.sqlite import SQLiteStore  # noqa: E402

DAY = 86_400
TARGET_MS = 200.0
CLK_TCK = os.sysconf("SC_CLK_TCK")
CACHE_MAX_AGE = DAY  # records span 29 days: a cache older than a day would reach past the 30-day retention

# (model asked, model used, route, $ per million input tokens, $ per million output tokens, weight)
MIXES = (
    ("fake-gpt-4o-mini", "gpt-4o-mini", None, 0.15, 0.60, 40),
    ("claude-sonnet-4-5", "claude-sonnet-4-5", None, 3.00, 15.00, 12),
    ("auto", "llama-3.1-8b", "simple", 0.02, 0.05, 22),
    ("auto", "deepseek-v3.2", "general", 0.28, 0.42, 14),
    ("auto", "deepseek-r1", "reasoning", 0.55, 2.19, 6),
    ("auto", "qwen3-coder-480b-a35b", "code", 0.45, 1.80, 4),
    ("auto", "kimi-k2.5", "agent", 0.60, 2.50, 2),
)
# (status, error, weight): mostly answered, some refusals with their reason, a few failures
OUTCOMES = (
    (200, None, 935),
    (429, "budget_exceeded", 30),
    (429, "rate_limit_exceeded", 20),
    (502, "fake: upstream closed the stream before its end", 10),
    (499, "client disconnected", 5),
)
CLIENTS = ("OpenAI/Python 1.54.3", "AsyncOpenAI/Python 1.54.3", "curl/8.5.0", "tollgate-bench")


def log(text: str) -> None:
    print(f"[dashboard-scale] {text}", file=sys.stderr, flush=True)


# -- the database ------------------------------------------------------------------------------------


async def _accounts(db: Path, now: int) -> dict:
    """Two accounts with a `bench` subscription, a management key and their keys, through the store."""
    store = SQLiteStore(f"sqlite:///{db}")
    await store.open()
    out: dict = {}
    try:
        await store.upsert_plan(BENCH_PLAN)
        created = now - 60 * DAY
        for name, keys in (("main", 20), ("other", 5)):
            account = Account(f"acct_dash_{name}", f"dashboard {name}", created)
            await store.create_account(account)
            sub = Subscription(f"sub_dash_{name}", account.id, "bench", "active", created, created, now + 365 * DAY)
            await store.create_subscription(sub)
            mk = new_secret(MANAGEMENT_PREFIX)
            await store.create_management_key(
                ManagementKey(f"mkey_dash_{name}", account.id, "owner", display_prefix(mk), created), hash_secret(mk))
            pending, listed = [], []
            for k in range(keys):
                secret = new_secret(CONSUMPTION_PREFIX)
                key = ApiKey(f"key_dash_{name}_{k:02d}", account.id, "subscription", f"{name} key {k}",
                             display_prefix(secret), created + k, sub.id, KEY_BUDGET, DAY, end_user=f"user-{k % 4}")
                pending.append((key, hash_secret(secret)))
                listed.append({"id": key.id, "secret": secret})
            await store.create_api_keys(pending)
            out[name] = {"account": account.id, "subscription": sub.id, "management_key": mk, "keys": listed}
    finally:
        await store.close()
    return out


def _records(rng: random.Random, now: float, count: int, days: float, accounts: dict, other_share: float):
    """`count` usage records of the accounts, oldest first, over the `days` before `now`."""
    times = sorted(rng.uniform(now - days * DAY, now - 120) for _ in range(count))
    per_account = {}
    for name, acct in accounts.items():
        keys = [k["id"] for k in acct["keys"]]
        weights = [1 / (i + 1) for i in range(len(keys))]  # a few keys do most of the work, as in life
        per_account[name] = (acct["account"], acct["subscription"], keys, weights)
    mixes, mix_weights = MIXES, [m[-1] for m in MIXES]
    outcomes, outcome_weights = OUTCOMES, [o[-1] for o in OUTCOMES]
    for t in times:
        account_id, sub_id, keys, weights = per_account["other" if rng.random() < other_share else "main"]
        key_id = rng.choices(keys, weights)[0]
        model, used, route, in_price, out_price, _ = rng.choices(mixes, mix_weights)[0]
        status, error, _ = rng.choices(outcomes, outcome_weights)[0]
        stream = rng.random() < 0.25
        day = int(t) - int(t) % DAY
        if status == 429:
            tokens_in = tokens_out = cost = 0
            latency, ttft, basis, cached, fallbacks = rng.uniform(0.2, 1.5), None, None, None, 0
        else:
            tokens_in = min(120_000, int(rng.lognormvariate(6.5, 1.1)))
            tokens_out = 0 if status == 502 else min(16_000, int(rng.lognormvariate(5.3, 0.8)))
            cached = int(tokens_in * rng.random()) if rng.random() < 0.3 else None
            cost = round(tokens_in * in_price * 1000 + tokens_out * out_price * 1000)  # nano-dollars
            ttft = rng.uniform(150, 900) if stream else None
            latency = (ttft or rng.uniform(150, 900)) + tokens_out * rng.uniform(8, 25)
            basis, fallbacks = "upstream", 1 if rng.random() < 0.01 else 0
        yield UsageRecord(
            request_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)), created_at=t, account_id=account_id,
            key_id=key_id, subscription_id=sub_id, model=model, upstream_model=used, route=route, endpoint="chat",
            status=status, input_tokens=tokens_in, output_tokens=tokens_out, cost=cost, latency_ms=latency,
            estimated=False, stream=stream, window_start=day, key_window_start=day, fallbacks=fallbacks, error=error,
            cached_prefix_tokens=cached, client=rng.choice(CLIENTS), usage_basis=basis, ttft_ms=ttft)


def build(db: Path, count: int, days: float, other_share: float, seed: int) -> dict:
    """The cached database and its `accounts.json` (secrets, ids): accounts through the store, records in bulk."""
    started = time.monotonic()
    now = time.time()
    db.parent.mkdir(parents=True, exist_ok=True)
    for side in ("", "-wal", "-shm"):
        db.with_name(db.name + side).unlink(missing_ok=True)
    accounts = asyncio.run(_accounts(db, int(now)))
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-400000")  # the build's own connection; the gateway keeps its settings
        conn.execute("BEGIN")
        rows, written = [], 0
        for record in _records(random.Random(seed), now, count, days, accounts, other_share):
            rows.append(tuple(getattr(record, name) for name in USAGE_FIELDS))
            if len(rows) == 50_000:
                conn.executemany(INSERT_USAGE, rows)
                written += len(rows)
                rows = []
        conn.executemany(INSERT_USAGE, rows)
        written += len(rows)
        roll_up(conn, now)  # the aggregates, as the gateway's store keeps them (days folded up to now)
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        hourly = conn.execute("SELECT COUNT(*) FROM usage_hourly").fetchone()[0]
        by_account = dict(conn.execute("SELECT account_id, COUNT(*) FROM usage_records GROUP BY account_id"))
    finally:
        conn.close()
    meta = {"built_at": now, "records": written, "hourly_rows": hourly, "by_account": by_account, "days": days,
            "build_s": round(time.monotonic() - started, 1), "db_mb": round(db.stat().st_size / 1e6), **accounts}
    (db.parent / "accounts.json").write_text(json.dumps(meta, indent=1))
    return meta


def prepare_database(cache: Path, workdir: Path, args: argparse.Namespace) -> dict:
    template, meta_file = cache / "tollgate.db", cache / "accounts.json"
    meta = json.loads(meta_file.read_text()) if meta_file.exists() and template.exists() else None
    if meta is None or time.time() - meta["built_at"] > CACHE_MAX_AGE or meta["records"] != args.records:
        log(f"building the {args.records:,}-record database in {cache} (about a minute)")
        meta = build(template, args.records, args.days, args.other_share, args.seed)
        log(f"built: {meta['records']:,} records, {meta['hourly_rows']:,} hourly rows, {meta['db_mb']} MB, "
            f"{meta['build_s']} s")
    workdir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, workdir / "tollgate.db")
    return meta


# -- HTTP ----------------------------------------------------------------------------------------------


class Client:
    """One keep-alive connection with one secret, as one browser tab's fetches."""

    def __init__(self, base: str, secret: str | None) -> None:
        host, port = base.removeprefix("http://").split(":")
        self.host, self.port = host, int(port)
        self.headers = {"Authorization": f"Bearer {secret}"} if secret else {}
        self.conn: http.client.HTTPConnection | None = None

    def get(self, path: str) -> tuple[int, float, int]:
        """(status, ms, bytes) of one GET, the answer read to its end. A kept-alive connection the server closed
        while idle (its keep-alive timeout) is opened again and the GET sent once more, as a browser does."""
        for attempt in (1, 2):
            reused = self.conn is not None
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
            started = time.perf_counter()
            try:
                self.conn.request("GET", path, headers=self.headers)
                answer = self.conn.getresponse()
                body = answer.read()
            except (OSError, http.client.HTTPException) as error:
                self.conn.close()
                self.conn = None
                stale = isinstance(error, (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError))
                if attempt == 1 and reused and stale:
                    continue
                raise
            return answer.status, (time.perf_counter() - started) * 1000, len(body)
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()


@dataclass
class Endpoint:
    name: str  # what the table says
    role: str  # owner, key, operator, page
    path: str


def endpoints(meta: dict, ids: dict) -> list[Endpoint]:
    """What the dashboard's views fetch (app.js), the lists and reports around them, and the page itself."""
    main, other = meta["main"], meta["other"]
    key3, key0 = main["keys"][3]["id"], main["keys"][0]["id"]
    return [
        Endpoint("/dashboard", "page", "/dashboard"),
        Endpoint("/dashboard/static/app.js", "page", "/dashboard/static/app.js"),
        Endpoint("/dashboard/static/style.css", "page", "/dashboard/static/style.css"),
        # the account owner's view
        Endpoint("/api/billing/status", "owner", "/api/billing/status"),
        Endpoint("/api/keys?limit=100", "owner", "/api/keys?limit=100"),
        Endpoint("/api/budgets?limit=100", "owner", "/api/budgets?limit=100"),
        Endpoint("/api/usage (31 days, per key)", "owner", "/api/usage"),
        Endpoint("/api/usage?days=7", "owner", "/api/usage?days=7"),
        *(Endpoint(f"/api/usage/hourly?days={d}&groupBy={g}", "owner", f"/api/usage/hourly?days={d}&groupBy={g}")
          for d in (7, 30) for g in ("key", "model", "route")),
        Endpoint("/api/usage/hourly?days=365&groupBy=model", "owner", "/api/usage/hourly?days=365&groupBy=model"),
        Endpoint("/api/requests?limit=50", "owner", "/api/requests?limit=50"),
        Endpoint("/api/requests?status=4xx&limit=10 (refusals)", "owner", "/api/requests?status=4xx&limit=10"),
        Endpoint("/api/requests?keyId=k3&model=deepseek-r1&status=4xx", "owner",
                 f"/api/requests?keyId={key3}&model=deepseek-r1&status=4xx&limit=50"),
        Endpoint("/api/requests?model=claude-sonnet-4-5", "owner", "/api/requests?model=claude-sonnet-4-5&limit=50"),
        Endpoint("/api/requests?status=429", "owner", "/api/requests?status=429&limit=50"),
        Endpoint("/api/requests?before=(20 days back)", "owner", f"/api/requests?limit=50&before={ids['main_deep']}"),
        Endpoint("/api/requests?since=&until= (a day, 15 days back)", "owner",
                 f"/api/requests?limit=50&since={ids['day_since']:.0f}&until={ids['day_until']:.0f}"),
        # one key's view
        Endpoint("/v1/usage", "key", "/v1/usage"),
        Endpoint("/v1/requests?limit=50", "key", "/v1/requests?limit=50"),
        Endpoint("/v1/requests?status=4xx", "key", "/v1/requests?status=4xx&limit=50"),
        # the operator's view
        Endpoint("/admin/accounts", "operator", "/admin/accounts"),
        Endpoint("/admin/usage/accounts?days=7", "operator", "/admin/usage/accounts?days=7&limit=100"),
        Endpoint("/admin/usage/accounts?days=30", "operator", "/admin/usage/accounts?days=30&limit=100"),
        Endpoint("/admin/usage/hourly?accountId=main&days=30&groupBy=key", "operator",
                 f"/admin/usage/hourly?accountId={main['account']}&days=30&groupBy=key"),
        Endpoint("/admin/requests?limit=50", "operator", "/admin/requests?limit=50"),
        Endpoint("/admin/requests?accountId=main", "operator", f"/admin/requests?accountId={main['account']}&limit=50"),
        Endpoint("/admin/requests?accountId=other", "operator",
                 f"/admin/requests?accountId={other['account']}&limit=50"),
        Endpoint("/admin/requests?keyId=k0", "operator", f"/admin/requests?keyId={key0}&limit=50"),
        Endpoint("/admin/requests?status=4xx (every account)", "operator", "/admin/requests?status=4xx&limit=50"),
        Endpoint("/admin/requests?before=(deep)", "operator", f"/admin/requests?limit=50&before={ids['any_deep']}"),
        Endpoint("/admin/metrics/traffic", "operator", "/admin/metrics/traffic"),
        Endpoint("/admin/metrics/ledger", "operator", "/admin/metrics/ledger"),
    ]


# What each tab fetches when it opens or on "Refresh" (app.js showOwner/showKey/showOperator, refreshAll), at the
# page's default ranges (7 days, 50 rows).
TABS = {
    "owner": ["/api/billing/status", "/api/budgets?limit=100", "/api/keys?limit=100",
              "/api/usage/hourly?days=7&groupBy=key", "/api/usage/hourly?days=7&groupBy=model",
              "/api/usage/hourly?days=7&groupBy=route", "/api/requests?status=4xx&limit=10", "/api/requests?limit=50"],
    "key": ["/v1/usage", "/v1/requests?limit=50"],
    "operator": ["/admin/metrics/ledger", "/admin/metrics/traffic", "/admin/usage/accounts?days=7&limit=100",
                 "/admin/requests?limit=50"],
}


# What an open tab fetches on its own (app.js `every`): (seconds, paths).
TIMERS = {
    "owner": (15.0, ["/api/billing/status", "/api/budgets?limit=100"]),
    "key": (15.0, ["/v1/usage"]),
    "operator": (5.0, ["/admin/metrics/ledger", "/admin/metrics/traffic"]),
}


def secrets_of(meta: dict) -> dict[str, str | None]:
    return {"owner": meta["main"]["management_key"], "key": meta["main"]["keys"][0]["secret"],
            "operator": ADMIN_TOKEN, "page": None}


def time_endpoints(base: str, meta: dict, ids: dict, repeat: int) -> list[dict]:
    secrets = secrets_of(meta)
    clients = {role: Client(base, secret) for role, secret in secrets.items()}
    rows = []
    for ep in endpoints(meta, ids):
        timings, statuses, size = [], set(), 0
        for _ in range(repeat):
            status, ms, size = clients[ep.role].get(ep.path)
            statuses.add(status)
            timings.append(ms)
        row = {"endpoint": ep.name, "role": ep.role, "path": ep.path, "first_ms": round(timings[0], 2),
               "p50_ms": round(median(timings), 2), "max_ms": round(max(timings), 2),
               "over": sum(ms >= TARGET_MS for ms in timings), "kb": round(size / 1024, 1),
               "statuses": sorted(statuses)}
        log(json.dumps(row))
        rows.append(row)
    for client in clients.values():
        client.close()
    return rows


# -- the dashboard tabs during a load run ------------------------------------------------------------


class Tab(threading.Thread):
    """One open dashboard tab, after `delay` seconds. `refresh` mode: its whole refresh set (TABS) every
    `interval` seconds, at once again when late. `timers` mode: the whole set once (the page opening), then
    what the page's own timers fetch (TIMERS), at their intervals."""

    def __init__(self, base: str, role: str, secret: str, mode: str, interval: float, delay: float = 0.0) -> None:
        super().__init__(daemon=True)
        self.base, self.role, self.secret, self.mode, self.delay = base, role, secret, mode, delay
        self.interval = interval if mode == "refresh" else TIMERS[role][0]
        self.stop_at = threading.Event()
        self.timings: dict[str, list[float]] = {}
        self.failures = 0
        self.failed: list[str] = []  # the first few: path and status, or the error

    def _fail(self, path: str, why: str) -> None:
        self.failures += 1
        if len(self.failed) < 5:
            self.failed.append(f"{path}: {why}")

    def _fetch(self, client: Client, paths: list[str]) -> None:
        for path in paths:
            try:
                status, ms, _ = client.get(path)
            except (OSError, http.client.HTTPException) as error:
                self._fail(path, f"{type(error).__name__}: {error}")
                continue
            if status != 200:
                self._fail(path, str(status))
            self.timings.setdefault(path, []).append(ms)

    def run(self) -> None:
        if self.stop_at.wait(self.delay):
            return
        client = Client(self.base, self.secret)
        tick = time.monotonic()
        paths = TABS[self.role]
        while not self.stop_at.is_set():
            self._fetch(client, paths)
            if self.mode == "timers":
                paths = TIMERS[self.role][1]
            tick = max(tick + self.interval, time.monotonic())
            self.stop_at.wait(tick - time.monotonic())
        client.close()


def open_tabs(base: str, meta: dict, args: argparse.Namespace, seconds: float) -> list[Tab]:
    """--tabs-per-role tabs of each view; in `timers` mode their openings spread evenly over the phase."""
    secrets = secrets_of(meta)
    roles = [role for role in TABS for _ in range(args.tabs_per_role)]
    tabs = [Tab(base, role, secrets[role], args.tabs, args.poll_interval,
                i * seconds / len(roles) if args.tabs == "timers" else 0.0) for i, role in enumerate(roles)]
    for tab in tabs:
        tab.start()
    return tabs


def close_tabs(tabs: list[Tab]) -> dict:
    for tab in tabs:
        tab.stop_at.set()
    for tab in tabs:
        tab.join(timeout=70)
    timings = [ms for tab in tabs for values in tab.timings.values() for ms in values]
    by_path: dict[str, list[float]] = {}
    for tab in tabs:
        for path, values in tab.timings.items():
            by_path.setdefault(path, []).extend(values)
    return {"dash_requests": len(timings), "dash_failures": sum(t.failures for t in tabs),
            "dash_failed": [why for t in tabs for why in t.failed],
            "dash_p50_ms": round(median(timings), 1) if timings else None,
            "dash_max_ms": round(max(timings), 1) if timings else None,
            "dash_by_path": {path: {"n": len(v), "p50_ms": round(median(v), 1), "max_ms": round(max(v), 1)}
                             for path, v in by_path.items()}}


def session_ticks(sid: int) -> int:
    """CPU ticks (user + system) of every process now in session `sid`."""
    total = 0
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            data = Path(f"/proc/{p}/stat").read_text()
        except OSError:
            continue
        fields = data[data.rfind(")") + 2:].split()
        if int(fields[3]) == sid:
            total += int(fields[11]) + int(fields[12])
    return total


def busy_ticks() -> int:
    parts = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return sum(parts[:8]) - parts[3] - parts[4]


def own_ticks() -> float:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return (me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime) * CLK_TCK


def phase(name: str, base: str, key: str | None, body: Path, args: argparse.Namespace, gateway: subprocess.Popen,
          nginx_sid: int, tabs: bool, meta: dict) -> dict:
    """One phase: wrk for --seconds (none when `key` is None), with the dashboard tabs open or not."""
    from gateway_overhead import wait_quiet

    wait_quiet(args.quiet_wait)
    cpu0 = thread_cpu(gateway.pid)
    ng0, busy0, own0, started = session_ticks(nginx_sid), busy_ticks(), own_ticks(), time.monotonic()
    running = open_tabs(base, meta, args, args.seconds) if tabs else []
    if key is not None:
        load = wrk_segment(base, key, args.concurrency, args.seconds, body)
        seconds = load["duration_us"] / 1e6
    else:
        time.sleep(args.seconds)
        load, seconds = None, time.monotonic() - started
    dash = close_tabs(running)
    cpu = {part: value - cpu0[part] for part, value in thread_cpu(gateway.pid).items()}
    gw = sum(cpu.values())
    other = (busy_ticks() - busy0 - session_ticks(nginx_sid) + ng0 - (own_ticks() - own0)) / CLK_TCK - gw
    row = {"phase": name, "tabs": tabs, "load": load is not None, "gw_core_busy": round(gw / seconds, 2),
           "gw_loop_busy": round(cpu["event loop"] / seconds, 2), "gw_threads_busy": round(cpu["other threads"] / seconds, 2),
           "other_cores": round(max(0.0, other) / seconds, 2), **dash}
    if load is not None:
        row.update({"rps": round(load["rps"]), "p50_ms": load["latency_us"]["p50"] / 1000,
                    "p99_ms": load["latency_us"]["p99"] / 1000, "p999_ms": load["latency_us"]["p999"] / 1000,
                    "errors": sum(load["errors"].values()),
                    "gw_cpu_ms_per_req": round(gw * 1000 / max(1, load["requests"]), 3)})
    log(json.dumps({k: v for k, v in row.items() if k != "dash_by_path"}))
    return row


# -- the run -------------------------------------------------------------------------------------------


def cursor_ids(db: Path, meta: dict) -> dict:
    """Record ids deep in the log (a page 20 days back), and a day's range 15 days back."""
    now = time.time()
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        main_deep = conn.execute("SELECT id FROM usage_records WHERE account_id = ? AND created_at < ?"
                                 " ORDER BY created_at DESC LIMIT 1", (meta["main"]["account"], now - 20 * DAY)).fetchone()[0]
        any_deep = conn.execute("SELECT MAX(id) / 3 FROM usage_records").fetchone()[0]
    finally:
        conn.close()
    return {"main_deep": main_deep, "any_deep": any_deep, "day_since": now - 15 * DAY, "day_until": now - 14 * DAY}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db-cache", type=Path, default=Path("/tmp/dashboard-scale-db"))
    parser.add_argument("--run", default=time.strftime("dashboard-scale-%Y%m%d-%H%M%S"))
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--days", type=float, default=29, help="the records span this many days back from now")
    parser.add_argument("--other-share", type=float, default=0.10, help="the share of records of the second account")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--build-only", action="store_true")
    parser.add_argument("--repeat", type=int, default=20, help="calls of each endpoint, one after the other")
    parser.add_argument("--seconds", type=float, default=15, help="seconds of each load phase")
    parser.add_argument("--rounds", type=int, default=4,
                        help="pairs of phases, alone and with the dashboard tabs (which first alternates)")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--tabs", choices=("refresh", "timers"), default="refresh",
                        help="refresh: each tab fetches its whole set every --poll-interval s; timers: each tab opens "
                             "once (openings spread over the phase), then fetches what the page's own timers fetch")
    parser.add_argument("--tabs-per-role", type=int, default=1, help="open tabs of each view (owner, key, operator)")
    parser.add_argument("--poll-interval", type=float, default=1.0, help="refresh mode: seconds between two refreshes")
    parser.add_argument("--quiet-wait", type=float, default=30,
                        help="before each phase, wait up to this long for the machine to be idle (other jobs)")
    parser.add_argument("--port", type=int, default=18800)
    parser.add_argument("--upstream-port", type=int, default=18801)
    args = parser.parse_args()
    if args.build_only:
        meta = build(args.db_cache / "tollgate.db", args.records, args.days, args.other_share, args.seed)
        log(f"built: {meta['records']:,} records ({meta['by_account']}), {meta['hourly_rows']:,} hourly rows, "
            f"{meta['db_mb']} MB, {meta['build_s']} s")
        return
    if not (HARNESS / "fake_upstream.py").exists():
        raise SystemExit(f"no harness at {HARNESS}: cp -r ../shared/bench {HARNESS} && bash {HARNESS}/setup.sh")
    sys.path.insert(0, str(HARNESS))
    import fake_upstream  # the shared harness's nginx fake
    from gateway_overhead import request_body

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # stop the gateway and nginx on the way out
    os.sched_setaffinity(0, {1})  # the driver and its tabs share the load core with wrk and nginx
    workdir = Path("/tmp") / args.run
    meta = prepare_database(args.db_cache, workdir, args)
    ids = cursor_ids(workdir / "tollgate.db", meta)
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
    key = meta["main"]["keys"][0]["secret"]
    try:
        wait_http(base + "/health", gateway)
        log(f"timing {len(endpoints(meta, ids))} endpoints, {args.repeat} calls each")
        before = time_endpoints(base, meta, ids, args.repeat)
        wrk_segment(base, key, args.concurrency, 3, body)  # warm-up, not counted
        phases = []
        for n in range(1, args.rounds + 1):
            # ABBA: the second phase of a pair runs on a warmer, bigger gateway than the first; alternating
            # which goes first keeps that drift out of the with/without comparison.
            for tabs in ((False, True) if n % 2 else (True, False)):
                phases.append(phase(f"{'with tabs' if tabs else 'alone'} #{n}", base, key, body, args, gateway,
                                    upstream.proc.pid, tabs, meta))
        idle_tabs = phase("tabs, no load", base, None, body, args, gateway, upstream.proc.pid, True, meta)
        log("timing the endpoints again, after the load")
        after = time_endpoints(base, meta, ids, args.repeat)
    finally:
        os.killpg(gateway.pid, signal.SIGTERM)
        try:
            gateway.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(gateway.pid, signal.SIGKILL)
            gateway.wait(timeout=30)
        upstream.stop()
    conn = sqlite3.connect(f"file:{workdir / 'tollgate.db'}?mode=ro", uri=True)
    records_after = conn.execute("SELECT COUNT(*) FROM usage_records").fetchone()[0]
    conn.close()
    report(args, meta, before, phases, idle_tabs, after, records_after, workdir)


def report(args: argparse.Namespace, meta: dict, before: list[dict], phases: list[dict], idle_tabs: dict,
           after: list[dict], records_after: int, workdir: Path) -> None:
    lines = [f"run {args.run}: {meta['records']:,} usage records ({meta['by_account']}), {meta['hourly_rows']:,} "
             f"hourly rows, {meta['db_mb']} MB; {args.repeat} calls per endpoint; after the load "
             f"{records_after:,} records",
             f"| endpoint | first ms | p50 ms | max ms | after load: p50 ms | max ms | calls >= {TARGET_MS:g} ms | KB "
             "| status |",
             "|---|---|---|---|---|---|---|---|---|"]
    for b, a in zip(before, after, strict=True):
        lines.append(f"| `{b['endpoint']}` | {b['first_ms']:.1f} | {b['p50_ms']:.1f} | {b['max_ms']:.1f} | "
                     f"{a['p50_ms']:.1f} | {a['max_ms']:.1f} | {b['over'] + a['over']} of {2 * args.repeat} | {b['kb']:g} | "
                     f"{'/'.join(map(str, sorted(set(b['statuses'] + a['statuses']))))} |")
    over = [(r["endpoint"], when) for when, rows in (("before", before), ("after", after)) for r in rows
            if r["max_ms"] >= TARGET_MS or any(s != 200 for s in r["statuses"])]
    lines.append(f"endpoints at or over {TARGET_MS:g} ms (any call) or not 200: "
                 f"{', '.join(f'{n} ({w} the load)' for n, w in over) if over else 'none'}")
    how = (f"each refreshing every {args.poll_interval:g} s" if args.tabs == "refresh" else
           "each opened once (spread over the phase), then the page's own timers (15 s, 15 s, 5 s)")
    lines += ["",
              f"data plane: c={args.concurrency}, {args.seconds:g} s phases; tabs: {args.tabs_per_role} each of owner, "
              f"key and operator, {how}",
              "| phase | req/s | p50 ms | p99 ms | p99.9 ms | errors | gw core busy (loop + threads) | gw CPU ms/req "
              "| other procs (cores) "
              "| dashboard requests | their p50 / max ms |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for p in phases:
        dash = f"{p['dash_requests']} ({p['dash_failures']} failed)" if p["tabs"] else "-"
        dash_ms = f"{p['dash_p50_ms']} / {p['dash_max_ms']}" if p["tabs"] else "-"
        lines.append(f"| {p['phase']} | {p['rps']:,} | {p['p50_ms']:.2f} | {p['p99_ms']:.2f} | {p['p999_ms']:.2f} | "
                     f"{p['errors']} | {p['gw_core_busy']:.2f} ({p['gw_loop_busy']:.2f} + {p['gw_threads_busy']:.2f}) | "
                     f"{p['gw_cpu_ms_per_req']:.3f} | {p['other_cores']:.2f} | "
                     f"{dash} | {dash_ms} |")
    lines.append(f"the tabs with no load, {args.seconds:g} s: {idle_tabs['dash_requests']} requests, the gateway's "
                 f"core {idle_tabs['gw_core_busy']:.0%} busy (event loop {idle_tabs['gw_loop_busy']:.0%}, other threads "
                 f"{idle_tabs['gw_threads_busy']:.0%}), their p50 / max {idle_tabs['dash_p50_ms']} / "
                 f"{idle_tabs['dash_max_ms']} ms")
    alone = [p for p in phases if not p["tabs"]]
    tabs = [p for p in phases if p["tabs"]]
    p99_alone, p99_tabs = median(p["p99_ms"] for p in alone), median(p["p99_ms"] for p in tabs)
    rps_alone, rps_tabs = median(p["rps"] for p in alone), median(p["rps"] for p in tabs)
    pairs = [round(t["p99_ms"] / a["p99_ms"], 2) for a, t in zip(alone, tabs, strict=True)]
    spread = max(p["p99_ms"] for p in alone) / min(p["p99_ms"] for p in alone)
    lines.append(f"p99 median: alone {p99_alone:.2f} ms, with tabs {p99_tabs:.2f} ms (ratio {p99_tabs / p99_alone:.2f};"
                 f" per pair {pairs}); alone-vs-alone spread (max/min) {spread:.2f}; req/s median: alone "
                 f"{rps_alone:,.0f}, with tabs {rps_tabs:,.0f} (ratio {rps_tabs / rps_alone:.2f})")
    text = "\n".join(lines)
    print(text)
    (workdir / "results.json").write_text(json.dumps({"meta": {k: v for k, v in meta.items()
                                                               if k not in ("main", "other")},
                                                      "before": before, "phases": phases, "idle_tabs": idle_tabs, "after": after,
                                                      "records_after": records_after}, indent=1))
    (workdir / "results.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
