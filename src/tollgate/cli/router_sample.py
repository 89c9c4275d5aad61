"""`tollgate router sample N`: routed requests from the usage records, for a person to label.

Only requests routed while `server.store_request_text = true` carry their text
(an operator opt-in, since it stores what users sent). Each line is
`{"request": {...}, "label": null, "routed": "<category>", "model": "<model>"}`:
fill in `label` and `tollgate router eval FILE` measures the router on your
own traffic.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

from tollgate.cli.options import add_config


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sample",
        help="export a random sample of routed requests for labelling (needs server.store_request_text)",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("count", type=int, metavar="N", help="how many requests")
    p.add_argument("--days", type=int, default=7, help="from the last N days (default 7)")
    p.add_argument("--out", "-o", help="write here instead of standard output")
    add_config(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tollgate.cli.configured import configured_store, read_config

    if args.count < 1:
        print("tollgate: N must be at least 1", file=sys.stderr)
        return 2
    config = read_config(args.config)
    if config is None:
        return 2

    async def fetch() -> list[tuple[str, str, str]]:
        async with configured_store(config) as store:
            return await store.routed_samples(args.count, time.time() - args.days * 86400)

    rows = asyncio.run(fetch())
    lines = [json.dumps({"request": json.loads(text), "label": None, "routed": route, "model": model})
             for text, route, model in rows]
    if not lines:
        print("tollgate: no routed requests with text; set server.store_request_text = true and route some traffic",
              file=sys.stderr)
    output = "\n".join(lines) + ("\n" if lines else "")
    if args.out:
        with open(args.out, "w", encoding="utf-8") as handle:
            handle.write(output)
        print(f"wrote {len(lines)} requests to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(output)
    return 0
