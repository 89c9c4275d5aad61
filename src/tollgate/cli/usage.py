"""`tollgate usage export` and `tollgate usage prune`: raw usage records out to a file, and past retention.

A running gateway prunes raw records older than `[ledger] usage_retention_days` on its own
(tollgate.ledger.retention); a billing archive exports them first, e.g. from a daily cron job:

    tollgate usage export --older-than-days 29 --out /archive/usage-$(date +%F).jsonl

Both work on the database a running gateway serves from (SQLite's WAL lets them read while it
writes); an export is consistent page by page, in record id order, and resumable by `--after-id`.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import sys
import time
from pathlib import Path

import orjson

from tollgate.cli.configured import configured_store, read_config
from tollgate.cli.options import usage_when_bare
from tollgate.domain.windows import DAY
from tollgate.ledger.retention import Retention
from tollgate.store.base import Store

PAGE = 5000


def register(sub: argparse._SubParsersAction) -> None:
    usage = sub.add_parser("usage", help="usage records: export them to a file, prune those past retention",
                           description=__doc__.split("\n\n")[0].split(": ", 1)[1],
                           epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    usage.add_argument("--config", help="config file (default: $TOLLGATE_CONFIG, else the built-in defaults)")
    inner = usage.add_subparsers(dest="usage_command", metavar="SUBCOMMAND")
    usage_when_bare(usage)

    export = inner.add_parser("export", help="write raw usage records as JSON lines (one record per line)",
                              description="Write raw usage records, every field, as JSON lines in record id order. "
                                          "The file is created private to its owner (0600); an existing one is "
                                          "refused unless --append.")
    export.add_argument("--out", required=True, help="the file to write ('-' for standard output)")
    export.add_argument("--older-than-days", type=float, metavar="DAYS",
                        help="only records admitted more than DAYS days ago (default: every record)")
    export.add_argument("--after-id", type=int, default=0, metavar="ID",
                        help="only records after this record id (to resume; each line carries its `id`)")
    export.add_argument("--append", action="store_true", help="append to an existing file")
    export.add_argument("--config", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    export.set_defaults(func=_export)

    prune = inner.add_parser("prune", help="delete raw records past retention now (their hourly aggregates stay)",
                             description="Delete raw usage records admitted more than DAYS days ago (rounded down "
                                         "to the hour), in batches. Reports, budgets and the hourly aggregates "
                                         "stay exact; export the records first if you need them.")
    prune.add_argument("--older-than-days", type=float, required=True, metavar="DAYS")
    prune.add_argument("--config", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    prune.set_defaults(func=_prune)


def _config_path(args: argparse.Namespace) -> str | None:
    return getattr(args, "config", None)


def _export(args: argparse.Namespace) -> int:
    config = read_config(_config_path(args), "tollgate usage export")
    if config is None:
        return 2
    before = time.time() - args.older_than_days * DAY if args.older_than_days is not None else None
    try:
        out = _open(args.out, args.append)
    except FileExistsError:
        print(f"tollgate usage export: {args.out} exists; pass --append to add to it", file=sys.stderr)
        return 2
    try:
        written, last = asyncio.run(_write_all(config, out, before, args.after_id))
    finally:
        if out != sys.stdout.buffer.fileno():
            os.close(out)
    print(f"exported {written} usage records" + (f" (ids up to {last})" if written else ""), file=sys.stderr)
    return 0


def _open(path: str, append: bool) -> int:
    if path == "-":
        return sys.stdout.buffer.fileno()
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_EXCL)
    return os.open(Path(path), flags, 0o600)


async def _write_all(config, out: int, before: float | None, after_id: int) -> tuple[int, int]:
    written = 0
    async with configured_store(config) as store:
        while True:
            page = await store.usage_records_page(after_id, before, PAGE)
            if not page:
                break
            _write(out, b"".join(orjson.dumps({"id": rid, **dataclasses.asdict(record)}) + b"\n"
                                 for rid, record in page))
            written += len(page)
            after_id = page[-1][0]
        if written and out != sys.stdout.buffer.fileno():
            os.fsync(out)
    return written, after_id


def _write(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _prune(args: argparse.Namespace) -> int:
    config = read_config(_config_path(args), "tollgate usage prune")
    if config is None:
        return 2
    if args.older_than_days < 0:
        print("tollgate usage prune: --older-than-days must be 0 or more", file=sys.stderr)
        return 2

    async def run() -> int:
        async with configured_store(config) as store:
            return await _pruner(store, args.older_than_days, config.ledger.prune_batch).prune()

    print(f"pruned {asyncio.run(run())} usage records", file=sys.stderr)
    return 0


def _pruner(store: Store, days: float, batch: int) -> Retention:
    return Retention(store, days * DAY, batch, every=3600.0)
