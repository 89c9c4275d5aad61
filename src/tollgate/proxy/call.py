"""One data-plane request, as the flow sees it once the endpoint has read and checked it."""

from __future__ import annotations

from dataclasses import dataclass

from tollgate.proxy.models import ServedModel

CHAT, COMPLETIONS, EMBEDDINGS = "chat", "completions", "embeddings"
PATHS = {CHAT: "/chat/completions", COMPLETIONS: "/completions", EMBEDDINGS: "/embeddings"}


@dataclass(slots=True)
class Call:
    endpoint: str
    body: dict
    chain: list[ServedModel]
    stream: bool = False
    include_usage: bool = False
    # The client's output limit and the field it used ("max_tokens" or "max_completion_tokens").
    max_tokens: int | None = None
    max_tokens_field: str = "max_tokens"
    choices: int = 1
    route: str | None = None  # the category, when model `auto` chose the chain
    profile: str | None = None
    request_text: str | None = None
    request_id: str = ""
    session: str | None = None
    client: str | None = None

    @property
    def path(self) -> str:
        return PATHS[self.endpoint]
