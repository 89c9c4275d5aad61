"""What a gateway runs with when the config says nothing: the bundled local models, the shipped plans,
and an `auto` route table that sends every category to the bundled chat model."""

from __future__ import annotations

from tollgate.config.schema import CATEGORIES, ModelConfig, PlanConfig, RouteProfile, UpstreamConfig
from tollgate.domain.money import usd_to_nanos

LOCAL_CHAT_MODEL = "smollm2-135m-instruct"
LOCAL_EMBEDDING_MODEL = "all-minilm-l6-v2"


def default_plans() -> tuple[PlanConfig, ...]:
    """SPEC section 1: `standard` and `pro`, 30-day periods, 5-hour windows."""
    return (
        PlanConfig(
            slug="standard",
            name="Standard",
            price_monthly=usd_to_nanos("20"),
            period_days=30,
            window=5 * 3600,
            budget_per_window=usd_to_nanos("0.14"),
            rpm=60,
            tpm=3333,
        ),
        PlanConfig(
            slug="pro",
            name="Pro",
            price_monthly=usd_to_nanos("60"),
            period_days=30,
            window=5 * 3600,
            budget_per_window=usd_to_nanos("0.42"),
            rpm=200,
            tpm=13333,
        ),
    )


# SmolLM2's trained context (the GGUF's `llama.context_length`). The agents of README's client setups
# send thousands of tokens of system prompt and tools before the first word (OpenClaw about 7,000):
# the generic llama.cpp default of 2048 would answer their first turn with context_length_exceeded.
LOCAL_CHAT_CONTEXT = 8192


def local_upstreams() -> tuple[UpstreamConfig, ...]:
    return (
        UpstreamConfig(name="local", kind="llama_cpp", timeout=600.0, first_byte_timeout=600.0,
                       context=LOCAL_CHAT_CONTEXT),
        UpstreamConfig(name="local-embeddings", kind="minilm", timeout=120.0),
    )


def local_models() -> tuple[ModelConfig, ...]:
    """The bundled models, priced like small hosted models so that budgets mean something."""
    return (
        ModelConfig(
            id=LOCAL_CHAT_MODEL,
            upstreams=("local",),
            upstream_model=LOCAL_CHAT_MODEL,
            input_per_mtok=usd_to_nanos("0.02"),
            output_per_mtok=usd_to_nanos("0.05"),
            context=LOCAL_CHAT_CONTEXT,
            max_output=1024,
            capabilities=("chat", "completions"),
            aliases=("smollm2", "local"),
            tokenizer="llama_cpp",
        ),
        ModelConfig(
            id=LOCAL_EMBEDDING_MODEL,
            upstreams=("local-embeddings",),
            upstream_model=LOCAL_EMBEDDING_MODEL,
            input_per_mtok=usd_to_nanos("0.01"),
            output_per_mtok=0,
            context=256,
            max_output=0,
            capabilities=("embeddings",),
            aliases=("minilm", "text-embedding-local"),
            tokenizer="minilm",
        ),
    )


def local_routes() -> dict[str, RouteProfile]:
    """Model `auto` on the embedded default: every category to the bundled chat model, so that a fresh
    gateway answers the `tollgate/auto` of README's client setups (one model: nothing to choose between,
    but the route table, the route headers and `GET /v1/models` work as with a real one)."""
    return {"auto": RouteProfile(name="auto", table={category: (LOCAL_CHAT_MODEL,) for category in CATEGORIES})}
