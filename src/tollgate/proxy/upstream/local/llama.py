"""The bundled chat model: SmolLM2-135M-Instruct (or any GGUF) in-process via llama.cpp.

`send` answers exactly what an OpenAI-compatible server would: 400s in OpenAI's
error shape for bad bodies, a `chat.completion` / `text_completion` JSON body,
or SSE chunks ending in `data: [DONE]`. Generation runs on one dedicated
worker thread per instance (requests queue in order); request parsing and
tokenization run on the default executor, so the event loop never blocks.
"""

from __future__ import annotations

import asyncio
import json
from functools import partial
from pathlib import Path

from llama_cpp import Llama
from llama_cpp.llama_grammar import JSON_GBNF, LlamaGrammar

from tollgate.config import UpstreamConfig
from tollgate.proxy.upstream.base import UpstreamError
from tollgate.proxy.upstream.local.errors import RequestError, error_body, parse_json_object, unknown_path
from tollgate.proxy.upstream.local.files import bundled_gguf
from tollgate.proxy.upstream.local.llama_format import OpenAIFormatter
from tollgate.proxy.upstream.local.llama_generate import Finished, Job, TokenStats, run_generation
from tollgate.proxy.upstream.local.llama_prompt import LlamaTokenCounter, PromptBuilder
from tollgate.proxy.upstream.local.params import GenerationParams, parse_chat, parse_completion
from tollgate.proxy.upstream.local.response import BufferedResponse, StreamingResponse
from tollgate.proxy.upstream.local.sse import SSE_HEADERS
from tollgate.proxy.upstream.local.threads import default_threads
from tollgate.proxy.upstream.local.worker import END, Channel, Failed, Worker

PATHS = ("/chat/completions", "/completions")


def llama_threads(config: UpstreamConfig) -> tuple[int, int]:
    """(generation threads, prompt-evaluation threads): both `threads`, else half
    the cores (llama-cpp-python's default for generation; see threads.py for why
    prompt evaluation does not get all of them)."""
    threads = default_threads(config.threads)
    return threads, threads


def _echo_text(llm: Llama, params: GenerationParams) -> str:
    if isinstance(params.prompt, str):
        return params.prompt
    return llm.detokenize(params.prompt).decode("utf-8", errors="replace")


