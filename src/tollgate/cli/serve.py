"""`tollgate serve`: run the gateway."""

from __future__ import annotations

import argparse

from tollgate.cli.configured import read_config
from tollgate.cli.options import add_config


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="run the gateway",
        description="Run the gateway. With no config it serves the bundled local models on SQLite under ./.tollgate/. "
                    "More than one worker needs PostgreSQL and Redis (docs/deploy.md).",
    )
    add_config(p)
    p.add_argument("--host", help="listen address (overrides server.host and $TOLLGATE_HOST)")
    p.add_argument("--port", type=int, help="listen port (overrides server.port and $TOLLGATE_PORT)")
    p.add_argument("--workers", type=_workers, metavar="N",
                   help="processes serving the port (overrides server.workers and $TOLLGATE_WORKERS); more than "
                        "one needs database = postgresql://... and redis = redis://...")
    p.set_defaults(func=run)


def _workers(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of processes, got {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {n}")
    return n


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from tollgate.serve.run import serve

    config = read_config(args.config)
    if config is None:
        return 2
    server = config.server
    if args.host:
        server = replace(server, host=args.host)
    if args.port is not None:
        server = replace(server, port=args.port)
    if args.workers is not None:
        server = replace(server, workers=args.workers)
    return serve(replace(config, server=server), workers_source=None if args.workers is None
                 else f"--workers {args.workers}")
