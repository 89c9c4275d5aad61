"""Token counts from a Hugging Face `tokenizer.json`, for upstream models we do not run ourselves.

An operator serving Qwen or Llama through vLLM has the model's tokenizer file;
pointing `tokenizer = "/path/tokenizer.json"` at it makes budget reservations
tight (exact content tokens plus a fixed allowance for the chat template).
"""

from __future__ import annotations

from tollgate.proxy.estimate import MESSAGE_OVERHEAD, REQUEST_OVERHEAD, message_text
from tollgate.proxy.upstream.base import TokenCounter


class TokenizerFileCounter:
    """Exact content tokens, but the server's chat template is unknown: counts are upper bounds."""

    exact = False

    def __init__(self, path: str) -> None:
        from tokenizers import Tokenizer

        self._tokenizer = Tokenizer.from_file(path)
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()

    def count_text(self, text: str) -> int:
        if not text:
            return 0
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)

    def count_chat(self, messages: list[dict], tools: list[dict] | None = None) -> int:
        """Content tokens exactly, plus a template allowance per message and per request (an upper bound).
        Tools are not counted here: estimate.chat_prompt_bound adds them for every counter."""
        return sum(MESSAGE_OVERHEAD + self.count_text(message_text(m)) for m in messages) + REQUEST_OVERHEAD

    def count_output(self, text: str) -> int:
        return self.count_text(text)


def load_counter(spec: str | None, upstream: object) -> TokenCounter | None:
    """The counter named by a model's `tokenizer` setting, if any.

    "upstream": the in-process model's own tokenizer; a `.gguf` path: the tokenizer and chat template
    of the GGUF a llama.cpp server loads (exact counts; needs the `local` extra); another path: a
    tokenizer.json; None: no tokenizer (byte-length bounds are used instead).
    """
    if spec is None:
        return None
    if spec in ("upstream", "llama_cpp", "minilm"):
        counter = getattr(upstream, "token_counter", None)
        return counter() if callable(counter) else counter
    if spec.endswith(".gguf"):
        from tollgate.proxy.upstream.local.llama_prompt import LlamaTokenCounter

        return LlamaTokenCounter.load(spec)
    return TokenizerFileCounter(spec)
