"""Latency of the default request classifier, as a ratio to `json.loads` of the same bodies.

    taskset -c 0 .venv/bin/python bench/router_latency.py [--file F.jsonl ...] [--rounds N]

For every request body (the hand-written chat requests shipped with the package, plus the
training data's held-out split when the shared data is present) it times `classify(body)`,
feature extraction included, and `json.loads` of the same body's JSON text, in the same run and
interleaved, so the ratio is comparable across machines and noisy neighbours. It pins itself to
one core (the first allowed) unless --no-pin is given.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from tollgate.proxy.routing.classifier import RequestClassifier  # noqa: E402
from tollgate.training.evaluate import load_items  # noqa: E402

DATA_DIR = REPO / "src" / "tollgate" / "routing" / "data"
SHARED = REPO.parent / "shared" / "data" / "routing" / "train.jsonl"


def bodies(files: list[Path]) -> list[dict]:
    out: list[dict] = []
    for path in files:
        split = "heldout" if path == SHARED else None
        items, _ = load_items(path, split=split)
        out += [item.body for item in items]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--file", action="append", type=Path, help="JSON lines of requests (repeatable)")
    parser.add_argument("--rounds", type=int, default=5, help="passes over all bodies (default 5)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin to one core")
    args = parser.parse_args()
    if not args.no_pin and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    defaults = [DATA_DIR / f"{name}.jsonl" for name in ("handwritten", "handwritten_long", "dev_chat")] + [SHARED]
    files = args.file or [p for p in defaults if p.exists()]

    t0 = time.perf_counter()
    clf = RequestClassifier.load()
    load_s = time.perf_counter() - t0
    reqs = bodies(files)
    texts = [json.dumps(b) for b in reqs]
    for b in reqs[:200]:  # warm-up
        clf.classify(b)

    cls_ns, json_ns = [], []
    for _ in range(args.rounds):
        for text in texts:
            t = time.perf_counter_ns()
            body = json.loads(text)
            t1 = time.perf_counter_ns()
            clf.classify(body)
            t2 = time.perf_counter_ns()
            json_ns.append(t1 - t)
            cls_ns.append(t2 - t1)
    c, j = np.array(cls_ns) / 1000.0, np.array(json_ns) / 1000.0
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    print(f"requests: {len(reqs)} x {args.rounds} rounds from {', '.join(p.name for p in files)}; cpus {cpus}")
    print(f"model load: {load_s * 1000:.0f} ms")
    print(f"{'':<22}{'p50 µs':>10}{'p90 µs':>10}{'p99 µs':>10}")
    for name, xs in (("classify", c), ("json.loads (baseline)", j)):
        print(f"{name:<22}" + "".join(f"{np.percentile(xs, q):>10.1f}" for q in (50, 90, 99)))
    print(f"{'ratio classify/json':<22}" + "".join(f"{np.percentile(c, q) / np.percentile(j, q):>10.1f}" for q in (50, 90, 99)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
