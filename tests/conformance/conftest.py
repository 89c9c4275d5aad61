"""Real third-party OpenAI-compatible servers behind the real gateway.

- llama-cpp-python's own server (`python -m llama_cpp.server`) with the bundled SmolLM2 GGUF;
- the LiteLLM proxy, in front of that same server.

Both come from scripts/upstreams-install.sh (their own venvs, cached), found through
TOLLGATE_LLAMA_SERVER_PYTHON and TOLLGATE_LITELLM_BIN, which `make test` sets. Without them the
suite is skipped, unless TOLLGATE_CONFORMANCE_REQUIRED=1 (as `make test` sets): then it fails.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.processes import Gateway, Process, free_port

LITELLM_KEY = "sk-litellm-conformance-master"
# One request at a time reaches the model: llama-cpp-python's server generates serially anyway.
SMOL_PRICES = {"input_per_mtok": "0.20", "output_per_mtok": "0.80"}


def _tool(env: str) -> str:
    path = os.environ.get(env, "")
    if path and Path(path).exists():
        return path
    why = f"{env} is not set to an installed program (run scripts/upstreams-install.sh)"
    if os.environ.get("TOLLGATE_CONFORMANCE_REQUIRED") == "1":
        pytest.fail(why)
    pytest.skip(why)


def bundled_gguf() -> str:
    from tollgate.proxy.upstream.local.files import bundled_gguf as find

    return str(find())


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory) -> Process:
    python = _tool("TOLLGATE_LLAMA_SERVER_PYTHON")
    tmp = tmp_path_factory.mktemp("llama-server")
    port = free_port()
    args = [python, "-m", "llama_cpp.server", "--model", bundled_gguf(), "--host", "127.0.0.1",
            "--port", str(port), "--n_ctx", "2048", "--n_threads", "2", "--seed", "7", "--embedding", "true"]
    proc = Process(args, f"http://127.0.0.1:{port}", tmp / "llama-server.log").start("/v1/models", timeout=120)
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def litellm_proxy(tmp_path_factory, llama_server) -> Process:
    program = _tool("TOLLGATE_LITELLM_BIN")
    tmp = tmp_path_factory.mktemp("litellm")
    config = tmp / "litellm.yaml"
    config.write_text(
        "model_list:\n"
        "  - model_name: smollm\n"
        "    litellm_params:\n"
        "      model: openai/smollm\n"
        f"      api_base: {llama_server.url}/v1\n"
        "      api_key: sk-unused\n"
        "litellm_settings:\n"
        "  drop_params: true\n"
        "general_settings:\n"
        "  master_key: os.environ/LITELLM_MASTER_KEY\n")
    port = free_port()
    env = {"LITELLM_MASTER_KEY": LITELLM_KEY, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR",
           "DISABLE_ADMIN_UI": "True", "LITELLM_TELEMETRY": "False", "NO_DOCS": "True"}
    proc = Process([program, "--config", str(config), "--host", "127.0.0.1", "--port", str(port),
                    "--num_workers", "1"], f"http://127.0.0.1:{port}", tmp / "litellm.log", env)
    proc.start("/health/liveliness", timeout=180)
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def conformance_gateway(tmp_path_factory, llama_server, litellm_proxy) -> Gateway:
    """Models over both servers: counted with the GGUF's tokenizer and template, or not counted at all."""
    tmp = tmp_path_factory.mktemp("conformance-gateway")
    gguf = bundled_gguf()
    common = {"context": 2048, "max_output": 1024, **SMOL_PRICES}
    config = {
        "upstreams": [
            {"name": "llama-server", "base_url": llama_server.url + "/v1", "timeout": 120, "first_byte_timeout": 60},
            # LiteLLM fills in usage the server left out of a stream with its own estimate: count here.
            {"name": "litellm", "base_url": litellm_proxy.url + "/v1", "api_key_env": "CONFORMANCE_LITELLM_KEY",
             "timeout": 120, "first_byte_timeout": 60, "usage": "gateway"},
        ],
        "models": [
            {"id": "smol", "upstream": "llama-server", "upstream_model": "smollm", "tokenizer": gguf, **common},
            {"id": "smol-uncounted", "upstream": "llama-server", "upstream_model": "smollm", **common},
            {"id": "smol-via-litellm", "upstream": "litellm", "upstream_model": "smollm", "tokenizer": gguf, **common},
            {"id": "smol-embed", "upstream": "llama-server", "upstream_model": "smollm", "capabilities": ["embeddings"],
             "input_per_mtok": SMOL_PRICES["input_per_mtok"], "context": 2048},
        ],
        "plans": [{"slug": "conformance", "window": "5h", "budget_per_window": "5", "rpm": 10000,
                   "tpm": 10_000_000}],
    }
    gw = Gateway(tmp, config, {"CONFORMANCE_LITELLM_KEY": LITELLM_KEY})
    gw.start("/health", timeout=120)
    yield gw
    gw.stop()


