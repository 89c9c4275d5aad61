"""Opening the store and bringing it in line with the config: shared by the server and the CLI."""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass, replace
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from tollgate.config.scale import is_postgres
from tollgate.config.schema import Config
from tollgate.domain.secrets import ADMIN_PREFIX, hash_operator_token, is_legacy_token_hash
from tollgate.ledger.journal import BacklogLimit
from tollgate.store import Store, open_store

log = logging.getLogger("tollgate.serve")

# The operator token's salted scrypt hash (domain/secrets.py). Older versions kept its unsalted
# SHA-256 under LEGACY_ADMIN_HASH_KEY: it still works, once, and that check replaces it (AdminAuth).
ADMIN_HASH_KEY = "admin_token_scrypt"
LEGACY_ADMIN_HASH_KEY = "admin_token_sha256"


async def open_configured_store(config: Config, plans: bool = True) -> Store:
    """The store, migrated, with the config's plans written in (config wins for its own slugs).

    `plans=False` for the workers of `--workers N`: `prepare` wrote them once, and each write would
    move the change log that every process's key cache follows.
    """
    ledger = config.ledger
    backlog = BacklogLimit(ledger.backlog_mb << 20, ledger.backlog_seconds)
    if is_postgres(config.server.database):
        # Each process of a PostgreSQL store journals its ledger writes in its own slot under journal_dir.
        store = open_store(postgres_url(config), backlog, journal_dir=config.ledger.journal_dir)
    else:
        store = open_store(config.server.database, backlog)
    await store.open()
    if plans:
        for plan in config.plans:
            await store.upsert_plan(replace(plan, source="config"))
    return store


async def prepare(config: Config) -> OperatorToken:
    """What must happen once before `--workers N` start: migrations, the config's plans, the operator token.

    Run in the supervisor, which then closes the store (no pool or lock crosses the fork); the workers
    get the token's hash from here instead of each hashing (scrypt) and writing it again.
    """
    store = await open_configured_store(config)
    try:
        return await operator_token(store, config.server.admin_token)
    finally:
        await store.close()


def postgres_url(config: Config) -> str:
    """The database URL with `[database]`'s settings in its query, where the PostgreSQL store reads them
    (over the same names the operator may have written in the URL itself)."""
    ours = {"pool_max": config.database.pool_max, "request_timeout": config.database.request_timeout}
    parts = urlsplit(config.server.database)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if ours.get(k) is None]
    query += [(k, str(v)) for k, v in ours.items() if v is not None]
    return urlunsplit(parts._replace(query=urlencode(query)))


@dataclass(frozen=True)
class OperatorToken:
    """The stored hash of the operator token, and the token itself where this process knows it."""

    stored: str
    known: str | None = None  # the configured or just generated token
    shown_once: bool = False  # just generated: print it once


async def save_admin_hash(store: Store, stored: str) -> None:
    """Store the operator token's scrypt hash, and forget any legacy SHA-256 of it."""
    await store.set_meta(ADMIN_HASH_KEY, stored)
    if await store.get_meta(LEGACY_ADMIN_HASH_KEY):
        await store.set_meta(LEGACY_ADMIN_HASH_KEY, "")


async def operator_token(store: Store, configured: str | None, rotate: bool = False) -> OperatorToken:
    """The operator token: the configured one (config.load refused it if weak), the stored one, or a new one."""
    if not configured and not rotate:
        stored = await store.get_meta(ADMIN_HASH_KEY) or await store.get_meta(LEGACY_ADMIN_HASH_KEY)
        if stored:
            if is_legacy_token_hash(stored):
                log.warning("the operator token is stored as an unsalted SHA-256 (an older tollgate): its next "
                            "successful use stores a salted scrypt hash instead; or run `tollgate admin-token --rotate`")
            return OperatorToken(stored)
    token = configured or ADMIN_PREFIX + secrets.token_urlsafe(32)
    stored = await asyncio.to_thread(hash_operator_token, token)
    await save_admin_hash(store, stored)
    return OperatorToken(stored, token, shown_once=not configured)


async def admin_token(store: Store, configured: str | None, rotate: bool = False) -> tuple[str, str | None]:
    """(stored hash of the operator token, the token itself if it was just generated and must be shown once)."""
    token = await operator_token(store, configured, rotate)
    return token.stored, token.known if token.shown_once else None
