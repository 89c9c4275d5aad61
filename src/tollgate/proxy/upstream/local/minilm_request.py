"""Validate an OpenAI /embeddings body and shape its response."""

from __future__ import annotations

import base64
from dataclasses import dataclass

import numpy as np
import orjson

from tollgate.proxy.upstream.local.errors import RequestError

# OpenAI's limit on inputs per request.
MAX_INPUTS = 2048


@dataclass
class EmbeddingRequest:
    model: str
    # Either texts or word-piece id lists, never both.
    texts: list[str] | None
    token_ids: list[list[int]] | None
    encoding_format: str
    dimensions: int | None

    def __len__(self) -> int:
        return len(self.texts if self.texts is not None else self.token_ids or [])


def _is_ids(value: object) -> bool:
    return (
        isinstance(value, list)
        and len(value) > 0
        and all(isinstance(t, int) and not isinstance(t, bool) for t in value)
    )


def parse_embeddings(body: dict, *, vocab_size: int, max_dimensions: int) -> EmbeddingRequest:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise RequestError("you must provide a model parameter", param="model")
    data = body.get("input")
    texts: list[str] | None = None
    ids: list[list[int]] | None = None
    if isinstance(data, str):
        texts = [data]
    elif _is_ids(data):
        ids = [data]  # type: ignore[list-item]
    elif isinstance(data, list) and data and all(isinstance(x, str) for x in data):
        texts = data
    elif isinstance(data, list) and data and all(_is_ids(x) for x in data):
        ids = data
    else:
        raise RequestError(
            "'input' must be a non-empty string, an array of strings, an array of token "
            "ids, or an array of arrays of token ids.",
            param="input",
        )
    if texts is not None and any(not t for t in texts):
        raise RequestError("'$.input' is invalid: empty strings are not allowed.", param="input")
    count = len(texts if texts is not None else ids)  # type: ignore[arg-type]
    if count > MAX_INPUTS:
        raise RequestError(
            f"'input' has {count} items; at most {MAX_INPUTS} are allowed.", param="input"
        )
    if ids is not None:
        bad = [t for seq in ids for t in seq if not 0 <= t < vocab_size]
        if bad:
            raise RequestError(
                f"Invalid token id {bad[0]} in 'input' (vocabulary size {vocab_size}).",
                param="input",
            )
    encoding = body.get("encoding_format") or "float"
    if encoding not in ("float", "base64"):
        raise RequestError(
            "'encoding_format' must be 'float' or 'base64'.", param="encoding_format"
        )
    dimensions = body.get("dimensions")
    if dimensions is not None and (
        isinstance(dimensions, bool)
        or not isinstance(dimensions, int)
        or not 1 <= dimensions <= max_dimensions
    ):
        raise RequestError(
            f"'dimensions' must be an integer between 1 and {max_dimensions}.",
            param="dimensions",
        )
    return EmbeddingRequest(model, texts, ids, encoding, dimensions)


def shorten(vectors: np.ndarray, dimensions: int | None) -> np.ndarray:
    """OpenAI's `dimensions`: keep the first d components and re-normalise.

    MiniLM was not trained for this (unlike text-embedding-3), so shortened
    vectors lose more quality than OpenAI's do.
    """
    if dimensions is None or dimensions >= vectors.shape[1]:
        return vectors
    cut = vectors[:, :dimensions]
    return cut / np.maximum(np.linalg.norm(cut, axis=1, keepdims=True), 1e-12)


def response_body(
    request: EmbeddingRequest, vectors: np.ndarray, prompt_tokens: int
) -> bytes:
    vectors = np.ascontiguousarray(shorten(vectors, request.dimensions), dtype="<f4")
    if request.encoding_format == "base64":
        values: list = [base64.b64encode(v.tobytes()).decode("ascii") for v in vectors]
    else:
        values = list(vectors)
    return orjson.dumps(
        {
            "object": "list",
            "data": [
                {"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(values)
            ],
            "model": request.model,
            "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
        },
        option=orjson.OPT_SERIALIZE_NUMPY,
    )
