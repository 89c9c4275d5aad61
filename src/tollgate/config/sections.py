"""The operational sections of the config: `[server.limits]`, `[ledger]`, `[alerts]`, `[metrics]`, `[logging]`.

Each reads its table into its frozen value with the defaults of `config/schema.py`, and refuses a
bad value with the key named (`ConfigError`); `config/load.py` reads the rest.
"""

from __future__ import annotations

from pathlib import Path

from tollgate.config.reader import ConfigError, Table
from tollgate.config.schema import AlertsConfig, HTTPLimits, LedgerConfig, LoggingConfig, MetricsConfig

PER_KEY_MAX = 100_000  # `[metrics] per_key_max`: one series per key and pool, at most


def metrics(t: Table) -> MetricsConfig:
    d = MetricsConfig()
    metrics = MetricsConfig(
        per_key=t.bool("per_key", d.per_key),
        per_key_max=t.int("per_key_max", d.per_key_max, minimum=1),
    )
    t.done()
    if metrics.per_key_max > PER_KEY_MAX:
        raise ConfigError(f"metrics.per_key_max: at most {PER_KEY_MAX} keys (one series each), got {metrics.per_key_max}")
    return metrics


def logging(t: Table) -> LoggingConfig:
    """`[logging] requests`: "off", "stderr", "logger" or a file path whose folder exists."""
    requests = t.str("requests", LoggingConfig().requests)
    t.done()
    if requests not in ("off", "stderr", "logger"):
        folder = Path(requests).expanduser().parent
        if not folder.is_dir():
            raise ConfigError(f"logging.requests: {requests!r} is not \"off\", \"stderr\" or \"logger\", and as a "
                              f"file path its folder {str(folder)!r} does not exist")
        requests = str(Path(requests).expanduser())
    return LoggingConfig(requests=requests)


def ledger(t: Table) -> LedgerConfig:
    d = LedgerConfig()
    ledger = LedgerConfig(
        backlog_mb=t.int("backlog_mb", d.backlog_mb, minimum=1),
        backlog_seconds=t.number("backlog_seconds", d.backlog_seconds, minimum=0.001),
        backlog_wait=t.number("backlog_wait", d.backlog_wait),
        usage_retention_days=t.number("usage_retention_days", d.usage_retention_days),
        prune_batch=t.int("prune_batch", d.prune_batch, minimum=1),
        prune_every=t.number("prune_every", d.prune_every, minimum=1.0),
        journal_dir=_folder(t, "journal_dir"),
    )
    t.done()
    return ledger


def _folder(t: Table, name: str) -> str | None:
    """A directory path (`~` expanded); it need not exist yet (the store creates it, 0700)."""
    value = t.str(name, None)
    return None if value is None else str(Path(value).expanduser())


def limits(t: Table) -> HTTPLimits:
    d = HTTPLimits()
    limits = HTTPLimits(
        max_url_bytes=t.int("max_url_bytes", d.max_url_bytes, minimum=256),
        max_header_bytes=t.int("max_header_bytes", d.max_header_bytes, minimum=1024),
        max_headers=t.int("max_headers", d.max_headers, minimum=8),
        header_timeout=t.number("header_timeout", d.header_timeout, minimum=0.01),
        body_timeout=t.number("body_timeout", d.body_timeout, minimum=0.01),
        keepalive_timeout=t.number("keepalive_timeout", d.keepalive_timeout, minimum=0.01),
        write_timeout=t.number("write_timeout", d.write_timeout, minimum=0.01),
        max_connections=t.int("max_connections", d.max_connections, minimum=1),
    )
    t.done()
    return limits


def alerts(t: Table) -> AlertsConfig:
    """`[alerts]`: account webhooks (docs/alerts.md); every time in seconds."""
    d = AlertsConfig()
    alerts = AlertsConfig(
        enabled=t.bool("enabled", d.enabled),
        sweep_interval=t.number("sweep_interval", d.sweep_interval, minimum=0.05),
        timeout=t.number("timeout", d.timeout, minimum=0.1),
        retry_base=t.number("retry_base", d.retry_base, minimum=0.05),
        retry_max_delay=t.number("retry_max_delay", d.retry_max_delay, minimum=0.05),
        max_age=t.number("max_age", d.max_age, minimum=1.0),
        max_concurrency=t.int("max_concurrency", d.max_concurrency, minimum=1),
        allow_private=t.bool("allow_private", d.allow_private),
    )
    t.done()
    if alerts.retry_max_delay < alerts.retry_base:
        raise ConfigError(f"alerts.retry_max_delay: {alerts.retry_max_delay:g}s is shorter than alerts.retry_base "
                          f"({alerts.retry_base:g}s)")
    return alerts
