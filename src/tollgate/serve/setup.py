"""Opening the store and bringing it in line with the config: shared by the server and the CLI."""

from __future__ import annotations

import secrets
from dataclasses import replace

from tollgate.config.schema import Config
from tollgate.domain.secrets import ADMIN_PREFIX, hash_secret
from tollgate.store import Store, open_store

ADMIN_HASH_KEY = "admin_token_sha256"


async def open_configured_store(config: Config) -> Store:
    """The store, migrated, with the config's plans written in (config wins for its own slugs)."""
    store = open_store(config.server.database)
    await store.open()
    for plan in config.plans:
        await store.upsert_plan(replace(plan, source="config"))
    return store


async def admin_token(store: Store, configured: str | None, rotate: bool = False) -> tuple[str, str | None]:
    """(hash of the operator token, the token itself if it was just generated and must be shown once)."""
    if configured:
        digest = hash_secret(configured)
        await store.set_meta(ADMIN_HASH_KEY, digest)
        return digest, None
    stored = await store.get_meta(ADMIN_HASH_KEY)
    if stored and not rotate:
        return stored, None
    token = ADMIN_PREFIX + secrets.token_urlsafe(32)
    digest = hash_secret(token)
    await store.set_meta(ADMIN_HASH_KEY, digest)
    return digest, token
