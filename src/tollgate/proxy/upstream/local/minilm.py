"""The bundled embedding model: all-MiniLM-L6-v2 in NumPy, served as OpenAI /embeddings.

Requests run one at a time on a dedicated worker thread (parsing, tokenizing
and the forward pass), so the event loop never blocks; inputs of one request
are batched together. Inputs longer than 256 word pieces are truncated, as
sentence-transformers does for this model, and usage counts the word pieces
actually embedded ([CLS] and [SEP] included).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from tollgate.config import UpstreamConfig
from tollgate.proxy.upstream.base import UpstreamError
from tollgate.proxy.upstream.local.errors import RequestError, parse_json_object, unknown_path
from tollgate.proxy.upstream.local.files import bundled_minilm
from tollgate.proxy.upstream.local.minilm_model import MiniLM
from tollgate.proxy.upstream.local.minilm_request import parse_embeddings, response_body
from tollgate.proxy.upstream.local.response import BufferedResponse
from tollgate.proxy.upstream.local.threads import default_threads, limit_blas_threads
from tollgate.proxy.upstream.local.worker import Worker


class MiniLMTokenCounter:
    """`TokenCounter` (base.py): word pieces as /embeddings bills them."""

    exact = False  # embeddings only: nothing here counts a chat template

    def __init__(self, model: MiniLM) -> None:
        self._model = model

    def count_text(self, text: str) -> int:
        """Word pieces embedded for `text`: [CLS] + pieces + [SEP], at most 256."""
        return len(self._model.tokenize([text])[0])

    def count_output(self, text: str) -> int:
        return self.count_text(text)

    def count_chat(self, messages: list[dict], tools: list[dict] | None = None) -> int:
        """Embeddings have no chat: each message's text counted as one input."""
        total = 0
        for message in messages:
            content = message.get("content")
            if isinstance(content, list):
                content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
            total += self.count_text(content if isinstance(content, str) else "")
        return total


class MiniLMUpstream:
    """`Upstream` (base.py) for `kind = "minilm"`; `model_path` is the model directory."""

    def __init__(self, config: UpstreamConfig) -> None:
        self.name = config.name
        self.inflight = 0
        self.reports_usage = True
        self.secret = None
        self.config = config
        self.model_path = Path(config.model_path) if config.model_path else None
        self.threads = default_threads(config.threads)
        self._model: MiniLM | None = None
        self._worker: Worker | None = None

    async def start(self) -> None:
        if self._model is not None:
            return
        # OpenBLAS's pool is process-wide: this caps every NumPy matmul (threads.py).
        limit_blas_threads(self.threads)
        self._model = await asyncio.to_thread(MiniLM, self.model_path or bundled_minilm())
        self._worker = Worker(f"tollgate-minilm-{self.name}")

    async def close(self) -> None:
        if self._worker is not None:
            await self._worker.stop()
            self._worker = None
        self._model = None

    @property
    def token_counter(self) -> MiniLMTokenCounter:
        if self._model is None:
            raise RuntimeError(f"upstream {self.name!r} is not started")
        return MiniLMTokenCounter(self._model)

    @property
    def busy(self) -> bool:
        """The worker thread is embedding right now."""
        return self._worker is not None and self._worker.busy

    @property
    def model(self) -> MiniLM:
        if self._model is None:
            raise RuntimeError(f"upstream {self.name!r} is not started")
        return self._model

    async def send(self, path: str, body: bytes, request_id: str | None = None, client_headers: object = None) -> BufferedResponse:
        model, worker = self._model, self._worker
        if model is None or worker is None:
            raise UpstreamError("connect", f"local model {self.name!r} is not started")
        if path != "/embeddings":
            error = unknown_path(path)
            return BufferedResponse(error.status, error.body())
        self.inflight += 1
        try:
            return await worker.call(lambda: self._handle(model, body))
        finally:
            self.inflight -= 1

    @staticmethod
    def _handle(model: MiniLM, body: bytes) -> BufferedResponse:
        """On the worker thread: parse, tokenize, embed, serialise."""
        try:
            request = parse_embeddings(
                parse_json_object(body),
                vocab_size=model.vocab_size,
                max_dimensions=model.dimensions,
            )
        except RequestError as exc:
            return BufferedResponse(exc.status, exc.body())
        if request.texts is not None:
            sequences = model.tokenize(request.texts)
        else:
            sequences = [model.wrap_ids(ids) for ids in request.token_ids or []]
        vectors = model.embed(sequences)
        tokens = sum(len(s) for s in sequences)
        return BufferedResponse(200, response_body(request, vectors, tokens))
