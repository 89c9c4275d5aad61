"""`models pick`: the model-selection guide's decision tree, walked over the reference catalog.

The tree's questions and their order follow the guide; which model answers each question
is data (`[guide]` in reference.toml). The answer must also fit the hard needs the caller
gave (context length, latency); when the guide's model does not, the best catalog model
that has the node's capability and fits is chosen instead, and the answer says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Callable

from tollgate.catalog.reference import BENCHMARKS, GUIDE_NODES, ReferenceCatalog, ReferenceModel
from tollgate.domain.money import format_usd


@dataclass(frozen=True)
class Needs:
    images: bool = False
    reasoning: bool = False
    tools: bool = False
    code: bool = False
    embeddings: bool = False
    latency_ms: int | None = None  # time to first token the caller can accept
    context_tokens: int | None = None  # prompt size the model must hold
    max_quality: bool = False
    allow_proprietary: bool = False


@dataclass(frozen=True)
class Step:
    node: str
    question: str
    answer: bool
    detail: str = ""


@dataclass(frozen=True)
class Pick:
    model: ReferenceModel
    node: str
    path: tuple[Step, ...]
    reasons: tuple[str, ...]
    warnings: tuple[str, ...] = ()
    also: tuple[tuple[str, ReferenceModel], ...] = ()  # later yes-nodes: (node, guide's model)
    guide_model: ReferenceModel | None = None  # set when a constraint overrode the guide


# Why each node's kind of model fits, in our words; the figures are added from the catalog.
_WHY = {
    "images": "the input includes images, so the model must read them natively",
    "reasoning": "multi-step deduction gains most from a model that reasons before answering",
    "tools": "tool loops need native function calling, and speed compounds over many round trips",
    "code": "a code-specialised model is the stronger choice when code quality is what matters",
    "embeddings": "retrieval needs vectors, which only an embedding model returns",
    "low_latency": "a small model answers before a large one has produced its first token",
    "long_context": "large documents need a model whose context window holds them",
    "max_quality": "with latency flexible, the largest general model buys the last points of quality",
    "general": "a reliable all-rounder covers most tasks without a specialist",
}
# How to rank alternatives for a node when the guide's model does not fit.
_RANK: dict[str, tuple[str, ...]] = {
    "images": ("mmlu_pro", "gpqa"),
    "reasoning": ("hle", "gpqa"),
    "tools": ("hle_tools", "swe_bench_verified"),
    "code": ("swe_bench_verified", "livecodebench"),
    "embeddings": (),
    "low_latency": (),
    "long_context": ("mmlu_pro", "gpqa"),
    "max_quality": ("mmlu_pro", "gpqa"),
    "general": ("mmlu_pro", "gpqa"),
}


def pick_model(catalog: ReferenceCatalog, needs: Needs) -> Pick:
    """Walk the tree; the first yes answers, later yeses become 'also' suggestions."""
    general = catalog.guide_pick("general")
    questions: list[tuple[str, str, bool, str]] = [
        ("images", "Need to understand images?", needs.images, ""),
        ("reasoning", "Need step-by-step reasoning (math, logic, science)?", needs.reasoning, ""),
        ("tools", "Need tool calling / agent loops?", needs.tools, ""),
        ("code", "Need code generation or editing?", needs.code, ""),
        ("embeddings", "Need embeddings for search / RAG?", needs.embeddings, ""),
        _latency_question(needs, general),
        _context_question(needs, general),
        ("max_quality", "Need maximum quality, latency flexible?", needs.max_quality, ""),
    ]
    path: list[Step] = []
    chosen: str | None = None
    also: list[tuple[str, ReferenceModel]] = []
    for node, question, answer, detail in questions:
        path.append(Step(node, question, answer, detail))
        if answer and chosen is None:
            chosen = node
        elif answer:
            also.append((node, _fit(catalog, node, catalog.guide_pick(node), needs)[0]))
    if chosen is None:
        chosen = "general"
        path.append(Step("general", "General purpose, good balance?", True, "the default when nothing else applies"))
    guide_model = catalog.guide_pick(chosen)
    model, override = _fit(catalog, chosen, guide_model, needs)
    reasons = [f"{_WHY[chosen].capitalize()}."]
    reasons.extend(_facts(model, chosen, needs))
    warnings = _unmet(model, needs)
    if override:
        reasons.insert(0, override)
    return Pick(
        model=model,
        node=chosen,
        path=tuple(path),
        reasons=tuple(reasons),
        warnings=tuple(warnings),
        also=tuple(also),
        guide_model=guide_model if model is not guide_model else None,
    )


def _latency_question(needs: Needs, general: ReferenceModel) -> tuple[str, str, bool, str]:
    if needs.latency_ms is None:
        return ("low_latency", "Need a fast first token?", False, "")
    default_ttft = general.ttft_ms or 0
    answer = needs.latency_ms < default_ttft
    detail = f"{general.name} takes ~{default_ttft} ms to its first token"
    return ("low_latency", f"Need a first token within {needs.latency_ms} ms?", answer, detail)


def _context_question(needs: Needs, general: ReferenceModel) -> tuple[str, str, bool, str]:
    if needs.context_tokens is None:
        return ("long_context", "Need long context (large documents)?", False, "")
    limit = general.context_tokens or 0
    answer = needs.context_tokens > limit
    detail = f"{general.name} holds {limit:,} tokens"
    return ("long_context", f"Need {needs.context_tokens:,} tokens of context?", answer, detail)


def _fits(model: ReferenceModel, needs: Needs) -> bool:
    if needs.context_tokens is not None and (model.context_tokens or 0) < needs.context_tokens:
        return False
    if needs.latency_ms is not None and (model.ttft_ms is None or model.ttft_ms > needs.latency_ms):
        return False  # an unknown latency cannot be promised
    return True


def _fit(catalog: ReferenceCatalog, node: str, guide_model: ReferenceModel, needs: Needs):
    """The guide's model if it fits the hard needs, else the best fitting alternative."""
    if _fits(guide_model, needs):
        return guide_model, None
    capability = GUIDE_NODES[node]
    candidates = [
        m for m in catalog
        if m.has(capability) and _fits(m, needs) and (m.open_weights or needs.allow_proprietary)
    ]
    if node == "low_latency":
        candidates = [m for m in candidates if m.ttft_ms is not None]
    if not candidates:
        return guide_model, None
    best = min(candidates, key=_ranker(node))
    why = _misfit(guide_model, needs)
    return best, f"The guide picks {guide_model.name}, but {why}; {best.name} is the best catalog model that fits."


