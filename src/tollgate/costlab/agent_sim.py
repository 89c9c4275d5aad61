"""Step-by-step token flow of an agent task: why agents spend 10-50x what their output suggests.

Model of one task of N steps (one model call per tool call):

- every call re-sends the system prompt;
- call k reads the fresh tool output of its step (plus, at step 1, the task message);
- call k re-sends the history kept from earlier steps (their tool outputs and the agent's
  own replies), after the history policy has trimmed or summarised it;
- call k writes the agent's output for that step, which joins the history with the
  step's tool output.

Totals per category are what the agent-cost post calls "system prompt (x N)",
"tool outputs", "context accumulation" (the re-sent history) and "agent output".
All counts are integers; per-step sizes are the totals spread as evenly as integers allow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

HISTORY_KINDS = ("full", "window", "cap", "summarise")


@dataclass(frozen=True)
class HistoryPolicy:
    """What the agent keeps of earlier steps before each call.

    full:       everything (what most frameworks do by default).
    window:     only the last `window_steps` steps' material.
    cap:        only the newest `cap_tokens` tokens (oldest trimmed first, token by token).
    summarise:  once kept history exceeds `summarise_at` tokens, an extra model call reads
                it and writes a `summary_tokens` summary that replaces it.
    """

    kind: str = "full"
    window_steps: int = 0
    cap_tokens: int = 0
    summarise_at: int = 0
    summary_tokens: int = 0

    def __post_init__(self) -> None:
        if self.kind not in HISTORY_KINDS:
            raise ValueError(f"history policy {self.kind!r} is not one of {', '.join(HISTORY_KINDS)}")
        if self.kind == "window" and self.window_steps < 0:
            raise ValueError("a history window cannot be negative")
        if self.kind == "cap" and self.cap_tokens < 0:
            raise ValueError("a history cap cannot be negative")
        if self.kind == "summarise" and not 0 <= self.summary_tokens < self.summarise_at:
            raise ValueError("a summary must be shorter than the history that triggers it")

    @classmethod
    def parse(cls, text: str) -> "HistoryPolicy":
        """`full`, `window:STEPS`, `cap:TOKENS` or `summarise:AT_TOKENS:SUMMARY_TOKENS`."""
        kind, *parts = text.strip().lower().split(":")
        kind = {"summarize": "summarise", "trim": "cap"}.get(kind, kind)
        want = {"full": 0, "window": 1, "cap": 1, "summarise": 2}
        if kind not in want or len(parts) != want[kind]:
            raise ValueError(
                f"{text!r} is not a history policy; use full, window:STEPS, cap:TOKENS "
                "or summarise:AT_TOKENS:SUMMARY_TOKENS"
            )
        try:
            numbers = [int(p.replace("_", "").replace(",", "")) for p in parts]
        except ValueError as exc:
            raise ValueError(f"{text!r}: the numbers must be whole numbers") from exc
        if kind == "window":
            return cls(kind, window_steps=numbers[0])
        if kind == "cap":
            return cls(kind, cap_tokens=numbers[0])
        if kind == "summarise":
            return cls(kind, summarise_at=numbers[0], summary_tokens=numbers[1])
        return cls()

    def describe(self) -> str:
        if self.kind == "window":
            return f"keep the last {self.window_steps} step(s)"
        if self.kind == "cap":
            return f"keep the newest {self.cap_tokens:,} tokens"
        if self.kind == "summarise":
            return f"summarise above {self.summarise_at:,} into {self.summary_tokens:,} tokens"
        return "keep everything"

    def spec(self) -> str:
        if self.kind == "window":
            return f"window:{self.window_steps}"
        if self.kind == "cap":
            return f"cap:{self.cap_tokens}"
        if self.kind == "summarise":
            return f"summarise:{self.summarise_at}:{self.summary_tokens}"
        return "full"


@dataclass(frozen=True)
class AgentTask:
    """The shape of one agent task. Token totals are spread evenly over the steps."""

    steps: int
    system_prompt_tokens: int
    tool_output_tokens: int
    agent_output_tokens: int
    task_tokens: int = 0
    history: HistoryPolicy = field(default_factory=HistoryPolicy)

    def __post_init__(self) -> None:
        if self.steps <= 0:
            raise ValueError("an agent task needs at least one step")
        for name in ("system_prompt_tokens", "tool_output_tokens", "agent_output_tokens", "task_tokens"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} cannot be negative")


@dataclass(frozen=True)
class StepFlow:
    """Tokens of one step. `summary_*` belong to a summarisation call made before it."""

    step: int
    system: int
    history: int
    fresh: int
    output: int
    summary_input: int = 0
    summary_output: int = 0

    @property
    def prompt_tokens(self) -> int:
        """The size of this step's own prompt (what must fit the context window)."""
        return self.system + self.history + self.fresh

    @property
    def input_tokens(self) -> int:
        return self.prompt_tokens + self.summary_input

    @property
    def output_tokens(self) -> int:
        return self.output + self.summary_output


