#!/usr/bin/env python3
"""Ratios from a gateway-overhead run: tollgate against direct and against LiteLLM, measured together.

    python3 bench/summarize.py /tmp/bench/results/RUN.json [more runs...] [--gateway tollgate]

Reads the shared harness's results JSON (see ../shared/bench/README.md) and prints, per mode and
concurrency: requests/s, p50/p99 and their excess over direct, CPU ms per request; then tollgate's
requests/s as a multiple of each LiteLLM set-up's, and the verdict on the targets:

  * throughput (one gateway core) >= 40x LiteLLM with a database and a budgeted key, json and stream;
  * added p50 latency at concurrency 1 <= 0.5 ms over direct, json and stream;
  * where the run has `tollgate-scaled` (one worker on PostgreSQL + Redis, bench/scaled_services.sh):
    the same throughput target for it, and the gateway process's CPU per request at most twice the
    embedded tollgate's at the same mode and concurrency (its process tree with PostgreSQL and Redis,
    which a deployment runs on other machines, is shown beside it).

Throughput per mode is the best requests/s over the concurrencies measured (a saturated core).
With several runs, each row is taken from the run where that target did best (for direct and the
gateways alike), as `compare.py --best` does; disturbed rows are marked `!`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

TARGET_RATIO = 40.0
TARGET_ADDED_P50_MS = 0.5
LITELLM_DB = "litellm-db-vkey"
LITELLM_NODB = "litellm-nodb"
SCALED = "tollgate-scaled"
TARGET_SCALED_CPU = 2.0


def disturbed(row: dict) -> bool:
    """Rows the harness saw sharing the CPUs with other work (its own thresholds)."""
    return (row.get("unaccounted_cores") or 0) > 0.15 or (row.get("other_procs_cores") or 0) > 0.05


def load(paths: list[str]) -> dict[tuple[str, str, int], dict]:
    """(target, mode, concurrency) -> the row; with several runs, the one with the most req/s."""
    best: dict[tuple[str, str, int], dict] = {}
    for path in paths:
        data = json.loads(Path(path).read_text())
        for row in data["results"]:
            key = (row["target"], row["mode"], row["concurrency"])
            row = dict(row, run=data["run"])
            if key not in best or row["rps"] > best[key]["rps"]:
                best[key] = row
    return best


def fmt(value: float | None, width: int, digits: int = 2) -> str:
    return f"{value:>{width}.{digits}f}" if isinstance(value, (int, float)) else f"{'-':>{width}}"


def table(rows: dict, targets: list[str], modes: list[str], concs: list[int]) -> list[str]:
    header = (f"{'target':<18} {'mode':<6} {'c':>3} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'+p50 ms':>8} "
              f"{'+p99 ms':>8} {'cpu ms/req':>10} {'max rps/core':>12}")
    out = [header]
    for mode in modes:
        for target in targets:
            for c in concs:
                r = rows.get((target, mode, c))
                if r is None:
                    continue
                d = rows.get(("direct", mode, c))
                add50 = add99 = None
                if d is not None and target != "direct":
                    add50 = r["latency_ms"]["p50"] - d["latency_ms"]["p50"]
                    add99 = r["latency_ms"]["p99"] - d["latency_ms"]["p99"]
                cpu = r.get("gw_cpu_ms_per_req")
                flag = " !" if disturbed(r) else ""
                errors = sum(r["errors"].values())
                out.append(
                    f"{target:<18} {mode:<6} {c:>3} {r['rps']:>9.1f} {fmt(r['latency_ms']['p50'], 8)} "
                    f"{fmt(r['latency_ms']['p99'], 8)} {fmt(add50, 8)} {fmt(add99, 8)} {fmt(cpu, 10, 3)} "
                    f"{fmt(1000 / cpu if cpu else None, 12, 0)}{flag}" + (f"  errors {errors}" if errors else ""))
        out.append("")
    return out


def peak(rows: dict, target: str, mode: str) -> tuple[float, int] | None:
    """(best req/s, at concurrency) for one target and mode."""
    found = [(r["rps"], c) for (t, m, c), r in rows.items() if t == target and m == mode]
    return max(found) if found else None


def ratios(rows: dict, gateway: str, modes: list[str], concs: list[int]) -> list[str]:
    out = [f"{gateway} req/s as a multiple of LiteLLM's (same run, same concurrency):",
           f"{'mode':<6} {'c':>3} {'vs ' + LITELLM_DB:>22} {'vs ' + LITELLM_NODB:>20} {'of direct':>10}"]
    for mode in modes:
        for c in concs:
            ours = rows.get((gateway, mode, c))
            if ours is None:
                continue
            cells = []
            for other in (LITELLM_DB, LITELLM_NODB, "direct"):
                r = rows.get((other, mode, c))
                cells.append(ours["rps"] / r["rps"] if r and r["rps"] else None)
            out.append(f"{mode:<6} {c:>3} {fmt(cells[0], 21, 1)}x {fmt(cells[1], 19, 1)}x {fmt(cells[2], 9, 3)}")
    return out


def verdict(rows: dict, gateway: str, modes: list[str]) -> list[str]:
    out = ["targets:"]
    for mode in modes:
        ours, theirs = peak(rows, gateway, mode), peak(rows, LITELLM_DB, mode)
        if ours and theirs and theirs[0]:
            ratio = ours[0] / theirs[0]
            ok = "MET" if ratio >= TARGET_RATIO else "NOT MET"
            out.append(f"  throughput {mode:<6}: {ours[0]:8.1f} req/s (c={ours[1]}) vs {LITELLM_DB} {theirs[0]:.1f} "
                       f"(c={theirs[1]}) = {ratio:6.1f}x  (target >= {TARGET_RATIO:.0f}x) {ok}")
        else:
            out.append(f"  throughput {mode:<6}: missing rows for {gateway} or {LITELLM_DB}")
    for mode in modes:
        r, d = rows.get((gateway, mode, 1)), rows.get(("direct", mode, 1))
        if r and d:
            added = r["latency_ms"]["p50"] - d["latency_ms"]["p50"]
            ok = "MET" if added <= TARGET_ADDED_P50_MS else "NOT MET"
            out.append(f"  added p50 at c=1 {mode:<6}: {added:.3f} ms over direct ({d['latency_ms']['p50']:.3f} -> "
                       f"{r['latency_ms']['p50']:.3f} ms)  (target <= {TARGET_ADDED_P50_MS} ms) {ok}"
                       + ("  [row disturbed]" if disturbed(r) or disturbed(d) else ""))
    return out


def own_cpu_ms(row: dict) -> float | None:
    """CPU ms per request of the gateway's own process (`python`), without helpers such as its database."""
    requests = row.get("rps", 0) * (row.get("duration_s") or 0)
    own = (row.get("gw_cpu_s") or {}).get("python")
    return 1000 * own / requests if own is not None and requests else None


