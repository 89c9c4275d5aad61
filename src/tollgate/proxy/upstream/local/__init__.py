"""In-process default upstreams: llama.cpp chat and a NumPy MiniLM for embeddings.

Nothing heavy is imported here: llama_cpp and the weights are optional extras
(`tollgate[local]`), loaded only when a local upstream is built.

- `llama.LlamaUpstream` (`kind = "llama_cpp"`), `llama_prompt.LlamaTokenCounter`
- `minilm.MiniLMUpstream` (`kind = "minilm"`), `minilm.MiniLMTokenCounter`
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tollgate.config import UpstreamConfig
    from tollgate.proxy.upstream.local.llama import LlamaUpstream
    from tollgate.proxy.upstream.local.minilm import MiniLMUpstream

LOCAL_KINDS = ("llama_cpp", "minilm")


def local_upstream(config: UpstreamConfig) -> LlamaUpstream | MiniLMUpstream:
    """The in-process upstream for `config.kind`; call `await start()` before use."""
    if config.kind == "llama_cpp":
        from tollgate.proxy.upstream.local.llama import LlamaUpstream

        return LlamaUpstream(config)
    if config.kind == "minilm":
        from tollgate.proxy.upstream.local.minilm import MiniLMUpstream

        return MiniLMUpstream(config)
    raise ValueError(f"not a local upstream kind: {config.kind!r} (expected one of {LOCAL_KINDS})")
