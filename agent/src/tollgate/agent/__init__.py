"""tollgate.agent: a budgeted agent loop and durable park-and-resume, for any OpenAI-compatible client.

Client-side only: it needs the `openai` SDK (or any client with the same shape) and the
standard library, never the gateway's server dependencies. See docs/agent.md.
"""

from tollgate.agent.adapters import GuardedClient, guard
from tollgate.agent.classify import classify_exception, classify_response, classify_text
from tollgate.agent.errors import (
    AgentError,
    BudgetExhausted,
    CorruptEntry,
    ErrorInfo,
    ErrorKind,
    QueueFull,
    SubAgentFailed,
    SubAgentParked,
)
from tollgate.agent.factory import load_factory
from tollgate.agent.loop import Agent, AsyncAgent
from tollgate.agent.policy import Downgrade, Limits
from tollgate.agent.queue import ParkingQueue, default_queue_dir
from tollgate.agent.records import Failure, Finished
from tollgate.agent.results import RunResult, StepRecord, StopReason
from tollgate.agent.resume import ResumeOutcome, Resumer
from tollgate.agent.session import Session
from tollgate.agent.subagents import arun_subagent, run_subagent
from tollgate.agent.tools import Tool, ToolContext, current_tool_context, tool_from_function
from tollgate.agent.usage import BudgetStatus, UsageClient, UsageError, parse_usage

__all__ = [
    "Agent",
    "AgentError",
    "AsyncAgent",
    "BudgetExhausted",
    "BudgetStatus",
    "CorruptEntry",
    "Downgrade",
    "ErrorInfo",
    "ErrorKind",
    "Failure",
    "Finished",
    "GuardedClient",
    "Limits",
    "ParkingQueue",
    "QueueFull",
    "ResumeOutcome",
    "Resumer",
    "RunResult",
    "Session",
    "StepRecord",
    "StopReason",
    "SubAgentFailed",
    "SubAgentParked",
    "Tool",
    "ToolContext",
    "UsageClient",
    "UsageError",
    "arun_subagent",
    "classify_exception",
    "classify_response",
    "classify_text",
    "current_tool_context", "default_queue_dir",
    "guard",
    "load_factory",
    "parse_usage",
    "run_subagent",
    "tool_from_function",
]
