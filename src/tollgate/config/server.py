"""`[server]`: where the gateway listens, what it serves from, and the environment variables over them.

The environment wins over the file (a container or a systemd unit sets TOLLGATE_DATABASE without
editing it); the operator token is checked for strength wherever it came from, and the combination
of workers, database and Redis is checked last (config/scale.py), on the values that will run.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace

from tollgate.config import scale, sections
from tollgate.config.reader import ConfigError, Table
from tollgate.config.schema import ServerConfig
from tollgate.domain.secrets import MAKE_TOKEN, operator_token_problem

CORS_ORIGIN = re.compile(r"^https?://[^/\s?#]+$")
# The old name of `redis` (before PostgreSQL and Redis arrived): "embedded", or the Redis URL.
OLD_BUDGET_STORE = "budget_store"


def server(t: Table, env: Mapping[str, str]) -> ServerConfig:
    d = ServerConfig()
    redis = t.str("redis", None)
    old = t.str(OLD_BUDGET_STORE, None)
    if old is not None and old != "embedded":
        if redis is not None:
            raise ConfigError("server.budget_store: the old name of server.redis; write only server.redis")
        redis = old
    server = ServerConfig(
        host=t.str("host", d.host),
        port=t.int("port", d.port, minimum=0),
        database=t.str("database", d.database),
        redis=redis,
        workers=t.int("workers", d.workers, minimum=1),
        max_body_bytes=t.int("max_body_bytes", d.max_body_bytes, minimum=1024),
        reservation_ttl=t.int("reservation_ttl", d.reservation_ttl, minimum=1),
        admission_wait=t.number("admission_wait", d.admission_wait),
        store_request_text=t.bool("store_request_text", d.store_request_text),
        admin_token=t.str("admin_token", None),
        limits=sections.limits(t.table("limits")),
        key_cache=t.int("key_cache", d.key_cache, minimum=1),
        legacy_field_names=t.bool("legacy_field_names", d.legacy_field_names),
        cors_origins=_cors_origins(t),
    )
    if t.str("http", None) is not None:
        raise ConfigError("server.http: the built-in HTTP server was removed (uvicorn, with the limits of "
                          "[server.limits], serves every gateway now): delete this key")
    t.done()
    server = replace(server, **_overrides(env))
    if server.admin_token is not None:
        _check_admin_token(server.admin_token, "TOLLGATE_ADMIN_TOKEN" if env.get("TOLLGATE_ADMIN_TOKEN")
                           else "server.admin_token")
    scale.check_database_url(server.database, "TOLLGATE_DATABASE" if env.get("TOLLGATE_DATABASE")
                             else "server.database")
    if server.redis is not None:
        scale.check_redis_url(server.redis, "TOLLGATE_REDIS" if env.get("TOLLGATE_REDIS") else "server.redis")
    if not (0 <= server.port <= 65535):
        raise ConfigError(f"server.port: {server.port} is not a port number")
    workers = f"TOLLGATE_WORKERS={server.workers}" if env.get("TOLLGATE_WORKERS") else f"server.workers = {server.workers}"
    problem = scale.scale_problem(server, workers)
    if problem is not None:
        raise ConfigError(problem)
    return server


def _overrides(env: Mapping[str, str]) -> dict:
    """The [server] values the environment sets: TOLLGATE_HOST, _PORT, _DATABASE, _REDIS, _WORKERS, _ADMIN_TOKEN."""
    overrides: dict = {}
    if env.get("TOLLGATE_HOST"):
        overrides["host"] = env["TOLLGATE_HOST"]
    for name, key in (("TOLLGATE_PORT", "port"), ("TOLLGATE_WORKERS", "workers")):
        if env.get(name):
            try:
                overrides[key] = int(env[name])
            except ValueError:
                raise ConfigError(f"{name}: expected a whole number, got {env[name]!r}") from None
    if overrides.get("workers", 1) < 1:
        raise ConfigError(f"TOLLGATE_WORKERS: must be at least 1, got {overrides['workers']}")
    if env.get("TOLLGATE_DATABASE"):
        overrides["database"] = env["TOLLGATE_DATABASE"]
    old = env.get("TOLLGATE_BUDGET_STORE")  # the old name of TOLLGATE_REDIS
    if old and old != "embedded":
        overrides["redis"] = old
    if env.get("TOLLGATE_REDIS"):
        overrides["redis"] = env["TOLLGATE_REDIS"]
    if env.get("TOLLGATE_ADMIN_TOKEN"):
        overrides["admin_token"] = env["TOLLGATE_ADMIN_TOKEN"]
    return overrides


def _cors_origins(t: Table) -> tuple[str, ...]:
    """`server.cors_origins`: exact origins (scheme://host[:port], no path) or "*"."""
    origins = t.str_list("cors_origins", ())
    for origin in origins:
        if origin != "*" and not CORS_ORIGIN.match(origin):
            raise ConfigError(f"{t.key('cors_origins')}: {origin!r} is not an origin; write it as "
                              "\"https://app.example.com\" (scheme, host, optional port, no path or trailing slash) "
                              "or \"*\" for any")
    return origins


def _check_admin_token(token: str, where: str) -> None:
    """A weak operator token stops the start with one line that says how to make a good one."""
    problem = operator_token_problem(token)
    if problem is not None:
        raise ConfigError(f"{where}: the operator token {problem}; make a strong one with: {MAKE_TOKEN}")
