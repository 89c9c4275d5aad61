"""Entry point: `tollgate <command> ...`. Each command module registers its own sub-parsers."""

from __future__ import annotations

import argparse
import importlib
import sys

from tollgate.version import __version__

# Each module has `register(subparsers)`; its parsers set `func(args) -> int`.
COMMAND_MODULES = (
    "tollgate.cli.serve",
    "tollgate.cli.operator",
    "tollgate.cli.cost",
    "tollgate.cli.models",
    "tollgate.cli.agent",
    "tollgate.cli.router",
    "tollgate.cli.usage",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tollgate",
        description="tollgate: an OpenAI- and Anthropic-compatible LLM gateway with hard dollar budgets per key.",
    )
    parser.add_argument("--version", action="version", version=f"tollgate {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        return int(func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