def _ranker(node: str) -> Callable[[ReferenceModel], tuple]:
    benches = _RANK[node]

    def key(model: ReferenceModel) -> tuple:
        scores = tuple(-(model.score(b) or Decimal(-1)) for b in benches)
        if node == "low_latency":
            return (model.ttft_ms or 10**9, *scores)
        if node == "long_context":
            return (*scores, -(model.context_tokens or 0))
        return (*scores, -(model.speed_tokens_per_s or 0), model.id)

    return key


def _misfit(model: ReferenceModel, needs: Needs) -> str:
    if needs.context_tokens is not None and (model.context_tokens or 0) < needs.context_tokens:
        held = f"{model.context_tokens:,}" if model.context_tokens else "an unknown number of"
        return f"it holds {held} tokens, under the {needs.context_tokens:,} needed"
    return f"its ~{model.ttft_ms} ms to first token is over the {needs.latency_ms} ms allowed"


def _unmet(model: ReferenceModel, needs: Needs) -> list[str]:
    warnings = []
    if needs.context_tokens is not None:
        if model.context_tokens is None:
            warnings.append(
                f"{model.name}'s context length is not in the catalog; check it holds {needs.context_tokens:,} tokens."
            )
        elif model.context_tokens < needs.context_tokens:
            warnings.append(
                f"{model.name} holds {model.context_tokens:,} tokens, under the {needs.context_tokens:,} asked for, "
                "and no other catalog model for this need holds that much."
            )
    if needs.latency_ms is not None:
        if model.ttft_ms is None:
            warnings.append(f"{model.name}'s time to first token is not in the catalog.")
        elif model.ttft_ms > needs.latency_ms:
            warnings.append(
                f"{model.name} takes ~{model.ttft_ms} ms to its first token, over the {needs.latency_ms} ms asked for."
            )
    if not model.open_weights:
        warnings.append(f"{model.name} is proprietary: a comparison point, not a model tollgate serves by default.")
    return warnings


def _facts(model: ReferenceModel, node: str, needs: Needs) -> list[str]:
    facts = []
    sizes = []
    if model.params_total_b is not None:
        total = _billions(model.params_total_b)
        active = f", {_billions(model.params_active_b)} active" if model.params_active_b is not None else ""
        sizes.append(f"{total} parameters{active}")
    if model.context_tokens is not None:
        sizes.append(f"{model.context_tokens:,}-token context")
    if model.speed_tokens_per_s is not None:
        sizes.append(f"~{model.speed_tokens_per_s} tokens/s")
    if model.ttft_ms is not None:
        sizes.append(f"~{model.ttft_ms} ms to first token")
    if model.embedding_dimensions is not None:
        sizes.append(f"{model.embedding_dimensions}-dimensional vectors")
    if sizes:
        facts.append(f"{model.name}: " + ", ".join(sizes) + ".")
    scores = [f"{BENCHMARKS[b]} {model.score(b)}%" for b in BENCHMARKS if model.score(b) is not None]
    if scores:
        facts.append("Published scores: " + ", ".join(scores) + ".")
    if model.input_per_mtok is not None:
        price = f"${format_usd(model.input_per_mtok)}/M input"
        if model.output_per_mtok is not None:
            price += f", ${format_usd(model.output_per_mtok)}/M output"
        facts.append(f"Reference price: {price}.")
    return facts


def _billions(value: Decimal) -> str:
    """Parameter counts as people write them: 8B, 0.335B, 1T."""
    if value >= 1000:
        return f"{(value / 1000).normalize():f}T"
    return f"{value.normalize():f}B"
