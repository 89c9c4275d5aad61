"""The models this gateway serves: names and aliases, prices, deployments, fallback chains."""

from __future__ import annotations

from dataclasses import dataclass

from tollgate.config.schema import Config, ModelConfig
from tollgate.domain.pricing import TokenUsage, charge, reserve
from tollgate.proxy.tokenizer_file import load_counter
from tollgate.proxy.upstream.base import TokenCounter, Upstream


@dataclass
class ServedModel:
    config: ModelConfig
    deployments: list[Upstream]
    counter: TokenCounter | None = None

    @property
    def id(self) -> str:
        return self.config.id

    def cost(self, input_tokens: int, output_tokens: int) -> int:
        """The worst case of a request of at most these many tokens in and out: what admission reserves
        (the dearest prompt and output rates of every tier the prompt reaches, domain/pricing.py)."""
        return reserve(self.config.price, input_tokens, output_tokens)

    def charge(self, usage: TokenUsage) -> int:
        """What a request's usage really costs: each part of the prompt at its own rate, in its tier."""
        return charge(self.config.price, usage)

    def pick(self) -> list[Upstream]:
        """Deployments in the order to try them: fewest requests in flight first."""
        if len(self.deployments) == 1:
            return self.deployments
        return sorted(self.deployments, key=lambda u: u.inflight)


class ModelRegistry:
    def __init__(self, models: list[ServedModel]) -> None:
        self.models = models
        self._by_name: dict[str, ServedModel] = {}
        for model in models:
            for name in (model.id, *model.config.aliases):
                self._by_name[name] = model

    @classmethod
    def build(cls, config: Config, upstreams: dict[str, Upstream]) -> ModelRegistry:
        served = []
        for model in config.models:
            deployments = [upstreams[name] for name in model.upstreams]
            served.append(ServedModel(model, deployments, load_counter(model.tokenizer, deployments[0])))
        return cls(served)

    def resolve(self, name: str) -> ServedModel | None:
        return self._by_name.get(name)

    def chain(self, model: ServedModel) -> list[ServedModel]:
        """The model, then its fallbacks in order (each once)."""
        chain = [model]
        for name in model.config.fallbacks:
            fallback = self._by_name.get(name)
            if fallback is not None and fallback not in chain:
                chain.append(fallback)
        return chain
