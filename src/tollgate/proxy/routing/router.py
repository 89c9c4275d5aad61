"""Model `auto`: classify the request, then send it down that category's route.

`[routes.<profile>]` in the config maps each category to a chain of models
(the first is the route's model, the rest its fallbacks); `auto` uses the
`auto` profile, `auto:<profile>` any other. Near the end of a key's budget a
profile may step down to its `downgrade` chains.
"""

from __future__ import annotations

from dataclasses import dataclass

from tollgate.config.schema import Config, RouteProfile
from tollgate.domain.accounts import KeyContext
from tollgate.domain.pools import pools_for
from tollgate.domain.refusals import ModelRefused
from tollgate.ledger.protocol import BudgetLedger
from tollgate.proxy.metrics import RouteMetrics
from tollgate.proxy.models import ModelRegistry, ServedModel
from tollgate.proxy.routing.judge import JudgeClassifier


@dataclass
class CompiledProfile:
    config: RouteProfile
    chains: dict[str, list[ServedModel]]
    downgrades: dict[str, list[ServedModel]]
    judge: JudgeClassifier | None


class AutoRouter:
    def __init__(self, profiles: dict[str, CompiledProfile], ledger: BudgetLedger, metrics: RouteMetrics,
                 local_classifier: object | None) -> None:
        self.profiles = profiles
        self.ledger = ledger
        self.metrics = metrics
        self.local = local_classifier

    async def route(self, profile_name: str, body: dict, ctx: KeyContext,
                    probe: bool = False) -> tuple[str, list[ServedModel]]:
        """(category, chain). A `probe` is a request that will not be sent (a token count): it is left
        out of the route metrics, and a judge profile does not ask its judge (an upstream call that
        someone pays for, on an endpoint that is free) but takes the `general` route."""
        profile = self.profiles.get(profile_name)
        if profile is None:
            raise ModelRefused(ModelRefused.NOT_FOUND,
                               f"no route profile {profile_name!r}: configure [routes.{profile_name}]")
        if profile.judge is not None:
            category = "general" if probe else await profile.judge.classify(body)
        else:
            category, _ = self.local.classify(body)
        if not probe:
            self.metrics.classify(profile_name, category)
        chain = profile.chains.get(category) or profile.chains["general"]
        downgrade = profile.downgrades.get(category)
        if downgrade and await self._budget_fraction(ctx) < profile.config.downgrade_below:
            chain = downgrade
        return category, list(chain)

    def tables(self) -> dict[str, dict[str, list[str]]]:
        """Per profile, per category: the ids of the route's model and its fallbacks (what
        `GET /v1/models` shows for `auto`)."""
        return {name: {category: [m.id for m in chain] for category, chain in profile.chains.items()}
                for name, profile in self.profiles.items()}

    async def _budget_fraction(self, ctx: KeyContext) -> float:
        """The smallest share of any budget this key draws on that is still left."""
        fractions = []
        for pool in pools_for(ctx):
            if pool.limit > 0:
                state = await self.ledger.read(pool)
                fractions.append(state.remaining / pool.limit)
        return min(fractions, default=1.0)


def build_router(config: Config, registry: ModelRegistry, ledger: BudgetLedger, metrics: RouteMetrics) -> AutoRouter:
    def models(names: tuple[str, ...]) -> list[ServedModel]:
        return [registry.resolve(name) for name in names if registry.resolve(name) is not None]

    profiles = {}
    local_needed = False
    for name, profile in config.routes.items():
        judge = None
        if profile.classifier == "judge":
            judge = JudgeClassifier(registry.resolve(profile.judge_model))
        else:
            local_needed = True
        profiles[name] = CompiledProfile(
            config=profile,
            chains={category: models(names) for category, names in profile.table.items()},
            downgrades={category: models(names) for category, names in profile.downgrade.items()},
            judge=judge,
        )
    local = None
    if local_needed:
        from tollgate.proxy.routing.classifier import RequestClassifier

        local = RequestClassifier.load()
    return AutoRouter(profiles, ledger, metrics, local)