class LlamaUpstream:
    """`Upstream` (base.py) for `kind = "llama_cpp"`."""

    def __init__(self, config: UpstreamConfig) -> None:
        self.name = config.name
        self.inflight = 0
        self.reports_usage = True
        self.secret = None
        self.config = config
        self.model_path = Path(config.model_path) if config.model_path else None
        self.threads, self.threads_batch = llama_threads(config)
        self.stats = TokenStats()
        self._llm: Llama | None = None
        self._builder: PromptBuilder | None = None
        self._worker: Worker | None = None
        self._json_grammar: LlamaGrammar | None = None
        self._channels: set[Channel] = set()

    # --- lifecycle ----------------------------------------------------------
    async def start(self) -> None:
        """Load the weights (mmap) and page them in with a one-token warm-up."""
        if self._llm is not None:
            return
        llm = await asyncio.to_thread(self._load)
        self._builder = PromptBuilder(llm)
        self._worker = Worker(f"tollgate-llama-{self.name}")
        warm_up = self._builder.chat_tokens([{"role": "user", "content": "Hello"}])
        await self._worker.call(partial(self._warm_up, llm, warm_up))
        self._llm = llm

    def _load(self) -> Llama:
        path = self.model_path or bundled_gguf()
        return Llama(
            str(path),
            n_ctx=self.config.context,
            n_threads=self.threads,
            n_threads_batch=self.threads_batch,
            verbose=False,
        )

    @staticmethod
    def _warm_up(llm: Llama, prompt: list[int]) -> None:
        # The first decodes of a fresh process are slower (page-in, buffer
        # set-up); pay for them here rather than in the first request.
        tokens = llm.generate(prompt, temp=0.0)
        next(tokens)
        tokens.close()
        llm.reset()

    async def close(self) -> None:
        """Refuse new requests, stop running ones at their next token, end the thread.

        The model itself is freed when the last reference goes: token counters
        handed out earlier share it and keep working.
        """
        self._llm = None
        for channel in list(self._channels):
            channel.cancel()
        if self._worker is not None:
            await self._worker.stop()
            self._worker = None

    # --- introspection ------------------------------------------------------
    @property
    def token_counter(self) -> LlamaTokenCounter:
        """The model's own tokenizer and chat template (after `start`)."""
        if self._builder is None:
            raise RuntimeError(f"upstream {self.name!r} is not started")
        return LlamaTokenCounter(self._builder)

    @property
    def busy(self) -> bool:
        """The worker thread is generating right now."""
        return self._worker is not None and self._worker.busy

    @property
    def context(self) -> int:
        """Prompt + completion tokens one request may use.

        llama.cpp rounds small contexts up (to 256) but llama-cpp-python sizes
        its token buffer by the configured value, so the smaller one is the limit.
        """
        if self._llm is None:
            return self.config.context
        return min(self.config.context, self._llm.n_ctx())

    # --- requests -----------------------------------------------------------
    async def send(self, path: str, body: bytes, request_id: str | None = None, client_headers: object = None) -> BufferedResponse | StreamingResponse:
        llm, worker, builder = self._llm, self._worker, self._builder
        if llm is None or worker is None or builder is None:
            raise UpstreamError("connect", f"local model {self.name!r} is not started")
        try:
            if path not in PATHS:
                raise unknown_path(path)
            job = await asyncio.to_thread(self._prepare, builder, self.context, path, body)
        except RequestError as exc:
            return BufferedResponse(exc.status, exc.body())
        params = job.params
        echo = "" if not params.echo else _echo_text(llm, params)
        fmt = OpenAIFormatter(params.kind, params.model, params.include_usage, echo)
        self.inflight += 1
        channel = Channel(asyncio.get_running_loop(), on_end=lambda: self._ended(channel))
        self._channels.add(channel)
        worker.submit(
            partial(run_generation, llm, job, stats=self.stats, stream=params.stream), channel
        )
        if params.stream:
            return StreamingResponse(dict(SSE_HEADERS), self._stream(channel, fmt), channel.stop)
        try:
            return await self._collect(channel, fmt)
        except asyncio.CancelledError:
            channel.cancel()
            raise

    def _ended(self, channel: Channel) -> None:
        if channel in self._channels:
            self._channels.discard(channel)
            self.inflight -= 1

    def _prepare(self, builder: PromptBuilder, n_ctx: int, path: str, body: bytes) -> Job:
        """Validate and tokenize (on an executor thread: templates and long prompts cost)."""
        data = parse_json_object(body)
        params = parse_chat(data) if path == "/chat/completions" else parse_completion(data)
        prompt = builder.prompt_tokens(params)
        if len(prompt) >= n_ctx:
            raise RequestError(
                f"This model's maximum context length is {n_ctx} tokens. However, your "
                f"{'messages' if params.kind == 'chat' else 'prompt'} resulted in "
                f"{len(prompt)} tokens. Please reduce the length of the input.",
                param="messages" if params.kind == "chat" else "prompt",
                code="context_length_exceeded",
            )
        # Like llama.cpp's server (not like OpenAI, which refuses): a max_tokens
        # beyond the context is clamped to the room left, finishing with "length".
        room = n_ctx - len(prompt)
        max_tokens = min(params.max_tokens or room, room)
        return Job(params, prompt, max_tokens, self._grammar(params))

    def _grammar(self, params: GenerationParams) -> LlamaGrammar | None:
        fmt = params.response_format
        if fmt is None:
            return None
        if fmt == "json_object":
            if self._json_grammar is None:
                self._json_grammar = LlamaGrammar.from_string(JSON_GBNF, verbose=False)
            return self._json_grammar
        try:
            return LlamaGrammar.from_json_schema(json.dumps(fmt), verbose=False)
        except Exception as exc:  # the converter raises plain exceptions
            raise RequestError(
                f"Unsupported JSON schema in 'response_format': {exc}",
                param="response_format",
            ) from None

    async def _collect(self, channel: Channel, fmt: OpenAIFormatter) -> BufferedResponse:
        body = error_body("The local model stopped without answering.", type="server_error")
        status = 500
        while (item := await channel.get()) is not END:
            if isinstance(item, Finished):
                status, body = 200, fmt.body(item)
            elif isinstance(item, Failed):
                message = f"The local model failed: {item.error}"
                status, body = 500, error_body(message, type="server_error")
        return BufferedResponse(status, body)

    async def _stream(self, channel: Channel, fmt: OpenAIFormatter):
        try:
            head = fmt.head()
            if head:
                yield head
            while True:
                # Pieces that arrived together go out as one delta: the same
                # text, fewer events when the loop is behind the model.
                items = [await channel.get(), *channel.get_ready()]
                text = "".join(item for item in items if isinstance(item, str))
                if text:
                    yield fmt.delta(text)
                for item in items:
                    if item is END:
                        return
                    if isinstance(item, Finished) and item.finish_reason != "cancelled":
                        for event in fmt.tail(item):
                            yield event
                    elif isinstance(item, Failed):
                        yield fmt.error(f"The local model failed: {item.error}")
        finally:
            # The reader stopped early (closed the iterator): stop generating too.
            channel.cancel()
