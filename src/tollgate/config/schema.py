"""The validated shape of a tollgate configuration. Money is in nano-dollars."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from tollgate.domain.accounts import Plan
from tollgate.domain.pricing import Price, Rates, Tier

CATEGORIES = ("simple", "general", "reasoning", "code", "agent")


@dataclass(frozen=True, slots=True)
class HTTPLimits:
    """What the HTTP server grants one client (`[server.limits]`): every size and wait bounded.

    A request head too large gets 414/431 before it is buffered, one that does not arrive in
    time 408, an idle connection is closed, a reader that does not read is cut off (its
    request settled for what was sent), and connections beyond the cap get 503.
    """

    max_url_bytes: int = 8192  # the request target (path and query): 414 beyond
    max_header_bytes: int = 65536  # the request line and every header together: 431 beyond
    max_headers: int = 100  # header fields in one request: 431 beyond
    header_timeout: float = 10.0  # from a request's first byte to the end of its headers: 408
    body_timeout: float = 60.0  # from the end of the headers to the end of the body: 408
    keepalive_timeout: float = 5.0  # an idle connection between requests is closed after this
    write_timeout: float = 30.0  # an answer the client does not read for this long: the connection is aborted
    max_connections: int = 4096  # open connections; one more gets 503 and is closed


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    # sqlite:///PATH (the embedded default: one process) or postgresql://... (shared by many processes).
    database: str = "sqlite:///.tollgate/tollgate.db"
    # Budget counters, reservations and rate limits: None keeps them in this process (the embedded
    # ledger, one worker); a redis:// URL shares them between every worker and instance (docs/deploy.md).
    redis: str | None = None
    # Processes serving the same port (`tollgate serve --workers N`); more than one needs PostgreSQL and Redis.
    workers: int = 1
    max_body_bytes: int = 8 * 1024 * 1024
    # A reservation left behind by a crash is released after this many seconds.
    reservation_ttl: int = 900
    # How long a request may wait for other requests' reservations to settle
    # before it is refused for budget (refusing earlier would be a phantom refusal).
    admission_wait: float = 30.0
    # Operator opt-in: keep the routed request's text in usage records so that
    # `tollgate router sample` can export it for labelling.
    store_request_text: bool = False
    admin_token: str | None = None
    limits: HTTPLimits = HTTPLimits()
    # Consumption keys whose context (and pools, limits) stay in memory; the least recently
    # used goes beyond this. About 2 KB each: size it above the keys active at once.
    key_cache: int = 200_000
    # For one release (docs/api.md#deprecations): the management and operator APIs also write and read
    # their fields' old snake_case names (with Deprecation and Sunset headers). False: the new names only.
    legacy_field_names: bool = True
    # Web pages (exact origins such as "https://app.example.com", or "*") whose scripts may call the
    # gateway from a browser (CORS, http/cors.py). Empty: no CORS headers at all.
    cors_origins: tuple[str, ...] = ()


@dataclass(frozen=True)
class UpstreamConfig:
    name: str
    base_url: str = ""
    # "openai": any OpenAI-compatible HTTP server. "llama_cpp": the in-process
    # llama.cpp model. "minilm": the in-process embedding model.
    kind: str = "openai"
    api_key_env: str | None = None
    timeout: float = 600.0
    connect_timeout: float = 5.0
    first_byte_timeout: float = 120.0
    # Open connections (idle + busy) to an "openai" upstream; a request finding all busy waits
    # its turn, within connect_timeout, then fails as a timeout (fallback or 504).
    max_connections: int = 256
    # The most bytes one answer may have (head and body, a stream's too); past it the answer
    # fails as a protocol error (502) and is settled like any upstream that broke off.
    max_response_bytes: int = 64 * 1024 * 1024
    # The header that carries the request id (a UUID); "" (`false` in the file) sends none
    # (config/upstream_headers.py).
    request_id_header: str = "X-Request-Id"
    headers: tuple[tuple[str, str], ...] = ()  # extra headers, sent as written
    forward_headers: tuple[str, ...] = ()  # client headers passed through (lower-cased names)
    # Whose token counts are billed: "upstream" (its usage blocks, checked) or "gateway" (counted
    # here, for a server behind an intermediary that estimates what the server left out).
    usage: str = "upstream"
    model_path: str | None = None
    threads: int | None = None
    context: int = 2048


@dataclass(frozen=True)
class ModelConfig:
    id: str
    upstreams: tuple[str, ...]
    upstream_model: str
    input_per_mtok: int
    output_per_mtok: int
    context: int = 8192
    max_output: int = 4096
    capabilities: tuple[str, ...] = ("chat",)
    aliases: tuple[str, ...] = ()
    fallbacks: tuple[str, ...] = ()
    tokenizer: str | None = None
    # Cache hits and cache writes, when the provider prices them apart (None: the input price).
    cached_input_per_mtok: int | None = None
    cache_write_per_mtok: int | None = None
    # Long-context tiers (`[[models.tiers]]`), in ascending `above_tokens`.
    tiers: tuple[Tier, ...] = ()

    @property
    def is_embedding(self) -> bool:
        return "embeddings" in self.capabilities

    @cached_property
    def price(self) -> Price:
        """Every price of the model as one value (built once: every request's reservation and charge read it)."""
        base = Rates(self.input_per_mtok, self.output_per_mtok, self.cached_input_per_mtok, self.cache_write_per_mtok)
        return Price(base, self.tiers)


# A plan in the config file is the same record the store keeps (with source "config").
PlanConfig = Plan


@dataclass(frozen=True)
class RouteProfile:
    """One `[routes.<profile>]` table: per category, the model and its fallbacks."""

    name: str
    table: dict[str, tuple[str, ...]]
    classifier: str = "local"
    judge_model: str | None = None
    # Below this fraction of the key's budget left, step down to `downgrade`.
    downgrade_below: float = 0.0
    downgrade: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class AlertsConfig:
    """`[alerts]`: account webhooks (docs/alerts.md). Times in seconds."""

    enabled: bool = True
    # Subscriptions' expiry is checked (and webhooks changed by another process picked up) this often.
    sweep_interval: float = 60.0
    timeout: float = 10.0  # one delivery attempt: connect, send, the receiver's status line
    retry_base: float = 10.0  # the first retry's delay; each next one doubles, with jitter
    retry_max_delay: float = 3600.0  # no retry waits longer than this
    max_age: float = 86400.0  # an event not delivered by then is given up on (status "failed")
    max_concurrency: int = 8  # deliveries in flight at once
    # Deliver to loopback, private, link-local and other non-public addresses. Off by default: an
    # account owner's URL must not reach the operator's own network (SSRF).
    allow_private: bool = False


@dataclass(frozen=True)
class LedgerConfig:
    """`[ledger]`: how far the ledger's writes may fall behind, and how long raw usage records are kept.

    Past `backlog_mb` of journaled-but-unwritten ledger data, or an oldest such batch older than
    `backlog_seconds`, new requests wait up to `backlog_wait` seconds for the database to catch up,
    then get a 503 with Retry-After (docs/operations.md). Raw usage records older than
    `usage_retention_days` are pruned, `prune_batch` rows per transaction, every `prune_every`
    seconds; their hourly aggregates stay (0 days: keep every record forever).
    """

    backlog_mb: int = 32
    backlog_seconds: float = 5.0
    backlog_wait: float = 2.0
    usage_retention_days: float = 30.0
    prune_batch: int = 5000
    prune_every: float = 600.0
    # Where a PostgreSQL store journals its ledger writes before PostgreSQL has them: one slot file per
    # process, on local disk (docs/deploy.md). None: the store's default (.tollgate/journal/).
    journal_dir: str | None = None


@dataclass(frozen=True)
class DatabaseConfig:
    """`[database]`: each process's PostgreSQL pool (unused by SQLite). With N workers on M machines the
    database sees up to `pool_max` x N x M connections: keep that under its max_connections (docs/deploy.md).

    `request_timeout` bounds what the request path waits for PostgreSQL (a key not yet cached): past it
    the request is refused with a 503 while keys already seen keep working from the key cache. None
    leaves either to the URL's query (`?pool_max=20&request_timeout=1.5`), else the store's default.
    """

    pool_max: int | None = None
    request_timeout: float | None = None


@dataclass(frozen=True)
class RedisConfig:
    """`[redis]`: the shared budget ledger (docs/deploy.md). Times in seconds.

    A reservation is held for `hold_seconds` and renewed every `renew_every` while its request is alive, so
    the holds of an instance that died free themselves within `hold_seconds`. A Redis that does not answer
    within `socket_timeout` refuses the request with a 503 and a short Retry-After, never a local counter.
    """

    hold_seconds: float = 15.0
    renew_every: float = 5.0
    socket_timeout: float = 0.75
    retry_after: float = 1.0  # the Retry-After of that 503
    pool_max: int = 64  # connections per process
    prefix: str = "tg"  # of every key: two gateways (staging, production) may share one Redis with two prefixes


@dataclass(frozen=True)
class MetricsConfig:
    """`[metrics]`: what `/metrics` exports besides the per-model, per-upstream and ledger metrics (docs/metrics.md).

    `per_key`: gauges of each key's remaining budget and seconds to its reset, for the `per_key_max`
    keys that sent requests most recently (one series per key: off by default, for gateways with
    many keys).
    """

    per_key: bool = False
    per_key_max: int = 1000


@dataclass(frozen=True)
class LoggingConfig:
    """`[logging]`: `requests` is where one JSON line per request goes: "off", "stderr", "logger" (Python's
    logging, logger `tollgate.requests`) or a file path (appended to). Off by default: at thousands of
    requests a second the lines are gigabytes an hour."""

    requests: str = "off"


@dataclass(frozen=True)
class Config:
    server: ServerConfig
    upstreams: tuple[UpstreamConfig, ...]
    models: tuple[ModelConfig, ...]
    plans: tuple[PlanConfig, ...]
    routes: dict[str, RouteProfile]
    source: str | None = None
    alerts: AlertsConfig = AlertsConfig()
    ledger: LedgerConfig = LedgerConfig()
    metrics: MetricsConfig = MetricsConfig()
    logging: LoggingConfig = LoggingConfig()
    database: DatabaseConfig = DatabaseConfig()
    redis: RedisConfig = RedisConfig()

    def upstream(self, name: str) -> UpstreamConfig:
        for upstream in self.upstreams:
            if upstream.name == name:
                return upstream
        raise KeyError(name)
