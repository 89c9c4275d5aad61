#!/usr/bin/env python3
"""Park-and-resume: an agent that outlives its budget window instead of crashing or hanging.

Needs only the agent toolkit: `pip install ./agent` (distribution tollgate-agent, which
brings the `openai` SDK and nothing else). Copy this file, replace the tools and the model,
and run:

    export TOLLGATE_BASE_URL=http://localhost:8080/v1 TOLLGATE_API_KEY=sk_...
    python examples/agent_park_and_resume.py run "Count to five with the tick tool, then report."
    #   -> completed: ...                         (the budget sufficed)
    #   -> parked s-1f3c... until 15:00:00.000Z   (the window ran out: the transcript is on disk)

    # In another terminal (or under systemd): wake parked sessions when their window resets.
    tollgate agent resume --factory examples/agent_park_and_resume.py:factory --base-url $TOLLGATE_BASE_URL

    tollgate agent queue            # what is parked, failed, quarantined

With the toolkit alone (no gateway installed here) the commands are `tollgate-agent resume …`
and `tollgate-agent queue`. Both use the same queue directory ($TOLLGATE_AGENT_QUEUE, or
~/.local/state/tollgate/agent-queue).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import datetime, timezone

from openai import OpenAI

from tollgate.agent import Agent, Downgrade, Limits, ParkingQueue, Session, StopReason, default_queue_dir


# --- tools: plain functions; name, docstring and annotations become the schema ---------
def tick(n: int) -> str:
    """Count one step of the task."""
    return f"tick {n}"


def utc_now() -> str:
    """The current time in UTC, ISO-8601."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


TOOLS = [tick, utc_now]


def build_agent(model: str | None = None, queue: ParkingQueue | None = None) -> Agent:
    """The agent, configured from the environment. Used for new runs and for resumes alike."""
    client = OpenAI(base_url=os.environ["TOLLGATE_BASE_URL"], api_key=os.environ["TOLLGATE_API_KEY"])
    primary = model or os.environ.get("TOLLGATE_MODEL", "auto")
    cheap = os.environ.get("TOLLGATE_CHEAP_MODEL")
    return Agent(
        client,
        primary,
        tools=TOOLS,
        system="You are a careful agent. Use the tools; answer briefly when done.",
        limits=Limits(max_steps=30, max_consecutive_errors=3, usage_check_every=5),
        # Near the end of a window, finish on a cheaper model rather than park early.
        downgrade=Downgrade(model=cheap, below_fraction="0.2") if cheap else None,
        queue=queue,
    )


def factory(session: Session) -> Agent:
    """What `tollgate agent resume --factory this_file.py:factory` calls for each parked session."""
    return build_agent(session.model)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run a budgeted agent that parks when its budget is spent.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="start a task")
    run.add_argument("task")
    run.add_argument("--session", help="session id (default: a new one); a repeat updates the parked entry")
    run.add_argument("--queue", default=str(default_queue_dir()), help="parking queue directory")
    run.add_argument("--hold", action="store_true",
                     help="stay alive after parking (a long-lived service); the resumer still finishes the work")
    args = parser.parse_args(argv)

    agent = build_agent(queue=ParkingQueue(args.queue))
    result = agent.run(args.task, session_id=args.session)
    if result.stop is StopReason.COMPLETED:
        print(f"completed: {result.output}", flush=True)
    elif result.stop is StopReason.PARKED:
        when = result.reset_at.isoformat() if result.reset_at else "unknown"
        print(f"parked {result.session.session_id} until {when}", flush=True)
        while args.hold:
            time.sleep(3600)
    else:
        # QUEUE_FULL, CREDITS_EXHAUSTED, AUTH_FAILED...: each needs a different action.
        print(f"stopped: {result.stop.value}: {result.error.message if result.error else ''}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
