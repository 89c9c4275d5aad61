"""One data-plane request, as the flow sees it once the endpoint has read and checked it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from tollgate.proxy.models import ServedModel

CHAT, COMPLETIONS, EMBEDDINGS = "chat", "completions", "embeddings"
PATHS = {CHAT: "/chat/completions", COMPLETIONS: "/completions", EMBEDDINGS: "/embeddings"}
# Output limits some servers read beside OpenAI's (llama.cpp's `n_predict` even outranks `max_tokens`
# there; Ollama's `num_predict`; TGI's and SGLang's `max_new_tokens`). The endpoint's checks fold a
# client's values of these into the call's one limit (tollgate.http.checks); the flow forwards that
# one field, set to what was reserved, and none of the others (OUTPUT_LIMIT_FIELDS).
SERVER_OUTPUT_LIMITS = ("n_predict", "num_predict", "max_new_tokens")
OUTPUT_LIMIT_FIELDS = ("max_tokens", "max_completion_tokens", *SERVER_OUTPUT_LIMITS)


@dataclass(slots=True)
class Call:
    endpoint: str
    body: dict
    chain: list[ServedModel]
    stream: bool = False
    include_usage: bool = False
    # The client's output limit and the field it used ("max_tokens" or "max_completion_tokens"): the one
    # cap field sent upstream (the flow drops every other, and caps the value at the model's max_output).
    max_tokens: int | None = None
    max_tokens_field: str = "max_tokens"
    # Completions the upstream generates, each up to the output cap: `n`, or `best_of` when larger
    # (its candidates are all generated, and billed, though only `n` come back). Reserved for in full.
    choices: int = 1
    route: str | None = None  # the category, when model `auto` chose the chain
    profile: str | None = None
    request_text: str | None = None
    request_id: str = ""
    headers: Mapping[str, str] | None = None  # the client's, names lower-cased: upstreams forward those they list
    session: str | None = None
    client: str | None = None

    def __post_init__(self) -> None:
        if self.endpoint == EMBEDDINGS:
            return
        best_of = self.body.get("best_of")
        if type(best_of) is int and best_of > self.choices:
            self.choices = best_of
        if self.endpoint == COMPLETIONS:
            self.max_tokens_field = "max_tokens"  # the only output cap /completions knows

    @property
    def path(self) -> str:
        return PATHS[self.endpoint]
