"""The packaged reference catalog: public prices, sizes, speeds and scores of well-known models.

The figures live in `reference.toml` (data, with a `source` per entry) so that updating a
price is a data change, not a code change. Loading validates every entry and names the
entry and key of anything wrong, because a silently misread price would poison every
cost the lab prints. Prices become integer nano-dollars per million tokens here, once.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from importlib import resources
from types import MappingProxyType
from typing import Any, Iterator, Mapping

from tollgate.domain.money import MoneyError, usd_from_json
from tollgate.domain.price_rules import price_problems
from tollgate.domain.pricing import Price, Rates, Tier

CAPABILITIES = ("chat", "reasoning", "code", "agent", "vision", "embeddings", "long-context")
BENCHMARKS = {
    "mmlu_pro": "MMLU-Pro",
    "gpqa": "GPQA Diamond",
    "livecodebench": "LiveCodeBench",
    "hle": "HLE",
    "hle_tools": "HLE (with tools)",
    "swe_bench_verified": "SWE-bench Verified",
}
# Decision-tree nodes of the model-selection guide, and the capability each answer must have.
GUIDE_NODES = {
    "images": "vision",
    "reasoning": "reasoning",
    "tools": "agent",
    "code": "code",
    "embeddings": "embeddings",
    "low_latency": "chat",
    "long_context": "long-context",
    "max_quality": "chat",
    "general": "chat",
    "budget_general": "chat",
}
SCHEMA_VERSION = 1
_ID = re.compile(r"^[a-z0-9][a-z0-9.\-]*$")
_MODEL_KEYS = {
    "id", "name", "family", "open_weights", "aliases", "capabilities", "input_usd_per_mtok",
    "output_usd_per_mtok", "context_tokens", "max_output_tokens", "speed_tokens_per_s", "ttft_ms",
    "params_total_b", "params_active_b", "embedding_dimensions", "benchmarks", "source", "notes",
    "cached_input_usd_per_mtok", "cache_write_usd_per_mtok", "tiers",
}
_TIER_KEYS = {"above_tokens", "input_usd_per_mtok", "output_usd_per_mtok", "cached_input_usd_per_mtok",
              "cache_write_usd_per_mtok"}
_REQUIRED = ("id", "name", "capabilities", "source")


class CatalogError(ValueError):
    """The reference catalog has a bad entry; the message names the entry and the key."""


@dataclass(frozen=True)
class ReferenceModel:
    """One reference model. Money is nano-dollars per million tokens; None means unknown."""

    id: str
    name: str
    family: str
    open_weights: bool
    capabilities: frozenset[str]
    source: str
    input_per_mtok: int | None = None
    output_per_mtok: int | None = None
    context_tokens: int | None = None
    max_output_tokens: int | None = None
    speed_tokens_per_s: int | None = None
    ttft_ms: int | None = None
    params_total_b: Decimal | None = None
    params_active_b: Decimal | None = None
    embedding_dimensions: int | None = None
    benchmarks: Mapping[str, Decimal] = field(default_factory=lambda: MappingProxyType({}))
    aliases: tuple[str, ...] = ()
    notes: str = ""
    cached_input_per_mtok: int | None = None
    cache_write_per_mtok: int | None = None
    tiers: tuple[Tier, ...] = ()

    def has(self, capability: str) -> bool:
        return capability in self.capabilities

    def score(self, benchmark: str) -> Decimal | None:
        return self.benchmarks.get(benchmark)

    @property
    def is_priced(self) -> bool:
        """Both prices known, so a task on it can be priced exactly."""
        return self.input_per_mtok is not None and self.output_per_mtok is not None

    @property
    def price(self) -> Price | None:
        """Every price as one value (cache prices and tiers included), when both base prices are known."""
        if self.input_per_mtok is None or self.output_per_mtok is None:
            return None
        return Price(Rates(self.input_per_mtok, self.output_per_mtok, self.cached_input_per_mtok,
                           self.cache_write_per_mtok), self.tiers)


@dataclass(frozen=True)
class ReferenceCatalog:
    models: tuple[ReferenceModel, ...]
    guide: Mapping[str, str]

    def __iter__(self) -> Iterator[ReferenceModel]:
        return iter(self.models)

    def __len__(self) -> int:
        return len(self.models)

    def get(self, name: str) -> ReferenceModel:
        """A model by id or alias (case-insensitive). KeyError names the known ids."""
        wanted = name.lower()
        for model in self.models:
            if model.id == wanted or wanted in (a.lower() for a in model.aliases):
                return model
        known = ", ".join(m.id for m in self.models)
        raise KeyError(f"no reference model {name!r}; known: {known}")

    def guide_pick(self, node: str) -> ReferenceModel:
        return self.get(self.guide[node])

    def with_capability(self, capability: str) -> tuple[ReferenceModel, ...]:
        return tuple(m for m in self.models if m.has(capability))


def load_reference_catalog() -> ReferenceCatalog:
    """Read and validate the packaged `reference.toml`."""
    text = resources.files("tollgate.catalog").joinpath("reference.toml").read_text(encoding="utf-8")
    return parse_reference_catalog(text, origin="reference.toml")


def parse_reference_catalog(text: str, origin: str = "catalog") -> ReferenceCatalog:
    """Validate catalog TOML text; raises CatalogError naming the entry and key at fault."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{origin}: not valid TOML: {exc}") from exc
    unknown = set(data) - {"schema", "models", "guide"}
    if unknown:
        raise CatalogError(f"{origin}: unknown top-level key(s) {sorted(unknown)}")
    if data.get("schema") != SCHEMA_VERSION:
        raise CatalogError(f"{origin}: key 'schema' must be {SCHEMA_VERSION}, got {data.get('schema')!r}")
    raw_models = data.get("models")
    if not isinstance(raw_models, list) or not raw_models:
        raise CatalogError(f"{origin}: needs at least one [[models]] entry")
    models = []
    names: dict[str, str] = {}
    for index, raw in enumerate(raw_models):
        model = _parse_model(raw, f"{origin}: models[{index}]")
        own = [model.id, *(a.lower() for a in model.aliases)]
        if len(set(own)) != len(own):
            raise CatalogError(f"{origin}: model {model.id!r}: key 'aliases' repeats a name or the id")
        for name in own:
            if name in names:
                raise CatalogError(
                    f"{origin}: model {model.id!r}: key 'aliases': {name!r} is already used by {names[name]!r}"
                )
            names[name] = model.id
        models.append(model)
    catalog = ReferenceCatalog(models=tuple(models), guide=MappingProxyType({}))
    guide = _parse_guide(data.get("guide", {}), catalog, origin)
    return ReferenceCatalog(models=tuple(models), guide=guide)


