"""`tollgate serve`: run the gateway."""

from __future__ import annotations

import argparse

from tollgate.cli.configured import read_config
from tollgate.cli.options import add_config


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="run the gateway",
        description="Run the gateway. With no config it serves the bundled local models on SQLite under ./.tollgate/.",
    )
    add_config(p)
    p.add_argument("--host", help="listen address (overrides server.host and $TOLLGATE_HOST)")
    p.add_argument("--port", type=int, help="listen port (overrides server.port and $TOLLGATE_PORT)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from tollgate.serve.run import serve

    config = read_config(args.config)
    if config is None:
        return 2
    if args.host or args.port is not None:
        server = replace(config.server, host=args.host or config.server.host,
                         port=args.port if args.port is not None else config.server.port)
        config = replace(config, server=server)
    return serve(config)
