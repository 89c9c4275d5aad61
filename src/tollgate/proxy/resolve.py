"""From the model a client names to the chain of models that will serve it.

A concrete name (or alias) bypasses routing; `auto` and `auto:<profile>` ask
the router, which classifies the request and picks that category's chain.
"""

from __future__ import annotations

from typing import Protocol

from tollgate.domain.accounts import KeyContext
from tollgate.domain.refusals import ModelRefused
from tollgate.proxy.call import EMBEDDINGS
from tollgate.proxy.models import ModelRegistry, ServedModel


class AutoRouter(Protocol):
    async def route(self, profile: str, body: dict, ctx: KeyContext,
                    probe: bool = False) -> tuple[str, list[ServedModel]]:
        """(category, chain) for a request sent to `auto:<profile>`; a `probe` (a token count, never
        sent) is not counted and asks no upstream."""

    def tables(self) -> dict[str, dict[str, list[str]]]:
        """Per profile, per category, the ids of the models of the route."""


def _capable(model: ServedModel, endpoint: str) -> bool:
    return model.config.is_embedding == (endpoint == EMBEDDINGS)


class ModelResolver:
    def __init__(self, registry: ModelRegistry, router: AutoRouter | None) -> None:
        self.registry = registry
        self.router = router

    def route_tables(self) -> dict[str, dict[str, list[str]]]:
        """The `auto` profiles and their routes (none without a router)."""
        return self.router.tables() if self.router is not None else {}

    async def resolve(self, ctx: KeyContext, name: str, endpoint: str, body: dict,
                      probe: bool = False) -> tuple[list[ServedModel], str | None]:
        """(chain, category); `probe` when the request will not be sent (a token count)."""
        if name == "auto" or name.startswith("auto:"):
            if self.router is None or endpoint == EMBEDDINGS:
                raise ModelRefused(ModelRefused.NOT_FOUND, f"model {name!r} is not configured on this gateway")
            profile = name.partition(":")[2] or "auto"
            category, chain = await self.router.route(profile, body, ctx, probe)
            return self._allowed(ctx, chain, name), category
        model = self.registry.resolve(name)
        if model is None:
            raise ModelRefused(ModelRefused.NOT_FOUND, f"the model {name!r} does not exist on this gateway; "
                               "GET /v1/models lists the models it serves")
        if not _capable(model, endpoint):
            kind = "embeddings" if model.config.is_embedding else "chat and completions"
            raise ModelRefused(ModelRefused.NOT_SUPPORTED, f"the model {name!r} serves {kind} only")
        chain = [m for m in self.registry.chain(model) if _capable(m, endpoint)]
        return self._allowed(ctx, chain, name), None

    def _allowed(self, ctx: KeyContext, chain: list[ServedModel], name: str) -> list[ServedModel]:
        allowed = ctx.plan.models if ctx.plan is not None and ctx.key.type == "subscription" else None
        if allowed is None:
            return chain
        names = set(allowed)
        permitted = [m for m in chain if m.id in names or names & set(m.config.aliases)]
        if not permitted:
            raise ModelRefused(ModelRefused.NOT_ALLOWED,
                                f"the plan {ctx.plan.slug!r} does not include the model {name!r}")
        return permitted