def _parse_model(raw: Any, where: str) -> ReferenceModel:
    if not isinstance(raw, dict):
        raise CatalogError(f"{where}: each [[models]] entry must be a table")
    model_id = raw.get("id")
    if not isinstance(model_id, str) or not _ID.match(model_id):
        raise CatalogError(f"{where}: key 'id': {model_id!r} must be lowercase letters, digits, '.' or '-'")
    where = f"{where.split(':')[0]}: model {model_id!r}"
    for key in _REQUIRED:
        if key not in raw:
            raise CatalogError(f"{where}: key {key!r} is required")
    unknown = set(raw) - _MODEL_KEYS
    if unknown:
        raise CatalogError(f"{where}: unknown key(s) {sorted(unknown)}")
    model = ReferenceModel(
        id=model_id,
        name=_text(raw, "name", where),
        family=_text(raw, "family", where, default=""),
        open_weights=_flag(raw, "open_weights", where),
        capabilities=_capabilities(raw, where),
        source=_text(raw, "source", where),
        input_per_mtok=_price(raw, "input_usd_per_mtok", where),
        output_per_mtok=_price(raw, "output_usd_per_mtok", where),
        context_tokens=_count(raw, "context_tokens", where),
        max_output_tokens=_count(raw, "max_output_tokens", where),
        speed_tokens_per_s=_count(raw, "speed_tokens_per_s", where),
        ttft_ms=_count(raw, "ttft_ms", where),
        params_total_b=_number(raw, "params_total_b", where),
        params_active_b=_number(raw, "params_active_b", where),
        embedding_dimensions=_count(raw, "embedding_dimensions", where),
        benchmarks=_benchmarks(raw, where),
        aliases=_aliases(raw, where),
        notes=_text(raw, "notes", where, default=""),
        cached_input_per_mtok=_price(raw, "cached_input_usd_per_mtok", where),
        cache_write_per_mtok=_price(raw, "cache_write_usd_per_mtok", where),
        tiers=_tiers(raw, where),
    )
    _check_price(model, where)
    return model


def _tiers(raw: dict, where: str) -> tuple[Tier, ...]:
    """`[[models.tiers]]`: above `above_tokens` prompt tokens, the whole request at the tier's prices."""
    value = raw.get("tiers", [])
    if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
        raise CatalogError(f"{where}: key 'tiers' must be an array of tables ([[models.tiers]])")
    tiers = []
    for i, tier in enumerate(value):
        at = f"{where}: tiers[{i}]"
        unknown = set(tier) - _TIER_KEYS
        if unknown:
            raise CatalogError(f"{at}: unknown key(s) {sorted(unknown)}")
        for key in ("above_tokens", "input_usd_per_mtok", "output_usd_per_mtok"):
            if key not in tier:
                raise CatalogError(f"{at}: key {key!r} is required")
        tiers.append(Tier(_count(tier, "above_tokens", at) or 0, Rates(
            _price(tier, "input_usd_per_mtok", at) or 0, _price(tier, "output_usd_per_mtok", at) or 0,
            _price(tier, "cached_input_usd_per_mtok", at), _price(tier, "cache_write_usd_per_mtok", at))))
    return tuple(tiers)


