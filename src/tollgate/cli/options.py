"""Options and argument types that several commands share, declared once so they cannot drift apart.

`--config` means the same file to every command that opens the database, and `--json` is the
one switch between a table for people and JSON for scripts; a command that prints something
more particular as JSON says so in its own `help`.
"""

from __future__ import annotations

import argparse

CONFIG_HELP = "TOML config file (default: $TOLLGATE_CONFIG, else built-in defaults)"
JSON_HELP = "print JSON for scripts"


def add_config(parser: argparse.ArgumentParser) -> None:
    """`--config/-c PATH`, read with `tollgate.config.load_config(args.config)`."""
    parser.add_argument("--config", "-c", help=CONFIG_HELP)


def add_json(parser: argparse.ArgumentParser, help: str = JSON_HELP) -> None:
    """`--json`: the command prints JSON instead of text for people."""
    parser.add_argument("--json", action="store_true", help=help)


def _integer(text: str) -> int:
    try:
        return int(text.replace("_", "").replace(",", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def whole_number(text: str) -> int:
    """A count as people type it (`70000`, `70_000`, `70,000`); never negative."""
    value = _integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} cannot be negative")
    return value


def positive(text: str) -> int:
    """A whole number above zero (steps, milliseconds, tokens, days)."""
    value = _integer(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be above zero")
    return value


def usage_when_bare(parser: argparse.ArgumentParser) -> None:
    """`tollgate GROUP` without a subcommand prints the group's help and exits 2, like a wrong call."""
    def usage(_args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    parser.set_defaults(func=usage)