def scaled_cpu(rows: dict, gateway: str, modes: list[str], concs: list[int]) -> list[str]:
    """The scaled configuration's CPU per request against the embedded one's, row by row: the gateway process
    alone (the target), and its process tree with PostgreSQL and Redis (which a deployment runs elsewhere)."""
    out = [f"{SCALED} CPU per request as a multiple of {gateway}'s (target <= {TARGET_SCALED_CPU:.0f}x for the gateway):",
           f"  {'mode':<6} {'c':<5} {'gateway process':>24} {'process tree (+PostgreSQL, Redis)':>36}"]
    worst = worst_tree = 0.0
    for mode in modes:
        for c in concs:
            ours, base = rows.get((SCALED, mode, c)), rows.get((gateway, mode, c))
            if not ours or not base:
                continue
            a, b = own_cpu_ms(ours), own_cpu_ms(base)
            ta, tb = ours.get("gw_cpu_ms_per_req"), base.get("gw_cpu_ms_per_req")
            if a and b and ta and tb:
                worst, worst_tree = max(worst, a / b), max(worst_tree, ta / tb)
                out.append(f"  {mode:<6} c={c:<3} {a:.3f} vs {b:.3f} ms = {a / b:.2f}x"
                           f"      {ta:.3f} vs {tb:.3f} ms = {ta / tb:.2f}x")
    out.append(f"  worst: gateway process {worst:.2f}x {'MET' if 0 < worst <= TARGET_SCALED_CPU else 'NOT MET'}; "
               f"process tree {worst_tree:.2f}x")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", nargs="+", help="results JSON of gateway_overhead.py runs")
    ap.add_argument("--gateway", default="tollgate", help="the gateway to judge (default tollgate)")
    a = ap.parse_args()
    rows = load(a.results)
    if not rows:
        print("no results", file=sys.stderr)
        return 1
    targets = [t for t in ("direct", a.gateway, LITELLM_NODB, LITELLM_DB) if any(k[0] == t for k in rows)]
    targets += sorted({k[0] for k in rows} - set(targets))
    modes = [m for m in ("json", "stream") if any(k[1] == m for k in rows)]
    concs = sorted({k[2] for k in rows})
    lines = table(rows, targets, modes, concs)
    lines += ratios(rows, a.gateway, modes, concs) + [""] + verdict(rows, a.gateway, modes)
    if a.gateway != SCALED and any(k[0] == SCALED for k in rows):
        lines += [""] + ratios(rows, SCALED, modes, concs) + [""] + verdict(rows, SCALED, modes)
        lines += [""] + scaled_cpu(rows, a.gateway, modes, concs)
    lines += ["", "+p50/+p99: minus direct at the same mode and concurrency. cpu ms/req: the gateway's process",
              "tree (helpers such as PostgreSQL included); max rps/core = 1000 / that. '!': a row the harness",
              "saw sharing the CPUs with other work (unaccounted > 0.15 core or other processes > 0.05 core)."]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