@dataclass(frozen=True)
class TokenFlow:
    task: AgentTask
    steps: tuple[StepFlow, ...]

    def _sum(self, name: str) -> int:
        return sum(getattr(s, name) for s in self.steps)

    @property
    def system_prompt_resent(self) -> int:
        return self._sum("system")

    @property
    def context_accumulation(self) -> int:
        """Earlier steps' material re-sent: the quadratic part of an agent's bill."""
        return self._sum("history")

    @property
    def tool_outputs(self) -> int:
        """Fresh tool output (and the task message), each sent for the first time."""
        return self._sum("fresh")

    @property
    def agent_output(self) -> int:
        return self._sum("output")

    @property
    def summarisation(self) -> int:
        return self._sum("summary_input") + self._sum("summary_output")

    @property
    def input_tokens(self) -> int:
        return self._sum("input_tokens")

    @property
    def output_tokens(self) -> int:
        return self._sum("output_tokens")

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def overhead_share(self) -> Decimal:
        """Share of all tokens that is not the agent's own output."""
        if self.total_tokens == 0:
            return Decimal(0)
        return 1 - Decimal(self.agent_output) / Decimal(self.total_tokens)

    @property
    def model_calls(self) -> int:
        return len(self.steps) + sum(1 for s in self.steps if s.summary_input)

    @property
    def peak_prompt(self) -> int:
        return max(s.prompt_tokens for s in self.steps)


def spread(total: int, parts: int) -> list[int]:
    """`total` split into `parts` integers that differ by at most one and sum exactly."""
    base, extra = divmod(total, parts)
    # Spread the remainder evenly rather than front-loading it (Bresenham style).
    return [base + ((i + 1) * extra // parts - i * extra // parts) for i in range(parts)]


def simulate(task: AgentTask) -> TokenFlow:
    """Walk the task step by step under its history policy."""
    policy = task.history
    tools = spread(task.tool_output_tokens, task.steps)
    outputs = spread(task.agent_output_tokens, task.steps)
    kept: list[tuple[int, int]] = []  # (step it came from, tokens), oldest first
    flows = []
    for index in range(task.steps):
        step = index + 1
        summary_in = summary_out = 0
        if policy.kind == "window":
            kept = [(s, n) for s, n in kept if s > step - 1 - policy.window_steps]
        elif policy.kind == "cap":
            kept = _trim_oldest(kept, policy.cap_tokens)
        elif policy.kind == "summarise" and sum(n for _, n in kept) > policy.summarise_at:
            summary_in = task.system_prompt_tokens + sum(n for _, n in kept)
            summary_out = policy.summary_tokens
            kept = [(step - 1, policy.summary_tokens)]
        fresh = tools[index] + (task.task_tokens if index == 0 else 0)
        flows.append(
            StepFlow(
                step=step,
                system=task.system_prompt_tokens,
                history=sum(n for _, n in kept),
                fresh=fresh,
                output=outputs[index],
                summary_input=summary_in,
                summary_output=summary_out,
            )
        )
        kept.append((step, fresh))
        kept.append((step, outputs[index]))
    return TokenFlow(task=task, steps=tuple(flows))


def _trim_oldest(kept: list[tuple[int, int]], cap: int) -> list[tuple[int, int]]:
    """Drop the oldest tokens until at most `cap` remain (the oldest item may be cut)."""
    total = sum(n for _, n in kept)
    trimmed = list(kept)
    while total > cap and trimmed:
        step, tokens = trimmed[0]
        drop = min(tokens, total - cap)
        total -= drop
        if drop == tokens:
            trimmed.pop(0)
        else:
            trimmed[0] = (step, tokens - drop)
    return trimmed


def cap_for_accumulation(task: AgentTask, target: int) -> int:
    """The smallest history cap whose re-sent history reaches `target` tokens.

    Used to read a published "context accumulation" figure back into the one model
    parameter it implies. Re-sent history grows monotonically with the cap, so a binary
    search is exact.
    """
    full = simulate(_with_history(task, HistoryPolicy()))
    if target > full.context_accumulation:
        raise ValueError(f"{target:,} tokens is more than keeping everything re-sends ({full.context_accumulation:,})")
    low, high = 0, max(s.history for s in full.steps)
    while low < high:
        middle = (low + high) // 2
        if simulate(_with_history(task, HistoryPolicy("cap", cap_tokens=middle))).context_accumulation >= target:
            high = middle
        else:
            low = middle + 1
    return low


def _with_history(task: AgentTask, history: HistoryPolicy) -> AgentTask:
    return AgentTask(
        steps=task.steps,
        system_prompt_tokens=task.system_prompt_tokens,
        tool_output_tokens=task.tool_output_tokens,
        agent_output_tokens=task.agent_output_tokens,
        task_tokens=task.task_tokens,
        history=history,
    )