def _check_price(model: ReferenceModel, where: str) -> None:
    """The price rules every price obeys (domain/price_rules.py), named with this file's keys."""
    has_cache = model.cached_input_per_mtok is not None or model.cache_write_per_mtok is not None
    if (has_cache or model.tiers) and model.price is None:
        raise CatalogError(f"{where}: cache prices and tiers need both input_usd_per_mtok and output_usd_per_mtok")
    problems = price_problems(model.price, model.context_tokens) if model.price is not None else []
    if problems:
        key, problem = problems[0]
        raise CatalogError(f"{where}: key {key.replace('_per_mtok', '_usd_per_mtok')!r}: {problem}")


def _text(raw: dict, key: str, where: str, default: str | None = None) -> str:
    value = raw.get(key, default)
    if not isinstance(value, str) or (default is None and not value.strip()):
        raise CatalogError(f"{where}: key {key!r} must be non-empty text, got {value!r}")
    return value


def _flag(raw: dict, key: str, where: str) -> bool:
    value = raw.get(key, True)
    if not isinstance(value, bool):
        raise CatalogError(f"{where}: key {key!r} must be true or false, got {value!r}")
    return value


def _price(raw: dict, key: str, where: str) -> int | None:
    if key not in raw:
        return None
    try:
        nanos = usd_from_json(raw[key])
    except MoneyError as exc:
        raise CatalogError(f"{where}: key {key!r}: {exc}") from exc
    if nanos < 0:
        raise CatalogError(f"{where}: key {key!r}: a price cannot be negative")
    return nanos


def _count(raw: dict, key: str, where: str) -> int | None:
    if key not in raw:
        return None
    value = raw[key]
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise CatalogError(f"{where}: key {key!r} must be a whole number above zero, got {value!r}")
    return value


def _decimal(value: Any, key: str, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise CatalogError(f"{where}: key {key!r}: {value!r} is not a number")
    try:
        number = Decimal(repr(value) if isinstance(value, float) else str(value))
    except InvalidOperation as exc:
        raise CatalogError(f"{where}: key {key!r}: {value!r} is not a number") from exc
    if not number.is_finite():
        raise CatalogError(f"{where}: key {key!r}: {value!r} is not a finite number")
    return number


def _number(raw: dict, key: str, where: str) -> Decimal | None:
    if key not in raw:
        return None
    number = _decimal(raw[key], key, where)
    if number <= 0:
        raise CatalogError(f"{where}: key {key!r} must be above zero, got {raw[key]!r}")
    return number


def _capabilities(raw: dict, where: str) -> frozenset[str]:
    value = raw["capabilities"]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise CatalogError(f"{where}: key 'capabilities' must be a non-empty list of names")
    bad = [v for v in value if v not in CAPABILITIES]
    if bad:
        raise CatalogError(f"{where}: key 'capabilities': unknown {bad}; known: {', '.join(CAPABILITIES)}")
    if len(set(value)) != len(value):
        raise CatalogError(f"{where}: key 'capabilities' lists a capability twice")
    return frozenset(value)


def _benchmarks(raw: dict, where: str) -> Mapping[str, Decimal]:
    value = raw.get("benchmarks", {})
    if not isinstance(value, dict):
        raise CatalogError(f"{where}: key 'benchmarks' must be a table")
    scores = {}
    for name, score in value.items():
        key = f"benchmarks.{name}"
        if name not in BENCHMARKS:
            raise CatalogError(f"{where}: key {key!r} is not a known benchmark; known: {', '.join(BENCHMARKS)}")
        number = _decimal(score, key, where)
        if not 0 <= number <= 100:
            raise CatalogError(f"{where}: key {key!r} must be a percentage from 0 to 100, got {score!r}")
        scores[name] = number
    return MappingProxyType(scores)


def _aliases(raw: dict, where: str) -> tuple[str, ...]:
    value = raw.get("aliases", [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise CatalogError(f"{where}: key 'aliases' must be a list of non-empty names")
    return tuple(value)


def _parse_guide(raw: Any, catalog: ReferenceCatalog, origin: str) -> Mapping[str, str]:
    if not isinstance(raw, dict):
        raise CatalogError(f"{origin}: [guide] must be a table")
    missing = [node for node in GUIDE_NODES if node not in raw]
    if missing:
        raise CatalogError(f"{origin}: guide: missing key(s) {missing}")
    guide = {}
    for node, model_id in raw.items():
        where = f"{origin}: guide: key {node!r}"
        if node not in GUIDE_NODES:
            raise CatalogError(f"{where} is not a decision node; known: {', '.join(GUIDE_NODES)}")
        try:
            model = catalog.get(model_id) if isinstance(model_id, str) else None
        except KeyError:
            model = None
        if model is None:
            raise CatalogError(f"{where}: {model_id!r} is not a model in the catalog")
        if not model.has(GUIDE_NODES[node]):
            raise CatalogError(f"{where}: {model.id!r} lacks the {GUIDE_NODES[node]!r} capability")
        if node == "low_latency" and model.ttft_ms is None:
            raise CatalogError(f"{where}: {model.id!r} needs a ttft_ms to answer a latency question")
        guide[node] = model.id
    return MappingProxyType(guide)
