"""`tollgate serve`: run the gateway."""

from __future__ import annotations

import argparse
import sys

from tollgate.config import ConfigError, load_config


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="run the gateway",
        description="Run the gateway. With no config it serves the bundled local models on SQLite under ./.tollgate/.",
    )
    p.add_argument("--config", "-c", help="TOML config file (default: $TOLLGATE_CONFIG, else built-in defaults)")
    p.add_argument("--host", help="listen address (overrides server.host and $TOLLGATE_HOST)")
    p.add_argument("--port", type=int, help="listen port (overrides server.port and $TOLLGATE_PORT)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from tollgate.server.run import serve

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"tollgate: bad config: {exc}", file=sys.stderr)
        return 2
    if args.host or args.port is not None:
        server = replace(config.server, host=args.host or config.server.host,
                         port=args.port if args.port is not None else config.server.port)
        config = replace(config, server=server)
    return serve(config)
