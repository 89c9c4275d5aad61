"""What a gateway runs with when the config says nothing: the bundled local models and the shipped plans."""

from __future__ import annotations

from tollgate.config.schema import ModelConfig, PlanConfig, UpstreamConfig
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


def local_upstreams() -> tuple[UpstreamConfig, ...]:
    return (
        UpstreamConfig(name="local", kind="llama_cpp", timeout=600.0, first_byte_timeout=600.0),
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
            context=2048,
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
