"""The validated shape of a tollgate configuration. Money is in nano-dollars."""

from __future__ import annotations

from dataclasses import dataclass, field

from tollgate.domain.accounts import Plan

CATEGORIES = ("simple", "general", "reasoning", "code", "agent")


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    database: str = "sqlite:///.tollgate/tollgate.db"
    # Budget counters, reservations and rate limits: "embedded" (in-process, one
    # worker) or a redis:// URL shared by many gateway instances.
    budget_store: str = "embedded"
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
    # "tollgate": the built-in lean HTTP/1.1 server; "uvicorn": the same app under uvicorn.
    http: str = "tollgate"


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

    @property
    def is_embedding(self) -> bool:
        return "embeddings" in self.capabilities


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
class Config:
    server: ServerConfig
    upstreams: tuple[UpstreamConfig, ...]
    models: tuple[ModelConfig, ...]
    plans: tuple[PlanConfig, ...]
    routes: dict[str, RouteProfile]
    source: str | None = None

    def upstream(self, name: str) -> UpstreamConfig:
        for upstream in self.upstreams:
            if upstream.name == name:
                return upstream
        raise KeyError(name)
