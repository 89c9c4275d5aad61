"""Prompt tokens for llama.cpp, and the `TokenCounter` that shares their code path.

The gateway bounds a request's input with `count_chat` before forwarding it, so
`count_chat` must agree token for token with what generation reports. Both go
through `PromptBuilder`: the GGUF's own chat template (rendered like
llama-cpp-python's `Jinja2ChatFormatter`), then llama.cpp's tokenizer with
special tokens parsed and no extra BOS (the template writes its own).
"""

from __future__ import annotations

from pathlib import Path

import jinja2
from llama_cpp import Llama
from llama_cpp.llama_chat_format import Jinja2ChatFormatter

from tollgate.proxy.upstream.local.errors import RequestError
from tollgate.proxy.upstream.local.files import bundled_gguf
from tollgate.proxy.upstream.local.params import GenerationParams, normalize_messages, normalize_tools

# Used only when a GGUF carries no chat template (the bundled SmolLM2 has one).
CHATML_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


class PromptBuilder:
    """Messages or a completion prompt -> the token ids the model evaluates."""

    def __init__(self, llm: Llama) -> None:
        self._llm = llm
        template = llm.metadata.get("tokenizer.chat_template") or CHATML_TEMPLATE
        # Templates that never mention `tools` cannot show them to the model:
        # SmolLM2's is one, so tools are accepted and ignored for it.
        self.template_uses_tools = "tools" in template
        self._formatter = Jinja2ChatFormatter(
            template=template,
            eos_token=_token_text(llm, llm.token_eos()),
            bos_token=_token_text(llm, llm.token_bos()),
        )

    @property
    def n_vocab(self) -> int:
        return self._llm.n_vocab()

    def render_chat(self, messages: list[dict], tools: list[dict] | None = None) -> str:
        try:
            return self._formatter(
                messages=messages, tools=tools if self.template_uses_tools else None
            ).prompt
        except (jinja2.TemplateError, ValueError, TypeError, KeyError) as exc:
            raise RequestError(
                f"Invalid 'messages' for this model: {exc}", param="messages"
            ) from None

    def chat_tokens(self, messages: list[dict], tools: list[dict] | None = None) -> list[int]:
        prompt = self.render_chat(messages, tools)
        return self._llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)

    def text_tokens(self, text: str) -> list[int]:
        """A raw completion prompt, tokenized as llama-cpp-python's create_completion does."""
        if not text:
            return []
        return self._llm.tokenize(
            text.encode("utf-8"), add_bos=self._llm._model.add_bos_token(), special=True
        )

    def output_tokens(self, text: str) -> list[int]:
        """Generated text back into tokens: no BOS, special tokens as themselves."""
        if not text:
            return []
        return self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)

    def prompt_tokens(self, params: GenerationParams) -> list[int]:
        if params.kind == "chat":
            return self.chat_tokens(params.messages, params.tools)
        if isinstance(params.prompt, list):
            bad = [t for t in params.prompt if not 0 <= t < self.n_vocab]
            if bad:
                raise RequestError(
                    f"Invalid token id {bad[0]} in 'prompt' (vocabulary size {self.n_vocab}).",
                    param="prompt",
                )
            tokens = params.prompt
        else:
            tokens = self.text_tokens(params.prompt)
        # Nothing to continue from: start from BOS, as llama-cpp-python does.
        return tokens or [self._llm.token_bos()]


def _token_text(llm: Llama, token: int) -> str:
    return llm._model.token_get_text(token) if token != -1 else ""


class LlamaTokenCounter:
    """`TokenCounter` over the model's own tokenizer (base.py): exact, since the GGUF carries both the
    tokenizer and the chat template that llama.cpp servers render (llama-cpp-python's included)."""

    exact = True

    def __init__(self, builder: PromptBuilder) -> None:
        self._builder = builder

    @classmethod
    def load(cls, model_path: str | Path | None = None) -> LlamaTokenCounter:
        """A counter that loads only the vocabulary (no weights; ~0.1 s).

        For counting before (or without) starting a `LlamaUpstream`;
        `model_path` None is the bundled SmolLM2.
        """
        llm = Llama(str(model_path or bundled_gguf()), vocab_only=True, verbose=False)
        return cls(PromptBuilder(llm))

    def count_text(self, text: str) -> int:
        """Tokens of `text` as a /completions prompt (0 for "")."""
        return len(self._builder.text_tokens(text))

    def count_chat(self, messages: list[dict], tools: list[dict] | None = None) -> int:
        """Prompt tokens of a chat request, template included; raises RequestError
        (a ValueError) for messages the model would refuse."""
        return len(
            self._builder.chat_tokens(normalize_messages(messages), normalize_tools(tools))
        )

    def count_output(self, text: str) -> int:
        """Tokens of generated text, as the server's generation counted them (for text it would produce)."""
        return len(self._builder.output_tokens(text))
