"""Sub-agents: an agent run from inside a parent's tool, parked and resumed in the right order.

The child's session id is derived from the parent's session and tool call, so when the
parent is resumed and re-runs the same tool call, the child is recognised: its finished
result (from the queue's `done/`) is returned instead of running it again. If the child
ran out of budget it is parked with `parent_id` set, the parent parks too with
`waiting_on=[child]`, and the resumer wakes the parent only after the child has finished.
"""

from __future__ import annotations

from typing import Any

from tollgate.agent.errors import BudgetExhausted, ErrorInfo, ErrorKind, SubAgentFailed, SubAgentParked
from tollgate.agent.queue import ParkingQueue
from tollgate.agent.results import RunResult, StopReason
from tollgate.agent.session import Session
from tollgate.agent.tools import current_tool_context


def _plan(agent: Any, key: str | None) -> tuple[str, str, ParkingQueue | None]:
    context = current_tool_context()
    if context is None:
        raise RuntimeError("run_subagent must be called from inside a tool of a running Agent")
    child_id = f"{context.session_id}.{key or context.tool_call_id}"
    return context.session_id, child_id, agent.queue or context.queue


def _known_outcome(queue: ParkingQueue | None, child_id: str) -> str | None:
    """The child's result if an earlier run of this tool call already settled it."""
    if queue is None:
        return None
    finished = queue.finished(child_id)
    if finished is not None:
        if finished.stop != StopReason.COMPLETED.value:
            raise SubAgentFailed(child_id, finished.stop)
        return finished.output or ""
    failure = queue.failure(child_id)
    if failure is not None:
        raise SubAgentFailed(child_id, f"{failure.reason}: {failure.message}".rstrip(": "))
    parked = queue.get(child_id)
    if parked is not None:
        raise SubAgentParked(child_id, parked.reset_at)
    return None


def _interpret(result: RunResult, child_id: str) -> str:
    if result.stop is StopReason.COMPLETED:
        return result.output or ""
    if result.stop is StopReason.PARKED:
        raise SubAgentParked(child_id, result.reset_at)
    if result.stop in (StopReason.BUDGET_EXHAUSTED, StopReason.QUEUE_FULL):
        info = result.error or ErrorInfo(kind=ErrorKind.BUDGET, message="sub-agent ran out of budget")
        raise BudgetExhausted(info, reset_at=result.reset_at)
    raise SubAgentFailed(child_id, result.stop.value)


def _child_session(agent: Any, task: str | list[dict[str, Any]], child_id: str, parent_id: str,
                   metadata: dict[str, Any] | None) -> Session:
    return agent.new_session(task, session_id=child_id, parent_id=parent_id, metadata=metadata)


def run_subagent(agent: Any, task: str | list[dict[str, Any]], *, key: str | None = None,
                 metadata: dict[str, Any] | None = None) -> str:
    """Run `agent` (an `Agent`) as a child of the session whose tool is running; return its answer.

    Raises `SubAgentParked` (the parent then parks and waits), `BudgetExhausted` when the
    child could not be parked, or `SubAgentFailed`, which the parent's model sees as the
    tool's error. `key` names the child when one tool call starts several.
    """
    parent_id, child_id, queue = _plan(agent, key)
    known = _known_outcome(queue, child_id)
    if known is not None:
        return known
    result = agent.execute(_child_session(agent, task, child_id, parent_id, metadata), queue=queue)
    return _interpret(result, child_id)


async def arun_subagent(agent: Any, task: str | list[dict[str, Any]], *, key: str | None = None,
                        metadata: dict[str, Any] | None = None) -> str:
    """`run_subagent` for an `AsyncAgent`, from inside an async tool."""
    parent_id, child_id, queue = _plan(agent, key)
    known = _known_outcome(queue, child_id)
    if known is not None:
        return known
    result = await agent.execute(_child_session(agent, task, child_id, parent_id, metadata), queue=queue)
    return _interpret(result, child_id)
