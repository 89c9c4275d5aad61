"""Build the upstream object for each `[[upstreams]]` entry."""

from __future__ import annotations

import os

from tollgate.config.schema import UpstreamConfig
from tollgate.proxy.upstream.base import Upstream


def build_upstream(config: UpstreamConfig) -> Upstream:
    if config.kind == "openai":
        from tollgate.proxy.upstream.http import HTTPUpstream

        api_key = os.environ.get(config.api_key_env) if config.api_key_env else None
        return HTTPUpstream(config, api_key)
    if config.kind == "llama_cpp":
        from tollgate.proxy.upstream.local.llama import LlamaUpstream

        return LlamaUpstream(config)
    if config.kind == "minilm":
        from tollgate.proxy.upstream.local.minilm import MiniLMUpstream

        return MiniLMUpstream(config)
    raise ValueError(f"unknown upstream kind {config.kind!r}")
