"""The scaled configuration: `[database]`, `[redis]`, and the rule that ties workers, database and Redis together.

One process on SQLite is the embedded default. More than one process needs a database every process
can reach (PostgreSQL) and budget counters every process shares (Redis): a second process with its
own counters would let a key spend its budget once per process. Redis alone is not enough either,
since its counters are rebuilt from the shared database after Redis loses them.
"""

from __future__ import annotations

from tollgate.config.reader import ConfigError, Table
from tollgate.config.schema import DatabaseConfig, RedisConfig, ServerConfig
from tollgate.domain.secrets import redacted_url

DEPLOY_GUIDE = "docs/deploy.md"
POSTGRES_SCHEMES = ("postgresql://", "postgres://")
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def is_postgres(url: str) -> bool:
    return url.startswith(POSTGRES_SCHEMES)


def check_database_url(url: str, where: str) -> None:
    if not url.startswith(("sqlite:///", *POSTGRES_SCHEMES)):
        raise ConfigError(f"{where}: expected sqlite:///PATH or postgresql://USER:PASSWORD@HOST:PORT/DB, "
                          f"got {redacted_url(url)!r}")


def check_redis_url(url: str, where: str) -> None:
    if not url.startswith(REDIS_SCHEMES):
        raise ConfigError(f"{where}: expected redis://HOST:PORT/DB (or rediss://, unix://), got {redacted_url(url)!r}")


def scale_problem(server: ServerConfig, workers_source: str = "server.workers") -> str | None:
    """Why this combination of workers, database and Redis cannot hold budgets exactly, or None.

    `workers_source` names where the worker count came from (`server.workers = 2`, `--workers 2`), so that
    the message points at what the operator typed.
    """
    postgres, redis, workers = is_postgres(server.database), server.redis is not None, server.workers
    if workers > 1 and not (postgres and redis):
        missing = " and ".join(what for what, present in (
            ('database = "postgresql://..."', postgres), ('redis = "redis://..."', redis)) if not present)
        why = ("the embedded SQLite store is one process's file" if not postgres else
               "without Redis the budget counters live in one process (the embedded ledger)")
        return (f"{workers_source} needs {missing} in [server] ({DEPLOY_GUIDE}): {why}, so each worker would "
                "spend a key's budget on its own; or run one worker")
    if redis and not postgres:
        return (f'server.redis needs database = "postgresql://..." in [server] ({DEPLOY_GUIDE}): the Redis budget '
                "counters are rebuilt from the shared database when Redis loses them, and SQLite is one "
                "machine's file")
    return None


def database(t: Table) -> DatabaseConfig:
    """`[database]`: the PostgreSQL connection pool of each process, and how long the request path waits for it."""
    d = DatabaseConfig()
    database = DatabaseConfig(
        pool_max=t.int("pool_max", d.pool_max, minimum=1),
        request_timeout=t.number("request_timeout", d.request_timeout, minimum=0.05),
    )
    t.done()
    return database


def redis(t: Table) -> RedisConfig:
    """`[redis]`: the shared budget ledger's holds, their renewal, and the client's bounds."""
    d = RedisConfig()
    redis = RedisConfig(
        hold_seconds=t.number("hold_seconds", d.hold_seconds, minimum=1.0),
        renew_every=t.number("renew_every", d.renew_every, minimum=0.1),
        socket_timeout=t.number("socket_timeout", d.socket_timeout, minimum=0.05),
        retry_after=t.number("retry_after", d.retry_after, minimum=1.0),
        pool_max=t.int("pool_max", d.pool_max, minimum=1),
        prefix=t.str("prefix", d.prefix),
    )
    t.done()
    if redis.renew_every * 2 > redis.hold_seconds:
        raise ConfigError(f"redis.renew_every: {redis.renew_every:g}s must be at most half of redis.hold_seconds "
                          f"({redis.hold_seconds:g}s), so that one late renewal does not lose a live request's hold")
    return redis
