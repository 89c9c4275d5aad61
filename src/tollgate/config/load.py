"""Read the config file, apply environment overrides, and validate every key."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from tollgate.config import scale, sections, upstream_headers
from tollgate.config import server as config_server
from tollgate.config.defaults import default_plans, local_models, local_routes, local_upstreams
from tollgate.config.reader import REQUIRED, ConfigError, Table
from tollgate.config.schema import (
    CATEGORIES,
    Config,
    ModelConfig,
    PlanConfig,
    RouteProfile,
    UpstreamConfig,
)
from tollgate.domain.bounds import check_budget, check_period_days, check_rate, check_window
from tollgate.domain.price_rules import price_problems
from tollgate.domain.pricing import Rates, Tier

__all__ = ["ConfigError", "load_config"]

UPSTREAM_KINDS = ("openai", "llama_cpp", "minilm")


def load_config(path: str | os.PathLike | None = None, env: Mapping[str, str] | None = None) -> Config:
    """The validated config from `path` (or `$TOLLGATE_CONFIG`, or none), with env overrides."""
    env = os.environ if env is None else env
    path = path or env.get("TOLLGATE_CONFIG") or None
    raw: dict = {}
    if path:
        try:
            raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file {path}: not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path}: not valid TOML: {exc}") from None
    root = Table(raw, "")
    server = config_server.server(root.table("server"), env)
    upstreams = tuple(_upstream(t) for t in root.tables("upstreams"))
    models = tuple(_model(t) for t in root.tables("models"))
    bundled = not upstreams and not models
    if bundled:
        upstreams, models = local_upstreams(), local_models()
    plans = _merge_plans(default_plans(), tuple(_plan(t) for t in root.tables("plans")))
    routes = _routes(root.table("routes"))
    if bundled and not routes:
        routes = local_routes()
    alerts = sections.alerts(root.table("alerts"))
    ledger = sections.ledger(root.table("ledger"))
    metrics = sections.metrics(root.table("metrics"))
    logging_ = sections.logging(root.table("logging"))
    database = scale.database(root.table("database"))
    redis = scale.redis(root.table("redis"))
    root.done()
    config = Config(server, upstreams, models, plans, routes, source=str(path) if path else None, alerts=alerts,
                    ledger=ledger, metrics=metrics, logging=logging_, database=database, redis=redis)
    _check_references(config)
    return config


def _choice(t: Table, name: str, allowed: tuple[str, ...], default: str) -> str:
    value = t.str(name, default)
    if value not in allowed:
        raise ConfigError(f"{t.key(name)}: must be one of {', '.join(allowed)}, got {value!r}")
    return value


def _upstream(t: Table) -> UpstreamConfig:
    d = UpstreamConfig(name="")
    kind = t.str("kind", "openai")
    if kind not in UPSTREAM_KINDS:
        raise ConfigError(f"{t.key('kind')}: must be one of {', '.join(UPSTREAM_KINDS)}, got {kind!r}")
    base_url = t.str("base_url", "" if kind != "openai" else REQUIRED)
    if kind == "openai" and not base_url.startswith(("http://", "https://")):
        raise ConfigError(f"{t.key('base_url')}: expected an http:// or https:// URL, got {base_url!r}")
    upstream = UpstreamConfig(
        name=t.str("name"),
        base_url=base_url.rstrip("/"),
        kind=kind,
        api_key_env=t.str("api_key_env", None),
        timeout=t.number("timeout", d.timeout, minimum=0.001),
        connect_timeout=t.number("connect_timeout", d.connect_timeout, minimum=0.001),
        first_byte_timeout=t.number("first_byte_timeout", d.first_byte_timeout, minimum=0.001),
        max_connections=t.int("max_connections", d.max_connections, minimum=1),
        max_response_bytes=t.int("max_response_bytes", d.max_response_bytes, minimum=1024),
        request_id_header=upstream_headers.request_id_header(t, d.request_id_header),
        headers=upstream_headers.extra_headers(t),
        forward_headers=upstream_headers.forward_headers(t),
        usage=_choice(t, "usage", ("upstream", "gateway"), d.usage),
        model_path=t.str("model_path", None),
        threads=t.int("threads", None, minimum=1),
        context=t.int("context", d.context, minimum=64),
    )
    t.done()
    return upstream


def _model(t: Table) -> ModelConfig:
    model_id = t.str("id")
    upstreams = t.str_list("upstream")
    capabilities = t.str_list("capabilities", ("chat",))
    embedding = "embeddings" in capabilities
    model = ModelConfig(
        id=model_id,
        upstreams=upstreams,
        upstream_model=t.str("upstream_model", model_id),
        input_per_mtok=t.usd("input_per_mtok"),
        output_per_mtok=t.usd("output_per_mtok", 0 if embedding else REQUIRED),
        context=t.bounded("context", t.int("context", 8192, minimum=1), _tokens),
        max_output=t.bounded("max_output", t.int("max_output", 0 if embedding else 4096, minimum=0), _tokens),
        capabilities=capabilities,
        aliases=t.str_list("aliases", ()),
        fallbacks=t.str_list("fallbacks", ()),
        tokenizer=t.str("tokenizer", None),
        cached_input_per_mtok=t.usd("cached_input_per_mtok", None),
        cache_write_per_mtok=t.usd("cache_write_per_mtok", None),
    )
    tiers = tuple(_tier(tier) for tier in t.tables("tiers"))
    t.done()
    if not embedding and model.max_output < 1:
        raise ConfigError(f"{t.key('max_output')}: a chat model needs max_output of at least 1")
    if tiers:
        model = replace(model, tiers=tiers)
    problems = price_problems(model.price, model.context)
    if problems:
        key, problem = problems[0]
        raise ConfigError(f"{t.key(key)}: {problem}")
    return model


def _tier(t: Table) -> Tier:
    """One `[[models.tiers]]`: above `above_tokens` prompt tokens, the whole request at these rates
    (checked with the model's other prices by `price_problems`)."""
    tier = Tier(t.bounded("above_tokens", t.int("above_tokens", REQUIRED, minimum=1), _tokens), Rates(
        input_per_mtok=t.usd("input_per_mtok"),
        output_per_mtok=t.usd("output_per_mtok"),
        cached_input_per_mtok=t.usd("cached_input_per_mtok", None),
        cache_write_per_mtok=t.usd("cache_write_per_mtok", None),
    ))
    t.done()
    return tier


# A model's context and max_output: far above any model's, far below what overflows a reservation.
MAX_MODEL_TOKENS = 100_000_000


def _tokens(value: int) -> int:
    if value > MAX_MODEL_TOKENS:
        raise ValueError(f"must be at most {MAX_MODEL_TOKENS} tokens, got {value}")
    return value


def _plan(t: Table) -> PlanConfig:
    """A plan, every number within `tollgate.domain.bounds` (a window of at most 365d, ...)."""
    plan = PlanConfig(
        slug=t.str("slug"),
        name=t.str("name", None) or "",
        price_monthly=t.bounded("price_monthly", t.usd("price_monthly", 0), check_budget),
        period_days=t.bounded("period_days", t.int("period_days", 30, minimum=1), check_period_days),
        window=t.bounded("window", t.duration("window", 5 * 3600), check_window),
        budget_per_window=t.bounded("budget_per_window", t.usd("budget_per_window"), check_budget),
        rpm=t.bounded("rpm", t.int("rpm", 60, minimum=1), check_rate),
        tpm=t.bounded("tpm", t.int("tpm", 100_000, minimum=1), check_rate),
        models=t.str_list("models", None),
    )
    t.done()
    if not plan.name:
        plan = replace(plan, name=plan.slug.title())
    return plan


def _merge_plans(defaults: tuple[PlanConfig, ...], configured: tuple[PlanConfig, ...]) -> tuple[PlanConfig, ...]:
    by_slug = {p.slug: p for p in defaults}
    seen: set[str] = set()
    for plan in configured:
        if plan.slug in seen:
            raise ConfigError(f"plans: slug {plan.slug!r} is defined twice")
        seen.add(plan.slug)
        by_slug[plan.slug] = plan
    return tuple(by_slug.values())


def _routes(t: Table) -> dict[str, RouteProfile]:
    profiles: dict[str, RouteProfile] = {}
    for name in list(t.data):
        p = t.table(name)
        table = {}
        for category in CATEGORIES:
            models = p.str_list(category, None)
            if models:
                table[category] = models
        if "general" not in table:
            raise ConfigError(f"{p.key('general')}: every route profile needs a general route")
        classifier = p.str("classifier", "local")
        if classifier not in ("local", "judge"):
            raise ConfigError(f"{p.key('classifier')}: must be \"local\" or \"judge\", got {classifier!r}")
        downgrade_t = p.table("downgrade")
        downgrade = {c: downgrade_t.str_list(c) for c in list(downgrade_t.data) if c in CATEGORIES}
        downgrade_t.done()
        profile = RouteProfile(
            name=name,
            table=table,
            classifier=classifier,
            judge_model=p.str("judge_model", None),
            downgrade_below=p.number("downgrade_below", 0.0),
            downgrade=downgrade,
        )
        p.done()
        if classifier == "judge" and not profile.judge_model:
            raise ConfigError(f"{p.key('judge_model')}: is required when classifier = \"judge\"")
        profiles[name] = profile
    t.done()
    return profiles


def _check_references(config: Config) -> None:
    longest = max((u.timeout for u in config.upstreams), default=0)
    if config.server.reservation_ttl < longest:
        raise ConfigError(
            f"server.reservation_ttl: {config.server.reservation_ttl}s is shorter than an upstream timeout ({longest:g}s);"
            " a reservation must outlive the longest request it covers"
        )
    upstream_names = [u.name for u in config.upstreams]
    if len(set(upstream_names)) != len(upstream_names):
        raise ConfigError("upstreams: two upstreams share a name")
    names: dict[str, str] = {}
    for i, model in enumerate(config.models):
        for upstream in model.upstreams:
            if upstream not in upstream_names:
                raise ConfigError(f"models[{i}].upstream: no upstream named {upstream!r}")
        for name in (model.id, *model.aliases):
            if name in names or name == "auto" or name.startswith("auto:"):
                raise ConfigError(f"models[{i}]: the name {name!r} is already taken")
            names[name] = model.id
    for i, model in enumerate(config.models):
        for fallback in model.fallbacks:
            if fallback not in names:
                raise ConfigError(f"models[{i}].fallbacks: no model named {fallback!r}")
    for i, plan in enumerate(config.plans):
        for name in plan.models or ():
            if name not in names:
                raise ConfigError(f"plans[{i}].models: no model named {name!r}")
    for profile in config.routes.values():
        for category, models in (*profile.table.items(), *profile.downgrade.items()):
            for name in models:
                if name not in names:
                    raise ConfigError(f"routes.{profile.name}.{category}: no model named {name!r}")
        if profile.judge_model and profile.judge_model not in names:
            raise ConfigError(f"routes.{profile.name}.judge_model: no model named {profile.judge_model!r}")
