"""The config and the database a command works on, for every command that takes `--config`.

One place says how a bad config is reported on the terminal, and one place makes sure the
database a command opened is closed again, whether the command succeeded or refused.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from tollgate.config import Config, ConfigError, load_config
from tollgate.serve.setup import open_configured_store
from tollgate.store import Store


def read_config(path: str | None, command: str = "tollgate") -> Config | None:
    """The config at `path` (else $TOLLGATE_CONFIG, else the defaults), or None once the error is printed."""
    try:
        return load_config(path)
    except ConfigError as exc:
        print(f"{command}: bad config: {exc}", file=sys.stderr)
        return None


@asynccontextmanager
async def configured_store(config: Config) -> AsyncIterator[Store]:
    """The database named by `config`, the same one a running gateway uses; closed on the way out."""
    store = await open_configured_store(config)
    try:
        yield store
    finally:
        await store.close()
